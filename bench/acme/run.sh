#!/usr/bin/env bash
# Whole-issuance benchmark: `basalt loadgen` drives Pebble (Debian's, in-memory,
# one process) and Basalt (`basalt dev`: every service its own process, remote
# VAs, mTLS between them), once on SQLite and once on PostgreSQL, one after the
# other in one run on this machine, with the same loadgen settings at each
# concurrency. For each server and concurrency it records orders/s, end-to-end
# and per-step latency, errors, the CPU-seconds per issued certificate summed over
# all of the server's processes (and PostgreSQL's), and the peak RSS summed over
# them; then directory and newNonce requests/s under wrk. Writes
# $WORK/results.md (Markdown, the tables of BENCHMARKS.md) and one loadgen JSON
# per run.
#
# Environment (all optional):
#   CONCURRENCY="1 8 16 64"   closed-loop concurrencies, each a run of DURATION
#   DURATION=30s WARMUP_ORDERS=20   measured run length; unmeasured orders first
#   SERVERS="pebble basalt-sqlite basalt-postgres"
#   PEBBLE_TIMEOUT=120        hard bound (s) on one Pebble run: Debian's Pebble 2.4.0
#                             is known to deadlock with 32 or more orders in flight
#   POSTGRES_URL=postgres://postgres@127.0.0.1:5432/basalt_bench   (created if missing)
#   WRK_DURATION=10s WRK_CONNECTIONS=16
#   WORK=/var/tmp/basalt-acme-bench   data dirs, reports, logs (reused across runs)
#   BASALT=path               the basalt binary (default: the release build)
#   ALONE_RATE=500 ALONE_DURATION=20s   an open-loop run (--rate) of Basalt on SQLite
#                             alone, after its closed-loop runs; ALONE_RATE=0 skips it
#   PROFILE=1 PROFILE_DURATION=10s   `perf record` of every process while Basalt on
#                             SQLite runs at concurrency 16 (not a measured run);
#                             skipped when perf is missing or PROFILE=0
#   OUT=BENCHMARKS.md         the file whose ACME section (between its markers) is
#                             replaced with the report; OUT= (empty) leaves it alone
#   PORT_BASE=25100 HTTP01_PORT=25002 DNS_PORT=25053 LISTEN_PORT=25000 PEBBLE_PORT=25400
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

CONCURRENCY="${CONCURRENCY:-1 8 16 64}"
DURATION="${DURATION:-30s}"
WARMUP_ORDERS="${WARMUP_ORDERS:-20}"
SERVERS="${SERVERS:-pebble basalt-sqlite basalt-postgres}"
PEBBLE_TIMEOUT="${PEBBLE_TIMEOUT:-120}"
POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/basalt_bench}"
WRK_DURATION="${WRK_DURATION:-10s}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-16}"
WORK="${WORK:-/var/tmp/basalt-acme-bench}"
PORT_BASE="${PORT_BASE:-25100}"
HTTP01_PORT="${HTTP01_PORT:-25002}"
DNS_PORT="${DNS_PORT:-25053}"
LISTEN_PORT="${LISTEN_PORT:-25000}"
PEBBLE_PORT="${PEBBLE_PORT:-25400}"
ALONE_RATE="${ALONE_RATE:-500}"
ALONE_DURATION="${ALONE_DURATION:-20s}"
PROFILE="${PROFILE:-1}"
PROFILE_DURATION="${PROFILE_DURATION:-10s}"
OUT="${OUT-$repo/BENCHMARKS.md}"
target="${CARGO_TARGET_DIR:-/var/tmp/basalt-target}"
BASALT="${BASALT:-$target/release/basalt}"

die() {
    echo "run.sh: $*" >&2
    exit 1
}

for tool in pebble pebble-challtestsrv wrk openssl python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install -y pebble wrk openssl python3 curl)"
done
[[ -x "$BASALT" ]] || die "no basalt binary at $BASALT (cargo build --release -p basalt)"
for c in $CONCURRENCY; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY must list positive numbers, not $c"
done

