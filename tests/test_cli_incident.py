"""`subbot incident …` in-process through the real Typer app, on a SQLite file, with a local Slack webhook
receiving the status messages (the storage paths run on both databases in tests/ops/test_incidents*.py)."""

from __future__ import annotations

import asyncio
import getpass
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from subbot.cli import cli
from subbot.ops.maintenance import read_flag
from subbot.store.db import create_database
from subbot.store.migrate import upgrade
from subbot.store.models import AuditEntry


class Hook(BaseHTTPRequestHandler):
    received: list[str] = []  # noqa: RUF012 - one server per test, reset by the fixture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append(json.loads(body)["text"])
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def slack_url() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


async def _migrate(url: str) -> None:
    db = create_database(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


async def _audit(url: str) -> list[tuple[str, str]]:
    db = create_database(url)
    try:
        async with db.sessions() as s:
            return [
                (a.actor, a.action) for a in (await s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
            ]
    finally:
        await db.dispose()


async def _flag(url: str) -> bool:
    db = create_database(url)
    try:
        flag = await read_flag(db)
        return flag is not None and flag.enabled
    finally:
        await db.dispose()


def test_incident_commands(tmp_path: Path, slack_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    url = f"sqlite+aiosqlite:///{tmp_path}/incidents.db"
    env = {"DATABASE_URL": url, "ALERT_WEBHOOK_URL": slack_url, "LOCK_DIR": str(tmp_path), "COLUMNS": "200"}
    runner = CliRunner(env=env)

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["incident", *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.stdout if code == 0 else result.stderr

    assert "run `subbot migrate` first" in run("list", code=2)
    asyncio.run(_migrate(url))
    assert run("list").strip() == "no open incident"

    out = run(
        "open", "DB <b>down</b> & [red]x[/]", "-s", "1", "-c", "database", "--summary", "pool", "--by", "olga"
    )
    assert out.startswith("opened incident #1\n#1 SEV-1 investigating: DB <b>down</b> & [red]x[/]")
    assert Hook.received[-1].startswith("🔴 *INCIDENT: #1 DB &lt;b&gt;down&lt;/b&gt; &amp; [red]x[/]*")
    listed = run("list")  # a Rich table: its width follows the terminal, so only short cells are checked
    assert "#1" in listed and "SEV-1" in listed and "investigat" in listed and "NO" in listed
    assert "identified" in run("update", "1", "Failover started", "--status", "identified", "--next", "Watch")
    assert "Status: Identified" in Hook.received[-1] and "- Watch" in Hook.received[-1]
    run("ack", "#1", "--by", "lee")
    assert run("ack", "1", code=1).startswith("error: incident #1 was already acknowledged by lee")
    shown = run("show", "1")
    assert "acknowledged: lee" in shown
    assert "Failover started" in shown and "messages:" in shown and "slack" in shown
    out = run(
        "resolve", "1", "--fix", "Restarted", "--root-cause", "Pool exhausted", "--follow-up", "Bigger pool"
    )
    assert "resolved" in out and "subbot incident review 1 --output review-1.md" in out
    assert Hook.received[-1].startswith("✅ *RESOLVED: #1") and "- Bigger pool" in Hook.received[-1]
    assert "cannot be resolved again" in run("resolve", "1", code=1)
    assert "review written to" in run("review", "1", "-o", str(tmp_path / "review.md"))
    review = (tmp_path / "review.md").read_text(encoding="utf-8")
    assert review.startswith("# Post-incident review: #1 DB \\<b\\>down\\</b\\> \\& \\[red\\]x\\[/\\]")
    assert "**acknowledged**: Acknowledged by lee" in review and "- [ ] Bigger pool" in review

    for args, words in (
        (("show", "99"), "no incident #99"),
        (("show", "abc"), "is not an incident number"),
        (("open", "DB \u202edown"), "U+202E"),
        (("open", "DB down", "-s", "SEV-9"), "unknown severity 'SEV-9'"),
        (("update", "1", "x", "--status", "resolved"), "resolve an incident with `resolve`"),
        (("open", "x", "-c", "a b"), "component 'a b'"),
    ):
        line = run(*args, code=1)
        assert line.startswith("error: ") and words in line and "Traceback" not in line, line
    me = f"cli:{getpass.getuser()}"  # the default actor
    assert asyncio.run(_audit(url)) == [
        ("olga", "incident_open"),
        (me, "incident_update"),
        ("lee", "incident_ack"),
        (me, "incident_resolve"),
    ]
    assert len(Hook.received) == 4  # initial, update, acknowledged, resolved; refusals sent nothing

    run("open", "Payments down", "--maintenance", "Payments are paused, back soon", "--by", "olga")
    assert asyncio.run(_flag(url))
    run("resolve", "2", "--by", "olga")
    assert not asyncio.run(_flag(url))
