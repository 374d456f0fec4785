#!/bin/bash
# Reference solution: write the complete CLI.
set -euo pipefail
cat > /app/csvstats.py <<'EOF'
#!/usr/bin/env python3
"""csvstats: per-column statistics for a CSV file.

Usage: csvstats.py [--column NAME]... [--delimiter CHAR] [--format {text,json}]
                   [--precision N] FILE
"""
import argparse
import csv
import json
import re
import sys

NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class InputError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"csvstats: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    ap = _Parser(prog="csvstats", description="Per-column statistics for a CSV file.")
    ap.add_argument("--column", action="append", default=[], metavar="NAME",
                    help="report only this column (repeatable, in the given order)")
    ap.add_argument("--delimiter", default=",", metavar="CHAR",
                    help="field delimiter: one character, or \\t for tab (default ,)")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--precision", type=int, default=2, metavar="N",
                    help="digits after the decimal point in text output (0-10, default 2)")
    ap.add_argument("file", metavar="FILE", help="CSV file, or - for standard input")
    args = ap.parse_args(argv)
    if args.delimiter == "\\t":
        args.delimiter = "\t"
    if len(args.delimiter) != 1 or args.delimiter in ('"', "\r", "\n"):
        ap.error(f"invalid delimiter: {args.delimiter!r}")
    if not 0 <= args.precision <= 10:
        ap.error(f"precision must be between 0 and 10, got {args.precision}")
    return args


def read_rows(stream, delimiter):
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
        if header is None:
            raise InputError("empty input: no header row")
        if len(set(header)) != len(header):
            raise InputError("duplicate column name in header")
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"line {reader.line_num}: expected {len(header)} fields, "
                                 f"got {len(row)}")
            rows.append(row)
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: {exc}") from None
    return header, rows


def column_stats(name, values):
    present = [v.strip() for v in values if v.strip()]
    missing = len(values) - len(present)
    if all(NUMBER_RE.match(v) for v in present):
        nums = [float(v) for v in present]
        return {"name": name, "type": "numeric", "count": len(nums), "missing": missing,
                "mean": sum(nums) / len(nums) if nums else None,
                "min": min(nums) if nums else None,
                "max": max(nums) if nums else None}
    return {"name": name, "type": "text", "count": len(present), "missing": missing,
            "mean": None, "min": None, "max": None}


def format_text(stats, precision):
    lines = []
    for s in stats:
        head = f"{s['name']}: type={s['type']} count={s['count']} missing={s['missing']}"
        if s["type"] == "numeric":
            parts = ["-" if s[k] is None else f"{s[k]:.{precision}f}"
                     for k in ("mean", "min", "max")]
            head += " mean={} min={} max={}".format(*parts)
        lines.append(head)
    return "".join(line + "\n" for line in lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.file == "-":
            header, rows = read_rows(sys.stdin, args.delimiter)
        else:
            try:
                f = open(args.file, newline="", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"cannot read {args.file}: {exc.strerror}") from None
            with f:
                header, rows = read_rows(f, args.delimiter)
    except (InputError, UnicodeDecodeError) as exc:
        print(f"csvstats: error: {exc}", file=sys.stderr)
        return 2
    selected = list(dict.fromkeys(args.column)) or header
    for name in selected:
        if name not in header:
            print(f"csvstats: error: unknown column: {name}", file=sys.stderr)
            return 2
    stats = [column_stats(name, [row[header.index(name)] for row in rows]) for name in selected]
    if args.format == "json":
        sys.stdout.write(json.dumps({"columns": stats}, indent=2) + "\n")
    else:
        sys.stdout.write(format_text(stats, args.precision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
EOF
chmod 755 /app/csvstats.py
python3 /app/csvstats.py /app/data/sales.csv

