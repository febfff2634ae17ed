"""Inputs checked at the door: POST /v1/jobs refuses (422, naming the field) an input the
JSON schema of its function refuses, and enqueues nothing; what pydantic on the worker
would still convert is let through."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import pytest
from api_helpers import Register, error_of

from tether.api.input_check import lenient, validator_for

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "admin": {"type": "boolean"},
    },
    "required": ["name"],
    "additionalProperties": False,
}


async def submit(client: httpx.AsyncClient, input: Any, function: str = "greet") -> httpx.Response:
    return await client.post("/v1/jobs", json={"function": function, "input": input})


async def queued(client: httpx.AsyncClient) -> int:
    functions = (await client.get("/v1/functions")).json()["functions"]
    return sum(f["queued"] for f in functions)


@pytest.fixture
async def greet(register: Register) -> None:
    await register("greet", input_schema=PERSON)


@pytest.mark.usefixtures("greet")
async def test_a_field_of_the_wrong_type_is_422_naming_it_and_nothing_is_enqueued(
    client: httpx.AsyncClient,
) -> None:
    response = await submit(client, {"name": 5})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert error["message"] == "input.name must be string (the input schema of 'greet')"
    assert error["details"]["fields"] == [
        {"field": "input.name", "message": "input.name must be string", "rule": "type"}
    ]
    assert await queued(client) == 0


@pytest.mark.usefixtures("greet")
async def test_a_missing_required_field_is_422(client: httpx.AsyncClient) -> None:
    response = await submit(client, {"age": 3})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["rule"] == "required"
    assert "['name']" in error_of(response)["message"]


@pytest.mark.usefixtures("greet")
async def test_a_field_the_schema_does_not_know_is_422(client: httpx.AsyncClient) -> None:
    response = await submit(client, {"name": "ada", "nickname": "a"})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["rule"] == "additionalProperties"


@pytest.mark.usefixtures("greet")
async def test_a_value_out_of_range_is_422(client: httpx.AsyncClient) -> None:
    response = await submit(client, {"name": "ada", "age": -1})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "input.age"


@pytest.mark.usefixtures("greet")
async def test_an_input_the_schema_accepts_is_enqueued(client: httpx.AsyncClient) -> None:
    response = await submit(client, {"name": "ada", "age": 36, "admin": True})
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("greet")
@pytest.mark.parametrize(
    "input",
    [{"name": "ada", "age": "36"}, {"name": "ada", "age": 36.0}, {"name": "ada", "admin": "yes"}],
)
async def test_what_pydantic_would_still_convert_is_let_through_to_the_worker(
    client: httpx.AsyncClient, input: dict[str, Any]
) -> None:
    assert (await submit(client, input)).status_code == 201


@pytest.mark.usefixtures("greet")
async def test_a_batch_with_one_bad_input_is_refused_whole_naming_its_index(
    client: httpx.AsyncClient,
) -> None:
    jobs = [{"function": "greet", "input": {"name": "ada"}}, {"function": "greet", "input": {}}]
    response = await client.post("/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "jobs.1.input"
    assert await queued(client) == 0


@pytest.mark.usefixtures("greet")
async def test_a_submit_that_waits_is_checked_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/jobs", params={"wait": 1}, json={"function": "greet", "input": {"name": 5}}
    )
    assert response.status_code == 422


async def test_a_function_without_a_schema_takes_any_input(
    client: httpx.AsyncClient, register: Register
) -> None:
    await register("loose")
    assert (await submit(client, {"anything": [1, "x"]}, "loose")).status_code == 201


async def test_a_property_named_like_a_keyword_is_checked_as_a_property(
    client: httpx.AsyncClient, register: Register
) -> None:
    schema = {"type": "object", "properties": {"type": {"type": "string"}}}
    await register("typed", input_schema=schema)
    response = await submit(client, {"type": 5}, "typed")
    assert response.status_code == 422
    assert error_of(response)["details"]["fields"][0]["field"] == "input.type"


class Listener:
    """A TCP port that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.parametrize("key", ["$ref", "$id"])
async def test_a_schema_pointing_outside_itself_is_never_fetched_and_not_checked_here(
    client: httpx.AsyncClient, register: Register, key: str
) -> None:
    # A machine registering a schema must not make the API fetch URLs (SSRF).
    listener = Listener()
    try:
        url = f"http://127.0.0.1:{listener.port}/schema.json"
        schema = {"type": "object", "properties": {"a": {key: url}}}
        await register("remote", input_schema=schema)
        response = await submit(client, {"a": 1}, "remote")
    finally:
        listener.close()
    assert response.status_code == 201  # left to the worker's own check
    assert listener.connections == 0


def test_a_compiled_validator_is_cached_per_schema() -> None:
    first = validator_for({"type": "object", "required": ["x"]})
    assert first is not None
    assert validator_for({"required": ["x"], "type": "object"}) is first


def test_lenient_widens_only_types_that_pydantic_converts() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
        "$defs": {"B": {"type": "boolean"}},
        "anyOf": [{"type": "number"}],
    }
    wide = lenient(schema)
    assert wide["properties"]["n"]["type"] == ["integer", "number", "string"]
    assert wide["properties"]["s"]["type"] == "string"
    assert wide["$defs"]["B"]["type"] == ["boolean", "integer", "string"]
    assert wide["anyOf"][0]["type"] == ["number", "string"]
    assert schema["properties"]["n"]["type"] == "integer"  # the registered one is untouched
