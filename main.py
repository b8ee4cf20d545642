"""Process entry for deployments: ``python main.py`` is ``subbot run`` (Docker, Railway, the Procfile).

Emergency maintenance mode, as the incident runbook describes it: set

    MAINTENANCE_MODE = True
    MAINTENANCE_MESSAGE = "Bot is under maintenance. Please try again in 30 minutes."

below and deploy.  Members then get the message; admins, payments, webhooks and the outbox keep working.
``MAINTENANCE_MODE = True`` here wins over the environment; with ``False`` (the default) the environment's
MAINTENANCE_MODE / MAINTENANCE_MESSAGE decide.  Without a deploy, ``subbot maintenance on`` (or the admin
command ``/maintenance on``) switches every running instance within seconds: see docs/runbook.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python main.py` from anywhere: the repository root (this file's directory) first on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

MAINTENANCE_MODE = False
MAINTENANCE_MESSAGE = "Bot is under maintenance. Please try again in 30 minutes."


def main(argv: list[str] | None = None) -> None:
    from subbot.cli_ops import run_main

    run_main(MAINTENANCE_MODE, MAINTENANCE_MESSAGE, argv)


if __name__ == "__main__":
    main()
