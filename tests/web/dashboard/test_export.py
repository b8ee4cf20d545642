"""CSV export over HTTP: members and payments (with the Payments page's filters), as attachments."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from subbot.services import members
from tests.web.dashboard.conftest import Site
from tests.web.dashboard.test_payments import add_member, add_payment


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_members_csv(site: Site) -> None:
    await site.admin()
    await add_member(site, 3001, "first", name='=HYPERLINK("http://evil")')
    await add_member(site, 3002, None, name="Zoë")
    await members.grant_days(site.app.ctx, 3001, 30, "test")
    client = await site.signed_in()
    response = await client.get("/dashboard/export/members.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="members-2026-01-01.csv"'
    assert response.headers["cache-control"] == "no-store"
    table = rows(response.text)
    assert table[0][:5] == ["user_id", "username", "first_name", "last_name", "status"]
    by_id = {r[0]: r for r in table[1:]}
    assert set(by_id) == {"3001", "3002"}
    assert by_id["3001"][2].startswith("'=")  # a spreadsheet would run it as a formula otherwise
    assert by_id["3001"][4] == "active" and by_id["3001"][6].startswith("2026-01-31")
    assert by_id["3002"][2] == "Zoë" and by_id["3002"][4] == "never"


async def test_payments_csv_uses_the_page_filters(site: Site) -> None:
    await site.admin()
    await add_member(site, 3003, "payer")
    now = site.clock.now()
    await add_payment(site, "s-1", 3003, provider="stars", at=now - timedelta(days=2))
    await add_payment(site, "c-1", 3003, at=now - timedelta(days=1))
    await add_payment(site, "c-2", 3003, at=now)
    client = await site.signed_in()
    everything = rows((await client.get("/dashboard/export/payments.csv")).text)
    assert [r[6] for r in everything[1:]] == ["o-s-1", "o-c-1", "o-c-2"]  # oldest first
    assert everything[1][8:10] == ["100", "XTR"] and everything[2][8:10] == ["2.00", "USD"]
    response = await client.get(
        "/dashboard/export/payments.csv", params={"provider": "airwallex", "to": "2025-12-31"}
    )
    assert response.headers["content-disposition"] == 'attachment; filename="payments-2026-01-01.csv"'
    assert [r[6] for r in rows(response.text)[1:]] == ["o-c-1"]
    # The Payments page links to the export with the same filters.
    page = await client.get("/dashboard/payments", params={"provider": "stars", "from": "2025-12-01"})
    assert "/dashboard/export/payments.csv?provider=stars&amp;from=2025-12-01" in page.text


async def test_payments_csv_with_a_bad_filter_goes_back_with_the_reason(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    response = await client.get(
        "/dashboard/export/payments.csv", params={"status": "bogus", "from": "2026-01-01"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/payments?status=bogus&from=2026-01-01"
    page = await client.get(response.headers["location"])
    assert "Export not made: unknown payment status" in page.text
