"""The pages' static files: our own CSS and JS from `web/static/`, and plotly.js from the installed
`plotly` package (never a copy in this repository).

    GET /static/vendor/plotly.min.js   plotly/package_data/plotly.min.js, gzipped when the browser
                                       accepts it (4.8 MB becomes about 1.4 MB: it matters on a phone)
    GET /static/<file>                 a file of web/static/ with a known type; anything else is 404
    GET /favicon.ico                   static/favicon.svg (browsers ask for it on every site)

A path is served only if every segment is a plain name (no `..`, no hidden files, no backslash) and
it resolves inside `web/static/`: `/static/../x` and `/static/%2e%2e/x` are 404 like any unknown
file.  Responses carry an ETag (size and mtime, or the plotly version) and `no-cache` for our files
(the browser revalidates, gets 304, and a new release shows at once) or a day's max-age for plotly.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.resources
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
OWN_CACHE = "no-cache"  # revalidate every time: cheap (a 304), and never a stale script after an upgrade
VENDOR_CACHE = "public, max-age=86400"


def _not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain; charset=utf-8")


def static_file(path: str) -> Path | None:
    """The file under STATIC that `path` names, or None for anything else (traversal included)."""
    parts = path.split("/")
    if any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    root = STATIC.resolve()
    try:
        found = root.joinpath(*parts).resolve()
    except (OSError, ValueError):
        return None
    if not found.is_relative_to(root) or not found.is_file() or found.suffix not in TYPES:
        return None
    return found


def _etag(*parts: object) -> str:
    return '"' + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20] + '"'


def _fresh(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return etag in (t.strip() for t in sent.split(",")) or sent.strip() == "*"


# -- plotly.js, from the installed package ---------------------------------------------------------


def plotly_js_path() -> Path:
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


@lru_cache(maxsize=1)
def _plotly_gzip() -> bytes:
    """Compressed once per process, on first use, and kept (about 1.4 MB)."""
    return gzip.compress(plotly_js_path().read_bytes(), compresslevel=6, mtime=0)


@lru_cache(maxsize=1)
def _plotly_etag() -> str:
    from importlib.metadata import version

    return _etag("plotly", version("plotly"))


@router.get("/static/vendor/plotly.min.js")
async def plotly_js(request: Request) -> Response:
    path = plotly_js_path()
    if not path.is_file():  # a broken install: say so rather than serve a page whose charts never draw
        return Response("plotly.min.js is missing from the installed plotly package", status_code=500)
    etag = _plotly_etag()
    headers = {"cache-control": VENDOR_CACHE, "etag": etag, "vary": "accept-encoding",
               "x-content-type-options": "nosniff"}
    if _fresh(request, etag):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = await asyncio.to_thread(_plotly_gzip)  # the first time ~0.3 s of CPU: not on the event loop
        return Response(body, media_type=TYPES[".js"], headers={**headers, "content-encoding": "gzip"})
    return FileResponse(path, media_type=TYPES[".js"], headers=headers)


# -- our own files ---------------------------------------------------------------------------------


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever the page says: our SVG icon (not a 404 in every console)."""
    return await static("favicon.svg", request)



@router.get("/static/{path:path}")
async def static(path: str, request: Request) -> Response:
    found = static_file(path)
    if found is None:
        return _not_found()
    stat = found.stat()
    etag = _etag(found.name, stat.st_size, stat.st_mtime_ns)
    headers = {"cache-control": OWN_CACHE, "etag": etag, "x-content-type-options": "nosniff"}
    if _fresh(request, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(found, media_type=TYPES[found.suffix], headers=headers)
