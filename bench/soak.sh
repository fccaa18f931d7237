#!/usr/bin/env bash
# Soak: does `llmrelay serve` stay the same over a long run with provider faults?  One worker pinned to
# CPU 1 (keys and the ledger on, as in gateway.sh), the shared harness's mock on CPU 0 wrapped so that a
# share of the primary link's calls fail, the load generator on CPU 0.
#
#   1. saturation: wrk (64 connections, SAT_SECS) against the soak agent, unless RATE is given
#   2. soak: DURATION seconds at RATE (default 80 % of that saturation) in one-minute slices, to the
#      agent `soak`, whose chain is openai/gpt-4o-mini -> openai/gpt-4o, both on the mock; FAULTS
#      (default 5 %) of the gpt-4o-mini calls get a 500 or a 429 (alternately), so the chain falls back;
#      retries are off, so a faulted request is two ledger rows (failed + fallback).  The breaker's
#      threshold is raised to 20 (at 5 % random faults, 3 in a row would open the circuit every few
#      seconds at 1,000+ req/s, and the soak would measure the cooldown instead).  The load (LOAD, below):
#      wrk with paced connections by default, or the harness's open-loop loadgen.py.
#      Every 10 s: the server's VmRSS and open fds (/proc/PID), its CPU ticks and the load average (the
#      machine may be shared: say so beside the figures).
#   3. streams: STREAMS (default 500) streams held open at once (the mock sends a chunk a second, ~21 s
#      per stream; LLMRELAY_MAX_STREAMS=0), spread over STREAM_PROVIDERS (default 2: OpenAI and
#      OpenRouter, both the mock; each provider's connection pool holds 256), while /healthz is timed 50
#      times: p50 / max (target < 50 ms)
#   4. the server is stopped gracefully (SIGTERM) and its ledger rows counted against its attempts
#      (llmrelay_attempts_total on /metrics, every outcome)
#
# Then a table per minute and PASS/FAIL for: RSS drift (last minute vs minute 2) < 10 %, fds flat (last
# minute's max <= minute 2's max + 5), p99 steady (every minute's p99 <= 2x the median minute's), no
# failed request, ledger rows == attempts, all STREAMS open at once, /healthz p50 and max < 50 ms.
#
#   bench/soak.sh                              # 10 minutes, SQLite, rate = 80 % of saturation (~13 min)
#   DURATION=120 RATE=1000 bench/soak.sh       # shorter, a fixed rate
#   DB=pg bench/soak.sh                        # PostgreSQL: a throw-away database on LLMRELAY_BENCH_PG
#   STREAMS=0 bench/soak.sh                    # without the open-streams phase
#   STREAM_PROVIDERS=1 bench/soak.sh           # every stream through one provider (its pool: 256)
#
# Needs the harness installed once: ../shared/bench/install.sh.  Results: bench/results/<time>-soak/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
HARNESS="${HARNESS:-$(cd "$ROOT/../shared/bench" && pwd)}"
DEPS="${BENCH_DEPS:-$HARNESS/.deps}"
[[ -d "$DEPS" ]] || DEPS="${TMPDIR:-/tmp}/llmrelay-bench/.deps"  # install.sh's place when the harness is read-only
[[ -x "$DEPS/venv-harness/bin/python" ]] || { echo "the harness is not installed: $HARNESS/install.sh" >&2; exit 1; }
DURATION="${DURATION:-600}"
RATE="${RATE:-}"
FAULTS="${FAULTS:-0.05}"
DB="${DB:-sqlite}"
STREAMS="${STREAMS:-500}"
STREAM_PROVIDERS="${STREAM_PROVIDERS:-2}"
SAT_SECS="${SAT_SECS:-10}"
PORT="${PORT:-18506}"
MOCK_PORT="${MOCK_PORT:-18086}"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-soak"
mkdir -p "$OUT"
. "$HERE/common.sh"
llmrelay_env "$MOCK_PORT"
HPY="$DEPS/venv-harness/bin/python"
PY="$ROOT/.venv/bin/python"

cat > "$OUT/agents.toml" <<'EOF'
[[agents]]
id = "soak"
name = "Soak"
system_prompt = "You answer briefly."
supported_providers = [
  { provider = "openai", model = "gpt-4o-mini", priority = 1 },
  { provider = "openai", model = "gpt-4o", priority = 2 },
]
EOF
export LLMRELAY_AGENTS_FILE="$OUT/agents.toml" LLMRELAY_MAX_STREAMS=0 LLMRELAY_BREAKER_THRESHOLD=20 \
  OPENROUTER_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" OPENROUTER_API_KEY=sk-mock

