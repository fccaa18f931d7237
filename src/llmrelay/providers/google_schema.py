"""JSON Schema translated to the OpenAPI-3.0 subset Gemini's `Schema` accepts, or refused.

Gemini's function `parameters` and `responseSchema` are protobuf `Schema` objects (python-genai
`types.Schema`, Developer API): a field it does not have is a 400 ("Unknown name "additionalProperties"
at 'tools[0].function_declarations[0].parameters': Cannot find field."), `enum` holds only strings and
is only allowed on STRING, `properties` only on OBJECT, and a STRING `format` other than `enum` or
`date-time` is refused.  `translate` keeps a schema's meaning where Gemini can say it and raises
`SchemaError` (naming the keyword and where it is) where it cannot, so the adapter can refuse the
request and the chain move on to a provider that takes the schema as it is.

The output holds only `SCHEMA_FIELDS`; types are Gemini's upper-case names.  Keyword by keyword:

=====================================  ===========================================================
JSON Schema                            Gemini
=====================================  ===========================================================
type (one)                             type, upper-cased
type [X, "null"]                       type X, nullable: true
type [X, Y, ...]                       anyOf of one branch per type (each with the keywords of its type)
type "null" alone                      type NULL
enum / const, strings                  enum (type STRING)
enum / const, numbers                  one {type, minimum: v, maximum: v} per value (anyOf when several)
enum / const, null                     nullable: true
enum [true, false]                     type BOOLEAN; any other boolean enum: refused
enum / const, objects or arrays        refused
anyOf, oneOf                           anyOf ("null" branches become nullable; a single branch left is
                                       merged into its parent).  oneOf's "exactly one" is read as
                                       anyOf: the branches of real schemas are disjoint
allOf                                  merged into one schema (properties and required united); refused
                                       when two branches disagree on a keyword
$ref (local JSON pointer), $defs,      inlined; a recursive $ref, an external one, or one that does not
definitions                            resolve is refused
properties, required, items (schema),  kept (per type, see below); items as an array (tuples) refused
minItems, maxItems, minLength,
maxLength, minProperties,
maxProperties, minimum, maximum,
pattern, title, description,
default, example, nullable,
propertyOrdering
format                                 kept where Gemini takes it (date-time; float, double; int32, int64),
                                       dropped elsewhere: format only annotates by default (2020-12)
exclusiveMinimum / exclusiveMaximum    integers: minimum n+1 / maximum n-1; numbers: refused
multipleOf                             1 on an integer: dropped (says nothing); otherwise refused
uniqueItems                            false: dropped; true: refused
additionalProperties                   true, false, {}: dropped (Gemini only ever writes the properties
                                       a schema declares, so its objects are closed either way); a
                                       schema (a map of values): refused
$schema, $id, $anchor, $comment,       dropped: annotations, and JSON Schema ignores keywords it does
examples, deprecated, readOnly,        not know, so dropping them cannot change what is valid
writeOnly, content*, discriminator,
x-*, any unknown keyword
not, if/then/else, patternProperties,  refused: an assertion Gemini has no way to say
propertyNames, dependentRequired,
dependentSchemas, dependencies,
unevaluated*, contains, minContains,
maxContains, prefixItems,
additionalItems, $dynamicRef,
$recursiveRef, a `false` schema
=====================================  ===========================================================

A keyword that belongs to another type than the schema's (`properties` on a string) is dropped: it
never applies.  A schema without a type gets the one its keywords imply (`properties` -> OBJECT).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

SCHEMA_FIELDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
    "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "pattern", "anyOf",
    "propertyOrdering", "default", "example", "minProperties", "maxProperties",
})
"""Every field the output may hold (python-genai `Schema`, less the Developer API's refusals)."""

TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
REFUSED = frozenset({
    "not", "if", "then", "else", "patternProperties", "propertyNames", "dependentRequired",
    "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "prefixItems", "additionalItems", "$dynamicRef", "$recursiveRef",
})
_ANNOTATIONS = ("title", "description", "default", "example")
_IMPLIED = (("object", ("properties", "required", "minProperties", "maxProperties")),
            ("array", ("items", "minItems", "maxItems")), ("string", ("minLength", "maxLength", "pattern")))
"""The type a schema without one means, by its keywords."""
_COUNTS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems"),
           "object": ("minProperties", "maxProperties")}
_FORMATS = {"string": {"date-time"}, "number": {"float", "double"}, "integer": {"int32", "int64"}}
MAX_NODES = 5000
"""A schema whose inlined form grows past this many nodes is refused (references that fan out)."""


