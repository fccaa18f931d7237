#!/usr/bin/env bash
# llmrelay beside the LiteLLM proxy and the Portkey gateway, through the shared harness
# (../shared/bench: its README says what each scenario measures), in one interleaved run.
#
#   bench/gateway.sh                 # 2 passes x 2 rounds of direct, litellm, portkey and llmrelay
#   PASSES=1 ROUNDS=1 bench/gateway.sh
#   TARGETS=direct bench/gateway.sh  # llmrelay against the bare mock only
#
# llmrelay runs as a user would run it in production: `llmrelay serve`, one worker pinned to CPU 1,
# API keys on, the ledger on (SQLite in a fresh LLMRELAY_HOME), every provider but OpenAI without a
# key, OpenAI pointed at the harness's mock.  Rate limits are off (the harness sends thousands of
# requests a second from one key) and retries are off (as for the peers), so every request is
# exactly one ledger row.  At the end the server is stopped gracefully and the ledger is counted
# against the requests the server says it answered: nothing may be missing.
#
# Needs the harness installed once: ../shared/bench/install.sh.  Results: bench/results/<time>/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || true)}"
[[ -x "$HARNESS/run_all.sh" ]] || { echo "the shared harness is not at $HARNESS (set HARNESS)" >&2; exit 1; }
PORT="${PORT:-18500}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$HERE/results/$STAMP-gateway"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "${MOCK_PORT:-18080}"
trap 'kill -TERM ${SERVER:-} 2>/dev/null || true' EXIT
start_llmrelay "$PORT" "$OUT/serve.log" "${GW_CPU:-1}"

CUSTOM_URL="http://127.0.0.1:$PORT" CUSTOM_LABEL=llmrelay CUSTOM_HEADERS="Authorization: Bearer $KEY" \
  TARGETS="${TARGETS:-direct litellm portkey}" PASSES="${PASSES:-2}" ROUNDS="${ROUNDS:-2}" RESULTS_DIR="$OUT" \
  "$HARNESS/run_all.sh" | tee "$OUT/run_all.out"

# how many completions the server answered, by its own metrics, before it stops
curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics.txt"
kill -TERM "$SERVER"
wait "$SERVER" || true
trap - EXIT
"$ROOT/.venv/bin/python" - "$OUT/metrics.txt" "$LLMRELAY_HOME/llmrelay.db" <<'PY' | tee "$OUT/ledger_check.txt"
import re, sqlite3, sys
answered = 0
for line in open(sys.argv[1]):
    m = re.match(r'llmrelay_http_requests_total\{method="POST",route="/v1/chat/completions",status="200"\} (\S+)', line)
    if m:
        answered = int(float(m.group(1)))
db = sqlite3.connect(sys.argv[2])
rows = dict(db.execute("SELECT status, count(*) FROM ai_model_usage GROUP BY status").fetchall())
served = rows.get("success", 0) + rows.get("fallback", 0)
print(f"ledger: {sum(rows.values())} rows {rows}; completions answered (HTTP 200): {answered}; "
      f"missing rows: {answered - served}")
sys.exit(0 if served >= answered else 1)
PY
echo "results: $OUT"
