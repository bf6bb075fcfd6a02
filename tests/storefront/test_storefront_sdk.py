"""The SDK's storefront client (haina.client.Storefront): a buyer's way from search to a
paid order with a booking, typed answers, problems as HainaError, and the buyer's tokens
refreshed by the client when the access token is refused."""

from __future__ import annotations

import pytest
from storefront_support import HERE, make_key, slot_start, tire_shop

from haina.client import HainaError, Storefront
from haina.o2o.schemas import SearchOut


def test_the_storefront_client_walks_a_buyer_to_a_paid_order(client):
    tire_shop(client)
    key = make_key(client, channel="app")
    seen = []
    with Storefront("http://testserver", key, transport=client._transport,
                    on_session=seen.append) as store:
        found = store.search("轮胎", lat=HERE["lat"], lng=HERE["lng"])
        assert isinstance(found, SearchOut) and found.products[0].sku == "TIRE-16"
        point = found.products[0].service_points[0]
        with pytest.raises(HainaError) as refused:
            store.create_cart([])
        assert refused.value.slug == "buyer-token-required"
        sent = store.request_code("13800138000")
        code = next(m["code"] for m in store.sandbox_inbox() if m["phone"] == sent.phone)
        store.verify(sent.phone, code)
        cart = store.create_cart([{"sku": "TIRE-16", "quantity": 4}])
        hold = store.hold_booking(point.id, "tire-fitting", slot_start())
        order = store.checkout(cart.id, bookings=[{"sku": "TIRE-16", "booking_id": hold.id}])
        assert order.channel == "app" and order.bookings[0].status == "confirmed"
        with pytest.raises(HainaError) as declined:
            store.pay(order.id, card="4000000000000002")
        assert declined.value.status == 402
        assert store.pay(order.id, card="4242424242424242").status == "succeeded"
        # a refused access token is refreshed once, and the new pair is handed over
        assert store.session is not None
        store.session = store.session.model_copy(update={"access_token": "bst_expired"})
        assert [o.status for o in store.orders().data] == ["paid"]
        assert len(seen) == 2 and store.me().points_balance > 0
        store.sign_out()
        assert store.session is None
