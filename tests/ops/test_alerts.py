"""Alerts: after 3 consecutive failures exactly once, no flapping, repeat every 15 min, resolved once;
one alert for two monitors on one database; permanent transport errors recorded once; the runbook's
one-liner."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from subbot.config import Settings
from subbot.domain.clock import ManualClock
from subbot.ops.alerts import SlackTransport, TelegramTransport, TransportError
from subbot.ops.checks import CheckResult, Severity, Status
from subbot.ops.monitor import Monitor
from subbot.ops.monitoring.alert_state import AlertPolicy
from subbot.sandbox.telegram.server import run_server
from subbot.store.db import Database, create_database
from subbot.store.models import AlertAttempt, AlertState
from tests.ops import test_monitor
from tests.ops.test_monitor import ROOT, TOKEN, Tg, make_settings

tg = test_monitor.tg  # the Telegram sandbox fixture

RUNBOOK_ONE_LINER = """from scripts.monitor_production import ProductionMonitor; 
          import asyncio; 
          m = ProductionMonitor(); 
          asyncio.run(m.send_alert('Test alert', 'INFO'))"""  # noqa: W291 - verbatim, trailing spaces included


class Receiver:
    """A local Slack incoming webhook: records what it accepts; answers the queued statuses first."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.requests = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.requests += 1
        body = await request.json()
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.accepted.append(body)
            return PlainTextResponse("ok")
        return PlainTextResponse("no_service" if status == 404 else "error", status_code=status)

    def texts(self) -> list[str]:
        return [str(b["text"]) for b in self.accepted]


@pytest.fixture
async def slack() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    async with run_server(receiver.app, "127.0.0.1", 0) as base:
        yield receiver, f"{base}/hook"


class Harness:
    def __init__(self, settings: Settings, tg: Tg, receiver: Receiver, clock: ManualClock) -> None:
        self.settings, self.tg, self.receiver, self.clock = settings, tg, receiver, clock

    def monitor(self, **kw: Any) -> Monitor:
        async def no_wait(_: float) -> None:
            return None

        return Monitor(
            self.settings, clock=self.clock, sleep=no_wait, retry_backoff=0, host="test-host", **kw
        )

    def telegram_texts(self) -> list[str]:
        return [str(m.get("text", "")) for m in self.tg.sb.chat_messages(self.tg.group)]


@pytest.fixture
async def harness(tg: Tg, slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path) -> Harness:
    receiver, url = slack
    settings = make_settings(
        tmp_path,
        db_url,
        bot_token=TOKEN,
        telegram_api_url=tg.url,
        alert_webhook_url=url,
        alert_telegram_chat_id=tg.group,
    )
    return Harness(settings, tg, receiver, ManualClock())


async def attempts(db: Database) -> list[AlertAttempt]:
    async with db.sessions() as session:
        return list((await session.scalars(select(AlertAttempt).order_by(AlertAttempt.id))).all())


