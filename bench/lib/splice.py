#!/usr/bin/env python3
"""bench/lib/splice.py — put a scenario's markdown into bench/RESULTS.md.

    splice.py RESULTS.md NAME FILE

Replaces the text between `<!-- bench:NAME:begin -->` and
`<!-- bench:NAME:end -->` with FILE's contents. The markers live in the
"## Benchmark suite (make bench)" section, which is appended (with the
markers of the known scenarios, in order) when missing; markers of a new
NAME are added at the end of that section. Every other section stays as
it is.
"""
import re
import sys

SECTION = "## Benchmark suite (make bench)"
ORDER = ["machine", "pps", "conns", "table", "latency"]
INTRO = (
    "Refreshed by `make bench` (all scenarios) or `make bench SCENARIO=<name>` (one);\n"
    "bench/README.md explains the harness. Each scenario's figures are ratios within one run\n"
    "(its cases interleaved per repetition); the raw measurements are in `bench/data/<name>.csv`\n"
    "and the plots in `bench/plots/<name>.png`."
)


def markers(name):
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def main():
    path, name, body_path = sys.argv[1:4]
    text = open(path).read()
    body = open(body_path).read().strip("\n")
    if SECTION not in text:
        blocks = "\n\n".join("\n".join(markers(n)) for n in ORDER)
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{INTRO}\n\n{blocks}\n"
    begin, end = markers(name)
    if begin not in text:
        # At the end of the suite's section (before the next "## ").
        start = text.index(SECTION)
        nxt = re.search(r"^## ", text[start + len(SECTION):], re.M)
        at = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:at].rstrip("\n") + f"\n\n{begin}\n{end}\n\n" + text[at:].lstrip("\n")
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pat.sub(lambda _m: f"{begin}\n{body}\n{end}", text, count=1)
    open(path, "w").write(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
