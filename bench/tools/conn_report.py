#!/usr/bin/env python3
"""Render a benchmark scenario's CSV (scenario,case,metric,unit,rep,value)
into its Markdown section, for bench/scenarios/{conns,table,latency}.sh.

  conn_report.py median CSV CASE METRIC
      the median of CASE's METRIC rows ('' when there are none)
  conn_report.py table CSV TITLE SETUP TARGETS [NOTES]
      '### TITLE', the SETUP paragraph, a table of min / median / max per
      metric and case (both in order of first appearance) with the ratio of
      each median to the first case's (where it has the metric), then one
      line per target, then NOTES (optional) as a last paragraph. TARGETS holds one target per line:
        LABEL|CASE|METRIC|ge_ratio|GOAL|REF_CASE   median of CASE/REF per repetition >= GOAL
        LABEL|CASE|METRIC|le|GOAL|                 median(CASE) <= GOAL
        LABEL|CASE|METRIC|le_ratio|GOAL|REF_CASE   median of CASE/REF per repetition <= GOAL
      and is printed as "target LABEL: measured Y -> met/missed by Z". A
      ratio is paired: CASE's value over REF's in the same repetition (the
      two ran side by side, under the same load), the median of those, with
      their range.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from report import load, load_by_rep, paired_ratios  # noqa: E402  (bench/lib/report.py's CSV readers)




def med(values, case, metric):
    v = values.get((case, metric))
    return statistics.median(v) if v else None


def fmt(x):
    if x is None:
        return "–"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}".replace(",", "\u2009")
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(path, title, setup, targets, notes=""):
    cases, metrics, units, values = load(path)
    by_rep = load_by_rep(path)
    out = [f"### {title}", "", setup.strip(), ""]
    out.append("| metric | case | min | median | max | × first row |")
    out.append("|---|---|---|---|---|---|")
    for m in metrics:
        ref = med(values, cases[0], m)
        name = f"{m} ({units[m]})"
        for c in cases:
            v = values.get((c, m))
            if not v:
                continue
            md = statistics.median(v)
            ratio = f"{md / ref:.2f}" if ref else "–"
            out.append(f"| {name} | {c} | {fmt(min(v))} | {fmt(md)} | {fmt(max(v))} | {ratio} |")
            name = ""
    n = {len(v) for v in values.values()}
    out += [
        "",
        f"Repetitions per figure: {'/'.join(str(x) for x in sorted(n))}; × first row = median / the median of "
        f"the first case ({cases[0]}) for that metric (– where it has none).",
        "",
    ]
    for line in targets.strip().splitlines():
        if not line.strip():
            continue
        label, case, metric, kind, goal, ref = (line.split("|") + [""] * 6)[:6]
        # "ref:" lines compare with a ceiling the issue sets no target
        # against (the bare forwarders): shown, and said not to be targets.
        word = "target"
        if label.startswith("ref:"):
            word, label = "reference (not an issue target)", label[4:]
        goal = float(goal)
        y = med(values, case, metric)
        if kind in ("ge_ratio", "le_ratio"):
            ratios = paired_ratios(by_rep, case, metric, ref, metric)
            y = statistics.median(ratios) if ratios else None
            shown = (
                f"{y:.3f}× (median of {len(ratios)} paired repetitions; range {min(ratios):.2f}–{max(ratios):.2f})"
                if ratios
                else "nothing measured"
            )
            unit = "×"
        else:
            shown = f"{fmt(y)} {units.get(metric, '')}" if y is not None else "nothing"
            unit = " " + units.get(metric, "")
        if y is None:
            shown, verdict = "nothing", "not measured in this run"
        elif kind == "ge_ratio":
            verdict = "met" if y >= goal else f"missed by {goal - y:.3f}× ({(goal - y) / goal * 100:.1f} %)"
        else:
            verdict = "met" if y <= goal else f"missed by {fmt(y - goal)}{unit} ({(y - goal) / goal * 100:.1f} %)"
        out.append(f"- {word} {label}: measured {shown} → {verdict}")
    if notes.strip():
        out += ["", notes.strip()]
    print("\n".join(out).rstrip() + "\n")


def main():
    cmd = sys.argv[1]
    if cmd == "median":
        _, _, _, values = load(sys.argv[2])
        m = med(values, sys.argv[3], sys.argv[4])
        print("" if m is None else f"{m:.6g}")
    elif cmd == "table":
        table(*sys.argv[2:7])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