async def test_alert_after_three_failures_repeat_every_15_minutes_then_resolved(
    harness: Harness, db: Database
) -> None:
    h = harness
    h.tg.sb.faults.fail_next(100, status=502, methods=["getMe"])
    async with h.monitor() as monitor:
        for n in (1, 2):
            p = await monitor.run_once(["bot"])
            assert p.exit_code == 2 and p.sent == [], n
            h.clock.advance(timedelta(minutes=1))
        third = await monitor.run_once(["bot"])
        assert [s.kind for s in third.sent] == ["alert"]
        assert len(h.receiver.accepted) == 1 and len(h.telegram_texts()) == 1
        text = h.receiver.texts()[0]
        assert text.startswith("🔴 INCIDENT: bot CRITICAL") and "SEV-1" in text and "3 consecutive" in text
        assert h.telegram_texts()[0] == text  # plain text, delivered as sent
        for _ in range(14):  # still failing, inside the 15 minutes: silence
            h.clock.advance(timedelta(minutes=1))
            assert (await monitor.run_once(["bot"])).sent == []
        h.clock.advance(timedelta(minutes=1))
        repeat = await monitor.run_once(["bot"])
        assert [s.kind for s in repeat.sent] == ["repeat"]
        assert "STILL FAILING" in h.receiver.texts()[-1]
        h.tg.sb.faults.clear()
        h.clock.advance(timedelta(minutes=1))
        resolved = await monitor.run_once(["bot"])
        assert [s.kind for s in resolved.sent] == ["resolved"] and resolved.exit_code == 0
        assert h.receiver.texts()[-1].startswith("✅ RESOLVED: bot")
        h.clock.advance(timedelta(minutes=1))
        assert (await monitor.run_once(["bot"])).sent == []  # resolved once only
    assert len(h.receiver.accepted) == 3 and len(h.telegram_texts()) == 3
    rows = await attempts(db)
    assert len(rows) == 6 and all(r.ok for r in rows)
    assert {r.transport for r in rows} == {"slack", "telegram"}


async def test_flapping_never_alerts(harness: Harness) -> None:
    h = harness
    async with h.monitor() as monitor:
        for _ in range(4):
            h.tg.sb.faults.fail_next(2, status=500, methods=["getMe"])
            for _ in range(3):  # fail, fail, ok
                assert (await monitor.run_once(["bot"])).sent == []
                h.clock.advance(timedelta(minutes=1))
    assert h.receiver.requests == 0 and h.telegram_texts() == []


async def test_continuous_mode_is_bounded_and_alerts_once(harness: Harness) -> None:
    h = harness
    h.tg.sb.faults.fail_next(100, status=500, methods=["getMe"])

    async def tick(seconds: float) -> None:
        h.clock.advance(timedelta(seconds=seconds))

    async with Monitor(h.settings, clock=h.clock, sleep=tick, retry_backoff=0) as monitor:
        seen: list[int] = []
        last = await monitor.run_continuous(
            ["bot"], 60, max_iterations=10, on_pass=lambda p: seen.append(len(p.sent))
        )
    assert seen == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0] and last.exit_code == 2
    assert len(h.receiver.accepted) == 1


async def test_two_monitors_on_one_database_alert_once(harness: Harness, db_url: str) -> None:
    h = harness
    h.tg.sb.faults.fail_next(1000, status=500, methods=["getMe"])
    first, second = h.monitor(), h.monitor()
    try:
        for _ in range(4):  # eight failed observations, interleaved and concurrent
            await asyncio.gather(first.run_once(["bot"]), second.run_once(["bot"]))
            h.clock.advance(timedelta(seconds=30))
        assert len(h.receiver.accepted) == 1 and len(h.telegram_texts()) == 1
        h.tg.sb.faults.clear()
        await asyncio.gather(first.run_once(["bot"]), second.run_once(["bot"]))
        assert len(h.receiver.accepted) == 2 and h.receiver.texts()[-1].startswith("✅ RESOLVED")
    finally:
        await first.aclose()
        await second.aclose()
    other = create_database(db_url)
    try:
        async with other.sessions() as session:
            state = await session.get(AlertState, "bot")
        assert state is not None and state.status == "ok" and state.last_alert_at is None
    finally:
        await other.dispose()


async def test_permanent_transport_errors_are_recorded_once(harness: Harness, db: Database) -> None:
    h = harness
    h.receiver.answers = [404]  # the Slack webhook was deleted
    settings = h.settings.model_copy(update={"alert_telegram_chat_id": -100999})  # a chat that does not exist
    failing = CheckResult("payment", Status.DEGRADED, "payment failures: 80% of 10", Severity.SEV2)
    async with Monitor(settings, clock=h.clock, retry_backoff=0, policy=AlertPolicy(threshold=1)) as monitor:
        monitor.manager.db = monitor.attempts.db = db
        sent = await monitor.manager.observe([failing])
        assert [s.kind for s in sent] == ["alert"]
        assert sorted((d.transport, d.ok, d.permanent) for d in sent[0].deliveries) == [
            ("slack", False, True),
            ("telegram", False, True),
        ]
        h.clock.advance(timedelta(minutes=15))
        again = await monitor.manager.observe([failing])
        assert [s.kind for s in again] == ["repeat"]
    rows = await attempts(db)
    assert sorted((r.transport, r.ok) for r in rows) == [("slack", False), ("telegram", False)]
    assert all(r.error and r.error.startswith("permanent:") for r in rows)
    assert h.receiver.requests == 1  # not retried, not used again


