"""Settings, read once from the environment and an optional `.env`, and provider enablement.

Every problem with a value becomes one `ConfigError` whose one-line message names the
variable.  Keys are `SecretStr`: they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .redaction import register_secret
from .types import ConfigError

PROVIDERS: tuple[str, ...] = ("anthropic", "openai", "google", "openrouter", "ollama")


@dataclass(frozen=True, slots=True)
class ProviderEnv:
    key_var: str | None
    """The variable holding the key; None when the provider needs none (a local Ollama)."""
    base_url_var: str


PROVIDER_ENV: dict[str, ProviderEnv] = {
    "anthropic": ProviderEnv("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "openai": ProviderEnv("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "google": ProviderEnv("GOOGLE_API_KEY", "GOOGLE_BASE_URL"),
    "openrouter": ProviderEnv("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    "ollama": ProviderEnv(None, "OLLAMA_BASE_URL"),
}


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    name: str
    base_url: str
    api_key: SecretStr | None
    enabled: bool
    disabled_reason: str | None


def _env(name: str, *more: str):
    """A field read from exactly these environment variables (or its own name in code)."""
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    """Everything llmrelay reads from its environment.  `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        # populate_by_name stays off: it would also read plain HOME, DATABASE_URL, LOG_LEVEL … from the
        # environment.  Code passes overrides by field name through `load_settings`, which maps them.
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False,
        case_sensitive=False, hide_input_in_errors=True,
    )

    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    google_api_key: SecretStr | None = Field(None, validation_alias=_env("GOOGLE_API_KEY"))
    openrouter_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENROUTER_API_KEY"))
    ollama_api_key: SecretStr | None = Field(None, validation_alias=_env("OLLAMA_API_KEY"))

    anthropic_base_url: str = Field("https://api.anthropic.com", validation_alias=_env("ANTHROPIC_BASE_URL"))
    openai_base_url: str = Field("https://api.openai.com/v1", validation_alias=_env("OPENAI_BASE_URL"))
    google_base_url: str = Field(
        "https://generativelanguage.googleapis.com", validation_alias=_env("GOOGLE_BASE_URL"))
    openrouter_base_url: str = Field(
        "https://openrouter.ai/api/v1", validation_alias=_env("OPENROUTER_BASE_URL"))
    ollama_base_url: str = Field("http://localhost:11434", validation_alias=_env("OLLAMA_BASE_URL"))

    agents_file: Path | None = Field(None, validation_alias=_env("LLMRELAY_AGENTS_FILE"))
    database_url: str | None = Field(None, validation_alias=_env("LLMRELAY_DATABASE_URL"))
    """None: the embedded SQLite file `llmrelay.db` in `home`."""
    home: Path = Field(Path("~/.llmrelay"), validation_alias=_env("LLMRELAY_HOME"))
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", validation_alias=_env("LLMRELAY_LOG_LEVEL"))

    # -- the fallback executor --
    connect_timeout: float = Field(5.0, gt=0, le=300, validation_alias=_env("LLMRELAY_CONNECT_TIMEOUT"))
    first_token_timeout: float = Field(
        60.0, gt=0, le=3600, validation_alias=_env("LLMRELAY_FIRST_TOKEN_TIMEOUT"))
    idle_timeout: float = Field(30.0, gt=0, le=3600, validation_alias=_env("LLMRELAY_IDLE_TIMEOUT"))
    request_deadline: float = Field(
        180.0, gt=0, le=7200, validation_alias=_env("LLMRELAY_REQUEST_DEADLINE"))
    max_retries: int = Field(2, ge=0, le=10, validation_alias=_env("LLMRELAY_MAX_RETRIES"))
    retry_after_cap: float = Field(60.0, ge=0, le=3600, validation_alias=_env("LLMRELAY_RETRY_AFTER_CAP"))
    breaker_threshold: int = Field(3, ge=1, le=1000, validation_alias=_env("LLMRELAY_BREAKER_THRESHOLD"))
    breaker_cooldown: float = Field(30.0, gt=0, le=86400, validation_alias=_env("LLMRELAY_BREAKER_COOLDOWN"))
    default_max_tokens: int = Field(
        2048, ge=1, le=1_000_000, validation_alias=_env("LLMRELAY_DEFAULT_MAX_TOKENS"))

    # -- the HTTP service --
    default_provider: Literal["anthropic", "openai", "google", "openrouter", "ollama"] | None = Field(
        None, validation_alias=_env("LLMRELAY_DEFAULT_PROVIDER"))
    """Who serves a bare model name on /v1 that no catalog knows."""
    redis_url: str | None = Field(None, validation_alias=_env("LLMRELAY_REDIS_URL"))
    """Rate-limit counters shared by every worker and instance; unset: in each process's memory."""
    rate_rpm: int = Field(600, ge=0, le=10_000_000, validation_alias=_env("LLMRELAY_RATE_RPM"))
    """Requests per minute per user (0: unlimited); a user's own limit overrides it."""
    rate_tpm: int = Field(2_000_000, ge=0, le=10_000_000_000, validation_alias=_env("LLMRELAY_RATE_TPM"))
    """Tokens per minute per user (0: unlimited); a user's own limit overrides it."""
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024, validation_alias=_env("LLMRELAY_MAX_BODY_BYTES"))
    shutdown_grace: float = Field(15.0, ge=0, le=3600, validation_alias=_env("LLMRELAY_SHUTDOWN_GRACE"))
    """Seconds in-flight requests get to finish on SIGTERM/SIGINT before they are cancelled."""
    key_refresh: float = Field(2.0, gt=0, le=300, validation_alias=_env("LLMRELAY_KEY_REFRESH"))
    """Seconds between reloads of the API keys: a revoked key stops working within this."""
    session_secret: SecretStr | None = Field(None, validation_alias=_env("LLMRELAY_SESSION_SECRET"))
    """Signs the web UI's session cookies; unset: a random one kept in `home`/session.secret."""

    @field_validator("anthropic_api_key", "openai_api_key", "google_api_key", "openrouter_api_key",
                     "ollama_api_key", "session_secret", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip()
            return v or None
        return v

    @field_validator("anthropic_base_url", "openai_base_url", "google_base_url", "openrouter_base_url",
                     "ollama_base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        v = v.strip()
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {v!r}")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError(f"bad port in URL: {v!r}") from None
        if parts.query or parts.fragment:
            raise ValueError(f"a base URL takes no query or fragment: {v!r}")
        return v.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError(f"not a redis:// URL: {parts.scheme}://{parts.hostname or ''}")
        return v.strip()

    @field_validator("agents_file", "database_url", "redis_url", "default_provider", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from .db.engine import async_url  # late: the db layer is optional at import time

        return async_url(v)

    @field_validator("home", "agents_file")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None

    # -- derived --------------------------------------------------------------------------

    @property
    def db_url(self) -> str:
        """The SQLAlchemy async URL of the database."""
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'llmrelay.db'}"

    def provider(self, name: str) -> ProviderSettings:
        """Where `name` lives, its key, and whether it can be used (with the reason if not)."""
        env = PROVIDER_ENV[name]
        key = getattr(self, f"{name}_api_key")
        base_url = getattr(self, f"{name}_base_url")
        if env.key_var and key is None:
            return ProviderSettings(name, base_url, None, False, f"{env.key_var} is not set")
        return ProviderSettings(name, base_url, key, True, None)

    def providers(self) -> list[ProviderSettings]:
        return [self.provider(name) for name in PROVIDERS]


_FIELD_VARS = {
    name: (field.validation_alias.choices[0] if isinstance(field.validation_alias, AliasChoices) else name)
    for name, field in Settings.model_fields.items()
}
KNOWN_VARS = frozenset(_FIELD_VARS.values())
"""Every variable llmrelay reads.  Later modules add theirs through `known_var`."""

_extra_known: set[str] = set()


def known_var(name: str) -> None:
    """Declare a variable read elsewhere (so the unknown-variable check accepts it)."""
    _extra_known.add(name)


def _unknown_llmrelay_vars(env_file: Path | None) -> list[str]:
    names = {k.upper() for k in os.environ if k.upper().startswith("LLMRELAY_")}
    if env_file and env_file.is_file():
        for line in env_file.read_text(encoding="utf-8", errors="replace").splitlines():
            key = line.split("=", 1)[0].strip().removeprefix("export ").strip().upper()
            if key.startswith("LLMRELAY_") and "=" in line:
                names.add(key)
    return sorted(names - KNOWN_VARS - _extra_known)


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read the settings, or raise one `ConfigError` naming the first bad variable."""
    env_path = Path(env_file) if env_file else None
    unknown = _unknown_llmrelay_vars(env_path)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, sorted(KNOWN_VARS | _extra_known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{name}: unknown setting{hint}")
    by_alias = {_FIELD_VARS.get(k, k): v for k, v in overrides.items()}
    try:
        settings = Settings(_env_file=env_path, **by_alias)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    for p in settings.providers():
        if p.api_key is not None:
            register_secret(p.api_key.get_secret_value())
    for secret in (settings.ollama_api_key, settings.session_secret):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return settings


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    field = str(err["loc"][0]) if err["loc"] else "?"
    var = _FIELD_VARS.get(field, field.upper())
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{var}: {msg}{more}"
