"""Provider name -> adapter class.  Register, don't dispatch: nothing else names a provider.

Three ways in, all equal once there: the built-in adapters (imported on first use), a package
that declares an entry point in the `llmrelay.providers` group (`name = "module:Class"`,
found when the registry is first asked what it knows), and `register(cls)` from code.
Settings, the catalog, `llmrelay providers` and the relay read every provider from here, with
the variables and model-id pattern the adapter class declares.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points

from .base import HTTPProvider, Provider, ProviderSettings, Timeouts

ENTRY_POINT_GROUP = "llmrelay.providers"

_BUILTIN: dict[str, str] = {
    "anthropic": "llmrelay.providers.anthropic:AnthropicProvider",
    "openai": "llmrelay.providers.openai:OpenAIProvider",
    "google": "llmrelay.providers.google:GoogleProvider",
    "openrouter": "llmrelay.providers.openrouter:OpenRouterProvider",
    "ollama": "llmrelay.providers.ollama:OllamaProvider",
}
_plugins: dict[str, str] | None = None
_registered: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available under `cls.name` (usable as a decorator)."""
    if not getattr(cls, "name", "") or not getattr(cls, "default_base_url", ""):
        raise TypeError(f"{cls.__qualname__} must declare `name` and `default_base_url`")
    _registered[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a provider added by `register` (tests and plugins that unload)."""
    _registered.pop(name, None)


def _entry_points() -> dict[str, str]:
    global _plugins
    if _plugins is None:
        _plugins = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)
                    if ep.name not in _BUILTIN}
    return _plugins


def provider_class(name: str) -> type[Provider]:
    """The adapter class for `name`.  Raises KeyError for a provider nobody declared."""
    cls = _registered.get(name)
    if cls is not None:
        return cls
    target = _BUILTIN.get(name) or _entry_points().get(name)
    if target is None:
        raise KeyError(name)
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"provider entry point {name} = {target!r} is not a Provider class")
    if cls.name != name:
        raise TypeError(f"provider entry point {name} = {target!r} declares name {cls.name!r}")
    return register(cls)


def known_providers() -> tuple[str, ...]:
    """Every provider name: the built-in five first, then plugins and registered ones."""
    return tuple(dict.fromkeys([*_BUILTIN, *_entry_points(), *_registered]))


def known_provider(name: str) -> str:
    """`name` if some provider declared it, else ValueError listing those that did (a validator)."""
    known = known_providers()
    if name not in known:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(known)})")
    return name


def build_providers(providers: Iterable[ProviderSettings], timeouts: Timeouts,
                    connections: int = 256) -> dict[str, Provider]:
    """One adapter instance per enabled provider; an HTTP adapter keeps at most `connections` open at once
    (more requests to that provider wait for one: a stream holds its connection to its end)."""
    built: dict[str, Provider] = {}
    for ps in providers:
        if ps.enabled:
            cls = provider_class(ps.name)
            extra = {"pool_size": connections} if issubclass(cls, HTTPProvider) else {}
            built[ps.name] = cls(ps.base_url, ps.api_key, timeouts=timeouts, **extra)  # type: ignore
    return built
