"""The fake Gemini's error bodies: `{"error": {code, message, status, details}}` as the real API writes
them for each HTTP status, shaped by a fault's hint (see testing/google.py for the hints)."""

from __future__ import annotations

from typing import Any

RPC_TYPE = "type.googleapis.com/google.rpc."

# HTTP status -> (google.rpc status, message)
STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
          "token, login cookie or other valid authentication credential. See "
          "https://developers.google.com/identity/sign-in/web/devconsole-project."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/{model} is not found for API version {version}, or is not supported for "
          "generateContent. Call ListModels to see the list of available models and their supported "
          "methods."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
          "details. For more information on this error, head to: "
          "https://ai.google.dev/gemini-api/docs/rate-limits."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Method not found."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
RPC_CODES = {rpc: code for code, (rpc, _) in STATUSES.items()} | {"FAILED_PRECONDITION": 400}
RPC_MESSAGES = {rpc: text for rpc, text in STATUSES.values()} | {
    "FAILED_PRECONDITION": "Precondition check failed."}
HINTS: dict[str, tuple[int, str, str]] = {
    "API_KEY_INVALID": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    "context_length_exceeded": (400, "INVALID_ARGUMENT", "The input token count (3475108) exceeds the "
                                "maximum number of tokens allowed (1048576)."),
    "failed_precondition": (400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    "per_day": (429, "RESOURCE_EXHAUSTED", STATUSES[429][1]),
}
UNREGISTERED = ("Method doesn't allow unregistered callers (callers without established identity). "
                 "Please use API Key or other form of API consumer identity to call this API.")
BAD_GATEWAY = (b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1"
                b"</title>\n  <p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  <p>The server encountered "
                b"a temporary error and could not complete your request.<p>Please try again in 30 seconds.  "
                b"<ins>That\xe2\x80\x99s all we know.</ins>\n")


def error_payload(status: int, code: str | None, message: str | None, delay: str | None, model: str,
                  version: str) -> dict[str, Any]:
    """`{"error": {code, message, status, details}}` for `status`, shaped by the hint `code`."""
    if code in HINTS:
        _, rpc, text = HINTS[code]
    elif code in RPC_MESSAGES:
        rpc, text = code, RPC_MESSAGES[code]
    else:
        rpc, text = STATUSES.get(status, ("UNKNOWN", f"HTTP {status}"))
    text = message or text.format(model=model, version=version)
    if rpc == "RESOURCE_EXHAUSTED" and delay and not message:
        text += f" Please retry in {delay}."
    err: dict[str, Any] = {"code": status, "message": text, "status": rpc}
    details = error_details(code, rpc, text, delay, model)
    if details:
        err["details"] = details
    return {"error": err}


def error_details(code: str | None, rpc: str, text: str, delay: str | None, model: str) -> list[dict[str, Any]]:
    if code == "API_KEY_INVALID":
        return [{"@type": RPC_TYPE + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": RPC_TYPE + "LocalizedMessage", "locale": "en-US", "message": text}]
    if rpc != "RESOURCE_EXHAUSTED":
        return []
    quota = ("GenerateRequestsPerDayPerProjectPerModel-FreeTier" if code == "per_day"
             else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
    details: list[dict[str, Any]] = [
        {"@type": RPC_TYPE + "QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": quota, "quotaDimensions": {"model": model, "location": "global"},
            "quotaValue": "250" if code == "per_day" else "5"}]},
        {"@type": RPC_TYPE + "Help", "links": [{"description": "Learn more about Gemini API quotas",
                                                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    ]
    if delay:
        details.append({"@type": RPC_TYPE + "RetryInfo", "retryDelay": delay})
    return details
