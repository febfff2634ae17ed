"""How a job's JSON input becomes a function's arguments.

Every function takes ``ctx`` first (as in arq); the rule for the rest depends only on the
parameters after ``ctx``, so it is predictable from the signature alone:

- no parameters: the input must be ``null`` (``{}`` and ``[]`` are accepted too);
- exactly one parameter: the whole input is that argument (``null`` leaves its default,
  if it has one): ``async def f(ctx, order: Order)`` receives the input as an ``Order``;
- two or more parameters: an object is keyword arguments, an array is positional
  arguments, ``null`` calls with the defaults; any other input is an error.

So ``async def shout(ctx, text: str)`` takes ``"input": "hey"`` (not ``{"text": "hey"}``:
with one parameter the whole input is that parameter), and ``async def add(ctx, a: int,
b: int)`` takes ``{"a": 1, "b": 2}`` or ``[1, 2]``.

Annotated parameters are validated (and converted) by pydantic, so a ``BaseModel`` or a
``list[int]`` parameter receives a real ``BaseModel`` or ``list[int]``. A validation
error fails the job without retries (the same input would fail again) with a message
naming each bad field. Unannotated and ``Any`` parameters are passed through untouched,
at no cost per call.

The JSON schema of the accepted input is registered with the API, which checks every
job's input against it before enqueueing (422 naming the field): one parameter, its
schema (``null`` allowed too when it has a default); several, the object of keyword
arguments (an array of positional ones is let through to this binder, and ``null`` is
allowed when every parameter has a default). docs/workers.md says the same for users.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

log = logging.getLogger("tether.worker")

Args = tuple[tuple[Any, ...], dict[str, Any]]
_EMPTY: Args = ((), {})


class InputError(Exception):
    """The job's input does not fit the function's parameters (never retried)."""

    retryable = False


def _format(exc: ValidationError, root: str) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in (root, *err["loc"]) if p != "")
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    annotation: Any  # Any when not annotated
    default: Any  # inspect.Parameter.empty when required
    kind: inspect._ParameterKind


def _params(fn: Callable[..., Any]) -> tuple[list[_Param], bool, bool]:
    """The parameters after ctx, and whether the function takes *args / **kwargs."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: treat those as unannotated
        hints = {}
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{fn.__qualname__} must take ctx as its first positional parameter")
    named, var_args, var_kwargs = [], False, False
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            var_args = True
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kwargs = True
        else:
            named.append(_Param(p.name, hints.get(p.name, Any), p.default, p.kind))
    return named, var_args, var_kwargs


