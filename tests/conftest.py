"""Shared fixtures.  No test touches the real network: pytest-socket (configured in
pyproject.toml) refuses every connection to a host other than 127.0.0.1 / ::1 / localhost."""

from __future__ import annotations

import os

import pytest

from llmrelay.config import KNOWN_VARS
from llmrelay.providers.registry import known_providers, provider_class


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    """Tests never see the developer's keys, base URLs or LLMRELAY_* settings, nor a .env."""
    adapters = [provider_class(name) for name in known_providers()]
    names = set(KNOWN_VARS) | {v for cls in adapters for v in (cls.key_var(), cls.base_url_var())}
    for name in list(os.environ):
        if name.upper() in names or name.upper().startswith("LLMRELAY_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMRELAY_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


pytest_plugins = ["tests.dbfixtures"]
