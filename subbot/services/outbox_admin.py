"""An operator's hand on a failed or dead outbox job: retry it now, or cancel it for good; both audited.

A job is *failed* while it waits for another try after a failed one (state ``pending``, attempts > 0)
and *dead* once the worker gave up (``dead``). Each action is one conditional UPDATE that still requires
the state the admin saw (and, when given, the attempts count they saw): when a worker claimed the job
or another admin acted first, the rowcount is 0 and nothing changes, so no job is acted on twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store.models import OutboxJob

ACTIONABLE = ("failed", "dead")


class JobActionRefused(Exception):
    """Why the job was left as it is, worded for the operator."""


def _in_state(state: str) -> Any:
    if state == "failed":
        return and_(OutboxJob.state == "pending", OutboxJob.attempts > 0)
    if state == "dead":
        return OutboxJob.state == "dead"
    raise JobActionRefused(f"only failed or dead jobs can be retried or cancelled, not {state[:16]!r} ones")


async def _explain(session: AsyncSession, job_id: int, seen: str) -> JobActionRefused:
    job = await session.get(OutboxJob, job_id)
    if job is None:
        return JobActionRefused(f"there is no outbox job {job_id}")
    now_state = "failed" if job.state == "pending" and job.attempts > 0 else job.state
    if now_state == seen:
        return JobActionRefused(f"job {job_id} was tried again since you looked; reload the page")
    return JobActionRefused(f"job {job_id} is {now_state} now (it was {seen}); nothing was changed")


async def _act(
    ctx: ServiceContext,
    job_id: int,
    seen: str,
    attempts: int | None,
    actor: str,
    action: str,
    values: dict[str, Any],
) -> OutboxJob:
    where = [OutboxJob.id == job_id, _in_state(seen)]
    if attempts is not None:
        where.append(OutboxJob.attempts == attempts)
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        result = await session.execute(
            update(OutboxJob)
            .where(*where)
            .values(**values, locked_by=None, locked_until=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise await _explain(session, job_id, seen)
        job = await session.get(OutboxJob, job_id)
        assert job is not None
        target = job.payload.get("user_id")
        audit(
            session,
            now,
            actor,
            action,
            target if isinstance(target, int) and target > 0 else None,
            job_id=job_id,
            kind=job.kind,
            key=job.key,
            was=seen,
            attempts=job.attempts,
        )
        if action == "outbox_retry":
            session.info["outbox_queued"] = True  # wakes this instance's worker after the commit
    return job


async def retry_job(
    ctx: ServiceContext, job_id: int, *, seen: str, actor: str, attempts: int | None = None
) -> OutboxJob:
    """Back to pending, due now; attempts kept (a job that had used them all gets one more try)."""
    return await _act(
        ctx, job_id, seen, attempts, actor, "outbox_retry", {"state": "pending", "run_at": ctx.clock.now()}
    )


async def cancel_job(
    ctx: ServiceContext, job_id: int, *, seen: str, actor: str, attempts: int | None = None
) -> OutboxJob:
    """Marked ``cancelled``: no worker picks it again. Its last error stays on the row, to show why."""
    return await _act(ctx, job_id, seen, attempts, actor, "outbox_cancel", {"state": "cancelled"})
