"""Provider name -> adapter class.  Register, don't dispatch: nothing else names a provider.

Built-in adapters are imported on first use; a third-party adapter calls `register()`.
"""

from __future__ import annotations

import importlib

from ..config import PROVIDERS, Settings
from .base import Provider, Timeouts

_BUILTIN: dict[str, str] = {
    "anthropic": "llmrelay.providers.anthropic:AnthropicProvider",
    "openai": "llmrelay.providers.openai:OpenAIProvider",
    "google": "llmrelay.providers.google:GoogleProvider",
    "openrouter": "llmrelay.providers.openrouter:OpenRouterProvider",
    "ollama": "llmrelay.providers.ollama:OllamaProvider",
}
_registered: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available under `cls.name` (usable as a decorator)."""
    _registered[cls.name] = cls
    return cls


def provider_class(name: str) -> type[Provider]:
    if name not in _registered:
        target = _BUILTIN.get(name)
        if target is None:
            raise KeyError(name)
        module, _, attr = target.partition(":")
        _registered[name] = getattr(importlib.import_module(module), attr)
    return _registered[name]


def known_providers() -> tuple[str, ...]:
    return tuple(dict.fromkeys([*PROVIDERS, *_registered]))


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One adapter instance per enabled provider, configured from `settings`."""
    timeouts = Timeouts(connect=settings.connect_timeout, idle=settings.idle_timeout)
    built: dict[str, Provider] = {}
    for ps in settings.providers():
        if ps.enabled:
            cls = provider_class(ps.name)
            built[ps.name] = cls(ps.base_url, ps.api_key, timeouts=timeouts)  # type: ignore[call-arg]
    return built
