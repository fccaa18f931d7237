#!/usr/bin/env bash
# What an agent-grade request costs beside a plain one: `llmrelay serve` (one worker pinned to CPU 1, keys
# and the SQLite ledger on, as in gateway.sh) saturated by wrk from CPU 0 (64 connections) against the
# shared harness's mock, with two bodies interleaved over ROUNDS rounds:
#
#   plain   the harness's own body: one user message, max_tokens 32
#   tools   10 tool definitions (realistic JSON Schemas), and a conversation in which the model called one
#           and its result came back: user, assistant with a tool call, tool result, max_tokens 32
#
# For each: req/s and the server's CPU per request (its /proc ticks over the measured seconds), and the
# ratio tools / plain.  Then the Portkey gateway's plain saturation through the harness in the same run
# (`run.sh portkey`, SCENARIOS=sat), and llmrelay's tools req/s against it.
#
#   bench/tools.sh                      # 3 rounds of 15 s each after a 5 s warm-up per body
#   ROUNDS=1 SECS=10 PORTKEY=0 bench/tools.sh
#
# Needs the harness installed once: ../shared/bench/install.sh.  Results: bench/results/<time>-tools/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-15}"
PORT=18503
MOCK_PORT=18083
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-tools"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
write_body "$OUT/plain.json"
"$ROOT/.venv/bin/python" - "$OUT/tools.json" <<'PY'
import json, sys
def tool(name, description, props, required):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": required, "additionalProperties": False}}}
s, n, b = {"type": "string"}, {"type": "number"}, {"type": "boolean"}
tools = [
    tool("get_weather", "Current weather for a city.", {"city": s, "unit": {"type": "string", "enum": ["C", "F"]}}, ["city"]),
    tool("get_forecast", "Forecast for the next days.", {"city": s, "days": {"type": "integer", "minimum": 1}}, ["city", "days"]),
    tool("search_docs", "Search the documentation.", {"query": s, "limit": {"type": "integer"}}, ["query"]),
    tool("read_file", "Read a file of the project.", {"path": s, "start": {"type": "integer"}, "end": {"type": "integer"}}, ["path"]),
    tool("write_file", "Write a file of the project.", {"path": s, "content": s, "append": b}, ["path", "content"]),
    tool("run_tests", "Run the test suite or some of it.", {"pattern": s, "verbose": b}, []),
    tool("send_email", "Send an email.", {"to": {"type": "array", "items": s}, "subject": s, "body": s}, ["to", "subject", "body"]),
    tool("create_ticket", "Open a ticket.", {"title": s, "priority": {"type": "string", "enum": ["low", "high"]}, "labels": {"type": "array", "items": s}}, ["title"]),
    tool("convert_currency", "Convert an amount.", {"amount": n, "from": s, "to": s}, ["amount", "from", "to"]),
    tool("lookup_user", "Find a user by name or id.", {"name": s, "id": {"type": "integer"}, "active": b}, []),
]
body = {"model": "mock", "max_tokens": 32, "tools": tools, "messages": [
    {"role": "user", "content": "What is the weather in Paris? Use the tool."},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "C"})}}]},
    {"role": "tool", "tool_call_id": "call_abc123", "content": json.dumps({"temperature": 21, "sky": "sunny"})}]}
json.dump(body, open(sys.argv[1], "w"))
PY

start_mock "$MOCK_PORT" "$OUT"
start_llmrelay "$PORT" "$OUT/serve.log" 1
run_wrk() {
  BENCH_BODY_FILE="$OUT/$1.json" BENCH_WRK_OUT="$3" taskset -c 0 wrk -t1 -c64 -d"$2s" \
    -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/chat/completions" \
    > /dev/null
}
for body in plain tools; do  # each answers before anything is measured
  code=$(curl -s -o "$OUT/$body-answer.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
         -H 'content-type: application/json' --data-binary @"$OUT/$body.json" "http://127.0.0.1:$PORT/v1/chat/completions")
  [[ $code == 200 ]] || { echo "$body: HTTP $code: $(cat "$OUT/$body-answer.json")" >&2; exit 1; }
done
for round in $(seq 1 "$ROUNDS"); do
  for body in plain tools; do
    run_wrk "$body" 5 "$OUT/$body-warm-$round.json"
    t0=$(server_ticks); run_wrk "$body" "$SECS" "$OUT/$body-$round.json"; t1=$(server_ticks)
    echo "$body $round $(( t1 - t0 ))" >> "$OUT/ticks.txt"
  done
done
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=

PORTKEY_RPS=""
if [[ "${PORTKEY:-1}" == 1 ]]; then
  SCENARIOS=sat ROUNDS=1 RESULTS_DIR="$OUT/portkey" "$HARNESS/run.sh" portkey > "$OUT/portkey.out" 2>&1 || true
  PORTKEY_RPS="$(sed -n 's/.*label=portkey scenario=sat .* rps=\([0-9.]*\).*/\1/p' "$OUT/portkey.out" | tail -1)"
fi
"$ROOT/.venv/bin/python" - "$OUT" "$(getconf CLK_TCK)" "$PORTKEY_RPS" <<'PY' | tee "$OUT/summary.txt"
import json, statistics, sys
from pathlib import Path
out, hz, portkey = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
runs = {"plain": [], "tools": []}
for line in (out / "ticks.txt").read_text().split("\n"):
    if line:
        body, rnd, ticks = line.split()
        r = json.loads((out / f"{body}-{rnd}.json").read_text())
        errors = sum(r["errors"].values()) + r.get("non2xx", 0)
        runs[body].append((r["rps"], 1000 * int(ticks) / hz / r["requests"], errors))
for body, rows in runs.items():
    print(f"{body:6s} " + "  ".join(f"{rps:7,.0f} req/s {cpu:.3f} CPU ms/req ({err} errors)" for rps, cpu, err in rows))
med = {b: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)) for b, rows in runs.items()}
print(f"medians: plain {med['plain'][0]:,.0f} req/s {med['plain'][1]:.3f} CPU ms/req; "
      f"tools {med['tools'][0]:,.0f} req/s {med['tools'][1]:.3f} CPU ms/req")
print(f"tools / plain: CPU per request {med['tools'][1] / med['plain'][1]:.2f}x (target <= 1.3x), "
      f"req/s {med['tools'][0] / med['plain'][0]:.2f}x")
if portkey:
    print(f"Portkey plain saturation {float(portkey):,.0f} req/s; llmrelay with tools {med['tools'][0] / float(portkey):.2f}x "
          f"of it (target >= 2x)")
PY
echo "results: $OUT"
