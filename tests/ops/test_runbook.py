"""The incident runbook's commands that target our code, run as an operator types them, on a live subbot.

``RUNBOOK`` below holds each command exactly as printed in the reference runbook (checked against
/work/shared/reference/incident-response-plan.md when that file is present).  Each runs through
``bash -c`` with the project's ``python`` first on PATH, so the shell parses quotes, line continuations
and pipes exactly as it would for an operator.  The only substitution is the deployment's address for
``https://your-railway-url``.

Where commands run:
* ``python scripts/…`` and ``python -c …``: from the repository root (as the runbook is used in a
  checkout), with DATABASE_URL, LOG_DIR and LOCK_DIR pointing at a temporary deployment directory;
* commands naming relative runtime files (``grep … logs/…``, ``rm -f *.lock temp/*``, the data-recovery
  scripts' ``backup.json``): from that deployment directory, which mirrors the container's /app (the
  repository's scripts/ and database/ linked in, logs/, data/, temp/, lock files), so the repository
  itself is never touched.

Two runbook one-liners cannot run verbatim for a reason outside our code: their continuation lines are
indented inside the ``-c`` string, and Python refuses that with ``IndentationError: unexpected indent``
before importing anything.  They are run verbatim (and must fail exactly that way), then in the closest
faithful form: the same lines with the leading indentation removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from subbot.logging_setup import configure_logging
from subbot.store.db import create_database
from subbot.store.migrate import upgrade
from tests.e2e.card_world import SECRET
from tests.e2e.conftest import TOKEN, World, free_port, text_has
from tests.e2e.conftest import world as e2e_world  # noqa: F401 - registers the fixture
from tests.e2e.test_stars_journey import buy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(e2e_world: World) -> World:  # noqa: F811 - tests/e2e's sandbox world, by its usual name
    return e2e_world


REFERENCE = Path(
    os.environ.get("SUBBOT_REFERENCE_RUNBOOK", "/work/shared/reference/incident-response-plan.md")
)
URL_PLACEHOLDER = "https://your-railway-url"
DEFAULT_MESSAGE = "Bot is under maintenance. Please try again in 30 minutes."

# Exactly as printed in the runbook (including the one-liners' line breaks and trailing spaces).
RUNBOOK = {
    "monitor_bot": "python scripts/monitor_production.py --check bot",
    "monitor_database": "python scripts/monitor_production.py --check database",
    "supabase_connection": "python scripts/test_supabase_connection.py",
    "monitor_payment": "python scripts/monitor_production.py --check payment",
    "payment_logs": 'grep "payment" logs/telegram_subscription_bot_payments.log | tail -50',
    "health": "curl https://your-railway-url/health",
    "tests_admin": "python scripts/production_tests.py --test admin",
    "group_id": "echo $GROUP_ID",
    "monitor_continuous_10": "python scripts/monitor_production.py --continuous --interval 10",
    "webhook_post": (
        "curl -X POST https://your-railway-url/webhook/airwallex \\\n"
        '  -H "Content-Type: application/json" \\\n'
        "  -d '{\"test\": true}'"
    ),
    "backup": "python scripts/backup_database.py",
    "restore": "python scripts/restore_database.py --backup-file [filename]",
    "clear_locks": "rm -f *.lock temp/*",
    "full_check": "python scripts/monitor_production.py --full-check",
    "export": "python scripts/export_critical_data.py",
    "verify": "python scripts/verify_data_integrity.py",
    "import": "python scripts/import_data.py --file backup.json",
    "tests_all": "python scripts/production_tests.py --all",
    "client_import": "python -c \"from database.supabase_client import SupabaseClient; print('OK')\"",
    "send_alert": (
        'python -c "from scripts.monitor_production import ProductionMonitor; \n'
        "          import asyncio; \n"
        "          m = ProductionMonitor(); \n"
        "          asyncio.run(m.send_alert('Test alert', 'INFO'))\""
    ),
    "export_oneliner": (
        'python -c "from scripts.production_tests import ProductionTestSuite;\n'
        "          import asyncio;\n"
        "          suite = ProductionTestSuite();\n"
        "          asyncio.run(suite.initialize());\n"
        '          # Export logic here"'
    ),
    "maintenance_main_py": (
        f'# Set in main.py temporarily\nMAINTENANCE_MODE = True\nMAINTENANCE_MESSAGE = "{DEFAULT_MESSAGE}"'
    ),
}
#: Commands of the runbook that act on Railway, Supabase's status page or the shell only: not our code.
NOT_OURS = ("railway ", "curl https://status.supabase.com", "export ALERT_", "nohup ")


def test_commands_are_verbatim_from_the_reference_runbook() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"reference runbook not found at {REFERENCE}")
    text = REFERENCE.read_text(encoding="utf-8")
    for name, command in RUNBOOK.items():
        assert command in text, f"{name} is not verbatim from the runbook"
    # Every command of the runbook that targets our code is covered here.
    blocks = re.findall(r"```(?:bash|python)\n(.*?)```", text, re.S)
    commands = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith(("python ", "rm ", "grep ", "curl ", "echo "))
    ]
    covered = " ".join(RUNBOOK.values())
    ours = [c for c in commands if not c.startswith(NOT_OURS)]
    missing = [
        c
        for c in ours
        if c.split(" \\")[0].replace(URL_PLACEHOLDER, "") not in covered.replace(URL_PLACEHOLDER, "")
    ]
    assert missing == [], missing


# ------------------------------------------------------------------ running commands as an operator
@dataclass
class Ran:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class Deployment:
    world: World
    base: str
    port: int
    root: Path  # mirrors the container's /app
    env: dict[str, str]

    async def sh(
        self, command: str, *, cwd: Path | None = None, timeout: float = 90, typed: str | None = None
    ) -> Ran:
        """Run ``command`` through bash; ``typed`` is what the operator types at the terminal (a pty)."""
        master = slave = None
        if typed is not None:
            master, slave = pty.openpty()
            os.write(master, typed.encode())
        try:
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                command.replace(URL_PLACEHOLDER, self.base),
                cwd=cwd or REPO,
                env=self.env,
                stdin=slave if slave is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        finally:
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)
        return Ran(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode())

    async def runbook(self, name: str, **kw: object) -> Ran:
        return await self.sh(RUNBOOK[name], **kw)  # type: ignore[arg-type]


def operator_env(world: World, root: Path, **extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("BOT_", "DATABASE_", "PUBLIC_", "GROUP_", "AIRWALLEX_", "ALERT_", "MAINTENANCE_", "SUPABASE_")
        )
    }
    keep.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        BOT_TOKEN=TOKEN,
        GROUP_ID=str(world.group),
        TELEGRAM_API_URL=world.url,
        DATABASE_URL=world.db_url,
        AIRWALLEX_WEBHOOK_SECRET=SECRET,
        LOG_DIR=str(root / "logs"),
        LOCK_DIR=str(root),
        DATA_DIR=str(root / "data"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    keep.update(extra)
    return keep


def deployment_dir(tmp: Path) -> Path:
    root = tmp / "app"
    for sub in ("logs", "data", "temp"):
        (root / sub).mkdir(parents=True)
    for name in ("scripts", "database", "main.py"):
        (root / name).symlink_to(REPO / name)
    return root


@pytest.fixture
async def deployment(world: World, tmp_path: Path) -> AsyncIterator[Deployment]:
    """subbot serving in webhook mode at PUBLIC_URL (loopback), logging to its deployment directory."""
    world.clock.set(datetime.now(UTC))
    root = deployment_dir(tmp_path)
    async with world.serving(
        webhook=True, airwallex_webhook_secret=SECRET, log_dir=root / "logs", lock_dir=root
    ) as (app, base):
        configure_logging(app.settings)  # as `subbot run` does: the runbook's log files
        port = app.settings.port
        env = operator_env(world, root, PUBLIC_URL=base, PORT=str(port))
        yield Deployment(world, base, port, root, env)


# ------------------------------------------------------------------ the scenarios
async def test_scenarios_1_to_4_and_6(deployment: Deployment) -> None:
    d, w = deployment, deployment.world
    # 3. A payment happens, then its log is read as the runbook says.
    alice = w.user("Alice")
    await buy(w, alice)
    await w.reply(alice, text_has("Payment received"))

    for name in ("monitor_bot", "monitor_database", "monitor_payment"):
        ran = await d.runbook(name)
        assert ran.code == 0, f"{RUNBOOK[name]}\n{ran}"
        assert name.split("_")[1] in ran.out.lower() and "Traceback" not in ran.err

    ran = await d.runbook("supabase_connection")
    assert ran.code == 0, ran
    assert "✓ connected" in ran.out and "✓ schema at revision" in ran.out
    assert w.db_url.split("@")[-1].split("/")[-1] in ran.out  # names the database

    ran = await d.runbook("payment_logs", cwd=d.root)
    assert ran.code == 0, ran
    assert "payment succeeded: provider=stars" in ran.out and f"user={alice}" in ran.out

    ran = await d.runbook("health")
    assert ran.code == 0, ran
    health = json.loads(ran.out)
    assert health["status"] == "ok" and health["mode"] == "webhook"

    ran = await d.runbook("tests_admin")
    assert ran.code == 0, ran
    assert "admin" in ran.out and "✓ passed" in ran.out and "OK: 1 passed, 0 failed, 0 skipped" in ran.out

    ran = await d.runbook("group_id")
    assert ran.out.strip() == str(w.group)

    # 6. The webhook endpoint is up: the unsigned test event is refused (HTTP 401) and nothing is stored.
    ran = await d.runbook("webhook_post")
    assert ran.code == 0, ran
    assert json.loads(ran.out) == {"ok": False, "error": "missing x-timestamp or x-signature"}
    ran = await d.sh(RUNBOOK["webhook_post"].replace("curl ", "curl -s -o /dev/null -w '%{http_code}' ", 1))
    assert ran.out == "401"


async def test_daily_checks_and_one_liners(deployment: Deployment) -> None:
    d = deployment
    ran = await d.runbook("tests_all")
    assert ran.code == 0, ran
    assert "OK: 8 passed, 0 failed, 0 skipped" in ran.out
    assert TOKEN not in ran.out + ran.err

    ran = await d.runbook("full_check")
    assert ran.code == 0, ran

    ran = await d.runbook("client_import")
    assert ran.code == 0 and ran.out == "OK\n", ran
    bare = await _bare_python_c(RUNBOOK["client_import"])
    assert bare.code == 0 and bare.out == "OK\n", bare  # with no environment at all

    for name in ("export_oneliner", "send_alert"):
        verbatim = await d.runbook(name)
        if verbatim.code != 0:  # the runbook's indentation inside -c: outside our control
            assert "IndentationError: unexpected indent" in verbatim.err, verbatim
            assert "Traceback" not in verbatim.err  # refused by the parser, before any of our code ran
        faithful = await d.sh(_dedent_lines(RUNBOOK[name]))
        assert faithful.code == 0, f"{name}\n{faithful}"
        assert "Traceback" not in faithful.err


def _dedent_lines(command: str) -> str:
    """The closest faithful form of an indented ``python -c`` one-liner: each line's indentation removed."""
    return "\n".join(line.lstrip() for line in command.splitlines())


