"""Servers under test run in child processes, so the load generator never shares their event loop.

Parent side: :class:`Child` starts ``python -m bench.servers ROLE CONFIG_JSON``, waits for the child to
write its ready file (JSON), reads its CPU time from ``/proc`` and stops it by closing its stdin.

Child side: ``await stop_requested()`` (stdin closed, or the lifetime cap reached) and :func:`write_ready`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: A child stops by itself after this long, whatever happens to the parent.
MAX_CHILD_LIFETIME = 600.0


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a check failed); worded for the reader."""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu(path: Path) -> float | None:
    try:
        raw = path.read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, all threads (Linux ``/proc``); None when unavailable."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of the process's main thread only (the event loop; not aiosqlite's threads)."""
    return _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat"))


class Child:
    """One server process started by the benchmark."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, ready_file: Path, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.ready_file = ready_file
        self.log = log
        self.info: dict[str, Any] = {}

    @classmethod
    async def start(
        cls, name: str, role: str, config: dict[str, Any], workdir: Path, ready_within: float = 30.0
    ) -> Child:
        ready_file = workdir / f"{name}.ready.json"
        log = workdir / f"{name}.log"
        config = {**config, "ready_file": str(ready_file)}
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        )
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.servers",
                role,
                json.dumps(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(REPO),
                env=env,
            )
        child = cls(name, proc, ready_file, log)
        deadline = time.monotonic() + ready_within
        while not ready_file.exists():
            if proc.returncode is not None:
                raise BenchError(
                    f"the {name} server exited with code {proc.returncode} before it was ready; "
                    f"the end of its output:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                await child.stop()
                raise BenchError(
                    f"the {name} server was not ready after {ready_within:.0f} s; its output:\n{_tail(log)}"
                )
            await asyncio.sleep(0.05)
        child.info = json.loads(ready_file.read_text())
        return child

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid)

    def main_thread_cpu_seconds(self) -> float | None:
        return main_thread_cpu_seconds(self.proc.pid)

    def output_tail(self, lines: int = 25) -> str:
        return _tail(self.log, lines)

    async def stop(self, grace: float = 10.0) -> int | None:
        """Close stdin (the child's stop signal); SIGTERM, then SIGKILL, if it does not exit in time."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        for action in (None, self.proc.terminate, self.proc.kill):
            if self.proc.returncode is not None:
                break
            if action is not None:
                with contextlib.suppress(ProcessLookupError):
                    action()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), grace)
        return self.proc.returncode


# ----------------------------------------------------------------------------- child side
async def stop_requested(lifetime: float = MAX_CHILD_LIFETIME) -> asyncio.Event:
    """An event set when stdin reaches EOF (the parent closed it or died) or after ``lifetime`` s."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            while await reader.read(4096):
                pass
        event.set()

    _background.add(asyncio.create_task(watch_stdin()))
    loop.call_later(lifetime, event.set)
    return event


_background: set[asyncio.Task[None]] = set()


def write_ready(path: str, info: dict[str, Any]) -> None:
    """Atomically publish the child's ready file (the parent polls for it)."""
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps({**info, "pid": os.getpid()}))
    tmp.replace(path)
