"""The fake Anthropic's error bodies: `{"type": "error", "error": {type, message}, "request_id"}` as the real
API writes them for each HTTP status, shaped by a fault's `code` hint (the table is testing/anthropic.py's
docstring)."""

from __future__ import annotations

from typing import Any

_STATUS_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_TYPE_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your account has a billing issue. Please visit Plans & Billing to resolve it.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: {model}",
    "conflict_error": "Conflict.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": ("Number of request tokens has exceeded your per-minute rate limit "
                         "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for "
                         "current usage. Please reduce the prompt length or the maximum tokens requested, "
                         "or try again later."),
    "api_error": "Internal server error",
    "timeout_error": "Request timeout",
    "overloaded_error": "Overloaded",
}
_CODE_HINTS: dict[str, tuple[str, str]] = {
    "context_length": ("invalid_request_error", "prompt is too long: 208656 tokens > 200000 maximum"),
    "context_length_exceeded": ("invalid_request_error",
                                "prompt is too long: 208656 tokens > 200000 maximum"),
    "context_limit": ("invalid_request_error",
                      "input length and `max_tokens` exceed context limit: 178959 + 64000 > 200000, "
                      "decrease input length or `max_tokens` and try again"),
    "spend_limit": ("invalid_request_error",
                    "You have reached your specified API usage limits. You will regain access on "
                    "2026-12-01 at 00:00 UTC."),
    "credit_balance": ("invalid_request_error",
                       "Your credit balance is too low to access the Anthropic API. Please go to "
                       "Plans & Billing to upgrade or purchase credits."),
    "spend_cap": ("rate_limit_error",
                  "Your organization has reached the monthly spend limit of its usage tier."),
}


def error_payload(status: int | None, code: str | None, message: str | None, model: str,
                  request_id: str) -> dict[str, Any]:
    """The error body for `status` (529 when None), its type and message from the hint `code` if it names
    one; `message` replaces the usual text."""
    if code in _CODE_HINTS:
        etype, text = _CODE_HINTS[code]  # type: ignore[index]
    elif code in _TYPE_MESSAGES:
        etype, text = code, _TYPE_MESSAGES[code]  # type: ignore[index]
    else:
        etype = _STATUS_TYPES.get(status or 529) or (
            "invalid_request_error" if status and status < 500 else "api_error")
        text = _TYPE_MESSAGES[etype]
    return {"type": "error", "error": {"type": etype, "message": message or text.format(model=model)},
            "request_id": request_id}


__all__ = ["error_payload"]
