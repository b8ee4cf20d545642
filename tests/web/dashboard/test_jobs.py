"""Jobs page over HTTP: failed and dead outbox jobs, Retry and Cancel (audited, never twice), both DBs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from subbot.store import outbox
from subbot.store.models import AuditEntry, OutboxJob
from tests.web.dashboard.conftest import Site, csrf_of


async def add_job(site: Site, key: str, state: str, attempts: int, **values: Any) -> int:
    """A job as the worker leaves it: failed = pending again after ``attempts`` tries."""
    now = site.clock.now()
    async with site.app.db.write() as session:
        await outbox.enqueue(session, "send_message", key, {"user_id": 4001, "text": f"<b>{key}</b>"}, now)
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.key == key)
            .values(state=state, attempts=attempts, last_error=f"error of {key}", **values)
        )
        job_id = await session.scalar(select(OutboxJob.id).where(OutboxJob.key == key))
    assert job_id is not None
    return int(job_id)


async def job(site: Site, job_id: int) -> OutboxJob:
    async with site.app.db.sessions() as session:
        row = await session.get(OutboxJob, job_id)
    assert row is not None
    return row


async def audits(site: Site, action: str) -> list[AuditEntry]:
    async with site.app.db.sessions() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


async def post(client: httpx.AsyncClient, job_id: int, action: str, **form: str) -> str:
    """Press a button on the Jobs page as a browser would; the flash message on the page after it."""
    page = await client.get("/dashboard/jobs")
    response = await client.post(
        f"/dashboard/jobs/{job_id}/{action}", data={"csrf_token": csrf_of(page.text), **form}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/dashboard/jobs?view=")
    after = (await client.get(response.headers["location"])).text
    start = after.index('<p class="flash')
    return after[start : after.index("</p>", start)]


async def test_the_list_shows_failed_and_dead_jobs(site: Site) -> None:
    await site.admin()
    later = site.clock.now() + timedelta(minutes=5)
    failed = await add_job(site, "job-failed", "pending", 2, run_at=later)
    dead = await add_job(site, "job-dead", "dead", 8)
    await add_job(site, "job-new", "pending", 0)
    await add_job(site, "job-done", "done", 1)
    cancelled = await add_job(site, "job-cancelled", "cancelled", 1)
    client = await site.signed_in()
    page = (await client.get("/dashboard/jobs")).text
    assert "2 jobs" in page
    assert "error of job-failed" in page and "error of job-dead" in page
    assert "job-new" not in page and "job-done" not in page and "job-cancelled" not in page
    assert (
        f'action="/dashboard/jobs/{failed}/retry"' in page
        and f'action="/dashboard/jobs/{dead}/cancel"' in page
    )
    assert "<b>job-dead</b>" not in page and "&lt;b&gt;job-dead&lt;/b&gt;" in page  # payloads are escaped
    only_dead = (await client.get("/dashboard/jobs", params={"view": "dead"})).text
    assert "error of job-dead" in only_dead and "error of job-failed" not in only_dead
    gone = (await client.get("/dashboard/jobs", params={"view": "cancelled"})).text
    assert "error of job-cancelled" in gone and f"/dashboard/jobs/{cancelled}/retry" not in gone
    bad = await client.get("/dashboard/jobs", params={"view": "everything", "page": "x"})
    assert bad.status_code == 200 and "unknown view" in bad.text


async def test_retry_runs_a_dead_job_now_and_keeps_its_attempts(site: Site) -> None:
    await site.admin()
    dead = await add_job(site, "job-dead", "dead", 8)
    site.clock.advance(timedelta(hours=1))
    client = await site.signed_in()
    site.app.ctx.outbox_wakeup.clear()
    flash = await post(client, dead, "retry", seen="dead", attempts="8", view="dead", page="1")
    assert f"Job {dead} (send_message) queued to run now" in flash
    row = await job(site, dead)
    assert (row.state, row.attempts, row.run_at) == ("pending", 8, site.clock.now())
    assert site.app.ctx.outbox_wakeup.is_set()  # this instance's worker is woken at once
    async with site.app.db.sessions() as session:
        assert dead in await outbox.due_ids(session, site.clock.now(), 10)
    [entry] = await audits(site, "outbox_retry")
    assert entry.actor == "dashboard:alice" and entry.target_user_id == 4001
    assert entry.details["job_id"] == dead and entry.details["was"] == "dead"


async def test_cancel_needs_the_tick_and_then_the_job_never_runs(site: Site) -> None:
    await site.admin()
    failed = await add_job(site, "job-failed", "pending", 3, run_at=site.clock.now() + timedelta(minutes=1))
    client = await site.signed_in()
    flash = await post(client, failed, "cancel", seen="failed", attempts="3")
    assert "Nothing done: tick" in flash and (await job(site, failed)).state == "pending"
    flash = await post(client, failed, "cancel", seen="failed", attempts="3", confirm="yes")
    assert f"Job {failed} (send_message) cancelled" in flash
    row = await job(site, failed)
    assert (row.state, row.attempts, row.last_error) == ("cancelled", 3, "error of job-failed")
    async with site.app.db.sessions() as session:
        assert failed not in await outbox.due_ids(session, site.clock.now() + timedelta(days=1), 10)
    assert [e.details["job_id"] for e in await audits(site, "outbox_cancel")] == [failed]


async def test_two_admins_cannot_act_twice_on_one_job(site: Site) -> None:
    await site.admin("alice")
    await site.admin("bob")
    failed = await add_job(site, "job-failed", "pending", 2)
    dead = await add_job(site, "job-dead", "dead", 8)
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob", ip="127.0.0.2")
    # Both look at the page; Alice cancels the failed job, then Bob's stale Retry form arrives.
    assert "cancelled" in await post(alice, failed, "cancel", seen="failed", attempts="2", confirm="yes")
    flash = await post(bob, failed, "retry", seen="failed", attempts="2")
    assert f"Nothing done: job {failed} is cancelled now (it was failed)" in flash
    assert (await job(site, failed)).state == "cancelled"
    # Alice retries the dead job; Bob's Cancel of it (it was dead when he looked) changes nothing.
    assert "queued to run now" in await post(alice, dead, "retry", seen="dead", attempts="8")
    flash = await post(bob, dead, "cancel", seen="dead", attempts="8", confirm="yes")
    assert "Nothing done" in flash and (await job(site, dead)).state == "pending"
    assert len(await audits(site, "outbox_retry")) == 1 and len(await audits(site, "outbox_cancel")) == 1


async def test_a_job_that_moved_on_is_left_alone(site: Site) -> None:
    await site.admin()
    failed = await add_job(site, "job-failed", "pending", 2)
    client = await site.signed_in()
    # The worker tried it again since the page was loaded (attempts 2 → 3, still failed).
    async with site.app.db.write() as session:
        await session.execute(update(OutboxJob).where(OutboxJob.id == failed).values(attempts=3))
    flash = await post(client, failed, "cancel", seen="failed", attempts="2", confirm="yes")
    assert "was tried again since you looked" in flash
    # A worker holds it right now.
    async with site.app.db.write() as session:
        await session.execute(update(OutboxJob).where(OutboxJob.id == failed).values(state="running"))
    flash = await post(client, failed, "retry", seen="failed", attempts="3")
    assert "is running now" in flash
    assert (await job(site, failed)).state == "running"
    # Bad input: unknown job, unknown state, a made-up count, an unknown action.
    assert "there is no outbox job 999" in await post(client, 999, "retry", seen="dead")
    assert "only failed or dead jobs" in await post(client, failed, "retry", seen="running")
    assert "not a number" in await post(client, failed, "retry", seen="failed", attempts="two")
    page = await client.get("/dashboard/jobs")
    response = await client.post(f"/dashboard/jobs/{failed}/delete", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 404 and "No such action" in response.text
    assert not await audits(site, "outbox_retry") and not await audits(site, "outbox_cancel")
