"""The pricing engine: one pure function prices a cart against the rules that can apply to it.

No database here (an import contract keeps it so): the caller loads the rules (promotions by
what they target, the coupon by its code) and the buyer's facts, the engine does the rest.
The rules it follows, written once (docs/marketing.md "How a price is made"):

1. **Every rule is judged and computed on list prices.** Whether a rule applies (its targets,
   its minimum, a threshold tier, a bundle's quantities) and how much it takes are computed from
   the cart's list prices, independently of the other rules.
2. **Discounts add up, a line never goes below zero.** A line's discount is the sum of the
   shares the chosen rules give it, capped at the line's list total (shipping: at the fee).
   The rules are applied in a fixed order — stage (item, order, coupon, shipping), priority
   (higher first), id — each taking its share or what is left of the line, which tells whom a
   capped amount is credited to; the total does not depend on that order.
3. **A rule over several lines is allocated by largest remainder**: each line gets
   ``floor(D × its list total ÷ the rules' goods)`` minor units, and the units left over go one
   each to the lines with the largest remainders (ties: the earlier line). The allocations sum
   to the rule's amount exactly, and a refund of one line returns its list total less its
   allocated discount.
4. **A budget caps a rule**: its amount is at most the budget left, allocated as in 3.
5. **Combinations**: two rules of one stacking group never discount the same line (a rule
   without a group of its own is in its stage's group: ``item``, ``order``, ``coupon``,
   ``shipping``); an exclusive rule applies alone (no other promotion, no coupon).
6. **The best combination for the buyer is chosen**: the largest total discount (goods and
   shipping); ties go to fewer rules, then the larger sum of priorities, then the smaller ids
   (sorted, compared in order). The search is a branch and bound over the valid combinations
   with the exact bound "all rules still compatible"; it is exact up to ``MAX_NODES`` nodes
   (``PricedCart.exhaustive`` says whether it finished).

Amounts are integers in minor units; percentages are basis points, rounded half-even once
per rule (``core.money.bps``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from haina.core.money import bps, format_amount

STAGES = {"percent": 0, "fixed": 0, "tier_price": 0, "bundle": 0, "buy_x_get_y": 0,
          "threshold": 1, "first_order": 1, "coupon": 2, "free_shipping": 3}
STAGE_NAMES = ("item", "order", "coupon", "shipping")
KINDS = tuple(k for k in STAGES if k != "coupon")
MAX_NODES = 600  # per cart, over all its components (smallest first)


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    product_id: str
    category_id: str | None
    unit_price: int  # minor units
    quantity: int
    total: int = field(init=False, compare=False)  # unit price × quantity

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", self.unit_price * self.quantity)


@dataclass(frozen=True, slots=True)
class Cart:
    lines: tuple[CartLine, ...]
    currency: str
    shipping: int = 0  # the fee before any free-shipping rule, minor units
    member_id: str | None = None
    tier_id: str | None = None
    tier_known: bool = False  # tier_id was read with the member (pricing need not read it)
    first_order: bool = False  # the member has no order yet (a first-order rule needs it)
    every_line: tuple[int, ...] = field(init=False, compare=False, repr=False)
    goods: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "every_line", tuple(range(len(self.lines))))
        object.__setattr__(self, "goods", sum(ln.total for ln in self.lines))


@dataclass(frozen=True, slots=True)
class Rule:
    """A promotion or a coupon, as the engine reads it. Amounts in minor units of
    ``currency``; ``tiers`` are (min subtotal, amount off) for ``threshold`` and (min quantity,
    unit price) for ``tier_price``; ``bundle`` is (product id, quantity) pairs."""

    id: str
    kind: str
    currency: str
    name: str = ""
    source: str = "promotion"  # promotion | coupon
    priority: int = 0
    stacking_group: str | None = None
    exclusive: bool = False
    product_ids: frozenset[str] | None = None
    category_ids: frozenset[str] | None = None
    tier_ids: frozenset[str] | None = None
    min_subtotal: int = 0
    percent_bps: int | None = None
    off: int | None = None
    max_discount: int | None = None
    tiers: tuple[tuple[int, int], ...] = ()
    repeat: bool = False
    buy: int = 0
    get: int = 0
    bundle: tuple[tuple[str, int], ...] = ()
    bundle_price: int = 0
    budget_left: int | None = None  # None: no budget
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    # what decides the rule's shares of a cart (not its name, id, priority or combining):
    # rules alike in it are evaluated once per cart
    terms: tuple = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", (
            self.kind, self.currency, self.product_ids, self.category_ids, self.tier_ids,
            self.min_subtotal, self.percent_bps, self.off, self.max_discount, self.tiers,
            self.repeat, self.buy, self.get, self.bundle, self.bundle_price, self.budget_left,
            self.starts_at, self.ends_at))

    @property
    def stage(self) -> int:
        return STAGES[self.kind]

    @property
    def group(self) -> str:
        return self.stacking_group or STAGE_NAMES[self.stage]

    def targets(self) -> list[str]:
        """The index keys of this rule: ``p:<product>``, ``c:<category>``, or ``*`` (all)."""
        if self.kind == "bundle":
            return [f"p:{p}" for p, _ in self.bundle]
        if self.product_ids is None and self.category_ids is None:
            return ["*"]
        return [f"p:{p}" for p in sorted(self.product_ids or ())] + \
            [f"c:{c}" for c in sorted(self.category_ids or ())]


@dataclass(frozen=True, slots=True)
class Explanation:
    """One rule's part in one line's price."""

    rule_id: str
    source: str
    kind: str
    name: str
    amount: int
    text: str


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    total: int
    explanation: tuple[Explanation, ...]


@dataclass(frozen=True, slots=True)
class Applied:
    rule_id: str
    source: str
    kind: str
    name: str
    amount: int  # goods and shipping together
    shipping: int = 0  # of which shipping
    lines: tuple[int, ...] = ()  # the amount per cart line (shipping apart)
    budgeted: bool = False  # the rule has a budget (its amount must be claimed)


@dataclass(frozen=True, slots=True)
class PricedCart:
    currency: str
    subtotal: int
    discount: int  # off the goods
    shipping: int  # charged, after free shipping
    shipping_discount: int
    lines: tuple[PricedLine, ...]
    applied: tuple[Applied, ...]
    exhaustive: bool = True
    considered: int = field(default=0, compare=False)  # rules that could apply


# ---------------------------------------------------------------- allocation

def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` split in proportion to ``weights`` by largest remainder: each gets the floor
    of its exact share, the units left go one each to the largest remainders (ties: the
    earlier). The parts sum to ``amount`` (0 everywhere when the weights sum to 0)."""
    total = sum(weights)
    if total <= 0 or amount <= 0:
        return [0] * len(weights)
    parts = [amount * w // total for w in weights]
    left = amount - sum(parts)
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
        for i in order[:left]:
            parts[i] += 1
    return parts


# ---------------------------------------------------------------- one rule on one cart

def _eligible(rule: Rule, cart: Cart) -> Sequence[int]:
    if rule.product_ids is None and rule.category_ids is None:
        return cart.every_line
    products, categories = rule.product_ids or (), rule.category_ids or ()
    return [i for i, ln in enumerate(cart.lines)
            if ln.product_id in products or (ln.category_id is not None
                                             and ln.category_id in categories)]


def _spread(amount: int, lines: Sequence[CartLine], idx: Sequence[int]) -> dict[int, int]:
    parts = _allocate_once(amount, tuple(lines[i].total for i in idx))
    return {i: a for i, a in zip(idx, parts, strict=True) if a}


@lru_cache(maxsize=8192)
def _allocate_once(amount: int, weights: tuple[int, ...]) -> tuple[int, ...]:
    # many order-level rules of a cart spread the same amount over the same lines
    return tuple(allocate(amount, weights))


def shares(rule: Rule, cart: Cart, now: dt.datetime | None = None) -> dict[int, int]:
    """What ``rule`` alone takes from ``cart``, per line index (``len(cart.lines)`` is
    shipping), in minor units, before other rules; empty when it does not apply."""
    if rule.currency != cart.currency:
        return {}
    if now is not None and ((rule.starts_at and now < rule.starts_at)
                            or (rule.ends_at and now >= rule.ends_at)):
        return {}
    if rule.tier_ids is not None and cart.tier_id not in rule.tier_ids:
        return {}
    if rule.kind == "first_order" and not (cart.member_id and cart.first_order):
        return {}
    if rule.budget_left is not None and rule.budget_left <= 0:
        return {}
    lines = cart.lines
    if rule.kind == "bundle":
        out = _bundle(rule, lines)
    else:
        idx = _eligible(rule, cart)
        base = cart.goods if idx is cart.every_line else sum(lines[i].total for i in idx)
        if not idx or base <= 0 or base < rule.min_subtotal:
            return {}
        out = _kind_shares(rule, cart, idx, base)
    if rule.budget_left is not None and sum(out.values()) > rule.budget_left:
        keys = sorted(out)
        out = {k: a for k, a in zip(keys, allocate(rule.budget_left, [out[k] for k in keys]),
                                    strict=True) if a}
    return out


def _capped(amount: int, rule: Rule, base: int) -> int:
    if rule.max_discount is not None:
        amount = min(amount, rule.max_discount)
    return max(0, min(amount, base))


def _kind_shares(rule: Rule, cart: Cart, idx: Sequence[int], base: int) -> dict[int, int]:
    lines, kind = cart.lines, rule.kind
    if kind in ("percent", "coupon", "first_order"):
        if rule.percent_bps is not None:
            amount = bps(base, rule.percent_bps)
        else:
            amount = rule.off or 0
        return _spread(_capped(amount, rule, base), lines, idx)
    if kind == "fixed":  # 直降: this much off each unit
        off = rule.off or 0
        return {i: min(off, lines[i].unit_price) * lines[i].quantity for i in idx
                if min(off, lines[i].unit_price) > 0}
    if kind == "threshold":  # 满减, and 每满减 with repeat
        met = [(m, o) for m, o in rule.tiers if m <= base]
        if not met:
            return {}
        amount = max((base // m) * o for m, o in met) if rule.repeat else max(o for _, o in met)
        return _spread(_capped(amount, rule, base), lines, idx)
    if kind == "tier_price":  # 阶梯价: a line of enough units is priced at the tier's price
        out = {}
        for i in idx:
            ln = lines[i]
            prices = [p for q, p in rule.tiers if ln.quantity >= q]
            if prices and min(prices) < ln.unit_price:
                out[i] = (ln.unit_price - min(prices)) * ln.quantity
        return out
    if kind == "buy_x_get_y":  # the cheapest units of every buy+get are (percent) off
        units = sum(lines[i].quantity for i in idx)
        free = (units // (rule.buy + rule.get)) * rule.get
        pct = rule.percent_bps if rule.percent_bps is not None else 10_000
        out = {}
        for i in sorted(idx, key=lambda i: (lines[i].unit_price, i)):
            if free <= 0:
                break
            c = min(free, lines[i].quantity)
            free -= c
            if a := bps(lines[i].unit_price * c, pct):
                out[i] = a
        return out
    if kind == "free_shipping":
        return {len(lines): cart.shipping} if cart.shipping > 0 else {}
    raise ValueError(f"unknown rule kind {kind!r}")


def _bundle(rule: Rule, lines: Sequence[CartLine]) -> dict[int, int]:
    """A bundle (A + B for one price): as many whole bundles as the cart holds, made of the
    dearest units of each product (ties: the earlier line); the saving is spread over the
    units bundled."""
    sets = None
    for product_id, q in rule.bundle:
        have = sum(ln.quantity for ln in lines if ln.product_id == product_id)
        sets = have // q if sets is None else min(sets, have // q)
    if not sets:
        return {}
    taken: dict[int, int] = {}
    for product_id, q in rule.bundle:
        need = sets * q
        for i in sorted((i for i, ln in enumerate(lines) if ln.product_id == product_id),
                        key=lambda i: (-lines[i].unit_price, i)):
            t = min(need, lines[i].quantity)
            if t:
                taken[i] = taken.get(i, 0) + t
                need -= t
    value = sum(lines[i].unit_price * t for i, t in taken.items())
    saving = value - sets * rule.bundle_price
    if saving <= 0:
        return {}
    keys = sorted(taken)
    parts = allocate(saving, [lines[i].unit_price * taken[i] for i in keys])
    return {i: a for i, a in zip(keys, parts, strict=True) if a}


# ---------------------------------------------------------------- the index

class RuleBook:
    """Rules indexed by what they target (``*``, ``p:<product>``, ``c:<category>``), so that a
    cart meets only the rules that name one of its products or categories, or all goods."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.by_target: dict[str, list[Rule]] = {}
        self.size = 0
        for rule in rules:
            self.size += 1
            for key in rule.targets():
                self.by_target.setdefault(key, []).append(rule)

    def candidates(self, cart: Cart) -> list[Rule]:
        found: dict[str, Rule] = {r.id: r for r in self.by_target.get("*", ())}
        keys = {f"p:{ln.product_id}" for ln in cart.lines} | \
            {f"c:{ln.category_id}" for ln in cart.lines if ln.category_id}
        for key in sorted(keys):
            for r in self.by_target.get(key, ()):
                found[r.id] = r
        return list(found.values())


# ---------------------------------------------------------------- the search

@dataclass(slots=True)
class _Option:
    rule: Rule
    shares: dict[int, int]
    amount: int
    mask: int  # lines it touches (bit per line; the last bit is shipping)
    group: str = field(init=False)

    def __post_init__(self) -> None:
        self.group = self.rule.group


def _value(options: Sequence[_Option], caps: Sequence[int]) -> int:
    acc: dict[int, int] = {}
    for o in options:
        for i, a in o.shares.items():
            acc[i] = acc.get(i, 0) + a
    return sum(min(a, caps[i]) for i, a in acc.items())


def _key(value: int, chosen: Sequence[_Option]) -> tuple:
    return (-value, len(chosen), -sum(o.rule.priority for o in chosen),
            tuple(sorted(o.rule.id for o in chosen)))


def best_combination(options: Sequence[_Option], caps: Sequence[int]) -> tuple[list[_Option], bool]:
    """The valid combination with the smallest :func:`_key` (rule 6 of the module's
    docstring), and whether the search finished.

    The search is split where the problem splits: two rules interact only if they are of one
    group and touch one line (they conflict) or touch a line that the rules could take more
    than its worth from (the cap couples them). Rules are joined into components by those two
    relations; every other line adds up exactly, so the best combination is the union of each
    component's best (f, the number of rules and the sum of priorities add up; the sorted ids
    of a union compare as its parts do). Rules of one group with the very same shares are
    interchangeable: only the best of them by priority, then id, is kept."""
    width = len(caps)
    loners = [o for o in options if o.rule.exclusive]
    kept: dict[tuple, _Option] = {}
    for o in options:
        if o.rule.exclusive:
            continue
        same = (o.group, tuple(sorted(o.shares.items())))
        other = kept.get(same)
        if other is None or (-o.rule.priority, o.rule.id) < (-other.rule.priority,
                                                              other.rule.id):
            kept[same] = o
    pool = list(kept.values())
    top: dict[tuple[str, int], int] = {}
    for o in pool:
        for i, a in o.shares.items():
            if a > top.get((o.group, i), 0):
                top[(o.group, i)] = a
    most = [0] * width
    for (_, i), a in top.items():
        most[i] += a
    tight = {i for i in range(width) if most[i] > caps[i]}
    parent = list(range(len(pool)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[object, int] = {}
    for k, o in enumerate(pool):
        for i in o.shares:
            for key in ((o.group, i), i if i in tight else None):
                if key is None:
                    continue
                if key in first:
                    parent[find(k)] = find(first[key])
                else:
                    first[key] = k
    parts: dict[int, list[_Option]] = {}
    for m, o in enumerate(pool):
        parts.setdefault(find(m), []).append(o)
    chosen: list[_Option] = []
    exhaustive = True
    budget = [MAX_NODES]
    for part in sorted(parts.values(), key=len):
        found, done = _search(part, caps, budget)
        chosen += found
        exhaustive = exhaustive and done
    best, best_key = chosen, _key(_value(chosen, caps), chosen)
    for o in loners:
        alone = _key(_value([o], caps), [o])
        if alone < best_key:
            best, best_key = [o], alone
    return best, exhaustive


def _search(options: Sequence[_Option], caps: Sequence[int],
            budget: list[int]) -> tuple[list[_Option], bool]:
    """Branch and bound over one component: the combination with the smallest key, the
    richest rules tried first (so the first combination found is the greedy one); stops when
    the cart's ``budget`` of nodes is spent, with the best found."""
    pool = sorted(options, key=lambda o: (-o.amount, o.rule.id))
    n = len(pool)
    if n == 1:
        return list(pool), True
    conflicts = [0] * n
    for a in range(n):
        for b in range(a + 1, n):
            if pool[a].group == pool[b].group and pool[a].mask & pool[b].mask:
                conflicts[a] |= 1 << b
                conflicts[b] |= 1 << a
    best: list[_Option] = []
    best_key = _key(0, [])
    nodes = 0
    exhaustive = True
    width = len(caps)

    def bound(acc: list[int], open_: list[int]) -> int:
        # a valid completion puts at most one rule of a group on a line: the most any open
        # rule of the group gives that line bounds what the group can add there
        top: dict[tuple[str, int], int] = {}
        for j in open_:
            g = pool[j].group
            for i, a in pool[j].shares.items():
                if a > top.get((g, i), 0):
                    top[(g, i)] = a
        extra = [0] * width
        for (_, i), a in top.items():
            extra[i] += a
        return sum(min(caps[i], acc[i] + extra[i]) for i in range(width))

    def walk(i: int, chosen: list[int], acc: list[int], blocked: int) -> None:
        nonlocal best, best_key, nodes, exhaustive
        nodes += 1
        budget[0] -= 1
        if budget[0] < 0 and best:
            exhaustive = False
            return
        open_ = [j for j in range(i, n) if not blocked >> j & 1]
        if not open_:
            k = _key(sum(min(caps[x], acc[x]) for x in range(width)),
                     [pool[j] for j in chosen])
            if k < best_key:
                best, best_key = [pool[j] for j in chosen], k
            return
        top = bound(acc, open_)
        if top < -best_key[0] or (top == -best_key[0] and len(chosen) > best_key[1]):
            return
        j = open_[0]
        with_j = list(acc)
        for x, a in pool[j].shares.items():
            with_j[x] += a
        walk(j + 1, chosen + [j], with_j, blocked | conflicts[j])
        walk(j + 1, chosen, acc, blocked | (1 << j))

    walk(0, [], [0] * width, 0)
    return best, exhaustive


# ---------------------------------------------------------------- pricing a cart

def price_cart(book: RuleBook | Sequence[Rule], cart: Cart, coupon: Rule | None = None,
               now: dt.datetime | None = None) -> PricedCart:
    """Price ``cart``: the best valid combination of the rules that apply (the ``book``'s
    candidates for this cart, plus the coupon the buyer gave), discounts allocated to lines
    and explained. A plain sequence of rules is evaluated rule by rule (the naive loop the
    benchmark compares with)."""
    candidates = book.candidates(cart) if isinstance(book, RuleBook) else list(book)
    if coupon is not None:
        candidates.append(coupon)
    n = len(cart.lines)
    caps = [ln.total for ln in cart.lines] + [cart.shipping]
    options = []
    seen: dict[tuple, tuple[dict[int, int], int, int]] = {}
    for rule in candidates:
        found = seen.get(rule.terms)
        if found is None:
            s = shares(rule, cart, now)
            mask = 0
            for i in s:
                mask |= 1 << i
            found = seen[rule.terms] = (s, sum(s.values()), mask)
        if found[0]:
            options.append(_Option(rule, *found))
    chosen, exhaustive = best_combination(options, caps)
    # attribution (rule 2): stage, priority (higher first), id; each takes what is left
    left = list(caps)
    per_line: list[list[Explanation]] = [[] for _ in range(n)]
    applied = []
    for o in sorted(chosen, key=lambda o: (o.rule.stage, -o.rule.priority, o.rule.id)):
        taken = [0] * (n + 1)
        for i in sorted(o.shares):
            take = min(o.shares[i], left[i])
            left[i] -= take
            taken[i] = take
        if not any(taken):
            continue
        r = o.rule
        for i in range(n):
            if taken[i]:
                per_line[i].append(Explanation(r.id, r.source, r.kind, r.name, taken[i],
                                               _explain(r, taken[i], len(o.shares), cart)))
        applied.append(Applied(r.id, r.source, r.kind, r.name, sum(taken), taken[n],
                               tuple(taken[:n]), r.budget_left is not None))
    lines = tuple(PricedLine(ln.sku, ln.quantity, ln.unit_price, ln.total,
                             ln.total - left[i], left[i], tuple(per_line[i]))
                  for i, ln in enumerate(cart.lines))
    subtotal = sum(ln.total for ln in cart.lines)
    discount = sum(pl.discount for pl in lines)
    return PricedCart(cart.currency, subtotal, discount, left[n], cart.shipping - left[n], lines,
                      tuple(applied), exhaustive, len(candidates))


def _explain(rule: Rule, amount: int, spread_over: int, cart: Cart) -> str:
    what = {"percent": "percent off", "fixed": "off each unit", "threshold": "spend threshold",
            "tier_price": "quantity price", "bundle": "bundle price",
            "buy_x_get_y": f"buy {rule.buy} get {rule.get}", "first_order": "first order",
            "coupon": "coupon", "free_shipping": "free shipping"}[rule.kind]
    text = f"{rule.name or rule.id} ({what}): {format_amount(amount, cart.currency)} off"
    if spread_over > 1 and rule.kind in ("percent", "threshold", "first_order", "coupon",
                                         "bundle"):
        text += f", this line's share of the rule's amount over {spread_over} lines " \
                "(largest remainder)"
    return text


def with_points(priced: PricedCart, points_minor: int) -> PricedCart:
    """Redeemed points as a discount after the rules: allocated over what is left of each line
    by largest remainder (rule 3), explained as ``points``. More points than the goods left is
    the caller's refusal to make; here they stop at zero."""
    if points_minor <= 0:
        return priced
    left = [pl.total for pl in priced.lines]
    points_minor = min(points_minor, sum(left))
    parts = allocate(points_minor, left)
    lines = tuple(
        replace(pl, discount=pl.discount + a, total=pl.total - a,
                explanation=pl.explanation + ((Explanation(
                    "points", "points", "points", "member points", a,
                    f"member points: {format_amount(a, priced.currency)} off, this line's "
                    "share by largest remainder"),) if a else ()))
        for pl, a in zip(priced.lines, parts, strict=True))
    return replace(priced, discount=priced.discount + points_minor, lines=lines)
