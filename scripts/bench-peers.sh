#!/usr/bin/env bash
# Measures Berth side by side with its peers on this machine, interleaved A B A B, and prints
# medians and ratios. Release binaries; a private berthd and docker-registry on loopback.
#
#   scripts/bench-peers.sh [all|run|latency|api|serve|density|pull] [RUNS]   (default: all, 10)
#
# Pairs and figures:
#   run      `berth run --rm hello` (daemon warm, image cached) vs `wasmtime run hello.wasm`
#   latency  daemon-side create and start-to-guest-entry percentiles (GET /berth/stats) over
#            RUNS x 20 `berth run --rm hello`
#   api      containers created, run to exit and removed per second through the API
#            (scripts/bench-density.py --churn, 2 clients)
#   serve    `wrk -t2 -c32 -d10s` against a published wasi:http hello vs
#            `wasmtime serve -S cli=y` of the same component (interleaved, RUNS/2 rounds)
#   density  N idle running containers (BERTH_DENSITY_N, default 10000): start time and daemon
#            RSS per container (scripts/bench-density.py)
#   pull     `berth pull` of an image with a 50 MiB layer from the local registry (store
#            emptied between runs) vs `skopeo copy docker://... oci:...` of the same image
# Peers are installed when missing: wasmtime-cli 48.0.8 (cargo install, slow: ~15 min on
# 2 cores), wrk, skopeo and docker-registry (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
RUNS=${2:-10}
root=$PWD
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if [[ "$WHAT" =~ ^(all|run|serve)$ ]] && ! command -v wasmtime >/dev/null; then
    cargo install wasmtime-cli --version 48.0.8 --locked
fi
cargo build --release --bins --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
./scripts/build-examples.sh >/dev/null
berth="$bin/berth"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.2f", n/1e6}'; }
report() { # name file_a file_b
    local a b
    a=$(median <"$2"); b=$(median <"$3")
    printf '%-6s berth %8s ms   peer %8s ms   ratio %.3f\n' "$1" "$(ms "$a")" "$(ms "$b")" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {print a/b}')"
}

# A private daemon.
export BERTH_HOST=unix://$work/berth.sock
""$bin/berthd"" --data-root "$work/state" -H "$BERTH_HOST" \
    --max-containers $(( ${BERTH_DENSITY_N:-10000} + 100 )) 2>"$work/berthd.log" &
for _ in $(seq 100); do $berth version >/dev/null 2>&1 && break; sleep 0.1; done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $RUNS runs each, interleaved"

want() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }
$berth build -q -t hello:bench examples/hello >/dev/null
berthd_pid=$(pgrep -f "berthd --data-root $work/state" | head -1)
stats() { curl -sf --unix-socket "$work/berth.sock" "http://berth/berth/stats$1"; }

# --- run ---------------------------------------------------------------------------------
if want run; then
$berth run --rm hello:bench >/dev/null   # warm
wasmtime run examples/hello/hello.wasm >/dev/null
: >"$work/run.a"; : >"$work/run.b"
for _ in $(seq "$RUNS"); do
    t=$(now); $berth run --rm hello:bench >/dev/null; echo $(( $(now) - t )) >>"$work/run.a"
    t=$(now); wasmtime run examples/hello/hello.wasm >/dev/null; echo $(( $(now) - t )) >>"$work/run.b"
done
report run "$work/run.a" "$work/run.b"
fi

# --- latency -----------------------------------------------------------------------------
if want latency; then
stats "?reset=1" >/dev/null
for _ in $(seq $((RUNS * 20))); do $berth run --rm hello:bench >/dev/null; done
echo "latency (us, $((RUNS * 20)) runs): $(stats "")"
fi

# --- api ---------------------------------------------------------------------------------
if want api; then
python3 "$root/scripts/bench-density.py" "$work/berth.sock" "$berthd_pid" hello:bench --churn $((RUNS * 100))
fi

# --- serve -------------------------------------------------------------------------------
if want serve; then
$berth build -q -t web:bench examples/http-hello >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port)
$berth run -d --name web -p "127.0.0.1:$bport:80" web:bench >/dev/null
wport=$(free_port)
wasmtime serve -S cli=y --addr "127.0.0.1:$wport" examples/http-hello/http-hello.wasm 2>/dev/null &
wpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$bport/" >/dev/null && curl -sf "http://127.0.0.1:$wport/" >/dev/null && break; sleep 0.1; done
wrk_once() { # port -> "req/s p99_ms"
    wrk -t2 -c32 -d10s --latency "http://127.0.0.1:$1/" | awk '
        /Requests\/sec/ {r=$2}
        /^ +99%/ {v=$2; if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; p=v}
        END {print r, p}'
}
rounds=$(( RUNS / 2 > 0 ? RUNS / 2 : 1 ))
: >"$work/serve.a"; : >"$work/serve.b"
for _ in $(seq "$rounds"); do
    wrk_once "$bport" >>"$work/serve.a"
    wrk_once "$wport" >>"$work/serve.b"
done
ra=$(cut -d' ' -f1 "$work/serve.a" | median); rb=$(cut -d' ' -f1 "$work/serve.b" | median)
pa=$(cut -d' ' -f2 "$work/serve.a" | median); pb=$(cut -d' ' -f2 "$work/serve.b" | median)
printf 'serve  berth %8.0f req/s p99 %6.2f ms   wasmtime serve %8.0f req/s p99 %6.2f ms   req/s ratio %.3f   p99 ratio %.3f\n' \
    "$ra" "$pa" "$rb" "$pb" "$(awk -v a="$ra" -v b="$rb" 'BEGIN {print a/b}')" "$(awk -v a="$pa" -v b="$pb" 'BEGIN {print a/b}')"
kill "$wpid" 2>/dev/null || true
$berth rm -f web >/dev/null
fi

# --- density -----------------------------------------------------------------------------
if want density; then
python3 "$root/scripts/bench-density.py" "$work/berth.sock" "$berthd_pid" hello:bench "${BERTH_DENSITY_N:-10000}"
fi

# --- pull --------------------------------------------------------------------------------
want pull || exit 0
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
EOF
/usr/bin/docker-registry serve "$work/registry.yml" 2>/dev/null &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
mkdir -p "$work/big"
cp examples/hello/hello.wasm "$work/big/"
head -c $((50 * 1024 * 1024)) /dev/urandom >"$work/big/blob.bin"
printf 'FROM scratch\nCOPY blob.bin /data/blob.bin\nCOPY hello.wasm /hello.wasm\nENTRYPOINT ["/hello.wasm"]\n' >"$work/big/Dockerfile"
img=127.0.0.1:$port/bench/big:1
$berth build -q -t "$img" "$work/big" >/dev/null
$berth push "$img" >/dev/null
$berth rmi "$img" >/dev/null
: >"$work/pull.a"; : >"$work/pull.b"
for i in $(seq "$RUNS"); do
    t=$(now); $berth pull -q "$img" >/dev/null; echo $(( $(now) - t )) >>"$work/pull.a"
    $berth rmi "$img" >/dev/null
    t=$(now); skopeo copy -q --src-tls-verify=false "docker://$img" "oci:$work/oci-$i:big" >/dev/null
    echo $(( $(now) - t )) >>"$work/pull.b"
    rm -rf "$work/oci-$i"
done
report pull "$work/pull.a" "$work/pull.b"
