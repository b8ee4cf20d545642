"""The README walk-through, clicked through the /sandbox page like a person would (Chromium, Playwright)."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, OpenPage, Problems


async def _pick(page: Page, first_name: str) -> None:
    picker = page.get_by_label("You are")
    label = await picker.locator("option", has_text=first_name).first.text_content()
    await picker.select_option(label=label)
    await expect(picker.locator("option:checked")).to_have_text(re.compile(first_name))


async def _send(page: Page, text: str, *, enter: bool = False) -> None:
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    if enter:
        await box.press("Enter")
    else:
        await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#messages .msg.me").last).to_contain_text(text)


async def _buy_standard_and_join(page: Page) -> None:
    chat = page.locator("#messages")
    standard = chat.get_by_role("button", name=re.compile(r"^Standard · 30 days · 100"))
    await expect(standard).to_be_visible()
    await standard.click()
    stars = chat.get_by_role("button", name=re.compile(r"Telegram Stars \(100\)"))
    await expect(stars).to_be_visible()
    await stars.click()

    pay = chat.get_by_role("button", name=re.compile(r"^Pay"))
    await expect(pay).to_be_visible()
    await expect(chat.locator(".invoice")).to_contain_text("100 ⭐")
    await pay.click()
    await expect(chat.get_by_role("button", name=re.compile(r"Paid"))).to_be_disabled()
    await expect(chat.locator(".msg.service")).to_contain_text("You paid 100 ⭐")

    join = chat.get_by_role("button", name="Join the group")
    await expect(chat).to_contain_text("Payment received")
    await join.click()
    await expect(chat.locator(".note.ok")).to_contain_text("You joined “Subbot Demo Group”")
    assert page.url.endswith("/sandbox"), "the invite link must not navigate the browser away"


def _member_row(page: Page, first_name: str) -> Locator:
    group = page.locator("#groups .group", has_text="Subbot Demo Group")
    return group.locator("li", has=page.locator(".name", has_text=re.compile(rf"^{first_name}\b")))


async def test_walkthrough_desktop(open_page: OpenPage, problems: Problems) -> None:
    page = await open_page(DESKTOP)
    # The seeded group is listed as soon as the page has loaded.
    await expect(page.locator("#groups .group")).to_contain_text("Subbot Demo Group")
    await expect(_member_row(page, "Olivia")).to_contain_text("creator")
    await expect(_member_row(page, "Alice")).to_have_count(0)

    await _pick(page, "Alice")
    await _send(page, "/start", enter=True)
    await expect(page.locator("#messages")).to_contain_text("Choose a plan")
    await _buy_standard_and_join(page)

    alice = _member_row(page, "Alice")
    await expect(alice).to_contain_text("member")
    await expect(alice.locator(".badge")).to_have_text("member")

    await _send(page, "/status")
    status = page.locator("#messages .msg.them", has_text="Your subscription")
    await expect(status).to_contain_text("Standard")
    await expect(status).to_contain_text("30 days left")
    assert problems.items == []


async def test_phone_viewport(open_page: OpenPage, problems: Problems) -> None:
    page = await open_page(PHONE)
    await _pick(page, "Alice")
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_visible()
    await expect(composer).to_be_in_viewport()
    await _send(page, "/start")

    plans = page.locator("#messages .kbtn")
    await expect(plans).to_have_count(3)
    for i in range(3):
        await expect(plans.nth(i)).to_be_in_viewport()
        box = await plans.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # Nothing is wider than the phone (no sideways scrolling).
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await _buy_standard_and_join(page)
    # The groups panel is one tap away on a phone, and shows the new member.
    await page.get_by_role("button", name="Groups").click()
    await expect(_member_row(page, "Alice")).to_contain_text("member")
    await expect(_member_row(page, "Alice")).to_be_in_viewport()
    await page.get_by_role("button", name="Chat").click()
    await expect(page.locator("#messages .note.ok")).to_be_in_viewport()
    assert problems.items == []


async def test_add_user(open_page: OpenPage, problems: Problems) -> None:
    page = await open_page(DESKTOP)
    await page.get_by_role("button", name="+ User").click()
    await page.get_by_label("First name").fill("<b>Carol</b>")
    await page.get_by_label("Username").fill("carol_test")
    await page.get_by_role("button", name="Create user").click()
    picker = page.get_by_label("You are")
    await expect(picker.locator("option:checked")).to_have_text("<b>Carol</b> (@carol_test)")
    await expect(page.get_by_role("button", name="Start")).to_be_visible()
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#messages")).to_contain_text("Welcome, <b>Carol</b>!")
    assert await page.locator("#messages b", has_text="Carol").count() == 0  # text stays text
    assert problems.items == []