PG_ADMIN=""
if [[ "$DB" == pg ]]; then
  PG_ADMIN="${LLMRELAY_BENCH_PG:-postgresql://postgres@127.0.0.1:5432/test}"
  DBNAME="llmrelay_soak_$(date -u +%Y%m%d%H%M%S)"
  psql -q "$PG_ADMIN" -c "CREATE DATABASE $DBNAME"
  export LLMRELAY_DATABASE_URL="${PG_ADMIN%/*}/$DBNAME"
fi

# The harness's mock, with FAULTS of the calls for gpt-4o-mini answered 500 or 429 (OpenAI's error bodies).
cat > "$OUT/fault_mock.py" <<'PY'
import argparse, random, sys
sys.path.insert(0, sys.argv[1])
import mock_upstream as m

rate, port, rng, count = float(sys.argv[2]), int(sys.argv[3]), random.Random(13), [0, 0]
ERRORS = [
    m.http_response(b"500 Internal Server Error",
                     b'{"error":{"message":"injected fault","type":"server_error","param":null,"code":null}}'),
    m.http_response(b"429 Too Many Requests",
                     b'{"error":{"message":"injected rate limit","type":"requests","param":null,'
                     b'"code":"rate_limit_exceeded"}}'),
]
plain = m.HttpProto.handle


def handle(self, method, path, body, close):
    if method == b"POST" and b'"gpt-4o-mini"' in body and rng.random() < rate:
        kind = count[0] % 2
        count[0] += 1
        self.tr.write(ERRORS[kind])
        if close:
            self.tr.close()
        return
    count[1] += 1
    plain(self, method, path, body, close)


m.HttpProto.handle = handle
args = argparse.Namespace(host="127.0.0.1", port=port, delay_ms=0.0, chunk_gap_ms=0.0, chunks=20,
                          max_seconds=7200.0, no_uvloop=False)
