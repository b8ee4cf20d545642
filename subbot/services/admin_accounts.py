"""Dashboard accounts: argon2 password hashes, sessions held in the database, login throttling and lockout.

Sessions live in the database so every instance behind a load balancer sees the same ones. The browser
holds a random token; the database holds only its hash (keyed with SESSION_KEY when set), so a copy of
the database does not let anyone sign in. Every attempt to log in is a row: lockouts are judged from
them and the monitor counts the failures (its breach signal).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from subbot.domain.clock import Clock
from subbot.services.members import audit
from subbot.store.db import Database
from subbot.store.models import AdminLoginAttempt, AdminSession, AdminUser

if TYPE_CHECKING:
    from subbot.config import Settings

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often (one write per minute)
KEEP_ATTEMPTS = timedelta(days=30)
_hasher = PasswordHasher()
_dummy_hash: str | None = None


class AccountError(Exception):
    """Why an account operation cannot be done, worded for the operator."""


@dataclass(frozen=True)
class AccessPolicy:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    max_failures: int = 5  # per user name, within ``window``
    max_failures_ip: int = 20  # per client IP, within ``window``
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    key: bytes = b""  # SESSION_KEY: the token hashes are HMACs with it

    @classmethod
    def from_settings(cls, s: Settings) -> AccessPolicy:
        return cls(
            idle=timedelta(minutes=s.dashboard_idle_timeout_minutes),
            lifetime=timedelta(hours=s.dashboard_session_max_hours),
            max_failures=s.dashboard_login_max_failures,
            max_failures_ip=s.dashboard_login_max_failures_per_ip,
            window=timedelta(minutes=s.dashboard_login_window_minutes),
            lockout=timedelta(minutes=s.dashboard_lockout_minutes),
            key=s.session_key.get_secret_value().encode() if s.session_key else b"",
        )

    def token_hash(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()


def csrf_for(token: str) -> str:
    """The session's CSRF token: derived from the secret cookie value, so it is never stored anywhere."""
    return hmac.new(token.encode(), b"subbot-dashboard-csrf", hashlib.sha256).hexdigest()


def normalise_name(raw: str) -> str:
    name = raw.strip().lower()
    if not NAME_RE.fullmatch(name):
        raise AccountError(
            "a name is 1-64 characters: letters, digits, '_', '.' or '-' (starting alphanumeric)"
        )
    return name


