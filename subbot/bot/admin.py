"""Admin commands for ADMIN_IDS (filled in by the admin work)."""

from __future__ import annotations

from aiogram import Router


def build_router() -> Router:
    return Router(name="admin")
