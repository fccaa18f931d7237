"""The static-file routes in-process (no browser): our files with their types and cache headers,
plotly.js from the installed package (gzipped when accepted), and nothing outside web/static/."""

from __future__ import annotations

import gzip

import httpx
import pytest
from fastapi import FastAPI

from llmrelay.web import assets


@pytest.fixture
async def client():
    app = FastAPI()
    app.include_router(assets.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://llmrelay.test") as c:
        yield c


async def raw_get(path: str) -> int:
    """The status for a request whose path reaches the app exactly as given (no client normalizing
    `..` away first, as a hostile client would send it)."""
    app = FastAPI()
    app.include_router(assets.router)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("llmrelay.test", 80)}
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


async def test_plotly_is_served_from_the_installed_package_as_javascript(client):
    r = await client.get("/static/vendor/plotly.min.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.content == assets.plotly_js_path().read_bytes() and b"plotly" in r.content[:2000].lower()
    assert "max-age=" in r.headers["cache-control"] and r.headers["etag"]
    again = await client.get("/static/vendor/plotly.min.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content


async def test_plotly_is_gzipped_for_a_browser_that_accepts_it(client):
    r = await client.get("/static/vendor/plotly.min.js", headers={"accept-encoding": "gzip, deflate, br"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < assets.plotly_js_path().stat().st_size / 2
    assert r.content == assets.plotly_js_path().read_bytes()  # httpx undid the gzip
    assert gzip.decompress(assets._plotly_gzip()) == r.content


@pytest.mark.parametrize(("name", "content_type"), [("usage.js", "text/javascript; charset=utf-8"),
                                                    ("usage.css", "text/css; charset=utf-8")])
async def test_our_files_have_their_type_and_are_revalidated(client, name, content_type):
    r = await client.get(f"/static/{name}")
    assert r.status_code == 200 and r.headers["content-type"] == content_type
    assert r.content == (assets.STATIC / name).read_bytes()
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-content-type-options"] == "nosniff"
    again = await client.get(f"/static/{name}", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", [
    "/static/nothing-here.js", "/static/", "/static/vendor/other.js", "/static/%2e%2e/pyproject.toml",
    "/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e%5c__init__.py", "/static/.hidden.css", "/static/usage.js%00.css",
])
async def test_anything_but_a_known_file_is_404(client, path):
    r = await client.get(path)
    assert r.status_code == 404, path


@pytest.mark.parametrize("path", ["/static/../pyproject.toml", "/static/../__init__.py", "/static/../../web/assets.py",
                                  "/static/./usage.js", "/static//etc/passwd", "/static/../templates/usage.html"])
async def test_traversal_sent_raw_is_404(path):
    assert await raw_get(path) == 404


def test_static_file_resolves_only_inside_the_static_directory():
    assert assets.static_file("usage.js") == (assets.STATIC / "usage.js").resolve()
    for bad in ("../assets.py", "..", "", "a/../usage.js", "/etc/passwd", "usage.js/", "..\\assets.py"):
        assert assets.static_file(bad) is None, bad


def test_our_scripts_never_parse_html():
    """Model output, tool arguments and results reach the page as text nodes only: no script of ours
    hands a string to the HTML parser (or to eval)."""
    import re

    sinks = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    scripts = sorted(assets.STATIC.glob("*.js"))
    assert {"chat.js", "tools.js", "attach.js"} <= {p.name for p in scripts}
    for path in scripts:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not sinks.search(line), f"{path.name}:{n}: {line.strip()}"
