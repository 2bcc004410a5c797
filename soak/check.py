#!/usr/bin/env python3
"""Judges one soak run and prints the PASS/FAIL table (used by soak/run.sh; stdlib only).

  check.py judge KIND SCENARIO RESULT.json CHECKS.tsv key=value...
      Appends one row per assertion to CHECKS.tsv (scenario, check, result, detail).
      KIND is echo or chat. Keys (all from run.sh): client_rc, server_alive, fd_baseline,
      fd_after, fd_settle_s, rss_growth_pct (echo), rss_limit_kb (chat), idle_timeout
      (chat, seconds or "none").
  check.py table CHECKS.tsv
      Prints the table; exit status 1 if any row failed.
"""

import json
import sys


def mib(kb):
    return "?" if kb is None else f"{kb / 1024:.1f} MiB"


def judge(kind, scenario, result_path, checks_path, kv):
    rows = []

    def row(check, ok, detail):
        if ok is None:
            verdict = "INFO"
        else:
            verdict = "PASS" if ok else "FAIL"
        rows.append((scenario, check, verdict, detail))

    err = ""
    try:
        with open(result_path) as f:
            text = f.read().strip().splitlines()
        r = json.loads(text[-1]) if text else None
    except (OSError, ValueError) as e:
        r = None
        err = str(e)
    client_rc = int(kv.get("client_rc", "1"))
    if r is None:
        row("client produced a summary", False,
            f"no JSON from the soak client (exit {client_rc}){': ' + err if err else ''}")
    else:
        done = client_rc == 0 and not r["setup_failed"] and not r["drain_timed_out"]
        row("run completed (setup, load, drain)", done,
            f"client exit {client_rc}, setup_failed={r['setup_failed']}, "
            f"drain_timed_out={r['drain_timed_out']}, load {r['duration_s']:.0f} s, "
            f"drain {r['drain_s']:.1f} s")
        row("client errors", r["errors"] == 0, f"{r['errors']} errors (see the .client.err log)")

    row("server still running at the end", kv.get("server_alive") == "1",
        "alive" if kv.get("server_alive") == "1" else "server exited (see its .err log)")

    base, after = kv.get("fd_baseline"), kv.get("fd_after")
    peak = r.get("server_fds_max") if r else None
    row("server fds back to baseline after close", base is not None and base == after,
        f"baseline {base}, peak {peak}, after clients closed {after} "
        f"(waited {kv.get('fd_settle_s', '?')} s)")

    if r is not None and kind == "echo":
        row("bytes mismatched = 0", r["bytes_mismatched"] == 0,
            f"{r['bytes_mismatched']} of {r['bytes_sent']} sent")
        row("bytes lost = 0", r["bytes_lost"] == 0 and r["bytes_verified"] + r["bytes_mismatched"] >= r["bytes_sent"],
            f"{r['bytes_lost']} lost; sent {r['bytes_sent']}, verified {r['bytes_verified']} "
            f"in {r['msgs']} messages")
        row("long-lived connections all alive", r["long_alive_end"] == r["conns"],
            f"{r['long_alive_end']} of {r['conns']} (failed {r['long_failed']})")
        row("every churn connection completed",
            r["churn_completed"] == r["churn_target"] and r["churn_failed"] == 0,
            f"{r['churn_completed']} of {r['churn_target']} (failed {r['churn_failed']}, "
            f"unfinished {r['churn_unfinished']}); p50 {r['churn_p50_ms']} ms, "
            f"p99 {r['churn_p99_ms']} ms")
        limit = float(kv.get("rss_growth_pct", "10"))
        w, e = r["server_rss_kb_warm_end"], r["server_rss_kb_load_end"]
        if w and e:
            growth = (e - w) * 100.0 / w
            row(f"server RSS growth < {limit:g}% after warm-up", growth < limit,
                f"{mib(w)} at end of warm-up -> {mib(e)} at end ({growth:+.1f}%); "
                f"start {mib(r['server_rss_kb_start'])}, peak "
                f"{mib(max(r['server_rss_kb_max_sampled'] or 0, r['server_vmhwm_kb'] or 0))}; "
                f"anon {mib(r.get('server_rss_anon_kb_warm_end'))} -> "
                f"{mib(r.get('server_rss_anon_kb_load_end'))}")
        else:
            row(f"server RSS growth < {limit:g}% after warm-up", False, "RSS not sampled")

    if r is not None and kind == "chat":
        limit_kb = int(kv.get("rss_limit_kb", "0"))
        peak_kb = max(r["server_rss_kb_max_sampled"] or 0, r["server_vmhwm_kb"] or 0)
        row("server RSS bounded", peak_kb < limit_kb,
            f"peak {mib(peak_kb)} < limit {mib(limit_kb)}; warm-up end "
            f"{mib(r['server_rss_kb_warm_end'])}, end {mib(r['server_rss_kb_load_end'])}")
        row("normal clients: every chat line delivered, in order",
            r["talkers_ready"] == r["talkers"] and r["talkers_failed"] == 0
            and r["talk_bad_lines"] == 0 and r["talk_lines_delivered"] == r["talk_lines_expected"],
            f"{r['talk_lines_delivered']} of {r['talk_lines_expected']} deliveries "
            f"({r['talk_lines_sent']} lines from {r['talkers']} talkers), "
            f"{r['talk_bad_lines']} bad")
        row("normal clients: every churn client served",
            r["churn_completed"] == r["churn_target"] and r["churn_failed"] == 0,
            f"{r['churn_completed']} of {r['churn_target']} welcome+/who+/quit "
            f"(failed {r['churn_failed']}); p50 {r['churn_p50_ms']} ms, "
            f"p99 {r['churn_p99_ms']} ms, max {r['churn_max_ms']} ms")
        it = kv.get("idle_timeout", "none")
        when = ""
        if r["slow_disconnected"]:
            when = (f", after {r['slow_disconnect_first_s']}..{r['slow_disconnect_last_s']} s")
        row("slow-loris clients disconnected by the server", None,
            f"{r['slow_disconnected']} of {r['slow']}{when} "
            f"(--idle-timeout {it + ' s' if it != 'none' else 'not supported by chat_server'}); "
            f"{r['slow_bytes_trickled']} bytes trickled, none a line end")

    with open(checks_path, "a") as f:
        for scen, check, verdict, detail in rows:
            f.write("\t".join((scen, check, verdict, detail.replace("\t", " "))) + "\n")
    return 0


def table(checks_path):
    with open(checks_path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not rows:
        print("no checks were run")
        return 1
    w0 = max(len(r[0]) for r in rows + [["scenario"]])
    w1 = max(len(r[1]) for r in rows + [["", "check"]])
    print(f"{'scenario':<{w0}}  {'check':<{w1}}  result  detail")
    print(f"{'-' * w0}  {'-' * w1}  ------  ------")
    failed = 0
    for scen, check, verdict, detail in rows:
        print(f"{scen:<{w0}}  {check:<{w1}}  {verdict:<6}  {detail}")
        failed += verdict == "FAIL"
    n = sum(r[2] != "INFO" for r in rows)
    print()
    print(f"SOAK {'FAIL' if failed else 'PASS'}: {n - failed} of {n} checks passed"
          + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 6 and argv[1] == "judge":
        kv = dict(a.split("=", 1) for a in argv[6:])
        return judge(argv[2], argv[3], argv[4], argv[5], kv)
    if len(argv) == 3 and argv[1] == "table":
        return table(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
