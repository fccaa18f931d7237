"""The deployment files (Containerfile, compose.yaml, deploy/) stay consistent with the code: every
LLMRELAY_* variable they set is one llmrelay knows, the commands they run exist with those options,
the replicas share what they must, and each stop timeout outlasts the shutdown grace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from llmrelay.cli import app

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
COMPOSE = ROOT / "compose.yaml"
UNIT = ROOT / "deploy" / "llmrelay.service"
ENV_EXAMPLE = ROOT / "deploy" / "llmrelay.env.example"
DEPLOY_FILES = (CONTAINERFILE, COMPOSE, UNIT, ENV_EXAMPLE)
SHARED = ("LLMRELAY_DATABASE_URL", "LLMRELAY_REDIS_URL", "LLMRELAY_SESSION_SECRET")
DEFAULT_GRACE = 15.0  # LLMRELAY_SHUTDOWN_GRACE's default (config.py)


def known_variables() -> set[str]:
    return set(re.findall(r"^(LLMRELAY_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))


def check_serve(argv: list[str]) -> None:
    """`argv` (after the program) is `serve` with options the command has, each given a value."""
    command = typer.main.get_command(app)
    assert argv[0] == "serve", argv
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    options = {opt for p in serve.params for opt in p.opts}
    flags = [a for a in argv[1:] if a.startswith("-")]
    assert flags, argv
    for flag in flags:
        assert flag in options, f"llmrelay serve has no {flag} (it has {sorted(options)})"
    assert serve.make_context("serve", list(argv[1:])) is not None


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m)?", text.strip())
    assert m, text
    return float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "min": 60, "m": 60}[m.group(2)]


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: p.name)
def test_every_llmrelay_variable_they_set_is_known(path: Path) -> None:
    known = known_variables()
    used = set(re.findall(r"\b(LLMRELAY_[A-Z0-9_]+)\b", path.read_text()))
    assert used, f"{path.name} names no LLMRELAY_* variable"
    assert used <= known, f"{path.name}: not in .env.example: {sorted(used - known)}"


def test_the_containers_command_is_llmrelay_serve_on_every_interface() -> None:
    text = CONTAINERFILE.read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[0] == "llmrelay"
    check_serve(cmd[1:])
    port = cmd[cmd.index("--port") + 1]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    assert f"127.0.0.1:{port}/healthz" in text  # the HEALTHCHECK asks the port served
    assert re.search(r"^USER (?!root\b)\w+", text, re.M)
    assert re.search(r"^ENV .*LLMRELAY_HOME=/data", text, re.M | re.S)


def test_the_units_exec_start_is_llmrelay_serve_and_outlasts_the_grace() -> None:
    fields = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), re.M))
    argv = fields["ExecStart"].split()
    assert argv[0].endswith("/bin/llmrelay")
    check_serve(argv[1:])
    assert fields["Type"] == "exec"
    assert fields["KillSignal"] == "SIGTERM"
    assert fields["EnvironmentFile"] == "/etc/llmrelay/env"
    env = dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    grace = float(env.get("LLMRELAY_SHUTDOWN_GRACE", DEFAULT_GRACE))
    assert seconds(fields["TimeoutStopSec"]) > grace
    assert fields["ReadWritePaths"] in fields["Environment"]  # LLMRELAY_HOME is writable
    for name in SHARED:
        assert name in env, f"{ENV_EXAMPLE.name} should set {name}: every replica shares it"


def test_compose_replicas_share_the_database_redis_and_session_secret() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: only the plain-text checks run")
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    replicas = {name: s for name, s in services.items() if s.get("image", "").startswith("llmrelay")}
    assert len(replicas) >= 3, sorted(services)
    envs = [s["environment"] for s in replicas.values()]
    for name in SHARED:
        assert all(e.get(name) == envs[0][name] for e in envs), name
    assert envs[0]["LLMRELAY_DATABASE_URL"].startswith("postgresql://")
    assert envs[0]["LLMRELAY_REDIS_URL"].startswith("redis://")
    volumes = [v for s in replicas.values() for v in s["volumes"]]
    assert len(set(volumes)) == len(volumes), "each replica keeps its own LLMRELAY_HOME (its spool)"
    for s in replicas.values():
        assert {d: c["condition"] for d, c in s["depends_on"].items()} == {
            "postgres": "service_healthy", "redis": "service_healthy"}
        assert "healthcheck" in s
        assert seconds(s["stop_grace_period"]) > float(s["environment"].get("LLMRELAY_SHUTDOWN_GRACE",
                                                                            DEFAULT_GRACE))
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], name
    balancers = [s for s in services.values() if set(replicas) <= set(s.get("depends_on", {}))]
    assert len(balancers) == 1, "one balancer in front of every replica"
    nginx = doc["configs"][balancers[0]["configs"][0]["source"]]["content"]
    assert set(re.findall(r"server (\w+):8000", nginx)) == set(replicas)
    assert "proxy_buffering off" in nginx
    assert not re.search(r"(?<!\$)\$(?!\$)", nginx), "a lone `$` in the nginx config is a compose variable"


def test_compose_file_names_its_parts_without_yaml() -> None:
    text = COMPOSE.read_text()
    for part in ("services:", "postgres:", "redis:", "condition: service_healthy", "LLMRELAY_SESSION_SECRET:"):
        assert part in text, part
    assert "\t" not in text
