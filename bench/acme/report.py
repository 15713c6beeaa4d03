"""The ACME section of BENCHMARKS.md, from the rows.jsonl of bench/acme/run.sh.

Usage:
  report.py ROWS NOTES            prints the section (Markdown) on stdout
  report.py --splice FILE SECTION replaces the section between FILE's markers
                                  (appends it when FILE has none)
"""

import json
import os
import sys

BEGIN = "<!-- acme:begin -->"
END = "<!-- acme:end -->"

STEPS = [
    "new_order",
    "authorization",
    "challenge",
    "poll_authorization",
    "finalize",
    "poll_order",
    "download",
]

# perf record -F in run.sh's profile(): samples per second per CPU.
PROFILE_HZ = 999


def load(path):
    runs, alone, idle, wrk, profiles, meta = {}, {}, {}, {}, {}, {}
    with open(path) as rows:
        for line in rows:
            row = json.loads(line)
            if "meta" in row:
                meta = row["meta"]
                continue
            server = row["server"]
            if "idle_rss_mib" in row:
                idle[server] = row
            elif "wrk" in row:
                wrk[(server, row["wrk"])] = row
            elif "profile" in row:
                profiles[server] = row
            elif "rate" in row:
                alone[server] = (row["rate"], summary(row))
            else:
                runs[(server, row["concurrency"])] = summary(row)
    return runs, alone, idle, wrk, profiles, meta


