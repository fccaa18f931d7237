"""JSON Schema -> Gemini's Schema subset (providers/google_schema.py): what is kept, what is rewritten,
what is refused, and properties over generated schemas: the translation holds only Gemini's fields and
the fake Gemini (an independent reading of the API's rules) accepts every translation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.providers.google_schema import MAX_NODES, SCHEMA_FIELDS, SchemaError, translate
from llmrelay.testing.google_request import check_schema


def obj(**props) -> dict:
    return {"type": "object", "properties": props}


# -- kept and rewritten --------------------------------------------------------------------------------


def test_a_plain_schema_keeps_its_fields_with_upper_case_types():
    schema = {"type": "object", "title": "Args", "description": "d", "required": ["q"],
              "properties": {"q": {"type": "string", "minLength": 1, "maxLength": 9, "pattern": "^a"},
                             "n": {"type": "integer", "minimum": 0, "maximum": 5, "default": 2, "format": "int32"},
                             "xs": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
                             "b": {"type": "boolean", "example": True}}}
    assert translate(schema) == {
        "type": "OBJECT", "title": "Args", "description": "d", "required": ["q"],
        "properties": {"q": {"type": "STRING", "minLength": 1, "maxLength": 9, "pattern": "^a"},
                       "n": {"type": "INTEGER", "minimum": 0, "maximum": 5, "default": 2, "format": "int32"},
                       "xs": {"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": 1, "maxItems": 3},
                       "b": {"type": "BOOLEAN", "example": True}}}


@pytest.mark.parametrize(("given_", "expected"), [
    ({"type": ["string", "null"]}, {"type": "STRING", "nullable": True}),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"},
     {"type": "INTEGER", "description": "n", "nullable": True}),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}),
    ({"type": ["string", "integer"], "minLength": 2, "minimum": 1},
     {"anyOf": [{"type": "STRING", "minLength": 2}, {"type": "INTEGER", "minimum": 1}]}),
    ({"const": "a"}, {"type": "STRING", "enum": ["a"]}),
    ({"type": "string", "enum": ["a", "b", None]}, {"type": "STRING", "enum": ["a", "b"]}),
    ({"enum": ["a", None]}, {"type": "STRING", "enum": ["a"], "nullable": True}),
    ({"type": "integer", "enum": [1, 3]}, {"anyOf": [{"type": "INTEGER", "minimum": 1, "maximum": 1},
                                                     {"type": "INTEGER", "minimum": 3, "maximum": 3}]}),
    ({"const": 2.5}, {"type": "NUMBER", "minimum": 2.5, "maximum": 2.5}),
    ({"type": "boolean", "enum": [True, False]}, {"type": "BOOLEAN"}),
    ({"type": "null"}, {"type": "NULL"}),
    ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
     {"type": "INTEGER", "minimum": 1, "maximum": 9}),
    ({"type": "integer", "minimum": 0, "exclusiveMinimum": True}, {"type": "INTEGER", "minimum": 1}),
    ({"type": "integer", "multipleOf": 1}, {"type": "INTEGER"}),
    ({"type": "string", "format": "email"}, {"type": "STRING"}),
    ({"type": "string", "format": "date-time"}, {"type": "STRING", "format": "date-time"}),
    ({"type": "string", "properties": {"a": {}}, "minItems": 1}, {"type": "STRING"}),
    ({"properties": {"a": {"type": "string"}}}, {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}),
    ({"type": "array", "items": True, "uniqueItems": False}, {"type": "ARRAY"}),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "$comment": "c", "examples": [1],
      "deprecated": True, "readOnly": True, "x-vendor": 1, "type": "integer"}, {"type": "INTEGER"}),
    ({**obj(a={"type": "string"}), "additionalProperties": False}, {"type": "OBJECT", "properties": {"a": {
        "type": "STRING"}}}),
    ({**obj(a={"type": "string"}), "additionalProperties": {}}, {"type": "OBJECT", "properties": {"a": {
        "type": "STRING"}}}),
    (True, {}),
], ids=repr)
def test_keywords_gemini_lacks_are_rewritten_to_ones_it_has(given_, expected):
    assert translate(given_) == expected


def test_refs_into_defs_and_definitions_are_inlined_and_the_referring_description_wins():
    schema = {"type": "object", "$defs": {"City": {"type": "object", "description": "a city",
                                                   "properties": {"name": {"type": "string"}}}},
              "definitions": {"Unit": {"enum": ["C", "F"]}},
              "properties": {"home": {"$ref": "#/$defs/City", "description": "where I live"},
                             "away": {"anyOf": [{"$ref": "#/$defs/City"}, {"type": "null"}]},
                             "unit": {"$ref": "#/definitions/Unit"},
                             "first": {"$ref": "#/properties/unit"}}}
    city = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}}
    assert translate(schema) == {"type": "OBJECT", "properties": {
        "home": {**city, "description": "where I live"},
        "away": {**city, "description": "a city", "nullable": True},
        "unit": {"type": "STRING", "enum": ["C", "F"]},
        "first": {"type": "STRING", "enum": ["C", "F"]}}}


def test_all_of_merges_properties_and_required_and_narrows_bounds():
    schema = {"allOf": [{**obj(a={"type": "string"}), "required": ["a"]},
                        {"properties": {"a": {"maxLength": 3}, "b": {"type": "number", "minimum": 1}},
                         "required": ["b"]},
                        {"properties": {"b": {"minimum": 4}}}]}
    assert translate(schema) == {"type": "OBJECT", "required": ["a", "b"], "properties": {
        "a": {"type": "STRING", "maxLength": 3}, "b": {"type": "NUMBER", "minimum": 4}}}


def test_order_adds_property_ordering_to_objects_of_several_properties():
    schema = obj(b={"type": "string"}, a=obj(x={"type": "string"}, y={"type": "string"}))
    out = translate(schema, order=True)
    assert out["propertyOrdering"] == ["b", "a"]
    assert out["properties"]["a"]["propertyOrdering"] == ["x", "y"]
    assert "propertyOrdering" not in translate(schema)


# -- refused ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("schema", "keyword", "path"), [
    (obj(q={"not": {"type": "string"}}), "not", "parameters.properties.q"),
    (obj(q={"type": "string", "if": {}, "then": {}}), "if", "parameters.properties.q"),
    ({"type": "object", "patternProperties": {"^a": {}}}, "patternProperties", "parameters"),
    ({"type": "object", "propertyNames": {"maxLength": 3}}, "propertyNames", "parameters"),
    ({"type": "object", "additionalProperties": {"type": "string"}}, "additionalProperties", "parameters"),
    (obj(xs={"type": "array", "prefixItems": [{"type": "string"}]}), "prefixItems", "parameters.properties.xs"),
    (obj(xs={"type": "array", "items": [{"type": "string"}]}), "items", "parameters.properties.xs"),
    (obj(xs={"type": "array", "items": {"type": "string"}, "uniqueItems": True}), "uniqueItems",
     "parameters.properties.xs"),
    (obj(x={"type": "number", "exclusiveMinimum": 0}), "exclusiveMinimum", "parameters.properties.x"),
    (obj(x={"type": "number", "multipleOf": 0.5}), "multipleOf", "parameters.properties.x"),
    (obj(x={"const": True}), "const", "parameters.properties.x"),
    (obj(x={"enum": [{"a": 1}]}), "enum", "parameters.properties.x"),
    (obj(x=False), "false", "parameters.properties.x"),
    (obj(x={"type": "strng"}), "type", "parameters.properties.x"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "allOf", "parameters"),
    ({"allOf": [{"type": "string", "pattern": "a"}, {"pattern": "b"}]}, "allOf", "parameters"),
    (obj(x={"$ref": "https://example.com/s.json"}), "$ref", "parameters.properties.x"),
    (obj(x={"$ref": "#/$defs/Missing"}), "$ref", "parameters.properties.x"),
    ({"$defs": {"Node": obj(next={"$ref": "#/$defs/Node"})}, "$ref": "#/$defs/Node"}, "$ref",
     "parameters.properties.next"),
    (obj(child={"$ref": "#"}), "$ref", "parameters.properties.child.properties.child"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_what_gemini_cannot_say_is_refused_naming_the_keyword_and_its_path(schema, keyword, path):
    with pytest.raises(SchemaError) as info:
        translate(schema, "parameters")
    assert (info.value.keyword, info.value.path) == (keyword, path)
    assert f"{path}: Gemini cannot take the JSON Schema keyword {keyword!r}" in str(info.value)


def test_references_that_fan_out_past_the_node_limit_are_refused():
    defs = {"L0": {"type": "string"}}
    for i in range(1, 16):  # each level refers to the one below twice: 2**15 nodes once inlined
        defs[f"L{i}"] = obj(a={"$ref": f"#/$defs/L{i - 1}"}, b={"$ref": f"#/$defs/L{i - 1}"})
    with pytest.raises(SchemaError) as info:
        translate({"$defs": defs, "$ref": "#/$defs/L15"})
    assert info.value.keyword == "$ref" and str(MAX_NODES) in str(info.value)


# -- properties over generated schemas ---------------------------------------------------------------

_names = st.text(alphabet="abcxyz_", min_size=1, max_size=6)
_leaf = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
                          optional={"description": st.text(max_size=5), "format": st.sampled_from(
                              ["email", "date-time", "int64", "double", "uri"]), "minimum": st.integers(-5, 5),
                              "maxLength": st.integers(0, 9), "pattern": st.just("^a+$")}),
    st.fixed_dictionaries({"enum": st.lists(st.one_of(st.text(max_size=3), st.integers(-3, 3), st.none()),
                                            min_size=1, max_size=4, unique=True)}),
    st.fixed_dictionaries({"const": st.one_of(st.text(max_size=3), st.integers(-3, 3))}),
    st.fixed_dictionaries({"type": st.lists(st.sampled_from(["string", "integer", "null", "array"]), min_size=1,
                                            max_size=3, unique=True)}),
    st.just({"$ref": "#/$defs/Shared"}),
    st.just({}),
)


def _compound(inner):
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(_names, inner, max_size=3)},
                              optional={"required": st.lists(_names, max_size=2, unique=True),
                                        "additionalProperties": st.booleans(), "title": st.text(max_size=4),
                                        "$comment": st.text(max_size=4)}),
        st.fixed_dictionaries({"type": st.just("array"), "items": inner},
                              optional={"minItems": st.integers(0, 3), "examples": st.just([[]])}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(_names, inner, max_size=2)}), max_size=2)}),
    )


_schemas = st.recursive(_leaf, _compound, max_leaves=12)


def _fields(node, path="$"):
    """Every (path, key) of a translated schema, walking only Schema-valued fields."""
    assert isinstance(node, dict), path
    for key, value in node.items():
        yield path, key
        if key == "properties":
            for name, sub in value.items():
                yield from _fields(sub, f"{path}.{name}")
        elif key == "items":
            yield from _fields(value, f"{path}[]")
        elif key == "anyOf":
            for i, sub in enumerate(value):
                yield from _fields(sub, f"{path}|{i}")


@settings(max_examples=300, deadline=None)
@given(schema=_schemas)
def test_a_translated_schema_holds_only_gemini_fields_and_the_fake_gemini_accepts_it(schema):
    root = {"$defs": {"Shared": obj(id={"type": "string"})}, **schema} if isinstance(schema, dict) else schema
    try:
        out = translate(root, "parameters", order=True)
    except SchemaError as exc:
        assert exc.keyword in str(exc) and exc.path.startswith("parameters")
        return
    bad = [(path, key) for path, key in _fields(out) if key not in SCHEMA_FIELDS]
    assert not bad
    for _, key in _fields(out):
        assert not key.startswith("$")
    check_schema(out, "generation_config.response_schema")  # raises the real 400 for anything else
