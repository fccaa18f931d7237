"""The web UI in a real browser: `llmrelay serve` as a process, Playwright driving Debian's chromium.

    live_server       one server for the whole session (fresh LLMRELAY_HOME, providers at the
                      fakes): .url, .admin_key, .fakes, .home, .env, .add_user(name) -> key,
                      .api(method, path, key=…) for JSON calls beside the browser
    browser           chromium from /usr/bin/chromium (never a downloaded build); without it,
                      or without the playwright package, every test that needs it is skipped
                      with a reason that says how to get it.  One per test module: Playwright's
                      sync API holds an event loop while it runs, and pytest-asyncio cannot start
                      another, so keep the in-process async tests in modules without a browser
    page, phone_page  a fresh context per test: desktop 1280x900, or a 390x844 phone
    signed_in_page    `page`, signed in through the real /signin form with the admin key
    sign_in           sign_in(page, key): the same for any key
    screenshot        screenshot(page, name[, full_page=False]) -> test-artifacts/screenshots/<name>.png

Tests share the one server and its ledger, so a test that counts rows filters them (by agent,
by user, or by a time window it opens itself) rather than assuming an empty database.
The fakes are shared too: script faults with `live_server.fakes["anthropic"].script(...)`;
they are emptied after every test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.servers import Server, cli  # one way to start `llmrelay serve`, shared

from llmrelay.testing import FakeServers

CHROMIUM = Path("/usr/bin/chromium")
SKIP_REASON = (f"chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
               "to run the browser tests")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return SKIP_REASON
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]' to run the browser tests"
    return None


@dataclass
class LiveServer:
    url: str
    admin_key: str
    fakes: FakeServers
    home: Path
    env: dict[str, str]
    server: Server
    keys: dict[str, str] = field(default_factory=dict)

    def add_user(self, name: str, *, admin: bool = False) -> str:
        """A new user (with the CLI, on the server's database) and a key for them; the key is
        usable at once.  Asking again for the same name returns the same key."""
        if name in self.keys:
            return self.keys[name]
        made = cli(self.env, "users", "add", name, *(["--admin"] if admin else []))
        assert made.returncode == 0, made.stderr
        key = cli(self.env, "keys", "create", "--user", name)
        assert key.returncode == 0, key.stderr
        self.keys[name] = key.stdout.strip().splitlines()[-1]
        return self.keys[name]

    def api(self, method: str, path: str, *, key: str | None = None, **kw: Any) -> httpx.Response:
        """A call to the server's HTTP API with a key (the admin's unless told)."""
        headers = {"authorization": f"Bearer {key or self.admin_key}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def chat(self, message: str = "Hello", *, agent: str = "general-agent", key: str | None = None) -> dict:
        """One chat through POST /api/ai/agents; returns the JSON (a 502 body when every link failed)."""
        r = self.api("POST", "/api/ai/agents", key=key, json={"agentId": agent, "message": message})
        assert r.status_code in (200, 502), r.text
        return r.json()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("web-server")
    with FakeServers() as fakes:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
        env = {**base, **fakes.env(), "LLMRELAY_HOME": str(workdir / "home"), "LLMRELAY_MAX_RETRIES": "0",
               "LLMRELAY_LOG_LEVEL": "warning", "COLUMNS": "200"}
        server = Server(env, workdir)
        try:
            admin_key = server.stdout.split("admin api key: ")[1].split()[0]
            yield LiveServer(server.url, admin_key, fakes, workdir / "home", env, server)
        finally:
            server.kill()


@pytest.fixture(autouse=True)
def _fresh_fakes(request) -> Iterator[None]:
    """Faults a test scripted never leak into the next one."""
    yield
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server").fakes.reset()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield b
        b.close()


def _context_page(browser: Any, **options: Any) -> Iterator[Any]:
    context = browser.new_context(**options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error" else None)
    page.js_errors = errors  # uncaught exceptions and console errors (CSP violations among them)
    yield page
    context.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    yield from _context_page(browser, viewport=DESKTOP, accept_downloads=True)


@pytest.fixture
def phone_page(browser) -> Iterator[Any]:
    yield from _context_page(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


@pytest.fixture
def sign_in(live_server) -> Callable[[Any, str | None], Any]:
    """sign_in(page, key=admin's): through the real /signin form (field `key` and the form's submit button)."""

    def go(page: Any, key: str | None = None) -> Any:
        page.goto(live_server.url + "/signin")
        page.fill("input[name=key]", key or live_server.admin_key)
        with page.expect_navigation():
            page.click('form[action="/signin"] [type=submit]')
        assert "/signin" not in page.url, f"still on the sign-in page: {page.content()[:2000]}"
        return page

    return go


@pytest.fixture
def signed_in_page(page, sign_in) -> Any:
    return sign_in(page)


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Any, str], Path]:
    """screenshot(page, name, full_page=True): test-artifacts/screenshots/<name>.png (the whole page,
    or with full_page=False what the viewport shows)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take

