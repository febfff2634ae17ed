"""The public API: what `import tether` offers is exactly what `tether.__all__` lists."""

from __future__ import annotations

import inspect
import types

import tether
import tether.workers
from tether.client import AsyncClient, Client


def public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_tether_all_matches_what_the_package_exports() -> None:
    assert set(tether.__all__) - {"__version__"} == public_names(tether)


def test_tether_all_names_exist_and_are_sorted() -> None:
    assert all(hasattr(tether, name) for name in tether.__all__)
    assert tether.__all__ == sorted(tether.__all__)


def test_tether_workers_all_matches_what_it_exports() -> None:
    assert set(tether.workers.__all__) == public_names(tether.workers)


def test_every_async_client_method_has_a_blocking_twin_with_its_signature() -> None:
    for name, method in inspect.getmembers(AsyncClient, inspect.iscoroutinefunction):
        if name.startswith("_") or name == "aclose":  # Client.close is its twin
            continue
        twin = getattr(Client, name, None)
        assert twin is not None, f"Client.{name} is missing"
        assert inspect.signature(twin) == inspect.signature(method), name