async def _bare_python_c(command: str) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=REPO,
        env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return Ran(proc.returncode or 0, out.decode(), err.decode())


async def test_continuous_monitoring_starts(deployment: Deployment) -> None:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "exec " + RUNBOOK["monitor_continuous_10"],
        cwd=REPO,
        env=deployment.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert first.strip(), "the monitor printed nothing"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert "Traceback" not in err.decode()


async def test_complete_service_restart_clears_locks_and_temp(world: World, tmp_path: Path) -> None:
    """Stop, `rm -f *.lock temp/*`, start again (polling mode: the lock file is real), verify."""
    root = deployment_dir(tmp_path)
    lock = root / f"subbot-{TOKEN.split(':')[0]}.lock"
    async with world.serving(lock_dir=root, log_dir=root / "logs") as (app, _):
        assert lock.exists()  # the polling lock of the running process
        env = operator_env(world, root, PORT=str(app.settings.port))
    assert not lock.exists()  # a clean stop releases it
    # A crash leaves both behind: a stale lock and scratch files.
    lock.write_text('{"pid": 999999, "hostname": "gone"}')
    (root / "temp" / "partial.json").write_text("{}")
    (root / "temp" / "upload.tmp").write_text("x")
    d = Deployment(world, "", 0, root, env)
    ran = await d.runbook("clear_locks", cwd=root)
    assert ran.code == 0, ran
    assert not lock.exists() and list((root / "temp").iterdir()) == []
    assert (root / "logs").is_dir() and (root / "scripts").exists()  # nothing else touched
    async with world.serving(lock_dir=root, log_dir=root / "logs") as (app, _):
        d.env["PORT"] = str(app.settings.port)
        ran = await d.runbook("full_check")
        assert ran.code == 0, ran
        ran = await d.runbook("tests_admin")
        assert ran.code == 0, ran


