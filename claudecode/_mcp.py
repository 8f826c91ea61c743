"""In-process MCP servers: the ``@tool`` decorator, :func:`mcp_server` and their JSON-RPC handling.

A tool is a plain Python function (sync or async) that takes the validated
input dict and returns its result::

    @claudecode.tool("add", "Add two numbers", {"a": int, "b": int})
    async def add(args):
        return str(args["a"] + args["b"])

    calc = claudecode.mcp_server("calc", tools=[add])
    await claudecode.start_link(mcp_servers={"calc": calc})

The model sees the tool as ``mcp__calc__add``. The CLI talks to the server
through ``mcp_message`` control requests carrying JSON-RPC 2.0 messages;
:meth:`McpServer.handle` answers them (``initialize``, ``tools/list``,
``tools/call``, ``ping``; notifications get ``None``; other methods the
JSON-RPC error -32601).

Results: a ``str`` becomes one text block; a dict in claude-agent-sdk's
shape, ``{"content": [blocks], "is_error": bool}`` (``isError`` also
accepted), is sent as that MCP result; any other JSON value (dict, list,
number, bool) becomes its JSON text; ``None`` gives no content; a
:class:`ToolResult` is sent as given (text and image blocks, ``is_error``).
Invalid arguments, a raising tool, a result that cannot be sent and a
timeout all become a result with ``isError: true`` and the text
``"Tool error: ..."``: the model sees the failure, the session lives on.

Schemas are JSON-schema dicts, or simple mappings of field names to Python
types (``{"a": int, "tags": list[str], "note": str | None}``; every field is
required unless its type allows ``None``). Schemas are checked against their
meta-schema when the tool is defined, and arguments are validated by the
``jsonschema`` library: the draft named by ``$schema``, else draft 2020-12
(every keyword: ``minimum``, ``pattern``, ``oneOf``, ``$ref``...; ``format``
is an annotation only, as that draft specifies).
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, Union

import attrs
import jsonschema
import jsonschema.exceptions
import trio
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from claudecode._errors import ClaudeCodeError

logger = logging.getLogger("claudecode.mcp")

__all__ = [
    "DEFAULT_PROTOCOL_VERSION",
    "JSONRPC_INTERNAL_ERROR",
    "JSONRPC_INVALID_PARAMS",
    "JSONRPC_INVALID_REQUEST",
    "JSONRPC_METHOD_NOT_FOUND",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "McpServer",
    "SchemaError",
    "Tool",
    "ToolHandler",
    "ToolResult",
    "ValidationError",
    "check_schema",
    "is_sdk_result",
    "mcp_server",
    "to_json_schema",
    "tool",
    "validate",
]

ToolHandler: TypeAlias = Callable[[dict[str, Any]], Any]
"""A tool function: takes the validated input dict, returns a result (or an awaitable of one)."""

SUPPORTED_PROTOCOL_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""MCP protocol versions the server accepts from the client (echoed back in ``initialize``)."""

DEFAULT_PROTOCOL_VERSION: Final = "2025-06-18"
"""Version answered when the client asks for one we do not know."""

JSONRPC_INVALID_REQUEST: Final = -32600
JSONRPC_METHOD_NOT_FOUND: Final = -32601
JSONRPC_INVALID_PARAMS: Final = -32602
JSONRPC_INTERNAL_ERROR: Final = -32603

_PY_TYPES: Final[dict[Any, str]] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class SchemaError(ClaudeCodeError, ValueError):
    """A tool's schema is not something the validator understands.

    Raised when the tool is defined (``@tool``), never while serving calls.
    """


