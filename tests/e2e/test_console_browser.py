"""The merchant console in a real browser: Debian's chromium driven by Playwright against the
app on a real uvicorn server (in a thread), on a small demo-tires (60 members, two years of
history, one analytics refresh). One server and one browser for the module.

Every page visited is checked with axe-core (vendored in tests/e2e/vendor) against the WCAG
2.1 A and AA rules, at desk width and at phone width (360 px, where nothing may scroll
sideways but the tables and the cohort grid inside their own boxes). With HAINA_SCREENSHOTS=1
each page is saved as docs/screenshots/<page>-desk.png and -phone.png (the README shows them).

Without chromium the module is skipped, unless HAINA_REQUIRE_BROWSER=1 (CI) makes that a
failure. Never `playwright install`: the browser is the system's."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from rich.console import Console
from sqlalchemy import text

from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.core.pgtemp import free_port
from haina.core.schema import upgrade

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
OWNER, VIEWER, PASSWORD = "owner@demo-tires.example", "viewer@demo-tires.example", "demo password 1"
DESK, PHONE = {"width": 1280, "height": 800}, {"width": 360, "height": 740}


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:  # pragma: no cover - it is in requirements.lock
        return f"playwright is not installed: {exc}"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo on a real server: its base URL, sessionmaker, and ids the tests look for."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("HAINA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HAINA_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from haina.analytics import service as analytics
    from haina.analytics.schemas import RefreshIn
    from haina.api import create_app
    from haina.core.config import Settings
    from haina.demo import load_demo
    from haina.platform import apps
    from haina.platform import service as platform
    from haina.platform.schemas import AppIn
    from haina.webhooks import service as webhooks
    from haina.webhooks.delivery import Dispatcher
    from haina.webhooks.schemas import EndpointIn

    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    load_demo(sessions, quick=True, members=60, only=("demo-tires",), console=Console(quiet=True))
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "demo-tires")
        job = analytics.start_refresh(s, tenant, RefreshIn())
        platform.demo_staff(s, "demo-tires", OWNER, PASSWORD)
        platform.create_staff(s, "demo-tires", VIEWER, PASSWORD, "read-only")
        app = apps.register_app(s, AppIn(
            name="Win-back", category="marketing", description="Brings lapsed buyers back "
            "with a coupon at the right time.", redirect_uris=["https://winback.example/cb"],
            scopes=["orders:read", "members:read", "webhooks:write"], pricing="free"))
        apps.install(s, tenant.id, app.client_id, ["orders:read", "members:read"], None)
        webhooks.create_endpoint(s, tenant, EndpointIn(url="http://127.0.0.1:9/winback",
                                                       event_types=["staff.*"]))
        platform.create_staff(s, "demo-tires", "clerk@demo-tires.example", PASSWORD, "staff")
    assert analytics.run_job(sessions, job.id) == "succeeded"
    jobs, dispatcher = [], Dispatcher(sessions)
    for _ in range(100):  # past the demo's events (nothing wants them) to the clerk's
        jobs += dispatcher.fan_out(1000)
        if jobs:
            break
    delivery = jobs[-1]  # the clerk's staff.created (the owner's and viewer's came before)
    with transaction(sessions) as s:  # every attempt failed (the schedule: tests/webhooks)
        s.execute(text("UPDATE webhook_deliveries SET status = 'failed', attempts = 8, "
                       "last_status_code = 503, last_error = 'HTTP 503 from the receiver'"))
        member_id, name = s.execute(text(
            "SELECT m.id, m.name FROM members m JOIN analytics_member_scores s "
            "ON s.tenant_id = m.tenant_id AND s.member_id = m.id "
            "WHERE m.tenant_id = :t AND m.name IS NOT NULL ORDER BY s.clv_minor DESC LIMIT 1"),
            {"t": tenant.id}).one()
        order_id = s.execute(text("SELECT id FROM orders WHERE tenant_id = :t AND member_id = :m "
                                  "ORDER BY id DESC LIMIT 1"),
                             {"t": tenant.id, "m": member_id}).scalar_one()

    server = uvicorn.Server(uvicorn.Config(
        create_app(Settings(database_url=url, token_cache_seconds=0), engine=engine),
        host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{server.config.port}", "sessions": sessions,
           "tenant": tenant, "member_id": member_id, "member_name": name,
           "order_id": order_id, "delivery_id": delivery.delivery_id}
    server.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def expect(locator: Any) -> Any:
    """Playwright's retrying assertions (imported late: without playwright the module skips)."""
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(locator)


