"""The storefront's public face: publishable keys (``keys``), buyers' sign-in and sessions
(``buyers``) and what a buyer does on ``/store/v1`` (``shop``)."""

from __future__ import annotations

from haina.storefront.buyers import (
    CodeRejected,
    CodeThrottled,
    Verified,
    authenticate_buyer,
    end_sessions_of_key,
    erase_buyer,
    export_buyer,
    open_session,
    refresh_session,
    request_code,
    retire_sign_ins,
    sandbox_inbox,
    sign_in_code_ids,
    sign_out,
    verify_code,
)
from haina.storefront.keys import (
    STORE_SCOPES,
    Shop,
    create_key,
    get_key,
    list_keys,
    lookup_shop,
    revoke_key,
    shop_key,
)
from haina.storefront.shop import (
    add_cart_line,
    checkout_cart,
    coupons,
    create_cart,
    get_booking,
    get_cart,
    get_order,
    get_product,
    get_product_json,
    hold_booking,
    kept_product_json,
    kept_products_json,
    kept_search_json,
    list_bookings,
    list_orders,
    list_products,
    list_products_json,
    me,
    pay_order,
    points,
    price_cart,
    rate_booking,
    search,
    search_json,
    set_cart_line,
    slots,
)

__all__ = [
    "STORE_SCOPES", "CodeRejected", "CodeThrottled", "Shop", "Verified", "add_cart_line",
    "authenticate_buyer", "checkout_cart", "coupons", "create_cart", "create_key", "end_sessions_of_key", "erase_buyer", "export_buyer",
    "get_booking", "get_cart", "get_key", "get_order", "get_product", "get_product_json",
    "hold_booking", "kept_product_json", "kept_products_json", "kept_search_json",
    "list_bookings", "list_keys", "list_orders", "list_products", "rate_booking",
    "list_products_json", "lookup_shop", "me",
    "open_session", "pay_order", "points", "price_cart", "refresh_session", "request_code",
    "retire_sign_ins", "revoke_key", "sandbox_inbox", "sign_in_code_ids", "search",
    "search_json", "set_cart_line", "shop_key", "sign_out", "slots",
    "verify_code",
]
