"""The rule that turns a job's input into a function's arguments."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from tether.workers.binding import InputBinder, InputError


class Point(BaseModel):
    x: int
    y: int


async def none(ctx: dict[str, Any]) -> None: ...
async def one(ctx: dict[str, Any], value): ...  # type: ignore[no-untyped-def]
async def one_default(ctx: dict[str, Any], value: int = 7) -> None: ...
async def model(ctx: dict[str, Any], point: Point) -> None: ...
async def two(ctx: dict[str, Any], a, b=2): ...  # type: ignore[no-untyped-def]
async def typed(ctx: dict[str, Any], a: int, b: list[str]) -> None: ...
async def rest(ctx: dict[str, Any], a: int, **extra: Any) -> None: ...


def bind(fn: Any, value: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return InputBinder(fn, fn.__name__).bind(value)


def test_a_function_without_parameters_takes_null_or_empty_input() -> None:
    assert bind(none, None) == bind(none, {}) == bind(none, []) == ((), {})


def test_a_function_without_parameters_rejects_input() -> None:
    with pytest.raises(InputError, match="takes no input"):
        bind(none, 5)


def test_a_single_parameter_receives_the_whole_input_even_an_object() -> None:
    assert bind(one, {"value": 1}) == (({"value": 1},), {})
    assert bind(one, [1, 2]) == (([1, 2],), {})


def test_a_single_parameter_with_a_default_keeps_it_for_null_input() -> None:
    assert bind(one_default, None) == ((), {})


def test_a_model_parameter_receives_a_validated_model() -> None:
    (point,), _ = bind(model, {"x": "1", "y": 2})
    assert point == Point(x=1, y=2)


def test_a_model_validation_error_names_the_field() -> None:
    with pytest.raises(InputError, match=r"point\.y: Field required"):
        bind(model, {"x": 1})


def test_several_parameters_take_an_object_as_keyword_arguments() -> None:
    assert bind(two, {"a": 1}) == ((), {"a": 1})


def test_several_parameters_take_an_array_as_positional_arguments() -> None:
    assert bind(two, [1, 3]) == ((), {"a": 1, "b": 3})


def test_several_parameters_reject_a_scalar() -> None:
    with pytest.raises(InputError, match="object of keyword arguments"):
        bind(two, 5)


def test_unknown_and_missing_arguments_are_named() -> None:
    with pytest.raises(InputError, match=r"unexpected arguments \['c'\]"):
        bind(two, {"a": 1, "c": 3})
    with pytest.raises(InputError, match=r"missing required arguments \['a'\]"):
        bind(two, {"b": 1})


def test_annotated_parameters_are_validated_and_converted() -> None:
    assert bind(typed, {"a": "3", "b": ["x"]}) == ((), {"a": 3, "b": ["x"]})
    with pytest.raises(InputError, match=r"b\.0: Input should be a valid string"):
        bind(typed, {"a": 1, "b": [1]})


def test_extra_keyword_arguments_go_to_var_kwargs() -> None:
    assert bind(rest, {"a": 1, "z": 2}) == ((), {"a": 1, "z": 2})


def test_the_input_schema_describes_the_arguments() -> None:
    schema = InputBinder(typed, "typed").schema
    assert schema is not None
    assert schema["required"] == ["a", "b"]
    assert schema["properties"]["a"]["type"] == "integer"


def test_an_untyped_single_parameter_has_no_schema() -> None:
    assert InputBinder(one, "one").schema is None


def test_a_function_without_ctx_is_refused() -> None:
    def no_ctx() -> None: ...

    with pytest.raises(TypeError, match="ctx"):
        InputBinder(no_ctx, "no_ctx")


# -- an input that spells a call: {"$args": [...], "$kwargs": {...}} (tether.arq) -------


async def star(ctx: dict[str, Any], a: int, b: int, *more: int) -> None: ...


def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"$args": list(args), "$kwargs": kwargs}


def test_a_call_passes_one_parameter_by_position_or_by_name() -> None:
    assert bind(model, call({"x": 1, "y": 2})) == ((Point(x=1, y=2),), {})
    assert bind(one, call(value=[1])) == (([1],), {})


def test_a_call_with_one_parameter_keeps_its_default_when_given_nothing() -> None:
    assert bind(one_default, call()) == ((), {})


def test_a_call_with_two_values_for_one_parameter_is_an_input_error() -> None:
    with pytest.raises(InputError, match="takes one argument"):
        bind(one, call(1, 2))


def test_a_call_fills_positional_parameters_then_star_args() -> None:
    assert bind(star, call(1, 2, 3, 4)) == ((1, 2, 3, 4), {})


def test_a_call_mixes_positional_and_keyword_arguments() -> None:
    assert bind(two, call(1, b=5)) == ((), {"a": 1, "b": 5})


def test_a_call_is_validated_by_the_annotations() -> None:
    with pytest.raises(InputError, match="b"):
        bind(typed, call(1, b="not a list"))


def test_a_call_to_a_function_without_parameters_takes_no_arguments() -> None:
    assert bind(none, call()) == ((), {})
    with pytest.raises(InputError, match="takes no arguments"):
        bind(none, call(1))


def test_a_malformed_call_is_an_input_error() -> None:
    with pytest.raises(InputError, match="must be an array"):
        bind(two, {"$args": {"a": 1}, "$kwargs": {}})


def test_an_object_with_other_keys_is_not_a_call() -> None:
    assert bind(rest, {"a": 1, "$args": []}) == ((), {"a": 1, "$args": []})
