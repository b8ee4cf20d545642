"""/broadcast for admins (filled in by the broadcast work)."""

from __future__ import annotations

from aiogram import Router


def build_router() -> Router:
    return Router(name="broadcast")