def _sign_in(browser: Any, site: dict[str, Any], email: str, password: str = PASSWORD) -> Any:
    context = browser.new_context(viewport=DESK, locale="en-US")
    page = context.new_page()
    page.goto(site["base"] + "/console")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    # The sign-in page is served at /console too: wait for the form's own navigation, never for
    # a URL that already matches before the form is sent.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    return page


@pytest.fixture(scope="module")
def owner(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    """A page signed in as the demo's owner."""
    page = _sign_in(browser, site, OWNER)
    yield page
    page.context.close()


def axe(page: Any) -> None:
    """No WCAG 2.1 A/AA violation on the page as it is."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated, not a <script>: the console's CSP stays on
    result = page.evaluate("""() => axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})""")
    violations = [{"rule": v["id"], "impact": v["impact"], "help": v["help"],
                   "where": [n["target"] for n in v["nodes"][:5]]} for v in result["violations"]]
    assert violations == [], f"{page.url}: " + json.dumps(violations, indent=1)


def check(page: Any, name: str) -> None:
    """axe at desk and phone width; at phone width nothing scrolls sideways; screenshots."""
    for width, size in (("desk", DESK), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_load_state("load")
        axe(page)
        if width == "phone":
            overflow = page.evaluate("() => document.documentElement.scrollWidth")
            wide = [] if overflow <= PHONE["width"] else page.evaluate("""() =>
                [...document.querySelectorAll('main *')].filter(e => e.scrollWidth >
                    e.clientWidth && getComputedStyle(e).overflowX === 'visible')
                .map(e => e.tagName + '.' + e.className).slice(-3)""")  # what overflows
            assert overflow <= PHONE["width"], f"{page.url} is {overflow} px wide: {wide}"
            wrapped = page.evaluate("""() => [...document.querySelectorAll('ul.figures .value')]
                .filter(e => e.getBoundingClientRect().height >
                             1.5 * parseFloat(getComputedStyle(e).lineHeight))
                .map(e => e.textContent)""")  # a figure broken over two lines
            assert wrapped == [], f"{page.url}: figures wrap at phone width: {wrapped}"
        if os.environ.get("HAINA_SCREENSHOTS") == "1":
            _save(page.screenshot(full_page=False), SCREENSHOTS / f"{name}-{width}.png")
    page.set_viewport_size(DESK)


def _save(png: bytes, path: Path) -> None:
    """A small PNG: the screenshot reduced to a 64-colour palette."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
    image.save(path, optimize=True)


def test_sign_in_and_the_dashboard_draws_its_charts(browser, site):
    context = browser.new_context(viewport=DESK, locale="en-US")
    page = context.new_page()
    page.goto(site["base"] + "/console")
    assert page.locator("input[type=password]").count() == 1
    check(page, "sign-in")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():  # the URL is /console before and after: wait for the post
        page.keyboard.press("Enter")  # the form submits from the keyboard
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for i in range(3):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100
        marks = charts.nth(i).locator("rect.bar, circle.dot")
        assert marks.count() >= 12  # a mark per week
    drawn = page.evaluate("""() => [...document.querySelectorAll('svg.chart rect.bar')]
        .filter(r => r.getBBox().height > 0).length""")
    assert drawn >= 11  # bars with sales have height
    check(page, "dashboard")
    context.close()


