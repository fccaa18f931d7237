"""How the fake Gemini reads a generateContent body: what it accepts, and the real API's 400 for what
it does not (python-genai `types.py` for the fields; the messages as the API words them).

Checked, besides the top-level fields and the generation config of `testing/google.py`:

- every object against its protobuf fields (lowerCamelCase or snake_case): an unknown one is
  ``Invalid JSON payload received. Unknown name "additionalProperties" at
  'tools[0].function_declarations[0].parameters': Cannot find field.`` with a BadRequest fieldViolation;
  a Schema holds only what Gemini's `Schema` has (no `additionalProperties`, `$ref`, `const`, ...);
- Schema values: `type` one of Gemini's types (any case), `enum` strings, and the API's rules
  (`properties` only on OBJECT, `enum` only on STRING, a STRING `format` only `enum` or `date-time`);
- function names (a letter or _ first, letters, digits, _ . : -, at most 64);
- parts: some data in each, base64 where the field is bytes (`inlineData.data`, `thoughtSignature`),
  a `functionResponse` with a name and an object `response`, in the turn right after the model turn
  whose calls it answers, as many responses as calls, each naming one of those calls;
- Gemini 3 models (`gemini-3*`): the first `functionCall` of each model turn of the current exchange
  must carry its `thoughtSignature`;
- before Gemini 3, function calling together with `responseMimeType: application/json` is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .server import Prompt
from .tools import FakeTool, ToolState

TYPE_ENUM = "type.googleapis.com/google.ai.generativelanguage.v1beta.Type"
MODE_ENUM = "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode"
TYPES = frozenset({"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
MODES = frozenset({"MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"})
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
_FIELDS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "request": "model contents systemInstruction generationConfig safetySettings tools toolConfig cachedContent "
               "labels serviceTier store continuationToken",
    "content": "role parts",
    "part": "text inlineData fileData functionCall functionResponse thought thoughtSignature videoMetadata "
            "executableCode codeExecutionResult mediaResolution partMetadata toolCall toolResponse",
    "blob": "mimeType data",
    "fileData": "fileUri mimeType displayName",
    "functionCall": "id name args",
    "functionResponse": "id name response willContinue scheduling parts",
    "tool": "functionDeclarations googleSearch googleSearchRetrieval codeExecution urlContext computerUse "
            "fileSearch googleMaps",
    "declaration": "name description parameters parametersJsonSchema response responseJsonSchema behavior",
    "toolConfig": "functionCallingConfig retrievalConfig includeServerSideToolInvocations",
    "callingConfig": "mode allowedFunctionNames",
    "generationConfig": "stopSequences responseMimeType responseSchema responseJsonSchema responseModalities "
                        "candidateCount maxOutputTokens temperature topP topK seed presencePenalty "
                        "frequencyPenalty responseLogprobs logprobs enableEnhancedCivicAnswers speechConfig "
                        "thinkingConfig imageConfig mediaResolution",
    "thinkingConfig": "includeThoughts thinkingBudget thinkingLevel",
    "schema": "type format title description nullable enum maxItems minItems properties required minProperties "
              "maxProperties minLength maxLength pattern example anyOf propertyOrdering default items minimum "
              "maximum",
}.items()}
_THOUGHT_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")


class InvalidRequest(ValueError):
    """A body the real API rejects with 400 INVALID_ARGUMENT: its message, and the BadRequest
    fieldViolations it comes with (for an unknown field)."""

    def __init__(self, message: str, violations: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


def get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its lowerCamelCase name or its snake_case one (protobuf JSON takes both)."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake(camel))


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def known(obj: Any, kind: str, where: str) -> dict[str, Any]:
    """`obj` as an object whose every field `kind` has; else the real parse error."""
    if not isinstance(obj, dict):
        raise InvalidRequest(f"Invalid value at '{where}': expected an object.")
    for key in obj:
        if key not in _FIELDS[kind] and camel(key) not in _FIELDS[kind]:
            text = f'Invalid JSON payload received. Unknown name "{key}"' + (f" at '{where}'" if where else "") \
                + ": Cannot find field."
            raise InvalidRequest(text, [{"field": where, "description": text}] if where else [])
    return obj


def bytes_field(value: Any, where: str) -> None:
    """A protobuf `bytes` field in JSON: base64, standard or URL-safe."""
    text = value if isinstance(value, str) else json.dumps(value)
    try:
        if not isinstance(value, str):
            raise ValueError
        base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for "
                             f"\"{text[:40]}\"") from None


# -- the whole body ------------------------------------------------------------------------------------


def read_request(body: Any, model: str, stream: bool) -> Prompt:
    """The prompt of a generateContent body; `InvalidRequest` with the real 400 for one it rejects."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object.")
    known(body, "request", "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified\n")
    state = ToolState()
    turns = read_contents(contents, state, model)
    instruction = get(body, "systemInstruction")
    system = parts_text(instruction.get("parts"), "system_instruction") if isinstance(instruction, dict) else None
    config = known(get(body, "generationConfig") or {}, "generationConfig", "generation_config")
    check_config(config)
    read_tools(body, state)
    read_output(config, state)
    calling = bool(state.tools) and state.choice != "none"
    if calling and state.json_mode and not model.startswith("gemini-3"):
        raise InvalidRequest("Function calling with a response mime type: 'application/json' is unsupported")
    thinking = known(get(config, "thinkingConfig") or {}, "thinkingConfig", "generation_config.thinking_config")
    include = bool(get(thinking, "includeThoughts")) and get(thinking, "thinkingBudget") != 0
    max_tokens = get(config, "maxOutputTokens")
    return Prompt(model=model, system=system, messages=turns,
                  max_tokens=max_tokens if isinstance(max_tokens, int) else None, stream=stream,
                  options={"include_thoughts": include}, tools=state)


