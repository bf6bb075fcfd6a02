"""Publishable keys: made, listed and revoked by the merchant; looked up on every
``/store/v1`` request (cached in the process for ``token_cache_seconds``, as staff tokens are).

A key is public by design (it ships inside an app's bundle or a web page), so it is kept as it
is, not hashed: hashing guards a secret, and this is none. What guards the merchant is what a
key reaches (public data and the signed-in buyer's own objects, nothing else) and revocation.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core import credentials
from haina.core.context import Tenant
from haina.core.db import utcnow
from haina.core.errors import Unauthorized, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.platform import service as platform
from haina.storefront.models import PublishableKey
from haina.storefront.schemas import PublishableKeyIn, PublishableKeyOut

KEY_PREFIX = "pk_"
#: what a storefront request may do through the modules' services: the routes decide what of
#: it a key reaches (public data, the buyer's own objects)
STORE_SCOPES = frozenset({"catalog:read", "orders:write", "payments:write", "geo:write",
                          "members:read", "marketing:read"})


@dataclass(frozen=True)
class Shop(Tenant):
    """A request's publishable key, as the merchant's context: the services take it as the
    ``Tenant`` (with the scopes of STORE_SCOPES); the channel its orders are recorded on;
    and, signed in, the buyer (``buyer_id``) and their access token."""

    channel: str = "web"
    allowed_origins: tuple[str, ...] = ()
    sandbox: bool = False
    access_token: str | None = field(default=None, compare=False, repr=False)

    @property
    def key_id(self) -> str:
        return self.publishable_key_id or ""

    @property
    def tenant(self) -> Tenant:
        return self

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin.lower() in self.allowed_origins


def _out(row: PublishableKey) -> PublishableKeyOut:
    return PublishableKeyOut(id=row.id, key=row.key, name=row.name, channel=row.channel,
                             allowed_origins=list(row.allowed_origins), sandbox=row.sandbox,
                             created_at=row.created_at, revoked_at=row.revoked_at)


def create_key(session: Session, tenant: Tenant, data: PublishableKeyIn) -> PublishableKeyOut:
    row = PublishableKey(id=new_id("publishable_key"), tenant_id=tenant.id,
                         key=KEY_PREFIX + secrets.token_urlsafe(24), name=data.name,
                         channel=data.channel, allowed_origins=data.allowed_origins,
                         sandbox=data.sandbox, created_at=utcnow())
    session.add(row)
    session.flush()
    record_event(session, tenant.id, "publishable_key.created", row.id,
                 {"name": row.name, "channel": row.channel, "sandbox": row.sandbox,
                  "allowed_origins": row.allowed_origins})
    return _out(row)


def list_keys(session: Session, tenant: Tenant, *, limit: int = 50,
              cursor: str | None = None) -> Page[PublishableKeyOut]:
    stmt = select(PublishableKey).where(PublishableKey.tenant_id == tenant.id)
    return paginate(session, stmt, PublishableKey.id, limit=limit, cursor=cursor, convert=_out,
                    kind="publishable_key")


def _row(session: Session, tenant: Tenant, key_id: str, lock: bool = False) -> PublishableKey:
    stmt = select(PublishableKey).where(PublishableKey.tenant_id == tenant.id,
                                        PublishableKey.id == key_id)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise not_found("publishable-key", key_id)
    return row


def get_key(session: Session, tenant: Tenant, key_id: str) -> PublishableKeyOut:
    return _out(_row(session, tenant, key_id))


def revoke_key(session: Session, tenant: Tenant, key_id: str) -> PublishableKeyOut:
    """Revoke a key: its requests are refused (401) from now in this process, within
    ``token_cache_seconds`` in others; its buyers' sessions end with it."""
    row = _row(session, tenant, key_id, lock=True)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        record_event(session, tenant.id, "publishable_key.revoked", row.id, {"name": row.name})
        from haina.storefront.buyers import end_sessions_of_key
        end_sessions_of_key(session, tenant, row.id)
    credentials.changed(session)
    return _out(row)


