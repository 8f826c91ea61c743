"""In-process MCP: schema conversion, the validator (property-tested), tools, JSON-RPC."""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import pytest
import trio
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from claudecode._mcp import (
    DEFAULT_PROTOCOL_VERSION,
    McpServer,
    SchemaError,
    Tool,
    ToolResult,
    ValidationError,
    check_schema,
    mcp_server,
    to_json_schema,
    tool,
    validate,
)
from claudecode._options import Options, initialize_payload, is_sdk_mcp_server, to_cli_args

# -- schema conversion ---------------------------------------------------------------


def test_simple_mapping_to_json_schema() -> None:
    schema = to_json_schema(
        {
            "a": int,
            "b": str,
            "ratio": float,
            "flag": bool,
            "tags": list[str],
            "pair": tuple[int, ...],
            "scores": dict[str, float],
            "note": str | None,
            "size": int | float | None,
            "level": Literal["lo", "hi"] | None,
            "mode": Literal["fast", "slow"],
            "num": int | float,
            "raw": {"type": "array", "items": {"type": "integer"}},
            "blob": dict,
        }
    )
    assert schema == {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "string"},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pair": {"type": "array", "items": {"type": "integer"}},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "note": {"type": ["string", "null"]},
            "size": {"type": ["integer", "number", "null"]},
            "level": {"enum": ["lo", "hi", None]},
            "mode": {"enum": ["fast", "slow"]},
            "num": {"type": ["integer", "number"]},
            "raw": {"type": "array", "items": {"type": "integer"}},
            "blob": {"type": "object"},
        },
        "required": [
            "a",
            "b",
            "ratio",
            "flag",
            "tags",
            "pair",
            "scores",
            "mode",
            "num",
            "raw",
            "blob",
        ],
    }


def test_json_schema_passes_through_and_none_means_no_input() -> None:
    given_schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "description": "query"}},
        "required": ["q"],
        "additionalProperties": False,
    }
    assert to_json_schema(given_schema) == given_schema
    assert to_json_schema({"properties": {"q": {"type": "string"}}}) == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }
    assert to_json_schema(None) == {"type": "object", "properties": {}}
    assert to_json_schema({}) == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "string"}, "type 'object'"),
        ({"type": "object", "properties": {"a": {"type": "int"}}},
         r"\$\.properties\.a\.type: 'int' is not valid"),
        ({"type": "object", "required": "a"}, r"\$\.required: 'a' is not of type 'array'"),
        ({"type": "object", "properties": []}, r"\$\.properties: \[\] is not of type"),
        ({"type": "object", "enum": "x"}, r"\$\.enum: 'x' is not of type 'array'"),
        ({"type": "object", "additionalProperties": 3}, r"\$\.additionalProperties: 3"),
        ({"type": "object", "properties": {"n": {"minimum": "1"}}}, "minimum"),
        ({"type": "object", "default": object()}, "JSON"),
        ({"a": set}, "cannot turn"),
        ({"a": int | list[int]}, "plain types"),
        ({"a": dict[int, str]}, "keys must be str"),
        ({"a": Literal[object()]}, "JSON scalars"),
        ({3: int}, "field names"),
    ],
)
def test_bad_schemas_are_rejected_at_definition(schema: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        to_json_schema(schema)


# -- validator: examples ---------------------------------------------------------------


def reject(instance: Any, schema: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate(instance, schema)
    return info.value


def test_validator_types_follow_json_not_python() -> None:
    validate(3, {"type": "integer"})
    validate(3.0, {"type": "integer"})  # JSON does not distinguish 3 and 3.0
    validate(3, {"type": "number"})
    assert reject(True, {"type": "integer"}).message == "expected integer, got boolean"
    assert reject(1, {"type": "boolean"}).message == "expected boolean, got integer"
    reject(3.5, {"type": "integer"})
    reject(float("inf"), {"type": "integer"})
    validate(None, {"type": ["string", "null"]})
    reject(b"x", {"type": "string"})
    validate("anything", {})


def test_validator_enum_uses_json_equality() -> None:
    validate(1.0, {"enum": [1, "a"]})
    reject(True, {"enum": [1, "a"]})
    reject(1, {"enum": [True]})
    validate([1, {"k": None}], {"enum": [[1, {"k": None}]]})
    reject([1, {"k": 0}], {"enum": [[1, {"k": None}]]})
    assert "is not one of" in reject("c", {"enum": ["a", "b"]}).message


def test_validator_objects_and_arrays_with_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "required": ["n"],
                    "additionalProperties": False,
                },
            },
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["items"],
    }
    validate({"items": [{"n": 1}], "meta": {"x": "y"}, "extra": 1}, schema)
    err = reject({"items": [{"n": 1}, {"n": "2"}]}, schema)
    assert (err.path, err.message) == ("$.items[1].n", "expected integer, got string")
    err = reject({"items": [{"n": 1, "m": 2}]}, schema)
    assert (err.path, err.message) == ("$.items[0]", "unexpected property 'm'")
    assert reject({}, schema).message == "missing required property 'items'"
    assert reject({"items": [], "meta": {"x": 1}}, schema).path == "$.meta.x"
    assert str(reject({"items": [{}]}, schema)) == "$.items[0]: missing required property 'n'"


