"""Inputs checked at the door: a job's input against the JSON schema its function
registered, so a job that could never bind to its function's arguments is refused with
422 and the failing field, instead of being accepted and failing on a worker.

Schemas are compiled once (``fastjsonschema``: Python code generated for the schema) and
cached by their JSON, so a check costs one call of the compiled function: about a
microsecond for a small object (bench/end_to_end.py measures the enqueue path).

The check refuses only what the worker would refuse too: pydantic's lax conversions stay
possible (``"4"`` or ``4.0`` for an ``int``, ``"true"`` or ``1`` for a ``bool``), so the
schema is widened before it is compiled (``lenient``): an ``integer`` may also be a number
or a string, a ``number`` a string, a ``boolean`` an integer or a string. A ``str``
parameter given ``5``, a missing field, an unknown one, a value out of an enum: 422.

Schemas come from machines, so they are compiled only when they cannot reach outside
the document: a ``$ref`` that is not ``#...``, an ``$id`` or a ``$schema`` keeps a schema
unchecked here (the worker still validates its input). Formats (``date-time``...) are
not checked here: pydantic, on the worker, parses more than the format says.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson

from tether.errors import ValidationFailed

log = logging.getLogger("tether.api")

Validator = Callable[[Any], Any]

MAX_CACHED = 512  # compiled schemas kept (one per distinct function schema, in practice)
_cache: OrderedDict[bytes, Validator | None] = OrderedDict()


def _refuse(uri: str) -> Any:
    raise ValueError(f"remote $ref {uri!r} is not followed")


# Belt and braces: a remote $ref never reaches here (see _self_contained).
_NO_REMOTE = {scheme: _refuse for scheme in ("http", "https", "file", "ftp", "data")}


def _self_contained(schema: Any) -> bool:
    """No keyword that could make the compiler look outside the document."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$id" in node or "$schema" in node:
                return False
            ref = node.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                return False
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


# What pydantic (lax mode, on the worker) also converts to each JSON schema type.
_WIDER = {
    "integer": ("number", "string"),
    "number": ("string",),
    "boolean": ("integer", "string"),
}
# Keywords whose value is a schema, a list of schemas, or a dict of schemas by name.
_ONE = (
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST = ("anyOf", "allOf", "oneOf", "prefixItems", "items")
_BY_NAME = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def lenient(schema: Any) -> Any:
    """A copy of ``schema`` whose types also take what pydantic's lax mode converts."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str | list):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        for k in list(kinds):
            kinds += [w for w in _WIDER.get(k, ()) if w not in kinds]
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = lenient(out[key])
    for key in _LIST:
        if isinstance(out.get(key), list):
            out[key] = [lenient(s) for s in out[key]]
    for key in _BY_NAME:
        if isinstance(out.get(key), dict):
            out[key] = {name: lenient(s) for name, s in out[key].items()}
    return out


def _compile(schema: dict[str, Any]) -> Validator | None:
    if not _self_contained(schema):
        log.warning("an input schema with remote references is not checked by the API")
        return None
    try:
        return fastjsonschema.compile(
            lenient(schema), handlers=_NO_REMOTE, use_default=False, use_formats=False
        )
    except Exception as exc:  # a schema the compiler cannot handle: the worker checks
        log.warning("an input schema is not checked by the API (%s)", exc)
        return None


def validator_for(schema: dict[str, Any] | None) -> Validator | None:
    """The compiled check of ``schema`` (None: nothing to check), cached by its JSON."""
    if not schema:
        return None
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    validator = _compile(schema)
    _cache[key] = validator
    if len(_cache) > MAX_CACHED:
        _cache.popitem(last=False)
    return validator


def check_input(
    validator: Validator | None, function: str, value: Any, where: str = "input"
) -> None:
    """Raise ``ValidationFailed`` (422) naming the first failing field of ``value``;
    ``where`` is the field's path in the request (``input``, ``jobs.3.input``)."""
    if validator is None:
        return
    try:
        validator(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = [where, *(str(p) for p in (exc.path or ["data"])[1:])]
        field = ".".join(path)
        message = exc.message.replace(exc.name, field, 1) if exc.name else exc.message
        raise ValidationFailed(
            f"{message} (the input schema of {function!r})",
            details={"fields": [{"field": field, "message": message, "rule": exc.rule}]},
        ) from None
