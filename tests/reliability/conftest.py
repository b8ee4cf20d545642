"""The entry point of one `subbot run` child process (kept light: the fork server imports this module)."""

from __future__ import annotations

import os
import sys


def run_instance(env: dict[str, str], cwd: str, output: str) -> None:
    """Exactly `subbot run` with ``env`` as the whole environment, output to a file.

    Runs in a process forked from a fork server that has already imported subbot (see the test), so
    three instances start in a second instead of each spending seconds importing aiogram.
    """
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)  # no stray .env is read
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = ["subbot", "run"]
    from subbot.cli import main

    main()