class SchemaError(ValueError):
    """A schema Gemini cannot take: `keyword` at `path` (dotted, from the schema's root name)."""

    def __init__(self, keyword: str, path: str, why: str = "") -> None:
        self.keyword, self.path, self.why = keyword, path, why
        super().__init__(f"{path}: Gemini cannot take the JSON Schema keyword {keyword!r}"
                         + (f" ({why})" if why else ""))


def translate(schema: Mapping[str, Any] | bool, root: str = "schema", *, order: bool = False) -> dict[str, Any]:
    """`schema` in Gemini's Schema subset (see the module docstring); `root` names it in errors.
    `order` adds `propertyOrdering` (the schema's property order) to objects of two properties or more,
    as python-genai does for a response schema."""
    return _Translator(schema, order).node(schema, root, ())


class _Translator:
    def __init__(self, root: Mapping[str, Any] | bool, order: bool) -> None:
        self.root = root
        self.order = order
        self.nodes = 0

    # -- one node -----------------------------------------------------------------------------------

    def node(self, schema: Any, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SchemaError("$ref", path, f"more than {MAX_NODES} schemas once references are inlined")
        schema, refs = self.flat(schema, path, refs)
        for key in schema:
            if key in REFUSED:
                raise SchemaError(key, path)
        nullable = schema.get("nullable") is True
        branches = schema.get("anyOf", schema.get("oneOf"))
        if branches is not None:
            keyword = "anyOf" if "anyOf" in schema else "oneOf"
            return self.union(schema, keyword, branches, nullable, path, refs)
        types = self.types(schema, path)
        if "null" in types and len(types) > 1:
            types = [t for t in types if t != "null"]
            nullable = True
        if "enum" in schema or "const" in schema:
            return self.enum(schema, types, nullable, path)
        if len(types) > 1:
            out = self.annotations(schema, nullable)
            out["anyOf"] = [self.typed(schema, t, False, path, refs) for t in types]
            return out
        return self.typed(schema, types[0] if types else None, nullable, path, refs)

    def flat(self, schema: Any, path: str, refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The schema as one object: booleans read, `$ref` inlined and `allOf` merged."""
        if schema is True:
            return {}, refs
        if schema is False or not isinstance(schema, Mapping):
            raise SchemaError("false" if schema is False else "type", path,
                              "a schema that nothing fits" if schema is False else "a schema must be an object")
        out = dict(schema)
        ref = out.pop("$ref", None)
        if ref is not None:
            target, refs = self.resolve(ref, path, refs)
            out = self.merge([out, target], path)  # the referring site's annotations win
        parts = out.pop("allOf", None)
        if parts is not None:
            if not isinstance(parts, list):
                raise SchemaError("allOf", path, "must be an array")
            flats = []
            for i, part in enumerate(parts):
                flat, refs = self.flat(part, f"{path}.allOf[{i}]", refs)
                flats.append(flat)
            out = self.merge([out, *flats], path)
        return out, refs

    def resolve(self, ref: Any, path: str, refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError("$ref", path, "only references inside the schema can be inlined")
        if ref in refs:
            raise SchemaError("$ref", path, f"{ref} refers to itself: a recursive schema")
        target: Any = self.root
        for token in (unquote(ref[1:]).split("/")[1:] if ref != "#" else []):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise SchemaError("$ref", path, f"{ref} does not resolve")
        refs = (*refs, ref)
        flat, refs = self.flat(target, path, refs)
        return flat, refs

    def merge(self, schemas: list[dict[str, Any]], path: str) -> dict[str, Any]:
        """allOf: one schema that every value fitting them all fits, and nothing else; annotations from
        the first schema that has them."""
        out: dict[str, Any] = {}
        for s in schemas:
            for key, value in s.items():
                if key in _SKIPPED:
                    continue
                if key not in out or out[key] == value or key in _ANNOTATIONS:
                    out.setdefault(key, value)
                else:
                    out[key] = _merge_values(key, out[key], value, path)
        return out

    # -- kinds of node --------------------------------------------------------------------------------

    def types(self, schema: Mapping[str, Any], path: str) -> list[str]:
        kind = schema.get("type")
        if kind is None:
            implied = [t for t, keys in _IMPLIED if any(k in schema for k in keys)]
            if not implied and any(k in schema for k in ("minimum", "maximum")):
                implied = ["number"]
            return implied if len(implied) == 1 else []
        kinds = _as_list(kind)
        if not kinds or any(k not in TYPES for k in kinds):
            raise SchemaError("type", path, f"unknown type {kind!r}")
        return list(dict.fromkeys(kinds))

    def typed(self, schema: Mapping[str, Any], kind: str | None, nullable: bool, path: str,
              refs: tuple[str, ...]) -> dict[str, Any]:
        """The schema as one Gemini type: the keywords of that type, translated."""
        out = self.annotations(schema, nullable)
        if kind is None:
            return out
        out["type"] = kind.upper()
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(kind, ()):
            out["format"] = fmt
        for key in _COUNTS.get(kind, ()):
            if key in schema:
                out[key] = _count(schema[key], key, path)
        if kind in ("number", "integer"):
            self.numeric(schema, kind, out, path)
        elif kind == "string":
            if "pattern" in schema:
                if not isinstance(schema["pattern"], str):
                    raise SchemaError("pattern", path, "must be a string")
                out["pattern"] = schema["pattern"]
        elif kind == "array":
            self.array(schema, out, path, refs)
        elif kind == "object":
            self.object(schema, out, path, refs)
        return out

    def numeric(self, schema: Mapping[str, Any], kind: str, out: dict[str, Any], path: str) -> None:
        for key in ("minimum", "maximum"):
            if key in schema:
                out[key] = _number(schema[key], key, path)
        for key, bound, step in (("exclusiveMinimum", "minimum", 1), ("exclusiveMaximum", "maximum", -1)):
            value = schema.get(key)
            if value is None or value is False:
                continue
            if value is True:  # draft 4: the bound is `minimum` / `maximum` itself, made exclusive
                if bound not in out:
                    continue
                value = out.pop(bound)
            value = _number(value, key, path)
            if kind != "integer":
                raise SchemaError(key, path, "Gemini has only inclusive bounds")
            edge = (math.floor(value) + 1) if step > 0 else (math.ceil(value) - 1)
            out[bound] = edge if bound not in out else (max if step > 0 else min)(out[bound], edge)
        step = schema.get("multipleOf")
        if step is not None and not (kind == "integer" and step == 1):
            raise SchemaError("multipleOf", path)

    def array(self, schema: Mapping[str, Any], out: dict[str, Any], path: str, refs: tuple[str, ...]) -> None:
        items = schema.get("items")
        if isinstance(items, list):
            raise SchemaError("items", path, "an array of schemas (a tuple)")
        if items is not None and items is not True:
            out["items"] = self.node(items, path + ".items", refs)
        if schema.get("uniqueItems") is True:
            raise SchemaError("uniqueItems", path)

    def object(self, schema: Mapping[str, Any], out: dict[str, Any], path: str, refs: tuple[str, ...]) -> None:
        props = schema.get("properties")
        if props is not None:
            if not isinstance(props, Mapping):
                raise SchemaError("properties", path, "must be an object")
            out["properties"] = {name: self.node(sub, f"{path}.properties.{name}", refs)
                                 for name, sub in props.items()}
            if self.order and len(props) > 1:
                out["propertyOrdering"] = list(props)
        ordering = schema.get("propertyOrdering")
        if isinstance(ordering, list) and all(isinstance(n, str) for n in ordering):
            out["propertyOrdering"] = list(ordering)
        required = schema.get("required")
        if required is not None:
            if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
                raise SchemaError("required", path, "must be an array of names")
            if required:
                out["required"] = list(dict.fromkeys(required))
        extra = schema.get("additionalProperties")
        if extra is not None and not isinstance(extra, bool) and extra != {}:
            raise SchemaError("additionalProperties", path, "a map of values: Gemini's objects are closed")

    def union(self, schema: Mapping[str, Any], keyword: str, branches: Any, nullable: bool, path: str,
              refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(branches, list) or not branches:
            raise SchemaError(keyword, path, "must be a non-empty array")
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "nullable")}
        if "anyOf" in schema and "oneOf" in schema:
            rest["allOf"] = [{"oneOf": schema["oneOf"]}]
        kept = []
        for i, branch in enumerate(branches):
            flat, _ = self.flat(branch, f"{path}.{keyword}[{i}]", refs)
            if flat.get("type") == "null" or flat.get("const", 0) is None or flat.get("enum") == [None]:
                nullable = True
            else:
                kept.append((i, branch))
        if not kept:
            return self.node({**rest, "type": "null"}, path, refs)
        if len(kept) == 1:
            merged = self.node({"allOf": [rest, kept[0][1]]} if rest else kept[0][1], path, refs)
            return {**merged, "nullable": True} if nullable else merged
        out = self.node(rest, path, refs) if any(k not in _ANNOTATIONS for k in rest) else self.annotations(rest, False)
        if nullable:
            out["nullable"] = True
        out["anyOf"] = [self.node(b, f"{path}.{keyword}[{i}]", refs) for i, b in kept]
        return out

    def enum(self, schema: Mapping[str, Any], types: list[str], nullable: bool, path: str) -> dict[str, Any]:
        keyword = "const" if "const" in schema else "enum"
        values = [schema["const"]] if keyword == "const" else schema["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaError(keyword, path, "must be a non-empty array")
        allowed = set(types) or set(TYPES)
        strings, numbers, booleans = [], [], set()
        for v in values:
            if v is None:
                nullable = nullable or "null" in allowed or not types
            elif isinstance(v, bool):
                if "boolean" in allowed:
                    booleans.add(v)
            elif isinstance(v, int | float):
                if "number" in allowed or ("integer" in allowed and float(v).is_integer()):
                    numbers.append(v)
            elif isinstance(v, str):
                if "string" in allowed:
                    strings.append(v)
            else:
                raise SchemaError(keyword, path, "an object or array value")
        if booleans and booleans != {True, False}:
            raise SchemaError(keyword, path, "a single boolean value")
        branches: list[dict[str, Any]] = []
        if strings:
            branch = self.typed(schema, "string", False, path, ())
            branches.append({"type": "STRING", "enum": list(dict.fromkeys(strings)),
                             **{k: branch[k] for k in ("minLength", "maxLength", "pattern") if k in branch}})
        for v in dict.fromkeys(numbers):
            kind = "INTEGER" if float(v).is_integer() and "number" not in allowed else "NUMBER"
            branches.append({"type": kind, "minimum": v, "maximum": v})
        if booleans:
            branches.append({"type": "BOOLEAN"})
        out = self.annotations(schema, nullable)
        if not branches:
            if not nullable:
                raise SchemaError(keyword, path, "no value fits the schema's type")
            out["type"] = "NULL"
            out.pop("nullable", None)
        elif len(branches) == 1:
            out.update(branches[0])
        else:
            out["anyOf"] = branches
        return out

    @staticmethod
    def annotations(schema: Mapping[str, Any], nullable: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("title", "description"):
            if isinstance(schema.get(key), str):
                out[key] = schema[key]
        for key in ("default", "example"):
            if key in schema:
                out[key] = schema[key]
        if nullable:
            out["nullable"] = True
        return out


_SKIPPED = frozenset({"$defs", "definitions", "$schema", "$id", "$comment", "$anchor"})
_LOWER = ("minimum", "minItems", "minLength", "minProperties")
_UPPER = ("maximum", "maxItems", "maxLength", "maxProperties")


def _merge_values(key: str, a: Any, b: Any, path: str) -> Any:
    """The value of `key` in a schema meaning both `a` and `b` (allOf), or SchemaError."""
    if key == "required" and isinstance(a, list) and isinstance(b, list):
        return [*a, *(n for n in b if n not in a)]
    if key == "properties" and isinstance(a, Mapping) and isinstance(b, Mapping):
        props = dict(a)
        for name, sub in b.items():
            props[name] = {"allOf": [props[name], sub]} if name in props and props[name] != sub else sub
        return props
    if key == "items" and isinstance(a, Mapping) and isinstance(b, Mapping):
        return {"allOf": [a, b]}
    if key == "type":
        left, right = set(_as_list(a)), set(_as_list(b))
        common = left & right
        if ("integer" in left and "number" in right) or ("integer" in right and "number" in left):
            common.add("integer")
        if not common:
            raise SchemaError("allOf", path, "its schemas allow no common type")
        kinds = [t for t in TYPES if t in common]
        return kinds if len(kinds) > 1 else kinds[0]
    if key == "enum" and isinstance(a, list) and isinstance(b, list):
        both = [v for v in a if v in b]
        if not both:
            raise SchemaError("allOf", path, "its enums share no value")
        return both
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if key in _LOWER and numbers:
        return max(a, b)
    if key in _UPPER and numbers:
        return min(a, b)
    if key == "additionalProperties" and isinstance(a, bool) and isinstance(b, bool):
        return a and b
    raise SchemaError("allOf", path, f"its schemas disagree on {key!r}")


def _as_list(kind: Any) -> list[Any]:
    return list(kind) if isinstance(kind, list) else [kind]


def _count(value: Any, key: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not float(value).is_integer():
        raise SchemaError(key, path, "must be a non-negative integer")
    return int(value)


def _number(value: Any, key: str, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(key, path, "must be a number")
    return value


__all__ = ["MAX_NODES", "REFUSED", "SCHEMA_FIELDS", "SchemaError", "translate"]