if [[ "$PROFILE" == 1 ]] && ! command -v perf >/dev/null; then
    echo "run.sh: perf is missing: no profile (apt-get install -y linux-perf)" >&2
    PROFILE=0
fi

mkdir -p "$WORK"
results="$WORK/results.md"
rows="$WORK/rows.jsonl"
: >"$rows"
pids=()

# Stops everything this script started; `basalt dev` stops its own services.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {
    local url=$1 what=$2 tries=0
    until curl -ksf -o /dev/null "$url"; do
        tries=$((tries + 1))
        ((tries < 600)) || die "$what did not answer $url"
        sleep 0.1
    done
}

# Every pid in the process tree under $1 (itself included).
tree() {
    local pid=$1 child
    echo "$pid"
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do
        tree "$child"
    done
}

# The pids a server's cost is summed over: its tree, and PostgreSQL's processes.
server_pids() {
    local root=$1 with_postgres=$2
    tree "$root"
    if [[ "$with_postgres" == 1 ]]; then
        pgrep -x postgres || true
    fi
}

# Python: what process `pid` is: a Basalt service by its config's name
# (`va-remote-1`), `dev` for the launcher, else the command's name (`pebble`,
# `postgres`). Raises OSError once the process is gone.
name_of_pid='
import os
def name_of(pid):
    args = open(f"/proc/{pid}/cmdline").read().split("\0")
    name = open(f"/proc/{pid}/comm").read().strip()
    if "--config" in args:
        return os.path.basename(args[args.index("--config") + 1]).removesuffix(".toml")
    if name == "basalt" and len(args) > 1:
        return args[1]
    return name
'

# CPU-seconds (user + system) used so far by each of the pids on stdin, as a JSON
# object keyed by what the process is (name_of_pid).
cpu_by_process() {
    python3 -c "$name_of_pid"'
import json, sys
hz = os.sysconf("SC_CLK_TCK")
totals = {}
for pid in sys.stdin.read().split():
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        name = name_of(pid)
    except OSError:
        continue
    totals[name] = totals.get(name, 0) + (int(fields[11]) + int(fields[12])) / hz
print(json.dumps(totals))'
}

# The summed RSS (MiB) of the pids on stdin; with `pss`, the summed PSS (each
# shared page counted once, split between the processes that map it).
rss_mib() {
    python3 -c '
import sys
field = "Pss:" if sys.argv[1:] == ["pss"] else "Rss:"
total = 0
for pid in sys.stdin.read().split():
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith(field):
                total += int(line.split()[1])
    except OSError:
        pass
print(f"{total / 1024:.1f}")' "$@"
}

# Samples the summed RSS of the pids listed in $2 every half second into $1 until
# killed: one process for the whole run (exec'd, so that `$!` is its pid and
# killing it stops it), so the sampling costs the machine little.
sample_rss() {
    exec python3 -c '
import sys, time
out, pids = sys.argv[1], open(sys.argv[2]).read().split()
peak = 0
while True:
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Rss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    peak = max(peak, total / 1024)
    with open(out, "w") as f:
        f.write(f"{peak:.1f}\n")
    time.sleep(0.5)' "$@"
}

