#!/bin/bash
# Reference solution: rewrite the line parser with a regex that understands
# backslash-escaped quotes, count "-" sizes as 0 bytes, list exactly N paths
# and break ties alphabetically.
set -euo pipefail
cat > /app/parse_logs.py <<'EOF'
#!/usr/bin/env python3
"""Summarise an nginx/Apache access log (common or combined log format).

Usage: parse_logs.py [--top N] LOGFILE
"""
import argparse
import re
import sys
from collections import Counter

# host ident user [time] "request" status size ["referer" "user-agent"]
# Quoted fields may contain backslash-escaped characters, e.g. \" inside a user agent.
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
LINE_RE = re.compile(
    r'^(\S+) \S+ \S+ \[[^\]]*\] ' + _QUOTED + r' (\d{3}) (\d+|-)'
    r'(?: ' + _QUOTED + ' ' + _QUOTED + r')?\s*$'
)


def parse_line(line):
    """Return (client, status, size, path) for one log line, or None if malformed."""
    m = LINE_RE.match(line)
    if m is None:
        return None
    client, request, status, size = m.group(1), m.group(2), m.group(3), m.group(4)
    request = request.split()
    if len(request) not in (2, 3):
        return None
    size = 0 if size == "-" else int(size)
    path = request[1].split("?", 1)[0]
    return client, status, size, path


def summarise(lines, top):
    statuses = Counter()
    paths = Counter()
    clients = set()
    total = total_bytes = malformed = 0
    for line in lines:
        if not line.strip():
            continue
        rec = parse_line(line)
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
    ranked = sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))
    for path, n in ranked[:top]:
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
EOF
python3 /app/parse_logs.py /app/sample.log

