"""Fixtures of the queue engine's tests (helpers live in queue_helpers.py)."""

from __future__ import annotations

import pytest

from tether.queue.config import QueueConfig
from tether.queue.keys import Keys, PartitionKeys


@pytest.fixture
def pk(keys: Keys) -> PartitionKeys:
    return keys.partition(0)


@pytest.fixture
def config(keys: Keys) -> QueueConfig:
    """These tests read the job timelines to see which moves the scripts made."""
    return QueueConfig(keys=keys, job_timelines=True)