# One measured loadgen run: warmup orders first (not measured), then the run for
# DURATION, with the server's CPU (per process) and peak RSS around it. $6 is the
# mode: `c16` is `--concurrency 16`; `r500` is `--rate 500` for ALONE_DURATION.
measure() {
    local server=$1 directory=$2 bundle=$3 root=$4 with_postgres=$5 mode=$6 bound=$7
    local json="$WORK/$server-$mode.json" rss_file="$WORK/$server-$mode.rss"
    local loadgen=("$BASALT" loadgen --directory "$directory" --ca-bundle "$bundle"
        --http01-listen "127.0.0.1:$HTTP01_PORT" --accounts 8 --allow-errors)
    local run_args warmup_args
    case "$mode" in
        c*)
            run_args=(--concurrency "${mode#c}" --duration "$DURATION")
            warmup_args=(--concurrency "${mode#c}" --orders "$WARMUP_ORDERS")
            ;;
        r*)
            run_args=(--rate "${mode#r}" --duration "$ALONE_DURATION" --max-in-flight 512)
            warmup_args=(--concurrency 16 --orders "$WARMUP_ORDERS")
            ;;
    esac
    echo "run.sh: $server, $mode" >&2
    timeout "$bound" "${loadgen[@]}" "${warmup_args[@]}" >"$WORK/$server-$mode.warmup.log" 2>&1 || true
    local before after status=0
    before=$(server_pids "$root" "$with_postgres" | cpu_by_process)
    server_pids "$root" "$with_postgres" >"$WORK/$server-$mode.pids"
    sample_rss "$rss_file" "$WORK/$server-$mode.pids" 2>/dev/null &
    local sampler=$!
    timeout "$bound" "${loadgen[@]}" "${run_args[@]}" --json "$json" >"$WORK/$server-$mode.log" 2>&1 ||
        status=$?
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    after=$(server_pids "$root" "$with_postgres" | cpu_by_process)
    python3 - "$server" "$mode" "$json" "$before" "$after" "$(cat "$rss_file" 2>/dev/null || echo 0)" \
        "$status" >>"$rows" <<'EOF'
import json, sys
server, mode, path, before, after, rss, status = sys.argv[1:]
before, after = json.loads(before), json.loads(after)
by_process = {name: after[name] - before.get(name, 0) for name in after}
row = {"server": server, "cpu_s": sum(by_process.values()), "cpu_by_process": by_process,
       "peak_rss_mib": float(rss), "exit": int(status)}
if mode.startswith("c"):
    row["concurrency"] = int(mode[1:])
else:
    row["rate"] = float(mode[1:])
try:
    row["report"] = json.load(open(path))
except (OSError, ValueError):
    row["report"] = None  # killed by the bound: no report
print(json.dumps(row))
EOF
}

# A profile of every process on the machine (`perf record -a`, no call graphs)
# while the loadgen runs at concurrency 16 for PROFILE_DURATION; not measured.
# Writes the samples, each as its process's name and its symbol, for report.py.
profile() {
    local server=$1 directory=$2 bundle=$3 root=$4
    local data="$WORK/$server.perf"
    echo "run.sh: $server, profile" >&2
    "$BASALT" loadgen --directory "$directory" --ca-bundle "$bundle" \
        --http01-listen "127.0.0.1:$HTTP01_PORT" --accounts 8 --allow-errors \
        --concurrency 16 --duration "$PROFILE_DURATION" --json "$WORK/$server-profile.json" \
        >"$WORK/$server-profile.log" 2>&1 &
    local loadgen=$!
    perf record -a -F 999 -o "$data" -- sleep "${PROFILE_DURATION%s}" >/dev/null 2>&1 || true
    wait "$loadgen" || true
    # pid -> name for the server's processes, then every sample as "name<TAB>dso<TAB>symbol".
    tree "$root" | python3 -c "$name_of_pid"'
import sys
for pid in sys.stdin.read().split():
    try:
        print(pid, name_of(pid))
    except OSError:
        pass' >"$WORK/$server.pids"
    perf script -i "$data" -F pid,ip,sym,dso 2>/dev/null | python3 -c '
import collections, json, re, sys
names = dict(line.split() for line in open(sys.argv[1]))
samples = collections.Counter()
by_process = collections.Counter()
total = 0
for line in sys.stdin:
    m = re.match(r"\s*(\d+)\s+[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)\s*$", line)
    if not m:
        continue
    pid, symbol, dso = m.groups()
    total += 1
    name = names.get(pid)
    if name is None:
        name = "loadgen and the rest" if pid != "0" else "idle"
    dso = dso.rsplit("/", 1)[-1]
    kind = ("kernel" if dso.startswith("[kernel") else "libc" if dso.startswith("lib")
            else "basalt" if dso == "basalt" else "other")
    samples[(name, dso, symbol or "?")] += 1
    by_process[(name, kind)] += 1
try:
    report = json.load(open(sys.argv[3]))
    orders, seconds = report["orders"]["ok"], report["elapsed_s"]
except (OSError, ValueError, KeyError):
    orders, seconds = 0, 0
print(json.dumps({"profile": [[n, d, s, c] for (n, d, s), c in samples.most_common(40)],
                  "by_process": [[n, k, c] for (n, k), c in by_process.most_common()],
                  "samples": total, "server": sys.argv[2], "orders": orders,
                  "seconds": round(seconds, 1)}))' "$WORK/$server.pids" "$server" \
        "$WORK/$server-profile.json" >>"$rows"
}

