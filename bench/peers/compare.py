#!/usr/bin/env python3
"""eddy beside its peers: runs every peer program on every workload, several
times, interleaved, and writes a markdown table and a chart.

Usually started through scripts/compare.sh, which installs the Debian packages
and builds first; this is the driver it ends in:

    compare.py --build-dir build-compare [--quick] [--runs K] [--reps R] ...

Each (workload, peer) process runs `<program> <workload> <N> <reps>` and prints
one line (bench/peers/README.md). A run goes through every workload, and for
each workload through every peer, in an order that rotates from run to run, so
that the peers of one workload are measured minutes apart at most and ratios
are taken within a run. A program that exits 2 does not implement the workload
(n/a); any other failure is reported, and makes the exit status 1.

Outputs in --out: runs.csv (every process), table.md, chart.svg. With
--publish (the default for a full run), README.md's block between the
`<!-- peers:begin -->` and `<!-- peers:end -->` markers is replaced by the
table, and the chart and runs.csv are copied to bench/peers/results/.
"""

import argparse
import csv
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")  # what --publish commits to
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- peers:begin", "<!-- peers:end -->"

# name, label, canonical N (WORKLOADS.md).
WORKLOADS = [
    ("call_soon", "call_soon (W1)", 1_000_000),
    ("chain", "chain (W2)", 1_000_000),
    ("threadsafe", "threadsafe (W3)", 1_000_000),
    ("threadsafe2", "threadsafe2 (W3b)", 1_000_000),
    ("timers", "timers (W4)", 1_000_000),
    ("timers_cancel", "timers_cancel (W4c)", 1_000_000),
    ("futures", "futures (W5)", 1_000_000),
    ("tasks", "tasks (W6)", 100_000),
    ("executor", "executor (W7)", 100_000),
    ("tcp_pingpong", "tcp_pingpong (W8)", 100_000),
    ("tcp_pipelined", "tcp_pipelined (W8)", 100_000),
]

# name, label, command (relative to the build dir, or a Python peer), colour.
PEERS = [
    ("eddy", "eddy", ["bench/eddy-workloads"], "#c0392b"),
    ("libuv", "raw libuv (C)", ["bench/peers/libuv-workloads"], "#2c7fb8"),
    ("asio", "Boost.Asio", ["bench/peers/asio-workloads"], "#41ab5d"),
    ("baseline", "C++ baseline", ["bench/peers/baseline-workloads"], "#969696"),
    ("uvloop", "uvloop", ["python", "uvloop"], "#fd8d3c"),
    ("asyncio", "asyncio", ["python", "asyncio"], "#8c6bb1"),
]
PYTHON_PEERS = {"uvloop", "asyncio"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/compare.sh",
        description="eddy beside asyncio, uvloop, Boost.Asio, raw libuv and a plain C++ "
        "baseline on the workloads of bench/peers/README.md: median ns/op, "
        "ratio to eddy, run-to-run spread, and a chart.")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build-compare"),
                   help="meson build dir holding the programs (default: build-compare)")
    p.add_argument("--quick", action="store_true",
                   help="two runs at N/10 for every peer: a look in under a minute "
                   "(not published)")
    p.add_argument("--runs", type=int, help="interleaved runs (default 3; --quick: 2)")
    # 5, as ../shared/peers/run.sh: of 3, the median is the second repetition,
    # which for several programs is still warming up (eddy's W6 page-faults
    # in it as glibc moves its vectors onto the heap: about 5% slower).
    p.add_argument("--reps", type=int, default=5,
                   help="repetitions inside each process; its median is the run's value "
                   "(default 5)")
    p.add_argument("--peers", help="comma-separated subset of: " + ",".join(n for n, *_ in PEERS))
    p.add_argument("--workloads",
                   help="comma-separated subset of: " + ",".join(n for n, *_ in WORKLOADS))
    p.add_argument("--n-scale", type=int, help="divide every N by this (default 1; --quick: 10)")
    p.add_argument("--py-scale", type=int, default=10,
                   help="further divide N for the Python peers (default 10, as WORKLOADS.md)")
    p.add_argument("--timeout", type=float, default=180, help="seconds per process (default 180)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter for asyncio/uvloop (default: Debian's, which has uvloop)")
    p.add_argument("--out", help="output dir (default: <build-dir>/compare)")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction,
                   help="update README.md and bench/peers/results/ (default: only for a "
                   "full run: every peer and workload, canonical N)")
    p.add_argument("--chart", action=argparse.BooleanOptionalAction, default=True,
                   help="draw chart.svg with matplotlib (default: yes)")
    args = p.parse_args(argv)

    args.runs = args.runs if args.runs is not None else (2 if args.quick else 3)
    args.n_scale = args.n_scale if args.n_scale is not None else (10 if args.quick else 1)
    args.peers = pick(args.peers, [n for n, *_ in PEERS], "peer", p)
    args.workloads = pick(args.workloads, [n for n, *_ in WORKLOADS], "workload", p)
    for name in ("runs", "reps", "n_scale", "py_scale"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    full = (len(args.peers) == len(PEERS) and len(args.workloads) == len(WORKLOADS)
            and args.n_scale == 1)
    if args.publish is None:
        args.publish = full and not args.quick
    args.out = args.out or os.path.join(args.build_dir, "compare")
    return args


def pick(text, known, what, parser):
    if not text:
        return list(known)
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    for c in chosen:
        if c not in known:
            parser.error(f"unknown {what} '{c}' (known: {', '.join(known)})")
    return [k for k in known if k in chosen]  # in the table's order


def command_of(peer, args):
    _, _, cmd, _ = next(p for p in PEERS if p[0] == peer)
    if cmd[0] == "python":
        return [args.python, os.path.join(HERE, "asyncio_workloads.py"), cmd[1]]
    return [os.path.join(args.build_dir, cmd[0])]


def n_of(workload, peer, args):
    n = next(n for name, _, n in WORKLOADS if name == workload) // args.n_scale
    if peer in PYTHON_PEERS:
        n //= args.py_scale
    return max(n, 1)


def run_one(workload, peer, args):
    """Runs one process; returns a row for runs.csv."""
    n = n_of(workload, peer, args)
    row = {"workload": workload, "peer": peer, "n": n, "reps": args.reps, "status": "failed",
           "ns_per_op": "", "samples_s": "", "wall_s": ""}
    cmd = command_of(peer, args) + [workload, str(n), str(args.reps)]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        row["error"] = f"timed out after {args.timeout:.0f} s"
        return row
    except OSError as e:
        row["error"] = str(e)
        return row
    row["wall_s"] = f"{time.monotonic() - start:.2f}"
    if proc.returncode == 2:
        row["status"] = "n/a"
        return row
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) != 6 or fields[:2] != [workload, peer]:
        row["error"] = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return row
    row["status"] = "ok"
    row["ns_per_op"] = fields[3]
    row["samples_s"] = fields[5].removeprefix("samples_s=").replace(",", ";")
    return row


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    system = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    system = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {system}"