async def test_database_rollback_and_data_recovery(deployment: Deployment) -> None:
    d, w = deployment, deployment.world
    alice = w.user("Alice")
    await buy(w, alice)
    await w.reply(alice, text_has("Payment received"))

    ran = await d.runbook("backup", cwd=d.root)
    assert ran.code == 0 and "backup written:" in ran.out, ran
    backup = _mentioned_file(ran.out + ran.err, d.root)
    # The restore asks before replacing the data; the operator types "yes" at the terminal.
    ran = await d.sh(RUNBOOK["restore"].replace("[filename]", str(backup)), cwd=d.root, typed="yes\n")
    assert ran.code == 0, ran
    assert "REPLACED" in ran.out and "restored" in ran.out

    ran = await d.runbook("export", cwd=d.root)
    assert ran.code == 0 and "export written:" in ran.out, ran
    exported = _mentioned_file(ran.out + ran.err, d.root)
    ran = await d.runbook("verify", cwd=d.root)
    assert ran.code == 0, ran
    shutil.copy(exported, d.root / "backup.json")
    ran = await d.runbook("import", cwd=d.root)
    assert ran.code == 0 and "import of backup.json:" in ran.out, ran


def _mentioned_file(output: str, root: Path) -> Path:
    """The file a data tool says it wrote (absolute, or relative to the deployment directory)."""
    pattern = r"[\w./\-]+\.(?:jsonl\.gz|json\.gz|jsonl|json|sql\.gz|sql|db|dump|tar\.gz|zip)(?![\w.])"
    for token in re.findall(pattern, output):
        for path in (Path(token), root / token, root / "data" / token):
            if path.is_file():
                return path
    raise AssertionError(f"no written file named in:\n{output}")


