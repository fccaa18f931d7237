"""`llmrelay serve` and the CLI as real processes, for the tests that need them (the service's
process tests and the web UI's browser tests)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from llmrelay.testing import FakeServers

STARTUP = 60.0  # generous: two spawned workers import everything before they answer


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on `host:port` (a service a test needs: PostgreSQL, Redis)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class Server:
    """One `llmrelay serve` process; stdout and stderr go to files that tests read."""

    def __init__(self, env: dict[str, str], workdir: Path, *args: str) -> None:
        self.workdir = workdir
        n = len(list(workdir.glob("serve-*.out")))
        self.out_path, self.err_path = workdir / f"serve-{n}.out", workdir / f"serve-{n}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "llmrelay", "serve", "--port", "0", *args],
                                         env=env, cwd=workdir, stdout=out, stderr=err, start_new_session=True)
        try:
            self.url = wait_for("the listening line", self._listening, STARTUP)
            wait_for("/healthz", self._healthy, STARTUP)
        except BaseException:
            self.kill()
            raise

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def _listening(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"llmrelay serve exited with {self.proc.returncode}:\n{self.stdout}\n{self.stderr}")
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", self.stdout)
        return found.group(1) if found else None

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def fresh(self, method: str, path: str, **kw) -> httpx.Response:
        """A request on a new connection (so that, with several workers, any of them may answer)."""
        kw.setdefault("timeout", 30)
        return httpx.request(method, self.url + path, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server and its workers (its own process group: `--workers N` children die too)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrelay", *args], env=env, capture_output=True, text=True,
                          timeout=60)


@dataclass
class Served:
    """`llmrelay serve` with the fakes upstream, as a package of client tests uses it."""

    server: Server
    key: str
    fakes: FakeServers
    home: Path

    @property
    def v1(self) -> str:
        return self.server.url + "/v1"


@contextmanager
def serving(work: Path, agents_toml: str) -> Iterator[Served]:
    """`llmrelay serve` in `work` (its own home, the agents of `agents_toml`, no retries, no rate limits),
    the five fakes upstream, the admin key; stopped at the end."""
    (work / "agents.toml").write_text(agents_toml)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    with FakeServers() as fakes:
        env = {**base, **fakes.env(), "LLMRELAY_HOME": str(work / "home"), "LLMRELAY_MAX_RETRIES": "0",
               "LLMRELAY_AGENTS_FILE": str(work / "agents.toml"), "LLMRELAY_RATE_RPM": "0",
               "LLMRELAY_RATE_TPM": "0"}
        server = Server(env, work)
        try:
            key = server.stdout.split("admin api key: ")[1].split()[0]
            yield Served(server, key, fakes, work / "home")
        finally:
            server.stop()
