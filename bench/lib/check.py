#!/usr/bin/env python3
"""bench/lib/check.py — fail unless a scenario's CSV holds measurements.

    check.py CSV [METRIC]

Exits non-zero when the file is missing, its header is not
scenario,case,metric,unit,rep,value, it has no rows, or any value of
METRIC (if given; else of every metric whose unit is pps or /s) is zero
or negative. `make bench-smoke` runs it on the smoke's CSV.
"""
import csv
import sys

HEADER = ["scenario", "case", "metric", "unit", "rep", "value"]


def main():
    path = sys.argv[1]
    metric = sys.argv[2] if len(sys.argv) > 2 else None
    with open(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != HEADER:
            sys.exit(f"check.py: {path}: header {header}, want {HEADER}")
        rows = [dict(zip(HEADER, r)) for r in reader]
    if not rows:
        sys.exit(f"check.py: {path}: no measurements")
    bad = [
        r
        for r in rows
        if (r["metric"] == metric if metric else r["unit"] in ("pps", "/s", "conns/s", "req/s"))
        and float(r["value"]) <= 0
    ]
    if bad:
        sys.exit(f"check.py: {path}: zero or negative values: {bad}")
    cases = sorted({r["case"] for r in rows})
    print(f"check.py: {path}: {len(rows)} rows, cases {' '.join(cases)}")


if __name__ == "__main__":
    main()