class ValidationError(ClaudeCodeError, ValueError):
    """An instance does not match a schema.

    Args:
        path: where in the instance, as ``$``, ``$.a``, ``$.items[2]``.
        message: what is wrong there.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


# ---------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------


def _is_type_form(value: object) -> bool:
    """Whether ``value`` is a Python type or typing construct (not a JSON-schema value)."""
    return (
        isinstance(value, type)
        or typing.get_origin(value) is not None
        or value is None
        or value is typing.Any
    )


def _looks_like_json_schema(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if isinstance(kind, (str, list)):
        return True
    props = schema.get("properties")
    return isinstance(props, Mapping) and not any(_is_type_form(v) for v in schema.values())


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also accepts ``null`` (for ``T | None`` fields)."""
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str) and kind != "null":
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _from_type(tp: Any, where: str) -> tuple[dict[str, Any], bool]:
    """JSON schema for a Python type, and whether the type allows ``None`` (optional)."""
    if tp is None or tp is type(None):
        return {"type": "null"}, True
    if tp is typing.Any:
        return {}, True
    if isinstance(tp, Mapping):
        return check_schema(dict(tp)), False
    if tp in _PY_TYPES:
        return {"type": _PY_TYPES[tp]}, False
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if not all(isinstance(a, (str, int, float, bool)) or a is None for a in args):
            raise SchemaError(f"{where}: Literal values must be JSON scalars, got {args!r}")
        return {"enum": list(args)}, None in args
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            inner, inner_optional = _from_type(rest[0], where)
            return (_nullable(inner) if optional else inner), optional or inner_optional
        names: list[str] = []
        for arg in [*rest, type(None)] if optional else rest:
            if arg not in _PY_TYPES:
                raise SchemaError(
                    f"{where}: unions may only combine plain types (int, str...), got {tp!r}"
                )
            name = _PY_TYPES[arg]
            if name not in names:
                names.append(name)
        return {"type": names}, optional
    if origin in (list, tuple, Sequence, Iterable):
        out: dict[str, Any] = {"type": "array"}
        homogeneous = origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)
        if args and homogeneous:
            out["items"], _ = _from_type(args[0], f"{where}[]")
        return out, False
    if origin in (dict, Mapping):
        out = {"type": "object"}
        if len(args) == 2:
            if args[0] is not str:
                raise SchemaError(f"{where}: object keys must be str, got {args[0]!r}")
            out["additionalProperties"], _ = _from_type(args[1], f"{where}{{}}")
        return out, False
    raise SchemaError(f"{where}: cannot turn {tp!r} into a JSON schema")


