#!/usr/bin/env bash
# Where a saturated llmrelay spends its time: `llmrelay serve` (one worker pinned to CPU 1, auth
# and the SQLite ledger on, as in gateway.sh) driven by wrk from CPU 0 against the shared
# harness's mock, sampled by py-spy for the middle of the run; prints the share of samples by
# the package each sampled frame belongs to (self time) and the top frames inclusive.
#
#   bench/profile.sh            # 20 s of load, 12 s of sampling
#   SECS=30 bench/profile.sh
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
HOME_DIR="$(mktemp -d /tmp/llmrelay-profile-home.XXXXXX)"
[[ -x "$ROOT/.venv/bin/py-spy" ]] || { echo "py-spy is missing: .venv/bin/pip install py-spy" >&2; exit 1; }

taskset -c 0 "$DEPS/venv-harness/bin/python" "$HARNESS/mock/mock_upstream.py" --port "$MOCK_PORT" \
  --max-seconds 600 > "$OUT/mock.log" 2>&1 &
MOCK=$!
export LLMRELAY_HOME="$HOME_DIR" OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" OPENAI_API_KEY=sk-mock \
  LLMRELAY_DEFAULT_PROVIDER=openai LLMRELAY_RATE_RPM=0 LLMRELAY_RATE_TPM=0 LLMRELAY_MAX_RETRIES=0 \
  LLMRELAY_LOG_LEVEL=warning
unset ANTHROPIC_API_KEY GOOGLE_API_KEY OPENROUTER_API_KEY LLMRELAY_DATABASE_URL LLMRELAY_REDIS_URL || true
taskset -c 1 "$ROOT/.venv/bin/llmrelay" serve --port "$PORT" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER $MOCK 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "^admin api key: " "$OUT/serve.log" 2>/dev/null && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.2
done
KEY="$(sed -n 's/^admin api key: //p' "$OUT/serve.log")"
printf '{"model":"mock","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32}' > "$OUT/body.json"

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
