"""Log lines of jobs and runs: one storage for both.

A job's captured ``logging`` lines live in the stream ``{t:p}:jlogs:<job id>``; a run's
(its workflow's ``ctx.log`` lines and the captured ``logging`` of its activations and
their steps) in ``{t:p}:logs:<run id>``. Both are in the record's partition (its hash
tag), bounded by ``MAXLEN ~`` (a job's by ``QueueConfig.log_maxlen``, a run's by its
``maxlen``), and expire with their record: when the job or run finishes its scripts give
the stream the record's retention, and lines that arrive later get the record's
remaining time (lua/ingest_logs.lua). The stream entry id is the read cursor.

Writes come from machines only, through one script per job (``ingest_logs``), which
checks that the machine holds or last held that job under that token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.exceptions import NoScriptError

from tether.errors import NotFound
from tether.queue.config import QueueConfig
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import load_scripts, script_source
from tether.queue.wire import pipelined

OK, MISSING, NOT_HELD = 1, -1, -2


@dataclass(frozen=True, slots=True)
class LogIngest:
    """One job's batch: its lines already encoded (JSON objects), and how many lines
    the machine dropped for it."""

    job_id: str
    token: str
    lines: Sequence[str]
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class IngestVerdict:
    job_id: str
    accepted: bool
    trimmed: int = 0
    reason: str | None = None  # "not_found" | "lease_not_held"


@dataclass(frozen=True, slots=True)
class StoredLine:
    cursor: str  # the stream entry id
    at_ms: int  # when the API stored it
    line: dict[str, Any]  # the JSON object the machine (or ctx.log) wrote
    run: str | None  # set on a run's stream
    captured: bool  # from Python logging (event "logging"), else a ctx.log line


@dataclass(frozen=True, slots=True)
class LogRead:
    lines: list[StoredLine]
    dropped: int  # reported by machines whose buffer was full
    trimmed: int  # cut off the stream's far end by its bound
    status: str  # the record's status ("" if it is gone)


class LogStore:
    """Ingest and read the log streams of one namespace's jobs and runs."""

    def __init__(self, redis: Client, config: QueueConfig) -> None:
        self.redis = redis
        self.config = config
        self.keys = config.keys
        self._ingest = redis.register_script(script_source("ingest_logs"))

    async def ingest(self, machine: str, batches: Sequence[LogIngest]) -> list[IngestVerdict]:
        """Store each job's lines if ``machine`` holds or last held the job under its
        token; each batch is judged on its own (one script call per partition, all in one
        round trip)."""
        if not batches:
            return []
        maxlen = self.config.log_maxlen
        # One script call per partition for all its jobs (what makes a batch cheap).
        groups: dict[int, list[int]] = {}
        for n, b in enumerate(batches):
            groups.setdefault(self.keys.partition_of(b.job_id), []).append(n)
        calls: list[tuple[Any, ...]] = []
        for partition, members in groups.items():
            pk = self.keys.partition(partition)
            args: list[Any] = [pk.prefix, machine, maxlen]
            for n in members:
                b = batches[n]
                args += [b.job_id, b.token, b.dropped, len(b.lines), *b.lines]
            first = pk.job(batches[members[0]].job_id)
            calls.append(("EVALSHA", self._ingest.sha, 1, first, *args))
        with redis_errors():
            # As the engine's batches: one round trip (cluster-safe, hiredis packing); a
            # call refused with NOSCRIPT ran nothing, so the scripts are loaded and it is
            # sent again.
            answers = await pipelined(self.redis, calls)
            missing = [i for i, a in enumerate(answers) if isinstance(a, NoScriptError)]
            if missing:
                await load_scripts(self.redis)
                again = await pipelined(self.redis, [calls[i] for i in missing])
                for i, answer in zip(missing, again, strict=True):
                    answers[i] = answer
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
        replies: list[list[Any]] = [[]] * len(batches)
        for members, answer in zip(groups.values(), answers, strict=True):
            for n, reply in zip(members, answer, strict=True):
                replies[n] = reply
        out: list[IngestVerdict] = []
        for b, (code, value) in zip(batches, replies, strict=True):
            code = int(code)
            if code == OK:
                out.append(IngestVerdict(b.job_id, True, trimmed=int(value)))
            else:
                reason = "not_found" if code == MISSING else "lease_not_held"
                out.append(IngestVerdict(b.job_id, False, reason=reason))
        return out

    async def read(
        self, kind: str, record_id: str, *, after: str | None = None, limit: int = 100
    ) -> LogRead:
        """Up to ``limit`` lines of job (``kind`` "job") or run (``kind`` "run")
        ``record_id`` after cursor ``after`` (from the start without), oldest first.
        NotFound if the record is gone."""
        pk = self.keys.for_id(record_id)
        if kind == "run":
            record, stream = pk.run(record_id), pk.logs(record_id)
        else:
            record, stream = pk.job(record_id), pk.job_logs(record_id)
        start = f"({after}" if after else "-"
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(record, ["status", "logs_dropped", "logs_trimmed"])
                pipe.xrange(stream, min=start, count=limit)
                head, rows = await pipe.execute()
        status, dropped, trimmed = cast(list[str | None], head)
        if status is None:
            raise NotFound(f"no {kind} {record_id}", details={"id": record_id})
        lines = []
        for entry_id, fields in cast(list[tuple[str, dict[str, str]]], rows):
            try:
                line = orjson.loads(fields.get("line", "{}"))
            except orjson.JSONDecodeError:
                line = {"message": fields.get("line", "")}
            if not isinstance(line, dict):
                line = {"message": str(line)}
            at = fields.get("at") or entry_id.split("-", 1)[0]
            captured = fields.get("event") == "logging"
            lines.append(StoredLine(entry_id, int(at), line, fields.get("run"), captured))
        return LogRead(lines, int(dropped or 0), int(trimmed or 0), status)
