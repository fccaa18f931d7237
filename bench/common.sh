# Sourced by the bench scripts that run `llmrelay serve` against the shared harness's mock
# (gateway.sh, profile.sh, http_server.sh): the one way they configure and start it.
#
#   llmrelay_env MOCK_PORT        exports the settings: a fresh LLMRELAY_HOME (SQLite ledger), OpenAI
#                                 pointed at the mock, every other provider without a key, rate limits
#                                 and retries off (as for the peers), quiet logs
#   start_llmrelay PORT LOG [CPU] starts `llmrelay serve` pinned to CPU (default 1) in the background
#                                 and waits until it answers; sets SERVER (its pid) and KEY (admin key)
#   write_body FILE               the harness's plain chat-completions request body
#   start_mock MOCK_PORT OUT      starts the harness's mock ($HARNESS, $DEPS) on CPU 0 (its log in OUT), waits until it
#                                 answers; sets MOCK, and a trap that stops it and the server on exit
#   server_ticks                  the CPU ticks (user + system) `llmrelay serve` has used so far

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

llmrelay_env() {
  export LLMRELAY_HOME="$(mktemp -d /tmp/llmrelay-bench-home.XXXXXX)" \
    OPENAI_BASE_URL="http://127.0.0.1:$1/v1" OPENAI_API_KEY=sk-mock LLMRELAY_DEFAULT_PROVIDER=openai \
    LLMRELAY_RATE_RPM=0 LLMRELAY_RATE_TPM=0 LLMRELAY_MAX_RETRIES=0 LLMRELAY_LOG_LEVEL=warning
  unset ANTHROPIC_API_KEY GOOGLE_API_KEY OPENROUTER_API_KEY LLMRELAY_DATABASE_URL LLMRELAY_REDIS_URL || true
}

start_llmrelay() {
  local port="$1" log="$2"
  taskset -c "${3:-1}" "$BENCH_ROOT/.venv/bin/llmrelay" serve --port "$port" > "$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    grep -q "^admin api key: " "$log" 2>/dev/null && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
  done
  KEY="$(sed -n 's/^admin api key: //p' "$log")"
  [[ -n "$KEY" ]] || { cat "$log" >&2; return 1; }
}

write_body() {
  printf '{"model":"mock","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32}' > "$1"
}

start_mock() {
  taskset -c 0 "$DEPS/venv-harness/bin/python" "$HARNESS/mock/mock_upstream.py" --port "$1" \
    --max-seconds 3600 > "$2/mock.log" 2>&1 &
  MOCK=$!
  trap 'kill $MOCK ${SERVER:-} 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$1/" >/dev/null 2>&1 && break; sleep 0.1; done
}

server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