def number(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def ratio(basalt, pebble, higher_is_better=True):
    if basalt is None or pebble is None or basalt == 0 or pebble == 0:
        return "—"
    return f"{basalt / pebble:.2f}×" if higher_is_better else f"{pebble / basalt:.2f}×"


def summary(run):
    """The figures of one run, or None when it left no report."""
    report = run["report"] if run else None
    if not report:
        return None
    ok = report["orders"]["ok"]
    elapsed = report["elapsed_s"]
    return {
        "rps": report["orders_per_second"],
        "achieved": ok / elapsed if elapsed else None,
        "p50": report["latency"]["p50_ms"],
        "p90": report["latency"]["p90_ms"],
        "p99": report["latency"]["p99_ms"],
        "ok": ok,
        "failed": report["orders"]["failed"],
        "dropped": report["orders"].get("dropped"),
        "errors": report["errors"],
        "cpu_per_cert": run["cpu_s"] / ok if ok else None,
        "cpu_by_process": {k: v / ok for k, v in run.get("cpu_by_process", {}).items()}
        if ok
        else {},
        "rss": run["peak_rss_mib"],
        "loadgen_cpu": report["cpu"]["percent_of_one_core"],
        "steps": report["steps"],
    }


def table(say, header, rows):
    say("| " + " | ".join(header) + " |")
    say("|" + "---|" * len(header))
    for row in rows:
        say("| " + " | ".join(row) + " |")
    say("")


def by_concurrency(runs, concurrencies, servers, basalts, cells_of, ratio_of):
    """A row per concurrency: `cells_of` each server's summary, then `ratio_of`
    each Basalt's summary and Pebble's."""
    rows = []
    for c in concurrencies:
        cells = [str(c)]
        for s in servers:
            cells += cells_of(runs.get((s, c)))
        pebble = runs.get(("pebble", c))
        for s in basalts:
            cells.append(ratio_of(runs.get((s, c)), pebble))
        rows.append(cells)
    return rows


def targets(say, runs, alone, idle):
    """The issue's targets, each with what this run measured (`runs` and `alone`
    hold summaries)."""
    pebble16 = runs.get(("pebble", 16))
    pebble1 = runs.get(("pebble", 1))
    rows = []

    def add(target, measured, met):
        verdict = "—" if met is None else ("met" if met else "**not met**")
        rows.append([target, measured, verdict])

    # Pebble's best closed-loop run that lost no order: the fair yardstick when its
    # c16 run stalled (Debian's Pebble deadlocks with many orders in flight).
    clean = [r for (s, _), r in runs.items() if s == "pebble" and r and r["failed"] == 0]
    best = max(clean, key=lambda r: r["rps"], default=None)
    stalled = pebble16 is None or pebble16["failed"] > 0
    for server, factor in [("basalt-sqlite", 3), ("basalt-postgres", 2)]:
        b = runs.get((server, 16))
        if not b:
            continue
        if pebble16 and pebble16["rps"]:
            r = b["rps"] / pebble16["rps"]
            measured = f"{number(b['rps'])} vs {number(pebble16['rps'])} = {number(r, 2)}×"
        else:
            r, measured = None, f"{number(b['rps'])} vs no Pebble report"
        if stalled and best:
            fair = b["rps"] / best["rps"]
            failed = pebble16["failed"] if pebble16 else "all"
            measured += (f" (Pebble stalled, {failed} orders failed; against its best clean "
                         f"run, {number(best['rps'])}/s: {number(fair, 2)}×)")
            r = fair
        add(f"c16 orders/s, {server} ≥ {factor}× Pebble", measured,
            r is not None and r >= factor)
    for server in ["basalt-sqlite", "basalt-postgres"]:
        b = runs.get((server, 1))
        if b and pebble1:
            add(f"c1 median latency, {server} ≤ ½ Pebble's",
                f"{number(b['p50'])} ms vs {number(pebble1['p50'])} ms",
                b["p50"] <= pebble1["p50"] / 2)
    for server in ["basalt-sqlite", "basalt-postgres"]:
        b = runs.get((server, 16))
        if b and pebble16 and b["cpu_per_cert"] and pebble16["cpu_per_cert"]:
            add(f"c16 CPU-s per certificate, {server} ≤ ½ Pebble's",
                f"{number(b['cpu_per_cert'], 4)} vs {number(pebble16['cpu_per_cert'], 4)}",
                b["cpu_per_cert"] <= pebble16["cpu_per_cert"] / 2)
    rate, a = alone.get("basalt-sqlite", (None, None))
    if a:
        errors = a["failed"] + (a["dropped"] or 0)
        add(f"Basalt alone (SQLite), --rate {rate:g}: ≥ 500 certificates/s, no errors, p99 < 250 ms",
            f"{number(a['achieved'])}/s, {errors} failed or dropped, p99 {number(a['p99'])} ms",
            a["achieved"] >= 500 and errors == 0 and a["p99"] < 250)
    i = idle.get("basalt-sqlite")
    if i:
        add("All Basalt processes at idle < 150 MB RSS",
            f"{number(i['idle_rss_mib'])} MiB RSS ({number(i.get('idle_pss_mib'))} MiB PSS)",
            i["idle_rss_mib"] * 1.048576 < 150)
    table(say, ["target", "measured", ""], rows)


def profile_section(say, profiles):
    for server, row in profiles.items():
        samples = row["profile"]
        total = row["samples"] or 1
        orders = row.get("orders") or 0
        seconds = row.get("seconds") or 0
        say(f"Profile of {server} at concurrency 16 (`perf record -a -F {PROFILE_HZ}`, every")
        say("process on the machine, no call graphs; not a measured run). Share of all")
        say("samples by process, then the top symbols; the last column is CPU milliseconds")
        say(f"per issued certificate ({orders} issued in the {seconds:g} s profiled):")
        say("")

        def per_cert(count):
            return number(1000 * count / PROFILE_HZ / orders, 2) if orders else "—"

        by_process = {}
        by_kind = {}
        for name, kind, count in row.get("by_process", []):
            by_process[name] = by_process.get(name, 0) + count
            by_kind.setdefault(name, {}).setdefault(kind, 0)
            by_kind[name][kind] += count
        rows = []
        for name, count in sorted(by_process.items(), key=lambda kv: -kv[1]):
            kinds = by_kind[name]
            split = ", ".join(f"{k} {100 * v / count:.0f}%"
                              for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
            rows.append([name, f"{100 * count / total:.1f}%", split, per_cert(count)])
        table(say, ["process", "share of samples", "where (libc: libc and libm)", "ms/cert"],
              rows)
        rows = []
        for name, dso, symbol, count in samples[:20]:
            rows.append([f"{100 * count / total:.1f}%", name, f"`{symbol[:90]}`", dso,
                         per_cert(count)])
        table(say, ["share", "process", "symbol", "object", "ms/cert"], rows)


def main():
    if sys.argv[1] == "--splice":
        splice(sys.argv[2], sys.argv[3])
        return
    path, notes_path = sys.argv[1:]
    runs, alone, idle, wrk, profiles, meta = load(path)
    servers = []
    for server, _ in list(runs) + [(s, 0) for s in idle]:
        if server not in servers:
            servers.append(server)
    basalts = [s for s in servers if s != "pebble"]
    concurrencies = sorted({c for _, c in runs})
    settings = meta.get("settings", {})
    out = []
    say = out.append

    say(BEGIN)
    say("## Whole issuance: Basalt vs Pebble")
    say("")
    say("Generated by `bench/acme/run.sh` from one run; edit `bench/acme/notes.md` or")
    say("`bench/acme/report.py`, not this section.")
    say("")
    say("### The run")
    say("")
    say(f"- When: {meta.get('date')}; {meta.get('basalt')} at commit {meta.get('commit')} "
        f"({meta.get('rustc')}), release build")
    say(f"- Machine: {meta.get('cpu')}, {meta.get('cpus')} CPUs, "
        f"{meta.get('memory_gib')} GiB, Linux {meta.get('kernel')}; the servers, their "
        "databases and the load generator all share it")
    say(f"- Pebble: Debian's `pebble` {meta.get('pebble')}, `PEBBLE_VA_NOSLEEP=1 "
        "PEBBLE_WFE_NONCEREJECT=0`; PostgreSQL: "
        f"{meta.get('postgres') or 'the local server'}")
    say("- Basalt: `basalt dev` with its default topology (SA, RA, VA, three remote VAs, "
        "CA, WFE, OCSP, nonce: ten processes under the launcher, mTLS gRPC between them), "
        "`--rate-limits off`, SQLite in its data directory or PostgreSQL (`--db`)")
    say("- Every server validates http-01 through `pebble-challtestsrv` as DNS (every "
        "name is 127.0.0.1) against the loadgen's own responder")
    say("- Load: `basalt loadgen --accounts 8` per run, accounts made before timing "
        f"starts; {settings.get('WARMUP_ORDERS')} unmeasured orders, then closed loop "
        f"(`--concurrency N`) for {settings.get('DURATION')} at N in "
        f"{settings.get('CONCURRENCY')}; each Pebble run is bounded at "
        f"{settings.get('PEBBLE_TIMEOUT')} s")
    say("- CPU: user + system seconds of every process of the server (Basalt: the "
        "launcher and its services; with PostgreSQL, its processes too) over the run, "
        "divided by the certificates issued. RSS: summed over the same processes, sampled "
        "every 0.5 s")
    say("")
    say("Reproduce (Debian 12; PostgreSQL on 127.0.0.1:5432 with trust auth):")
    say("")
    say("```sh")
    say("apt-get install -y pebble wrk linux-perf openssl python3 curl postgresql-client")
    say("cargo build --release -p basalt")
    env = " ".join(f"{k}={json.dumps(v) if ' ' in v else v}" for k, v in settings.items())
    say(f"{env} \\\n    bench/acme/run.sh")
    say("```")
    say("")

    say("### Against the targets")
    say("")
    targets(say, runs, alone, idle)

    say("### Throughput and latency (closed loop)")
    say("")
    header = ["concurrency"]
    for s in servers:
        header += [f"{s} orders/s", "p50 ms", "p90 ms", "p99 ms", "ok/failed"]
    header += [f"{s} ÷ pebble" for s in basalts]
    def throughput(r):
        if r is None:
            return ["no report (killed at the bound)", "—", "—", "—", "—"]
        return [number(r["rps"]), number(r["p50"]), number(r["p90"]), number(r["p99"]),
                f"{r['ok']}/{r['failed']}"]

    table(say, header, by_concurrency(
        runs, concurrencies, servers, basalts, throughput,
        lambda b, pebble: ratio(b and b["rps"], pebble and pebble["rps"])))

    say("### Cost per certificate and memory")
    say("")
    header = ["concurrency"]
    for s in servers:
        header += [f"{s} CPU-s/cert", "peak RSS MiB"]
    header += [f"pebble ÷ {s} CPU-s/cert" for s in basalts]
    rows = by_concurrency(
        runs, concurrencies, servers, basalts,
        lambda r: [number(r and r["cpu_per_cert"], 4), number(r and r["rss"])],
        lambda b, pebble: ratio(b and b["cpu_per_cert"], pebble and pebble["cpu_per_cert"],
                                False))
    idle_cells = ["idle RSS (PSS)"]
    for s in servers:
        i = idle.get(s, {})
        idle_cells += ["—", f"{number(i.get('idle_rss_mib'))} ({number(i.get('idle_pss_mib'))})"]
    rows.append(idle_cells + ["—"] * len(basalts))
    table(say, header, rows)
    say("RSS counts each page once per process that maps it: Basalt's services are one")
    say("binary, so its code is counted once per process; PSS splits shared pages between")
    say("the processes that map them (idle figures are the server's own processes, without")
    say("PostgreSQL).")
    say("")

    say("CPU milliseconds per certificate by process at concurrency 16:")
    say("")
    at16 = {s: (runs.get((s, 16)) or {}).get("cpu_by_process", {}) for s in basalts}
    names = []
    for s in basalts:
        names += [name for name in at16[s] if name not in names]
    names.sort(key=lambda n: -max(at16[s].get(n, 0) for s in basalts))
    rows = [[name] + [number(1000 * at16[s].get(name, 0) if runs.get((s, 16)) else None, 2)
                      for s in basalts] for name in names]
    table(say, ["process"] + basalts, rows)

    rate, a = alone.get("basalt-sqlite", (None, None))
    if a:
        say(f"### Basalt alone: open loop at {rate:g} orders/s (SQLite)")
        say("")
        say(f"`basalt loadgen --rate {rate:g} --duration {settings.get('ALONE_DURATION')} "
            "--max-in-flight 512`: orders start on schedule whether or not earlier ones")
        say("have finished.")
        say("")
        table(say, ["started and finished/s", "p50 ms", "p90 ms", "p99 ms", "ok", "failed",
                    "dropped (512 in flight)", "CPU-s/cert"],
              [[number(a["achieved"]), number(a["p50"]), number(a["p90"]), number(a["p99"]),
                str(a["ok"]), str(a["failed"]), str(a["dropped"]),
                number(a["cpu_per_cert"], 4)]])

    say("### Where the time goes")
    say("")
    for c in [c for c in (1, 16) if c in concurrencies]:
        say(f"Median milliseconds per step at concurrency {c} (the loadgen's own timings;")
        say("polls include any wait the server asked for with Retry-After):")
        say("")
        rows = []
        for step in STEPS:
            cells = [step]
            for s in servers:
                r = runs.get((s, c))
                stat = r and r["steps"].get(step)
                cells.append(number(stat and stat["count"] and stat["p50_ms"]))
            rows.append(cells)
        table(say, ["step"] + servers, rows)
    profile_section(say, profiles)
    if os.path.exists(notes_path):
        with open(notes_path) as notes:
            say(notes.read().rstrip())
            say("")

    say("### Errors (all runs)")
    say("")
    any_error = False
    every = [(server, f"concurrency {c}", r) for (server, c), r in sorted(runs.items())]
    every += [(server, f"--rate {rate:g}", r) for server, (rate, r) in alone.items()]
    for server, label, r in every:
        if r is None:
            any_error = True
            say(f"- {server}, {label}: no report, the run was killed at its bound")
            continue
        for error in r["errors"]:
            any_error = True
            say(f"- {server}, {label}: {error['count']} × {error['kind']}")
        if r["dropped"]:
            any_error = True
            say(f"- {server}, {label}: {r['dropped']} orders dropped (too many in flight)")
    if not any_error:
        say("- none")
    say("")

    say("Loadgen CPU (% of one core) per run, to tell when the generator is the limit:")
    say("")
    for s in servers:
        parts = []
        for c in concurrencies:
            r = runs.get((s, c))
            parts.append(f"c{c} {number(r and r['loadgen_cpu'])}%")
        say(f"- {s}: " + ", ".join(parts))
    say("")

    say(f"### directory and newNonce under wrk ({settings.get('WRK_CONNECTIONS')} "
        f"connections, 2 threads, {settings.get('WRK_DURATION')}, GET)")
    say("")
    header = ["endpoint"]
    for s in servers:
        header += [f"{s} req/s", "p99 ms"]
    rows = []
    for what in ["directory", "newNonce"]:
        cells = [what]
        for s in servers:
            row = wrk.get((s, what))
            cells += [number(row and row["rps"]), number(row and row["p99_ms"], 2)]
        rows.append(cells)
    table(say, header, rows)
    say(END)
    print("\n".join(out))


def splice(path, section_path):
    """Puts the section into the file at `path` between its markers."""
    with open(section_path) as f:
        section = f.read().strip() + "\n"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    if BEGIN in text and END in text:
        before = text[: text.index(BEGIN)]
        after = text[text.index(END) + len(END):].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