import uvloop
uvloop.run(m.main(args))
print(f"fault mock: {count[0]} faults injected, {count[1]} requests passed to the mock", flush=True)
PY
taskset -c 0 "$HPY" "$OUT/fault_mock.py" "$HARNESS/mock" "$FAULTS" "$MOCK_PORT" > "$OUT/mock.log" 2>&1 &
MOCK=$!
SAMPLER=""
cleanup() {
  kill ${SAMPLER:-} 2>/dev/null || true
  kill -TERM ${SERVER:-} 2>/dev/null || true
  kill -TERM "$MOCK" 2>/dev/null || true
  if [[ -n "$PG_ADMIN" && "${KEEP_DB:-0}" != 1 ]]; then
    sleep 1; psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DBNAME" || true
  fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$MOCK_PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
start_llmrelay "$PORT" "$OUT/serve.log" 1
URL="http://127.0.0.1:$PORT/v1/chat/completions"
printf '{"model":"agent:soak","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32}' > "$OUT/body.json"
code=$(curl -s -o "$OUT/answer.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
       -H 'content-type: application/json' --data-binary @"$OUT/body.json" "$URL")
[[ $code == 200 ]] || { echo "HTTP $code: $(cat "$OUT/answer.json")" >&2; exit 1; }

if [[ -z "$RATE" ]]; then
  BENCH_BODY_FILE="$OUT/body.json" BENCH_WRK_OUT="$OUT/saturation.json" taskset -c 0 wrk -t1 -c64 \
    -d"${SAT_SECS}s" -s "$HARNESS/tools/wrk_post.lua" -H "Authorization: Bearer $KEY" "$URL" > /dev/null
  RATE="$("$PY" -c 'import json,sys; print(int(0.8 * json.load(open(sys.argv[1]))["rps"]))' "$OUT/saturation.json")"
  echo "saturation: $("$PY" -c 'import json,sys; print("%.0f req/s" % json.load(open(sys.argv[1]))["rps"])' \
    "$OUT/saturation.json"); soak rate (80 %): $RATE req/s"
fi
echo "$RATE" > "$OUT/rate.txt"

sample() {  # every 10 s: unix time, VmRSS kB, open fds, CPU ticks, 1-minute load average
  while kill -0 "$SERVER" 2>/dev/null; do
    echo "$(date +%s) $(awk '/^VmRSS/{print $2}' "/proc/$SERVER/status") $(ls "/proc/$SERVER/fd" | wc -l)" \
         "$(server_ticks) $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/samples.txt"
    sleep 10
  done
}
sample & SAMPLER=$!
date +%s > "$OUT/soak_start.txt"
# The load: LOAD=wrk (default) paces wrk's 64 connections with a pause before each request (wrk's
# delay(), exponential so they do not arrive in bursts), calibrated for 5 s to RATE: a closed loop, so a stall slows the arrivals down (the rate per
# minute shows it), but it costs the client ~10x less CPU than loadgen.py, whose open loop could not send
# 1,500 req/s punctually from a shared CPU 0 (send lag p99 0.8-1.6 s in a trial).  LOAD=loadgen: the
# harness's open-loop generator, for rates it can keep up with (its send lag is in the table).
cat > "$OUT/paced.lua" <<'EOF'
dofile(os.getenv("BENCH_WRK_LUA"))
local pause = tonumber(os.getenv("BENCH_PAUSE_MS"))
math.randomseed(os.time())
-- an exponential pause (mean BENCH_PAUSE_MS): the connections do not fall into step and arrive in bursts
function delay() return math.floor(-pause * math.log(1 - math.random())) end
EOF
paced_wrk() {  # SECONDS PAUSE_MS OUT_JSON
  BENCH_WRK_LUA="$HARNESS/tools/wrk_post.lua" BENCH_PAUSE_MS="$2" BENCH_BODY_FILE="$OUT/body.json" BENCH_WRK_OUT="$3" \
    taskset -c 0 wrk -t1 -c64 -d"$1s" --timeout 30s -s "$OUT/paced.lua" -H "Authorization: Bearer $KEY" "$URL" > /dev/null
}
LOAD="${LOAD:-wrk}"
if [[ "$LOAD" == wrk ]]; then
  PAUSE=$(( 64000 / RATE ))
  paced_wrk 5 "$PAUSE" "$OUT/calibration.json"
  PAUSE="$("$PY" -c 'import json,sys
rps, pause, rate = json.load(open(sys.argv[1]))["rps"], int(sys.argv[2]), int(sys.argv[3])
latency_ms = 64000 / rps - pause
print(max(0, round(64000 / rate - latency_ms)))' "$OUT/calibration.json" "$PAUSE" "$RATE")"
  echo "paced wrk: 64 connections, ${PAUSE} ms pause before each request (calibrated to $RATE req/s)"
  if (( PAUSE == 0 )); then
    echo "warning: the server did not reach $RATE req/s even without a pause (a busy machine?): this soak runs" \
         "at saturation, not at 80 % of it" | tee "$OUT/warning.txt" >&2
  fi
fi
echo "$LOAD" > "$OUT/load.txt"
left="$DURATION"; minute=0
while (( left > 0 )); do
  minute=$(( minute + 1 )); secs=$(( left < 60 ? left : 60 ))
  if [[ "$LOAD" == wrk ]]; then
    paced_wrk "$secs" "$PAUSE" "$OUT/minute-$minute.json"
  else
    taskset -c 0 "$HPY" "$HARNESS/tools/loadgen.py" rate "$URL" -H "Authorization: Bearer $KEY" \
      --model agent:soak --rate "$RATE" --duration "$secs" --grace 30 --max-conns 256 \
      > "$OUT/minute-$minute.json"
  fi
  echo "$minute $(date +%s)" >> "$OUT/minutes.txt"
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_ms"]
ok = r.get("ok", r.get("requests", 0) - r.get("errors", {}).get("status", 0))
err = r["error_count"] if "error_count" in r else sum(r["errors"].values())
print("minute %s: %d ok, %d errors, %.0f req/s, p50 %s ms, p99 %s ms" % (sys.argv[2], ok, err,
      r.get("achieved_rps", r.get("rps")), l.get("p50"), l.get("p99")))' "$OUT/minute-$minute.json" "$minute"
  left=$(( left - secs ))
done
date +%s > "$OUT/soak_end.txt"

if (( STREAMS > 0 )); then
  cat > "$OUT/streams.py" <<'PY'
"""N streams held open at once (the mock's model mock-g1000: a chunk a second), spread over 1 or 2 providers
(OpenAI and OpenRouter, both the mock), then /healthz timed 50 times."""
import asyncio, json, statistics, sys, time
import aiohttp

url, key, n, health = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
models = ["mock-g1000", "openrouter/openai/mock-g1000"][:int(sys.argv[5])]
bodies = [json.dumps({"model": m, "stream": True, "max_tokens": 32,
                      "messages": [{"role": "user", "content": "Say hello slowly."}]}) for m in models]
state = {"first": [], "open": 0, "errors": {}}


async def stream(session, t0, body):
    try:
        async with session.post(url, data=body, headers={"authorization": f"Bearer {key}",
                                                         "content-type": "application/json"}) as r:
            if r.status != 200:
                state["errors"][f"status_{r.status}"] = state["errors"].get(f"status_{r.status}", 0) + 1
                await r.read()
                return
            seen = False
            try:
                async for _ in r.content.iter_any():
                    if not seen:
                        seen = True
                        state["open"] += 1
                        state["first"].append(time.perf_counter() - t0)
            finally:
                state["open"] -= seen
            if not seen:
                state["errors"]["empty"] = state["errors"].get("empty", 0) + 1
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        state["errors"][type(e).__name__] = state["errors"].get(type(e).__name__, 0) + 1


async def main():
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=300)) as s, \
            aiohttp.ClientSession() as probe:
        t0 = time.perf_counter()
        tasks = [asyncio.ensure_future(stream(s, t0, bodies[i % len(bodies)])) for i in range(n)]
        while len(state["first"]) + sum(state["errors"].values()) < n and time.perf_counter() - t0 < 10:
            await asyncio.sleep(0.05)
        open_before = state["open"]
        lat = []
        for _ in range(50):
            t = time.perf_counter()
            async with probe.get(health) as r:
                await r.read()
                assert r.status == 200, r.status
            lat.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)
        open_after = state["open"]
        await asyncio.gather(*tasks)
        first = sorted(state["first"])
    print(json.dumps({
        "streams": n, "first_bytes": len(first), "errors": state["errors"],
        "open_when_probing": [open_before, open_after],
        "first_byte_s": {"p50": round(statistics.median(first), 3), "max": round(first[-1], 3)} if first else None,
        "wall_s": round(time.perf_counter() - t0, 1),
        "healthz_ms": {"p50": round(statistics.median(lat), 2), "max": round(max(lat), 2),
                       "min": round(min(lat), 2)}}))


