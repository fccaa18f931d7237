"""The body of an OpenAI chat-completions request (shared/reference/providers.md §2), as the OpenAI
adapter and every OpenAI-compatible one build it: `OpenAIRequests`, the request half of
`OpenAIProvider`, with the hooks a compatible server changes (see `providers.openai`).

Nothing asked for is dropped.  A request this adapter (or this model) cannot take as asked fails
before it is sent, with a `bad_request` that names the parameter, is not retried, and falls through
to the next link (`unsupported`): a parameter the adapter does not take at all (`takes`), one a
reasoning model refuses (temperature other than 1, stop, top_p, the penalties, logit_bias), a
`reasoning_effort` for a model that does not reason, a tool name the server refuses.  A forced tool
call without tools is a `bad_request` that no link can serve.  One adaptation: JSON mode
(`json_object`) needs the word "json" in the messages, so when no message says it the system prompt
gets "Answer in JSON.".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..types import NO_SAMPLING, ChatRequest, ErrorKind, ProviderError, ToolCall
from .openai_tools import output_to_wire, tool_choice_to_wire, tools_to_wire
from .openai_wire import messages_to_wire

_PLAIN_SAMPLING = ("top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "top_k")
_NOT_FOR_REASONING = frozenset({"top_p", "presence_penalty", "frequency_penalty", "logit_bias"})
_JSON = re.compile("json", re.IGNORECASE)
OPENAI_TAKES = frozenset({
    "tools", "tool_choice=required", "tool_choice=tool", "parallel_tool_calls=false", "images", "image_url",
    "response_format=json_object", "response_format=json_schema", "top_p", "seed", "presence_penalty",
    "frequency_penalty", "logit_bias", "reasoning_effort", "name"})


class OpenAIRequests:
    """Builds request bodies; mixed into `OpenAIProvider` (which supplies `name`, `error` and `api_key`)."""

    name: ClassVar[str]
    takes: ClassVar[frozenset[str]] = OPENAI_TAKES
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    temperature_range: ClassVar[tuple[float, float]] = (0.0, 2.0)
    max_stop: ClassVar[int] = 4
    stream_options: ClassVar[Mapping[str, Any] | None] = {"include_usage": True}
    merge_turns: ClassVar[bool] = False
    no_sampling_models: ClassVar[re.Pattern[str] | None] = re.compile(r"^(o\d|gpt-5(?!.*-chat))")
    """Reasoning models: they answer a 400 to `temperature` (other than 1), `stop`, `top_p`, the penalties
    and `logit_bias`; the other models answer a 400 to `reasoning_effort`.  None: the server takes all."""
    tool_name: ClassVar[re.Pattern[str] | None] = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
    """The function names the server accepts (OpenAI: letters, digits, _ and -, at most 64)."""

    error: Any
    api_key: Any

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        headers = {"authorization": f"Bearer {key}"} if key else {}
        headers.update(self.extra_headers())
        return headers

    def extra_headers(self) -> dict[str, str]:
        return {}

    def extra_body(self, request: ChatRequest) -> dict[str, Any]:
        return {}

    def reasoning_to_wire(self, effort: str) -> dict[str, Any]:
        return {"reasoning_effort": effort}

    def unsupported(self, param: str, why: str, model: str) -> ProviderError:
        """A request this link cannot take as asked: not worth a retry, worth the next link."""
        return self.error(ErrorKind.BAD_REQUEST, f"{param!r} cannot be sent: {why}", model, retryable=False,
                          falls_through=True)

    def wire_messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        """The system prompt as the first message, then the turns (`openai_wire.messages_to_wire`)."""
        system = request.system
        if request.output is not None and request.output.type == "json_object" and not (
                _JSON.search(system or "") or any(_JSON.search(m.text) for m in request.messages)):
            system = f"{system}\n\nAnswer in JSON." if system else "Answer in JSON."
        return messages_to_wire(system, request.messages, merge_turns=self.merge_turns)

    def request_body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The request's JSON; `ProviderError` (`unsupported`) for anything this link cannot take."""
        model = request.model
        asked = request.needs if request.sampling is NO_SAMPLING else request.needs | set(request.sampling.asked())
        missing = asked - self.takes if asked else None
        if missing:
            raise self.unsupported(sorted(missing)[0], f"{self.name} does not take it", model)
        if request.tools or "tools" in request.needs:
            self.check_tool_names(request)
        body: dict[str, Any] = {"model": model, "messages": self.wire_messages(request)}
        if request.max_tokens is not None:
            body[self.max_tokens_field] = max(1, request.max_tokens)
        body.update(self.sampling_to_wire(request))
        if request.tools:
            body["tools"] = tools_to_wire(request.tools)
            if request.tool_choice is not None:
                body["tool_choice"] = tool_choice_to_wire(request.tool_choice)
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        elif request.tool_choice is not None and request.tool_choice.mode in ("required", "tool"):
            raise self.error(ErrorKind.BAD_REQUEST, f"tool_choice {request.tool_choice.mode!r} asks for a tool call, "
                             "but the request has no tools", model, retryable=False, falls_through=False)
        if request.output is not None:
            body["response_format"] = output_to_wire(request.output)
        if request.end_user:
            body["user"] = request.end_user
        if stream:
            body["stream"] = True
            if self.stream_options is not None:
                body["stream_options"] = dict(self.stream_options)
        body.update(self.extra_body(request))
        return body

    def sampling_to_wire(self, request: ChatRequest) -> dict[str, Any]:
        """Temperature, stop and the `Sampling` fields, as this model takes them."""
        model, s, out = request.model, request.sampling, {}
        reasoning = self.no_sampling_models is not None and bool(self.no_sampling_models.match(model))
        if request.temperature is not None:
            lo, hi = self.temperature_range
            out["temperature"] = min(max(request.temperature, lo), hi)
            if reasoning and out["temperature"] != 1:
                raise self.unsupported("temperature", f"{model} takes only the default temperature (1)", model)
        stop = [x for x in request.stop if x]
        if len(stop) > self.max_stop:
            raise self.unsupported("stop", f"{self.name} takes at most {self.max_stop} stop sequences; the request "
                                           f"has {len(stop)}", model)
        if stop:
            if reasoning:
                raise self.unsupported("stop", f"{model} takes no stop sequences", model)
            out["stop"] = stop
        for name in _PLAIN_SAMPLING:
            value = getattr(s, name)
            if value is None:
                continue
            if reasoning and name in _NOT_FOR_REASONING:
                raise self.unsupported(name, f"{model} is a reasoning model, which does not take it", model)
            out[name] = dict(value) if name == "logit_bias" else value
        if s.reasoning_effort is not None:
            if self.no_sampling_models is not None and not reasoning:
                raise self.unsupported("reasoning_effort", f"{model} is not a reasoning model", model)
            out.update(self.reasoning_to_wire(s.reasoning_effort))
        return out

    def check_tool_names(self, request: ChatRequest) -> None:
        """Tool names (offered, and called in the history) this server would refuse."""
        if self.tool_name is None:
            return
        names = [t.name for t in request.tools] + [p.name for m in request.messages for p in m.parts
                                                   if type(p) is ToolCall]
        for name in names:
            if not self.tool_name.match(name):
                raise self.unsupported("tools", f"{self.name} takes tool names of letters, digits, _ and - "
                                                f"(at most 64), not {name!r}", request.model)
