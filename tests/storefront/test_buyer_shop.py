"""The buyer's Shop of a request (storefront.auth.buyer_of): made once per token while the
key's Shop and the member stay the same, made again when either changes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from starlette.datastructures import Headers

from haina.storefront import auth
from haina.storefront.keys import Shop


class FakeRequest:
    """What buyer_of reads of a request: its headers, the app's settings."""

    def __init__(self, token: str, authorization: str | None = None) -> None:
        self.headers = Headers({"x-publishable-key": "pk_test_1",
                                "authorization": authorization or f"Bearer {token}"})
        self.app = SimpleNamespace(state=SimpleNamespace(
            settings=SimpleNamespace(token_cache_seconds=5.0), sessionmaker=None))


def test_a_buyers_shop_is_kept_per_token_until_the_keys_shop_or_the_member_changes(monkeypatch):
    key_shop = {"now": Shop(id="ten_1", slug="one", channel="app", publishable_key_id="pk_1")}
    member = {"bst_a": "mem_a", "bst_b": "mem_b"}
    monkeypatch.setattr(auth.keys, "cached_shop", lambda key, ttl: key_shop["now"])
    monkeypatch.setattr(auth.keys, "renew_due", lambda key, ttl: False)
    monkeypatch.setattr(auth.buyers, "cached_buyer", lambda shop, token, ttl: member[token])
    monkeypatch.setattr(auth, "_BUYER_SHOPS", {})

    def buyer(token: str) -> Shop:
        return asyncio.run(auth.buyer_of(FakeRequest(token)))  # type: ignore[arg-type]

    first = buyer("bst_a")
    assert (first.buyer_id, first.access_token, first.channel) == ("mem_a", "bst_a", "app")
    assert buyer("bst_a") is first  # the same key's Shop and member: the same object
    other = buyer("bst_b")
    assert (other.buyer_id, other.access_token) == ("mem_b", "bst_b")
    assert buyer("bst_a") is first
    # the key's Shop looked up again (its channel changed): the buyer's is made anew from it
    key_shop["now"] = Shop(id="ten_1", slug="one", channel="mini", publishable_key_id="pk_1")
    renewed = buyer("bst_a")
    assert renewed is not first and (renewed.channel, renewed.buyer_id) == ("mini", "mem_a")
    # the token's session now names another member (merged into it): made anew for it
    member["bst_a"] = "mem_c"
    merged = buyer("bst_a")
    assert (merged.buyer_id, merged.channel) == ("mem_c", "mini")


def test_the_kept_buyers_shops_are_bounded(monkeypatch):
    shop = Shop(id="ten_1", slug="one", publishable_key_id="pk_1")
    monkeypatch.setattr(auth.keys, "cached_shop", lambda key, ttl: shop)
    monkeypatch.setattr(auth.keys, "renew_due", lambda key, ttl: False)
    monkeypatch.setattr(auth.buyers, "cached_buyer", lambda shop, token, ttl: "mem_" + token)
    monkeypatch.setattr(auth, "_BUYER_SHOPS", {})
    monkeypatch.setattr(auth, "BUYER_SHOPS_MAX", 3)
    for i in range(7):
        asyncio.run(auth.buyer_of(FakeRequest(f"bst_{i}")))  # type: ignore[arg-type]
        assert len(auth._BUYER_SHOPS) <= 3


@pytest.mark.parametrize("header", ["", "Basic abc", "Bearer ", "Bearer pk_not_a_buyer"])
def test_without_a_buyers_token_the_request_is_refused(monkeypatch, header):
    shop = Shop(id="ten_1", slug="one", publishable_key_id="pk_1")
    monkeypatch.setattr(auth.keys, "cached_shop", lambda key, ttl: shop)
    monkeypatch.setattr(auth.keys, "renew_due", lambda key, ttl: False)
    request = FakeRequest("x", authorization=header or " ")
    with pytest.raises(auth.Unauthorized):
        asyncio.run(auth.buyer_of(request))  # type: ignore[arg-type]