def test_validator_is_full_draft_2020_12() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "tag": {"type": "string", "pattern": "^[a-z]+$"},
            "pick": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "point": {"$ref": "#/$defs/point"},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}],
                     "items": False},
        },
        "$defs": {"point": {"type": "object", "required": ["x"],
                            "properties": {"x": {"type": "number"}}}},
    }
    check_schema(schema)
    validate({"n": 3, "tag": "abc", "pick": "s", "point": {"x": 1.5}, "pair": ["a", 1]}, schema)
    assert reject({"n": 0}, schema).path == "$.n"
    assert "minimum" in reject({"n": 0}, schema).message or "less than" in reject(
        {"n": 0}, schema).message
    assert reject({"tag": "ABC"}, schema).path == "$.tag"
    assert reject({"pick": 1.5}, schema).path == "$.pick"
    assert str(reject({"point": {}}, schema)) == "$.point: missing required property 'x'"
    assert reject({"pair": ["a", 1, 2]}, schema).path == "$.pair"
    # a schema naming an older draft is validated by that draft
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"a": {"type": "integer", "exclusiveMinimum": 0}}}
    validate({"a": 1}, draft7)
    assert reject({"a": 0}, draft7).path == "$.a"
    # and the shorthand still turns into a schema the library enforces
    short = to_json_schema({"a": int, "tags": list[str], "note": str | None})
    validate({"a": 1, "tags": ["x"], "note": None}, short)
    assert reject({"a": 1, "tags": [2], "note": None}, short).path == "$.tags[0]"


# -- validator: properties ---------------------------------------------------------------

SIMPLE_TYPES = ["string", "integer", "number", "boolean", "null"]
SCALARS = st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=5)


def schemas() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(
        st.sampled_from(SIMPLE_TYPES).map(lambda t: {"type": t}),
        st.lists(st.sampled_from(SIMPLE_TYPES), min_size=1, max_size=3, unique=True).map(
            lambda ts: {"type": ts}
        ),
        st.lists(SCALARS, min_size=1, max_size=4).map(lambda vs: {"enum": vs}),
    )

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        arrays = inner.map(lambda s: {"type": "array", "items": s})

        @st.composite
        def objects(draw: st.DrawFn) -> dict[str, Any]:
            props = draw(st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), inner))
            required = [k for k in props if draw(st.booleans())]
            out: dict[str, Any] = {"type": "object", "properties": props, "required": required}
            extra = draw(st.sampled_from([None, False, True, "schema"]))
            if extra == "schema":
                out["additionalProperties"] = draw(inner)
            elif extra is not None:
                out["additionalProperties"] = extra
            return out

        return arrays | objects()

    return st.recursive(leaf, extend, max_leaves=8)


def _value_of_type(kind: str) -> st.SearchStrategy[Any]:
    return {
        "string": st.text(max_size=5),
        "integer": st.integers(-(2**40), 2**40),
        "number": st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
        "null": st.none(),
    }[kind]


