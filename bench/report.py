#!/usr/bin/env python3
"""Aggregate a bench/run.sh results directory into BENCHMARKS.md and an SVG chart.

Usage: python3 report.py RESULTS_DIR [--out BENCHMARKS.md] [--svg plot.svg]

Standard library only. RESULTS_DIR holds meta.txt, raw/<scenario>__<server>__rep<N>.json
(one loadgen JSON object each) with a matching .status file ("ok", "skipped: ...",
"failed: ..."), and optionally build_size.json from build_size.sh.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from xml.sax.saxutils import escape

SERVERS = [
    "mio",
    "tokio",
    "sockloop-select",
    "sockloop-poll",
    "sockloop-epoll",
    "asyncore-select",
    "asyncore-poll",
    "asyncio",
]
BASELINE = "mio"

# name -> (title, unit of the headline rate, what one "op" is)
SCENARIOS = {
    "pp1": ("Ping-pong, 1 connection, 64 B messages", "msgs", "message"),
    "pp100": ("Ping-pong, 100 connections, 64 B messages", "msgs", "message"),
    "pp1000": ("Ping-pong, 1000 connections, 64 B messages", "msgs", "message"),
    "bulk": ("Bulk, 1 connection, 64 KiB chunks (16 in flight)", "mb", "64 KiB chunk"),
    "pp10": ("Ping-pong, 10 active connections, 64 B messages", "msgs", "message"),
    "pp10_idle10k": (
        "Ping-pong, 10 active connections + 10,000 idle, 64 B messages",
        "msgs",
        "message",
    ),
    "churn": ("Churn: connect, one 64 B echo, close (10 concurrent)", "conns", "connection"),
}
# The optional multi-core scenarios (run.sh SCENARIOS=scaling): an unpinned
# server, two load generators with half the connections each.
SCALING = {
    "scale100": ("Scaling, 2 load generators × 50 connections, 64 B ping-pong", 100),
    "scale1000": ("Scaling, 2 load generators × 500 connections, 64 B ping-pong", 1000),
}
SCALING_SERVERS = ["mio", "tokio", "sockloop-epoll", "sockloop-epoll-t2"]
CHART_SCENARIO = "pp100"
CLIENT_BOUND = 0.90  # client core busy fraction from which a row is flagged
OTHER_LOAD = 0.10  # CPU (in cores) used by other processes from which a row is flagged

RAW_RE = re.compile(r"^(?P<sc>.+?)__(?P<srv>.+?)__rep(?P<rep>\d+)\.(?P<ext>json|status)$")


def read_meta(path):
    meta = {}
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    meta[k] = v
    except OSError:
        pass
    return meta


def load_runs(raw_dir):
    """{(scenario, server): {rep: {"status": str, "data": dict|None}}}"""
    runs = {}
    for name in sorted(os.listdir(raw_dir)):
        m = RAW_RE.match(name)
        if not m:
            continue
        key = (m["sc"], m["srv"])
        rep = runs.setdefault(key, {}).setdefault(int(m["rep"]), {"status": "", "data": None})
        path = os.path.join(raw_dir, name)
        with open(path) as f:
            text = f.read().strip()
        if m["ext"] == "status":
            rep["status"] = text
        elif text:
            try:
                rep["data"] = json.loads(text.splitlines()[-1])
            except ValueError:
                rep["data"] = None
    return runs


class Cell:
    """Medians over the valid repetitions of one (scenario, server) pair."""

    def __init__(self, reps):
        self.reps = reps
        self.valid = [
            r["data"]
            for r in reps.values()
            if r["status"] == "ok" and r["data"] and not r["data"].get("setup_failed")
        ]
        self.failed = [r["status"] or "failed: no status" for r in reps.values()
                       if r["status"] != "ok" and not r["status"].startswith("skipped")]
        self.failed += ["failed: loadgen setup" for r in reps.values()
                        if r["status"] == "ok" and r["data"] and r["data"].get("setup_failed")]
        skipped = [r["status"] for r in reps.values() if r["status"].startswith("skipped")]
        self.skipped = skipped[0][len("skipped: "):] if skipped and not self.valid else None
        self.errors = sum(int(d.get("errors") or 0) for d in self.valid)
        self.mismatched = sum(int(d.get("mismatched_bytes") or 0) for d in self.valid)

    def med(self, key):
        vals = [d[key] for d in self.valid if d.get(key) is not None]
        return statistics.median(vals) if vals else None

    def rate(self, unit):
        return self.med("mb_per_sec" if unit == "mb" else "msgs_per_sec")

    def spread(self, unit):
        """(max - min) / median of the headline rate over the valid reps."""
        key = "mb_per_sec" if unit == "mb" else "msgs_per_sec"
        vals = [d[key] for d in self.valid if d.get(key) is not None]
        med = statistics.median(vals) if vals else 0
        if len(vals) < 2 or not med:
            return None
        return (max(vals) - min(vals)) / med

    def marks(self):
        m = ""
        if (self.med("client_core_busy") or 0) >= CLIENT_BOUND:
            m += "†"
        if (self.med("other_cpu_util") or 0) >= OTHER_LOAD:
            m += "‡"
        return m


def fmt_rate(v, unit):
    if v is None:
        return "–"
    if unit == "mb":
        return f"{v:,.0f} MB/s" if v >= 100 else f"{v:,.1f} MB/s"
    return f"{v:,.0f}/s"


def fmt_num(v, digits=1):
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_pct(v):
    return "–" if v is None else f"{100 * v:.0f}%"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def fmt_bytes(n):
    if n is None:
        return "–"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / 1024:.0f} KiB"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    u = platform.uname()
    return {
        "nproc": sh(["nproc"]),
        "cpu": model,
        "kernel": f"{u.system} {u.release} {u.machine}",
        "rustc": sh(["rustc", "--version"]),
        "python": sh(["python3", "--version"]),
    }


def svg_chart(cells, path):
    """Horizontal bars: server CPU µs per message at CHART_SCENARIO."""
    rows = []
    for srv in SERVERS:
        c = cells.get((CHART_SCENARIO, srv))
        v = c.med("server_cpu_us_per_msg") if c else None
        rows.append((srv, v))
    present = [v for _, v in rows if v is not None]
    vmax = max(present) if present else 1.0
    title = "Server CPU per message, 100 connections of 64 B ping-pong (lower is better)"
    left, bar_w, bar_h, gap, top = 150, 460, 22, 8, 44
    width = left + bar_w + 110
    height = top + len(rows) * (bar_h + gap) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (srv, v) in enumerate(rows):
        y = top + i * (bar_h + gap)
        out.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{escape(srv)}</text>')
        if v is None:
            out.append(f'<text x="{left + 4}" y="{y + bar_h * 0.7}" fill="#888">not measured</text>')
            continue
        w = max(1.0, bar_w * v / vmax)
        color = "#555555" if srv == BASELINE else ("#1f77b4" if srv.startswith("sockloop") else "#ff7f0e")
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{left + w + 6}" y="{y + bar_h * 0.7}">{v:.1f} µs</text>')
    axis_y = top + len(rows) * (bar_h + gap)
    out.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{axis_y}" stroke="black"/>')
    out.append(
        f'<text x="10" y="{axis_y + 24}" fill="#444" font-size="12">Server process user+sys CPU '
        f'per echoed message, median of repetitions. Grey: mio; blue: sockloop.</text>'
    )
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--svg", default=None)
    args = ap.parse_args()

    meta = read_meta(os.path.join(args.results, "meta.txt"))
    runs = load_runs(os.path.join(args.results, "raw"))
    if not runs:
        sys.exit(f"report.py: no results under {args.results}/raw")
    cells = {k: Cell(v) for k, v in runs.items()}
    servers = [s for s in SERVERS if any(k[1] == s for k in cells)]
    # Servers with no data at all (e.g. sockloop before its example builds)
    # are listed once instead of filling every table with "skipped" rows.
    absent = [s for s in servers
              if all(c.skipped and not c.valid for k, c in cells.items() if k[1] == s)]
    servers = [s for s in servers if s not in absent]
    scenarios = [s for s in SCENARIOS if any(k[0] == s for k in cells)]
    scaling = [s for s in SCALING if any(k[0] == s for k in cells)]
    mach = machine()

    svg_rel = None
    if args.svg and CHART_SCENARIO in scenarios:
        svg_chart(cells, args.svg)
        out_dir = os.path.dirname(os.path.abspath(args.out))
        svg_rel = os.path.relpath(os.path.abspath(args.svg), out_dir)

    L = []
    w = L.append
    w("# sockloop benchmarks")
    w("")
    w("Echo servers over TCP loopback, side by side: sockloop's tuned echo server "
      "(`bench/src/bin/sockloop_echo.rs`: `examples/echo_server.rs` with a shared read buffer, "
      "`TCP_NODELAY` and back-pressure; select, poll and epoll backends) against a hand-written mio server (the baseline), "
      "tokio, CPython's asyncore and asyncio. Generated by `bench/run.sh` and `bench/report.py`; "
      "do not edit by hand.")
    w("")
    w("Reproduce (from the repository root):")
    w("")
    w("```sh")
    w(meta.get("command", "cd bench && ./run.sh"))
    w("```")
    w("")
    note = meta.get("sockloop_note")
    if note:
        w(f"> **Note:** {note}")
        w("")
    if absent:
        w("Not measured in this run: " + ", ".join(f"`{s}`" for s in absent) + ".")
        w("")
    w("## Machine")
    w("")
    w(f"- CPUs: {mach['nproc']} × {mach['cpu']}")
    w(f"- Kernel: {mach['kernel']}")
    w(f"- {mach['rustc']}; {mach['python']}")
    if scenarios:
        w(f"- Server pinned to CPU {meta.get('server_cpu', '?')}, load generator to CPU "
          f"{meta.get('client_cpu', '?')} (`taskset`)"
          + ("; the scaling scenarios pin nothing (see there)" if scaling else ""))
    else:
        w("- Nothing pinned (scaling scenarios only; see there)")
    w(f"- {meta.get('reps', '?')} repetition(s) per cell, interleaved; {meta.get('warmup', '?')} s warm-up "
      f"+ {meta.get('duration', '?')} s measured; medians shown")
    w(f"- Run {meta.get('started', '?')} → {meta.get('finished', '?')}; load average at start "
      f"{meta.get('loadavg_start', '?')}, at end {meta.get('loadavg_end', '?')}")
    w("")
    others = [d.get("other_cpu_util") for c in cells.values() for d in c.valid
              if d.get("other_cpu_util") is not None]
    if others:
        worst = max(others)
        share = sum(1 for o in others if o >= OTHER_LOAD) / len(others)
        if worst >= OTHER_LOAD:
            w(f"> **Warning: the machine was not quiet.** Other processes used up to {worst:.2f} "
              f"cores during measured windows ({share:.0%} of runs had ≥ {OTHER_LOAD:.2f}; rows "
              "marked ‡). With 2 cores and both pinned, that load competes directly with the "
              "server or the client; treat those figures as noise, not as results.")
        else:
            w(f"Other processes used at most {worst:.2f} cores during any measured window.")
        w("")

    # ---- overview tables
    if scenarios:
        main_tables(w, cells, servers, scenarios, svg_rel)
    if scaling:
        scaling_section(w, cells, scaling, meta)
    build_and_method(w, args, scenarios)

    write_block(args.out, L)
    print(f"report.py: wrote {args.out}" + (f" and {args.svg}" if svg_rel else ""), file=sys.stderr)


BEGIN = "<!-- bench/report.py:begin"
BEGIN_LINE = BEGIN + " (generated; a rerun of bench/run.sh replaces this block) -->"
END = "<!-- bench/report.py:end -->"


def write_block(path, lines):
    """Writes the generated report into `path` between the BEGIN/END markers, one heading
    level down, keeping everything outside them (the hand-written text) as it is. A file
    without the markers gets them, after a title."""
    body = [("#" + l) if l.startswith("#") else l for l in lines]
    if body and body[0] == "## sockloop benchmarks":
        body[0] = "### Echo servers side by side"
    block = BEGIN_LINE + "\n" + "\n".join(body).rstrip("\n") + "\n" + END
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if BEGIN in old and END in old:
        start = old.index(BEGIN)
        end = old.index(END) + len(END)
        new = old[:start] + block + old[end:]
    else:
        new = "# sockloop benchmarks\n\n## Measured tables\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def scaling_section(w, cells, scaling, meta):
    w("## Multi-core scaling")
    w("")
    w("`sockloop_echo --threads N` runs N event loops on N threads, each with its own "
      "`SO_REUSEPORT` listener on the same port (`sockloop::LoopGroup`); the kernel spreads "
      "new connections over the listeners by a hash of the address pair. `sockloop-epoll` is "
      "`--threads 1` (one plain `EventLoop`), `sockloop-epoll-t2` is `--threads 2`; `mio` and "
      "`tokio` are the single-threaded reference servers from the tables above.")
    w("")
    w("**Setup.** Two load generator processes run at the same time against the same server, "
      "each with half the connections (same warm-up and measured seconds); the rate is the sum "
      "of the two. **Nothing is pinned**: the machine has 2 cores, so with two server loops "
      "and two clients there is no way to keep servers and clients apart, and the scheduler "
      "places all of them. Client and server compete for the same two cores, so this measures "
      "what a second loop gains on a machine that is also running the clients, not what it "
      "would gain on a dedicated core. **Server CPU** is the server process's user + sys time "
      "÷ window, in cores (above 1.00 means more than one thread was working); **threads** "
      "lists each server thread's CPU in cores, busiest first (the `--threads 2` process also "
      "has an idle main thread); **Machine busy** is the non-idle share of both CPUs from "
      "`/proc/stat`, in cores out of 2.00; **Other load** excludes the server and both clients. "
      "Latency columns are the worse of the two clients' percentiles.")
    w("")
    for sc in scaling:
        title, conns = SCALING[sc]
        w(f"### {title} (`{sc}`)")
        w("")
        base = cells.get((sc, "mio"))
        one = cells.get((sc, "sockloop-epoll"))
        base_rate = base.rate("msgs") if base and base.valid else None
        one_rate = one.rate("msgs") if one and one.valid else None
        w("| Server | Rate (2 clients) | Spread | vs mio | vs sockloop 1 loop | p50 µs | p99 µs "
          "| Server CPU | threads | CPU µs/msg | user µs/msg | Clients CPU | Machine busy "
          "| Other load | Errors | Reps |")
        w("|---|" + "---:|" * 15)
        notes = []
        for srv in SCALING_SERVERS + sorted(
                {k[1] for k in cells if k[0] == sc} - set(SCALING_SERVERS)):
            c = cells.get((sc, srv))
            if c is None:
                continue
            if not c.valid:
                why = c.skipped or "; ".join(sorted(set(c.failed))) or "no data"
                w(f"| `{srv}` | {'skipped' if c.skipped else 'failed'} |" + " |" * 14)
                notes.append(f"`{srv}`: {why}")
                continue
            rate = c.rate("msgs")
            spread = c.spread("msgs")
            thr = [d.get("thread_cpu_util") or [] for d in c.valid]
            # per-thread medians, position by position (busiest first)
            n = max((len(t) for t in thr), default=0)
            tmed = []
            for i in range(n):
                vals = [t[i] for t in thr if len(t) > i]
                tmed.append(statistics.median(vals))
            threads = " + ".join(f"{v:.2f}" for v in tmed if v >= 0.01) or "–"
            other = c.med("other_cpu_util")
            errs = f"{c.errors}" + (f" / {c.mismatched} B bad" if c.mismatched else "")
            if c.errors or c.mismatched:
                errs = f"**{errs}**"
            w(f"| `{srv}` | {fmt_rate(rate, 'msgs')} "
              f"| {'–' if spread is None else f'±{50 * spread:.0f}%'} "
              f"| {fmt_ratio(rate, base_rate)} "
              f"| {fmt_ratio(rate, one_rate) if srv.startswith('sockloop') else ''} "
              f"| {fmt_num(c.med('p50_us'))} | {fmt_num(c.med('p99_us'))} "
              f"| {fmt_num(c.med('server_cpu_util'), 2)} | {threads} "
              f"| {fmt_num(c.med('server_cpu_us_per_msg'), 2)} "
              f"| {fmt_num(c.med('server_user_us_per_msg'), 2)} "
              f"| {fmt_num(c.med('client_cpu_util'), 2)} | {fmt_num(c.med('machine_busy'), 2)} "
              f"| {'–' if other is None else f'{other:.2f}'} | {errs} | {len(c.valid)}/{len(c.reps)} |")
            if c.failed:
                notes.append(f"`{srv}`: {len(c.failed)} repetition(s) failed: "
                             + "; ".join(sorted(set(c.failed))))
        w("")
        for n_ in notes:
            w(f"- {n_}")
        if notes:
            w("")


def main_tables(w, cells, servers, scenarios, svg_rel):
    w("## Overview")
    w("")
    w("Headline rate per scenario (messages/s, MB/s for bulk, connections/s for churn), "
      f"and the ratio to `{BASELINE}`. † = the load generator's core was ≥ "
      f"{CLIENT_BOUND:.0%} busy, so that figure is bounded by the client, not the server. "
      f"‡ = other processes used ≥ {OTHER_LOAD:.2f} cores during the window.")
    w("")
    w("| Server | " + " | ".join(scenarios) + " |")
    w("|---|" + "---:|" * len(scenarios))
    for srv in servers:
        row = [f"`{srv}`"]
        for sc in scenarios:
            c = cells.get((sc, srv))
            unit = SCENARIOS[sc][1]
            if c is None or not c.valid:
                row.append("skipped" if c is not None and c.skipped else "–" if c is None else "failed")
                continue
            base = cells.get((sc, BASELINE))
            v = c.rate(unit)
            mark = c.marks()
            txt = fmt_rate(v, unit).replace("/s", "").replace(" MB", " MB/s")
            if srv != BASELINE:
                txt += f" ({fmt_ratio(v, base.rate(unit) if base else None)})"
            row.append(txt + mark)
        w("| " + " | ".join(row) + " |")
    w("")
    w("Server CPU time (user + sys) per operation in µs, and the ratio to "
      f"`{BASELINE}`. Lower is better. This is less sensitive than throughput to whether the "
      "client kept up, though a server that often waits for its client wakes up more and "
      "batches less, so it pays somewhat more per message.")
    w("")
    w("| Server | " + " | ".join(scenarios) + " |")
    w("|---|" + "---:|" * len(scenarios))
    for srv in servers:
        row = [f"`{srv}`"]
        for sc in scenarios:
            c = cells.get((sc, srv))
            if c is None or not c.valid:
                row.append("skipped" if c is not None and c.skipped else "–" if c is None else "failed")
                continue
            v = c.med("server_cpu_us_per_msg")
            base = cells.get((sc, BASELINE))
            txt = fmt_num(v)
            if srv != BASELINE:
                txt += f" ({fmt_ratio(v, base.med('server_cpu_us_per_msg') if base else None)})"
            row.append(txt)
        w("| " + " | ".join(row) + " |")
    w("")
    if svg_rel and CHART_SCENARIO in scenarios:
        w(f"![Server CPU µs per message at 100 connections]({svg_rel})")
        w("")

    # ---- per-scenario detail
    w("## Scenarios")
    w("")
    for sc in scenarios:
        title, unit, op = SCENARIOS[sc]
        w(f"### {title} (`{sc}`)")
        w("")
        base = cells.get((sc, BASELINE))
        base_rate = base.rate(unit) if base else None
        base_cpu = base.med("server_cpu_us_per_msg") if base else None
        # Scenarios with idle connections also show how long connecting them took.
        idle = any((d.get("idle") or 0) > 0 for k, c in cells.items() if k[0] == sc for d in c.valid)
        w(f"| Server | Rate | Spread | vs {BASELINE} | p50 µs | p99 µs | p99.9 µs | CPU µs/{op} "
          f"| vs {BASELINE} | Server proc CPU | Server core | Client core | Other load | Peak RSS "
          "| Errors | Reps |" + (" Setup s |" if idle else ""))
        w("|---|" + "---:|" * (15 + idle))
        notes = []
        for srv in servers:
            c = cells.get((sc, srv))
            if c is None:
                continue
            if not c.valid:
                why = c.skipped or "; ".join(sorted(set(c.failed))) or "no data"
                w(f"| `{srv}` | {'skipped' if c.skipped else 'failed'} |" + " |" * (14 + idle))
                notes.append(f"`{srv}`: {why}")
                continue
            rate = c.rate(unit)
            cpu = c.med("server_cpu_us_per_msg")
            cli = c.med("client_core_busy")
            mark = c.marks()
            spread = c.spread(unit)
            other = c.med("other_cpu_util")
            rss = c.med("server_peak_rss_kb")
            errs = f"{c.errors}" + (f" / {c.mismatched} B bad" if c.mismatched else "")
            if c.errors or c.mismatched:
                errs = f"**{errs}**"
            reps = f"{len(c.valid)}/{len(c.reps)}"
            w(f"| `{srv}` | {fmt_rate(rate, unit)}{mark} | {'–' if spread is None else f'±{50 * spread:.0f}%'} "
              f"| {fmt_ratio(rate, base_rate)} "
              f"| {fmt_num(c.med('p50_us'))} | {fmt_num(c.med('p99_us'))} | {fmt_num(c.med('p999_us'))} "
              f"| {fmt_num(cpu, 2)} | {fmt_ratio(cpu, base_cpu)} | {fmt_pct(c.med('server_cpu_util'))} "
              f"| {fmt_pct(c.med('server_core_busy'))} | {fmt_pct(cli)} "
              f"| {'–' if other is None else f'{other:.2f}'} "
              f"| {fmt_bytes(rss * 1024 if rss is not None else None)} | {errs} | {reps} |"
              + (f" {fmt_num(c.med('setup_s'))} |" if idle else ""))
            if c.failed:
                notes.append(f"`{srv}`: {len(c.failed)} repetition(s) failed: "
                             + "; ".join(sorted(set(c.failed))))
        w("")
        for n in notes:
            w(f"- {n}")
        if notes:
            w("")



def build_and_method(w, args, scenarios):
    # ---- build time and size
    bs_path = os.path.join(args.results, "build_size.json")
    w("## Clean release build time and binary size")
    w("")
    if os.path.exists(bs_path):
        with open(bs_path) as f:
            bs = json.load(f)
        w(f"Each program built alone as a one-binary crate in a fresh `CARGO_TARGET_DIR` "
          f"(`bench/build_size.sh`), {bs.get('rustc', '')}, {bs.get('jobs', '?')} jobs; "
          "build time includes compiling all dependencies; the stripped size is of a `strip`ped copy.")
        w("")
        w("| Program | Clean release build | Binary | Stripped | Note |")
        w("|---|---:|---:|---:|---|")
        names = {"sockloop_echo": "sockloop `examples/echo_server.rs`", "tokio_echo": "tokio echo",
                 "mio_echo": "mio echo", "hello": "std-only hello world"}
        for e in bs.get("entries", []):
            secs = "–" if e.get("build_s") is None else f"{e['build_s']:.1f} s"
            w(f"| {names.get(e['name'], e['name'])} | {secs} | {fmt_bytes(e.get('size_bytes'))} "
              f"| {fmt_bytes(e.get('stripped_bytes'))} | {e.get('note', '')} |")
    else:
        w("Not measured in this run (`BUILD_SIZE=0`, or `bench/build_size.sh` failed).")
    w("")

    # ---- method
    w("## How this is measured")
    w("")
    w("- **Servers** are single-threaded, bind 127.0.0.1 on an ephemeral port, set `TCP_NODELAY` on "
      "accepted sockets and print `listening on ADDR`; each (scenario, server, repetition) gets a "
      "freshly started server. `mio`: hand-written edge-triggered mio 1.x loop, one shared 64 KiB "
      "read buffer, read until `WouldBlock`, direct writes, per-connection buffer only for what the "
      "kernel refuses. `tokio`: `current_thread` runtime, a task per connection, each with its own 64 KiB "
      "buffer (so with 10,000 idle connections its RSS is mostly those buffers), `write_all`. `asyncore-*`: CPython 3.11 asyncore, the docs' `dispatcher_with_send` echo "
      "handler (recv 64 KiB). `asyncio`: a `Protocol` whose `data_received` calls `transport.write`.")
    w("- **Load generator** (`bench/src/bin/loadgen.rs`): one thread, one mio event loop, pinned to "
      "its own core. Every connection sends a deterministic pseudo-random byte stream and every echoed "
      "byte is checked (`Errors` column; mismatched bytes would be shown in bold). Ping-pong is a "
      "closed loop: each connection keeps one 64 B message in flight. Bulk keeps 16 × 64 KiB in "
      "flight on one connection. Churn runs 10 slots that each connect, echo 64 B once and close. "
      "Idle connections each complete a 1-byte echo before the run (so they really are accepted "
      "and registered by the server) and then stay silent; at most 256 are being set up at a time, "
      "so no listen backlog overflows. `Setup s` is how long that took (asyncore accepts one "
      "connection per loop iteration, and each iteration walks every descriptor).")
    w("- **Latency** is the round trip of each message (churn: connect start to echo received), "
      "measured in the client, so it includes the client's own queueing.")
    w("- **CPU µs/op** = server process utime + stime (from `/proc/PID/stat`, in clock ticks, "
      "10 ms granularity at CLK_TCK 100) over the measured window ÷ operations. **Server proc CPU** is "
      "the same time ÷ window. The kernel accounts softirq time (which on loopback is where most of "
      "the TCP delivery work happens) to the CPU rather than to the process, so proc CPU can sit "
      "well below 100% on a saturated core. **Server core / Client core** are the non-idle share "
      "of the pinned CPUs from `/proc/stat`; they include softirq and anything else that ran "
      "there. A client core near 100% (†) means the load generator, not the server, set the pace.")
    w("- **Other load** is CPU time (in cores) used during the window by every process except "
      "the server, the load generator and ksoftirqd, from the all-CPU line of `/proc/stat`. Anything "
      "above ~0.1 (‡) means something else was competing for the two pinned cores.")
    w("- **Spread** is ±half the range (max − min) of the headline rate across repetitions, "
      "relative to the median.")
    w("- **Peak RSS** is the server's `VmHWM` at the end of the run (whole lifetime of that server "
      "process, including warm-up and accepting the idle connections).")
    w("- `select` backends are skipped where the scenario needs more than ~1000 descriptors "
      "(`FD_SETSIZE` is 1024).")
    w(f"- Raw per-run JSON: `{os.path.relpath(os.path.abspath(args.results), os.path.dirname(os.path.abspath(args.out)))}` "
      "(git-ignored).")
    w("")


if __name__ == "__main__":
    main()
