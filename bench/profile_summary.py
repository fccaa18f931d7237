"""Summarise py-spy's raw (collapsed) stacks of `llmrelay serve`: the share of samples by where
the sampled (innermost) frame's code lives, and the heaviest llmrelay functions inclusive.

    .venv/bin/python bench/profile_summary.py bench/results/profile-*/stacks.txt
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "llmrelay"
# py-spy names some files by their base name only: find which part of llmrelay they are
OURS = {f.name: "llmrelay." + (f.relative_to(SRC).parts[0].removesuffix(".py")) for f in SRC.rglob("*.py")
        if f.relative_to(SRC).parts[0] != "testing"}  # (the fakes never run in the server)
GROUPS = {"uvicorn": "HTTP server (uvicorn + httptools)", "httptools": "HTTP server (uvicorn + httptools)",
          "aiohttp": "HTTP client (aiohttp)", "multidict": "HTTP client (aiohttp)", "yarl": "HTTP client (aiohttp)",
          "starlette": "Starlette / FastAPI", "fastapi": "Starlette / FastAPI", "asyncio": "asyncio event loop",
          "aiosqlite": "ledger writer (aiosqlite)", "sqlite3": "ledger writer (aiosqlite)",
          "sqlalchemy": "ledger writer (SQLAlchemy)", "orjson": "JSON (orjson)"}


def where(frame: str) -> str:
    path = frame[frame.rfind("(") + 1:].rsplit(":", 1)[0]
    if path.startswith("llmrelay/"):
        part = path.split("/")[1].removesuffix(".py")
        return f"llmrelay.{part}"
    if "/" in path:
        top = path.split("/")[0]
        return GROUPS.get(top, top)
    return OURS.get(path, GROUPS.get(path.removesuffix(".py"), path))


def main(stacks: str) -> None:
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    for line in Path(stacks).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n, frames = int(count), stack.split(";")
        total += n
        own[where(frames[-1])] += n
        for f in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            if where(f).startswith("llmrelay.") and not f.startswith(("<module>", "main ", "serve ", "_run_uvicorn")):
                inclusive[f] += n
    print(f"{total} samples; by where the running code lives (self time):")
    for name, n in own.most_common(16):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print("llmrelay functions, inclusive of what they call:")
    for name, n in inclusive.most_common(12):
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
