"""Data integrity checks: what should never be true of subbot's data, found and explained.

Every check reads inside one consistent snapshot. ``--fix`` performs ONE kind of repair, the only one
that is safe without a human: dead ``grant_access`` jobs that died of retryable errors (they used up
every attempt, so each failure was transient by the worker's own classification) and whose member still
has access now (active subscription or whitelist) are put back to ``pending`` with their attempts reset,
and each requeue is written to the audit log. Nothing is ever deleted; payments are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from subbot.ops.data.common import snapshot
from subbot.ops.data.integrity_checks import CHECKS, Check, CheckContext, Finding
from subbot.store.db import Database
from subbot.store.models import (
    AuditEntry,
    OutboxJob,
    Subscription,
    User,
)
from subbot.store.subscriptions import active_at

__all__ = ["CHECKS", "Check", "Finding", "IntegrityReport", "render", "verify_integrity"]
FIX_ACTOR = "verify_data_integrity --fix"


@dataclass
class IntegrityReport:
    checked_at: str
    checks: list[Check] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(len(c.findings) for c in self.checks)

    @property
    def clean(self) -> bool:
        return self.problems == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["clean"] = self.clean
        return data


async def verify_integrity(
    db: Database,
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(hours=24),
    exempt_user_ids: Sequence[int] = (),
    fix: bool = False,
    limit: int = 200,
) -> IntegrityReport:
    """Run every check; with ``fix``, then perform the safe repair described in the module docstring."""
    now = now or datetime.now(UTC)
    report = IntegrityReport(now.isoformat())
    report.checks = await _run_checks(db, _Params(now, grace, frozenset(exempt_user_ids), limit))
    if fix:
        report.fixed = await requeue_dead_grants(db, now)
        if report.fixed:  # report what is left
            report.checks = await _run_checks(db, _Params(now, grace, frozenset(exempt_user_ids), limit))
    return report


@dataclass(frozen=True)
class _Params:
    now: datetime
    grace: timedelta
    exempt: frozenset[int]
    limit: int


async def _run_checks(db: Database, p: _Params) -> list[Check]:
    checks = []
    async with snapshot(db) as conn:
        c = CheckContext(conn, p.now, p.grace, p.exempt, p.limit)
        for name, title, run in CHECKS:
            check = Check(name, title)
            await run(c, check)
            checks.append(check)
    return checks


async def requeue_dead_grants(db: Database, now: datetime) -> list[str]:
    done: list[str] = []
    async with db.write() as session:
        jobs = (
            await session.scalars(
                select(OutboxJob)
                .where(
                    OutboxJob.state == "dead",
                    OutboxJob.kind == "grant_access",
                    OutboxJob.attempts >= OutboxJob.max_attempts,
                )
                .order_by(OutboxJob.id)
            )
        ).all()
        for job in jobs:
            user_id = job.payload.get("user_id")
            if not isinstance(user_id, int):
                continue
            user = await session.get(User, user_id)
            active = await session.scalar(
                select(Subscription.id).where(Subscription.user_id == user_id, active_at(now)).limit(1)
            )
            if user is None or not (user.is_whitelisted or active is not None):
                continue
            await session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == job.id, OutboxJob.state == "dead")
                .values(
                    state="pending", attempts=0, run_at=now, locked_by=None, locked_until=None, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )
            session.add(
                AuditEntry(
                    at=now, actor=FIX_ACTOR, action="outbox_requeue", target_user_id=user_id,
                    details={"job": job.id, "key": job.key, "last_error": (job.last_error or "")[:200]},
                )
            )  # fmt: skip
            done.append(f"requeued dead grant_access job {job.id} ({job.key}) for user {user_id}")
    return done


def render(report: IntegrityReport) -> list[str]:
    """The report as plain text lines."""
    lines = [f"Data integrity at {report.checked_at}:"]
    for check in report.checks:
        mark = "ok " if not check.findings else "FAIL"
        more = " (more not listed)" if check.truncated else ""
        lines.append(f"  [{mark}] {check.title}: {len(check.findings)}{more}")
        lines.extend(f"         - {f.subject}: {f.detail}" for f in check.findings)
    for fixed in report.fixed:
        lines.append(f"  fixed: {fixed}")
    lines.append("clean" if report.clean else f"{report.problems} problem(s) found")
    return lines