asyncio.run(main())
PY
  taskset -c 0 "$HPY" "$OUT/streams.py" "$URL" "$KEY" "$STREAMS" "http://127.0.0.1:$PORT/healthz" \
    "$STREAM_PROVIDERS" > "$OUT/streams.json"
  echo "streams: $(cat "$OUT/streams.json")"
fi

curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics.txt"
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
SERVER=
if [[ -n "$PG_ADMIN" ]]; then
  psql -tA "$LLMRELAY_DATABASE_URL" -c "SELECT status, count(*) FROM ai_model_usage GROUP BY status" > "$OUT/ledger.txt"
else
  "$PY" -c 'import sqlite3,sys
for s, n in sqlite3.connect(sys.argv[1]).execute("SELECT status, count(*) FROM ai_model_usage GROUP BY status"):
    print(f"{s}|{n}")' "$LLMRELAY_HOME/llmrelay.db" > "$OUT/ledger.txt"
fi
ls "$LLMRELAY_HOME/spool" 2>/dev/null | sed 's/^/spool file left: /' >> "$OUT/spool.txt" || true

"$PY" - "$OUT" "$(getconf CLK_TCK)" "$DB" "$FAULTS" <<'PY' | tee "$OUT/summary.txt"
import json, re, statistics, sys
from pathlib import Path
out, hz, db, faults = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
start = int((out / "soak_start.txt").read_text())
ends = [(int(m), int(t)) for m, t in (line.split() for line in (out / "minutes.txt").read_text().split("\n") if line)]
samples = [line.split() for line in (out / "samples.txt").read_text().split("\n") if line]
samples = [(int(t), int(rss), int(fds), int(ticks), float(load)) for t, rss, fds, ticks, load in samples]


def window(lo, hi):
    return [s for s in samples if lo <= s[0] < hi]


if (out / "warning.txt").exists():
    print((out / "warning.txt").read_text().strip())
print(f"soak: {db}, {(out / 'load.txt').read_text().strip()} at {(out / 'rate.txt').read_text().strip()} req/s, {faults:.0%} of primary calls faulted "
      f"(500/429), {len(ends)} minutes")
