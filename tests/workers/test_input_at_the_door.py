"""The schema a worker registers says exactly what its binder takes, so the API's check at
the door refuses what could never bind and lets through every input that would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from tether import AsyncClient, ValidationFailed
from tether.workers import Worker


async def shout(ctx: dict[str, Any], text: str) -> str:
    return text.upper()


async def greet(ctx: dict[str, Any], name: str = "world") -> str:
    return f"hello, {name}"


async def add(ctx: dict[str, Any], a: int, b: int = 0) -> int:
    return a + b


async def defaults(ctx: dict[str, Any], a: int = 1, b: int = 2) -> int:
    return a + b


class Order(BaseModel):
    sku: str
    quantity: int


async def price(ctx: dict[str, Any], order: Order) -> int:
    return order.quantity * 3


async def test_an_object_for_a_single_str_parameter_is_refused_at_the_door(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(shout):
        with pytest.raises(ValidationFailed) as refused:
            await client.enqueue("shout", {"text": "hey"})
        assert await client.call("shout", "hey", wait=10) == "HEY"
    assert refused.value.message == "input must be string (the input schema of 'shout')"


async def test_a_wrong_field_type_of_a_model_parameter_is_refused_at_the_door(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(price):
        with pytest.raises(ValidationFailed) as refused:
            await client.enqueue("price", {"sku": 5, "quantity": 1})
    assert refused.value.details["fields"][0]["field"] == "input.sku"


@pytest.mark.parametrize(
    ("function", "input", "result"),
    [
        ("greet", None, "hello, world"),  # null: the default of the one parameter
        ("add", [1, 2], 3),  # an array: positional arguments
        ("add", {"a": 1}, 1),
        ("defaults", None, 3),  # null: every parameter has a default
    ],
)
async def test_every_input_the_binder_takes_passes_the_door(
    client: AsyncClient,
    make_worker: Callable[..., Worker],
    function: str,
    input: Any,
    result: Any,
) -> None:
    async with make_worker(greet, add, defaults):
        assert await client.call(function, input, wait=10) == result


async def test_null_for_required_arguments_is_refused_at_the_door(
    client: AsyncClient, make_worker: Callable[..., Worker]
) -> None:
    async with make_worker(add):
        with pytest.raises(ValidationFailed):
            await client.enqueue("add", None)
