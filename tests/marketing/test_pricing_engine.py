"""The pricing engine alone (pure, no database): every kind on worked examples with exact
totals, the written rules (allocation by largest remainder, stacking groups, exclusivity,
budgets), and hypothesis properties — totals never below zero, allocations summing to the
discount, and the chosen combination never worse than any valid one (brute force)."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haina.marketing.pricing import (
    Cart,
    CartLine,
    Rule,
    RuleBook,
    _key,
    _Option,
    _value,
    allocate,
    price_cart,
    shares,
    with_points,
)


def line(sku, price, qty=1, product=None, category=None):
    return CartLine(sku, product or f"p-{sku}", category, price, qty)


def cart(*lines, shipping=0, **kw):
    return Cart(tuple(lines), "CNY", shipping, **kw)


def rule(id, kind, **kw):
    return Rule(id, kind, "CNY", name=kw.pop("name", id), **kw)


def price(rules, c, coupon=None, now=None):
    return price_cart(RuleBook(rules), c, coupon, now)


# ---------------------------------------------------------------- worked examples, every kind

def test_threshold_once_and_repeating():
    c = cart(line("A", 25000), line("B", 40000))  # 650.00
    once = rule("t1", "threshold", tiers=((30000, 4000), (60000, 10000)))
    assert price([once], c).discount == 10000  # the best tier met: 满600减100
    every = rule("t2", "threshold", tiers=((30000, 4000),), repeat=True)
    assert price([every], c).discount == 8000  # 每满300减40: twice in 650
    capped = rule("t3", "threshold", tiers=((30000, 4000),), repeat=True, max_discount=5000)
    assert price([capped], c).discount == 5000
    assert price([every], cart(line("A", 29999))).discount == 0


def test_threshold_is_allocated_by_largest_remainder():
    c = cart(line("A", 10000), line("B", 10000), line("C", 10000))
    p = price([rule("t", "threshold", tiers=((30000, 4000),))], c)
    # 40.00 over three equal lines: 13.33 each and the one cent left to the first line
    assert [pl.discount for pl in p.lines] == [1334, 1333, 1333]
    assert [pl.total for pl in p.lines] == [8666, 8667, 8667]
    assert "largest remainder" in p.lines[0].explanation[0].text


def test_percent_with_cap_and_targets():
    c = cart(line("A", 10000, 2, category="tires"), line("B", 5000))
    p = price([rule("p", "percent", percent_bps=1500, category_ids=frozenset({"tires"}))], c)
    assert p.discount == 3000 and p.lines[1].discount == 0
    p = price([rule("p", "percent", percent_bps=5000, max_discount=2000)], c)
    assert p.discount == 2000


def test_fixed_is_off_each_unit_and_never_below_the_unit_price():
    c = cart(line("A", 10000, 3), line("B", 500))
    p = price([rule("f", "fixed", off=1000)], c)
    assert [pl.discount for pl in p.lines] == [3000, 500]


def test_buy_two_get_one_takes_the_cheapest_units():
    c = cart(line("A", 10000, 2), line("B", 3000, 2))  # 4 units: one group of 3
    p = price([rule("b", "buy_x_get_y", buy=2, get=1)], c)
    assert p.discount == 3000 and p.lines[1].discount == 3000
    c = cart(line("A", 10000, 3), line("B", 3000, 3))  # 6 units: two free, the B's
    assert price([rule("b", "buy_x_get_y", buy=2, get=1)], c).discount == 6000
    half = rule("b", "buy_x_get_y", buy=1, get=1, percent_bps=5000)  # second at half price
    assert price([half], cart(line("A", 10000, 2))).discount == 5000


def test_bundle_price_for_whole_bundles_only():
    c = cart(line("A", 10000, 3, product="pa"), line("B", 5000, 2, product="pb"))
    r = rule("bd", "bundle", bundle=(("pa", 1), ("pb", 1)), bundle_price=12000)
    p = price([r], c)
    # two bundles of A + B (150.00 each) for 120.00: 60.00 off, split 2:1 by worth
    assert p.discount == 6000
    assert [pl.discount for pl in p.lines] == [4000, 2000]
    assert price([r], cart(line("A", 10000, 3, product="pa"))).discount == 0


def test_tier_price_by_line_quantity():
    r = rule("tp", "tier_price", tiers=((3, 8000), (10, 7000)))
    assert price([r], cart(line("A", 10000, 2))).discount == 0
    assert price([r], cart(line("A", 10000, 3))).discount == 6000
    assert price([r], cart(line("A", 10000, 12))).discount == 36000


def test_first_order_needs_a_member_on_a_first_order():
    r = rule("fo", "first_order", off=2000)
    c = cart(line("A", 10000))
    assert price([r], c).discount == 0
    assert price([r], cart(line("A", 10000), member_id="m", first_order=False)).discount == 0
    assert price([r], cart(line("A", 10000), member_id="m", first_order=True)).discount == 2000


def test_free_shipping_waives_the_fee_above_its_minimum():
    r = rule("fs", "free_shipping", min_subtotal=10000)
    p = price([r], cart(line("A", 10000), shipping=1200))
    assert (p.shipping, p.shipping_discount, p.discount) == (0, 1200, 0)
    assert price([r], cart(line("A", 9999), shipping=1200)).shipping == 1200


def test_tier_targets_and_the_window():
    now = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)
    gold = rule("g", "percent", percent_bps=1000, tier_ids=frozenset({"gold"}))
    assert price([gold], cart(line("A", 10000), member_id="m", tier_id="silver")).discount == 0
    assert price([gold], cart(line("A", 10000), member_id="m", tier_id="gold")).discount == 1000
    later = rule("l", "percent", percent_bps=1000, starts_at=now + dt.timedelta(days=1))
    assert price([later], cart(line("A", 10000)), now=now).discount == 0


# ---------------------------------------------------------------- combining

def test_one_stacking_group_never_discounts_a_line_twice_but_stages_stack():
    c = cart(line("A", 40000))
    ten, twenty = (rule("p10", "percent", percent_bps=1000),
                   rule("p20", "percent", percent_bps=2000))
    threshold = rule("t", "threshold", tiers=((30000, 4000),))
    p = price([ten, twenty, threshold], c)
    assert [a.rule_id for a in p.applied] == ["p20", "t"] and p.discount == 12000
    # in groups of their own, both percent rules stack
    p = price([ten, rule("p20", "percent", percent_bps=2000, stacking_group="extra")], c)
    assert p.discount == 12000


def test_an_exclusive_rule_applies_alone_when_it_is_best():
    c = cart(line("A", 40000))
    vip = rule("vip", "percent", percent_bps=3000, exclusive=True)
    others = [rule("p10", "percent", percent_bps=1000), rule("t", "threshold",
                                                                tiers=((30000, 4000),))]
    p = price([vip, *others], c)
    assert [a.rule_id for a in p.applied] == ["vip"] and p.discount == 12000
    small = rule("vip", "percent", percent_bps=1500, exclusive=True)
    p = price([small, *others], c)  # 60.00 alone < 40.00 + 40.00 together
    assert {a.rule_id for a in p.applied} == {"p10", "t"} and p.discount == 8000


def test_the_best_combination_may_leave_a_rule_out():
    # a cheaper item rule on the line would block a bigger one of its group elsewhere
    c = cart(line("A", 10000, product="pa"), line("B", 10000, product="pb"))
    both = rule("both", "percent", percent_bps=1500)  # 30.00 over A and B
    a_only = rule("a", "percent", percent_bps=2000, product_ids=frozenset({"pa"}))  # 20.00
    b_only = rule("b", "percent", percent_bps=2000, product_ids=frozenset({"pb"}))  # 20.00
    p = price([both, a_only, b_only], c)
    assert {a.rule_id for a in p.applied} == {"a", "b"} and p.discount == 4000


def test_a_budget_caps_a_rule_and_a_spent_budget_stops_it():
    c = cart(line("A", 10000), line("B", 30000))
    r = rule("t", "threshold", tiers=((30000, 4000),), budget_left=1000)
    p = price([r], c)
    assert p.discount == 1000 and [pl.discount for pl in p.lines] == [250, 750]
    assert price([rule("t", "threshold", tiers=((30000, 4000),), budget_left=0)], c).discount == 0


def test_a_coupon_stacks_with_promotions_and_ties_are_deterministic():
    c = cart(line("A", 10000))
    coupon = Rule("cpn", "coupon", "CNY", source="coupon", stacking_group="coupon", off=500)
    p = price([rule("p", "percent", percent_bps=1000)], c, coupon)
    assert p.discount == 1500 and [a.source for a in p.applied] == ["promotion", "coupon"]
    twins = [rule("z", "percent", percent_bps=1000), rule("a", "percent", percent_bps=1000)]
    assert [a.rule_id for a in price(twins, c).applied] == ["a"]
    ranked = [rule("z", "percent", percent_bps=1000, priority=5),
              rule("a", "percent", percent_bps=1000)]
    assert [a.rule_id for a in price(ranked, c).applied] == ["z"]


def test_points_are_allocated_after_the_rules():
    c = cart(line("A", 10000), line("B", 20000))
    p = with_points(price([rule("t", "threshold", tiers=((30000, 3000),))], c), 1000)
    assert p.discount == 4000 and sum(pl.discount for pl in p.lines) == 4000
    assert p.lines[0].explanation[-1].source == "points"


def test_the_index_finds_only_the_rules_a_cart_can_meet():
    rules = [rule(f"r{i}", "percent", percent_bps=100, product_ids=frozenset({f"p{i}"}))
             for i in range(1000)] + [rule("all", "free_shipping"),
                                      rule("cat", "percent", percent_bps=100,
                                           category_ids=frozenset({"c1"}))]
    book = RuleBook(rules)
    found = book.candidates(cart(line("A", 100, product="p7", category="c1")))
    assert sorted(r.id for r in found) == ["all", "cat", "r7"]


def test_allocate_sums_exactly_and_favours_the_largest_remainders():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(5, [0, 0]) == [0, 0]
    assert allocate(7, [3, 0, 4]) == [3, 0, 4]


# ---------------------------------------------------------------- properties

KIND_RULES = st.sampled_from(["percent", "fixed", "threshold", "buy_x_get_y", "bundle",
                              "tier_price", "first_order", "free_shipping"])
PRODUCTS = ["pa", "pb", "pc"]


@st.composite
def carts(draw):
    n = draw(st.integers(1, 4))
    lines = tuple(CartLine(f"S{i}", draw(st.sampled_from(PRODUCTS)),
                           draw(st.sampled_from([None, "c1"])), draw(st.integers(1, 20000)),
                           draw(st.integers(1, 5))) for i in range(n))
    return Cart(lines, "CNY", draw(st.sampled_from([0, 800])), member_id="m",
                tier_id=draw(st.sampled_from([None, "gold"])), first_order=draw(st.booleans()))


@st.composite
def rules(draw, i):
    kind = draw(KIND_RULES)
    kw: dict = {}
    targets = draw(st.sampled_from(["all", "product", "category"]))
    if kind != "bundle" and targets == "product":
        kw["product_ids"] = frozenset(draw(st.sets(st.sampled_from(PRODUCTS), min_size=1)))
    elif kind != "bundle" and targets == "category":
        kw["category_ids"] = frozenset({"c1"})
    if kind in ("percent", "first_order"):
        kw["percent_bps"] = draw(st.integers(1, 10000))
        kw["max_discount"] = draw(st.sampled_from([None, 1000, 5000]))
    elif kind == "fixed":
        kw["off"] = draw(st.integers(1, 5000))
    elif kind == "threshold":
        kw["tiers"] = tuple(sorted(draw(st.lists(
            st.tuples(st.integers(1000, 40000), st.integers(1, 1000)), min_size=1,
            max_size=3))))
        kw["repeat"] = draw(st.booleans())
    elif kind == "buy_x_get_y":
        kw["buy"], kw["get"] = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    elif kind == "bundle":
        kw["bundle"] = (("pa", draw(st.integers(1, 2))), ("pb", 1))
        kw["bundle_price"] = draw(st.integers(0, 30000))
    elif kind == "tier_price":
        kw["tiers"] = ((draw(st.integers(1, 5)), draw(st.integers(0, 20000))),)
    return rule(f"r{i}", kind, priority=draw(st.integers(0, 2)),
                stacking_group=draw(st.sampled_from([None, None, "g"])),
                exclusive=draw(st.booleans()) and draw(st.booleans()),
                tier_ids=draw(st.sampled_from([None, None, frozenset({"gold"})])),
                budget_left=draw(st.sampled_from([None, None, 0, 700, 3000])), **kw)


@st.composite
def scenarios(draw):
    c = draw(carts())
    rs = [draw(rules(i)) for i in range(draw(st.integers(0, 6)))]
    coupon = None
    if draw(st.booleans()):
        coupon = Rule("cpn", "coupon", "CNY", source="coupon", stacking_group="coupon",
                      **draw(st.sampled_from([{"off": 1500}, {"percent_bps": 1000},
                                              {"percent_bps": 2000, "max_discount": 1000}])))
    return c, rs, coupon


def _brute_force(c, rs, coupon):
    """The smallest key over every valid combination, by enumeration."""
    options = []
    for r in rs + ([coupon] if coupon else []):
        s = shares(r, c)
        if s:
            mask = sum(1 << i for i in s)
            options.append(_Option(r, s, sum(s.values()), mask))
    caps = [ln.total for ln in c.lines] + [c.shipping]
    best = _key(0, [])
    for k in range(1, len(options) + 1):
        for combo in itertools.combinations(options, k):
            if k > 1 and any(o.rule.exclusive for o in combo):
                continue
            if any(a.group == b.group and a.mask & b.mask
                   for a, b in itertools.combinations(combo, 2)):
                continue
            best = min(best, _key(_value(combo, caps), list(combo)))
    return best


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_prices_are_never_negative_allocations_add_up_and_the_best_is_chosen(scenario):
    c, rs, coupon = scenario
    p = price(rs, c, coupon)
    assert all(pl.total >= 0 and pl.discount >= 0 for pl in p.lines)
    assert p.shipping >= 0 and p.subtotal - p.discount >= 0
    assert sum(pl.discount for pl in p.lines) == p.discount
    assert all(pl.subtotal - pl.discount == pl.total for pl in p.lines)
    assert sum(a.amount for a in p.applied) == p.discount + p.shipping_discount
    for a in p.applied:
        assert sum(a.lines) + a.shipping == a.amount > 0
        r = next(r for r in rs + [coupon] if r is not None and r.id == a.rule_id)
        if r.budget_left is not None:
            assert a.amount <= r.budget_left
    for pl in p.lines:
        assert sum(e.amount for e in pl.explanation) == pl.discount
    chosen = [o for o in _options_of(p, rs, coupon, c)]
    caps = [ln.total for ln in c.lines] + [c.shipping]
    assert _key(p.discount + p.shipping_discount, chosen) == _brute_force(c, rs, coupon)
    assert _value(chosen, caps) == p.discount + p.shipping_discount
    # deterministic: the same cart priced again, or with the rules in another order
    assert price(list(reversed(rs)), c, coupon) == p


def _options_of(p, rs, coupon, c):
    by_id = {r.id: r for r in rs + ([coupon] if coupon else [])}
    out = []
    for a in p.applied:
        r = by_id[a.rule_id]
        s = shares(r, c)
        out.append(_Option(r, s, sum(s.values()), sum(1 << i for i in s)))
    return out


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_allocation_always_sums_to_the_amount(amount, weights):
    parts = allocate(amount, weights)
    assert sum(parts) == (amount if sum(weights) else 0)
    assert all(p >= 0 for p in parts)
    total = sum(weights)
    if total:  # each part is its exact share rounded down or up
        assert all(abs(p * total - amount * w) < total for p, w in zip(parts, weights,
                                                                       strict=True))
