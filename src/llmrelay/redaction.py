"""Keep secrets out of every string that leaves the process: logs, errors, responses, the UI.

Providers echo keys back in error messages ("Incorrect API key provided: sk-abc…xyz").  Every
provider error passes through `redact()` at the adapter boundary, with the secrets that are
configured registered here and the well-known key shapes caught by pattern even when they are
not ours (a key pasted into a prompt that comes back in an error, say).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

_KEY_SHAPES = re.compile(
    r"""
    sk-(?:ant-|or-v1-|proj-)?[A-Za-z0-9_\-*.]{8,}   # Anthropic, OpenRouter, OpenAI keys (also masked ones)
    | AIza[0-9A-Za-z_\-]{20,}                        # Google API keys
    | lr_[A-Za-z0-9_\-]{16,}                         # llmrelay's own user keys
    """,
    re.VERBOSE,
)
REDACTED = "[redacted]"

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` removes it wherever it appears."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every registered secret and every key-shaped token replaced."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(REDACTED, text)


def without_credentials(url: str) -> str:
    """`url` without any user:password it holds (a base URL shown in the UI, the API, the CLI)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
