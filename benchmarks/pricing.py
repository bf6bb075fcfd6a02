"""The pricing engine: a 20-line cart against 10,000 live promotions and 1,000 coupons.

The rules (seeded, the same every run): 5,000 products in 200 categories; 10,000 promotions —
85 % on one to three products (percent, fixed off, tier price, buy X get Y), 10 % on one
category (percent, threshold 满减 / 每满减), 4 % bundles of two products, 1 % on all goods
(thresholds, free shipping, first order) — with priorities, a share in stacking groups of their
own, a few exclusive and a few with budgets; 1,000 coupons (percent or fixed, some targeted).
Each cart: 20 distinct products, 1-3 units each, a coupon code, a member on a first order.

Timed, one call each, in this process (the engine is pure: no database inside the call):

- ``ours``: ``pricing.price_cart(book, cart, coupon)`` with the rules indexed by target
  (``RuleBook``, built once: the service builds it from the rows one indexed query returns)
  and the coupon found by its code;
- ``naive``: the same engine handed every rule (every promotion evaluated against the cart) and
  the coupon found by scanning the 1,000 — the evaluate-every-rule loop, in the same run.

Both must give the same price for every cart (checked). ``ratio`` = naive p99 ÷ ours p99
(wall clock); ``cpu_*`` are the same calls' CPU time (the thread's), which a loaded machine
does not inflate, and ``load_average`` says how loaded it was.
Also ``db_p50_ms``/``db_p99_ms``: ``marketing.service.price_cart`` on SQLite with the same
10,000 promotions stored (the target-index query, the coupon's row, the engine), for the
order path's view. Writes benchmarks/results/pricing.json and prints a table.

    .venv/bin/python benchmarks/pricing.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from haina.marketing.pricing import Cart, CartLine, Rule, RuleBook, price_cart  # noqa: E402

PRODUCTS, CATEGORIES, PROMOTIONS, COUPONS, LINES = 5000, 200, 10_000, 1000, 20


def catalogue(rnd: random.Random) -> dict[str, tuple[str, int]]:
    """product id → (category id, unit price in fen)."""
    return {f"prod_{i:05d}": (f"cat_{rnd.randrange(CATEGORIES):03d}",
                              rnd.choice([990, 1990, 4900, 9900, 19900, 39900, 89900]))
            for i in range(PRODUCTS)}


def promotions(rnd: random.Random, cat: dict[str, tuple[str, int]]) -> list[Rule]:
    """Discounts of the sizes merchants run: 5-20 % or a few yuan off an item, tier prices
    5-10 % under the list price, bundles 10 % under the two prices, 满减 of 8-13 %."""
    products = list(cat)
    rules = []
    for i in range(PROMOTIONS):
        roll = rnd.random()
        common = dict(currency="CNY", name=f"promo {i}", priority=rnd.randrange(5),
                      stacking_group=f"g{rnd.randrange(20)}" if rnd.random() < 0.1 else None,
                      exclusive=rnd.random() < 0.01,
                      budget_left=rnd.choice([50_000, 200_000]) if rnd.random() < 0.05
                      else None)
        rid = f"promo_{i:05d}"
        if roll < 0.85:
            kind = rnd.choice(["percent", "fixed", "tier_price", "buy_x_get_y"])
            # a tier price is one product's (its price list); the others name 1-3 products
            chosen = rnd.sample(products, 1 if kind == "tier_price" else rnd.randint(1, 3))
            cheapest = min(cat[p][1] for p in chosen)
            if kind == "percent":
                extra: dict = dict(percent_bps=rnd.choice([500, 1000, 1500, 2000]))
            elif kind == "fixed":
                extra = dict(off=max(1, cheapest // rnd.choice([10, 20])))
            elif kind == "tier_price":
                extra = dict(tiers=((2, cheapest * 95 // 100), (3, cheapest * 90 // 100)))
            else:
                extra = dict(buy=2, get=1)
            rules.append(Rule(rid, kind, product_ids=frozenset(chosen), **extra, **common))
        elif roll < 0.95:
            category = frozenset({f"cat_{rnd.randrange(CATEGORIES):03d}"})
            if rnd.random() < 0.5:
                rules.append(Rule(rid, "percent", category_ids=category, percent_bps=800,
                                  **common))
            else:
                rules.append(Rule(rid, "threshold", category_ids=category,
                                  tiers=((30000, 4000), (60000, 8000)),
                                  repeat=rnd.random() < 0.3, **common))
        elif roll < 0.99:
            a, b = rnd.sample(products, 2)
            rules.append(Rule(rid, "bundle", bundle=((a, 1), (b, 1)),
                              bundle_price=(cat[a][1] + cat[b][1]) * 90 // 100, **common))
        else:
            kind = rnd.choice(["threshold", "free_shipping", "first_order"])
            extra = {"threshold": dict(tiers=((30000, 3000), (100000, 12000))),
                     "free_shipping": dict(min_subtotal=9900),
                     "first_order": dict(off=2000)}[kind]
            rules.append(Rule(rid, kind, **extra, **common))
    return rules


def coupons(rnd: random.Random, products: list[str]) -> dict[str, Rule]:
    out = {}
    for i in range(COUPONS):
        code = f"CODE{i:04d}"
        kw: dict = rnd.choice([dict(off=1000), dict(percent_bps=1000, max_discount=5000),
                               dict(off=500, min_subtotal=20000)])
        if rnd.random() < 0.2:
            kw["product_ids"] = frozenset(rnd.sample(products, 50))
        out[code] = Rule(f"cpn_{i:04d}", "coupon", "CNY", name=code, source="coupon",
                         stacking_group="coupon", **kw)
    return out


def carts(rnd: random.Random, cat: dict[str, tuple[str, int]], n: int) -> list[tuple[Cart, str]]:
    products = list(cat)
    out = []
    for _ in range(n):
        lines = tuple(CartLine(f"SKU-{p}", p, cat[p][0], cat[p][1], rnd.randint(1, 3))
                      for p in rnd.sample(products, LINES))
        out.append((Cart(lines, "CNY", 1000, member_id="mem_1", first_order=True),
                    f"CODE{rnd.randrange(COUPONS):04d}"))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_calls(fn, items) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) milliseconds of each call: on a shared, loaded machine the
    wall time includes waiting for a core, the CPU time does not."""
    wall, cpu = [], []
    for item in items:
        t, c = time.perf_counter(), time.thread_time()
        fn(item)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return wall, cpu


