"""Fixtures of the queue engine's tests (helpers live in queue_helpers.py)."""

from __future__ import annotations

import pytest

from tether.queue.keys import Keys, PartitionKeys


@pytest.fixture
def pk(keys: Keys) -> PartitionKeys:
    return keys.partition(0)
