import pytest

from llmrelay.config import load_settings
from llmrelay.providers.registry import provider_class
from llmrelay.redaction import redact
from llmrelay.types import ConfigError


def test_defaults_point_at_the_real_apis_and_disable_keyless_cloud_providers():
    s = load_settings(env_file=None)
    assert s.provider("openai").base_url == "https://api.openai.com/v1"
    assert s.provider("ollama").base_url == "http://localhost:11434"
    status = {p.name: p for p in s.providers()}
    assert status["anthropic"].enabled is False
    assert status["anthropic"].disabled_reason == "ANTHROPIC_API_KEY is not set"
    assert status["google"].disabled_reason == "GOOGLE_API_KEY is not set"
    assert status["ollama"].enabled is True and status["ollama"].disabled_reason is None


def test_a_key_enables_its_provider_and_never_shows_in_repr(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value-123456")
    s = load_settings(env_file=None)
    assert s.provider("openai").enabled
    assert "sk-test-secret-value-123456" not in repr(s)
    assert "sk-test-secret-value-123456" not in str(s.provider("openai"))
    assert "sk-test-secret-value-123456" not in redact("echo: sk-test-secret-value-123456 here")


def test_blank_key_counts_as_missing(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "   ")
    assert load_settings(env_file=None).provider("anthropic").disabled_reason == "ANTHROPIC_API_KEY is not set"


@pytest.mark.parametrize(("var", "value"), [
    ("OPENAI_BASE_URL", "ftp://example.com"),
    ("OLLAMA_BASE_URL", "localhost:11434"),
    ("ANTHROPIC_BASE_URL", "http://"),
    ("GOOGLE_BASE_URL", "http://host:notaport"),
    ("LLMRELAY_IDLE_TIMEOUT", "-1"),
    ("LLMRELAY_LOG_LEVEL", "verbose"),
    ("LLMRELAY_MAX_RETRIES", "many"),
])
def test_a_malformed_value_is_one_line_naming_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as exc:
        load_settings(env_file=None)
    msg = str(exc.value)
    assert msg.startswith(f"{var}: ")
    assert "\n" not in msg


def test_an_unknown_llmrelay_variable_is_refused_with_a_suggestion(monkeypatch):
    monkeypatch.setenv("LLMRELAY_AGENT_FILE", "agents.toml")
    hint = r"\(did you mean LLMRELAY_AGENTS_FILE\?\)"
    with pytest.raises(ConfigError, match=r"^LLMRELAY_AGENT_FILE: unknown setting " + hint):
        load_settings(env_file=None)


def test_dotenv_file_is_read_and_checked(tmp_path):
    env = tmp_path / ".env"
    env.write_text("OPENROUTER_API_KEY=sk-or-v1-abcdefabcdef\nOPENAI_BASE_URL=http://127.0.0.1:9/v1/\n")
    s = load_settings(env_file=env)
    assert s.provider("openrouter").enabled
    assert s.provider("openai").base_url == "http://127.0.0.1:9/v1"
    env.write_text("LLMRELAY_DEADLNE=5\n")
    with pytest.raises(ConfigError, match="LLMRELAY_DEADLNE: unknown setting"):
        load_settings(env_file=env)


def test_key_shapes_are_redacted_even_when_not_configured():
    text = "Incorrect API key provided: sk-proj-abc***********wxyz and AIzaSyA1234567890abcdefghijk"
    out = redact(text)
    assert "sk-proj" not in out and "AIza" not in out
    assert out.count("[redacted]") == 2


def test_env_example_copied_as_dotenv_loads_and_documents_every_setting(tmp_path):
    from pathlib import Path

    from llmrelay.config import KNOWN_VARS

    example = Path(__file__).resolve().parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    s = load_settings(env_file=tmp_path / ".env")
    assert s.agents_file is None and s.request_deadline == 180
    documented = {line.split("=", 1)[0] for line in example.read_text().splitlines()
                  if line and not line.startswith("#")}
    assert documented >= KNOWN_VARS
    builtin = [provider_class(name) for name in ("anthropic", "openai", "google", "openrouter", "ollama")]
    assert documented >= {v for cls in builtin for v in (cls.key_var(), cls.base_url_var())}


def test_plain_environment_names_are_not_read(monkeypatch):
    monkeypatch.delenv("LLMRELAY_HOME")
    monkeypatch.setenv("HOME", "/tmp/somewhere-else")
    monkeypatch.setenv("DATABASE_URL", "postgresql://other/db")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = load_settings(env_file=None)
    assert str(s.home).endswith(".llmrelay") and s.database_url is None and s.log_level == "warning"


def test_overrides_by_field_name_still_work():
    s = load_settings(env_file=None, max_retries=5, database_url="sqlite:///x.db")
    assert s.max_retries == 5 and s.database_url == "sqlite+aiosqlite:///x.db"
