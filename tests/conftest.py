"""Shared fixtures.  No test touches the real network: pytest-socket (configured in
pyproject.toml) refuses every connection to a host other than 127.0.0.1 / ::1 / localhost."""

from __future__ import annotations

import os

import pytest

from llmrelay.config import KNOWN_VARS, PROVIDER_ENV


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    """Tests never see the developer's keys, base URLs or LLMRELAY_* settings, nor a .env."""
    names = set(KNOWN_VARS) | {v.key_var for v in PROVIDER_ENV.values() if v.key_var} | {"OLLAMA_API_KEY"}
    for name in list(os.environ):
        if name.upper() in names or name.upper().startswith("LLMRELAY_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMRELAY_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


pytest_plugins = ["tests.dbfixtures"]
