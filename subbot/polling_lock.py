"""One long-polling process per bot token.

Telegram hands each update to exactly one ``getUpdates`` caller, so two pollers on the same token steal
updates from each other (and Telegram answers one of them with 409 Conflict).  :class:`PollingLock`
makes a second poller on the same host (or sharing ``LOCK_DIR``) refuse to start.

The lock file ``<lock_dir>/subbot-<bot id>.lock`` is created atomically (``O_CREAT | O_EXCL``) and holds
``{"pid", "hostname", "started_at"}`` for humans; the authority is an exclusive ``flock`` held on it for
as long as the process lives.  The kernel drops the ``flock`` when the process dies, so a file whose
``flock`` is free is stale (its owner crashed) and is taken over with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LockHeld", "PollingLock", "token_id_of"]

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 5


class LockHeld(RuntimeError):
    """Another live process holds the polling lock for this bot."""

    def __init__(self, message: str, *, path: Path, info: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.path = path
        self.info = info


def token_id_of(bot_token: str) -> str:
    """The public numeric bot id of a token (``"123:abc"`` -> ``"123"``); never the secret part."""
    return bot_token.split(":", 1)[0]


def _read_info(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        data = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "pid unknown"
    return f"pid {info.get('pid', '?')} on {info.get('hostname', '?')}, since {info.get('started_at', '?')}"


class PollingLock:
    """Exclusive per-bot lock file; use as ``with PollingLock(dir, "123"):`` or acquire()/release()."""

    def __init__(self, lock_dir: Path, token_id: str) -> None:
        token_id = str(token_id)
        if not re.fullmatch(r"\d+", token_id):
            # Refuse anything that is not a bare numeric id, so a secret never ends up in a file name.
            raise ValueError("token_id must be the numeric bot id (the part of the token before ':')")
        self.lock_dir = Path(lock_dir)
        self.token_id = token_id
        self.path = self.lock_dir / f"subbot-{token_id}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`LockHeld` if a live process holds it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this PollingLock")
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(_MAX_ATTEMPTS):
            if self._try_create() or self._try_take_over():
                return
        raise LockHeld(
            f"could not take the polling lock {self.path} (it keeps changing); is another subbot starting?",
            path=self.path,
            info=None,
        )

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            self._lock_or_raise(fd)
        except BaseException:
            os.close(fd)
            raise
        self._own(fd)
        return True

    def _try_take_over(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False  # released meanwhile: try to create it again
        try:
            self._lock_or_raise(fd)
            if not self._same_file(fd):
                # The holder released (unlinked) it between our open and flock: start over.
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        stale = _read_info(fd)
        log.warning(
            "took over a stale polling lock %s left by %s (that process is gone)", self.path, _describe(stale)
        )
        self._own(fd)
        return True

    def _lock_or_raise(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            raise LockHeld(
                f"another subbot is already polling for bot {self.token_id} ({_describe(info)}); "
                f"stop it or run in webhook mode (set PUBLIC_URL). Lock file: {self.path}",
                path=self.path,
                info=info,
            ) from None

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)

    def _own(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        data = json.dumps(info).encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the flock; a no-op when not held."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            # Unlink while still holding the flock, and only if the path is still our file.
            if self._same_file(fd):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> PollingLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"PollingLock({str(self.path)!r}, held={self.held})"