def shop_key(session: Session, tenant_slug: str) -> PublishableKeyOut | None:
    """The reference shop's key of a merchant: its newest live key for the web channel."""
    tenant = platform.get_tenant_by_slug(session, tenant_slug)
    row = session.scalars(select(PublishableKey).where(
        PublishableKey.tenant_id == tenant.id, PublishableKey.channel == "web",
        PublishableKey.revoked_at.is_(None)).order_by(PublishableKey.id.desc()).limit(1)).first()
    return _out(row) if row is not None else None


# ------------------------------------------------------------------ lookup (every request)

_cache: dict[str, tuple[float, Shop | None]] = {}
_lock = threading.Lock()
_CACHE_MAX = 10_000


_renewing: set[str] = set()  # keys whose lookup is being made again ahead of their end
#: a cached key older than this share of the cache time is looked up again in the
#: background by the first request to see it (see :func:`renew_due`)
RENEW_AT = 0.8


def forget_cached_keys() -> None:
    with _lock:
        _cache.clear()
        _renewing.clear()


credentials.register(forget_cached_keys)


def cached_shop(key: str, ttl: float) -> Shop | None | bool:
    """The cached answer for ``key`` (a Shop, or None for a key known bad), False if none."""
    with _lock:
        hit = _cache.get(key)
    if hit is None or time.monotonic() - hit[0] > ttl:
        return False
    return hit[1]


def renew_due(key: str, ttl: float) -> bool:
    """Whether this request should look ``key`` up again in the background (its cached
    answer is past ``RENEW_AT`` of the cache time and no renewal is under way): so a busy
    key is never missing from the cache, and its requests never all wait for a lookup at
    once when it ends. Claims the renewal; :func:`lookup_shop` ends it."""
    with _lock:
        hit = _cache.get(key)
        if hit is None or key in _renewing or time.monotonic() - hit[0] < ttl * RENEW_AT:
            return False
        _renewing.add(key)
        return True


def renewal_failed(key: str) -> None:
    with _lock:
        _renewing.discard(key)


def lookup_shop(session: Session, key: str, ttl: float) -> Shop | None:
    """The live key's shop, or None (unknown or revoked); remembered for ``ttl`` seconds."""
    row = session.scalar(select(PublishableKey).where(PublishableKey.key == key)) \
        if key.startswith(KEY_PREFIX) and len(key) <= 64 else None
    shop = None
    if row is not None and row.revoked_at is None:
        t = platform.get_tenant(session, row.tenant_id)
        # the merchant's settings ride with the key, as with a staff token: pricing a cart
        # reads them (shipping) on every cart call; a change of them forgets cached keys
        # (platform.update_tenant_settings calls credentials.changed)
        shop = Shop(id=t.id, slug=t.slug, currency=t.currency, scopes=STORE_SCOPES,
                    settings=t.settings, rate_plan="storefront", publishable_key_id=row.id,
                    channel=row.channel, allowed_origins=tuple(row.allowed_origins),
                    sandbox=row.sandbox)
    if ttl > 0:
        with _lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = (time.monotonic(), shop)
            _renewing.discard(key)
    return shop


def require_shop(shop: Shop | None) -> Shop:
    if shop is None:
        raise Unauthorized("unknown or revoked publishable key", slug="invalid-publishable-key")
    return shop


def origins_allowed_anywhere(session: Session, origin: str) -> bool:
    """Whether any live key lists ``origin`` (or "*"): the answer to a CORS preflight, which
    carries no key (browsers send no custom header in a preflight)."""
    origin = origin.lower()
    for origins in session.scalars(select(PublishableKey.allowed_origins).where(
            PublishableKey.revoked_at.is_(None))):
        if "*" in origins or origin in origins:
            return True
    return False
