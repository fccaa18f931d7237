"""A sixth provider touches no llmrelay file: the adapter declares itself, and is found either by
`register()` or, in a real `llmrelay serve`, through an entry point of an installed package.

The example plugin is tests/plugin_example (a module and its dist-info, as pip would install
them): Mistral, an OpenAI-compatible API, served here by the OpenAI fake under Mistral's name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest

from llmrelay import catalog
from llmrelay.config import load_settings
from llmrelay.providers import registry
from llmrelay.testing import FakeServers
from llmrelay.testing.openai import FakeOpenAI
from llmrelay.types import ConfigError
from tests.servers import Server, cli, wait_for

PLUGIN_DIR = Path(__file__).parent / "plugin_example"


class FakeMistral(FakeOpenAI):
    name = "mistral"
    default_key = "fake-mistral-key"


@pytest.fixture
def plugin_path(monkeypatch):
    """The example plugin installed on sys.path, its entry points not yet read."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.setattr(registry, "_plugins", None)
    yield
    registry.unregister("mistral")


def test_an_entry_point_makes_a_provider_known_with_the_variables_it_declares(plugin_path, monkeypatch):
    assert "mistral" in registry.known_providers()
    assert registry.known_providers()[:5] == ("anthropic", "openai", "google", "openrouter", "ollama")
    cls = registry.provider_class("mistral")
    assert cls.__module__ == "llmrelay_mistral" and cls.key_var() == "MISTRAL_API_KEY"

    s = load_settings(env_file=None)
    mistral = s.provider("mistral")
    assert not mistral.enabled and mistral.disabled_reason == "MISTRAL_API_KEY is not set"
    assert mistral.base_url == "https://api.mistral.ai/v1"
    assert "mistral" in [p.name for p in s.providers()]

    monkeypatch.setenv("MISTRAL_API_KEY", "mk-secret-value-0123456789")
    monkeypatch.setenv("MISTRAL_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("LLMRELAY_DEFAULT_PROVIDER", "mistral")
    s = load_settings(env_file=None)
    assert s.provider("mistral").enabled and s.provider("mistral").base_url == "http://127.0.0.1:9/v1"
    assert s.default_provider == "mistral"
    assert "mk-secret-value-0123456789" not in repr(s.provider("mistral"))

    assert catalog.plausible("mistral", "mistral-large-latest")
    assert not catalog.plausible("mistral", "gpt-4o")  # the adapter's own pattern decides


def test_a_plugin_providers_malformed_value_is_one_line_naming_its_variable(plugin_path, monkeypatch):
    monkeypatch.setenv("MISTRAL_BASE_URL", "ftp://mistral.example")
    with pytest.raises(ConfigError, match=r"^MISTRAL_BASE_URL: not an http\(s\) URL"):
        load_settings(env_file=None)


def test_an_unknown_default_provider_is_refused_naming_the_known_ones(monkeypatch):
    monkeypatch.setenv("LLMRELAY_DEFAULT_PROVIDER", "mistral")  # no plugin installed here
    with pytest.raises(ConfigError, match=r"^LLMRELAY_DEFAULT_PROVIDER: unknown provider 'mistral' \(known: "):
        load_settings(env_file=None)


def test_a_class_without_a_name_or_base_url_cannot_register():
    class Nameless(FakeOpenAI):  # not even a Provider: refused for what it lacks
        pass

    with pytest.raises(TypeError, match="must declare"):
        registry.register(Nameless)  # type: ignore[arg-type]


def test_llmrelay_serve_relays_to_a_plugin_provider_found_by_its_entry_point(plugin_path, tmp_path):
    """The whole path in real processes: `llmrelay serve` with the plugin on its PYTHONPATH, the
    openai SDK through /v1, the provider list, the ledger and `llmrelay providers`."""
    mistral = FakeMistral()
    with FakeServers(["openai"], extra={"mistral": mistral}) as fakes:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("LLMRELAY_") and not k.endswith(("_API_KEY", "_BASE_URL"))}
        env = {**base, **fakes.env(), "LLMRELAY_HOME": str(tmp_path / "home"), "LLMRELAY_MAX_RETRIES": "0",
               "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        assert env["MISTRAL_BASE_URL"] == fakes.url("mistral")
        server = Server(env, tmp_path)
        try:
            admin_key = server.stdout.split("admin api key: ")[1].split()[0]
            client = openai.OpenAI(base_url=server.url + "/v1", api_key=admin_key, max_retries=0)
            answer = client.chat.completions.create(
                model="mistral/mistral-small-latest", messages=[{"role": "user", "content": "Bonjour"}])
            assert answer.choices[0].message.content and answer.usage.total_tokens > 0
            assert answer.model.startswith("mistral-small-latest")
            assert [r.body["model"] for r in mistral.requests] == ["mistral-small-latest"]

            auth = {"authorization": f"Bearer {admin_key}"}
            listed = {p["provider"]: p for p in server.fresh("GET", "/api/ai/providers", headers=auth).json()}
            assert listed["mistral"]["enabled"] is True and listed["mistral"]["baseUrl"] == fakes.url("mistral")
            assert listed["anthropic"]["disabledReason"] == "ANTHROPIC_API_KEY is not set"
            rows = wait_for("the ledger row (written in the background)", lambda: server.fresh(
                "GET", "/api/ai/usage/records", params={"provider": "mistral"}, headers=auth).json()["records"], 10)
            assert [(r["provider"], r["model"], r["status"]) for r in rows] == [
                ("mistral", "mistral-small-latest", "success")]
            assert rows[0]["costUsd"] is None  # no price known for it: NULL, never a made-up 0
            bad = server.fresh("GET", "/api/ai/usage/records", params={"provider": "mistrale"}, headers=auth)
            assert bad.status_code == 422 and "unknown provider 'mistrale'" in bad.text, bad.text
        finally:
            server.stop()

        keyless = {k: v for k, v in env.items() if k != "MISTRAL_API_KEY"}
        shown = json.loads(cli(keyless, "providers", "--json").stdout)
        assert {"name": "mistral", "enabled": False, "reason": "MISTRAL_API_KEY is not set"}.items() <= next(
            p for p in shown if p["name"] == "mistral").items()