def parts_text(parts: Any, where: str) -> str:
    """The text of `parts` (thoughts left out); each part must carry some data."""
    if not isinstance(parts, list) or not parts:
        raise InvalidRequest(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n")
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not any(v not in (None, "") for v in part.values()):
            raise InvalidRequest(f"* GenerateContentRequest.{where}.parts[{j}].data: required oneof "
                                 "field 'data' must have one initialized field\n")
        known(part, "part", f"{where}.parts[{j}]")
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
    return "".join(texts)


def check_config(config: dict[str, Any]) -> None:
    temperature = get(config, "temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
        raise InvalidRequest("* GenerateContentRequest.generation_config.temperature: must be in the "
                             "range [0.0, 2.0]\n")
    stops = get(config, "stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        raise InvalidRequest("* GenerateContentRequest.generation_config.stop_sequences: at most 5 are allowed\n")
    max_tokens = get(config, "maxOutputTokens")
    if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens > 0):
        raise InvalidRequest("* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n")


# -- contents ------------------------------------------------------------------------------------------


def read_contents(contents: list[Any], state: ToolState, model: str) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        known(content, "content", where)
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            raise InvalidRequest("Please use a valid role: user, model.")
        turns.append((role, parts_text(content.get("parts"), where)))
        for j, part in enumerate(content["parts"]):
            read_part(part, f"{where}.parts[{j}]", role, state)
    check_function_turns(contents)
    if model.startswith("gemini-3"):
        check_signatures(contents)
    last = contents[-1]
    if (last.get("role") or "user") == "user":
        state.results = [result_text(get(p, "functionResponse")) for p in last["parts"]
                         if get(p, "functionResponse") is not None]
    return turns


def read_part(part: dict[str, Any], where: str, role: str, state: ToolState) -> None:
    if get(part, "thoughtSignature") is not None:
        bytes_field(get(part, "thoughtSignature"), where + ".thought_signature")
    if get(part, "text") is not None and not isinstance(get(part, "text"), str):
        raise InvalidRequest(f"Invalid value at '{where}.text' (TYPE_STRING), {json.dumps(get(part, 'text'))}")
    blob = get(part, "inlineData")
    if blob is not None:
        known(blob, "blob", where + ".inline_data")
        bytes_field(blob.get("data"), where + ".inline_data.data")
        state.images += int(str(get(blob, "mimeType") or "").startswith("image/"))
    file = get(part, "fileData")
    if file is not None:
        known(file, "fileData", where + ".file_data")
        if not isinstance(get(file, "fileUri"), str) or not get(file, "fileUri"):
            raise InvalidRequest(f"* GenerateContentRequest.{where}.file_data.file_uri: file_uri is required.\n")
        state.images += 1
    call = get(part, "functionCall")
    if call is not None:
        known(call, "functionCall", where + ".function_call")
        if not isinstance(call.get("name"), str) or not call["name"]:
            raise InvalidRequest(f"* GenerateContentRequest.{where}.function_call.name: Name cannot be empty.\n")
        if not isinstance(call.get("args", {}), dict):
            raise InvalidRequest(f"Invalid value at '{where}.function_call.args' "
                                 f"(type.googleapis.com/google.protobuf.Struct), {json.dumps(call['args'])}")
        if role == "model":
            state.called.append(call["name"])
    response = get(part, "functionResponse")
    if response is not None:
        known(response, "functionResponse", where + ".function_response")
        if not isinstance(response.get("name"), str) or not response["name"]:
            raise InvalidRequest(f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty.\n")
        value = response.get("response")
        if not isinstance(value, dict):
            raise InvalidRequest(f"Invalid value at '{where}.function_response.response' "
                                 f"(type.googleapis.com/google.protobuf.Struct), {json.dumps(value)}")


def result_text(response: dict[str, Any]) -> str:
    value = response["response"]
    for key in ("result", "output", "error"):
        if isinstance(value.get(key), str):
            return value[key]
    return json.dumps(value)


def check_function_turns(contents: list[dict[str, Any]]) -> None:
    """Responses answer the calls of the model turn right before them: as many, and by name."""
    for i, content in enumerate(contents):
        responses = [get(p, "functionResponse") for p in content["parts"] if get(p, "functionResponse") is not None]
        if not responses:
            continue
        before = contents[i - 1] if i else None
        calls = [get(p, "functionCall")["name"] for p in (before or {}).get("parts", [])
                 if get(p, "functionCall") is not None]
        if before is None or before.get("role") != "model" or not calls:
            raise InvalidRequest("Please ensure that function response turn comes immediately after a function "
                                 "call turn.")
        if len(responses) != len(calls):
            raise InvalidRequest("Please ensure that the number of function response parts is equal to the number "
                                 "of function call parts of the function call turn.")
        for r in responses:
            if r["name"] not in calls:
                raise InvalidRequest(f"Please ensure that the name of each function response part matches a "
                                     f"function call of the function call turn: {r['name']!r} does not.")


def check_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3: each model turn since the last user turn that is not only function responses starts its
    calls with a signed one."""
    start = 0
    for i, content in enumerate(contents):
        if (content.get("role") or "user") == "user" and any(get(p, "functionResponse") is None
                                                             for p in content["parts"]):
            start = i
    for i in range(start, len(contents)):
        if contents[i].get("role") != "model":
            continue
        first = next((p for p in contents[i]["parts"] if get(p, "functionCall") is not None), None)
        if first is not None and not get(first, "thoughtSignature"):
            raise InvalidRequest(_THOUGHT_SIGNATURE.format(name=get(first, "functionCall")["name"],
                                                           position=i + 1))


# -- tools and output ----------------------------------------------------------------------------------


def read_tools(body: dict[str, Any], state: ToolState) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("Invalid value at 'tools': expected a list.")
        for i, tool in enumerate(tools):
            known(tool, "tool", f"tools[{i}]")
            for j, decl in enumerate(get(tool, "functionDeclarations") or []):
                where = f"tools[{i}].function_declarations[{j}]"
                known(decl, "declaration", where)
                name = decl.get("name")
                if not isinstance(name, str) or not FUNCTION_NAME.match(name):
                    raise InvalidRequest(
                        f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter "
                        "or an underscore. Must be a-z, A-Z, 0-9, or contain underscores (_), dots (.), colons "
                        "(:), or dashes (-), with a maximum length of 64.\n")
                params = decl.get("parameters")
                if params is not None:
                    check_schema(params, where + ".parameters")
                    schema = json_schema_of(params)
                else:
                    schema = get(decl, "parametersJsonSchema") or {"type": "object", "properties": {}}
                state.tools.append(FakeTool(name, schema))
    config = known(get(body, "toolConfig") or {}, "toolConfig", "tool_config")
    calling = known(get(config, "functionCallingConfig") or {}, "callingConfig", "tool_config.function_calling_config")
    mode = calling.get("mode", "AUTO")
    if not isinstance(mode, str) or mode.upper() not in MODES:
        raise InvalidRequest(f"Invalid value at 'tool_config.function_calling_config.mode' ({MODE_ENUM}), "
                             f"{json.dumps(mode)}")
    names = get(calling, "allowedFunctionNames") or []
    mode = mode.upper()
    state.choice = ("none" if mode == "NONE" else f"tool:{names[0]}" if mode == "ANY" and len(names) == 1
                    else "required" if mode == "ANY" else "auto")


def read_output(config: dict[str, Any], state: ToolState) -> None:
    state.json_mode = get(config, "responseMimeType") == "application/json"
    schema = get(config, "responseSchema")
    if schema is not None:
        check_schema(schema, "generation_config.response_schema")
        state.json_schema = json_schema_of(schema)
    elif get(config, "responseJsonSchema") is not None:
        state.json_schema = get(config, "responseJsonSchema")


def check_schema(node: Any, where: str, dotted: str | None = None) -> None:
    """A Gemini Schema: its fields, its values and the API's rules (see the module docstring).
    `where` is the protobuf path of parse errors (`properties[0].value`), `dotted` that of the rest
    (`properties[name]`)."""
    dotted = dotted or where
    known(node, "schema", where)
    kind = get(node, "type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in TYPES):
        raise InvalidRequest(f"Invalid value at '{where}.type' ({TYPE_ENUM}), {json.dumps(kind)}")
    kind = kind.upper() if isinstance(kind, str) else None
    enum = node.get("enum")
    for k, value in enumerate(enum if isinstance(enum, list) else []):
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid value at '{where}.enum[{k}]' (TYPE_STRING), {json.dumps(value)}")
    rules = [("properties", kind == "OBJECT", "only allowed for OBJECT type"),
             ("enum", kind == "STRING", "only allowed for STRING type"),
             ("format", kind != "STRING" or node.get("format") in ("enum", "date-time"),
              "only 'enum' and 'date-time' are supported for STRING type")]
    for key, ok, why in rules:
        if key in node and not ok:
            raise InvalidRequest(f"* GenerateContentRequest.{dotted}.{key}: {why}\n")
    for n, (name, sub) in enumerate((node.get("properties") or {}).items()):
        check_schema(sub, f"{where}.properties[{n}].value", f"{dotted}.properties[{name}]")
    if node.get("items") is not None:
        check_schema(node["items"], where + ".items", dotted + ".items")
    for n, sub in enumerate(get(node, "anyOf") or []):
        check_schema(sub, f"{where}.any_of[{n}]", f"{dotted}.any_of[{n}]")


def json_schema_of(node: Any) -> Any:
    """A Gemini Schema as the JSON Schema `testing.tools.example_of` reads (lower-case types)."""
    if isinstance(node, list):
        return [json_schema_of(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {camel(k): json_schema_of(v) for k, v in node.items()}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: json_schema_of(v) for k, v in node["properties"].items()}
    return out
