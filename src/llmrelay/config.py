"""Settings, read once from the environment and an optional `.env`, and provider enablement.

Every problem with a value becomes one `ConfigError` whose one-line message names the
variable.  Keys are `SecretStr`: they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError
from .providers.base import Provider, ProviderSettings
from .providers.registry import known_providers, provider_class
from .redaction import register_secret

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite", "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "postgresql+asyncpg": "postgresql+asyncpg",
}


def async_url(url: str) -> str:
    """`url` with its async driver (`postgresql://` -> `postgresql+asyncpg://`), or ValueError."""
    try:
        u = make_url(url.strip())
    except ArgumentError:
        raise ValueError(f"not a database URL: {url.split('@')[-1]!r}") from None
    driver = _DRIVERS.get(u.drivername)
    if driver is None:
        raise ValueError(f"unsupported database {u.drivername!r}: use sqlite:///PATH or postgresql://…")
    if driver.startswith("postgresql") and not u.database:
        raise ValueError("a PostgreSQL URL needs a database name")
    return u.set(drivername=driver).render_as_string(hide_password=False)


def http_base_url(v: str) -> str:
    """A provider's base URL, checked and without its trailing slash, or ValueError."""
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

    _provider_env: dict[str, str | None] = PrivateAttr(
        default_factory=lambda: {k.upper(): v for k, v in os.environ.items()})
    """The variables providers read (each adapter declares its own), captured at load."""
    _providers: dict[str, ProviderSettings] = PrivateAttr(default_factory=dict)

    agents_file: Path | None = Field(None, validation_alias=_env("LLMRELAY_AGENTS_FILE"))
    database_url: str | None = Field(None, validation_alias=_env("LLMRELAY_DATABASE_URL"))
    """None: the embedded SQLite file `llmrelay.db` in `home`."""
    home: Path = Field(Path("~/.llmrelay"), validation_alias=_env("LLMRELAY_HOME"))
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", validation_alias=_env("LLMRELAY_LOG_LEVEL"))
    ledger_durable: bool = Field(False, validation_alias=_env("LLMRELAY_LEDGER_DURABLE"))
    """An answer completes only once its ledger rows are committed or fsync'ed to the spool (a SIGKILL
    then loses no row of an answered request); off: rows of the last flush interval may be lost."""

    # -- the fallback executor --
    connect_timeout: float = Field(5.0, gt=0, le=300, validation_alias=_env("LLMRELAY_CONNECT_TIMEOUT"))
    first_token_timeout: float = Field(
        60.0, gt=0, le=3600, validation_alias=_env("LLMRELAY_FIRST_TOKEN_TIMEOUT"))
    idle_timeout: float = Field(30.0, gt=0, le=3600, validation_alias=_env("LLMRELAY_IDLE_TIMEOUT"))
    request_deadline: float = Field(
        180.0, gt=0, le=7200, validation_alias=_env("LLMRELAY_REQUEST_DEADLINE"))
    provider_connections: int = Field(
        256, ge=1, le=100_000, validation_alias=_env("LLMRELAY_PROVIDER_CONNECTIONS"))
    """Connections each provider's pool keeps open at most (per process); a stream holds one to its end."""
    max_retries: int = Field(2, ge=0, le=10, validation_alias=_env("LLMRELAY_MAX_RETRIES"))
    retry_after_cap: float = Field(60.0, ge=0, le=3600, validation_alias=_env("LLMRELAY_RETRY_AFTER_CAP"))
    breaker_threshold: int = Field(3, ge=1, le=1000, validation_alias=_env("LLMRELAY_BREAKER_THRESHOLD"))
    breaker_cooldown: float = Field(30.0, gt=0, le=86400, validation_alias=_env("LLMRELAY_BREAKER_COOLDOWN"))
    default_max_tokens: int = Field(
        2048, ge=1, le=1_000_000, validation_alias=_env("LLMRELAY_DEFAULT_MAX_TOKENS"))

    # -- the HTTP service --
    default_provider: str | None = Field(None, validation_alias=_env("LLMRELAY_DEFAULT_PROVIDER"))
    """Who serves a bare model name on /v1 that no catalog knows."""
    redis_url: str | None = Field(None, validation_alias=_env("LLMRELAY_REDIS_URL"))
    """Rate-limit counters shared by every worker and instance; unset: in each process's memory."""
    rate_rpm: int = Field(600, ge=0, le=10_000_000, validation_alias=_env("LLMRELAY_RATE_RPM"))
    """Requests per minute per user (0: unlimited); a user's own limit overrides it; not for admins without one."""
    rate_tpm: int = Field(2_000_000, ge=0, le=10_000_000_000, validation_alias=_env("LLMRELAY_RATE_TPM"))
    """Tokens per minute per user (0: unlimited); a user's own limit overrides it; not for admins without one."""
    max_streams: int = Field(64, ge=0, le=1_000_000, validation_alias=_env("LLMRELAY_MAX_STREAMS"))
    """Streams one user may have open at once in one process (0: no cap)."""
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024, validation_alias=_env("LLMRELAY_MAX_BODY_BYTES"))
    shutdown_grace: float = Field(15.0, ge=0, le=3600, validation_alias=_env("LLMRELAY_SHUTDOWN_GRACE"))
    """Seconds in-flight requests get to finish on SIGTERM/SIGINT before they are cancelled."""
    key_refresh: float = Field(2.0, gt=0, le=300, validation_alias=_env("LLMRELAY_KEY_REFRESH"))
    """Seconds between reloads of the API keys: a revoked key stops working within this."""
    session_secret: SecretStr | None = Field(None, validation_alias=_env("LLMRELAY_SESSION_SECRET"))
    """Signs the web UI's session cookies; unset: a random one kept in `home`/session.secret."""

    @field_validator("session_secret", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, v: object) -> object:
        return _blank_is_none(v)

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
        """Where `name` lives, its key, and whether it can be used (with the reason if not).
        Raises KeyError for a provider nobody declared, ConfigError for a malformed value."""
        found = self._providers.get(name)
        if found is None:
            found = self._providers[name] = _provider_settings(provider_class(name), self._provider_env)
        return found

    def providers(self) -> list[ProviderSettings]:
        return [self.provider(name) for name in known_providers()]


