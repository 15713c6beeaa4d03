"""The Markdown tables of bench/acme/run.sh, from its rows.jsonl.

Usage: report.py ROWS NPROC DURATION WARMUP_ORDERS
"""

import json
import sys

STEPS = [
    "new_order",
    "authorization",
    "challenge",
    "poll_authorization",
    "finalize",
    "poll_order",
    "download",
]


def load(path):
    runs, idle, wrk = {}, {}, {}
    with open(path) as rows:
        for line in rows:
            row = json.loads(line)
            server = row["server"]
            if "idle_rss_mib" in row:
                idle[server] = row["idle_rss_mib"]
            elif "wrk" in row:
                wrk[(server, row["wrk"])] = row
            else:
                runs[(server, row["concurrency"])] = row
    return runs, idle, wrk


def number(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def ratio(basalt, pebble, higher_is_better=True):
    if basalt is None or pebble is None or basalt == 0 or pebble == 0:
        return "—"
    return f"{basalt / pebble:.2f}×" if higher_is_better else f"{pebble / basalt:.2f}×"


def summary(run):
    """orders/s, p50, p99, ok, failed, CPU-s per certificate, peak RSS of one run."""
    report = run["report"] if run else None
    if not report:
        return None
    ok = report["orders"]["ok"]
    return {
        "rps": report["orders_per_second"],
        "p50": report["latency"]["p50_ms"],
        "p90": report["latency"]["p90_ms"],
        "p99": report["latency"]["p99_ms"],
        "ok": ok,
        "failed": report["orders"]["failed"],
        "errors": report["errors"],
        "cpu_per_cert": run["cpu_s"] / ok if ok else None,
        "rss": run["peak_rss_mib"],
        "loadgen_cpu": report["cpu"]["percent_of_one_core"],
        "steps": report["steps"],
    }


def main():
    path, nproc, duration, warmup = sys.argv[1:]
    runs, idle, wrk = load(path)
    servers = []
    for server, _ in list(runs) + [(s, 0) for s in idle]:
        if server not in servers:
            servers.append(server)
    basalts = [s for s in servers if s != "pebble"]
    concurrencies = sorted({c for _, c in runs})
    out = []
    say = out.append

    say(f"Closed loop, {duration} per run after {warmup} unmeasured orders, on {nproc} CPUs.")
    say("CPU and RSS are summed over every process of the server (Basalt: `basalt dev`")
    say("and its services; with PostgreSQL, its processes too).")
    say("")
    header = "| concurrency | " + " | ".join(
        f"{s} orders/s | p50 ms | p99 ms | ok/failed" for s in servers
    )
    header += "".join(f" | {s} ÷ pebble orders/s" for s in basalts) + " |"
    say(header)
    say("|" + "---|" * (1 + 4 * len(servers) + len(basalts)))
    for c in concurrencies:
        cells = [str(c)]
        sums = {s: summary(runs.get((s, c))) for s in servers}
        for s in servers:
            r = sums[s]
            if r is None:
                cells += ["no report (killed at the bound)", "—", "—", "—"]
            else:
                cells += [number(r["rps"]), number(r["p50"]), number(r["p99"]),
                          f"{r['ok']}/{r['failed']}"]
        pebble = sums.get("pebble")
        for s in basalts:
            b = sums[s]
            cells.append(ratio(b and b["rps"], pebble and pebble["rps"]))
        say("| " + " | ".join(cells) + " |")
    say("")

    say("Cost per certificate and memory:")
    say("")
    say("| concurrency | " + " | ".join(
        f"{s} CPU-s/cert | peak RSS MiB" for s in servers) + " |")
    say("|" + "---|" * (1 + 2 * len(servers)))
    for c in concurrencies:
        cells = [str(c)]
        for s in servers:
            r = summary(runs.get((s, c)))
            cells += [number(r and r["cpu_per_cert"], 4), number(r and r["rss"])]
        say("| " + " | ".join(cells) + " |")
    say("| idle | " + " | ".join(f"— | {number(idle.get(s))}" for s in servers) + " |")
    say("")

    if concurrencies:
        c = concurrencies[0]
        say(f"Where the time goes at concurrency {c}: median ms per step (the loadgen's")
        say("own timings; polls include the waits the server asked for with Retry-After).")
        say("")
        say("| step | " + " | ".join(servers) + " |")
        say("|" + "---|" * (1 + len(servers)))
        for step in STEPS:
            cells = [step]
            for s in servers:
                r = summary(runs.get((s, c)))
                stat = r and r["steps"].get(step)
                cells.append(number(stat and stat["count"] and stat["p50_ms"]))
            say("| " + " | ".join(cells) + " |")
        say("")

    say("Errors (all runs):")
    say("")
    any_error = False
    for (server, c), run in sorted(runs.items()):
        r = summary(run)
        if r is None:
            any_error = True
            say(f"- {server}, concurrency {c}: no report, the run was killed at its bound")
            continue
        for error in r["errors"]:
            any_error = True
            say(f"- {server}, concurrency {c}: {error['count']} × {error['kind']}")
    if not any_error:
        say("- none")
    say("")

    say("Loadgen CPU (% of one core) per run, to tell when the generator is the limit:")
    say("")
    for s in servers:
        parts = []
        for c in concurrencies:
            r = summary(runs.get((s, c)))
            parts.append(f"c{c} {number(r and r['loadgen_cpu'])}%")
        say(f"- {s}: " + ", ".join(parts))
    say("")

    say("| wrk, 2 threads | " + " | ".join(f"{s} req/s | p99 ms" for s in servers) + " |")
    say("|" + "---|" * (1 + 2 * len(servers)))
    for what in ["directory", "newNonce"]:
        cells = [what]
        for s in servers:
            row = wrk.get((s, what))
            cells += [number(row and row["rps"]), number(row and row["p99_ms"], 2)]
        say("| " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
