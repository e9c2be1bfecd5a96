#!/usr/bin/env python3
"""bench/plot.py — a scenario's PNG from its CSV.

    plot.py CSV PNG

One panel per metric; in each, one bar per case: the median over the
repetitions, with a whisker from the minimum to the maximum. Cases keep
the CSV's order. Needs matplotlib (python3-matplotlib, scripts/setup.sh).
"""
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from report import load  # noqa: E402  (the CSV reader bench/lib/report.py shares)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, dst = sys.argv[1:3]
    cases, metrics, units, by_pair = load(src)
    scenario = next(csv.DictReader(open(src)))["scenario"]
    values = {}
    for (case, metric), vs in by_pair.items():
        values.setdefault(metric, {})[case] = vs
    fig, axes = plt.subplots(
        len(metrics), 1, figsize=(max(6, 0.9 * len(cases) + 2), 3.2 * len(metrics)), squeeze=False
    )
    for ax, m in zip(axes[:, 0], metrics):
        names = [c for c in cases if c in values[m]]
        med = [statistics.median(values[m][c]) for c in names]
        lo = [md - min(values[m][c]) for c, md in zip(names, med)]
        hi = [max(values[m][c]) - md for c, md in zip(names, med)]
        ax.bar(range(len(names)), med, yerr=[lo, hi], capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{m} ({units[m]})")
        ax.grid(axis="y", alpha=0.3)
    reps = max(len(v) for per in values.values() for v in per.values())
    fig.suptitle(f"{scenario}: median, whiskers min–max over {reps} repetition(s)")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main()
