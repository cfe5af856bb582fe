#!/usr/bin/env python3
"""The results table of tests/bench/peers.sh.

    table.py WORKDIR [--markdown FILE]

WORKDIR holds what peers.sh recorded:
  jobs.tsv     job <TAB> title <TAB> note                      (in run order)
  results.tsv  job <TAB> tool <TAB> rep <TAB> wall_s <TAB> user_s <TAB> sys_s <TAB> maxrss_kib <TAB> rc
  targets.tsv  job <TAB> peer tool <TAB> bound                  (ohbackup wall / peer wall <= bound)
  machine.txt  lines describing the machine (copied above the table)

Prints the table (Markdown, readable as text) on stdout; with --markdown FILE
also replaces the part of FILE between the markers
<!-- bench:peers:begin --> and <!-- bench:peers:end --> with it.

Each cell is the median over the timed repetitions (the warm-up run is not
recorded). The ratio column is median wall of ohbackup / median wall of the
peer, in the same run. A target is "met" when the ratio is at most its bound;
every ohbackup row is also held to the peak-RSS bound (32 MiB).
"""
import statistics
import sys

RSS_BOUND_KIB = 32 * 1024
BEGIN = "<!-- bench:peers:begin -->"
END = "<!-- bench:peers:end -->"


def read_tsv(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    rows.append(line.split("\t"))
    except FileNotFoundError:
        pass
    return rows


def fmt_s(v):
    if v is None:
        return "—"
    return "%.3f" % v if v < 1 else "%.2f" % v


def build(workdir):
    jobs = read_tsv(workdir + "/jobs.tsv")
    results = read_tsv(workdir + "/results.tsv")
    targets = {}
    for job, peer, bound in read_tsv(workdir + "/targets.tsv"):
        targets[(job, peer)] = float(bound)

    by = {}
    order = {}
    for job, tool, rep, wall, user, sys_, rss, rc in results:
        by.setdefault((job, tool), []).append((float(wall), float(user) + float(sys_), int(rss), int(rc)))
        order.setdefault(job, [])
        if tool not in order[job]:
            order[job].append(tool)

    out = []
    out.append("| job | tool | runs | wall s | CPU s | peak RSS MiB | ohbackup ÷ peer | target | verdict |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    missed = []
    for job, title, note in jobs:
        tools = order.get(job, [])
        if not tools:
            out.append("| %s | — | 0 | | | | | | not measured: %s |" % (title, note or "no runs"))
            continue
        med = {}
        for tool in tools:
            runs = by[(job, tool)]
            ok = [r for r in runs if r[3] == 0]
            failed = len(runs) - len(ok)
            if not ok:
                med[tool] = None
                continue
            med[tool] = (statistics.median(r[0] for r in ok), statistics.median(r[1] for r in ok),
                         statistics.median(r[2] for r in ok), len(ok), failed)
        ohb = next((t for t in tools if t.startswith("ohbackup")), None)
        if ohb:  # ohbackup's row first, whatever tool the rotation ran first
            tools = [ohb] + [t for t in tools if t != ohb]
        first = True
        for tool in tools:
            m = med[tool]
            cell_job = title if first else ""
            first = False
            if m is None:
                out.append("| %s | %s | 0 | | | | | | every run failed |" % (cell_job, tool))
                missed.append("%s: %s failed" % (title, tool))
                continue
            wall, cpu, rss, n, failed = m
            runs = "%d" % n + (" (+%d failed)" % failed if failed else "")
            ratio = target = verdict = ""
            if tool == ohb:
                target = "RSS < 32 MiB"
                if rss < RSS_BOUND_KIB:
                    verdict = "met"
                else:
                    verdict = "**missed**"
                    missed.append("%s: peak RSS %.1f MiB" % (title, rss / 1024))
                tool_cell = "**%s**" % tool
            else:
                tool_cell = tool
                if ohb and med.get(ohb):
                    r = med[ohb][0] / wall if wall > 0 else float("inf")
                    ratio = "%.2f×" % r
                    bound = targets.get((job, tool))
                    if bound is not None:
                        target = "≤ %.2f×" % bound
                        if r <= bound:
                            verdict = "met"
                        else:
                            verdict = "**missed**"
                            missed.append("%s: %.2f× %s (target ≤ %.2f×)" % (title, r, tool, bound))
            out.append("| %s | %s | %s | %s | %s | %.1f | %s | %s | %s |" % (
                cell_job, tool_cell, runs, fmt_s(wall), fmt_s(cpu), rss / 1024, ratio, target, verdict))
        if note:
            out.append("| | *%s* | | | | | | | |" % note)
    text = "\n".join(out) + "\n"
    if missed:
        text += "\nTargets missed in this run:\n\n" + "".join("- %s\n" % m for m in missed)
    else:
        text += "\nEvery target was met in this run.\n"
    return text


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    workdir = sys.argv[1]
    md = None
    if len(sys.argv) == 4 and sys.argv[2] == "--markdown":
        md = sys.argv[3]
    table = build(workdir)
    try:
        with open(workdir + "/machine.txt", encoding="utf-8") as f:
            machine = f.read()
    except FileNotFoundError:
        machine = ""
    section = machine + "\n" + table
    sys.stdout.write(section)
    if md:
        try:
            with open(md, encoding="utf-8") as f:
                doc = f.read()
        except FileNotFoundError:
            doc = "# Performance\n\n%s\n%s\n" % (BEGIN, END)
        if BEGIN not in doc or END not in doc:
            doc = doc.rstrip("\n") + "\n\n%s\n%s\n" % (BEGIN, END)
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        with open(md + ".tmp", "w", encoding="utf-8") as f:
            f.write(head + BEGIN + "\n" + section + END + tail)
        import os
        os.replace(md + ".tmp", md)


if __name__ == "__main__":
    main()
