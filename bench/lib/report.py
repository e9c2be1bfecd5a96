#!/usr/bin/env python3
"""bench/lib/report.py — a scenario's markdown section from its CSV.

    report.py CSV --title T --setup TEXT [--label CASE=TEXT]...
              [--target "A/metric >= F B/metric"]... [--target "A/metric >= F"]...

The CSV has the header scenario,case,metric,unit,rep,value. Prints a
"### T" section: the set-up paragraph, one table of min / median / max per
case and metric (cases in the CSV's order, grouped by metric) with the
median's ratio to the first case's median of that metric, then each target
as "target X: measured Y → met/missed by Z". A target with B compares F
with the median over repetitions of A's value ÷ B's value in the same
repetition (paired: both ran side by side, under the same load), and shows
the range of those per-repetition ratios; without B it compares the median
of A's metric with F itself (an absolute floor).
"""
import argparse
import csv
import re
import statistics
import sys


def load(path):
    rows = list(csv.DictReader(open(path)))
    if not rows:
        sys.exit(f"report.py: {path} has no measurements")
    cases, metrics, units, values = [], [], {}, {}
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
        if r["metric"] not in metrics:
            metrics.append(r["metric"])
        units[r["metric"]] = r["unit"]
        values.setdefault((r["case"], r["metric"]), []).append(float(r["value"]))
    return cases, metrics, units, values


def load_by_rep(path):
    """Each value keyed by (case, metric, repetition)."""
    return {(r["case"], r["metric"], r["rep"]): float(r["value"]) for r in csv.DictReader(open(path))}


def paired_ratios(by_rep, ca, ma, cb, mb):
    """A's value over B's in each repetition where both were measured."""
    out = []
    for (c, m, rep), va in by_rep.items():
        if c != ca or m != ma:
            continue
        vb = by_rep.get((cb, mb, rep))
        if vb:
            out.append(va / vb)
    return out


def fmt(v):
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3f} M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f} k"
    if v == int(v):
        return str(int(v))
    return f"{v:.3g}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--title", required=True)
    ap.add_argument("--setup", required=True)
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--target", action="append", default=[])
    a = ap.parse_args()
    cases, metrics, units, values = load(a.csv)
    by_rep = load_by_rep(a.csv)
    labels = dict(l.split("=", 1) for l in a.label)
    med = {k: statistics.median(v) for k, v in values.items()}
    out = [f"### {a.title}", "", a.setup.strip(), ""]
    out.append(f"| case | metric | min | median | max | × {cases[0]} |")
    out.append("|---|---|---|---|---|---|")
    for m in metrics:
        base = med.get((cases[0], m))
        for c in cases:
            v = values.get((c, m))
            if not v:
                continue
            ratio = f"{med[(c, m)] / base:.2f}" if base else "–"
            name = f"{c} ({labels[c]})" if c in labels else c
            out.append(
                f"| {name} | {m} ({units[m]}) | {fmt(min(v))} | {fmt(med[(c, m)])} "
                f"| {fmt(max(v))} | {ratio} |"
            )
    out.append("")
    reps = max(len(v) for v in values.values())
    out.append(f"{reps} repetition(s) per case, cases interleaved within each repetition.")
    out.append("")
    spec = re.compile(r"^\s*([\w.-]+)/([\w.-]+)\s*>=\s*([\d.]+)\s*(?:([\w.-]+)/([\w.-]+))?\s*$")
    for t in a.target:
        m = spec.match(t)
        if not m:
            sys.exit(f"report.py: bad --target '{t}'")
        ca, ma, f, cb, mb = m.groups()
        f = float(f)
        va = med.get((ca, ma))
        if cb:
            what = f"{ca} ≥ {f:g}× {cb} ({ma})"
            ratios = paired_ratios(by_rep, ca, ma, cb, mb or ma)
            if not ratios:
                out.append(f"- target {what}: not measured")
                continue
            got = statistics.median(ratios)
            verdict = "met" if got >= f else "missed"
            spread = (
                f" (median of {len(ratios)} paired repetitions; "
                f"range {min(ratios):.2f}–{max(ratios):.2f})"
            )
            out.append(
                f"- target {what}: measured {got:.2f}×{spread} → {verdict} by {abs(got - f):.2f}"
                + ("" if got >= f else f" ({(f - got) / f * 100:.0f} % short)")
            )
        else:
            what = f"{ca} {ma} ≥ {fmt(f)} {units.get(ma, '')}"
            if va is None:
                out.append(f"- target {what}: not measured")
                continue
            verdict = "met" if va >= f else "missed"
            out.append(f"- target {what}: measured {fmt(va)} → {verdict} by {fmt(abs(va - f))}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
