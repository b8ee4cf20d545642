"""Every dashboard route needs a session, and every state change its CSRF token (routes enumerated)."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts

from tests.web.dashboard.conftest import Site, csrf_of

PUBLIC = {("GET", "/dashboard/login"), ("POST", "/dashboard/login"), ("GET", "/dashboard/static/{name:path}")}
SAFE = {"GET", "HEAD", "OPTIONS"}


def dashboard_routes(site: Site) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves under /dashboard, however deeply it is included."""
    found = {
        (method, ctx.path)
        for ctx in iter_route_contexts(site.web.routes)
        if ctx.path and ctx.path.startswith("/dashboard")
        for method in (ctx.methods or ())
    }
    return sorted(found)


def concrete(path: str) -> str:
    """A URL for a route pattern: every path parameter becomes 1 (the guard answers before the endpoint)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_enumeration_sees_the_included_routes(site: Site) -> None:
    routes = set(dashboard_routes(site))
    # If FastAPI changes how included routers appear, this fails instead of the checks below passing
    # vacuously over an empty list.
    assert {
        ("GET", "/dashboard/"),
        ("GET", "/dashboard/members"),
        ("GET", "/dashboard/members/{user_id:int}"),
        ("POST", "/dashboard/members/{user_id:int}/{action}"),
        ("POST", "/dashboard/logout"),
    } <= routes
    assert PUBLIC <= routes


async def test_every_route_but_login_and_static_needs_a_session(site: Site) -> None:
    await site.admin()
    client = site.client()
    checked = 0
    for method, path in dashboard_routes(site):
        if (method, path) in PUBLIC or method == "HEAD":
            continue
        response = await client.request(method, concrete(path))
        if method in SAFE:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/dashboard/login?next="), (method, path)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
        checked += 1
    assert checked >= 5


async def test_state_changes_without_the_csrf_token_are_refused_and_change_nothing(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    token = csrf_of((await client.get("/dashboard/members")).text)
    before = await site.snapshot()
    unsafe = [(m, p) for m, p in dashboard_routes(site) if m not in SAFE and (m, p) not in PUBLIC]
    assert unsafe
    for method, path in unsafe:
        url = concrete(path).replace("/1/1", "/1/grant")  # a real action, so only the token is missing
        for data, headers in (
            ({}, {}),
            ({"csrf_token": "0" * 64}, {}),
            ({"csrf_token": token[:-1] + ("0" if token[-1] != "0" else "1")}, {}),
            ({}, {"X-CSRF-Token": "forged"}),
        ):
            response = await client.request(method, url, data={**data, "days": "5"}, headers=headers)
            assert response.status_code == 403, (method, path, data, headers)
            assert "security token" in response.text
    assert await site.snapshot() == before
    # The same request with the token passes the guard (and is then judged on its own merits).
    response = await client.post("/dashboard/logout", data={"csrf_token": token})
    assert response.status_code == 303


async def test_htmx_requests_send_the_token_in_a_header(site: Site) -> None:
    await site.admin()
    client = await site.signed_in()
    page = (await client.get("/dashboard/members")).text
    token = csrf_of(page)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page
    response = await client.post("/dashboard/logout", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert response.status_code == 303


async def test_pages_carry_security_headers(site: Site) -> None:
    await site.admin()
    client = site.client()
    for url in ("/dashboard/login", "/dashboard/members", "/dashboard/static/dashboard.css"):
        response = await client.get(url)
        assert "default-src 'self'" in response.headers["content-security-policy"], url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    login = await client.get("/dashboard/login")
    assert login.headers["cache-control"] == "no-store"
    assert "<script>" not in login.text and " style=" not in login.text  # nothing inline for the CSP to block


async def test_static_files_are_served_only_from_the_list(site: Site) -> None:
    client = site.client()
    htmx = await client.get("/dashboard/static/vendor/htmx.min.js")
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    for name in ("..%2Fdeps.py", "..%2F..%2Fauth.py", "vendor/LICENSE.htmx", "nope.css", "dashboard.css/x"):
        response = await client.get(f"/dashboard/static/{name}")
        assert response.status_code == 404, name
