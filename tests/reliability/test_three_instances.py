"""Three `subbot run` processes on one PostgreSQL share the sweeps and the outbox: every effect happens once.

Design (Subscription lifecycle §5):

* Three real OS processes running the `subbot run` command (``subbot.cli.main`` with argv ``run`` and
  only our environment; webhook mode, each on its own port with PUBLIC_URL pointing at itself), not three
  app objects in one event loop: nothing is shared between them but the database and the Telegram sandbox
  (no module state, no ``outbox_wakeup`` event, no engine or pool, no event loop).  They are forked from a
  multiprocessing fork server that imported subbot once: three fresh interpreters would each spend
  seconds of CPU importing aiogram, which made start-up alone take 15-60 s on a busy 2-core machine.
  The sandbox runs in this test process on 127.0.0.1; only one webhook URL is kept per bot token (the
  last instance to register wins), which does not matter here: sweeps and the outbox are under test.
* The processes run on the system clock, so the work is seeded relative to the real time: subscriptions
  that ended beyond the grace, and reminders already due (``next_reminder_at`` in the past).  The seed is
  committed only after all three answer ``/health`` (workers and scheduler running): seeded before the
  start, the first process to finish importing would do everything before the others exist.
* Who performed which job is recorded by a test-only trigger on ``outbox_jobs`` that logs every claim
  (``attempts`` going up) with the claiming worker's name (``host:pid:…``); ``locked_by`` itself is
  cleared when a job finishes.
* The processes are stopped (SIGTERM) before the final assertions, so nothing can still happen after
  them; the assertions use the sandbox's record of every Bot API call and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from subbot.domain.plans import load_plans
from subbot.sandbox.telegram import TelegramSandbox
from subbot.store import plans as plan_store
from subbot.store.db import Database, create_database
from subbot.store.migrate import upgrade
from subbot.store.models import Membership, OutboxJob, Subscription, User
from tests.conftest import postgres_or_skip
from tests.reliability.conftest import run_instance

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

TOKEN = "777003:reliability-sandbox-token-not-a-secret-abc"
INSTANCES = 3
EXPIRED, REMINDED, WHITELISTED, LIFETIME = 30, 30, 3, 3
GRACE_HOURS = 24
START_TIMEOUT = 90.0  # generous ceilings for a busy machine; an idle one needs a fraction of them
WORK_TIMEOUT = 45.0

CLAIM_LOG = (
    "CREATE TABLE test_outbox_claims ("
    " job_id bigint NOT NULL, worker text, attempts int NOT NULL, at timestamptz DEFAULT clock_timestamp())",
    "CREATE FUNCTION test_log_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO test_outbox_claims (job_id, worker, attempts) VALUES (NEW.id, NEW.locked_by, NEW.attempts);"
    " RETURN NULL; END $$",
    "CREATE TRIGGER test_log_claim AFTER UPDATE ON outbox_jobs FOR EACH ROW"
    " WHEN (NEW.attempts > OLD.attempts) EXECUTE FUNCTION test_log_claim()",
)


@pytest.fixture
def backend() -> str:
    """This test is about PostgreSQL only (several processes on one database)."""
    postgres_or_skip()
    return "postgres"


@dataclass
class People:
    group: int
    admin: int
    expired: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)
    whitelisted: list[int] = field(default_factory=list)
    lifetime: list[int] = field(default_factory=list)

    @property
    def ending(self) -> list[int]:
        """Everyone whose subscription ends in this run (the admin too: only Telegram's answer protects)."""
        return [*self.expired, self.admin]

    @property
    def untouched(self) -> list[int]:
        return [*self.whitelisted, *self.lifetime]


@dataclass
class Instance:
    number: int
    port: int
    proc: BaseProcess
    output: Path

    def tail(self, lines: int = 40) -> str:
        content = self.output.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- instance {self.number} (pid {self.proc.pid}) ---\n" + "\n".join(content[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.1)


def _env(db_url: str, api_url: str, port: int, people: People, tmp: Path, number: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(
        PYTHONUNBUFFERED="1",
        DATABASE_URL=db_url,
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        HOST="127.0.0.1",
        PORT=str(port),
        GROUP_ID=str(people.group),
        ADMIN_IDS=str(people.admin),
        SWEEP_INTERVAL_SECONDS="1",
        EXPIRY_GRACE_HOURS=str(GRACE_HOURS),
        REMINDER_OFFSETS_DAYS="3,1",
        LOCK_DIR=str(tmp / f"lock-{number}"),
        LOG_DIR=str(tmp / f"logs-{number}"),
        DATA_DIR=str(tmp / f"data-{number}"),
        LOG_LEVEL="INFO",
        ENVIRONMENT="test",
    )
    return env


FORKSERVER_PRELOAD = ["tests.reliability.conftest", "subbot.cli", "subbot.app", "subbot.runner"]


def start_fork_server() -> None:
    """Start (once per test session) the fork server; it imports subbot before it forks the first child."""
    forkserver.set_forkserver_preload(FORKSERVER_PRELOAD)
    forkserver.ensure_running()


@contextlib.asynccontextmanager
async def instances(db_url: str, api_url: str, people: People, tmp: Path) -> AsyncIterator[list[Instance]]:
    """Start ``INSTANCES`` `subbot run` processes; SIGTERM them at the end and wait for them to exit."""
    mp = multiprocessing.get_context("forkserver")
    await asyncio.to_thread(start_fork_server)
    started: list[Instance] = []
    try:
        for number in range(1, INSTANCES + 1):
            port = free_port()
            for sub in ("lock", "logs", "data"):
                (tmp / f"{sub}-{number}").mkdir()
            output = tmp / f"instance-{number}.out"
            env = _env(db_url, api_url, port, people, tmp, number)
            proc = mp.Process(target=run_instance, args=(env, str(tmp), str(output)), name=f"subbot-{number}")
            await asyncio.to_thread(proc.start)  # the first waits until the fork server has imported
            started.append(Instance(number, port, proc, output))
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def all_healthy() -> bool:
                for inst in started:
                    if inst.proc.exitcode is not None:
                        raise AssertionError(f"instance {inst.number} exited early\n{inst.tail()}")
                    try:
                        response = await client.get(f"http://127.0.0.1:{inst.port}/health")
                    except httpx.HTTPError:
                        return False
                    if response.status_code != 200:
                        return False
                return True

            try:
                await poll(all_healthy, START_TIMEOUT, "three instances healthy")
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n" + "\n".join(i.tail() for i in started)) from None
        yield started
    finally:
        for inst in started:
            if inst.proc.exitcode is None:
                inst.proc.terminate()  # SIGTERM: uvicorn shuts down, then the app stops its workers
        for inst in started:
            await asyncio.to_thread(inst.proc.join, 20)
            if inst.proc.exitcode is None:
                inst.proc.kill()
                await asyncio.to_thread(inst.proc.join)


def cast(sandbox: TelegramSandbox, group: int) -> People:
    """The people in the sandbox: all in the group, all have written to the bot once."""
    bot = sandbox.world.bot_for(TOKEN)

    def person(name: str, *, admin: bool = False) -> int:
        uid = sandbox.add_user(name, username=name.lower())
        if admin:
            sandbox.set_admin(group, uid, can_invite_users=False, can_restrict_members=False)
        else:
            sandbox.add_member(group, uid)
        bot.started_by.add(uid)  # so the bot may write to them
        return uid

    people = People(group=group, admin=person("Admin", admin=True))
    people.expired = [person(f"Gone{i}") for i in range(EXPIRED)]
    people.reminded = [person(f"Soon{i}") for i in range(REMINDED)]
    people.whitelisted = [person(f"Vip{i}") for i in range(WHITELISTED)]
    people.lifetime = [person(f"Forever{i}") for i in range(LIFETIME)]
    return people


async def seed(db: Database, people: People) -> None:
    """Users, subscriptions and memberships, as if the bot had been running for a while."""
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=20)
    users: list[User] = []
    rows: list[Any] = []

    def person(uid: int, ends_at: datetime | None, next_reminder: datetime | None, vip: bool = False) -> None:
        users.append(
            User(id=uid, first_name=f"U{uid}", is_whitelisted=vip, created_at=long_ago, updated_at=long_ago)
        )
        rows.append(
            Membership(
                user_id=uid, chat_id=people.group, state="joined", source="invite", updated_at=long_ago
            )
        )
        rows.append(
            Subscription(user_id=uid, plan_code="basic", starts_at=long_ago, ends_at=ends_at, status="active",
                         source="payment", next_reminder_at=next_reminder, created_at=long_ago,
                         updated_at=long_ago)
        )  # fmt: skip

    # Distinct moments, as real purchases have: the sweeps order by them.
    beyond_grace = now - timedelta(hours=GRACE_HOURS, minutes=30)
    for i, uid in enumerate(people.expired):
        person(uid, beyond_grace - timedelta(seconds=i), None)
    person(people.admin, beyond_grace - timedelta(seconds=EXPIRED), None)
    for i, uid in enumerate(people.reminded):  # ends in 2 days: the 3-day reminder is due
        person(uid, now + timedelta(days=2, seconds=i), now - timedelta(minutes=1, seconds=i))
    for i, uid in enumerate(people.whitelisted):  # one ended long ago, one with a reminder due, …
        if i % 2:
            person(uid, beyond_grace - timedelta(minutes=i), None, vip=True)
        else:
            person(uid, now + timedelta(days=2), now - timedelta(minutes=2, seconds=i), vip=True)
    for uid in people.lifetime:
        person(uid, None, None)
    async with db.write() as session:
        session.add_all(users)
        await session.flush()
        session.add_all(rows)


def _uid(call: Any, key: str) -> int | None:
    value = call.params.get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def test_three_instances_share_sweeps_and_outbox_and_do_everything_once(
    db_url: str, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    t_begin = loop.time()
    fork_server = asyncio.create_task(asyncio.to_thread(start_fork_server))  # imports while we set up
    db = create_database(db_url)
    await upgrade(db)
    async with db.write() as session:
        for statement in CLAIM_LOG:
            await session.execute(text(statement))

    sandbox = TelegramSandbox()
    bot_id = sandbox.add_bot(TOKEN, username="subbot_reliability_bot")
    owner = sandbox.add_user("Owner", username="owner")
    group = sandbox.add_group("Members", owner_id=owner)
    sandbox.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    # Telegram answers in tens of milliseconds, not instantly: with that, no single instance can drain
    # its claimed batch before the others poll, even on a loaded machine, so the sharing check is fair.
    sandbox.faults.delay(0.05, methods=["banChatMember", "unbanChatMember", "sendMessage", "getChatMember"])
    people = cast(sandbox, group)
    async with db.write() as session:  # plans exist before any member refers to them
        await plan_store.sync(session, load_plans(None, (group,)), datetime.now(UTC))

    expected_jobs = Counter(kick=EXPIRED + 1, send_message=EXPIRED + 1, remind=REMINDED)
    await fork_server
    fork_seconds = loop.time() - t_begin
    try:
        async with sandbox.serve() as api_url:
            t_start = loop.time()
            async with instances(db_url, api_url, people, tmp_path) as running:
                t0 = loop.time()
                start_seconds = t0 - t_start
                await seed(db, people)

                async def settled() -> bool:
                    now = datetime.now(UTC)
                    async with db.sessions() as s:
                        by_state = select(OutboxJob.state, func.count()).group_by(OutboxJob.state)
                        jobs = {state: count for state, count in (await s.execute(by_state)).all()}
                        overdue = await s.scalar(
                            select(func.count())
                            .select_from(Subscription)
                            .where(
                                Subscription.status == "active",
                                (Subscription.ends_at <= now - timedelta(hours=GRACE_HOURS))
                                | (Subscription.next_reminder_at <= now),
                            )
                        )
                    return (
                        overdue == 0
                        and sum(jobs.values()) >= sum(expected_jobs.values())
                        and not jobs.keys() & {"pending", "running"}
                    )

                try:
                    await poll(settled, WORK_TIMEOUT, "sweeps done and outbox drained")
                except TimeoutError as exc:
                    raise AssertionError(f"{exc}\n" + "\n".join(i.tail() for i in running)) from None
                work_seconds = loop.time() - t0
                pids = {inst.proc.pid for inst in running}
                t_stop = loop.time()
            stop_seconds = loop.time() - t_stop
            # All three processes have exited here: nothing more can happen.
            outputs = {inst.number: inst.output.read_text(errors="replace") for inst in running}
            exits = {inst.number: inst.proc.exitcode for inst in running}

        assert all(code in (0, -signal.SIGTERM) for code in exits.values()), exits
        for number, out in outputs.items():
            assert "subbot started in webhook mode" in out, out[-3000:]
            assert "Traceback" not in out and " ERROR " not in out, f"instance {number}:\n{out[-4000:]}"
        assert sandbox.violations == [], sandbox.violations

        # --- Telegram: every effect once, on the right people only -------------------------------------
        calls = sandbox.calls
        assert [c for c in calls if not c.ok] == []
        assert Counter(c.method for c in calls)["setWebhook"] == INSTANCES  # each one in webhook mode
        # Removals look the chat's administrators up once per instance (cached), not each member.
        looked_up = Counter(_uid(c, "user_id") for c in calls if c.method == "getChatMember")
        assert not set(looked_up) & set(people.ending), looked_up
        admin_lists = [c for c in calls if c.method == "getChatAdministrators"]
        assert 1 <= len(admin_lists) <= INSTANCES, len(admin_lists)
        bans = Counter(_uid(c, "user_id") for c in calls if c.method == "banChatMember")
        unbans = Counter(_uid(c, "user_id") for c in calls if c.method == "unbanChatMember")
        assert bans == Counter(people.expired), bans
        assert unbans == Counter(people.expired), unbans

        def messages(fragment: str) -> Counter[int | None]:
            return Counter(
                _uid(c, "chat_id")
                for c in calls
                if c.method == "sendMessage" and fragment in str(c.params.get("text", ""))
            )

        assert messages("⏰") == Counter(people.reminded), messages("⏰")
        assert messages("has ended") == Counter(people.ending), messages("has ended")
        untouched = set(people.untouched)
        touching = [c for c in calls if {_uid(c, "user_id"), _uid(c, "chat_id")} & untouched]
        assert touching == [], [(c.method, c.params) for c in touching]
        statuses = sandbox.members(group)
        assert all(statuses[u] == "left" for u in people.expired), statuses
        assert statuses[people.admin] == "administrator"
        assert all(statuses[u] == "member" for u in [*people.reminded, *people.untouched]), statuses

        # --- Database: every job done once, every expired subscription expired -------------------------
        async with db.sessions() as s:
            jobs = (await s.execute(select(OutboxJob.kind, OutboxJob.state, OutboxJob.attempts))).all()
            claims = (await s.execute(text("SELECT job_id, worker FROM test_outbox_claims"))).all()
            by_user = select(Subscription.user_id, Subscription.status)
            subs = {u: st for u, st in (await s.execute(by_user)).all()}
            in_group = select(Membership.user_id, Membership.state).where(Membership.chat_id == group)
            members = {u: st for u, st in (await s.execute(in_group)).all()}
        assert Counter(kind for kind, _, _ in jobs) == expected_jobs, jobs
        assert {(state, attempts) for _, state, attempts in jobs} == {("done", 1)}, jobs
        assert Counter(job_id for job_id, _ in claims).most_common(1)[0][1] == 1, "a job was claimed twice"
        assert len(claims) == len(jobs)
        assert all(subs[u] == "expired" for u in people.ending), subs
        assert all(subs[u] == "active" for u in [*people.reminded, *people.lifetime]), subs
        assert all(members[u] != "joined" for u in people.expired), members

        # --- The work was shared -----------------------------------------------------------------------
        per_pid = Counter(int(str(worker).split(":")[1]) for _, worker in claims)
        assert set(per_pid) <= pids, (per_pid, pids)
        assert len(per_pid) >= 2, f"all {len(claims)} jobs ran in one process: {per_pid}"
        print(
            f"\njobs per process: {dict(per_pid)}; fork server {fork_seconds:.1f} s, "
            f"start {start_seconds:.1f} s, "
            f"seeded-to-settled {work_seconds:.1f} s, stop {stop_seconds:.1f} s"
        )
    finally:
        await db.dispose()