async def test_transient_errors_are_retried_and_each_attempt_recorded(harness: Harness, db: Database) -> None:
    h = harness
    h.receiver.answers = [500, 503]
    settings = h.settings.model_copy(update={"alert_telegram_chat_id": None})
    async with Monitor(settings, clock=h.clock, retry_backoff=0) as monitor:
        monitor.attempts.db = db
        deliveries = await monitor.notifier.send("manual", "INFO", "hello")
    assert [(d.transport, d.ok, d.attempts) for d in deliveries] == [("slack", True, 3)]
    assert [r.ok for r in await attempts(db)] == [False, False, True]


async def test_transport_classification(tg: Tg, slack: tuple[Receiver, str]) -> None:
    import httpx

    receiver, url = slack
    async with httpx.AsyncClient() as http:
        receiver.answers = [429]
        with pytest.raises(TransportError) as busy:
            await SlackTransport(url, http).send("x")
        assert not busy.value.permanent
        await TelegramTransport(tg.url, TOKEN, tg.group, http).send("<b>not html</b> & *not markdown*")
        assert tg.sb.chat_messages(tg.group)[-1]["text"] == "<b>not html</b> & *not markdown*"
        with pytest.raises(TransportError) as bad:
            wrong = "123:wrong-token-not-a-secret-abcdefghijkl"
            await TelegramTransport(tg.url, wrong, tg.group, http).send("x")
        assert bad.value.permanent
    assert tg.sb.violations == ["sendMessage: unknown bot token"]  # deliberate here
    tg.sb.violations.clear()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LOCK_DIR": str(tmp_path)}
    env.update(extra)
    return env


async def _python_c(code: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_runbook_send_test_notification(
    slack: tuple[Receiver, str], db: Database, db_url: str, tmp_path: Path
) -> None:
    """The runbook's "Send test notification", its statements exactly as written, joined on one line."""
    receiver, url = slack
    if not db_url.startswith("sqlite"):
        pytest.skip("the runbook's check runs once, against a temporary SQLite database")
    one_line = " ".join(line.strip() for line in RUNBOOK_ONE_LINER.splitlines())
    code, out = await _python_c(one_line, _env(tmp_path, ALERT_WEBHOOK_URL=url, DATABASE_URL=db_url))
    assert code == 0, out
    assert len(receiver.accepted) == 1
    assert receiver.texts()[0].startswith("ℹ️ [INFO] Test alert")
    assert [(r.transport, r.ok, r.component) for r in await attempts(db)] == [("slack", True, "manual")]


async def test_runbook_text_verbatim_with_its_line_breaks(
    slack: tuple[Receiver, str], tmp_path: Path
) -> None:
    """Typed with its line breaks, the runbook's snippet cannot compile in any Python (the continuation
    lines are indented), so none of our code runs; the docs give the one-line form. If a Python ever accepts
    it, it must deliver."""
    receiver, url = slack
    env = _env(tmp_path, ALERT_WEBHOOK_URL=url, DATABASE_URL=f"sqlite:///{tmp_path}/none.db")
    code, out = await _python_c(RUNBOOK_ONE_LINER, env)
    if code != 0:
        assert "IndentationError" in out and len(receiver.accepted) == 0
    else:
        assert len(receiver.accepted) == 1