def to_json_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalise a tool schema to a JSON-schema object.

    Args:
        schema: a JSON-schema dict (``{"type": "object", "properties": ...}``),
            a simple mapping of field names to Python types (``{"a": int}``;
            values may also be JSON sub-schema dicts), or ``None`` (no input).

    Returns:
        A JSON schema whose top-level ``type`` is ``"object"``.

    Raises:
        SchemaError: the schema uses something the validator does not
            understand, or is not an object schema.
    """
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping):
        raise SchemaError(f"a tool schema must be a dict, got {type(schema).__name__}")
    if _looks_like_json_schema(schema):
        out = check_schema(dict(schema))
        if "type" not in out:  # {"properties": ...} alone describes an object
            out = {"type": "object", **out}
        if out.get("type") != "object":
            raise SchemaError(f"a tool's input schema must have type 'object', got {out!r}")
        return out
    properties: dict[str, Any] = {}
    required: list[str] = []
    for key, tp in schema.items():
        if not isinstance(key, str):
            raise SchemaError(f"field names must be strings, got {key!r}")
        sub, optional = _from_type(tp, f"field {key!r}")
        properties[key] = sub
        if not optional:
            required.append(key)
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _json_safe(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: not JSON-serialisable: {exc}") from None


def check_schema(schema: Any, where: str = "$") -> dict[str, Any]:
    """Check that ``schema`` is a valid JSON schema (its own ``$schema``, else draft 2020-12).

    Args:
        schema: the schema.
        where: position used in error messages.

    Returns:
        The same schema as a plain dict (unchanged).

    Raises:
        SchemaError: the schema is not a dict, not JSON-serialisable, or not
            valid against its draft's meta-schema (the message says where).
    """
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be a dict, got {type(schema).__name__}")
    out: dict[str, Any] = dict(schema)
    _json_safe(out, where)
    cls = validator_for(out, default=Draft202012Validator)
    try:
        cls.check_schema(out)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"{_path(where, exc.absolute_path)}: {exc.message}") from None
    return out


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    """The JSON type name of a Python value (``"integer"`` for whole numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def _path(root: str, parts: Iterable[Any]) -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _unexpected(error: jsonschema.ValidationError) -> list[str]:
    """The property names an ``additionalProperties`` error is about."""
    instance, schema = error.instance, error.schema
    if not isinstance(instance, Mapping) or not isinstance(schema, Mapping):
        return []
    known = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    return [k for k in instance if k not in known
            and not any(re.search(p, k) for p in patterns)]


def _message(error: jsonschema.ValidationError) -> tuple[str, str]:
    """``(path, message)`` for one jsonschema error, in this module's wording."""
    path = _path("$", error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "type":
        kinds = value if isinstance(value, list) else [value]
        return path, f"expected {' or '.join(map(str, kinds))}, got {_json_type(error.instance)}"
    if kind == "required" and isinstance(value, list):
        missing = [n for n in value if isinstance(error.instance, Mapping)
                   and n not in error.instance]
        if missing:
            return path, f"missing required property {missing[0]!r}"
    if kind == "additionalProperties" and value is False:
        extra = _unexpected(error)
        if extra:
            return path, f"unexpected property {extra[0]!r}"
    if kind == "enum" and isinstance(value, list):
        allowed = ", ".join(_describe(e) for e in value)
        return path, f"{_describe(error.instance)} is not one of {allowed}"
    return path, error.message


_VALIDATORS: dict[str, Validator] = {}
_VALIDATOR_CACHE_SIZE: Final = 1024


def _validator(schema: Mapping[str, Any]) -> Validator:
    """A compiled validator for ``schema`` (cached by the schema's JSON text)."""
    key = json.dumps(schema, sort_keys=True, default=repr)
    found = _VALIDATORS.get(key)
    if found is None:
        cls = validator_for(schema, default=Draft202012Validator)
        found = cls(dict(schema))
        if len(_VALIDATORS) >= _VALIDATOR_CACHE_SIZE:
            _VALIDATORS.clear()
        _VALIDATORS[key] = found
    return found


def _check(instance: Any, validator: Validator) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        path, message = _message(error)
        raise ValidationError(path, message)


def validate(instance: Any, schema: Mapping[str, Any]) -> None:
    """Check ``instance`` against ``schema`` with the ``jsonschema`` library.

    The schema's ``$schema`` picks the draft; without one, draft 2020-12 is
    used (``format`` is an annotation, not checked, as that draft says).

    Args:
        instance: a decoded JSON value.
        schema: a JSON schema.

    Raises:
        ValidationError: the most relevant mismatch (``.path`` says where, as
            ``$.items[2].name``).
    """
    _check(instance, _validator(schema))


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def _content(value: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    if isinstance(value, (str, bytes, Mapping)):
        raise TypeError("ToolResult content must be a list of content blocks")
    blocks = tuple(dict(block) for block in value)
    for block in blocks:
        kind = block.get("type")
        if not isinstance(kind, str):
            raise TypeError(f"content block without a string 'type': {block!r}")
        if kind == "text" and not isinstance(block.get("text"), str):
            raise TypeError("a text block needs a string 'text'")
        if kind in ("image", "audio") and not (
            isinstance(block.get("data"), str) and isinstance(block.get("mimeType"), str)
        ):
            raise TypeError(f"an {kind} block needs base64 'data' and a 'mimeType'")
    return blocks


@attrs.frozen
class ToolResult:
    """An explicit tool result: MCP content blocks and an error flag.

    Attributes:
        content: MCP content blocks, e.g. ``{"type": "text", "text": "..."}`` or
            ``{"type": "image", "data": <base64>, "mimeType": "image/png"}``.
        is_error: tell the model the tool failed.
        structured_content: an optional JSON object sent as MCP
            ``structuredContent`` beside the content blocks.
    """

    content: tuple[dict[str, Any], ...] = attrs.field(converter=_content, factory=tuple)
    is_error: bool = False
    structured_content: dict[str, Any] | None = attrs.field(default=None, repr=False)

    @classmethod
    def text(cls, text: str, *, is_error: bool = False) -> ToolResult:
        """A result of one text block.

        Args:
            text: the text.
            is_error: mark the result as a failure.

        Returns:
            The result.
        """
        return cls([{"type": "text", "text": text}], is_error=is_error)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        """A failed result whose text is ``message``.

        Args:
            message: what went wrong (shown to the model).

        Returns:
            The result with ``is_error=True``.
        """
        return cls.text(message, is_error=True)

    @staticmethod
    def image_block(data: bytes | str, mime_type: str = "image/png") -> dict[str, Any]:
        """An image content block.

        Args:
            data: the raw image bytes, or their base64 text.
            mime_type: e.g. ``"image/png"``.

        Returns:
            ``{"type": "image", "data": <base64>, "mimeType": mime_type}``.
        """
        text = base64.b64encode(data).decode("ascii") if isinstance(data, bytes) else data
        return {"type": "image", "data": text, "mimeType": mime_type}

    def to_wire(self) -> dict[str, Any]:
        """The MCP ``tools/call`` result object.

        Returns:
            ``{"content": [...], "isError": bool}`` (and ``structuredContent``
            when set).
        """
        out: dict[str, Any] = {"content": [dict(b) for b in self.content],
                               "isError": self.is_error}
        if self.structured_content is not None:
            out["structuredContent"] = dict(self.structured_content)
        return out

    @classmethod
    def from_sdk(cls, value: Mapping[str, Any]) -> ToolResult:
        """A result from claude-agent-sdk's shape: ``{"content": [...], "is_error": bool}``.

        Text, image and audio blocks pass through; ``resource_link`` and text
        ``resource`` blocks become text (what the CLI shows the model); binary
        resources and unknown block types are left out with a warning, as
        claude-agent-sdk does. ``isError`` is accepted for ``is_error``, and
        ``structuredContent`` is kept.

        Args:
            value: the dict a tool returned.

        Returns:
            The result.

        Raises:
            TypeError: ``content`` is not a list of block objects, or a block is malformed.
        """
        items = value.get("content")
        if not isinstance(items, list):
            raise TypeError("a tool result's 'content' must be a list of content blocks")
        blocks: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, Mapping):
                raise TypeError(f"content block is not an object: {item!r}")
            kind = item.get("type")
            if kind in ("text", "image", "audio"):
                blocks.append(dict(item))
            elif kind == "resource_link":
                parts = [str(item[k]) for k in ("name", "uri", "description") if item.get(k)]
                blocks.append({"type": "text", "text": "\n".join(parts) or "Resource link"})
            elif kind == "resource" and isinstance((item.get("resource") or {}).get("text"),
                                                   str):
                blocks.append({"type": "text", "text": item["resource"]["text"]})
            else:
                logger.warning("tool result: leaving out a %r content block the CLI cannot "
                               "show", kind)
        flag = value.get("is_error", value.get("isError", False))
        structured = value.get("structuredContent")
        return cls(blocks, is_error=flag is True,
                   structured_content=dict(structured) if isinstance(structured, Mapping)
                   else None)


def _error_text(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


_SDK_RESULT_KEYS: Final = frozenset({"content", "is_error", "isError", "structuredContent",
                                     "_meta"})


def is_sdk_result(value: Any) -> bool:
    """Whether a tool's return value is a result in claude-agent-sdk's (MCP's) shape.

    Args:
        value: what the tool returned.

    Returns:
        ``True`` for a mapping whose ``content`` is a list and whose other
        keys are among ``is_error``, ``isError``, ``structuredContent``, ``_meta``.
    """
    return (isinstance(value, Mapping) and isinstance(value.get("content"), list)
            and _SDK_RESULT_KEYS.issuperset(value))


def _coerce_result(value: Any) -> ToolResult:
    """A tool's return value as a :class:`ToolResult` (raises TypeError/ValueError)."""
    if isinstance(value, ToolResult):
        return value
    if value is None:
        return ToolResult(())
    if isinstance(value, str):
        return ToolResult.text(value)
    if is_sdk_result(value):
        return ToolResult.from_sdk(value)
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("a tool returned bytes; return str, or ToolResult with an image block")
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return ToolResult.text(text)


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------


@attrs.frozen
class Tool:
    """An in-process MCP tool (made by :func:`tool`).

    Calling the object calls the wrapped function unchanged.

    Attributes:
        name: the tool name (the model sees ``mcp__<server>__<name>``).
        description: what it does, for the model.
        input_schema: the JSON schema of its input (type object).
        handler: the wrapped function (sync or async) taking the input dict.
        annotations: optional MCP tool annotations (``readOnlyHint``...).
    """

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler = attrs.field(repr=False)
    annotations: dict[str, Any] | None = None
    _checker: Validator | None = attrs.field(init=False, default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # compiled once: validating a call then costs no schema work
        object.__setattr__(self, "_checker", _validator(self.input_schema))

    def __call__(self, args: dict[str, Any]) -> Any:
        """Call the wrapped function directly (no validation).

        Args:
            args: the input dict.

        Returns:
            Whatever the function returns.
        """
        return self.handler(args)

    def definition(self) -> dict[str, Any]:
        """The tool's entry in a ``tools/list`` result.

        Returns:
            ``{"name", "description", "inputSchema", "annotations"?}``.
        """
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    async def run(self, arguments: Any, *, timeout: float | None = None) -> ToolResult:
        """Validate the arguments, call the function and convert its result.

        Never raises for a failing tool: invalid arguments, an exception, an
        unusable result or a timeout give a result with ``is_error=True``
        whose text starts with ``"Tool error: "``. Cancellation propagates.
        A sync function runs on the trio thread and cannot be timed out.

        Args:
            arguments: the ``arguments`` of ``tools/call`` (``None`` means ``{}``).
            timeout: seconds before the call is abandoned; ``None`` waits.

        Returns:
            The result to send.
        """
        args = {} if arguments is None else arguments
        try:
            _check(args, self._checker or _validator(self.input_schema))
        except ValidationError as exc:
            return ToolResult.error(f"Tool error: invalid arguments for {self.name!r}: {exc}")
        value: Any = None
        with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
            try:
                value = self.handler(dict(args))
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                return ToolResult.error(f"Tool error: {_error_text(exc)}")
        if scope.cancelled_caught:
            return ToolResult.error(f"Tool error: {self.name!r} timed out after {timeout:g}s")
        try:
            return _coerce_result(value)
        except (TypeError, ValueError) as exc:
            return ToolResult.error(f"Tool error: unusable result from {self.name!r}: {exc}")


def tool(
    name: str,
    description: str = "",
    schema: Mapping[str, Any] | None = None,
    *,
    annotations: Mapping[str, Any] | None = None,
) -> Callable[[ToolHandler], Tool]:
    """Decorator: turn a function into an in-process MCP :class:`Tool`.

    Args:
        name: the tool name (letters, digits, ``_`` and ``-``).
        description: what the tool does, for the model.
        schema: a JSON-schema dict or a simple ``{"field": type}`` mapping
            (see the module docs); ``None`` for a tool without input.
        annotations: optional MCP tool annotations.

    Returns:
        A decorator taking the function (sync or async, one argument: the
        validated input dict) and returning the :class:`Tool`.

    Raises:
        SchemaError: the schema is not understood.
        ValueError: the name is empty or has other characters.
        TypeError: the decorated object is not callable.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"tool names must be non-empty [A-Za-z0-9_-], got {name!r}")
    if not isinstance(description, str):
        raise TypeError(f"tool description must be a string, got {description!r}")
    input_schema = to_json_schema(schema)
    notes = dict(annotations) if annotations is not None else None

    def decorate(fn: ToolHandler) -> Tool:
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {fn!r}")
        return Tool(name, description, input_schema, fn, notes)

    return decorate


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


def _rpc_result(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _rpc_error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


class McpServer:
    """An in-process MCP server: a name, a version and tools (made by :func:`mcp_server`).

    Pass it in the ``mcp_servers`` option; the session serves it through
    ``mcp_message`` control requests (the ``mcp_servers`` key is the name the
    CLI uses).

    Args:
        name: the server name (reported in ``serverInfo``).
        tools: the tools.
        version: the server version (reported in ``serverInfo``).

    Raises:
        TypeError: an entry of ``tools`` is not a :class:`Tool`.
        ValueError: two tools have the same name, or the name is empty.
    """

    __claudecode_sdk_mcp_server__: Final = True

    def __init__(self, name: str, tools: Iterable[Tool] = (), version: str = "1.0.0") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"MCP server names must be non-empty strings, got {name!r}")
        self.name: Final = name
        self.version: Final = str(version)
        self.tools: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):
                raise TypeError(f"not a tool (decorate it with @claudecode.tool): {item!r}")
            if item.name in self.tools:
                raise ValueError(f"two tools named {item.name!r} in MCP server {name!r}")
            self.tools[item.name] = item

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, tools={list(self.tools)!r}, version={self.version!r})"

    def list_tools(self) -> list[dict[str, Any]]:
        """The ``tools/list`` entries.

        Returns:
            One definition per tool, in registration order.
        """
        return [t.definition() for t in self.tools.values()]

    async def call_tool(
        self, name: str, arguments: Any = None, *, timeout: float | None = None
    ) -> ToolResult:
        """Run one tool as ``tools/call`` would.

        Args:
            name: the tool name (without the ``mcp__server__`` prefix).
            arguments: its input.
            timeout: seconds before the call fails with an error result.

        Returns:
            The result (``is_error`` for an unknown tool or a failure).
        """
        found = self.tools.get(name)
        if found is None:
            return ToolResult.error(f"Tool error: unknown tool {name!r}")
        return await found.run(arguments, timeout=timeout)

    async def handle(self, message: Any, *, timeout: float | None = None) -> dict[str, Any] | None:
        """Answer one JSON-RPC 2.0 message from the CLI.

        Args:
            message: the decoded JSON-RPC request or notification.
            timeout: seconds a ``tools/call`` may take (``None``: no limit).

        Returns:
            The JSON-RPC response, or ``None`` for a notification or a
            response (the caller still acknowledges the control request; see
            :mod:`claudecode._callbacks`).
        """
        if not isinstance(message, Mapping):
            return _rpc_error(None, JSONRPC_INVALID_REQUEST, "a JSON-RPC message must be an object")
        method = message.get("method")
        if method is None and ("result" in message or "error" in message):
            return None  # a response to a request we never make
        rid = message.get("id")
        if not isinstance(method, str):
            return _rpc_error(rid, JSONRPC_INVALID_REQUEST, "missing or invalid 'method'")
        if "id" not in message:
            return None  # notification (notifications/initialized, cancelled...)
        params = message.get("params")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            return _rpc_error(rid, JSONRPC_INVALID_PARAMS, "'params' must be an object")
        if method == "initialize":
            asked = params.get("protocolVersion")
            version = asked if asked in SUPPORTED_PROTOCOL_VERSIONS else DEFAULT_PROTOCOL_VERSION
            return _rpc_result(
                rid,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": self.name, "version": self.version},
                },
            )
        if method == "ping":
            return _rpc_result(rid, {})
        if method == "tools/list":
            return _rpc_result(rid, {"tools": self.list_tools()})
        if method == "tools/call":
            name = params.get("name")
            if not isinstance(name, str):
                return _rpc_error(rid, JSONRPC_INVALID_PARAMS, "tools/call needs a string 'name'")
            if name not in self.tools:
                return _rpc_error(rid, JSONRPC_INVALID_PARAMS, f"unknown tool {name!r}")
            result = await self.call_tool(name, params.get("arguments"), timeout=timeout)
            return _rpc_result(rid, result.to_wire())
        return _rpc_error(rid, JSONRPC_METHOD_NOT_FOUND, f"method not found: {method}")


def mcp_server(name: str, tools: Iterable[Tool] = (), version: str = "1.0.0") -> McpServer:
    """Make an in-process MCP server to pass in ``mcp_servers``.

    Args:
        name: the server name.
        tools: tools made with :func:`tool`.
        version: reported to the CLI in ``serverInfo``.

    Returns:
        The server.
    """
    return McpServer(name, tools, version)