def _adapter(annotation: Any, where: str) -> TypeAdapter[Any] | None:
    if annotation is Any:
        return None
    try:
        return TypeAdapter(annotation)
    except (PydanticSchemaGenerationError, PydanticUserError) as exc:
        log.warning("%s: annotation %r is not validated (%s)", where, annotation, exc)
        return None


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or null (its ``$defs`` stay at the root, where its refs point)."""
    inner = dict(schema)
    defs = inner.pop("$defs", None)
    out: dict[str, Any] = {"anyOf": [inner, {"type": "null"}]}
    if defs is not None:
        out["$defs"] = defs
    return out


class InputBinder:
    """Turns one input value into ``(args, kwargs)`` for a function, validating it."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.name = name
        self._params, self._var_args, self._var_kwargs = _params(fn)
        self._single: TypeAdapter[Any] | None = None
        self._model: type[BaseModel] | None = None
        self.schema: dict[str, Any] | None = None
        if self._is_single:
            p = self._params[0]
            self._single = _adapter(p.annotation, f"{name}({p.name})")
            if self._single is not None:
                self.schema = self._schema(self._single)
                if self.schema is not None and p.default is not inspect.Parameter.empty:
                    self.schema = _or_null(self.schema)  # null: the default
        elif self._params:
            self._model = self._build_model()
            # Only validate per call when something is annotated: untyped stays free.
            annotated = any(p.annotation is not Any for p in self._params)
            self.schema = self._model.model_json_schema() if self._model else None
            if self.schema is not None:
                self.schema["type"] = self._many_types()
            if not annotated:
                self._model = None

    def _many_types(self) -> list[str]:
        """What ``bind`` takes for several parameters: an object of keyword arguments,
        an array of positional ones (the schema's ``properties`` apply to objects only),
        and ``null`` when every parameter has a default."""
        types = ["object", "array"]
        if all(p.default is not inspect.Parameter.empty for p in self._params):
            types.append("null")
        return types

    @property
    def _is_single(self) -> bool:
        return len(self._params) == 1 and not self._var_args and not self._var_kwargs

    def _schema(self, adapter: TypeAdapter[Any]) -> dict[str, Any] | None:
        try:
            return adapter.json_schema()
        except Exception:  # a validatable type without a JSON schema
            return None

    def _build_model(self) -> type[BaseModel] | None:
        fields: dict[str, Any] = {}
        for p in self._params:
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (p.annotation, default)
        config = ConfigDict(
            extra="allow" if self._var_kwargs else "forbid", arbitrary_types_allowed=True
        )
        try:
            return create_model(f"{self.name}_input", __config__=config, **fields)
        except (PydanticSchemaGenerationError, PydanticUserError) as exc:
            log.warning("%s: arguments are not validated (%s)", self.name, exc)
            return None

    def bind(self, value: Any) -> Args:
        """The arguments for one call; raises ``InputError`` with a readable message."""
        if not self._params and not self._var_args and not self._var_kwargs:
            if value is None or value == {} or value == []:
                return _EMPTY
            raise InputError(f"{self.name} takes no input, got {type(value).__name__}")
        if self._is_single:
            return self._bind_single(value)
        if value is None:
            return self._bind_many((), {})
        if isinstance(value, dict):
            return self._bind_many((), value)
        if isinstance(value, list):
            return self._bind_many(tuple(value), {})
        raise InputError(
            f"{self.name} takes several arguments: its input must be an object of keyword "
            f"arguments or an array of positional ones, not {type(value).__name__}"
        )

    def _bind_single(self, value: Any) -> Args:
        p = self._params[0]
        if value is None and p.default is not inspect.Parameter.empty:
            return _EMPTY
        if self._single is not None:
            try:
                value = self._single.validate_python(value)
            except ValidationError as exc:
                raise InputError(f"invalid input for {self.name}: {_format(exc, p.name)}") from exc
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            return (), {p.name: value}
        return (value,), {}

    def _bind_many(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Args:
        positional = [
            p
            for p in self._params
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        if len(args) > len(positional) and not self._var_args:
            raise InputError(
                f"{self.name} takes at most {len(positional)} positional arguments, got {len(args)}"
            )
        extra_args = args[len(positional) :]
        named = dict(zip((p.name for p in positional), args, strict=False))
        clash = named.keys() & kwargs.keys()
        if clash:
            raise InputError(f"{self.name} got several values for {sorted(clash)}")
        named.update(kwargs)
        if self._model is not None:
            try:
                model = self._model.model_validate(named)
            except ValidationError as exc:
                raise InputError(f"invalid input for {self.name}: {_format(exc, '')}") from exc
            named = {
                name: getattr(model, name) for name in named if name in type(model).model_fields
            }
            named.update(model.model_extra or {})
        else:
            self._check_names(named)
        # Positional-only parameters must stay positional.
        pos_only = [p.name for p in positional if p.kind is inspect.Parameter.POSITIONAL_ONLY]
        lead = tuple(named.pop(n) for n in pos_only if n in named)
        return (*lead, *extra_args), named

    def _check_names(self, named: dict[str, Any]) -> None:
        known = {p.name for p in self._params}
        unknown = sorted(named.keys() - known)
        if unknown and not self._var_kwargs:
            raise InputError(f"{self.name} got unexpected arguments {unknown}")
        missing = [
            p.name
            for p in self._params
            if p.default is inspect.Parameter.empty and p.name not in named
        ]
        if missing:
            raise InputError(f"{self.name} is missing required arguments {missing}")
