"""The one interface every provider adapter implements, and the HTTP plumbing they share.

An adapter turns a unified `ChatRequest` into its provider's wire format, sends it over one
long-lived pooled `aiohttp` session (chosen over httpx by bench/http_client.py: about 10x less
CPU per request), and turns the reply back into a `ChatResponse` or a stream of `StreamEvent`s.
Every failure leaves an adapter as a `ProviderError` (never an aiohttp exception), mapped at
exactly one place per adapter: `error_from_response` for HTTP statuses and bodies, the
helpers here for transport failures and replies that are not the promised JSON.

Timeouts split in two.  The adapter owns the transport ones: `connect` (TCP connect) and
`idle` (the longest silence between two reads of a stream).  The fallback executor owns the
rest (time to first token, the overall deadline) by cancelling the call from outside.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

import aiohttp
import orjson
from pydantic import SecretStr

from ..redaction import redact
from ..types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    ProviderError,
    StreamEvent,
)
from .sse import NDJSONDecoder, SSEDecoder, SSEEvent

MAX_ERROR_BODY = 64 * 1024
EXCERPT_CHARS = 160


class Decoder(Protocol):
    """An incremental stream decoder: bytes in as they arrive, complete items out."""

    def feed(self, chunk: bytes) -> Iterable[Any]: ...

    def close(self) -> Iterable[Any]: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    idle: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Where one provider lives, its key, and whether it can be used (with the reason if not)."""

    name: str
    base_url: str
    api_key: SecretStr | None
    enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True, slots=True)
class ModelPricing:
    """One entry of a provider's published price list: USD per token, None where unknown."""

    model: str
    prompt: Decimal | None
    completion: Decimal | None
    cache_read: Decimal | None
    cache_write: Decimal | None
    context_length: int | None