def package_version(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ".".join(out.split("+")[0].split("-")[0].split(".")[:3]) or "?"


def build_info(build_dir):
    """eddy's version, the C++ compiler and the build type, from meson's introspection."""
    def load(name):
        try:
            with open(os.path.join(build_dir, "meson-info", name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    project = load("intro-projectinfo.json") or {}
    options = {o["name"]: o["value"] for o in load("intro-buildoptions.json") or []}
    compiler = "?"
    for target in load("intro-targets.json") or []:
        for source in target.get("target_sources", []):
            if source.get("language") == "cpp" and source.get("compiler"):
                try:
                    compiler = subprocess.run(source["compiler"] + ["--version"],
                                              capture_output=True, text=True,
                                              timeout=10).stdout.splitlines()[0]
                except (OSError, IndexError, subprocess.TimeoutExpired):
                    pass
                break
        if compiler != "?":
            break
    try:
        commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    build = f"meson {options.get('buildtype', '?')} build (-O{options.get('optimization', '?')})"
    return (f"eddy {project.get('version', '?')}" + (f" ({commit})" if commit else "")
            + f", {compiler}, {build}")


def fmt_ns(v):
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def fmt_ratio(r):
    if r >= 100:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.0f}×"
    return f"{r:.2f}×" if r < 1 else f"{r:.1f}×"


def half_range_pct(values, center):
    return (max(values) - min(values)) / 2 / center * 100


def summarize(rows, args):
    """(workload, peer) -> {median, low, high, spread, ratio} or {status}."""
    cells = {}
    for wl in args.workloads:
        eddy_by_run = {r["run"]: float(r["ns_per_op"]) for r in rows
                       if r["workload"] == wl and r["peer"] == "eddy" and r["status"] == "ok"}
        for peer in args.peers:
            mine = [r for r in rows if r["workload"] == wl and r["peer"] == peer]
            ok = [r for r in mine if r["status"] == "ok"]
            if not ok:
                cells[(wl, peer)] = {"status": "n/a" if any(r["status"] == "n/a" for r in mine)
                                     else "failed"}
                continue
            values = [float(r["ns_per_op"]) for r in ok]
            med = statistics.median(values)
            samples = [float(s) for s in ok[0]["samples_s"].split(";")]
            if len(values) > 1:
                spread = half_range_pct(values, med)
            elif len(samples) > 1:  # one run: the spread of its in-process samples
                spread = half_range_pct(samples, statistics.median(samples))
            else:  # one sample: no spread to speak of
                spread = None
            ratios = [float(r["ns_per_op"]) / eddy_by_run[r["run"]] for r in ok
                      if r["run"] in eddy_by_run and peer != "eddy"]
            cells[(wl, peer)] = {
                "status": "ok", "median": med, "low": min(values), "high": max(values),
                "spread": spread, "ratio": statistics.median(ratios) if ratios else None,
                "failed_runs": len(mine) - len(ok) - sum(r["status"] == "n/a" for r in mine)}
    return cells


def plural(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


def markdown(cells, args, info):
    labels = {n: label for n, label, *_ in PEERS}
    wl_labels = {n: label for n, label, _ in WORKLOADS}
    n_text = "canonical N" if args.n_scale == 1 else f"N/{args.n_scale}"
    if PYTHON_PEERS & set(args.peers):
        n_text += f" (Python peers N/{args.n_scale * args.py_scale})"
    spreads = sorted(c["spread"] for c in cells.values()
                     if c["status"] == "ok" and c["spread"] is not None)
    spread_of = ("half the run-to-run range of the runs' values" if args.runs > 1
                 else "half the range of the in-process repetitions")
    lines = [
        f"- **Machine:** {info['machine']}; load average {info['load_before']:.1f} before, "
        f"{info['load_after']:.1f} after.",
        f"- **Date:** {info['date']}. **Build:** {info['build']}; {info['versions']}.",
        f"- **Method:** {plural(args.runs, 'run')}, peers interleaved, each program "
        f"{plural(args.reps, 'repetition')} in one process; {n_text}.",
    ]
    if spreads:
        lines.append(f"- **Spread** ({spread_of}): ±{statistics.median(spreads):.0f}% for the "
                     f"median cell, ±{spreads[-1]:.0f}% at worst.")
    lines += [
        "",
        "| workload | " + " | ".join(labels[p] for p in args.peers) + " |",
        "|---|" + "---:|" * len(args.peers),
    ]
    for wl in args.workloads:
        row = []
        for peer in args.peers:
            c = cells[(wl, peer)]
            if c["status"] != "ok":
                row.append(c["status"])
                continue
            text = fmt_ns(c["median"])
            if c["spread"] is not None:
                text += f" ±{c['spread']:.0f}%"
            if peer == "eddy":
                text = f"**{text}**"
            elif c["ratio"] is not None:
                text += f" ({fmt_ratio(c['ratio'])})"
            if c["failed_runs"]:
                text += f" ({plural(c['failed_runs'], 'run')} failed)"
            row.append(text)
        lines.append(f"| {wl_labels[wl]} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Cells: nanoseconds per operation (lower is better), the median over the runs of each "
        f"process's median, ± {spread_of}, in % of the median. (r×): the peer's time ÷ "
        "eddy's, taken within each run, then the median: above 1× eddy is faster, below 1× the "
        "peer is. n/a: the program does not implement the workload yet.",
    ]
    return "\n".join(lines) + "\n"


def chart(cells, args, info, path):
    import matplotlib  # Debian's python3-matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small, diffable
    plt.rcParams["svg.hashsalt"] = "eddy-peers"  # stable ids from run to run
    labels = {n: label for n, label, *_ in PEERS}
    colours = {n: colour for n, _, _, colour in PEERS}
    wl_labels = {n: label for n, label, _ in WORKLOADS}
    peers, workloads = args.peers, args.workloads
    bar = 0.8 / len(peers)
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.62 * len(workloads) * max(len(peers), 3) / 6 * 1.6))
    for j, peer in enumerate(peers):
        ys, xs, lows, highs = [], [], [], []
        for i, wl in enumerate(workloads):
            c = cells[(wl, peer)]
            y = i + (j - (len(peers) - 1) / 2) * bar
            if c["status"] != "ok":
                if peer == "eddy":
                    ax.text(1.2, y, "eddy: " + c["status"], va="center", fontsize=7,
                            color=colours[peer])
                continue
            ys.append(y)
            xs.append(c["median"])
            lows.append(c["median"] - c["low"])
            highs.append(c["high"] - c["median"])
        ax.barh(ys, xs, height=bar * 0.9, color=colours[peer], label=labels[peer],
                xerr=[lows, highs] if args.runs > 1 else None,
                error_kw={"elinewidth": 0.7, "capsize": 1.5, "ecolor": "#333333"})
    ax.set_xscale("log")
    ax.set_xlim(left=1)
    ax.set_yticks(range(len(workloads)))
    ax.set_yticklabels([wl_labels[w] for w in workloads])
    ax.invert_yaxis()
    ax.set_xlabel("nanoseconds per operation (log scale, lower is better)")
    ax.grid(axis="x", which="major", linewidth=0.4, color="#cccccc")
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_title(f"eddy beside its peers — {info['date']}, {info['machine']}\n"
                 f"median of {plural(args.runs, 'run')}" + (", whiskers: min–max of the runs"
                                                    if args.runs > 1 else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def replace_readme_block(table_md):
    with open(README) as f:
        text = f.read()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise SystemExit(f"compare: {README} has no '{BEGIN} ... {END}' block to replace")
    begin = text.index("\n", begin) + 1
    block = table_md + "\n![eddy beside its peers, ns per op](bench/peers/results/chart.svg)\n"
    with open(README, "w") as f:
        f.write(text[:begin] + block + text[end:])


def main(argv):
    args = parse_args(argv)
    for peer in args.peers:
        program = command_of(peer, args)[0]
        if not os.access(program, os.X_OK):
            raise SystemExit(f"compare: no program for {peer}: {program} (build it first, "
                             "as scripts/compare.sh does)")
    os.makedirs(args.out, exist_ok=True)
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "build": build_info(args.build_dir),
            "load_before": os.getloadavg()[0]}
    versions = [f"libuv {package_version('libuv1-dev')}"]
    if "asio" in args.peers:
        versions.append(f"Boost {package_version('libboost-dev')}")
    if PYTHON_PEERS & set(args.peers):
        versions.append(f"Python {package_version('python3')}")
    if "uvloop" in args.peers:
        versions.append(f"uvloop {package_version('python3-uvloop')}")
    info["versions"] = ", ".join(versions)

    rows, unsupported = [], set()
    started = time.monotonic()
    print(f"compare: {args.runs} run(s) x {len(args.workloads)} workload(s) x "
          f"{len(args.peers)} peer(s), {args.reps} repetition(s) each; N/{args.n_scale}, "
          f"Python N/{args.n_scale * args.py_scale}", file=sys.stderr)
    for run in range(args.runs):
        for k, wl in enumerate(args.workloads):
            shift = (run + k) % len(args.peers)  # rotate who goes first
            for peer in args.peers[shift:] + args.peers[:shift]:
                if (wl, peer) in unsupported:
                    rows.append({"run": run + 1, "workload": wl, "peer": peer,
                                 "n": n_of(wl, peer, args), "reps": args.reps, "status": "n/a",
                                 "ns_per_op": "", "samples_s": "", "wall_s": ""})
                    continue
                row = run_one(wl, peer, args)
                row["run"] = run + 1
                rows.append(row)
                note = {"ok": f"{row['ns_per_op']:>10} ns/op", "n/a": "       n/a"}.get(
                    row["status"], "     FAILED: " + row.get("error", ""))
                print(f"  [{run + 1}/{args.runs}] {wl:<14} {peer:<9}{note}", file=sys.stderr)
                if row["status"] == "n/a":
                    unsupported.add((wl, peer))
    info["load_after"] = os.getloadavg()[0]

    fields = ["run", "workload", "peer", "n", "reps", "status", "ns_per_op", "samples_s", "wall_s"]
    runs_csv = os.path.join(args.out, "runs.csv")
    with open(runs_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    cells = summarize(rows, args)
    table_md = markdown(cells, args, info)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table_md)
    chart_svg = os.path.join(args.out, "chart.svg")
    if args.chart:
        try:
            chart(cells, args, info, chart_svg)
        except ImportError:
            print(f"compare: no chart: matplotlib is missing for {sys.executable} "
                  "(apt-get install python3-matplotlib)", file=sys.stderr)
            args.chart = False
    print(table_md)
    print(f"compare: {time.monotonic() - started:.0f} s; {runs_csv}, table.md"
          + (", chart.svg" if args.chart else "") + f" in {args.out}", file=sys.stderr)

    if args.publish:
        if not args.chart:
            raise SystemExit("compare: --publish needs the chart (matplotlib)")
        os.makedirs(RESULTS, exist_ok=True)
        shutil.copyfile(chart_svg, os.path.join(RESULTS, "chart.svg"))
        shutil.copyfile(runs_csv, os.path.join(RESULTS, "runs.csv"))
        replace_readme_block(table_md)
        print("compare: README.md and bench/peers/results/ updated", file=sys.stderr)

    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        print(f"compare: {len(failed)} process(es) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