def test_keyboard_users_skip_to_the_content_and_reach_every_section(owner, site):
    owner.goto(site["base"] + "/console/orders")
    owner.keyboard.press("Tab")
    assert owner.evaluate("() => document.activeElement.textContent") == "Skip to content"
    owner.keyboard.press("Enter")
    assert owner.evaluate("() => document.activeElement.id") == "main"
    owner.goto(site["base"] + "/console")
    reached = []
    for _ in range(22):  # the skip link, the language, sign-out and the 19 sections
        owner.keyboard.press("Tab")
        reached.append(owner.evaluate("() => document.activeElement.getAttribute('href')"))
    for section in ("/console/members", "/console/lifecycle", "/console/webhooks",
                    "/console/settings"):
        assert section in reached


def test_find_a_member_and_open_their_page(owner, site):
    owner.goto(site["base"] + "/console/members")
    check(owner, "members")
    search = owner.get_by_label("Name, email or phone begins with")
    search.fill(site["member_name"][:3])
    search.press("Enter")
    owner.wait_for_url(re.compile(r".*/console/members\?q="))
    owner.get_by_role("link", name=site["member_name"]).first.click()
    owner.wait_for_url(f"{site['base']}/console/members/{site['member_id']}")
    assert owner.get_by_role("heading", level=1).inner_text() == site["member_name"]
    lifecycle = owner.locator("section", has=owner.get_by_role("heading", name="Lifecycle"))
    assert re.search(r"P\(alive\)\s+\d+%", lifecycle.inner_text())
    assert re.search(r"CLV, next 12 months\s+CN¥[\d,]+\.\d\d", lifecycle.inner_text())
    assert owner.get_by_role("link", name=site["order_id"]).count() >= 1
    check(owner, "member")
    owner.get_by_role("link", name=site["order_id"]).first.click()
    assert owner.get_by_role("heading", name="Ledger entries").is_visible()
    check(owner, "order")


def test_lifecycle_orders_coupons_and_apps_pages(owner, site):
    owner.goto(site["base"] + "/console/lifecycle")
    assert owner.locator("svg.heatmap rect.heat").count() > 20
    assert owner.locator("svg.chart").count() == 3  # stages, segments, cohorts
    owner.wait_for_function("""() => [...document.images].every(i => i.complete)""",
                            timeout=120_000)
    loaded = owner.evaluate("() => [...document.images].map(i => i.naturalWidth)")
    assert len(loaded) >= 2 and all(w > 0 for w in loaded)  # the fit plots, as SVG
    check(owner, "lifecycle")
    owner.get_by_role("link", name="at risk:").first.click()
    assert "stage=at_risk" in owner.url and owner.locator("span.stage-at_risk").count() > 0
    owner.goto(site["base"] + "/console/orders")
    owner.get_by_label("Status").select_option("completed")
    owner.get_by_role("button", name="Filter").click()
    statuses = owner.locator("tbody span.tag").all_inner_texts()
    assert statuses and set(statuses) == {"completed"}
    check(owner, "orders")
    owner.goto(site["base"] + "/console/coupons")
    owner.get_by_label("Code").fill("SPRING20")
    owner.get_by_label("Percent off (percent coupons)").fill("20")
    owner.get_by_label("Minimum spend, CNY").fill("300")
    owner.get_by_role("button", name="Create coupon").click()
    assert owner.get_by_role("status").inner_text() == "Coupon SPRING20 created."
    check(owner, "coupons")
    owner.get_by_role("navigation").get_by_role("link", name="Promotions").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Promotions"
    check(owner, "promotions")
    owner.goto(site["base"] + "/console/apps")
    assert owner.get_by_role("heading", name="Win-back").count() == 2  # installed, and listed
    assert "orders:read" in owner.locator("ul.scopes").first.inner_text()
    check(owner, "apps")


def test_an_owner_replays_a_failed_webhook_delivery(owner, site):
    owner.goto(site["base"] + "/console/webhooks?status=failed")
    row = owner.locator(f"tr#{site['delivery_id']}")
    assert "HTTP 503" in row.inner_text()
    check(owner, "webhooks")
    row.get_by_role("button", name="Replay").click()
    assert "is queued to be sent again" in owner.get_by_role("status").inner_text()
    with transaction(site["sessions"]) as s:
        status = s.execute(text("SELECT status, attempts FROM webhook_deliveries WHERE id = :d"),
                           {"d": site["delivery_id"]}).one()
    assert tuple(status) == ("pending", 0)


