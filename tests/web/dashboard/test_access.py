"""Accounts, login, sessions and lockout, through HTTP on the real app (both databases)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from subbot.store.models import AdminLoginAttempt, AdminSession, AdminUser, AuditEntry
from tests.web.dashboard.conftest import PASSWORD, Site, SiteFactory, csrf_of


def set_cookie(response: httpx.Response) -> str:
    """The Set-Cookie header of the session cookie."""
    cookies = response.headers.get_list("set-cookie")
    return "; ".join(v for v in cookies if "subbot_session=" in v)


async def test_without_any_account_every_page_explains_how_to_create_one(site: Site) -> None:
    client = site.client()
    page = await client.get("/dashboard/login")
    assert page.status_code == 200  # the monitor probes this URL
    assert "subbot admin create-user NAME" in page.text and 'name="password"' not in page.text
    other = await client.get("/dashboard/members", follow_redirects=True)
    assert other.status_code == 200 and "subbot admin create-user NAME" in other.text
    # Even a well-formed login post creates nothing and signs nobody in.
    client.cookies.set("subbot_login", "form-token", domain="127.0.0.1", path="/dashboard")
    sent = await client.post(
        "/dashboard/login", data={"name": "admin", "password": "admin", "csrf_token": "form-token"}
    )
    assert "subbot admin create-user NAME" in sent.text and "subbot_session" not in client.cookies
    async with site.app.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AdminUser)) == 0


async def test_password_is_stored_as_an_argon2_hash_and_the_token_as_a_hash(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    token = client.cookies["subbot_session"]
    dump = repr(await site.snapshot())
    assert PASSWORD not in dump and token not in dump
    async with site.app.db.sessions() as session:
        stored = await session.scalar(select(AdminUser.password_hash))
        digests = list(await session.scalars(select(AdminSession.token_hash)))
    assert stored is not None and stored.startswith("$argon2id$")
    assert len(digests) == 1 and len(digests[0]) == 64


async def test_session_cookie_flags_on_plain_http(site: Site) -> None:
    await site.admin()
    client = site.client()
    response = await site.login(client)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/"
    cookie = set_cookie(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboard" in cookie
    assert "secure" not in cookie  # the demo on http://127.0.0.1 must keep working
    assert (await client.get("/dashboard/members")).status_code == 200


async def test_session_cookie_is_secure_when_the_site_is_https(make_site: SiteFactory) -> None:
    site = await make_site(public_url="https://subbot.example.com")
    await site.admin()
    client = site.client(scheme="https")
    response = await site.login(client)
    cookie = set_cookie(response).lower()
    assert response.status_code == 303 and "secure" in cookie and "httponly" in cookie
    assert (await client.get("/dashboard/members")).status_code == 200


async def test_login_rotates_the_session(site: Site) -> None:
    await site.admin()
    client = site.client()
    client.cookies.set("subbot_session", "chosen-by-an-attacker", domain="127.0.0.1", path="/dashboard")
    await site.login(client)
    first = client.cookies["subbot_session"]
    assert first != "chosen-by-an-attacker"
    # Signing in again while holding the first session's cookie (the form from an older tab).
    client.cookies.set("subbot_login", "older-tab", domain="127.0.0.1", path="/dashboard")
    form = {"name": "alice", "password": PASSWORD, "csrf_token": "older-tab"}
    assert (await client.post("/dashboard/login", data=form)).status_code == 303
    second = client.cookies["subbot_session"]
    assert second != first
    stale = site.client()
    stale.cookies.set("subbot_session", first, domain="127.0.0.1", path="/dashboard")
    assert (await stale.get("/dashboard/members")).status_code == 303  # the old session is gone
    async with site.app.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AdminSession)) == 1


async def test_idle_timeout_and_absolute_lifetime(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    for _ in range(2):
        site.clock.advance(timedelta(minutes=29))
        assert (await client.get("/dashboard/members")).status_code == 200  # use keeps it alive
    site.clock.advance(timedelta(minutes=30))
    expired = await client.get("/dashboard/members")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/dashboard/login?next=/dashboard/members&expired=1"
    page = await client.get(expired.headers["location"])
    assert "Your session expired" in page.text
    async with site.app.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AdminSession)) == 0

    client = await site.signed_in()  # busy all day: ends after DASHBOARD_SESSION_MAX_HOURS (12) anyway
    for _ in range(12 * 3 - 1):
        site.clock.advance(timedelta(minutes=20))
        assert (await client.get("/dashboard/members")).status_code == 200
    site.clock.advance(timedelta(minutes=20))
    assert (await client.get("/dashboard/members")).status_code == 303


async def test_logout_ends_the_session(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    token = client.cookies["subbot_session"]
    page = await client.get("/dashboard/members")
    response = await client.post("/dashboard/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login?out=1"
    assert "subbot_session" not in client.cookies
    again = site.client()
    again.cookies.set("subbot_session", token, domain="127.0.0.1", path="/dashboard")
    assert (await again.get("/dashboard/members")).status_code == 303
    async with site.app.db.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        actors = set(
            await session.scalars(select(AuditEntry.actor).where(AuditEntry.action.like("dashboard%")))
        )
    assert actions[-2:] == ["dashboard_login", "dashboard_logout"] and actors == {"dashboard:alice"}


async def test_lockout_per_name_then_unlocked_after_the_lockout_time(site: Site) -> None:
    await site.admin()
    client = site.client()
    for _ in range(5):
        wrong = await site.login(client, password="not the password")
        assert wrong.status_code == 200 and "Wrong name or password." in wrong.text
        assert "try again later" not in wrong.text
    locked = await site.login(client)  # the right password, but locked out: not even checked
    assert "Wrong name or password." in locked.text and "try again later" in locked.text
    assert "subbot_session" not in client.cookies
    # A name that does not exist locks out the same way: nothing tells which names exist.
    for _ in range(5):
        await site.login(client, name="nobody", password="not the password")
    assert "try again later" in (await site.login(client, name="nobody")).text
    site.clock.advance(timedelta(minutes=14))
    assert "try again later" in (await site.login(client)).text
    site.clock.advance(timedelta(minutes=1, seconds=1))
    assert (await site.login(client)).status_code == 303
    async with site.app.db.sessions() as session:
        rows = (
            await session.execute(
                select(AdminLoginAttempt.outcome, func.count())
                .where(AdminLoginAttempt.username == "alice")
                .group_by(AdminLoginAttempt.outcome)
            )
        ).all()
        failed_audit = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "dashboard_login_failed")
        )
    assert dict(rows) == {"failed": 5, "locked": 2, "ok": 1}
    assert failed_audit == 10


async def test_lockout_per_client_address(site: Site) -> None:
    await site.admin()
    attacker = site.client(ip="203.0.113.7")
    for n in range(20):  # a different name each time: only the address connects them
        await site.login(attacker, name=f"guess{n}", password="not the password")
    assert "try again later" in (await site.login(attacker)).text
    elsewhere = site.client(ip="198.51.100.2")
    assert (await site.login(elsewhere)).status_code == 303  # alice herself is not locked out


def without_token_and_name(response: httpx.Response) -> str:
    return response.text.replace(csrf_of(response.text), "").replace("alice", "").replace("nobody", "")


async def test_wrong_password_and_unknown_name_answer_alike(site: Site) -> None:
    await site.admin()
    known = await site.login(site.client(), password="not the password")
    unknown = await site.login(site.client(), name="nobody", password="not the password")
    assert known.status_code == unknown.status_code == 200
    assert without_token_and_name(known) == without_token_and_name(unknown)


async def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions(site: Site) -> None:
    from subbot.services.admin_accounts import set_disabled

    await site.admin()
    await site.admin("bob")  # with no enabled account left the page would explain how to create one
    client = await site.signed_in()
    await set_disabled(site.app.db, site.clock, "alice", True, "test")
    assert (await client.get("/dashboard/members")).status_code == 303
    assert "Wrong name or password." in (await site.login(site.client())).text


async def test_login_redirects_back_but_never_off_site(site: Site) -> None:
    await site.admin()
    client = site.client()
    first = await client.get("/dashboard/members?q=bob")
    assert first.status_code == 303
    login_page = await client.get(first.headers["location"])
    assert first.headers["location"] == "/dashboard/login?next=/dashboard/members%3Fq%3Dbob"
    assert 'name="next" value="/dashboard/members?q=bob"' in login_page.text
    for target, expected in (
        ("/dashboard/members", "/dashboard/members"),
        ("https://evil.example/", "/dashboard/"),
        ("//evil.example/dashboard", "/dashboard/"),
        ("/dashboard/../../x", "/dashboard/"),
    ):
        c = site.client()
        page = await c.get("/dashboard/login")
        response = await c.post(
            "/dashboard/login",
            data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": target},
        )
        assert response.headers["location"] == expected, target
