#!/usr/bin/env bash
# Which ASGI server `llmrelay serve` runs on: the same app (auth and the SQLite ledger on, as in
# gateway.sh) under uvicorn with httptools, uvicorn with h11, Granian and Hypercorn, each pinned
# to CPU 1 with one worker, saturated by wrk from CPU 0 (64 connections) against the shared
# harness's mock; reports req/s and the server's CPU per request, and uvicorn+httptools' ratio.
#
#   bench/http_server.sh          # 15 s per server after a 5 s warm-up
#
# Needs granian and hypercorn in the venv (`.venv/bin/pip install granian hypercorn`; they are
# not llmrelay dependencies), wrk, and ../shared/bench installed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
SECS="${SECS:-15}"
PORT=18502
MOCK_PORT=18082
OUT="$HERE/results/http-server-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
BIN="$ROOT/.venv/bin"
"$BIN/llmrelay" db upgrade > /dev/null
"$BIN/llmrelay" users add bench --admin > /dev/null
KEY="$("$BIN/llmrelay" keys create --user bench | tail -1)"
write_body "$OUT/body.json"

taskset -c 0 "$DEPS/venv-harness/bin/python" "$HARNESS/mock/mock_upstream.py" --port "$MOCK_PORT" \
  --max-seconds 900 > "$OUT/mock.log" 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true' EXIT
APP=llmrelay.api.app:app_factory
declare -A CMD=(
  [uvicorn-httptools]="$BIN/uvicorn --factory $APP --port $PORT --loop uvloop --http httptools --no-access-log --log-level warning"
  [uvicorn-h11]="$BIN/uvicorn --factory $APP --port $PORT --loop uvloop --http h11 --no-access-log --log-level warning"
  [granian]="$BIN/granian --interface asgi --factory --port $PORT --workers 1 --loop uvloop --log-level warning $APP"
  [hypercorn]="$BIN/hypercorn --bind 127.0.0.1:$PORT --worker-class uvloop --log-level warning ${APP}()"
)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tree_ticks() {  # the server and its children (granian runs its worker as a child process)
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do total=$(( total + $(cpu_ticks "$p") )); done
  echo "$total"
}
for name in uvicorn-httptools uvicorn-h11 granian hypercorn; do
  # shellcheck disable=SC2086
  taskset -c 1 ${CMD[$name]} > "$OUT/$name.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.2; done
  run_wrk() {
    BENCH_BODY_FILE="$OUT/body.json" BENCH_WRK_OUT="$2" taskset -c 0 wrk -t1 -c64 -d"$1s" \
      -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/chat/completions" \
      > /dev/null
  }
  run_wrk 5 "$OUT/$name-warm.json"
  t0=$(tree_ticks "$SERVER")
  run_wrk "$SECS" "$OUT/$name.json"
  t1=$(tree_ticks "$SERVER")
  kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
  sleep 1
  "$BIN/python" - "$OUT/$name.json" "$name" $(( t1 - t0 )) "$(getconf CLK_TCK)" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
ticks, hz = int(sys.argv[3]), int(sys.argv[4])
errors = sum(r["errors"].values())
print(f"{sys.argv[2]:18s} {r['rps']:8,.0f} req/s  {1000 * ticks / hz / r['requests']:.3f} CPU ms/req  "
      f"p50 {r['latency_ms']['p50']:.1f} ms  errors {errors}")
PY
done
"$BIN/python" - "$OUT/summary.txt" <<'PY'
import re, sys
rows = [(line.split()[0], float(line.split()[1].replace(",", ""))) for line in open(sys.argv[1])]
base = dict(rows)["uvicorn-httptools"]
print("req/s ÷ uvicorn-httptools: " + ", ".join(f"{name} {rps / base:.2f}×" for name, rps in rows))
PY
echo "results: $OUT"
