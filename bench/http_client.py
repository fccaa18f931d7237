"""Which async HTTP client should the provider adapters use?  Measure, don't guess.

Starts the shared mock upstream (a raw-asyncio OpenAI-compatible server) on CPU 0, then on
CPU 1 drives it with aiohttp and with httpx, each with one pooled client, the same
concurrency and the same request, plain and streaming.  Reports requests per second and
CPU microseconds per request of the client process, and the ratio httpx / aiohttp.

    .venv/bin/python bench/http_client.py [--mock ../shared/bench/mock/mock_upstream.py]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx

BODY = {"model": "mock", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


async def run_aiohttp(url: str, n: int, conc: int, stream: bool) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        sem = asyncio.Semaphore(conc)

        async def one() -> None:
            async with sem, s.post(url, json=STREAM_BODY if stream else BODY) as r:
                if stream:
                    async for _ in r.content:
                        pass
                else:
                    await r.json()

        await asyncio.gather(*(one() for _ in range(n)))


async def run_httpx(url: str, n: int, conc: int, stream: bool) -> None:
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(limits=limits) as c:
        sem = asyncio.Semaphore(conc)

        async def one() -> None:
            async with sem:
                if stream:
                    async with c.stream("POST", url, json=STREAM_BODY) as r:
                        async for _ in r.aiter_lines():
                            pass
                else:
                    r = await c.post(url, json=BODY)
                    r.json()

        await asyncio.gather(*(one() for _ in range(n)))


def measure(name: str, fn, url: str, n: int, conc: int, stream: bool) -> dict:
    asyncio.run(fn(url, 200, conc, stream))  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(fn(url, n, conc, stream))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"client": name, "stream": stream, "n": n, "rps": n / wall, "cpu_us_per_req": cpu / n * 1e6}


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--mock", default=str(here.parent.parent / "shared/bench/mock/mock_upstream.py"))
    ap.add_argument("--port", type=int, default=18099)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--conc", type=int, default=32)
    args = ap.parse_args()
    mock = subprocess.Popen(["taskset", "-c", "0", sys.executable, args.mock, "--port", str(args.port),
                             "--max-seconds", "600"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        os.sched_setaffinity(0, {1})
        url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
        rows = []
        for stream in (False, True):
            for name, fn in (("aiohttp", run_aiohttp), ("httpx", run_httpx)):
                rows.append(measure(name, fn, url, args.n, args.conc, stream))
                print(json.dumps(rows[-1]))
        for stream in (False, True):
            a, h = (r for r in rows if r["stream"] is stream)
            print(f"{'stream' if stream else 'plain '}: aiohttp {a['rps']:.0f} req/s {a['cpu_us_per_req']:.0f} us/req;"
                  f" httpx {h['rps']:.0f} req/s {h['cpu_us_per_req']:.0f} us/req;"
                  f" httpx/aiohttp CPU per request = {h['cpu_us_per_req'] / a['cpu_us_per_req']:.2f}x")
    finally:
        mock.terminate()


if __name__ == "__main__":
    main()
