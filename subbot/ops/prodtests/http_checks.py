"""error, load and webhook: requests to the running server that it must refuse or answer cheaply.

Nothing sent here can change data: forged or malformed webhooks are refused before anything is stored
(a valid signature is only ever put on a body that is not JSON), and /health is read-only.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import httpx

from subbot.config import TELEGRAM_WEBHOOK_PATH
from subbot.ops.prodtests.core import Fail, Skip, gather_limited
from subbot.payments.airwallex.webhook import signature

if TYPE_CHECKING:
    from subbot.ops.prodtests.core import ProductionTestSuite

AIRWALLEX_PATH = "/webhook/airwallex"
P99_LIMIT_MS = 2000.0  # the runbook's response-time target


def _expect(details: list[str], problems: list[str], what: str, got: int, *want: int) -> None:
    line = f"{what}: HTTP {got}"
    if got in want:
        details.append(line + " ✓")
    else:
        details.append(line + f" (expected {' or '.join(map(str, want))})")
        problems.append(f"{what} answered HTTP {got}, expected {' or '.join(map(str, want))}")


async def check_error(suite: ProductionTestSuite, details: list[str]) -> str:
    server = await suite.reachable_server()
    s = suite.settings
    http = suite.http
    base = server.base
    problems: list[str] = []
    now_ms = str(int(time.time() * 1000))
    forged = b'{"id":"evt_prodtest_forged","name":"payment_intent.succeeded","data":{"object":{}}}'
    card_secret = s.airwallex_webhook_secret
    refused = (401,) if card_secret is not None else (401, 503)
    r = await http.post(
        base + AIRWALLEX_PATH,
        content=forged,
        headers={"content-type": "application/json", "x-timestamp": now_ms, "x-signature": "0" * 64},
    )
    _expect(details, problems, "forged Airwallex event (bad signature)", r.status_code, *refused)
    r = await http.post(base + AIRWALLEX_PATH, content=forged, headers={"content-type": "application/json"})
    _expect(details, problems, "Airwallex event without signature headers", r.status_code, *refused)
    if card_secret is not None:
        # Signed with our own secret but not JSON: proves the parser refuses it (and nothing is stored).
        junk = b"{not json"
        sig = signature(card_secret.get_secret_value(), now_ms, junk)
        r = await http.post(
            base + AIRWALLEX_PATH,
            content=junk,
            headers={"content-type": "application/json", "x-timestamp": now_ms, "x-signature": sig},
        )
        _expect(details, problems, "signed malformed JSON to /webhook/airwallex", r.status_code, 400)
    else:
        details.append(
            "signed malformed JSON skipped: AIRWALLEX_WEBHOOK_SECRET not set (the endpoint refuses all)"
        )
    r = await http.post(
        base + TELEGRAM_WEBHOOK_PATH, content=b"{}", headers={"x-telegram-bot-api-secret-token": "forged"}
    )
    _expect(details, problems, "Telegram update with a wrong secret token", r.status_code, 401)
    if s.bot_token is not None or s.webhook_secret is not None:
        r = await http.post(
            base + TELEGRAM_WEBHOOK_PATH,
            content=b"{not json",
            headers={"x-telegram-bot-api-secret-token": s.telegram_webhook_secret},
        )
        _expect(details, problems, "malformed Telegram update with the right secret", r.status_code, 400)
    r = await http.get(base + "/no-such-page-prodtest")
    _expect(details, problems, "unknown path", r.status_code, 404)
    if problems:
        raise Fail(problems[0], details)
    return f"bad input refused as expected on {base} ({len(details)} probes)"


async def check_load(suite: ProductionTestSuite, details: list[str]) -> str:
    server = await suite.reachable_server()
    url = server.base + "/health"
    n, limit = suite.load_requests, suite.load_concurrency

    async def one() -> tuple[int, float]:
        started = time.perf_counter()
        response = await suite.http.get(url)
        return response.status_code, (time.perf_counter() - started) * 1000

    outcomes = await gather_limited(n, limit, one)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    timings = [o for o in outcomes if not isinstance(o, BaseException)]
    latencies = sorted(ms for _, ms in timings)
    bad = [code for code, _ in timings if code != 200]
    if not latencies:
        raise Fail(f"all {n} requests failed: {errors[0].__class__.__name__ if errors else '?'}")
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    details.append(
        f"{n} × GET /health, {limit} at a time: "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    if errors or bad:
        raise Fail(
            f"{len(errors)} request error(s), {len(bad)} non-200 answer(s) out of {n}",
            [
                *details,
                *(f"error: {e.__class__.__name__}" for e in errors[:3]),
                *(f"HTTP {c}" for c in bad[:3]),
            ],
        )
    if p99 > P99_LIMIT_MS:
        raise Fail(f"p99 {p99:.0f} ms is over {P99_LIMIT_MS:.0f} ms", details)
    return f"{n} requests: p50 {p50:.0f} ms, p99 {p99:.0f} ms"


async def check_webhook(suite: ProductionTestSuite, details: list[str]) -> str:
    server = await suite.server()
    if not server.reachable:
        if server.public:
            raise Fail(f"the public endpoint does not answer: {server.reason}")
        raise Skip(server.reason)
    http = suite.http
    s = suite.settings
    health = await http.get(server.base + "/health")
    try:
        status = health.json().get("status")
    except ValueError:
        status = None
    details.append(f"GET {server.base}/health: HTTP {health.status_code}, status {status}")
    problems: list[str] = []
    if health.status_code != 200:
        problems.append(f"/health answered HTTP {health.status_code} (status {status})")
    try:
        r = await http.post(server.base + AIRWALLEX_PATH, json={"test": True})
    except httpx.HTTPError as exc:
        raise Fail(f"POST {AIRWALLEX_PATH} failed: {exc.__class__.__name__}", details) from None
    details.append(f'POST {AIRWALLEX_PATH} {{"test": true}}: HTTP {r.status_code}')
    if r.status_code == 503 and s.airwallex_webhook_secret is None:
        note = "the endpoint is up but refuses every event: AIRWALLEX_WEBHOOK_SECRET is not set"
        if s.airwallex_enabled:
            problems.append(note)
        else:
            details.append(note + " (card payments are not configured, so this is expected)")
    elif r.status_code != 401:
        problems.append(
            f"POST {AIRWALLEX_PATH} answered HTTP {r.status_code}, expected 401 (unsigned test event)"
        )
    if problems:
        raise Fail(problems[0], details)
    return (
        f"{server.base}: /health {status}, {AIRWALLEX_PATH} up (unsigned event refused with {r.status_code})"
    )