def test_switching_the_language_translates_the_console(owner, site):
    owner.goto(site["base"] + "/console")
    owner.get_by_role("link", name="中文").click()
    assert owner.evaluate("() => document.documentElement.lang") == "zh-CN"
    assert owner.get_by_role("heading", level=1).inner_text() == "概览"
    assert owner.get_by_role("navigation").get_by_role("link", name="会员").is_visible()
    assert "¥" in owner.locator("ul.figures").inner_text()
    check(owner, "dashboard-zh")
    owner.goto(site["base"] + "/console/members")  # remembered
    assert owner.get_by_role("heading", level=1).inner_text() == "会员"
    owner.get_by_role("link", name="English").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Members"


def test_a_read_only_account_is_refused_a_write(browser, site):
    page = _sign_in(browser, site, VIEWER)
    page.goto(site["base"] + "/console/coupons")
    assert page.get_by_role("button", name="Create coupon").count() == 0
    assert "can look but not change anything" in page.inner_text("main")
    page.goto(site["base"] + "/console/webhooks?status=failed")
    assert page.get_by_role("button", name="Replay").count() == 0
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(site["base"] + "/console/coupons", form={
        "csrf_token": token, "code": "VIEWER10", "kind": "percent", "percent": "10"})
    assert r.status == 403 and "read-only" in r.text()
    r = page.request.post(
        f"{site['base']}/console/webhooks/deliveries/{site['delivery_id']}/replay",
        form={"csrf_token": token})
    assert r.status == 403
    with transaction(site["sessions"]) as s:
        assert s.execute(text("SELECT count(*) FROM coupons WHERE code = 'VIEWER10'")).scalar() == 0
    page.context.close()


def test_book_a_slot_for_an_order(owner, site):
    """From an order's page to the map of service points, a point's week, a slot, booked."""
    with transaction(site["sessions"]) as s:
        order_id = s.execute(text(
            "SELECT id FROM orders WHERE tenant_id = :t AND status IN ('paid', 'completed') "
            "ORDER BY id DESC LIMIT 1"), {"t": site["tenant"].id}).scalar_one()
    owner.goto(f"{site['base']}/console/orders/{order_id}")
    owner.get_by_role("link", name="Book a slot for this order").click()
    assert owner.locator("svg.map polygon.hex").count() >= 2  # Shanghai's and Hangzhou's cells
    assert owner.locator("svg.map circle.pin").count() == 30
    check(owner, "service-points")
    owner.locator("main table a").first.click()
    assert owner.get_by_label("Order").input_value() == order_id
    check(owner, "service-point")
    owner.get_by_label("Service").select_option("tire-fitting")
    day = dt.date.today() + dt.timedelta(days=2)
    owner.get_by_label("Day").fill(day.isoformat())
    owner.get_by_role("button", name="Show slots").click()
    owner.locator("input[name=start]").nth(2).check()
    owner.get_by_label("Note").fill("winter tires, 4 pieces")
    owner.get_by_role("button", name="Book", exact=True).click()
    notice = owner.get_by_role("status").inner_text()
    booked = re.search(r"Booking (\S+) is confirmed", notice).group(1)
    entry = owner.locator(f"li#{booked}")
    assert order_id in entry.inner_text() and "confirmed" in entry.inner_text()
    with transaction(site["sessions"]) as s:
        row = s.execute(text("SELECT order_id, status FROM bookings WHERE id = :b"),
                        {"b": booked}).one()
    assert tuple(row) == (order_id, "confirmed")
    entry.get_by_role("link", name=order_id).click()
    assert re.search(r"tire-fitting · .+ · confirmed", owner.locator("#booking").inner_text())