# directory or newNonce requests/s under wrk (GET: RFC 8555 §7.2 allows it for
# newNonce, and wrk waits for a body after HEAD).
wrk_row() {
    local server=$1 url=$2 what=$3 method=$4
    local script="$WORK/wrk-$method.lua" out="$WORK/$server-wrk-$what.txt"
    printf 'wrk.method = "%s"\n' "$method" >"$script"
    wrk -t2 -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$script" "$url" >"$out" 2>&1 || true
    python3 - "$server" "$what" "$out" >>"$rows" <<'EOF'
import json, re, sys
server, what, path = sys.argv[1:]
text = open(path).read()
rps = re.search(r"Requests/sec:\s+([0-9.]+)", text)
p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", text)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
print(json.dumps({"server": server, "wrk": what,
    "rps": float(rps.group(1)) if rps else None,
    "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None}))
EOF
}

# The newNonce URL of the directory at $1.
nonce_url() {
    curl -ksf "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["newNonce"])'
}

# The mock DNS every server validates through: every name is 127.0.0.1, where the
# loadgen answers http-01.
pebble-challtestsrv -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
    -management "127.0.0.1:$((DNS_PORT + 1))" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
    >"$WORK/challtestsrv.log" 2>&1 &
pids+=($!)

run_pebble() {
    local dir="$WORK/pebble"
    mkdir -p "$dir"
    # A CA and a server certificate from it (a self-signed server certificate is a
    # CA certificate to webpki, which refuses it as an end entity).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=localhost -keyout "$dir/key.pem" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' \
        >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/cert.pem" 2>/dev/null
    cat >"$dir/config.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$PEBBLE_PORT",
  "managementListenAddress": "127.0.0.1:$((PEBBLE_PORT + 1))",
  "certificate": "$dir/cert.pem", "privateKey": "$dir/key.pem",
  "httpPort": $HTTP01_PORT, "tlsPort": $((PEBBLE_PORT + 2)),
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
    PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$dir/config.json" \
        -dnsserver "127.0.0.1:$DNS_PORT" >"$WORK/pebble.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local directory="https://127.0.0.1:$PEBBLE_PORT/dir"
    wait_for "$directory" pebble
    sleep 1
    echo "{\"server\": \"pebble\", \"idle_rss_mib\": $(tree "$pid" | rss_mib), \"idle_pss_mib\": $(tree "$pid" | rss_mib pss)}" >>"$rows"
    for c in $CONCURRENCY; do
        measure pebble "$directory" "$dir/ca.pem" "$pid" 0 "c$c" "$PEBBLE_TIMEOUT"
    done
    wrk_row pebble "$directory" directory GET
    wrk_row pebble "$(nonce_url "$directory")" newNonce GET
    cleanup_one "$pid"
}

run_basalt() {
    local server=$1 db=$2
    local dir="$WORK/$server" with_postgres=0
    rm -rf "$dir"
    local args=(dev --data-dir "$dir" --port-base "$PORT_BASE" --listen "127.0.0.1:$LISTEN_PORT"
        --dns-resolver "127.0.0.1:$DNS_PORT" --http01-port "$HTTP01_PORT"
        --allow-private-addresses --rate-limits off)
    if [[ -n "$db" ]]; then
        # A fresh database each run, as the SQLite file is.
        if command -v psql >/dev/null; then
            psql "${db%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${db##*/}" >/dev/null
        fi
        args+=(--db "$db")
        with_postgres=1
    fi
    "$BASALT" "${args[@]}" >"$WORK/$server.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local tries=0
    until grep -q "basalt dev: ready" "$WORK/$server.log"; do
        tries=$((tries + 1))
        ((tries < 1200)) || die "$server did not start: see $WORK/$server.log"
        kill -0 "$pid" 2>/dev/null || die "$server exited: see $WORK/$server.log"
        sleep 0.1
    done
    local directory="https://127.0.0.1:$LISTEN_PORT/directory"
    sleep 2
    echo "{\"server\": \"$server\", \"idle_rss_mib\": $(tree "$pid" | rss_mib), \"idle_pss_mib\": $(tree "$pid" | rss_mib pss)}" >>"$rows"
    for c in $CONCURRENCY; do
        measure "$server" "$directory" "$dir/pki/api-ca.pem" "$pid" "$with_postgres" "c$c" 600
    done
    if [[ "$server" == basalt-sqlite && "$ALONE_RATE" != 0 ]]; then
        measure "$server" "$directory" "$dir/pki/api-ca.pem" "$pid" 0 "r$ALONE_RATE" 600
    fi
    if [[ "$server" == basalt-sqlite && "$PROFILE" == 1 ]]; then
        profile "$server" "$directory" "$dir/pki/api-ca.pem" "$pid"
    fi
    wrk_row "$server" "$directory" directory GET
    wrk_row "$server" "$(nonce_url "$directory")" newNonce GET
    cleanup_one "$pid"
}

cleanup_one() {
    local pid=$1 kept=() p
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do
        [[ "$p" == "$pid" ]] || kept+=("$p")
    done
    pids=("${kept[@]}")
}

for server in $SERVERS; do
    case "$server" in
        pebble) run_pebble ;;
        basalt-sqlite) run_basalt basalt-sqlite "" ;;
        basalt-postgres) run_basalt basalt-postgres "$POSTGRES_URL" ;;
        *) die "unknown server $server (pebble, basalt-sqlite, basalt-postgres)" ;;
    esac
