#!/usr/bin/env bash
# The same work through each door: one user message, max 32 tokens, served by the OpenAI link (the shared
# harness's mock), asked through /v1/chat/completions, /v1/messages (Anthropic's shape) and /v1/responses
# (OpenAI's Responses API; store off, as a stateless call).  `llmrelay serve` (one worker pinned to CPU 1,
# keys and the SQLite ledger on, as in gateway.sh) saturated by wrk from CPU 0 (64 connections), the doors
# interleaved over ROUNDS rounds; for each: req/s and the server's CPU per request, and each door's CPU per
# request minus chat completions'.
#
#   bench/doors.sh                      # 3 rounds of 15 s each after a 5 s warm-up per door
#   ROUNDS=1 SECS=10 bench/doors.sh
#
# Needs the harness installed once: ../shared/bench/install.sh.  Results: bench/results/<time>-doors/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-15}"
PORT=18504
MOCK_PORT=18084
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-doors"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
write_body "$OUT/chat.json"
printf '{"model":"mock","max_tokens":32,"messages":[{"role":"user","content":"Say hello."}]}' > "$OUT/messages.json"
printf '{"model":"mock","max_output_tokens":32,"store":false,"input":"Say hello."}' > "$OUT/responses.json"
declare -A PATHS=([chat]=/v1/chat/completions [messages]=/v1/messages [responses]=/v1/responses)

start_mock "$MOCK_PORT" "$OUT"
start_llmrelay "$PORT" "$OUT/serve.log" 1
run_wrk() {
  BENCH_BODY_FILE="$OUT/$1.json" BENCH_WRK_OUT="$3" taskset -c 0 wrk -t1 -c64 -d"$2s" \
    -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT${PATHS[$1]}" > /dev/null
}
for door in chat messages responses; do  # each answers before anything is measured
  code=$(curl -s -o "$OUT/$door-answer.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
         -H 'content-type: application/json' --data-binary @"$OUT/$door.json" "http://127.0.0.1:$PORT${PATHS[$door]}")
  [[ $code == 200 ]] || { echo "$door: HTTP $code: $(cat "$OUT/$door-answer.json")" >&2; exit 1; }
done
for round in $(seq 1 "$ROUNDS"); do
  for door in chat messages responses; do
    run_wrk "$door" 5 "$OUT/$door-warm-$round.json"
    t0=$(server_ticks); run_wrk "$door" "$SECS" "$OUT/$door-$round.json"; t1=$(server_ticks)
    echo "$door $round $(( t1 - t0 ))" >> "$OUT/ticks.txt"
  done
done
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
"$ROOT/.venv/bin/python" - "$OUT" "$(getconf CLK_TCK)" <<'PY' | tee "$OUT/summary.txt"
import json, statistics, sys
from pathlib import Path
out, hz = Path(sys.argv[1]), int(sys.argv[2])
runs = {"chat": [], "messages": [], "responses": []}
for line in (out / "ticks.txt").read_text().split("\n"):
    if line:
        door, rnd, ticks = line.split()
        r = json.loads((out / f"{door}-{rnd}.json").read_text())
        runs[door].append((r["rps"], 1000 * int(ticks) / hz / r["requests"], sum(r["errors"].values())))
for door, rows in runs.items():
    print(f"{door:9s} " + "  ".join(f"{rps:7,.0f} req/s {cpu:.3f} CPU ms/req ({err} errors)" for rps, cpu, err in rows))
med = {d: statistics.median(r[1] for r in rows) for d, rows in runs.items()}
for door in ("messages", "responses"):
    print(f"{door}: {med[door]:.3f} CPU ms/req, {1000 * (med[door] - med['chat']):+.0f} us over chat completions' "
          f"{med['chat']:.3f} (target <= +200 us)")
PY
echo "results: $OUT"
