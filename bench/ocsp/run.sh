#!/usr/bin/env bash
# OCSP responder benchmark: Basalt's responder (`basalt ocsp`, started by
# `basalt dev`) and OpenSSL's own responder (`openssl ocsp -port`) answer GET
# requests for the same issuer and the same few thousand serials, one after the
# other in the same run, under wrk. Prints a Markdown table (also written to
# $WORK/results.md). See BENCHMARKS.md for what the numbers mean.
#
# Environment (all optional):
#   SERIALS=2000            distinct serials, one OCSP request each
#   THREADS=2 CONNECTIONS=16 DURATION=20s   wrk settings, the same for every responder
#   COLD_DURATION=10s       the first run against Basalt, its cache empty
#   OPENSSL_MULTI=2         also run `openssl ocsp -multi N` (0 skips that row)
#   PIN=1                   then restart Basalt and `openssl ocsp -multi N` pinned to
#                           CPU 1 and load them from wrk (one thread) pinned to CPU 0
#                           (0 skips; needs 2 CPUs and taskset)
#   WORK=/var/tmp/basalt-ocsp-bench   data dir, requests, logs (reused across runs)
#   BASALT=path             the basalt binary (default: release build if present, else debug)
#   PORT_BASE=24100 LISTEN_PORT=24000 OPENSSL_PORT=24190 OPENSSL_MULTI_PORT=24191
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

SERIALS="${SERIALS:-2000}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
DURATION="${DURATION:-20s}"
COLD_DURATION="${COLD_DURATION:-10s}"
OPENSSL_MULTI="${OPENSSL_MULTI:-2}"
PIN="${PIN:-1}"
WORK="${WORK:-/var/tmp/basalt-ocsp-bench}"
PORT_BASE="${PORT_BASE:-24100}"
LISTEN_PORT="${LISTEN_PORT:-24000}"
OPENSSL_PORT="${OPENSSL_PORT:-24190}"
OPENSSL_MULTI_PORT="${OPENSSL_MULTI_PORT:-24191}"
target="${CARGO_TARGET_DIR:-/var/tmp/basalt-target}"
if [[ -z "${BASALT:-}" ]]; then
    if [[ -x "$target/release/basalt" ]]; then
        BASALT="$target/release/basalt"
    else
        BASALT="$target/debug/basalt"
    fi
fi

die() {
    echo "run.sh: $*" >&2
    exit 1
}

if [[ "$PIN" == 1 && "$(nproc)" -lt 2 ]]; then
    echo "run.sh: one CPU only: no pinned runs" >&2
    PIN=0
fi
tools=(wrk openssl curl base64)
[[ "$PIN" == 1 ]] && tools+=(taskset)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install -y $tool)"
done
[[ -x "$BASALT" ]] || die "no basalt binary at $BASALT (cargo build --release -p basalt)"
[[ "$SERIALS" =~ ^[1-9][0-9]*$ ]] || die "SERIALS must be a positive number"

mkdir -p "$WORK"
data="$WORK/basalt"
pids=()

