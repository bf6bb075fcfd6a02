"""The campaign's pure parts: the holdout draw (reproducible, about the configured share,
independent of who else is targeted) and the lift's interval (it covers a known effect in
about 95 % of repeated simulations)."""

from __future__ import annotations

import random

from haina.campaigns import lift


def test_the_holdout_is_reproducible_and_about_the_configured_share():
    ids = [f"mem_{i:06d}" for i in range(10_000)]
    first = [m for m in ids if lift.in_holdout("seed-a", m, 1500)]
    assert first == [m for m in ids if lift.in_holdout("seed-a", m, 1500)]
    assert 0.14 <= len(first) / len(ids) <= 0.16
    # a member's draw does not depend on the others targeted with them
    assert [m for m in ids[:100] if lift.in_holdout("seed-a", m, 1500)] == \
        [m for m in first if m in set(ids[:100])]
    other = {m for m in ids if lift.in_holdout("seed-b", m, 1500)}
    assert len(other & set(first)) < len(first) * 0.3  # another seed, another draw
    assert not any(lift.in_holdout("seed-a", m, 0) for m in ids)
    order = lift.enrolment_order("seed-a", ids)
    assert sorted(order) == ids and order != ids and order == lift.enrolment_order("seed-a", ids)


def _revenue(rng: random.Random, n: int, buy: float, mean: float) -> list[float]:
    """Zero-inflated revenue per member: most buy nothing, buyers spend exponentially."""
    return [rng.expovariate(1 / mean) if rng.random() < buy else 0.0 for _ in range(n)]


def test_the_95_percent_interval_covers_a_known_effect_about_95_percent_of_the_time():
    rng = random.Random(20261202)
    # treated: 30 % buy, 120 on average (36 per member); holdout: 25 % buy, 100 (25 per member)
    true_effect = 0.30 * 120 - 0.25 * 100
    covered = 0
    runs = 400
    for _ in range(runs):
        treated = _revenue(rng, 300, 0.30, 120.0)
        holdout = _revenue(rng, 120, 0.25, 100.0)  # unequal sizes and spreads: Welch's case
        i = lift.welch_interval(treated, holdout)
        assert i.low is not None and i.high is not None and i.low < i.estimate < i.high
        covered += i.low <= true_effect <= i.high
    assert 0.92 <= covered / runs <= 0.98


def test_the_interval_degenerates_honestly_on_tiny_or_uniform_groups():
    one = lift.welch_interval([10.0], [0.0, 0.0])
    assert one.estimate == 10.0 and one.low is None and one.high is None
    flat = lift.welch_interval([5.0, 5.0], [2.0, 2.0])
    assert (flat.estimate, flat.low, flat.high) == (3.0, 3.0, 3.0)


def test_the_interval_from_running_sums_is_the_interval_from_the_values():
    from haina.campaigns.lift import welch_from_sums, welch_interval
    rng = random.Random(12)
    for _ in range(50):
        t = [rng.choice((0, 0, 0, rng.randint(1, 500_000))) for _ in range(rng.randint(2, 300))]
        h = [rng.choice((0, 0, rng.randint(1, 400_000))) for _ in range(rng.randint(2, 300))]
        a = welch_interval([float(x) for x in t], [float(x) for x in h])
        b = welch_from_sums((len(t), sum(t), sum(x * x for x in t)),
                            (len(h), sum(h), sum(x * x for x in h)))
        for x, y in ((a.estimate, b.estimate), (a.low, b.low), (a.high, b.high)):
            assert x is not None and y is not None and abs(x - y) <= 1e-6 * (1 + abs(x))
