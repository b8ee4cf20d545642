"""PollingLock: one long-polling process per bot token."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from subbot.polling_lock import LockHeld, PollingLock, token_id_of

REPO = Path(__file__).resolve().parent.parent

# A child that takes the lock, says "locked", then either holds it until stdin closes ("hold") or dies
# without releasing it ("crash": os._exit skips every cleanup, like a SIGKILL would).
CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from subbot.polling_lock import PollingLock

    lock = PollingLock(Path(sys.argv[1]), "123")
    lock.acquire()
    print("locked", flush=True)
    if sys.argv[2] == "crash":
        os._exit(0)
    sys.stdin.read()
    lock.release()
    print("released", flush=True)
    """
)


def start_child(lock_dir: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(lock_dir), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()  # blocks until the child holds the lock (no sleeps)
    assert line == "locked", f"child said {line!r}"
    return child


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def lock(lock_dir: Path) -> Iterator[PollingLock]:
    polling_lock = PollingLock(lock_dir, "123")
    yield polling_lock
    polling_lock.release()


def test_acquire_writes_info_and_release_removes(lock: PollingLock, lock_dir: Path) -> None:
    lock.acquire()
    assert lock.held
    assert lock.path == lock_dir / "subbot-123.lock"
    info = json.loads(lock.path.read_text())
    assert info["pid"] == os.getpid()
    assert info["hostname"] == socket.gethostname()
    assert "T" in info["started_at"]
    lock.release()
    assert not lock.held
    assert not lock.path.exists()
    lock.release()  # idempotent


def test_context_manager(lock_dir: Path) -> None:
    with PollingLock(lock_dir, "123") as held:
        assert held.path.exists()
    assert not held.path.exists()
    with PollingLock(lock_dir, "123"):  # can be taken again afterwards
        pass


def test_second_lock_in_the_same_process_is_refused(lock: PollingLock, lock_dir: Path) -> None:
    lock.acquire()
    second = PollingLock(lock_dir, "123")
    with pytest.raises(LockHeld) as caught:
        second.acquire()
    message = str(caught.value)
    assert "another subbot is already polling for bot 123" in message
    assert f"pid {os.getpid()}" in message
    assert "webhook mode" in message
    assert caught.value.info is not None and caught.value.info["pid"] == os.getpid()
    assert not second.held
    assert lock.path.exists()  # the refused attempt did not disturb the holder


def test_other_bots_do_not_conflict(lock: PollingLock, lock_dir: Path) -> None:
    lock.acquire()
    with PollingLock(lock_dir, "456"):
        pass


def test_lock_held_by_another_process(lock_dir: Path) -> None:
    child = start_child(lock_dir, "hold")
    try:
        contender = PollingLock(lock_dir, "123")
        with pytest.raises(LockHeld) as caught:
            contender.acquire()
        assert f"pid {child.pid} on {socket.gethostname()}" in str(caught.value)
    finally:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        released = child.stdout.readline().strip()
        child.wait(timeout=30)
    assert released == "released"
    assert child.returncode == 0
    with PollingLock(lock_dir, "123"):  # free again once the other process let go
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(
    lock: PollingLock, lock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child = start_child(lock_dir, "crash")
    child.wait(timeout=30)
    stale = json.loads(lock.path.read_text())
    assert stale["pid"] == child.pid  # the file survived its owner

    with caplog.at_level(logging.WARNING, logger="subbot.polling_lock"):
        lock.acquire()
    assert lock.held
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert any(
        "stale polling lock" in r.getMessage() and f"pid {child.pid}" in r.getMessage()
        for r in caplog.records
    )


def test_stale_garbage_file_is_taken_over(lock: PollingLock, lock_dir: Path) -> None:
    lock_dir.mkdir(parents=True)
    lock.path.write_text("not json")
    lock.acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_token_id_is_only_the_public_part(lock_dir: Path) -> None:
    assert token_id_of("123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr") == "123456"
    with pytest.raises(ValueError, match="numeric bot id"):
        PollingLock(lock_dir, "123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr")


def test_acquiring_twice_on_one_instance_is_a_bug(lock: PollingLock) -> None:
    lock.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire()
