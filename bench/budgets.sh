#!/usr/bin/env bash
# What a budget check costs a request: `llmrelay serve` (one worker pinned to CPU 1, keys and the SQLite
# ledger on, as in gateway.sh) saturated by wrk from CPU 0 (64 connections) with the harness's plain
# body, asked by two users in turn over ROUNDS rounds: `plain` has no budget, `budgeted` has a monthly
# hard budget (large enough never to bite: every request is checked, priced at its worst case, reserved
# on a lease and settled).  The mock's model is given a price (GPT-4o's) so the check does its whole work.
# For each: req/s and the server's CPU per request, and the budget's CPU per request over plain's.
#
#   bench/budgets.sh                    # 3 rounds of 15 s each after a 5 s warm-up per user
#   ROUNDS=1 SECS=10 bench/budgets.sh
#
# Needs the harness installed once: ../shared/bench/install.sh.  Results: bench/results/<time>-budgets/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-15}"
PORT=18505
MOCK_PORT=18085
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-budgets"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
write_body "$OUT/body.json"
CLI="$ROOT/.venv/bin/llmrelay"

start_mock "$MOCK_PORT" "$OUT"
start_llmrelay "$PORT" "$OUT/serve.log" 1
"$CLI" pricing set openai mock --input 2.50 --output 10.00 > /dev/null
declare -A KEYS
for user in plain budgeted; do
  "$CLI" users add "$user" > /dev/null
  KEYS[$user]="$("$CLI" keys create --user "$user" | tail -1)"
done
"$CLI" budgets set --user budgeted --limit 1000000 > /dev/null
sleep 31  # the server reads prices again within 30 s (budgets within 5 s)
run_wrk() {
  BENCH_BODY_FILE="$OUT/body.json" BENCH_WRK_OUT="$3" taskset -c 0 wrk -t1 -c64 -d"$2s" \
    -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer ${KEYS[$1]}" \
    "http://127.0.0.1:$PORT/v1/chat/completions" > /dev/null
}
for user in plain budgeted; do  # each answers before anything is measured
  code=$(curl -s -o "$OUT/$user-answer.json" -D "$OUT/$user-headers.txt" -w '%{http_code}' \
         -H "Authorization: Bearer ${KEYS[$user]}" -H 'content-type: application/json' \
         --data-binary @"$OUT/body.json" "http://127.0.0.1:$PORT/v1/chat/completions")
  [[ $code == 200 ]] || { echo "$user: HTTP $code: $(cat "$OUT/$user-answer.json")" >&2; exit 1; }
done
for round in $(seq 1 "$ROUNDS"); do
  for user in plain budgeted; do
    run_wrk "$user" 5 "$OUT/$user-warm-$round.json"
    t0=$(server_ticks); run_wrk "$user" "$SECS" "$OUT/$user-$round.json"; t1=$(server_ticks)
    echo "$user $round $(( t1 - t0 ))" >> "$OUT/ticks.txt"
  done
done
"$CLI" budgets list > "$OUT/budgets.txt" || true
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
"$ROOT/.venv/bin/python" - "$OUT" "$(getconf CLK_TCK)" <<'PY' | tee "$OUT/summary.txt"
import json, statistics, sys
from pathlib import Path
out, hz = Path(sys.argv[1]), int(sys.argv[2])
runs = {"plain": [], "budgeted": []}
for line in (out / "ticks.txt").read_text().split("\n"):
    if line:
        user, rnd, ticks = line.split()
        r = json.loads((out / f"{user}-{rnd}.json").read_text())
        runs[user].append((r["rps"], 1000 * int(ticks) / hz / r["requests"], sum(r["errors"].values())))
for user, rows in runs.items():
    print(f"{user:9s} " + "  ".join(f"{rps:7,.0f} req/s {cpu:.3f} CPU ms/req ({err} errors)" for rps, cpu, err in rows))
med = {u: statistics.median(r[1] for r in rows) for u, rows in runs.items()}
print(f"budgeted: {med['budgeted']:.3f} CPU ms/req, {1000 * (med['budgeted'] - med['plain']):+.0f} us over "
      f"plain's {med['plain']:.3f} (target <= +50 us)")
PY
echo "results: $OUT"
