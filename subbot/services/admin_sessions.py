"""Dashboard sessions after login: look-up with idle and absolute expiry, logout, and flash messages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select, update

from subbot.domain.clock import Clock
from subbot.services.admin_accounts import TOUCH_EVERY, AccessPolicy, csrf_for
from subbot.services.members import audit
from subbot.store.db import Database
from subbot.store.models import AdminSession, AdminUser

MAX_FLASHES = 5


class SessionState(StrEnum):
    ACTIVE = "active"
    MISSING = "missing"  # no cookie, or a token we do not know (logged out, rotated, forged)
    EXPIRED = "expired"  # idle too long or past its lifetime: deleted now


@dataclass(frozen=True)
class SignedIn:
    session_id: int
    admin_id: int
    name: str
    csrf: str
    has_flash: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names this admin."""
        return f"dashboard:{self.name}"


@dataclass(frozen=True)
class Lookup:
    state: SessionState
    who: SignedIn | None = None


async def session_for(db: Database, clock: Clock, policy: AccessPolicy, token: str | None) -> Lookup:
    """The signed-in admin for a cookie value; expired sessions are deleted on sight."""
    if not token or len(token) > 128:
        return Lookup(SessionState.MISSING)
    digest = policy.token_hash(token)
    now = clock.now()
    async with db.sessions() as session:
        row = (
            await session.execute(
                select(AdminSession, AdminUser.name, AdminUser.disabled)
                .join(AdminUser, AdminUser.id == AdminSession.admin_id)
                .where(AdminSession.token_hash == digest)
            )
        ).first()
    if row is None:
        return Lookup(SessionState.MISSING)
    stored, name, disabled = row
    if disabled or now >= stored.expires_at or now - stored.last_seen_at >= policy.idle:
        async with db.write() as session:
            await session.execute(delete(AdminSession).where(AdminSession.id == stored.id))
        return Lookup(SessionState.MISSING if disabled else SessionState.EXPIRED)
    if now - stored.last_seen_at >= TOUCH_EVERY:
        async with db.write() as session:
            await session.execute(
                update(AdminSession).where(AdminSession.id == stored.id).values(last_seen_at=now)
            )
    who = SignedIn(stored.id, stored.admin_id, name, csrf_for(token), bool(stored.flash))
    return Lookup(SessionState.ACTIVE, who)


async def logout(db: Database, clock: Clock, policy: AccessPolicy, token: str, who: SignedIn) -> None:
    now = clock.now()
    async with db.write() as session:
        await session.execute(delete(AdminSession).where(AdminSession.token_hash == policy.token_hash(token)))
        audit(session, now, who.actor, "dashboard_logout", None)


async def push_flash(db: Database, session_id: int, level: str, text: str) -> None:
    """A message for the next page this session renders (kept in the database: any instance shows it)."""
    async with db.write() as session:
        stored = await session.get(AdminSession, session_id, with_for_update=True)
        if stored is None:
            return
        stored.flash = [*(stored.flash or []), [level, text[:500]]][-MAX_FLASHES:]


async def pop_flashes(db: Database, session_id: int) -> list[tuple[str, str]]:
    async with db.write() as session:
        stored = await session.get(AdminSession, session_id, with_for_update=True)
        if stored is None or not stored.flash:
            return []
        items = [(str(level), str(text)) for level, text in stored.flash]
        stored.flash = None
    return items