def test_create_a_threshold_promotion_and_pause_it(owner, site):
    owner.goto(site["base"] + "/console/promotions")
    owner.get_by_label("Name").fill("满300减40")
    owner.get_by_label("spend threshold").check()
    owner.get_by_label("Step 1: spend, CNY").fill("300")
    owner.get_by_label("Step 1: off, CNY").fill("40")
    owner.get_by_label("Repeat for every multiple (每满减)").check()
    owner.get_by_role("button", name="Create promotion").click()
    assert owner.get_by_role("status").inner_text() == "Promotion 满300减40 created."
    row = owner.locator("tr", has_text="满300减40")
    assert "from 300.00, 40.00 off" in row.inner_text()
    check(owner, "promotions")
    row.get_by_role("button", name="Pause 满300减40").click()
    assert "is paused" in owner.get_by_role("status").inner_text()
    with transaction(site["sessions"]) as s:
        assert s.execute(text("SELECT status FROM promotions WHERE name = '满300减40'")
                         ).scalar_one() == "paused"


def _api(site: dict[str, Any], token: str, method: str, path: str, body: Any) -> Any:
    import httpx
    r = httpx.request(method, site["base"] + path, json=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_a_declaration_and_its_three_document_check(owner, site):
    """A cross-border order of demo-tires declared through the API (an app's token), then
    read in the console: the list, the declaration's check, the order's customs status."""
    from support import app_token
    token = app_token(site["sessions"], "demo-tires", "catalog:write orders:write "
                      "payments:write crossborder:write")
    product = _api(site, token, "POST", "/v1/products", {
        "sku": "XB-SERUM", "title": "Serum 精华", "stock": 5,
        "price": {"amount": "1000.00", "currency": "CNY"}})
    brand = _api(site, token, "POST", "/v1/crossborder/brands", {
        "name": "Maison E", "origin_country": "FR", "owner": "Maison E SAS",
        "agency_name": "Agency", "authorisation": {
            "grantor": "Maison E SAS", "grantee": "Tires", "reference": "AUT-1",
            "valid_from": "2026-01-01", "valid_until": "2099-01-01"}})
    from haina.core.db import transaction
    from haina.crossborder import service as crossborder
    from haina.platform import service as platform
    with transaction(site["sessions"]) as s:  # platform staff approve it (the CLI's service)
        crossborder.review_brand(s, platform.tenant_for_slug(s, "demo-tires"), brand["id"],
                                 "approve", "checked", "staff")
    _api(site, token, "PUT", f"/v1/crossborder/products/{product['id']}", {
        "hs_code": "3304990099", "origin_country": "FR", "vat_rate": "0.13",
        "consumption_rate": "0.15", "net_weight_kg": "0.050", "gross_weight_kg": "0.120",
        "mode": "bonded", "brand_id": brand["id"]})
    order = _api(site, token, "POST", "/v1/orders", {
        "lines": [{"sku": "XB-SERUM", "quantity": 1}],
        "address": {"name": "王芳", "phone": "13800138000", "province": "浙江省",
                    "city": "杭州市", "line1": "西湖区文三路 1 号"},
        "crossborder": {"buyer": {"name": "王芳", "id_number": "360403198001010075",
                                  "phone": "13800138000"}}})
    _api(site, token, "POST", "/v1/payment_intents",
         {"order_id": order["id"], "payment_method": {"type": "cash"}})
    declared = _api(site, token, "POST", "/v1/crossborder/declarations", {
        "order_id": order["id"],
        "enterprise": {"ebp_code": "3301960000", "ebp_name": "Haina",
                       "ebc_code": "3301960001", "ebc_name": "Demo Tires",
                       "agent_code": "3301980000", "agent_name": "Broker",
                       "customs_code": "2991", "port_code": "2991",
                       "dxp_id": "DXPENT0000000001"},
        "payment": {"pay_code": "312226T001", "pay_name": "Alipay", "transaction_id": "P1"},
        "waybill": {"logistics_code": "3122480063", "logistics_name": "SF",
                    "logistics_no": "SF0001"}})
    owner.goto(site["base"] + "/console")
    owner.get_by_role("navigation").get_by_role("link", name="Cross-border").click()
    assert "3604**********0075" in owner.locator("main table").inner_text()
    check(owner, "declarations")
    owner.get_by_role("link", name=declared["id"]).click()
    assert owner.get_by_text("The order, the payment and the waybill agree.").is_visible()
    assert owner.locator("main table").first.locator("strong.bad").count() == 0
    owner.get_by_text("CEB311", exact=True).click()  # the message opens, masked
    assert "3604**********0075" in owner.locator("pre.xml").first.inner_text()
    owner.evaluate("() => window.scrollTo(0, 0)")
    check(owner, "declaration")
    assert not re.search(r"\d{17}[\dX]", owner.locator("body").inner_text())
    owner.get_by_role("link", name=order["id"]).first.click()
    assert "ready" in owner.locator("#customs").inner_text()


def test_export_a_members_data_and_download_the_archive(owner, site):
    owner.goto(f"{site['base']}/console/members/{site['member_id']}")
    owner.get_by_role("link", name="Export their data…").click()
    assert "personal information?" in owner.get_by_role("heading", level=1).inner_text()
    check(owner, "data-request-confirm")
    owner.get_by_role("button", name="Export now").click()
    assert "is done" in owner.get_by_role("status").inner_text()
    assert "Win-back" in owner.locator("main").inner_text()  # it holds members' data: told
    check(owner, "data-request")
    with owner.expect_download() as download:
        owner.get_by_role("button", name="Download the archive (zip)").click()
    assert download.value.suggested_filename.endswith(".zip")
    owner.goto(site["base"] + "/console/data-requests")
    assert owner.locator("tbody tr").count() >= 1
    check(owner, "data-requests")


def test_an_owner_adds_a_webhook_endpoint_and_sees_its_secret_once(owner, site):
    owner.goto(site["base"] + "/console/webhooks")
    owner.get_by_label("URL").fill("https://erp.example.com/haina")
    owner.get_by_label("Events (comma-separated; order.paid, order.*, or *)").fill("order.paid")
    owner.get_by_role("button", name="Add endpoint").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Endpoint added"
    assert owner.locator("#secret").inner_text().startswith("whsec_")
    check(owner, "endpoint-secret")
    owner.get_by_role("link", name="Back to the webhooks").click()
    owner.get_by_role("button", name="Disable https://erp.example.com/haina").click()
    assert "is disabled" in owner.get_by_role("status").inner_text()


def test_create_a_campaign_from_a_segment_and_read_its_lift(owner, site):
    from haina.analytics import service as analytics
    from haina.analytics.schemas import SegmentCreate
    with transaction(site["sessions"]) as s:
        segment = analytics.create_segment(s, site["tenant"], SegmentCreate.model_validate(
            {"name": "slipping", "rule": {"stage_in": ["at_risk", "lapsed"]}}))
    owner.goto(site["base"] + "/console")
    owner.get_by_role("navigation").get_by_role("link", name="Campaigns").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Campaigns"
    check(owner, "campaigns")
    owner.get_by_label("Name").fill("Win back the slipping")
    owner.get_by_label("Saved segment").select_option(value=segment.id)
    owner.get_by_label("Amount off, CNY (amount coupons)").fill("30")
    owner.get_by_label("Holdout, % of the members").fill("20")
    last = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    owner.get_by_label("Last day").fill(last)
    owner.get_by_role("button", name="Create campaign").click()
    assert owner.get_by_role("status").inner_text() == "Campaign Win back the slipping created."
    assert owner.get_by_role("heading", level=1).inner_text() == "Win back the slipping"
    owner.wait_for_function("""() => [...document.images].every(i => i.complete)""",
                            timeout=120_000)
    assert owner.evaluate("() => [...document.images].map(i => i.naturalWidth)")[0] > 0
    expect(owner.locator("#enrolment-progress")).to_be_visible()  # the launch's enrolment
    assert owner.locator("#enrolment-status").inner_text() in ("done", "queued")
    check(owner, "campaign")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Re-evaluate now").click()
    expect(owner.get_by_role("status")).to_contain_text(
        "A look for new members of Win back the slipping is queued")
    expect(owner.locator("#enrolment-status")).to_have_text("queued")


def test_storefront_keys_qualification_files_settings_products_and_a_promotions_edit(owner,
                                                                                    site):
    """The session-7 pages, each checked at both widths: a sandbox key made (shown once), the
    storefront page with its inbox, a brand's qualification file, the time-zone setting, a
    promotion's edit form, the products and a product's stock."""
    from haina.crossborder import service as crossborder
    from haina.crossborder.schemas import BrandIn
    from haina.marketing import service as marketing
    from haina.marketing.schemas import PromotionCreate
    with transaction(site["sessions"]) as s:
        brand = crossborder.submit_brand(s, site["tenant"], BrandIn.model_validate({
            "name": "Maison Lumière", "origin_country": "FR", "owner": "Lumière SAS",
            "agency_name": "Hangzhou Cross-border Services",
            "authorisation": {"grantor": "Lumière SAS", "grantee": "demo-tires",
                              "reference": "AUT-2026-1", "valid_from": "2026-01-01",
                              "valid_until": "2099-12-31"},
            "documents": [{"kind": "trademark_registration", "title": "TM 12345",
                           "reference": "TM12345"}]}))
        promotion = marketing.create_promotion(s, site["tenant"], PromotionCreate.model_validate(
            {"name": "Winter 10%", "kind": "percent", "percent": "10"}))
    owner.goto(site["base"] + "/console/storefront")
    owner.get_by_label("Name").fill("Test app")
    owner.get_by_label("Channel").select_option(value="app")
    owner.get_by_label("Sandbox: sign-in codes also go to the sandbox inbox below (for "
                       "testing, never in a shipped app)").check()
    owner.get_by_role("button", name="Create key").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Key created"
    assert owner.locator("#key").inner_text().startswith("pk_")
    check(owner, "storefront-key")
    owner.get_by_role("link", name="Back to the storefront").click()
    assert owner.locator("tr", has_text="Test app").count() == 1
    check(owner, "storefront")
    owner.goto(site["base"] + "/console/crossborder")
    owner.get_by_role("link", name="Qualification files of foreign brands").click()
    check(owner, "brands")
    owner.get_by_role("link", name="Maison Lumière").click()
    assert owner.url.endswith(f"/console/crossborder/brands/{brand.id}")
    check(owner, "brand")
    owner.goto(site["base"] + "/console/settings")
    owner.get_by_label("IANA time zone").fill("Asia/Shanghai")
    owner.get_by_role("button", name="Save time zone").click()
    assert owner.get_by_role("status").inner_text() == "Settings saved: Asia/Shanghai."
    check(owner, "settings")
    owner.goto(site["base"] + f"/console/promotions/{promotion.id}/edit")
    owner.get_by_label("Priority").fill("7")
    owner.get_by_role("button", name="Save").click()
    assert owner.get_by_role("status").inner_text() == "Winter 10% is saved."
    owner.goto(site["base"] + f"/console/promotions/{promotion.id}/edit")
    check(owner, "promotion-edit")
    owner.goto(site["base"] + "/console")
    owner.get_by_role("navigation").get_by_role("link", name="Products").click()
    check(owner, "products")
    owner.locator("tbody tr a").first.click()
    assert owner.get_by_role("heading", name="Stock per location").count() >= 1
    check(owner, "product")


def test_payments_carts_staff_and_the_audit_trail(owner, browser, site):
    """The session-8 pages, each checked at both widths: a refunded payment found by its
    status and opened (attempts, refunds, ledger entries), a cart and its page, an account
    invited and its role changed by the owner, its password reset by the owner and changed
    by its holder, and the audit trail naming who did it. The payments page's balances (the
    demo owes the shop hundreds of thousands of yuan) fit on one line at phone width."""
    from support import app_token
    token = app_token(site["sessions"], "demo-tires", "orders:write payments:write")
    with transaction(site["sessions"]) as s:
        sku = s.execute(text("SELECT sku FROM variants WHERE tenant_id = :t ORDER BY sku "
                             "LIMIT 1"), {"t": site["tenant"].id}).scalar_one()
    order = _api(site, token, "POST", "/v1/orders", {"member_id": site["member_id"],
                                                     "lines": [{"sku": sku, "quantity": 1}]})
    _api(site, token, "POST", "/v1/payment_intents",
         {"order_id": order["id"], "payment_method": {"type": "cash"}})
    refund = _api(site, token, "POST", "/v1/refunds", {
        "order_id": order["id"], "amount": {"amount": "10.00", "currency": "CNY"},
        "reason": "late delivery"})
    cart = _api(site, token, "POST", "/v1/carts", {"member_id": site["member_id"],
                                                   "lines": [{"sku": sku, "quantity": 2}]})
    owner.goto(site["base"] + "/console")
    owner.get_by_role("navigation").get_by_role("link", name="Payments").click()
    assert owner.get_by_role("heading", level=1).inner_text() == "Payments"
    owner.get_by_label("Order id").fill(order["id"])
    with owner.expect_navigation():
        owner.get_by_role("button", name="Filter").click()
    expect(owner.locator("tbody tr")).to_have_count(1)
    owed = owner.locator("ul.figures .value[title]")  # a long balance in its short form
    assert owed.count() >= 1 and owed.first.get_attribute("title").startswith("CN¥")
    check(owner, "payments")
    owner.locator("tbody tr a").first.click()
    expect(owner.get_by_role("heading", name="Refunds")).to_be_visible()
    expect(owner.locator(f"tr#{refund['id']}")).to_contain_text("late delivery")
    assert owner.locator("main table caption", has_text="refund").count() >= 1
    check(owner, "payment")
    owner.get_by_role("navigation").get_by_role("link", name="Carts").click()
    owner.get_by_label("State").select_option("open")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Filter").click()
    expect(owner.locator(f"tr#{cart['id']}")).to_contain_text("open")
    check(owner, "carts")
    owner.get_by_role("link", name=cart["id"]).click()
    expect(owner.get_by_role("heading", name="Lines, priced now")).to_be_visible()
    expect(owner.locator("main table")).to_contain_text(sku)
    check(owner, "cart")
    owner.get_by_role("navigation").get_by_role("link", name="Staff").click()
    owner.get_by_label("Their email").fill("new.hire@demo-tires.example")
    owner.get_by_label("Their role").select_option("staff")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Create the account").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Account created")
    assert len(owner.locator("#password").inner_text()) >= 10
    check(owner, "staff-invited")
    owner.get_by_role("link", name="Back to the staff").click()
    owner.get_by_label("Role of new.hire@demo-tires.example", exact=True).select_option(
        "read-only")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Change role of new.hire@demo-tires.example").click()
    expect(owner.get_by_role("status")).to_have_text(
        "Role changed: new.hire@demo-tires.example: read-only.")
    check(owner, "staff")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Reset password of new.hire@demo-tires.example").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Password reset")
    made = owner.locator("#password").inner_text()
    assert len(made) >= 16
    check(owner, "staff-password")
    hire = _sign_in(browser, site, "new.hire@demo-tires.example", made)  # read-only now
    hire.goto(site["base"] + "/console/staff")
    hire.get_by_label("Current password").fill(made)
    hire.get_by_label("New password", exact=True).fill("the new hire's own password")
    hire.get_by_label("New password again").fill("the new hire's own password")
    with hire.expect_navigation():
        hire.get_by_role("button", name="Change my password").click()
    expect(hire.get_by_role("status")).to_contain_text("Your password is changed")
    hire.context.close()
    owner.get_by_role("link", name="Back to the staff").click()
    owner.get_by_role("navigation").get_by_role("link", name="Audit trail").click()
    owner.get_by_label("Made by").select_option("staff")
    with owner.expect_navigation():
        owner.get_by_role("button", name="Filter").click()
    rows = owner.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("staff.password_changed")
    expect(rows.nth(0)).to_contain_text("new.hire@demo-tires.example")
    expect(rows.nth(1)).to_contain_text("staff.password_reset")
    expect(rows.nth(2)).to_contain_text("staff.role_changed")
    expect(rows.nth(2)).to_contain_text(OWNER)
    check(owner, "audit")