def check_password(name: str, password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if password.strip().lower() == name:
        raise AccountError("the password must not be the user name")


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str | None, password: str) -> bool:
    """Argon2 verification off the event loop; an unknown user is checked against a dummy hash (same time)."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = await _hash(secrets.token_urlsafe(16))
        password_hash = _dummy_hash
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# ------------------------------------------------------------------ accounts (the CLI)
async def _account(session: AsyncSession, name: str) -> AdminUser:
    admin = await session.scalar(select(AdminUser).where(AdminUser.name == normalise_name(name)))
    if admin is None:
        raise AccountError(f"no dashboard user {name.strip().lower()!r}")
    return admin


async def create_admin(db: Database, clock: Clock, name: str, password: str, actor: str) -> AdminUser:
    name = normalise_name(name)
    check_password(name, password)
    hashed = await _hash(password)
    now = clock.now()
    async with db.write() as session:
        if await session.scalar(select(AdminUser.id).where(AdminUser.name == name)) is not None:
            raise AccountError(f"dashboard user {name!r} already exists (use reset-password)")
        admin = AdminUser(name=name, password_hash=hashed, disabled=False, created_at=now, updated_at=now)
        session.add(admin)
        audit(session, now, actor, "admin_created", None, admin=name)
    return admin


@dataclass(frozen=True)
class AdminListing:
    name: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    sessions: int


async def list_admins(db: Database, clock: Clock) -> list[AdminListing]:
    now = clock.now()
    async with db.sessions() as session:
        live = (
            select(AdminSession.admin_id, func.count().label("n"))
            .where(AdminSession.expires_at > now)
            .group_by(AdminSession.admin_id)
            .subquery()
        )
        rows = await session.execute(
            select(AdminUser, live.c.n)
            .outerjoin(live, live.c.admin_id == AdminUser.id)
            .order_by(AdminUser.name)
        )
        return [
            AdminListing(a.name, a.disabled, a.created_at, a.last_login_at, int(n or 0))
            for a, n in rows.all()
        ]


async def set_disabled(db: Database, clock: Clock, name: str, disabled: bool, actor: str) -> None:
    """Disabling also signs the user out everywhere."""
    now = clock.now()
    async with db.write() as session:
        admin = await _account(session, name)
        if admin.disabled == disabled:
            raise AccountError(
                f"dashboard user {admin.name!r} is already {'disabled' if disabled else 'enabled'}"
            )
        admin.disabled, admin.updated_at = disabled, now
        if disabled:
            await session.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))
        audit(session, now, actor, "admin_disabled" if disabled else "admin_enabled", None, admin=admin.name)


async def reset_password(db: Database, clock: Clock, name: str, password: str, actor: str) -> None:
    """A new password; every session of that user ends."""
    async with db.sessions() as session:
        canonical = (await _account(session, name)).name
    check_password(canonical, password)
    hashed = await _hash(password)
    now = clock.now()
    async with db.write() as session:
        admin = await _account(session, canonical)
        admin.password_hash, admin.updated_at = hashed, now
        await session.execute(delete(AdminSession).where(AdminSession.admin_id == admin.id))
        audit(session, now, actor, "admin_password_reset", None, admin=admin.name)


async def has_admins(db: Database) -> bool:
    """Is there an enabled account? Without one the dashboard only explains how to create it."""
    async with db.sessions() as session:
        return (
            await session.scalar(select(AdminUser.id).where(AdminUser.disabled.is_(False)).limit(1))
            is not None
        )


# ------------------------------------------------------------------ login and lockout
@dataclass(frozen=True)
class LoginOutcome:
    token: str | None = None  # the new session's cookie value when signed in
    name: str | None = None
    locked: bool = False

    @property
    def ok(self) -> bool:
        return self.token is not None


async def _locked(
    session: AsyncSession,
    column: InstrumentedAttribute[str],
    value: str,
    limit: int,
    now: datetime,
    policy: AccessPolicy,
) -> bool:
    """``limit`` failures in the window (since the last success) lock out until the last one + lockout."""
    last_ok = await session.scalar(
        select(func.max(AdminLoginAttempt.at)).where(column == value, AdminLoginAttempt.outcome == "ok")
    )
    since = max(now - policy.window, last_ok) if last_ok is not None else now - policy.window
    count, last = (
        await session.execute(
            select(func.count(), func.max(AdminLoginAttempt.at)).where(
                column == value, AdminLoginAttempt.outcome == "failed", AdminLoginAttempt.at > since
            )
        )
    ).one()
    return bool(count >= limit and last is not None and now < last + policy.lockout)


async def login(
    db: Database,
    clock: Clock,
    policy: AccessPolicy,
    name: str,
    password: str,
    ip: str,
    user_agent: str = "",
    previous_token: str | None = None,
) -> LoginOutcome:
    """Check the password (unless locked out); on success a new session replaces ``previous_token``'s."""
    typed = name.strip().lower()[:64]
    ip = ip[:64]
    now = clock.now()
    async with db.sessions() as session:
        locked = await _locked(
            session, AdminLoginAttempt.username, typed, policy.max_failures, now, policy
        ) or await _locked(session, AdminLoginAttempt.ip, ip, policy.max_failures_ip, now, policy)
        admin = None if locked else await session.scalar(select(AdminUser).where(AdminUser.name == typed))
    good = False
    if not locked:  # a locked-out attempt is not checked at all: guessing goes on, learning stops
        matches = await _verify(admin.password_hash if admin else None, password)
        good = matches and admin is not None and not admin.disabled
    rehash = (
        await _hash(password) if good and admin and _hasher.check_needs_rehash(admin.password_hash) else None
    )
    outcome = "ok" if good else "locked" if locked else "failed"
    token = secrets.token_urlsafe(32) if good else None
    now = clock.now()
    async with db.write() as session:
        session.add(AdminLoginAttempt(at=now, username=typed, ip=ip, outcome=outcome))
        await session.execute(delete(AdminLoginAttempt).where(AdminLoginAttempt.at < now - KEEP_ATTEMPTS))
        actor = f"dashboard:{typed or '?'}"
        if not good or admin is None or token is None:
            audit(session, now, actor, "dashboard_login_" + outcome, None, ip=ip)
            return LoginOutcome(locked=locked)
        if previous_token:  # rotation: whatever session the browser had ends here
            await session.execute(
                delete(AdminSession).where(AdminSession.token_hash == policy.token_hash(previous_token))
            )
        await session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
        fresh = await session.get(AdminUser, admin.id)
        assert fresh is not None
        fresh.last_login_at = now
        if rehash is not None:
            fresh.password_hash = rehash
        session.add(
            AdminSession(
                token_hash=policy.token_hash(token),
                admin_id=admin.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + policy.lifetime,
                ip=ip,
                user_agent=user_agent[:256],
            )
        )
        audit(session, now, actor, "dashboard_login", None, ip=ip)
    return LoginOutcome(token=token, name=admin.name)


async def demo_admin(db: Database, clock: Clock) -> str:
    """`subbot demo`'s account ``demo`` with a new random password at every start (printed, never fixed)."""
    password = secrets.token_urlsafe(12)
    async with db.sessions() as session:
        exists = await session.scalar(select(AdminUser.id).where(AdminUser.name == "demo"))
    if exists is None:
        await create_admin(db, clock, "demo", password, "demo")
    else:
        await reset_password(db, clock, "demo", password, "demo")
    return password