print("| minute | ok | errors | req/s | p50 ms | p99 ms | max ms | send lag p99 ms (loadgen) | RSS MB (end) | fds (max) "
      "| server CPU % | load avg |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
rows, lo = [], start
for minute, hi in ends:
    r = json.loads((out / f"minute-{minute}.json").read_text())
    if "rps" in r:  # wrk's summary, in loadgen's terms
        r["errors"] = {k: v for k, v in r["errors"].items() if v}
        r["error_count"] = sum(r["errors"].values())
        r["ok"] = r["requests"] - r["errors"].get("status", 0)
        r["achieved_rps"], r["send_lag_ms"] = r["rps"], {}
    w = window(lo, hi + 1) or window(lo - 10, hi + 1)
    cpu = 100 * (w[-1][3] - w[0][3]) / hz / max(1, w[-1][0] - w[0][0]) if len(w) > 1 else float("nan")
    lat = r["latency_ms"]
    rows.append({"minute": minute, "p99": lat.get("p99"), "rss": [s[1] for s in w], "fds": [s[2] for s in w],
                 "errors": r["error_count"], "ok": r["ok"]})
    print(f"| {minute} | {r['ok']:,} | {r['error_count']} {r['errors'] or ''} | {r['achieved_rps']:,.0f} | "
          f"{lat.get('p50')} | {lat.get('p99')} | {lat.get('max')} | {r['send_lag_ms'].get('p99', '-')} | "
          f"{w[-1][1] / 1024:.1f} | {max(s[2] for s in w)} | {cpu:.0f} | {max(s[4] for s in w):.2f} |")
    lo = hi

verdicts = []
def verdict(name, ok, detail):
    verdicts.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

print()
if len(rows) >= 3:
    m2, last = rows[1], rows[-1]
    rss2, rssl = statistics.mean(m2["rss"]), statistics.mean(last["rss"])
    drift = (rssl - rss2) / rss2
    verdict("RSS drift < 10 %", drift < 0.10, f"minute 2 {rss2 / 1024:.1f} MB, last minute {rssl / 1024:.1f} MB "
            f"({drift:+.1%})")
    verdict("fds flat", max(last["fds"]) <= max(m2["fds"]) + 5,
            f"minute 2 max {max(m2['fds'])}, last minute max {max(last['fds'])}")
    p99s = [r["p99"] for r in rows if r["p99"] is not None]
    med = statistics.median(p99s)
    verdict("p99 steady (each minute <= 2x the median minute)", max(p99s) <= 2 * med,
            f"median {med} ms, min {min(p99s)} ms, max {max(p99s)} ms")
else:
    print("(fewer than 3 minutes: no drift verdicts)")
errors = sum(r["errors"] for r in rows)
verdict("no failed request", errors == 0, f"{sum(r['ok'] for r in rows):,} ok, {errors} failed")

attempts, outcomes, answered = 0, {}, 0
for line in (out / "metrics.txt").read_text().split("\n"):
    m = re.match(r'llmrelay_attempts_total\{(.*)\} (\S+)', line)
    if m:
        outcome = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))["outcome"]
        outcomes[outcome] = outcomes.get(outcome, 0) + int(float(m.group(2)))
    m = re.match(r'llmrelay_http_requests_total\{method="POST",route="/v1/chat/completions",status="200"\} (\S+)', line)
    if m:
        answered = int(float(m.group(1)))
attempts = sum(outcomes.values())
ledger = {s: int(n) for s, n in (line.split("|") for line in (out / "ledger.txt").read_text().split("\n") if line)}
verdict("ledger rows == attempts", sum(ledger.values()) == attempts,
        f"{sum(ledger.values()):,} rows {ledger}; {attempts:,} attempts on /metrics {outcomes}; "
        f"{answered:,} completions answered (HTTP 200)")
spool = out / "spool.txt"
if spool.exists() and spool.read_text().strip():
    print(spool.read_text().strip())

streams = out / "streams.json"
if streams.exists():
    s = json.loads(streams.read_text())
    h = s["healthz_ms"]
    verdict(f"{s['streams']} streams open at once", min(s["open_when_probing"]) == s["streams"],
            f"open while probing {s['open_when_probing']}; first bytes {s['first_bytes']}/{s['streams']} after "
            f"{s['first_byte_s']} s; errors {s['errors'] or 0}; {s['wall_s']} s in all")
    verdict("/healthz meanwhile: p50 and max < 50 ms", h["p50"] < 50 and h["max"] < 50,
            f"p50 {h['p50']} ms, max {h['max']} ms (50 probes)")
print(f"\n{'PASS' if all(verdicts) else 'FAIL'}: {sum(verdicts)}/{len(verdicts)} criteria")
PY
kill -TERM "$MOCK"; wait "$MOCK" 2>/dev/null || true
grep -h "fault mock" "$OUT/mock.log" || true
echo "results: $OUT"
