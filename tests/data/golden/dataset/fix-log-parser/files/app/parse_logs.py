#!/usr/bin/env python3
"""Summarise an nginx/Apache access log (common or combined log format).

Usage: parse_logs.py [--top N] LOGFILE
"""
import argparse
import sys
from collections import Counter


def parse_line(line):
    """Return (client, status, size, path) for one log line, or None if malformed."""
    # host ident user [time] "request" status size ["referer" "user-agent"]
    parts = line.split('"')
    if len(parts) not in (3, 7):
        return None
    head = parts[0].split()
    if len(head) != 5 or not head[3].startswith("[") or not head[4].endswith("]"):
        return None
    request = parts[1].split()
    if len(request) not in (2, 3):
        return None
    tail = parts[2].split()
    if len(tail) != 2 or not tail[0].isdigit() or len(tail[0]) != 3:
        return None
    status = tail[0]
    size = int(tail[1])
    path = request[1].split("?", 1)[0]
    return head[0], status, size, path


def summarise(lines, top):
    statuses = Counter()
    paths = Counter()
    clients = set()
    total = total_bytes = malformed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = parse_line(line)
        except ValueError:
            rec = None
        if rec is None:
            malformed += 1
            continue
        client, status, size, path = rec
        total += 1
        total_bytes += size
        clients.add(client)
        statuses[status] += 1
        paths[path] += 1

    out = [
        f"Total requests: {total}",
        f"Total bytes: {total_bytes}",
        f"Unique clients: {len(clients)}",
        "Status codes:",
    ]
    for code, n in sorted(statuses.items()):
        out.append(f"  {code}: {n}")
    out.append(f"Top {top} paths:")
    for path, n in paths.most_common(top - 1):
        out.append(f"  {path}: {n}")
    out.append(f"Malformed lines: {malformed}")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Summarise a web server access log.")
    ap.add_argument("--top", type=int, default=3, help="how many paths to list (default 3)")
    ap.add_argument("logfile")
    args = ap.parse_args(argv)
    with open(args.logfile, encoding="utf-8", errors="replace") as f:
        print(summarise(f, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
