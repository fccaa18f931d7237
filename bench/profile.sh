#!/usr/bin/env bash
# Where a saturated llmrelay spends its time: `llmrelay serve` (one worker pinned to CPU 1, auth
# and the SQLite ledger on, as in gateway.sh) driven by wrk from CPU 0 against the shared
# harness's mock, sampled by py-spy for the middle of the run; prints the share of samples by
# the package each sampled frame belongs to (self time) and the top frames inclusive.
#
#   bench/profile.sh            # 20 s of load, 12 s of sampling
#   SECS=30 bench/profile.sh
#   BODY=bench/results/<time>-tools/tools.json bench/profile.sh    # another request body
#
# Needs py-spy in the venv (`.venv/bin/pip install py-spy`), wrk, and ../shared/bench installed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
SECS="${SECS:-20}"
PORT="${PORT:-18501}"
MOCK_PORT="${MOCK_PORT:-18081}"
OUT="$HERE/results/profile-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
[[ -x "$ROOT/.venv/bin/py-spy" ]] || { echo "py-spy is missing: .venv/bin/pip install py-spy" >&2; exit 1; }

taskset -c 0 "$DEPS/venv-harness/bin/python" "$HARNESS/mock/mock_upstream.py" --port "$MOCK_PORT" \
  --max-seconds 600 > "$OUT/mock.log" 2>&1 &
MOCK=$!
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
trap 'kill -TERM ${SERVER:-} $MOCK 2>/dev/null || true' EXIT
start_llmrelay "$PORT" "$OUT/serve.log"
if [[ -n "${BODY:-}" ]]; then cp "$BODY" "$OUT/body.json"; else write_body "$OUT/body.json"; fi

BENCH_BODY_FILE="$OUT/body.json" BENCH_WRK_OUT="$OUT/wrk.json" taskset -c 0 wrk -t1 -c64 -d"${SECS}s" \
  -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer $KEY" \
  "http://127.0.0.1:$PORT/v1/chat/completions" > /dev/null &
WRK=$!
sleep $(( SECS / 5 ))
taskset -c 0 "$ROOT/.venv/bin/py-spy" record --pid "$SERVER" --duration $(( SECS * 3 / 5 )) --rate 250 \
  --format raw --output "$OUT/stacks.txt" --nonblocking > "$OUT/py-spy.log" 2>&1
wait "$WRK"
echo "wrk: $(cat "$OUT/wrk.json")"

"$ROOT/.venv/bin/python" "$HERE/profile_summary.py" "$OUT/stacks.txt" | tee "$OUT/summary.txt"
echo "stacks: $OUT/stacks.txt"
