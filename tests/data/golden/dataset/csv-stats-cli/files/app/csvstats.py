#!/usr/bin/env python3
"""csvstats: per-column statistics for a CSV file.

Not implemented yet -- see the task description for the required behaviour.
"""
import sys


def main(argv=None):
    print("csvstats: not implemented", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
