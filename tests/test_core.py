"""The shared kernel: ids, money, scopes."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from haina.core.context import Tenant, parse_scopes
from haina.core.ids import _ALPHABET, new_id, ulid
from haina.core.money import Money, MoneyError, bps, from_minor, share, to_minor


def test_ids_made_now_strictly_increase_and_carry_their_prefix():
    made = [new_id("order") for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(i.startswith("ord_") and len(i) == 30 for i in made)


def test_ids_made_for_one_millisecond_differ_across_blocks_of_random_bytes():
    made = [ulid(1_700_000_000_000) for _ in range(1000)]  # 10 kB: more than one block
    assert len(set(made)) == 1000


def test_a_forked_process_does_not_repeat_its_parents_next_ids(monkeypatch):
    from haina.core import ids
    frozen = ids.time.time_ns()
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)  # both count up from one ms
    ulid(), ulid(123)  # the parent has a last id and random bytes left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then gone without pytest's exit handlers
        try:
            os.write(write, " ".join([*(ulid() for _ in range(20)),
                                      *(ulid(123) for _ in range(20))]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split())
    os.waitpid(pid, 0)
    parents = {*(ulid() for _ in range(20)), *(ulid(123) for _ in range(20))}
    assert len(childs) == 40 and not childs & parents


@given(st.integers(min_value=0, max_value=2**48 - 1), st.integers(min_value=0, max_value=2**80 - 1))
def test_a_ulid_is_its_128_bits_in_crockfords_base32(ms, rand):
    from haina.core import ids
    real = ids._random80
    ids._random80 = lambda: rand
    try:
        text = ulid(ms)
    finally:
        ids._random80 = real
    value = 0
    for ch in text:
        value = value * 32 + _ALPHABET.index(ch)
    assert len(text) == 26 and value == (ms << 80) | rand


@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_a_ulid_encodes_its_millisecond_in_the_leading_bits(ms):
    text = ulid(ms)
    value = 0
    for ch in text:
        value = value * 32 + _ALPHABET.index(ch)
    assert len(text) == 26 and value >> 80 == ms


@given(st.integers(min_value=-10**12, max_value=10**12), st.sampled_from(["CNY", "JPY", "USD"]))
def test_minor_units_round_trip_exactly(minor, currency):
    assert to_minor(from_minor(minor, currency), currency) == minor


def test_amounts_finer_than_the_currency_are_refused():
    with pytest.raises(MoneyError):
        to_minor("99.001", "CNY")
    with pytest.raises(MoneyError):
        to_minor("1.5", "JPY")
    with pytest.raises(ValidationError):
        Money(amount=99.0, currency="CNY")  # floats are never money
    with pytest.raises(ValidationError):
        Money(amount="1.00", currency="XXX")
    assert Money(amount="99.00", currency="cny").minor == 9900


def test_fees_round_half_even_once():
    assert bps(250, 200) == 5          # 5.0
    assert bps(25, 200) == 0           # 0.5 → 0 (even)
    assert bps(75, 200) == 2           # 1.5 → 2 (even)
    assert share(100, 1, 3) + share(100, 2, 3) == 100


def test_write_scope_implies_read_and_star_grants_all():
    t = Tenant(id="ten_1", slug="a", scopes=parse_scopes("orders:write catalog:read"))
    assert t.allows("orders:read") and t.allows("orders:write") and t.allows("catalog:read")
    assert not t.allows("catalog:write") and not t.allows("members:read")
    assert Tenant(id="ten_1", slug="a", scopes=parse_scopes("*")).allows("ledger:read")
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("orders:fly")
    assert from_minor(12345, "CNY") == Decimal("123.45")


def test_trusted_construct_equals_model_construct_and_falls_back_when_fields_are_missing():
    from haina.core.trusted import construct
    fast = Money.of(12345, "CNY")
    assert fast == Money.model_construct(amount=Decimal("123.45"), currency="CNY")
    assert fast.model_dump(mode="json") == {"amount": "123.45", "currency": "CNY"}
    assert fast.model_fields_set == {"amount", "currency"}
    partial = construct(ProblemLike, type="t", title="x")  # `detail` left to its default
    assert partial.detail == "none" and partial.model_fields_set == {"type", "title"}
    full = construct(ProblemLike, type="t", title="x", detail="d")
    assert full == ProblemLike(type="t", title="x", detail="d")


class ProblemLike(BaseModel):
    type: str
    title: str
    detail: str = "none"


def test_money_of_gives_the_same_frozen_amount_once_made_and_stays_bounded(monkeypatch):
    from pydantic import ValidationError

    from haina.core import money
    monkeypatch.setattr(money, "_MADE", {})
    monkeypatch.setattr(money, "MADE_MAX", 3)
    a = Money.of(9900, "CNY")
    assert Money.of(9900, "CNY") is a and a.amount == Decimal("99.00")
    assert Money.of(9900, "JPY") is not a and Money.of(9900, "JPY").amount == Decimal("9900")
    with pytest.raises(ValidationError):
        a.amount = Decimal("1.00")  # type: ignore[misc]  # frozen: safe to share
    for minor in range(10):
        assert Money.of(minor, "CNY").amount == from_minor(minor, "CNY")
        assert len(money._MADE) <= 3
    with pytest.raises(MoneyError):
        Money.of(1, "XXX")
