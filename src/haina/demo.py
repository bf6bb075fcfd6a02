"""Demo merchants: ``demo-tires`` (tires and car care, two years of members buying again and
again, or drifting away) and ``demo-beauty`` (cosmetics; in the full demo also a qualified
foreign brand with its operating agency, cross-border products and declared orders).

``load_demo`` is idempotent: a merchant that exists is left as it is. Each merchant loads in
one transaction, so an interrupted load leaves nothing half done.

The buying history is drawn the way the BG/NBD model says customers behave: each member buys
at their own Poisson rate (gamma-distributed across members) and, after each purchase, drops
out for good with their own probability (beta-distributed). So the analytics have loyal
regulars, one-off buyers and lapsed customers to find.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from haina.catalog import service as catalog
from haina.catalog.schemas import AttributeDefCreate, CategoryCreate, ProductCreate, VariantCreate
from haina.core.context import Tenant
from haina.core.db import transaction, utcnow
from haina.core.errors import NotFound
from haina.core.ids import new_id
from haina.core.money import MoneyIn, Price, from_minor
from haina.inventory import service as inventory
from haina.inventory.schemas import LocationCreate
from haina.orders.schemas import OrderLineRecord, OrderRecord
from haina.orders.service import order_record, price_lines
from haina.platform import service as platform
from haina.platform.schemas import TenantSettings

TIRE_SIZES = [(185, 65, 15), (195, 65, 15), (205, 55, 16), (215, 55, 17), (225, 45, 17),
              (225, 60, 18), (235, 55, 19)]
TIRE_BRANDS = [("Michelin", "米其林", "Primacy 4", 1.45), ("Bridgestone", "普利司通", "Turanza T005", 1.3),
               ("Continental", "马牌", "PremiumContact 6", 1.35), ("Linglong", "玲珑", "Green-Max", 0.7),
               ("Chaoyang", "朝阳", "RP26", 0.6)]
CARE = [("OIL-5W30-4L", "全合成机油 5W-30 4L Fully synthetic motor oil", "269.00", "care"),
        ("OIL-0W20-4L", "全合成机油 0W-20 4L Fully synthetic motor oil", "319.00", "care"),
        ("WIPER-24", "无骨雨刮 24寸 Frameless wiper blade 24in", "69.00", "care"),
        ("WIPER-18", "无骨雨刮 18寸 Frameless wiper blade 18in", "59.00", "care"),
        ("COOLANT-2L", "防冻液 2L Coolant", "79.00", "care"),
        ("WASH-FLUID", "玻璃水 2L Windscreen washer fluid", "19.90", "care"),
        ("CAR-SHAMPOO", "洗车液 Car shampoo 1L", "39.00", "care"),
        ("WAX-SET", "车蜡套装 Car wax kit", "129.00", "care"),
        ("AIR-FILTER", "空气滤清器 Air filter", "89.00", "care"),
        ("CABIN-FILTER", "空调滤芯 Cabin air filter", "79.00", "care"),
        ("BRAKE-FLUID", "刹车油 DOT4 1L Brake fluid", "59.00", "care"),
        ("VALVE-CAPS", "气门帽 4只 Valve caps (4)", "15.00", "care"),
        ("TPMS-SENSOR", "胎压传感器 TPMS sensor", "199.00", "care"),
        ("INFLATOR", "车载充气泵 Portable tire inflator", "239.00", "care"),
        ("REPAIR-KIT", "补胎工具套装 Tire repair kit", "49.00", "care")]
BEAUTY = [("SERUM-30", "精华液 30ml Hydrating serum", "380.00"),
          ("CREAM-50", "面霜 50ml Night cream", "560.00"),
          ("SUNSCREEN-50", "防晒霜 SPF50 Sunscreen", "220.00"),
          ("TONER-200", "爽肤水 200ml Toner", "260.00"),
          ("MASK-10", "面膜 10片 Sheet masks (10)", "199.00"),
          ("LIPSTICK-RED", "口红 正红 Lipstick, red", "320.00"),
          ("CLEANSER-150", "洁面乳 150ml Cleanser", "180.00"),
          ("EYE-CREAM-15", "眼霜 15ml Eye cream", "650.00")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CHANNELS = [("web", 0.40), ("mini_program", 0.35), ("pos", 0.20), ("app", 0.05)]


def load_demo(sessions: sessionmaker[Session], *, quick: bool = False, seed: int = 7,
              console: Console | None = None, today: dt.date | None = None,
              members: int | None = None, only: tuple[str, ...] | None = None,
              crossborder: bool | None = None) -> dict[str, str]:
    """Create the demo merchants that do not exist yet; returns slug → what happened.
    ``members`` overrides how many members each merchant gets and ``only`` names the merchants
    to load (the browser tests load a small demo-tires). ``crossborder``: demo-beauty's
    cross-border part (default: in the full demo only, so the quick one keeps its shape)."""
    with_crossborder = not quick if crossborder is None else crossborder
    console = console or Console(stderr=True)
    today = today or utcnow().date()
    done = {}
    for slug, loader in (("demo-tires", _load_tires), ("demo-beauty", _load_beauty)):
        if only is not None and slug not in only:
            continue
        with transaction(sessions) as session:
            try:
                platform.get_tenant_by_slug(session, slug)
                done[slug] = "exists"
                continue
            except NotFound:
                pass
            console.print(f"demo merchant {slug}: loading"
                          + ("" if quick else " (a minute or two)") + "…", highlight=False)
            loader(session, random.Random(seed), quick, console, today, members)
            if slug == "demo-beauty" and with_crossborder:
                _crossborder_beauty(session, platform.tenant_for_slug(session, slug),
                                    random.Random(seed), today)
            done[slug] = "created"
    engine = sessions.kw.get("bind")
    if "created" in done.values() and engine is not None and engine.dialect.name == "postgresql":
        # statistics now rather than when autovacuum comes by: until then the planner may read
        # a row by key through any (tenant_id, …) index (docs/operations.md)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    for slug, what in done.items():
        console.print(f"demo merchant {slug}: {what}")
    return done


def _tenant(session: Session, slug: str, name: str, settings: TenantSettings) -> Tenant:
    t = platform.create_tenant(session, slug, name, "CNY", settings)
    return Tenant(id=t.id, slug=t.slug, currency=t.currency, settings=t.settings)


class _ProgressLines:
    """Progress as plain lines, for a console that is not a terminal (``make run`` piped into a
    log, an IDE's run window, CI), where Rich's live bars show nothing until the end: a line
    when a task starts, at every tenth of it and at most ``every`` seconds apart otherwise."""

    def __init__(self, console: Console, every: float = 5.0) -> None:
        self.console = console
        self.every = every
        self.tasks: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def add_task(self, description: str, total: int) -> int:
        self.tasks.append({"description": description, "total": total, "done": 0,
                           "step": 0, "said": time.monotonic()})
        self._say(len(self.tasks) - 1)
        return len(self.tasks) - 1

    def advance(self, task: int, advance: int = 1) -> None:
        t = self.tasks[task]
        t["done"] += advance
        step = t["done"] * 10 // t["total"] if t["total"] else 10
        if step > t["step"] or time.monotonic() - t["said"] >= self.every:
            t["step"] = step
            self._say(task)

    def update(self, task: int, description: str | None = None) -> None:
        if description is not None:
            self.tasks[task]["description"] = description
            self._say(task)

    def _say(self, task: int) -> None:
        t = self.tasks[task]
        t["said"] = time.monotonic()
        elapsed = int(t["said"] - self.started)
        self.console.print(f"{t['description']} {t['done']}/{t['total']} "
                           f"({elapsed // 60}:{elapsed % 60:02d})", highlight=False)


@contextmanager
def _progress(console: Console) -> Iterator[Any]:
    """Rich bars on a terminal, plain lines otherwise (see :class:`_ProgressLines`)."""
    if not console.is_terminal:
        yield _ProgressLines(console)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        yield progress


def _load_tires(session: Session, rnd: random.Random, quick: bool, console: Console,
                today: dt.date, n_members: int | None = None) -> None:
    from haina.members import service as members
    from haina.members.schemas import TierCreate

    tenant = _tenant(session, "demo-tires", "驰途轮胎养护 Chitu Tires & Car Care", TenantSettings(
        shipping_fee="10.00", free_shipping_over="199.00", points_per_unit=1,
        points_value_minor=1, points_expire_days=365))
    attributes: list[tuple[str, str, Literal["number", "text", "enum", "bool"], str | None,
                           list[str] | None]] = [
            ("width", "Section width", "number", "mm", None),
            ("aspect_ratio", "Aspect ratio", "number", "%", None),
            ("rim_diameter", "Rim diameter", "number", "in", None),
            ("season", "Season", "enum", None, ["summer", "winter", "all_season"]),
            ("brand", "Brand", "text", None, None)]
    for code, name, type_, unit, options in attributes:
        catalog.create_attribute(session, tenant, AttributeDefCreate(
            code=code, name=name, type=type_, unit=unit, options=options))
    tires = catalog.create_category(session, tenant, CategoryCreate(name="轮胎 Tires", slug="tires"))
    care = catalog.create_category(session, tenant, CategoryCreate(name="养护用品 Car care", slug="car-care"))
    inventory.default_location(session, tenant)
    stores = [inventory.create_location(session, tenant, LocationCreate(
        code=code, name=name, kind="store", address=addr)) for code, name, addr in [
        ("SH-XUHUI", "徐汇门店 Xuhui store", "上海市徐汇区漕溪北路 88 号"),
        ("SH-PUDONG", "浦东门店 Pudong store", "上海市浦东新区张杨路 500 号")]]
    for rank, (name, spend) in enumerate([("银卡 Silver", "0.00"), ("金卡 Gold", "2000.00"),
                                          ("白金 Platinum", "6000.00")]):
        members.create_tier(session, tenant, TierCreate(
            name=name, rank=rank, min_spend=MoneyIn(amount=Decimal(spend), currency="CNY"), window_days=365))

    catalogue: list[tuple[str, str, int]] = []  # (sku, title, price_minor)
    for width, ratio, rim in TIRE_SIZES:
        for brand, brand_cn, model, factor in TIRE_BRANDS:
            if rnd.random() < 0.15:
                continue
            price = int((350 + (rim - 15) * 160 + (width - 185) * 3) * factor) * 100
            size = f"{width}/{ratio}R{rim}"
            sku = f"TIRE-{brand[:4].upper()}-{width}{ratio}{rim}"
            title = f"{brand_cn} {brand} {model} {size} 轮胎"
            p = catalog.create_product(session, tenant, ProductCreate(
                title=title, category_id=tires.id, variants=[VariantCreate(
                    sku=sku, title=title, price=Price(amount=from_minor(price, "CNY"), currency="CNY"), stock=rnd.randint(20, 120),
                    attributes={})],
                attributes={"width": width, "aspect_ratio": ratio, "rim_diameter": rim,
                            "season": rnd.choice(["summer", "all_season", "all_season", "winter"]),
                            "brand": brand}))
            for store in stores:
                inventory.adjust_stock(session, tenant, p.variants[0].id, rnd.randint(4, 16),
                                       "received", location_id=store.id)
            catalogue.append((sku, title, price))
    for sku, title, amount, _ in CARE:
        care_price = Price(amount=Decimal(amount), currency="CNY")
        catalog.create_product(session, tenant, ProductCreate(
            title=title, sku=sku, price=care_price, stock=rnd.randint(50, 300),
            category_id=care.id))
        catalogue.append((sku, title, care_price.minor))

    # the shops draw from their own generator: the buying history stays as it was
    _partner_shops(session, tenant, tires.id, random.Random(13))
    _shop_key(session, tenant)
    n_members = n_members or (200 if quick else 2000)
    _members_and_history(session, tenant, rnd, n_members, catalogue, console, today, "tires")


#: (city, district, WGS-84 centre) of the tire merchant's partner shops: 15 around each city
SHOP_CITIES = [("上海 Shanghai", ["徐汇 Xuhui", "浦东 Pudong", "闵行 Minhang", "静安 Jing'an",
                                  "宝山 Baoshan"], (31.2304, 121.4737)),
               ("杭州 Hangzhou", ["西湖 Xihu", "滨江 Binjiang", "余杭 Yuhang", "拱墅 Gongshu",
                                  "萧山 Xiaoshan"], (30.2741, 120.1551))]
#: the shops' postal addresses (goods booked with a fitting ship there): per city its
#: province, the street names, the phone's area code and the postal code's first digits
SHOP_POST = {"上海 Shanghai": ("上海市", "上海市", ["漕溪北路", "张杨路", "莘庄路", "南京西路",
                                                  "牡丹江路"], "021", "200"),
             "杭州 Hangzhou": ("浙江省", "杭州市", ["文三路", "江南大道", "文一西路", "莫干山路",
                                                 "金城路"], "0571", "310")}


def _partner_shops(session: Session, tenant: Tenant, tires_category: str,
                   rnd: random.Random) -> None:
    """30 partner shops that fit tires, with their hours, bays and rim ranges; a fitment rule
    says tires need fitting (GET /v1/search?q=轮胎&lat=31.23&lng=121.47 shows them)."""
    from haina.o2o import service as o2o
    from haina.o2o.schemas import FitmentRuleIn, ServicePointCreate

    o2o.create_rule(session, tenant, FitmentRuleIn(service="tire-fitting",
                                                   category_id=tires_category))
    for city, districts, (lat, lng) in SHOP_CITIES:
        for i in range(15):
            district = districts[i % len(districts)]
            late = rnd.random() < 0.3
            hours = [{"weekday": d, "open": "08:30" if late else "09:00",
                      "close": "21:00" if late else "18:00"} for d in range(1, 8)]
            low = rnd.choice([14, 15, 15, 16])
            province, city_name, streets, area, post = SHOP_POST[city]
            o2o.create_point(session, tenant, ServicePointCreate.model_validate({
                "name": f"驰途合作店 {district} #{i // len(districts) + 1}",
                "address": f"{streets[i % len(streets)]} {100 + 37 * i} 号",
                "province": province, "city": city_name, "district": f"{district.split()[0]}区",
                "postal_code": f"{post}{(i * 7) % 100:03d}",
                "phone": f"{area}-{6100_0000 + 1013 * i if area == '021' else 8600_0000 + 1013 * i}",
                "location": {"lat": round(lat + rnd.uniform(-0.15, 0.15), 6),
                             "lng": round(lng + rnd.uniform(-0.18, 0.18), 6),
                             "datum": "wgs84"},
                "timezone": "Asia/Shanghai", "opening_hours": hours,
                "exceptions": [{"date": "2027-01-01"}, {"date": "2027-02-06"},
                               {"date": "2027-02-07"}],
                "services": [
                    {"code": "tire-fitting", "name": "换胎 Tire fitting",
                     "duration_minutes": 60, "capacity": rnd.randint(1, 4),
                     "buffer_after_minutes": 10,
                     "price": {"amount": f"{rnd.choice([60, 80, 100])}.00", "currency": "CNY"}},
                    {"code": "wheel-alignment", "name": "四轮定位 Wheel alignment",
                     "duration_minutes": 45, "capacity": 1,
                     "price": {"amount": "150.00", "currency": "CNY"}}],
                "fitment": {"rim_diameter": [low, low + rnd.choice([3, 4, 5])]}},
                strict=False))


def _shop_key(session: Session, tenant: Tenant) -> None:
    """The reference shop's publishable key (/shop/demo-tires finds it): the web channel, in
    sandbox mode, so that sign-in codes show in the sandbox inbox instead of an SMS."""
    from haina.storefront import service as storefront
    from haina.storefront.schemas import PublishableKeyIn
    storefront.create_key(session, tenant, PublishableKeyIn(
        name="参考商店 Reference shop", channel="web", sandbox=True))


def _load_beauty(session: Session, rnd: random.Random, quick: bool, console: Console,
                 today: dt.date, n_members: int | None = None) -> None:
    tenant = _tenant(session, "demo-beauty", "海纳美妆跨境 Haina Beauty Global",
                     TenantSettings(shipping_fee="0.00"))
    cat = catalog.create_category(session, tenant, CategoryCreate(name="美妆 Beauty", slug="beauty"))
    inventory.default_location(session, tenant)
    catalogue = []
    for sku, title, amount in BEAUTY:
        price = Price(amount=Decimal(amount), currency="CNY")
        catalog.create_product(session, tenant, ProductCreate(
            title=title, sku=sku, price=price, stock=rnd.randint(100, 500), category_id=cat.id))
        catalogue.append((sku, title, price.minor))
    _members_and_history(session, tenant, rnd, n_members or (50 if quick else 300), catalogue,
                         console, today, "beauty")


#: demo-beauty's cross-border goods: (sku, HS code, origin, consumption-tax rate, net and
#: gross grams); the French brand's skincare and the lipstick (cosmetics: 15 % consumption tax
#: at or above the threshold price, 0 below it; the demo shows both)
CROSSBORDER_BEAUTY = [("SERUM-30", "3304990099", "FR", "0.15", 30, 120),
                      ("CREAM-50", "3304990099", "FR", "0.15", 50, 180),
                      ("EYE-CREAM-15", "3304990099", "FR", "0.15", 15, 90),
                      ("LIPSTICK-RED", "3304100091", "FR", "0.15", 4, 40),
                      ("TONER-200", "3304990099", "FR", "0", 200, 280)]
#: demo-beauty's customs profile: the platform (ebp), the merchant (ebc), the broker (agent)
BEAUTY_CUSTOMS = {"ebp_code": "3301960000", "ebp_name": "海纳 Haina",
                  "ebc_code": "3301960888", "ebc_name": "海纳美妆跨境 Haina Beauty Global",
                  "agent_code": "3302980123", "agent_name": "宁波报关 Ningbo Customs Broker",
                  "customs_code": "2991", "port_code": "2991", "dxp_id": "DXPENT0000012345"}
BUYER_REGIONS = ["330106", "310115", "440305", "110105", "320508"]


def _id_number(rnd: random.Random) -> str:
    """A valid resident ID number (GB 11643-1999) for a demo buyer."""
    from haina.crossborder.identity import check_character
    born = dt.date(1975, 1, 1) + dt.timedelta(days=rnd.randrange(30 * 365))
    first17 = f"{rnd.choice(BUYER_REGIONS)}{born:%Y%m%d}{rnd.randrange(1000):03d}"
    return first17 + check_character(first17)


def _crossborder_beauty(session: Session, tenant: Tenant, rnd: random.Random,
                        today: dt.date) -> None:
    """demo-beauty as a foreign brand's shop: the operating agency's app and a customs
    broker's app (certified, reviews delegated to it), the brand Maison Lumière qualified by
    the broker, a second brand's file awaiting review, five cross-border products, the
    customs profile, and six cross-border orders: four released by customs with their
    receipts and delivered, one declared and awaiting customs, one paid and not declared."""
    from haina.checkout.declarations import declare_order
    from haina.crossborder import customs
    from haina.crossborder import service as crossborder
    from haina.crossborder.schemas import (
        BrandDecisionIn,
        BrandIn,
        CrossborderProductIn,
        DeclarationIn,
        EnterpriseIn,
        ReceiptIn,
        TrackingIn,
    )
    from haina.orders import service as orders
    from haina.orders.schemas import OrderCreate
    from haina.payments import service as payments
    from haina.payments.schemas import PaymentIntentCreate
    from haina.platform.schemas import AppIn

    scopes = ["crossborder:read", "crossborder:write", "orders:read"]
    made = {}
    for key, name, category in (("agency", "杭州跨境运营 Hangzhou Cross-border Ops",
                                 "operations-agency"),
                                ("broker", "宁波报关 Ningbo Customs Broker", "customs-broker")):
        app = platform.register_app(session, AppIn(
            name=name, category=category, redirect_uris=["https://apps.haina.example/cb"],
            scopes=scopes, description=f"demo-beauty's {category.replace('-', ' ')}"))
        platform.install_app(session, tenant.id, app.client_id, scopes, None)
        made[key] = app.client_id
    platform.certify_app(session, made["broker"], "customs-broker",
                         "customs broker registration 3302980123 (demo)", "platform")
    crossborder.delegate_review(session, made["broker"], "platform", "certified customs broker")
    as_agency = Tenant(id=tenant.id, slug=tenant.slug, app_id=made["agency"])
    as_broker = Tenant(id=tenant.id, slug=tenant.slug, app_id=made["broker"])
    valid = {"valid_from": (today - dt.timedelta(days=200)).isoformat(),
             "valid_until": (today + dt.timedelta(days=900)).isoformat()}
    brand = crossborder.submit_brand(session, as_agency, BrandIn.model_validate({
        "name": "Maison Lumière", "origin_country": "FR", "owner": "Lumière Cosmétiques SAS",
        "agency_name": "杭州跨境运营 Hangzhou Cross-border Ops",
        "authorisation": {"grantor": "Lumière Cosmétiques SAS",
                          "grantee": "海纳美妆跨境 Haina Beauty Global",
                          "reference": "LUM-CN-2026-007", **valid,
                          "url": "https://docs.hz-ops.example/lumiere/authorisation.pdf"},
        "documents": [{"kind": "trademark_registration", "title": "INPI 4512345",
                       "reference": "4512345"},
                      {"kind": "origin_certificate", "title": "Certificat d'origine",
                       "url": "https://docs.hz-ops.example/lumiere/origin.pdf"}]},
        strict=False))
    crossborder.decide_brand(session, as_broker, brand.id, BrandDecisionIn(
        decision="approve", reason="trademark, authorisation and origin checked"))
    crossborder.submit_brand(session, as_agency, BrandIn.model_validate({
        "name": "Kirei Tokyo", "origin_country": "JP", "owner": "Kirei K.K.",
        "agency_name": "杭州跨境运营 Hangzhou Cross-border Ops",
        "authorisation": {"grantor": "Kirei K.K.", "grantee": "海纳美妆跨境 Haina Beauty Global",
                          "reference": "KRT-2026-02", **valid}}, strict=False))
    skus = {}
    for sku, hs, origin, rate, net, gross in CROSSBORDER_BEAUTY:
        product_id = catalog.variant_by_sku(session, tenant, sku).product_id
        crossborder.put_product(session, tenant, product_id, CrossborderProductIn.model_validate({
            "hs_code": hs, "origin_country": origin, "consumption_rate": rate,
            "net_weight_kg": f"{net / 1000:.3f}", "gross_weight_kg": f"{gross / 1000:.3f}",
            "brand_id": brand.id}))
        skus[sku] = product_id
    crossborder.put_customs_profile(session, tenant, EnterpriseIn.model_validate(BEAUTY_CUSTOMS))
    cities = [("浙江省", "杭州市", "西湖区"), ("上海市", "上海市", "浦东新区"),
              ("广东省", "深圳市", "南山区")]
    for i in range(6):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN)
        phone = f"13{rnd.randrange(10**9):09d}"
        province, city, district = rnd.choice(cities)
        buyer = {"name": name, "id_number": _id_number(rnd), "phone": phone}
        lines = [{"sku": sku, "quantity": rnd.randint(1, 2)}
                 for sku in rnd.sample(list(skus), rnd.randint(1, 2))]
        o = orders.place_order(session, tenant, OrderCreate.model_validate({
            "lines": lines, "channel": "mini_program",
            "address": {"name": name, "phone": phone, "province": province, "city": city,
                        "district": district, "line1": f"文三路 {rnd.randint(1, 500)} 号"},
            "crossborder": {"buyer": buyer, "payer": {"name": name,
                                                      "id_number": buyer["id_number"]}}}))
        payments.create_intent(session, tenant, PaymentIntentCreate.model_validate(
            {"order_id": o.id, "payment_method": {"type": "cash"}}))
        if i == 5:
            continue  # paid, waiting to be declared
        waybill = f"SF{1400000000 + i * 7919}"
        d = declare_order(session, tenant, DeclarationIn.model_validate({
            "order_id": o.id,
            "payment": {"pay_code": "312226T001", "pay_name": "支付宝 Alipay",
                        "transaction_id": f"2026{rnd.randrange(10**12):012d}"},
            "waybill": {"logistics_code": "3122480063", "logistics_name": "顺丰 SF Express",
                        "logistics_no": waybill}}))
        if i == 4:
            continue  # declared, waiting for customs
        sent = crossborder.declaration_messages(session, tenant, d.id).messages
        at = utcnow()
        for kind, answers, status, info in (
                ("CEB312", "CEB311", "120", "订单已入库 order accepted"),
                ("CEB412", "CEB411", "120", "支付单已入库 payment accepted"),
                ("CEB512", "CEB511", "120", "运单已入库 waybill accepted"),
                ("CEB622", "CEB621", "800", "放行 released")):
            crossborder.ingest_receipt(session, as_broker, d.id, ReceiptIn(
                message=customs.receipt_xml(kind, customs.head_of(sent[answers])["guid"],
                                            status, at, info)))
        for hours, status, place in ((-30, "picked_up", "宁波保税区 Ningbo bonded zone"),
                                     (-20, "customs_cleared", "宁波 Ningbo"),
                                     (-8, "out_for_delivery", city),
                                     (-2, "delivered", city)):
            crossborder.record_tracking(session, tenant, o.id, TrackingIn.model_validate({
                "carrier": "顺丰 SF Express", "tracking_number": waybill, "status": status,
                "at": at + dt.timedelta(hours=hours), "location": place}))


def _purchase_days(rnd: random.Random, first: int, horizon: int) -> list[int]:
    """Days (since the start) a member buys on: BG/NBD's story, drawn event by event."""
    rate = rnd.gammavariate(1.1, 1 / 14)  # purchases per day; mean about one in 15 days
    drop = rnd.betavariate(1.0, 10.0)     # chance of leaving after each purchase
    days, day = [first], float(first)
    while True:
        if rnd.random() < drop:
            return days
        day += rnd.expovariate(rate) + 1
        if day >= horizon:
            return days
        days.append(int(day))


#: Gamma-Gamma's story of spend (Fader & Hardie's note 025): a member's orders are worth
#: Gamma(SPEND_P, nu) around her own mean, and members' means vary as nu ~ Gamma(SPEND_Q, .) does,
#: so the refresh's spend model has something to fit (q = 4 > 1: a finite population mean)
SPEND_P = 4.0
SPEND_Q = 4.0
#: the population's mean order value, in minor units, per demo merchant kind
BASE_ORDER_MINOR = {"tires": 90_000, "beauty": 70_000}


def _member_mean_order(rnd: random.Random, kind: str) -> float:
    """A member's own mean order value (minor units): the population mean times
    ``(q-1)/Gamma(q)``, an inverse gamma of mean 1, as Gamma-Gamma's ``1/nu`` is."""
    return BASE_ORDER_MINOR[kind] * (SPEND_Q - 1.0) / rnd.gammavariate(SPEND_Q, 1.0)


def _basket(rnd: random.Random, target_minor: float, tires, other) -> list[tuple[str, int]]:
    """Products and quantities for an order worth about ``target_minor`` (the last pick may
    overshoot): tires while the rest is worth a tire, care or beauty products otherwise."""
    picks: list[tuple[str, int]] = []
    total = 0
    while len(picks) < 6 and total < target_minor:
        remaining = target_minor - total
        if tires and (not other or (remaining >= 40_000 and rnd.random() < 0.8)):
            sku, _, price = rnd.choice(tires)
            qty = max(1, min(4, round(remaining / price)))
        else:
            sku, _, price = rnd.choice(other)
            qty = max(1, min(3, round(remaining / price)))
        picks.append((sku, qty))
        total += price * qty
    return picks or [(rnd.choice(other or tires)[0], 1)]


def _members_and_history(session: Session, tenant: Tenant, rnd: random.Random, n: int,
                         catalogue: list[tuple[str, str, int]], console: Console,
                         today: dt.date, kind: str) -> None:
    from haina.catalog.service import variants_by_sku
    from haina.members import service as members
    from haina.members.schemas import ConsentsIn, IdentityIn, MemberCreate
    from haina.orders import service as orders
    from haina.payments import service as payments

    horizon = 730
    start = dt.datetime.combine(today - dt.timedelta(days=horizon), dt.time(0),
                                tzinfo=dt.UTC)
    refs = variants_by_sku(session, tenant, [c[0] for c in catalogue])
    tires = [c for c in catalogue if c[0].startswith("TIRE")]
    other = [c for c in catalogue if not c[0].startswith("TIRE")]
    channels, weights = zip(*CHANNELS)
    with _progress(console) as progress:
        task = progress.add_task(f"{tenant.slug}: members and orders", total=n)
        order_rows: list[OrderRecord] = []
        line_rows: list[OrderLineRecord] = []
        captures: list[tuple[str, int, str, dt.datetime]] = []
        purchases: list[tuple[str, str, int, dt.datetime]] = []
        for i in range(n):
            name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + (rnd.choice(GIVEN) if rnd.random() < 0.6 else "")
            identities: list[IdentityIn] = []
            if rnd.random() < 0.55:
                identities.append(IdentityIn(kind="wechat_openid",
                                             value=f"o{rnd.getrandbits(80):020x}",
                                             channel="mini_program"))
            if rnd.random() < 0.25:
                identities.append(IdentityIn(kind="taobao", value=f"tb{rnd.getrandbits(40):012d}",
                                             channel="taobao"))
            member = members.create_member(session, tenant, MemberCreate(
                name=name, phone=f"13{rnd.randrange(10**9):09d}",
                email=f"m{i:05d}.{kind}@example.cn" if rnd.random() < 0.4 else None,
                identities=identities,
                consents=ConsentsIn(email_marketing=rnd.random() < 0.5,
                                    sms_marketing=rnd.random() < 0.6,
                                    data_analysis=rnd.random() < 0.8)))
            first = int(rnd.random() ** 0.8 * (horizon - 1))  # acquisition grows over time
            home_channel = rnd.choices(channels, weights)[0]
            mean_order = _member_mean_order(rnd, kind)
            for day in _purchase_days(rnd, first, horizon):
                at = start + dt.timedelta(days=day, seconds=rnd.randrange(8 * 3600, 22 * 3600))
                channel = home_channel if rnd.random() < 0.7 else rnd.choices(channels, weights)[0]
                target = rnd.gammavariate(SPEND_P, mean_order / SPEND_P)
                order, lines = _historical_order(rnd, tenant, member.id, channel, at, refs,
                                                 _basket(rnd, target, tires, other), today)
                order_rows.append(order)
                line_rows += lines
                if order["paid_minor"]:
                    captures.append((order["id"], order["paid_minor"], "CNY", at))
                    purchases.append((member.id, order["id"], order["paid_minor"], at))
            progress.advance(task)
        progress.update(task, description=f"{tenant.slug}: writing {len(order_rows)} orders")
        orders.import_orders(session, tenant, order_rows, line_rows)
        payments.import_captures(session, tenant, captures)
        task2 = progress.add_task(f"{tenant.slug}: points and tiers", total=len(purchases))
        for member_id, order_id, paid, at in purchases:
            members.record_purchase(session, tenant, member_id, order_id, paid, "CNY", at)
            progress.advance(task2)
    console.print(f"{tenant.slug}: {n} members, {len(order_rows)} orders over two years")


def _historical_order(rnd: random.Random, tenant: Tenant, member_id: str, channel: str,
                      at: dt.datetime, refs, picks: list[tuple[str, int]], today: dt.date):
    order_id = new_id("order", int(at.timestamp() * 1000))
    lines: list[OrderLineRecord] = []
    seen: set[str] = set()
    for sku, qty in picks:
        if sku in seen:
            continue
        seen.add(sku)
        ref = refs[sku]
        lines.append(OrderLineRecord(
            id=new_id("order_line"), tenant_id=tenant.id, order_id=order_id, variant_id=ref.id,
            product_id=ref.product_id, sku=sku, title=ref.title,
            unit_price_minor=ref.price_minor, quantity=qty, total_minor=ref.price_minor * qty,
            shipped_quantity=qty))
    subtotal = sum(ln["total_minor"] for ln in lines)
    settings = tenant.settings
    t = price_lines(settings, "CNY", subtotal, 0, channel)
    age = (today - at.date()).days
    roll = rnd.random()
    status = "completed" if age > 14 else rnd.choice(["paid", "fulfilled", "completed"])
    paid_at = at + dt.timedelta(minutes=rnd.randint(1, 20))
    cancelled = roll < 0.03
    if cancelled:
        status = "cancelled"
        for ln in lines:
            ln["shipped_quantity"] = 0
    elif status == "paid":
        for ln in lines:
            ln["shipped_quantity"] = 0
    order = order_record(
        id=order_id, tenant_id=tenant.id, member_id=member_id, channel=channel, status=status,
        currency="CNY", subtotal_minor=t["subtotal"], discount_minor=t["discount"],
        shipping_minor=t["shipping"], tax_minor=t["tax"], total_minor=t["total"],
        paid_minor=0 if cancelled else t["total"], metadata={"source": "demo"}, created_at=at,
        paid_at=None if cancelled else paid_at,
        fulfilled_at=paid_at + dt.timedelta(days=1) if status in ("fulfilled", "completed") else None,
        completed_at=paid_at + dt.timedelta(days=7) if status == "completed" else None,
        cancelled_at=at + dt.timedelta(minutes=30) if cancelled else None,
        cancel_reason="payment_timeout" if cancelled else None)
    return order, lines
