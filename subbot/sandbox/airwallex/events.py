"""Records of the webhook side: stored events, delivery attempts, switches and the per-URL queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """One POST of an event. ``status_code`` is None on a network error or a timeout (see ``error``).

    ``copy`` is 1..duplicates for normal deliveries and 0 for :meth:`Webhooks.redeliver`;
    ``attempt`` counts from 1 within one copy.
    """

    event_id: str
    attempt: int
    status_code: int | None
    at: float
    name: str = ""
    url: str = ""
    copy: int = 1
    timestamp: str = ""
    error: str | None = None

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoredEvent:
    id: str
    name: str
    envelope: dict[str, Any]
    body: bytes  # the exact bytes POSTed (and signed) on every attempt


@dataclass
class WebhookMode:
    duplicates: int = 1
    out_of_order: bool = False
    delay: float = 0.0
    drop: bool = False
    concurrent: bool = False
    hold: float = 1.0  # out_of_order: a held batch is released after this many seconds at the latest


@dataclass
class Job:
    seq: int
    event: StoredEvent
    url: str
    copy: int
    not_before: float  # loop time
    concurrent: bool
    attempt: int = 1


@dataclass
class Queue:
    jobs: list[Job] = field(default_factory=list)  # kept in seq order
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: int = 0

    def put(self, job: Job) -> None:
        index = next((i for i, j in enumerate(self.jobs) if j.seq > job.seq), len(self.jobs))
        self.jobs.insert(index, job)
        self.wake.set()