def db_path(rules: list[Rule], codes: dict[str, Rule], sample: list[tuple[Cart, str]]):
    """``marketing.service.price_cart`` on SQLite holding the same promotions and coupons."""
    from sqlalchemy import insert

    import haina.models_registry  # noqa: F401
    from haina.core.context import Tenant
    from haina.core.db import Base, make_engine, make_sessionmaker, transaction, utcnow
    from haina.marketing import service as marketing
    from haina.marketing.models import Coupon, Promotion, PromotionTarget

    directory = tempfile.mkdtemp(prefix="haina-pricing-")
    engine = make_engine(f"sqlite:///{directory}/bench.db")
    Base.metadata.create_all(engine)
    sessions = make_sessionmaker(engine)
    tenant = Tenant(id="ten_bench", slug="bench", currency="CNY")
    now = utcnow()
    rows, targets = [], []
    for r in rules:
        params = {k: v for k, v in dict(
            percent_bps=r.percent_bps, off=r.off, max_discount=r.max_discount,
            tiers=[list(t) for t in r.tiers] or None, repeat=r.repeat or None, buy=r.buy or None,
            get=r.get or None, bundle=[list(b) for b in r.bundle] or None,
            bundle_price=r.bundle_price or None).items() if v is not None}
        rows.append(dict(
            id=r.id, tenant_id=tenant.id, name=r.name, kind=r.kind, status="active",
            currency="CNY", priority=r.priority, stacking_group=r.stacking_group,
            exclusive=r.exclusive, product_ids=sorted(r.product_ids) if r.product_ids else None,
            category_ids=sorted(r.category_ids) if r.category_ids else None, tier_ids=None,
            min_subtotal_minor=r.min_subtotal, params=params,
            budget_minor=r.budget_left, spent_minor=0, starts_at=None, ends_at=None,
            description="", created_at=now, updated_at=now))
        targets += [dict(id=f"ptgt_{r.id}_{k}", tenant_id=tenant.id, promotion_id=r.id,
                         target=k) for k in r.targets()]
    coupon_rows = [dict(id=c.id, tenant_id=tenant.id, code=code, kind="percent"
                        if c.percent_bps else "fixed", percent_bps=c.percent_bps,
                        amount_minor=c.off, currency="CNY", min_spend_minor=c.min_subtotal,
                        max_discount_minor=c.max_discount, max_redemptions=None,
                        per_member_limit=None, redeemed=0, starts_at=None, ends_at=None,
                        status="active", product_ids=sorted(c.product_ids)
                        if c.product_ids else None, category_ids=None, tier_ids=None,
                        description="", created_at=now) for code, c in codes.items()]
    with transaction(sessions) as s:
        s.execute(insert(Promotion.__table__), rows)
        s.execute(insert(PromotionTarget.__table__), targets)
        s.execute(insert(Coupon.__table__), coupon_rows)
    times = []
    with sessions() as s:
        for cart, code in sample:
            t = time.perf_counter()
            try:
                marketing.price_cart(s, tenant, cart, code, first_order=lambda: True)
            except Exception:  # noqa: BLE001 — a refused coupon is timed the same way
                pass
            times.append((time.perf_counter() - t) * 1000)
            s.rollback()
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer carts (under a minute)")
    args = parser.parse_args()
    console = Console()
    rnd = random.Random(12)
    cat = catalogue(rnd)
    products = list(cat)
    rules = promotions(rnd, cat)
    codes = coupons(rnd, products)
    coupon_list = list(codes.items())
    t = time.perf_counter()
    book = RuleBook(rules)
    index_ms = (time.perf_counter() - t) * 1000
    n_ours, n_naive, n_db = (1000, 60, 300) if args.quick else (5000, 300, 2000)
    sample = carts(rnd, cat, n_ours)

    def ours(item):
        cart, code = item
        return price_cart(book, cart, codes.get(code))

    def naive(item):
        cart, code = item
        coupon = next((c for k, c in coupon_list if k == code), None)
        return price_cart(rules, cart, coupon)

    for item in sample[:20]:  # warm up; the two must agree
        assert ours(item) == naive(item), "the index changed a price"
    console.print(f"[dim]{len(rules)} promotions, {len(codes)} coupons, {LINES}-line carts; "
                  f"index built in {index_ms:.0f} ms[/]")
    gc.collect()
    ours_ms, ours_cpu = time_calls(ours, sample)
    naive_ms, naive_cpu = time_calls(naive, sample[:n_naive])
    for item in sample[:n_naive]:
        assert ours(item) == naive(item), "the index changed a price"
    considered = statistics.mean(ours(item).considered for item in sample[:200])
    exhaustive = sum(ours(item).exhaustive for item in sample) / len(sample)
    db_ms = db_path(rules, codes, sample[:n_db])
    result = {
        "ratio": round(percentile(naive_ms, 0.99) / percentile(ours_ms, 0.99), 2),
        "p50_ms": round(percentile(ours_ms, 0.5), 3),
        "p99_ms": round(percentile(ours_ms, 0.99), 3),
        "promotions": len(rules),
        "coupons": len(codes),
        "lines": LINES,
        "cpu_p50_ms": round(percentile(ours_cpu, 0.5), 3),
        "cpu_p99_ms": round(percentile(ours_cpu, 0.99), 3),
        "cpu_ratio": round(percentile(naive_cpu, 0.99) / percentile(ours_cpu, 0.99), 2),
        "naive_p50_ms": round(percentile(naive_ms, 0.5), 3),
        "naive_p99_ms": round(percentile(naive_ms, 0.99), 3),
        "db_p50_ms": round(percentile(db_ms, 0.5), 3),
        "db_p99_ms": round(percentile(db_ms, 0.99), 3),
        "rules_considered_mean": round(considered, 1),
        "search_exhaustive_share": round(exhaustive, 4),
        "carts": len(ours_ms), "naive_carts": len(naive_ms), "db_carts": len(db_ms),
        "target_p99_ms": 20, "target_ratio": 10,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "python": platform.python_version(), "quick": args.quick,
    }
    table = Table(title="Pricing a 20-line cart: indexed engine vs evaluate-every-rule")
    table.add_column("")
    table.add_column("")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)
    out = ROOT / "benchmarks" / "results" / "pricing.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
