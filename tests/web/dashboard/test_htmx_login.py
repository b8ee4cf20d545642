"""htmx requests without a session get ``HX-Redirect`` to the login page, not a 303 swapped into a box."""

from __future__ import annotations

from datetime import timedelta

from tests.web.dashboard.conftest import Site, csrf_of
from tests.web.dashboard.test_members import add_member

BROADCAST_PAGE = "http://127.0.0.1/dashboard/broadcasts/1"


def htmx(current: str, **extra: str) -> dict[str, str]:
    """The headers htmx sends (``HX-Current-URL`` is the page the browser shows)."""
    return {"HX-Request": "true", "HX-Current-URL": current, **extra}


async def test_expired_session_on_a_polled_fragment_sends_the_whole_page_to_login(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    live = await client.get("/dashboard/members?q=x", headers=htmx("http://127.0.0.1/dashboard/members"))
    assert live.status_code == 200 and "hx-redirect" not in live.headers  # signed in: htmx works as usual
    site.clock.advance(timedelta(minutes=31))  # past DASHBOARD_IDLE_TIMEOUT_MINUTES (30)

    # The broadcast page's progress box polls this URL: the answer must not be a page to swap in.
    poll = await client.get("/dashboard/broadcasts/1/progress", headers=htmx(BROADCAST_PAGE))
    assert poll.status_code == 204 and poll.content == b""
    assert "location" not in poll.headers
    target = poll.headers["hx-redirect"]  # back to the page afterwards, not to the box
    assert target == "/dashboard/login?next=/dashboard/broadcasts/1&expired=1"
    assert poll.headers["x-frame-options"] == "DENY"  # still a dashboard answer with its headers
    assert "Your session expired" in (await client.get(target)).text


async def test_htmx_post_without_a_session_redirects_and_changes_nothing(site: Site) -> None:
    await site.admin()
    await add_member(site, 1001, "Alice", "alice")
    client = await site.signed_in()
    token = csrf_of((await client.get("/dashboard/members/1001")).text)
    site.clock.advance(timedelta(minutes=31))
    before = await site.snapshot()
    sent = await client.post(
        "/dashboard/members/1001/grant",
        data={"days": "5"},
        headers=htmx("http://127.0.0.1/dashboard/members?q=bob&status=active", **{"X-CSRF-Token": token}),
    )
    assert sent.status_code == 204 and sent.content == b""
    assert sent.headers["hx-redirect"] == (
        "/dashboard/login?next=/dashboard/members%3Fq%3Dbob%26status%3Dactive&expired=1"
    )
    after = await site.snapshot()
    assert after.pop("admin_sessions") == []  # the expired session is cleared when it is seen
    before.pop("admin_sessions")
    assert after == before  # no grant, no audit entry, no outbox job


async def test_htmx_request_of_a_stranger_or_from_off_site_lands_on_the_plain_login(site: Site) -> None:
    await site.admin()
    stranger = site.client()  # never signed in: no "expired" notice
    answer = await stranger.get("/dashboard/members", headers=htmx("http://127.0.0.1/dashboard/members"))
    assert answer.status_code == 204
    assert answer.headers["hx-redirect"] == "/dashboard/login?next=/dashboard/members"
    # The header is the client's to set: only a dashboard path of this site is ever a target.
    for current in ("https://evil.example/x", "", "http://127.0.0.1/dashboard/login?next=/x"):
        answer = await stranger.get("/dashboard/members", headers=htmx(current))
        assert answer.headers["hx-redirect"] == "/dashboard/login?next=/dashboard/", current
    # Without HX-Request the answers are as before: 303 for a page, 403 for a state change.
    assert (await stranger.get("/dashboard/members")).status_code == 303
    assert (await stranger.post("/dashboard/logout")).status_code == 403
