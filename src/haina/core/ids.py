"""Prefixed, time-ordered ids (``ord_01J…``), in the manner of Stripe.

The body is a ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32, so ids
sort by creation time and cursor pagination can order by id alone.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = {
    "tenant": "ten", "token": "tok", "event": "evt", "member": "mem", "identity": "mid",
    "tier": "tier", "points": "pts", "category": "cat", "product": "prod", "variant": "var",
    "media": "med", "location": "loc", "reservation": "res", "adjustment": "adj",
    "cart": "cart", "order": "ord", "order_line": "oli", "shipment": "shp",
    "payment_intent": "pi", "refund": "re", "journal_entry": "je", "journal_line": "jl",
    "payout": "po", "attribute": "attr", "analytics_job": "job", "analytics_run": "run",
    "segment": "seg", "staff": "stf", "app": "app", "certification": "cert",
    "app_grant": "grant", "oauth_code": "code", "oauth_token": "otok", "coupon": "cpn",
    "coupon_redemption": "cred", "promotion": "promo", "promotion_target": "ptgt",
    "promotion_redemption": "pred", "service_point": "sp", "point_service": "svc",
    "fitment_rule": "fit", "booking_slot": "bslot", "booking": "bkg",
    "partnership": "ptn", "service_resource": "rsc", "resource_slot": "rslot", "rating": "rtg",
    "crossborder_quota": "xbq", "declaration": "decl",
    "brand": "brand", "brand_decision": "bdec",
    "consent_record": "cns", "data_request": "dreq", "data_request_ack": "dack",
    "publishable_key": "pkey", "sign_in_code": "sic", "buyer_session": "bses",
    "webhook_endpoint": "we", "webhook_delivery": "msg", "webhook_attempt": "atmpt",
    "wallet_coupon": "wcpn", "campaign": "cmp", "campaign_member": "cmem", "campaign_job": "cjob", "first_order_claim": "foc",
}


# every 10-bit value as two base32 characters: a ULID is 13 lookups, not 26 shifts
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_lock = threading.Lock()
_last = [0, 0]  # the last (ms, random part) handed out for the current time


def ulid(ms: int | None = None) -> str:
    """A ULID; ids made for "now" by this process increase strictly (monotonic ULIDs), so
    events written in the same millisecond keep their order."""
    if ms is None:
        with _lock:
            now = time.time_ns() // 1_000_000
            if now <= _last[0]:
                now, rand = _last[0], (_last[1] + 1) & ((1 << 80) - 1)
            else:
                rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
            _last[0], _last[1] = now, rand
        value = (now << 80) | rand
    else:
        value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -10, -10)])


def new_id(kind: str, ms: int | None = None) -> str:
    """A new id for an object of ``kind`` (a key of PREFIXES), e.g. ``new_id("order")``."""
    return f"{PREFIXES[kind]}_{ulid(ms)}"
