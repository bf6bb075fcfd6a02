"""The reference shop (/shop/demo-tires) in a real browser, at a phone's 390 × 844: Debian's
chromium driven by Playwright against the app on a real uvicorn server. A buyer searches
"轮胎", picks a fitting slot at a nearby shop, signs in with the code from the sandbox inbox,
pays with a sandbox card and sees the order paid and the booking confirmed. The setup is only
what the shop needs (two tires, two shops, a fitment rule, a web key), not the whole demo.

With HAINA_SCREENSHOTS=1 the steps are saved as docs/screenshots/shop-*.png."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from support import database_from_template

from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.core.pgtemp import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
HOURS = [{"weekday": d, "open": "08:00", "close": "22:00"} for d in range(1, 8)]


def _shop_data(sessions) -> None:
    """demo-tires as the shop sees it: tires of two rim sizes, two fitting shops in Shanghai,
    the rule that tires need fitting, and the web key the demo makes."""
    from haina.catalog import service as catalog
    from haina.catalog.schemas import CategoryCreate, ProductCreate
    from haina.core.context import Tenant
    from haina.core.money import Price
    from haina.o2o import service as o2o
    from haina.o2o.schemas import FitmentRuleIn, ServicePointCreate
    from haina.platform import service as platform
    from haina.storefront import service as storefront
    from haina.storefront.schemas import PublishableKeyIn
    with transaction(sessions) as s:
        t = platform.create_tenant(s, "demo-tires", "驰途轮胎养护 Chitu Tires", "CNY")
        tenant = Tenant(id=t.id, slug=t.slug, currency=t.currency)
        tires = catalog.create_category(s, tenant, CategoryCreate(name="轮胎 Tires", slug="tires"))
        for sku, title, rim, amount in (("TIRE-MI-205-55R16", "米其林 轮胎 205/55 R16", 16, "699.00"),
                                        ("TIRE-BS-225-45R17", "普利司通 轮胎 225/45 R17", 17, "899.00")):
            catalog.create_product(s, tenant, ProductCreate(
                sku=sku, title=title, price=Price(amount=Decimal(amount), currency="CNY"),
                stock=40, category_id=tires.id, attributes={"rim_diameter": rim}))
        o2o.create_rule(s, tenant, FitmentRuleIn(service="tire-fitting", category_id=tires.id))
        for name, lat, lng in (("驰途合作店 徐汇 #1", 31.19, 121.44), ("驰途合作店 静安 #1", 31.23, 121.45)):
            o2o.create_point(s, tenant, ServicePointCreate.model_validate({
                "name": name, "address": "上海", "location": {"lat": lat, "lng": lng},
                "opening_hours": HOURS, "fitment": {"rim_diameter": [15, 19]},
                "services": [{"code": "tire-fitting", "name": "换胎", "duration_minutes": 60,
                              "capacity": 2, "price": {"amount": "80.00", "currency": "CNY"}}]},
                strict=False))
        storefront.create_key(s, tenant, PublishableKeyIn(name="参考商店", channel="web",
                                                          sandbox=True))


@pytest.fixture(scope="module")
def shop(request, tmp_path_factory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("HAINA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HAINA_REQUIRE_BROWSER=1 but no chromium at {CHROMIUM}")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    from haina.api import create_app
    from haina.core.config import Settings
    for url in database_from_template(request, "sqlite", tmp_path_factory.mktemp("shop"), "e_"):
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        _shop_data(sessions)
        server = uvicorn.Server(uvicorn.Config(
            create_app(Settings(database_url=url), engine=engine),
            host="127.0.0.1", port=free_port(), log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield {"base": f"http://127.0.0.1:{server.config.port}", "sessions": sessions}
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def _shot(page: Any, name: str) -> None:
    if os.environ.get("HAINA_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"shop-{name}.png"), full_page=True)


def test_a_buyer_goes_from_search_to_a_paid_order_with_a_fitting_booking(shop):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{shop['base']}/shop/demo-tires")
        cards = page.locator("article.card")
        expect(cards).to_have_count(2)  # both tires fit at the shops nearby
        expect(cards.first.locator(".shop").first).to_contain_text("驰途合作店")
        expect(cards.first.locator(".shop .rating").first).to_contain_text("No ratings yet")
        _shot(page, "search")
        cards.first.locator(".slots button").first.click()
        cards.first.locator("button.primary").click()
        expect(page.locator("#signin")).to_be_visible()  # not signed in yet
        page.locator("#phone").fill("13800138000")
        page.locator("#phone-form button").click()
        inbox = page.locator("#inbox")
        expect(inbox).to_contain_text("Sandbox SMS")
        code = inbox.inner_text().rsplit(" ", 1)[-1]
        assert code.isdigit() and len(code) == 6
        page.locator("#code").fill(code)
        _shot(page, "sign-in")
        page.locator("#code-form button").click()
        expect(page.locator("#cart")).to_be_visible()
        expect(page.locator("#cart-lines")).to_contain_text("× 4")
        _shot(page, "cart")
        page.locator("#pay").click()
        expect(page.locator("#order-status")).to_have_text("paid")
        expect(page.locator("#booking-status")).to_have_text("confirmed")
        expect(page.locator("#ship-to")).to_contain_text("驰途合作店")  # the tires go to the shop
        _shot(page, "paid")
        assert not page.locator("#error").is_visible()
        # the shop fits the tires (check-in, done); the buyer rates the job from their list
        _complete_the_booking(shop["sessions"])
        page.locator("#account").click()
        rate = page.locator("form.rate")
        expect(rate).to_have_count(1)
        rate.locator("select").select_option("4")
        rate.locator("input").fill("  很快 quick  ")
        _shot(page, "rate")
        rate.locator("button").click()
        expect(page.locator(".rated")).to_be_visible()
        assert not page.locator("#error").is_visible()
        # no sideways scrolling at a phone's width
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert errors == []
        browser.close()
    from sqlalchemy import text
    with shop["sessions"]() as s:
        channel, status = s.execute(text("SELECT channel, status FROM orders")).one()
        booking = s.execute(text("SELECT status, order_id FROM bookings")).one()
    assert (channel, status) == ("web", "paid") and booking[0] == "completed" and booking[1]
    with shop["sessions"]() as s:
        rating = s.execute(text("SELECT score, comment FROM o2o_ratings")).one()
        counted = s.execute(text("SELECT rating_count, rating_sum FROM service_points "
                                 "WHERE rating_count > 0")).one()
    assert tuple(rating) == (4, "很快 quick") and tuple(counted) == (1, 4)


def _complete_the_booking(sessions) -> None:
    from sqlalchemy import text

    from haina.o2o import service as o2o
    from haina.platform import service as platform
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "demo-tires")
        booking_id = s.execute(text("SELECT id FROM bookings")).scalar_one()
        o2o.check_in(s, tenant, booking_id)
        o2o.complete(s, tenant, booking_id)
