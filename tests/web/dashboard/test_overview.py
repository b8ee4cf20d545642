"""The Overview page renders the figures, the health summary and the charts (both databases)."""

from __future__ import annotations

from subbot.services import members
from subbot.store import users
from subbot.store.models import Payment
from tests.web.dashboard.conftest import Site


async def test_overview_shows_figures_health_and_charts(site: Site) -> None:
    await site.admin()
    now = site.clock.now()
    async with site.app.db.write() as session:
        for uid, name in ((2001, "Gina"), (2002, "Hank")):
            await users.upsert(session, uid, now, first_name=name)
        session.add(
            Payment(
                user_id=2001, provider="stars", provider_payment_id="charge-1", amount_minor=100,
                currency="XTR", status="succeeded", created_at=now,
            )
        )  # fmt: skip
    await members.grant_days(site.app.ctx, 2001, 30, "test")
    await members.set_whitelist(site.app.ctx, 2002, True, "test")
    client = await site.signed_in()
    for url in ("/dashboard/", "/dashboard"):
        page = await client.get(url)
        assert page.status_code == 200, url
    html = page.text
    assert "<h1>Overview</h1>" in html and 'aria-current="page">Overview' in html
    active = html[html.index("Active members") :]
    assert '<p class="figure">2</p>' in active[:200]  # one paid subscription, one lifetime (whitelist)
    assert "100 XTR" in html or "100 ⭐" in html  # the 30-day revenue per currency
    assert 'database: <span class="status-ok">ok</span>' in html
    assert html.count("<svg") >= 3  # active members, revenue per day (XTR), payment success rate