async def test_emergency_maintenance_mode_via_main_py(world: World, tmp_path: Path) -> None:
    """The runbook's edit of main.py, then `python main.py` (what Railway starts): members get the message."""
    root = deployment_dir(tmp_path)
    (root / "main.py").unlink()
    source = (REPO / "main.py").read_text()
    edit = RUNBOOK["maintenance_main_py"].split("\n", 1)[1]  # the two assignments, as printed
    assert f'MAINTENANCE_MODE = False\nMAINTENANCE_MESSAGE = "{DEFAULT_MESSAGE}"' in source
    edited = source.replace(f'MAINTENANCE_MODE = False\nMAINTENANCE_MESSAGE = "{DEFAULT_MESSAGE}"', edit)
    (root / "main.py").write_text(edited)
    db = create_database(world.db_url)
    await upgrade(db)
    await db.dispose()
    port = free_port()
    env = operator_env(world, root, PORT=str(port), HOST="127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def up() -> dict[str, object]:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.get(f"http://127.0.0.1:{port}/health")
                        if r.status_code == 200:
                            return dict(r.json())
                    if proc.returncode is not None:
                        raise AssertionError("main.py exited")
                    await asyncio.sleep(0.05)

            health = await asyncio.wait_for(up(), 60)
        assert health["components"]["maintenance"]["enabled"] is True  # type: ignore[index]
        alice = world.user("Alice")
        await world.sandbox.send_text(alice, "/start")
        reply = await world.reply(alice, text_has("maintenance"), timeout=20)
        assert reply["text"] == DEFAULT_MESSAGE
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert "maintenance mode is ON from main.py" in out.decode() + err.decode()
    assert proc.returncode == 0  # SIGTERM (docker stop, Railway) is a clean shutdown
    assert not (root / f"subbot-{TOKEN.split(':')[0]}.lock").exists()  # the polling lock released


# ------------------------------------------------------------------ the deployment files
def test_procfile_runs_one_process() -> None:
    lines = [line for line in (REPO / "Procfile").read_text().splitlines() if line.strip()]
    assert lines == ["web: python main.py"]


def test_railway_json() -> None:
    config = json.loads((REPO / "railway.json").read_text())
    deploy = config["deploy"]
    assert deploy["startCommand"] == "python main.py"
    assert deploy["healthcheckPath"] == "/health"
    assert deploy["restartPolicyType"] == "ON_FAILURE" and deploy["restartPolicyMaxRetries"] >= 1
    assert deploy["preDeployCommand"] == ["subbot migrate"]
    assert config["build"]["builder"] == "DOCKERFILE"


async def test_dockerfile_healthcheck_command(deployment: Deployment) -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text and "USER subbot" in text
    assert 'CMD ["sh", "-c", "subbot migrate && exec python main.py"]' in text
    match = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", text.replace("\\\n", ""), re.S)
    assert match is not None
    argv = json.loads(match.group(1))
    assert argv[0] == "python"
    env = {**deployment.env, "PORT": str(deployment.port)}
    healthy = await asyncio.create_subprocess_exec(sys.executable, *argv[1:], env=env)
    assert await asyncio.wait_for(healthy.wait(), 30) == 0
    env["PORT"] = str(free_port())
    down = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:], env=env, stderr=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(down.wait(), 30) != 0