def _blank_is_none(v: object) -> object:
    if isinstance(v, str):
        return v.strip() or None
    return v


def _provider_settings(cls: type[Provider], env: Mapping[str, str | None]) -> ProviderSettings:
    """One provider's settings from the variables its adapter declares."""
    key_var, url_var = cls.key_var(), cls.base_url_var()
    raw_key = _blank_is_none(env.get(key_var))
    key = SecretStr(raw_key) if isinstance(raw_key, str) else None
    raw_url = _blank_is_none(env.get(url_var))
    try:
        base_url = http_base_url(raw_url if isinstance(raw_url, str) else cls.default_base_url)
    except ValueError as exc:
        raise ConfigError(f"{url_var}: {exc}") from None
    if key is not None:
        register_secret(key.get_secret_value())
    if key is None and cls.key_required:
        return ProviderSettings(cls.name, base_url, None, False, f"{key_var} is not set")
    return ProviderSettings(cls.name, base_url, key, True, None)


def _provider_environment(env_file: Path | None, overrides: dict[str, object]) -> dict[str, str | None]:
    """The variables providers read, as pydantic-settings would rank them: code overrides
    (`<name>_api_key=`, `<name>_base_url=`, popped from `overrides`), then the environment, then
    `.env`.  Names are upper-cased: like the other settings they are read case-insensitively."""
    env: dict[str, str | None] = {}
    if env_file is not None and env_file.is_file():
        env.update({k.upper(): v for k, v in dotenv_values(env_file, encoding="utf-8").items()})
    env.update({k.upper(): v for k, v in os.environ.items()})
    for field in [k for k in overrides if k.endswith(("_api_key", "_base_url"))]:
        value = overrides.pop(field)
        env[field.upper()] = value.get_secret_value() if isinstance(value, SecretStr) else value  # type: ignore
    return env


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
    provider_env = _provider_environment(env_path, overrides)
    by_alias = {_FIELD_VARS.get(k, k): v for k, v in overrides.items()}
    try:
        settings = Settings(_env_file=env_path, **by_alias)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    settings._provider_env = provider_env
    known = known_providers()
    if settings.default_provider is not None and settings.default_provider not in known:
        raise ConfigError(f"LLMRELAY_DEFAULT_PROVIDER: unknown provider {settings.default_provider!r} "
                          f"(known: {', '.join(known)})")
    settings.providers()  # every provider's values are checked (and its key registered as a secret) now
    if settings.session_secret is not None:
        register_secret(settings.session_secret.get_secret_value())
    return settings


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    field = str(err["loc"][0]) if err["loc"] else "?"
    var = _FIELD_VARS.get(field, field.upper())
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{var}: {msg}{more}"
