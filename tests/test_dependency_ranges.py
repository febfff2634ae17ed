"""pyproject's ranges say what is tested: every lower bound is pinned in
constraints/oldest.txt (the fast suite runs on those), and every range stops below the
next major version, which nobody has tested."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _tested_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # The bench extra holds the peers, measured in a venv of their own, never tested here.
    return [
        Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def _oldest_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints" / "oldest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = Version(version)
    return pins


def test_every_lower_bound_is_pinned_in_the_oldest_constraints() -> None:
    pins = _oldest_pins()
    for req in _tested_requirements():
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert lower, f"{req} has no lower bound"
        assert pins.get(req.name.lower()) == lower[0], (
            f"constraints/oldest.txt must pin {req.name}=={lower[0]} (pyproject: {req})"
        )


def test_every_range_stops_below_an_untested_major_version() -> None:
    for req in _tested_requirements():
        assert any(s.operator == "<" for s in req.specifier), f"{req} has no upper bound"


def test_the_oldest_constraints_pin_nothing_pyproject_does_not_ask_for() -> None:
    asked = {req.name.lower() for req in _tested_requirements()}
    assert set(_oldest_pins()) <= asked