done

# What the run was made on and with, for the report's header.
python3 - "$BASALT" >>"$rows" <<EOF
import json, os, platform, subprocess, sys
def out(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), None)
mem = next((int(line.split()[1]) for line in open("/proc/meminfo")
            if line.startswith("MemTotal:")), 0)
print(json.dumps({"meta": {
    "cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(mem / 1024 / 1024, 1),
    "kernel": platform.release(), "date": out("date", "-u", "+%Y-%m-%d %H:%M UTC"),
    "basalt": out(sys.argv[1], "--version"),
    "commit": out("git", "-C", "$repo", "rev-parse", "--short", "HEAD"),
    "rustc": out("rustc", "--version"),
    "pebble": out("dpkg-query", "-W", "-f", "\${Version}", "pebble"),
    "postgres": out("psql", "--version"),
    "settings": {"CONCURRENCY": "$CONCURRENCY", "DURATION": "$DURATION",
                 "WARMUP_ORDERS": "$WARMUP_ORDERS", "SERVERS": "$SERVERS",
                 "PEBBLE_TIMEOUT": "$PEBBLE_TIMEOUT", "ALONE_RATE": "$ALONE_RATE",
                 "ALONE_DURATION": "$ALONE_DURATION", "PROFILE": "$PROFILE",
                 "PROFILE_DURATION": "$PROFILE_DURATION", "WRK_DURATION": "$WRK_DURATION",
                 "WRK_CONNECTIONS": "$WRK_CONNECTIONS"},
}}))
EOF

python3 "$here/report.py" "$rows" "$here/notes.md" >"$results"
if [[ -n "$OUT" ]]; then
    python3 "$here/report.py" --splice "$OUT" "$results"
    echo "run.sh: wrote the ACME section of $OUT" >&2
fi
cat "$results"
echo "run.sh: $results" >&2
