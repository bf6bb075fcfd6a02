"""Who calls ``/store/v1``: the publishable key (header ``X-Publishable-Key``) and, for the
buyer's own objects, the buyer's access token (``Authorization: Bearer bst_…``).

Both dependencies give a :class:`~haina.storefront.keys.Shop`, a ``Tenant`` that carries the
key (its rate-limit bucket) and, signed in, the buyer (``buyer_id``, a bucket of their own):
the router's ``admit`` takes both before the unit of work opens."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from fastapi import Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from haina.core.errors import Unauthorized
from haina.core.http import request_only
from haina.storefront import buyers, keys
from haina.storefront.keys import Shop

log = logging.getLogger("haina")
KEY_HEADER = "X-Publishable-Key"
# declared for the OpenAPI document (the dependencies read the headers themselves); they
# must never refuse (auto_error=False): a direct route does not run them (request_only)
key_scheme = APIKeyHeader(name=KEY_HEADER, auto_error=False, scheme_name="publishableKey",
                          description="a publishable key (pk_…) of the merchant")
buyer_scheme = HTTPBearer(auto_error=False, scheme_name="buyerToken",
                          description="a buyer's access token (bst_…)")


def _lookup(sessions: sessionmaker[Session], key: str, ttl: float) -> Shop | None:
    with sessions() as session:
        return keys.lookup_shop(session, key, ttl)


async def shop_of(request: Request) -> Shop:
    """The live publishable key of the request (401 otherwise)."""
    key = (request.headers.get(KEY_HEADER) or "").strip()
    if not key:
        raise Unauthorized(f"send the merchant's publishable key in {KEY_HEADER}",
                           slug="publishable-key-required")
    ttl = request.app.state.settings.token_cache_seconds
    cached = keys.cached_shop(key, ttl)
    shop: Shop | bool | None
    if cached is False:
        shop = await run_in_threadpool(_lookup, request.app.state.sessionmaker, key, ttl)
    else:
        shop = cached
        if keys.renew_due(key, ttl):  # looked up again now, in the background: no request
            _renew(request.app.state.sessionmaker, key, ttl)  # waits for it when it ends
    return keys.require_shop(shop if isinstance(shop, Shop) else None)


def _renew(sessions: sessionmaker[Session], key: str, ttl: float) -> None:
    def lookup() -> None:
        try:
            _lookup(sessions, key, ttl)
        except Exception:  # noqa: BLE001 — the cached one stands; a later request retries
            keys.renewal_failed(key)
            log.warning("renewing a cached publishable key failed", exc_info=True)
    asyncio.get_running_loop().run_in_executor(None, lookup)


def _buyer(sessions: sessionmaker[Session], shop: Shop, token: str, ttl: float) -> str:
    with sessions() as session:
        return buyers.authenticate_buyer(session, shop, token, ttl)


async def buyer_of(request: Request) -> Shop:
    """The key's shop with the signed-in buyer (401 without a live buyer token)."""
    shop = await shop_of(request)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(buyers.ACCESS_PREFIX):
        raise Unauthorized("sign in: send Authorization: Bearer <the buyer's access token>",
                           slug="buyer-token-required")
    ttl = request.app.state.settings.token_cache_seconds
    # a session verified a moment ago is known without a thread and a database session
    # (4 of a buyer's 7 calls in the benchmark's session; the hop was ~5 % of a worker's CPU)
    member_id = buyers.cached_buyer(shop, token, ttl) or await run_in_threadpool(
        _buyer, request.app.state.sessionmaker, shop, token, ttl)
    made = _BUYER_SHOPS.get(token)
    if made is not None and made[0] is shop and made[1].buyer_id == member_id:
        return made[1]  # the same key's shop and member as last time: the same object
    if len(_BUYER_SHOPS) >= BUYER_SHOPS_MAX:
        _BUYER_SHOPS.clear()
    buyer_shop = dataclasses.replace(shop, buyer_id=member_id, access_token=token)
    _BUYER_SHOPS[token] = (shop, buyer_shop)
    return buyer_shop


# The buyer's Shop last made for a token, with the key's Shop it was made from: a buyer's
# next call with the same (cached) key's Shop and member takes it as it is (a Shop is
# frozen) instead of copying the key's again. Cleared when it holds BUYER_SHOPS_MAX.
_BUYER_SHOPS: dict[str, tuple[Shop, Shop]] = {}
BUYER_SHOPS_MAX = 50_000


def store_key() -> Callable[..., object]:
    """The dependency of the public routes (marked ``storefront = "key"`` for the tests'
    route walk). Its schemes only document the headers (``auto_error=False``: they never
    refuse), so a direct route calls :func:`shop_of` alone (core.http.request_only)."""
    @request_only(shop_of)
    async def dependency(request: Request, _: object = Security(key_scheme)) -> Shop:
        return await shop_of(request)

    dependency.storefront = "key"  # type: ignore[attr-defined]
    return dependency


def signed_in() -> Callable[..., object]:
    """The dependency of the buyer's routes (``storefront = "buyer"``); a direct route calls
    :func:`buyer_of` alone, as for :func:`store_key`."""
    @request_only(buyer_of)
    async def dependency(request: Request, _: object = Security(key_scheme),
                         __: object = Security(buyer_scheme)) -> Shop:
        return await buyer_of(request)

    dependency.storefront = "buyer"  # type: ignore[attr-defined]
    return dependency