@st.composite
def instance_of(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A value that satisfies ``schema`` (built from the schema, not checked by the validator)."""
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    kind = schema["type"]
    if isinstance(kind, list):
        return draw(st.one_of([_value_of_type(k) for k in kind]))
    if kind == "array":
        return draw(st.lists(instance_of(schema["items"]), max_size=3))
    if kind == "object":
        out: dict[str, Any] = {}
        for name, sub in schema["properties"].items():
            if name in schema["required"] or draw(st.booleans()):
                out[name] = draw(instance_of(sub))
        extra = schema.get("additionalProperties", True)
        if extra is not False:
            for name in draw(st.lists(st.text("QRS", min_size=1, max_size=2), max_size=2)):
                if name not in schema["properties"]:
                    out[name] = draw(instance_of(extra) if extra is not True else SCALARS)
        return out
    return draw(_value_of_type(kind))


# Each candidate and the JSON types it belongs to.
CANDIDATES: list[tuple[Any, set[str]]] = [
    (None, {"null"}),
    (True, {"boolean"}),
    ("s", {"string"}),
    (1.5, {"number"}),
    (7, {"integer", "number"}),
    ([], {"array"}),
    ({}, {"object"}),
]


def wrong_values(schema: dict[str, Any]) -> list[Any]:
    """Values that certainly violate ``schema`` at the top level."""
    if "enum" in schema:
        return ["\x00not-in-enum", [["never"]]]
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return [value for value, types in CANDIDATES if not types & set(kinds)]


@st.composite
def mutated(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A valid instance with one change that makes it invalid."""
    value = draw(instance_of(schema))
    wrong = wrong_values(schema)
    options = ["replace"] if wrong else []
    if schema.get("type") == "object":
        if schema["required"]:
            options.append("drop")
        if schema.get("additionalProperties") is False:
            options.append("extra")
        if any(wrong_values(s) for s in schema["properties"].values()):
            options.append("deep")
    if schema.get("type") == "array" and wrong_values(schema["items"]):
        options.append("deep")
    assume(options)
    how = draw(st.sampled_from(options))
    if how == "replace":
        return draw(st.sampled_from(wrong))
    if how == "drop":
        del value[draw(st.sampled_from(schema["required"]))]
        return value
    if how == "extra":
        value["\x00extra"] = 1
        return value
    if schema["type"] == "array":
        bad = draw(mutated(schema["items"]))
        return [*value, bad]
    name = draw(st.sampled_from([k for k, s in schema["properties"].items() if wrong_values(s)]))
    value[name] = draw(mutated(schema["properties"][name]))
    return value


@settings(max_examples=300)
@given(st.data(), schemas())
def test_valid_instances_validate(data: st.DataObject, schema: dict[str, Any]) -> None:
    check_schema(schema)
    instance = data.draw(instance_of(schema))
    validate(instance, schema)
    validate(json.loads(json.dumps(instance)), schema)  # also after a JSON round trip


@settings(max_examples=300)
@given(st.data(), schemas())
def test_mutated_instances_are_rejected(data: st.DataObject, schema: dict[str, Any]) -> None:
    bad = data.draw(mutated(schema))
    with pytest.raises(ValidationError):
        validate(bad, schema)


@given(st.dictionaries(st.text(max_size=4), st.sampled_from([int, str, float, bool, list[int]])))
def test_simple_mapping_requires_every_field(fields: dict[str, Any]) -> None:
    schema = to_json_schema(fields)
    assert set(schema.get("required", [])) == set(fields)
    if fields:
        name = next(iter(fields))
        with pytest.raises(ValidationError) as info:
            validate({k: None for k in fields if k != name}, schema)
        assert info.value.message == f"missing required property {name!r}"


# -- tools ---------------------------------------------------------------------------------


async def test_results_are_converted() -> None:
    @tool("echo", "Echo", {"v": {}})
    def echo(args: dict[str, Any]) -> Any:
        return args["v"]

    assert (await echo.run({"v": "hi"})).to_wire() == {
        "content": [{"type": "text", "text": "hi"}],
        "isError": False,
    }
    assert (await echo.run({"v": {"a": [1, "é"]}})).content == (
        {"type": "text", "text": '{"a": [1, "é"]}'},
    )
    assert (await echo.run({"v": 5})).content[0]["text"] == "5"
    assert (await echo.run({"v": None})).to_wire() == {"content": [], "isError": False}
    image = ToolResult([ToolResult.image_block(b"\x89PNG"), {"type": "text", "text": "pic"}])
    got = await echo.run({"v": image})
    assert got is image and got.content[0]["data"] == base64.b64encode(b"\x89PNG").decode()
    bad = await echo.run({"v": b"raw"})
    assert bad.is_error and bad.content[0]["text"].startswith("Tool error: unusable result")
    nan = await echo.run({"v": float("nan")})
    assert nan.is_error


async def test_results_in_the_sdk_shape_are_sent_as_mcp_results() -> None:
    @tool("echo", "Echo", {"v": {}})
    def echo(args: dict[str, Any]) -> Any:
        return args["v"]

    sdk = {"content": [{"type": "text", "text": "Sum: 5"}]}
    assert (await echo.run({"v": sdk})).to_wire() == {
        "content": [{"type": "text", "text": "Sum: 5"}], "isError": False}
    for flag in ("is_error", "isError"):
        failed = await echo.run({"v": {"content": [{"type": "text", "text": "no"}], flag: True}})
        assert failed.to_wire() == {"content": [{"type": "text", "text": "no"}], "isError": True}
    mixed = await echo.run({"v": {
        "content": [
            {"type": "image", "data": "aGk=", "mimeType": "image/png"},
            {"type": "resource_link", "name": "spec", "uri": "file:///spec.md"},
            {"type": "resource", "resource": {"uri": "x:1", "text": "inline"}},
            {"type": "resource", "resource": {"uri": "x:2", "blob": "AAAA"}},
            {"type": "mystery"},
        ],
        "structuredContent": {"sum": 5},
    }})
    assert mixed.to_wire() == {
        "content": [{"type": "image", "data": "aGk=", "mimeType": "image/png"},
                    {"type": "text", "text": "spec\nfile:///spec.md"},
                    {"type": "text", "text": "inline"}],
        "isError": False, "structuredContent": {"sum": 5}}
    # a dict that is not in that shape is still data, sent as JSON text
    assert (await echo.run({"v": {"content": "text", "n": 1}})).content[0]["text"] == (
        '{"content": "text", "n": 1}')
    assert (await echo.run({"v": {"content": [], "other": 1}})).content[0]["text"] == (
        '{"content": [], "other": 1}')
    bad = await echo.run({"v": {"content": [{"type": "text", "text": 3}]}})
    assert bad.is_error and "unusable result" in bad.content[0]["text"]


async def test_failures_become_error_results() -> None:
    @tool("div", "Divide", {"a": int, "b": int})
    async def div(args: dict[str, Any]) -> str:
        return str(args["a"] // args["b"])

    assert (await div.run({"a": 7, "b": 2})).content[0]["text"] == "3"
    zero = await div.run({"a": 1, "b": 0})
    assert zero == ToolResult.error(
        "Tool error: ZeroDivisionError: integer division or modulo by zero"
    )
    invalid = await div.run({"a": "1", "b": 2})
    assert invalid.is_error
    assert invalid.content[0]["text"] == (
        "Tool error: invalid arguments for 'div': $.a: expected integer, got string"
    )
    missing = await div.run(None)
    assert "missing required property 'a'" in missing.content[0]["text"]
    assert await div({"a": 9, "b": 3}) == "3"  # the Tool is still callable directly


async def test_tool_timeout(autojump_clock: trio.testing.MockClock) -> None:
    @tool("nap", "Sleeps")
    async def nap(args: dict[str, Any]) -> str:
        await trio.sleep(10)
        return "rested"

    assert (await nap.run({}, timeout=20)).content[0]["text"] == "rested"
    late = await nap.run({}, timeout=0.5)
    assert late == ToolResult.error("Tool error: 'nap' timed out after 0.5s")


def test_tool_and_server_definition_errors() -> None:
    with pytest.raises(ValueError, match="tool names"):
        tool("has space", "x")
    with pytest.raises(TypeError):
        tool("ok", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a function"):
        tool("ok", "x")(42)  # type: ignore[arg-type]
    t = tool("t", "x")(lambda args: "")
    with pytest.raises(ValueError, match="two tools named 't'"):
        mcp_server("s", [t, t])
    with pytest.raises(TypeError, match="not a tool"):
        mcp_server("s", [lambda args: ""])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        mcp_server("")
    with pytest.raises(TypeError, match="list of content blocks"):
        ToolResult("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text block"):
        ToolResult([{"type": "text"}])
    with pytest.raises(TypeError, match="image block"):
        ToolResult([{"type": "image", "data": "x"}])


def test_server_is_an_sdk_server_for_options() -> None:
    calc = mcp_server("calc", [tool("add", "Add", {"a": int})(lambda args: "")])
    assert isinstance(calc, McpServer) and is_sdk_mcp_server(calc)
    options = Options(mcp_servers={"math": calc})
    args = to_cli_args(options)
    [config] = [a for a in args if a.startswith("--mcp-config=")]
    assert json.loads(config.split("=", 1)[1]) == {
        "mcpServers": {"math": {"type": "sdk", "name": "math"}}
    }
    assert initialize_payload(options)["sdkMcpServers"] == ["math"]
    assert "calc" in repr(calc) and "add" in repr(calc)


# -- JSON-RPC ----------------------------------------------------------------------------------


def rpc(method: str, params: Any = None, rid: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        message["params"] = params
    return message


@pytest.fixture
def calc() -> McpServer:
    @tool("add", "Add two numbers", {"a": float, "b": float}, annotations={"readOnlyHint": True})
    def add(args: dict[str, Any]) -> float:
        return float(args["a"] + args["b"])

    return mcp_server("calc", [add], version="2.1.0")


async def test_initialize_echoes_known_versions(calc: McpServer) -> None:
    answer = await calc.handle(rpc("initialize", {"protocolVersion": "2025-03-26"}, rid=0))
    assert answer == {
        "jsonrpc": "2.0",
        "id": 0,
        "result": {
            "protocolVersion": "2025-03-26",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "calc", "version": "2.1.0"},
        },
    }
    other = await calc.handle(rpc("initialize", {"protocolVersion": "1999-01-01"}))
    assert other is not None and other["result"]["protocolVersion"] == DEFAULT_PROTOCOL_VERSION


async def test_notifications_and_responses_get_no_reply(calc: McpServer) -> None:
    assert await calc.handle({"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    assert await calc.handle({"jsonrpc": "2.0", "method": "notifications/cancelled"}) is None
    assert await calc.handle({"jsonrpc": "2.0", "id": 4, "result": {}}) is None


async def test_tools_list_and_call(calc: McpServer) -> None:
    listing = await calc.handle(rpc("tools/list", rid="x"))
    assert listing == {
        "jsonrpc": "2.0",
        "id": "x",
        "result": {
            "tools": [
                {
                    "name": "add",
                    "description": "Add two numbers",
                    "inputSchema": {
                        "type": "object",
                        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                        "required": ["a", "b"],
                    },
                    "annotations": {"readOnlyHint": True},
                }
            ]
        },
    }
    call = await calc.handle(rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2.5}}))
    assert call == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"content": [{"type": "text", "text": "3.5"}], "isError": False},
    }
    bad = await calc.handle(rpc("tools/call", {"name": "add", "arguments": {"a": 1}}))
    assert bad is not None and bad["result"]["isError"] is True
    assert await calc.handle(rpc("ping", rid=9)) == {"jsonrpc": "2.0", "id": 9, "result": {}}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (rpc("resources/list"), -32601),
        (rpc("tools/call", {"name": "nope"}), -32602),
        (rpc("tools/call", {"arguments": {}}), -32602),
        (rpc("tools/list", params=[1, 2]), -32602),
        ({"jsonrpc": "2.0", "id": 1}, -32600),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, -32600),
        ("not an object", -32600),
    ],
)
async def test_jsonrpc_errors(calc: McpServer, message: Any, code: int) -> None:
    answer = await calc.handle(message)
    assert answer is not None and answer["error"]["code"] == code
    assert isinstance(answer["error"]["message"], str) and "result" not in answer


async def test_call_tool_unknown_name(calc: McpServer) -> None:
    result = await calc.call_tool("missing", {})
    assert result == ToolResult.error("Tool error: unknown tool 'missing'")


def test_tool_is_frozen_data() -> None:
    t = tool("x", "X", {"a": int})(lambda args: "")
    assert isinstance(t, Tool) and t.definition()["inputSchema"]["required"] == ["a"]
    with pytest.raises(AttributeError):
        t.name = "y"  # type: ignore[misc]