# Stops everything this script started: `basalt dev` stops its services itself.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        # `openssl ocsp -multi` leaves its worker processes behind otherwise.
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $2 seconds for `$1` (a command) to succeed.
wait_for() {
    local check="$1" seconds="$2" i
    for ((i = 0; i < seconds * 4; i++)); do
        if eval "$check" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# --- Basalt -----------------------------------------------------------------
ocsp_port=$((PORT_BASE + 4))
# Starts `basalt dev` (every service), prefixed by the words of $1 (e.g.
# `taskset -c 1`, which its services inherit), and waits until it is ready.
start_basalt() {
    local prefix="$1" i
    echo "run.sh: starting ${prefix:+$prefix }basalt dev ($BASALT), OCSP responder on 127.0.0.1:$ocsp_port"
    # shellcheck disable=SC2086 # the prefix is words
    $prefix "$BASALT" dev --data-dir "$data" --rate-limits off --remote-vas 0 \
        --listen "127.0.0.1:$LISTEN_PORT" --port-base "$PORT_BASE" >"$WORK/dev.log" 2>&1 &
    pids+=($!)
    local dev_pid=$!
    for ((i = 0; i < 720; i++)); do
        grep -q '^basalt dev: ready' "$WORK/dev.log" && break
        kill -0 "$dev_pid" 2>/dev/null || { tail -n 40 "$WORK/dev.log" >&2; die "basalt dev exited"; }
        sleep 0.25
    done
    grep -q '^basalt dev: ready' "$WORK/dev.log" || die "basalt dev not ready after 180 s (see $WORK/dev.log)"
}
start_basalt ""

issuer="$data/pki/intermediate-ecdsa.pem"
issuer_key="$data/ca-keys/intermediate-ecdsa.key"
root="$data/pki/root-ecdsa.pem"
grep -q 'PRIVATE KEY' "$issuer_key" 2>/dev/null ||
    die "$issuer_key is not a PEM key (was $data prepared with --ca-keys softhsm? remove it)"

# --- Serials and GET paths ----------------------------------------------------
# Random 16-byte serials with the top bit clear (positive, 16 bytes of DER).
issuer_fp="$(openssl x509 -in "$issuer" -noout -fingerprint -sha256 | tr -dc '0-9A-F' | cut -c1-16)"
paths="$WORK/paths-$SERIALS-$issuer_fp.txt"
if [[ ! -s "$paths" ]]; then
    echo "run.sh: making $SERIALS OCSP requests"
    reqs="$WORK/requests"
    rm -rf "$reqs"
    mkdir -p "$reqs"
    openssl rand -hex $((16 * SERIALS)) | fold -w 32 | sed 's/^./5/' >"$WORK/serials.txt"
    [[ "$(sort -u "$WORK/serials.txt" | wc -l)" -eq "$SERIALS" ]] || die "serials are not distinct"
    : >"$paths.tmp"
    while read -r serial; do
        openssl ocsp -issuer "$issuer" -serial "0x$serial" -no_nonce -reqout "$reqs/$serial.der" >/dev/null
        printf '/%s\n' "$(base64 -w0 "$reqs/$serial.der" | sed -e 's|/|%2F|g' -e 's|+|%2B|g' -e 's|=|%3D|g')" >>"$paths.tmp"
    done <"$WORK/serials.txt"
    cp "$WORK/serials.txt" "$WORK/serials-$SERIALS-$issuer_fp.txt"
    mv "$paths.tmp" "$paths"
fi
serials="$WORK/serials-$SERIALS-$issuer_fp.txt"
[[ "$(sort -u "$paths" | wc -l)" -eq "$SERIALS" ]] || die "$paths does not hold $SERIALS distinct requests"

# --- OpenSSL's responder -----------------------------------------------------
# An empty index: every serial is missing from it, so it answers `unknown`, as
# Basalt does for serials of its issuer that it never issued.
ossl="$WORK/openssl"
mkdir -p "$ossl"
: >"$ossl/index.txt"
# Starts OpenSSL's responder on port $1, logging to $2, with the further
# options given; prefixed by the words of $OPENSSL_PREFIX.
start_openssl() {
    local port="$1" log="$2"
    shift 2
    # shellcheck disable=SC2086 # the prefix is words
    ${OPENSSL_PREFIX:-} openssl ocsp -index "$ossl/index.txt" -port "$port" -rsigner "$issuer" -rkey "$issuer_key" \
        -CA "$issuer" -nmin 60 -ignore_err "$@" >"$log" 2>&1 &
    pids+=($!)
}
start_openssl "$OPENSSL_PORT" "$ossl/responder.log"
if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
    start_openssl "$OPENSSL_MULTI_PORT" "$ossl/responder-multi.log" -multi "$OPENSSL_MULTI"
fi

# Asks one responder, through OpenSSL's client, for the first serial, checks
# the signature up to the root, and prints the status line.
ask() {
    local url="$1"
    openssl ocsp -issuer "$issuer" -serial "0x$(head -n 1 "$serials")" -no_nonce \
        -url "$url" -CAfile "$root" 2>&1
}
declare -A urls=(
    [basalt]="http://127.0.0.1:$ocsp_port"
    [openssl]="http://127.0.0.1:$OPENSSL_PORT"
)
names=(basalt openssl)
if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
    urls[openssl-multi]="http://127.0.0.1:$OPENSSL_MULTI_PORT"
    names+=(openssl-multi)
fi
for name in "${names[@]}"; do
    url="${urls[$name]}"
    wait_for "ask $url | grep -q 'Response verify OK'" 30 || {
        ask "$url" >&2 || true
        die "$name at $url gave no verifiable answer"
    }
    answer="$(ask "$url" | grep -E '^0x[0-9A-Fa-f]+: ')"
    [[ "$answer" == *": unknown" ]] || die "$name answered '$answer', not unknown"
    # And the GET form wrk sends: HTTP 200 with an OCSP response.
    code="$(curl -s -o "$WORK/get-$name.der" -w '%{http_code} %{content_type}' "$url$(head -n 1 "$paths")")"
    [[ "$code" == "200 application/ocsp-response"* ]] || die "$name: GET gave '$code'"
    openssl ocsp -respin "$WORK/get-$name.der" -issuer "$issuer" -CAfile "$root" -resp_text \
        >"$WORK/get-$name.txt" 2>&1
    grep -q 'Cert Status: unknown' "$WORK/get-$name.txt" || die "$name: GET answer is not unknown"
    echo "run.sh: $name ($url) answers unknown, signature verified (POST and GET)"
done

# --- Load --------------------------------------------------------------------
declare -A results
# One value of a row's RESULT line: $1 row, $2 key.
field() {
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"${results[$1]}"
}
# Runs wrk against one responder: $1 row name, $2 url, then wrk's settings;
# prefixed by the words of $LOADER, if set.
load() {
    local row="$1" url="$2" line
    shift 2
    echo "run.sh: ${LOADER:+$LOADER }wrk $* $url  [$row]"
    # shellcheck disable=SC2086 # the prefix is words
    line="$(PATHS="$paths" ${LOADER:-} wrk "$@" --latency -s "$here/paths.lua" "$url" | tee "$WORK/wrk-$row.log" | grep '^RESULT ')" ||
        die "wrk gave no result for $row (see $WORK/wrk-$row.log)"
    results[$row]="$line"
    echo "  $line"
}
settings=(-t "$THREADS" -c "$CONNECTIONS")

# Cold: Basalt's responder process has just started, so its cache is empty and
# the first request for each path is signed by the CA, later ones come from the
# cache. This run is also the warm-up: it must reach every path.
load basalt-cold "${urls[basalt]}" "${settings[@]}" -d "$COLD_DURATION"
[[ "$(field basalt-cold requests)" -ge "$SERIALS" ]] ||
    die "the cold run did not cover all $SERIALS paths; raise COLD_DURATION"

for name in "${names[@]}"; do
    load "$name" "${urls[$name]}" "${settings[@]}" -d "$DURATION"
done

# Pinned: Basalt (every service) and `openssl ocsp -multi N` started anew on
# CPU 1 alone, wrk with one thread on CPU 0, so that the load generator takes no
# CPU from the responder it measures; each responder gets the same one CPU.
# Started pinned rather than moved, so that each sizes its workers to the one
# CPU it has. OpenSSL's one-process responder is left out: it answered nothing
# under wrk above.
if [[ "$PIN" == 1 ]]; then
    cleanup
    start_basalt "taskset -c 1"
    if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
        OPENSSL_PREFIX="taskset -c 1" start_openssl "$OPENSSL_MULTI_PORT" \
            "$ossl/responder-multi-pinned.log" -multi "$OPENSSL_MULTI"
    fi
    pinned_names=(basalt)
    [[ "$OPENSSL_MULTI" -gt 0 ]] && pinned_names+=(openssl-multi)
    for name in "${pinned_names[@]}"; do
        wait_for "ask ${urls[$name]} | grep -q 'Response verify OK'" 30 ||
            die "$name (pinned) gave no verifiable answer"
    done
    pinned=(-t 1 -c "$CONNECTIONS")
    export LOADER="taskset -c 0"
    load basalt-pinned-cold "${urls[basalt]}" "${pinned[@]}" -d "$COLD_DURATION"
    for name in "${pinned_names[@]}"; do
        load "$name-pinned" "${urls[$name]}" "${pinned[@]}" -d "$DURATION"
    done
    unset LOADER
fi

# --- Report ------------------------------------------------------------------
ms() {
    awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'
}
row() {
    local name="$1" label="$2" errs
    errs=$(( $(field "$name" connect_errors) + $(field "$name" read_errors) + $(field "$name" write_errors) + $(field "$name" timeouts) ))
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(field "$name" requests)" \
        "$(field "$name" rps)" "$(ms "$(field "$name" p50_us)")" "$(ms "$(field "$name" p99_us)")" \
        "$errs" "$(field "$name" non2xx)"
}
profile="$(basename "$(dirname "$BASALT")")"
{
    echo "## OCSP GET, $SERIALS distinct serials, $CONNECTIONS connections"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Basalt: $(git -C "$repo" rev-parse --short HEAD), $profile build ($BASALT)"
    echo "- $(openssl version)"
    echo "- $(wrk --version 2>&1 | head -n 1 | sed 's/ Copyright.*//')"
    echo "- $(nproc) CPUs: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
    echo
    echo "Shared: every process on both CPUs, wrk -t$THREADS."
    echo
    echo "| responder | requests | responses/s | p50 ms | p99 ms | socket errors | non-2xx |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    row basalt-cold "Basalt, cold cache (first $COLD_DURATION after start)"
    row basalt "Basalt, warm cache ($DURATION)"
    row openssl "openssl ocsp ($DURATION)"
    if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
        row openssl-multi "openssl ocsp -multi $OPENSSL_MULTI ($DURATION)"
    fi
    echo
    if [[ "$PIN" == 1 ]]; then
        echo "Pinned: the responder on CPU 1, wrk -t1 on CPU 0."
        echo
        echo "| responder | requests | responses/s | p50 ms | p99 ms | socket errors | non-2xx |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        row basalt-pinned-cold "Basalt, cold cache (first $COLD_DURATION after start)"
        row basalt-pinned "Basalt, warm cache ($DURATION)"
        if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
            row openssl-multi-pinned "openssl ocsp -multi $OPENSSL_MULTI ($DURATION)"
        fi
        echo
    fi
    awk -v b="$(field basalt rps)" -v o="$(field openssl rps)" \
        'BEGIN { if (o > 0) printf "Basalt (warm) / openssl ocsp: %.2fx responses per second\n", b / o; else print "openssl ocsp (one process) answered no request under wrk" }'
    if [[ "$OPENSSL_MULTI" -gt 0 ]]; then
        awk -v b="$(field basalt rps)" -v o="$(field openssl-multi rps)" -v n="$OPENSSL_MULTI" \
            'BEGIN { if (o > 0) printf "Basalt (warm) / openssl ocsp -multi %d: %.2fx responses per second\n", n, b / o }'
        if [[ "$PIN" == 1 ]]; then
            awk -v b="$(field basalt-pinned rps)" -v o="$(field openssl-multi-pinned rps)" -v n="$OPENSSL_MULTI" \
                'BEGIN { if (o > 0) printf "Pinned: Basalt (warm) / openssl ocsp -multi %d: %.2fx responses per second\n", n, b / o }'
        fi
    fi
} | tee "$WORK/results.md"
