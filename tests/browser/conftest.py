"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) against the real demo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from subbot.demo import run_demo
from tests.e2e.conftest import free_ports
from tests.e2e.test_demo import _until_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=10_000)


def _browser_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("SUBBOT_TEST_BROWSER") == "1"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item (``item.rep_call``) so fixtures can see failures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found; install it with: apt-get install -y chromium"
        if _browser_required():
            pytest.fail(f"{message} (CI=true or SUBBOT_TEST_BROWSER=1 makes this a failure)")
        pytest.skip(f"{message} (set SUBBOT_TEST_BROWSER=1 to make this fail)")
    return str(CHROMIUM)


@dataclass
class Demo:
    sandbox: str  # http://127.0.0.1:PORT of the Telegram sandbox (the page is at /sandbox)
    bot: str


@pytest.fixture
async def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Demo]:
    """`subbot demo` in-process: the sandbox with its seeded people and group, and our bot."""
    monkeypatch.chdir(tmp_path)
    port, sandbox_port, aw_port = free_ports(3)
    task = asyncio.create_task(
        run_demo(port=port, sandbox_port=sandbox_port, fresh=True, airwallex_port=aw_port)
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await _until_up(client, f"http://127.0.0.1:{port}/health")
        yield Demo(f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{port}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Problems:
    """Console errors and uncaught exceptions seen on the page."""

    items: list[str] = field(default_factory=list)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.items.append(f"console.error: {msg.text} ({msg.location.get('url')})")

    def page_error(self, exc: Exception) -> None:
        self.items.append(f"pageerror: {exc}")


@pytest.fixture
def problems() -> Problems:
    return Problems()


def _safe_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


OpenPage = Callable[[dict[str, int]], Awaitable[Page]]


@pytest.fixture
async def open_page(
    request: pytest.FixtureRequest, browser: Browser, demo: Demo, problems: Problems
) -> AsyncIterator[OpenPage]:
    """Open the /sandbox page in a fresh context at a viewport size; watched for console errors.

    On failure every page is screenshotted to test-artifacts/ (Playwright creates the folder). Depends
    on ``demo`` so the pages are closed before the servers stop (no connection errors at the end).
    """
    opened: list[Page] = []

    async def open_(viewport: dict[str, int]) -> Page:
        context = await browser.new_context(viewport=viewport)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page.on("console", problems.console)
        page.on("pageerror", problems.page_error)
        opened.append(page)
        await page.goto(f"{demo.sandbox}/sandbox")
        return page

    yield open_
    report = getattr(request.node, "rep_call", None)
    keep = os.environ.get("SUBBOT_SCREENSHOTS")  # a folder to also keep end-of-test screenshots in
    for n, page in enumerate(opened):
        name = f"{_safe_name(request)}-{n}.png"
        if report is None or report.failed:
            with contextlib.suppress(Exception):
                await page.screenshot(path=ARTIFACTS / name, full_page=True)
        if keep:
            await page.screenshot(path=Path(keep) / name)
        await page.context.close()
    if report is not None and report.passed:
        assert problems.items == [], "console errors or page errors seen"
