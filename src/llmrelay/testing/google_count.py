"""The fake Gemini's `POST /v1beta/models/{model}:countTokens`, as the real API answers it:
`{"totalTokens": N, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": N}]}` (zero fields omitted),
N counted as a generateContent answer counts its input (`testing.server.input_tokens`).

The body is `{"contents": […]}` (python-genai's form) or `{"generateContentRequest": {"model":
"models/<model>", "contents", "systemInstruction"?, "tools"?, …}}` (the REST form that counts the system
instruction and the tools too), read and checked as generateContent reads its body.  Refused with 400
INVALID_ARGUMENT: another field (the API's parse error), both forms at once, a `generateContentRequest`
whose `model` is not the URL's (both illustrative), and whatever generateContent refuses.  Counting takes
no fault (faults are for chat requests); a model the fake does not list is a 404 NOT_FOUND.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from .google_request import InvalidRequest, get, read_request
from .server import input_tokens


class GoogleHost(Protocol):
    """What counting needs of the fake Gemini (`testing.google.FakeGoogle`): a protocol, so that this module
    does not import the fake that serves it."""

    models: set[str] | None

    def error_response(self, status: int, code: str | None, message: str | None, fault: Any, model: str,
                       **extra: Any) -> web.Response: ...

_WHERE = "* CountTokensRequest"


def _prompt_body(body: Any, model: str) -> dict[str, Any]:
    """The generateContent body to count; `InvalidRequest` with the 400's message."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object.")
    extra = next((k for k in body if k not in ("contents", "generateContentRequest", "generate_content_request")),
                 None)
    if extra is not None:
        text = f'Invalid JSON payload received. Unknown name "{extra}": Cannot find field.'
        raise InvalidRequest(text, [{"field": "", "description": text}])
    inner, contents = get(body, "generateContentRequest"), body.get("contents")
    if inner is not None and contents is not None:
        raise InvalidRequest(f"{_WHERE}: contents and generate_content_request are mutually exclusive: send "
                             "either, not both.\n")
    if inner is None:
        return {"contents": contents}
    if not isinstance(inner, dict) or inner.get("model") != f"models/{model}":
        raise InvalidRequest(f"{_WHERE}.generate_content_request.model: must be the model of the request, "
                             f"models/{model}\n")
    return inner


async def count_input(fake: GoogleHost, model: str, body: Any) -> web.Response:
    try:
        prompt = read_request(_prompt_body(body, model), model, stream=False)
    except InvalidRequest as exc:
        return fake.error_response(400, None, str(exc), None, model, violations=exc.violations)
    if fake.models is not None and model not in fake.models:
        return fake.error_response(404, None, None, None, model)
    n = input_tokens(prompt)
    return web.json_response({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
                             if n else {})


__all__ = ["count_input"]