class Provider(ABC):
    """A provider llmrelay can send a chat to.  One instance per provider, shared by all requests.

    A provider declares itself: its name, the variables that configure it and what its model ids
    look like.  Settings, the catalog and the registry read these; nothing else names a provider.
    """

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    key_required: ClassVar[bool] = True
    """False: the key is optional (a local Ollama) and a provider without one is still enabled."""
    model_pattern: ClassVar[re.Pattern[str] | None] = None
    """What this provider's model ids look like; a model in no table but fitting it is accepted."""
    probe_model: ClassVar[str]
    """A cheap model that `llmrelay providers --check` may send a one-token request to."""
    takes: ClassVar[frozenset[str]] = frozenset()
    """What this adapter can send beyond plain text, max tokens, temperature and stop: the names of
    `ChatRequest.needs` (`tools`, `images`, `response_format=json_schema`, `seed`, …).  A request that
    needs anything else skips this provider's links, with the reason."""

    @classmethod
    def key_var(cls) -> str:
        """The variable that holds the key: `<NAME>_API_KEY`."""
        return f"{cls.name.upper()}_API_KEY"

    @classmethod
    def base_url_var(cls) -> str:
        """The variable that holds the base URL: `<NAME>_BASE_URL`."""
        return f"{cls.name.upper()}_BASE_URL"

    async def model_prices(self) -> list[ModelPricing] | None:
        """The provider's published price list, or None when it publishes none."""
        return None

    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One non-streaming call.  Raises `ProviderError`."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """One streaming call: `TextDelta`s as they arrive, `UsageReport`s whenever the
        provider reports usage (cumulative, the last one wins), then exactly one `Finished`.
        Raises `ProviderError`, including when the stream ends without its terminal frame."""

    async def count_tokens(self, request: ChatRequest) -> int | None:
        """The request's input tokens as the provider counts them, without generating (None: the provider
        has no way to count them; the caller estimates)."""
        return None

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Vectors for the request's inputs.  Only an adapter whose `takes` holds `embeddings` has them."""
        raise ProviderError(ErrorKind.NOT_FOUND, f"{self.name} has no embeddings", provider=self.name,
                            model=request.model)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class HTTPProvider(Provider):
    """Shared plumbing for adapters that speak JSON over HTTP."""

    json_parse_float: ClassVar[Callable[[str], Any] | None] = None
    """How JSON numbers with a fraction are read; `str` keeps a reported cost's exact text."""

    def __init__(self, base_url: str, api_key: SecretStr | None = None, *,
                 timeouts: Timeouts | None = None, pool_size: int = 256) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeouts = timeouts or Timeouts()
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- what each adapter supplies ---------------------------------------------------------

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Authentication and version headers sent with every request."""

    @abstractmethod
    def error_from_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            model: str) -> ProviderError:
        """Map a non-2xx reply to a `ProviderError`."""

    # -- the session --------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session, created in (and bound to) the running event loop on first use."""
        s = self._session
        if s is None or s.closed or s._loop is not asyncio.get_running_loop():
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300,
                                             keepalive_timeout=30)
            s = self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeouts.connect),
                headers={"user-agent": "llmrelay"},
            )
        return s

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def api_key(self) -> str:
        return self._api_key.get_secret_value() if self._api_key is not None else ""

    # -- requests -----------------------------------------------------------------------------

    async def post_json(self, path: str, body: dict[str, Any], model: str,
                        params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """POST `body`, return the reply's JSON object; any failure is a `ProviderError`.
        (The busiest path of all: no context-manager machinery, the same steps as `open`.)"""
        resp = await self._send("POST", path, body, model, params)
        try:
            if resp.status >= 300:
                raise await self._status_error(resp, model)
            try:
                raw = await resp.read()
            except aiohttp.ClientError as exc:
                raise self.transport_error(exc, model) from None
        finally:
            self._finish(resp)
        return self.parse_json_object(raw, model)

    async def get_json(self, path: str, model: str = "",
                       params: Mapping[str, str] | None = None) -> dict[str, Any]:
        async with self.open(path, None, model, method="GET", params=params) as resp:
            try:
                raw = await resp.read()
            except aiohttp.ClientError as exc:
                raise self.transport_error(exc, model) from None
        return self.parse_json_object(raw, model)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, model: str,
                    params: Mapping[str, str] | None) -> aiohttp.ClientResponse:
        headers = self.headers()
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            return await self.session.request(method, self.base_url + path, headers=headers, params=params,
                                              data=None if body is None else orjson.dumps(body))
        except aiohttp.ClientError as exc:
            raise self.transport_error(exc, model) from None

    async def _status_error(self, resp: aiohttp.ClientResponse, model: str) -> ProviderError:
        try:
            err_body = await resp.content.read(MAX_ERROR_BODY)
        except aiohttp.ClientError:
            err_body = b""
        return self.error_from_response(resp.status, resp.headers, err_body, model)

    @staticmethod
    def _finish(resp: aiohttp.ClientResponse) -> None:
        if resp.content.at_eof():
            resp.release()  # fully read: the connection goes back to the pool
        else:
            resp.close()  # abandoned mid-body: this connection cannot be reused

    @asynccontextmanager
    async def open(self, path: str, body: dict[str, Any] | None, model: str, *, method: str = "POST",
                   params: Mapping[str, str] | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request and yield the response once its status is known to be 2xx."""
        resp = await self._send(method, path, body, model, params)
        try:
            if resp.status >= 300:
                raise await self._status_error(resp, model)
            yield resp
        finally:
            self._finish(resp)

    async def iter_chunks(self, resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[bytes]:
        """The body as it arrives; a silence longer than `timeouts.idle` is a timeout."""
        content, idle = resp.content, self.timeouts.idle
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await content.readany()
            except TimeoutError:
                raise self.error(ErrorKind.TIMEOUT, f"stream stalled: no data for {idle:g} s",
                                 model) from None
            except aiohttp.ClientError as exc:
                raise self.transport_error(exc, model) from None
            if not chunk:
                return
            yield chunk

    async def iter_decoded(self, resp: aiohttp.ClientResponse, model: str, decoder: Decoder) -> AsyncIterator[Any]:
        """What `decoder` makes of the body, item by item, as the bytes arrive."""
        async for chunk in self.iter_chunks(resp, model):
            for item in decoder.feed(chunk):
                yield item
        for item in decoder.close():
            yield item

    def iter_sse(self, resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[SSEEvent]:
        return self.iter_decoded(resp, model, SSEDecoder())

    def iter_ndjson(self, resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[str]:
        return self.iter_decoded(resp, model, NDJSONDecoder())

    # -- errors -------------------------------------------------------------------------------

    def error(self, kind: ErrorKind, message: str, model: str, **kw: Any) -> ProviderError:
        """A `ProviderError` from this provider, its message stripped of secrets."""
        return ProviderError(kind, redact(message)[:1000], provider=self.name, model=model, **kw)

    def transport_error(self, exc: BaseException, model: str) -> ProviderError:
        if isinstance(exc, aiohttp.ServerTimeoutError | aiohttp.ConnectionTimeoutError):
            return self.error(ErrorKind.TIMEOUT, f"timed out: {exc}", model)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return self.error(ErrorKind.CONNECTION, f"cannot connect to {self.base_url}: "
                              f"{exc.os_error.strerror or exc.os_error}", model)
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return self.error(ErrorKind.CONNECTION, "server closed the connection", model)
        if isinstance(exc, aiohttp.ClientPayloadError):
            return self.error(ErrorKind.CONNECTION, "connection lost while reading the reply", model)
        return self.error(ErrorKind.CONNECTION, f"{type(exc).__name__}: {exc}", model)

    def parse_json(self, raw: bytes | str, model: str, what: str = "reply") -> Any:
        """JSON, or a `server_error` quoting the start of what came instead."""
        try:
            if self.json_parse_float is None:
                return orjson.loads(raw)
            return json.loads(raw, parse_float=self.json_parse_float)
        except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError):
            raise self.error(ErrorKind.SERVER_ERROR, f"{what} is not JSON: {excerpt(raw)!r}",
                             model) from None

    def parse_json_object(self, raw: bytes | str, model: str, what: str = "reply") -> dict[str, Any]:
        data = self.parse_json(raw, model, what)
        if not isinstance(data, dict):
            raise self.error(ErrorKind.SERVER_ERROR, f"{what} is not a JSON object: {excerpt(raw)!r}", model)
        return data

    def malformed(self, what: str, payload: Any, model: str) -> ProviderError:
        """A reply that is JSON but not in the promised shape."""
        return self.error(ErrorKind.SERVER_ERROR, f"unexpected {what}: {excerpt(json.dumps(payload))!r}",
                          model)


# -- helpers every adapter's error mapping uses ------------------------------------------------


def excerpt(raw: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def kind_for_status(status: int) -> ErrorKind:
    """The kind a bare HTTP status implies, before any provider-specific refinement."""
    if status in (401, 402, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.BAD_REQUEST


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(value: str | None) -> float | None:
    """A protobuf JSON duration ("58s", "0.5s", "1.217843437s") in seconds."""
    if not value:
        return None
    m = _DURATION.match(value)
    return float(m.group(1)) if m else None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a reply asks for, in seconds: `retry-after-ms`, else `retry-after` as seconds
    or as an HTTP date.  None when absent, unparsable or not positive."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            wait = float(ms) / 1000.0
            if wait > 0 and wait == wait:  # not NaN
                return wait
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        wait = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        wait = when.timestamp() - (time.time() if now is None else now)
    return wait if 0 < wait < float("inf") else None


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """`x-should-retry: true|false`, the server's own verdict, when present."""
    value = headers.get("x-should-retry", "").strip().lower()
    return True if value == "true" else False if value == "false" else None
