"""`subbot members …`: operators managing people (the same services as the admin bot and dashboard)."""

from __future__ import annotations

import typer

members_cli = typer.Typer(help="Members: look up, grant, extend, whitelist, revoke, remove, import, sync.")
