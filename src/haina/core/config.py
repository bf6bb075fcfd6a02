"""Settings read from HAINA_* environment variables (SQLite is the embedded default)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAINA_", extra="ignore")

    database_url: str = "sqlite:///./var/haina.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # threads per server process for the (sync) endpoints: requests beyond this wait their
    # turn; more threads mean more GIL contention, fewer mean less concurrency for slow calls
    threads: int = Field(8, ge=1, le=256)
    # Where uploaded media (product images, short videos) are kept.
    media_dir: Path = Path("./var/media")
    # An order left unpaid this long is cancelled by the worker and its stock released.
    order_hold_minutes: int = 30
    # Platform fee taken on each capture, in basis points of the captured amount.
    platform_fee_bps: int = 60
    # Idempotency keys are kept at least this long (Stripe keeps them 24 h).
    idempotency_ttl_hours: int = 24
    # Seconds a verified bearer token stays in the in-process cache (revocation lag).
    token_cache_seconds: float = 5.0
    # Seconds the storefront's public answers (listed products, a product, search) are kept
    # in the process per merchant and arguments (haina.storefront.cache; 0: not kept); and
    # a buyer's cart read again unchanged within them is answered as priced then (unless the
    # catalogue, promotions, tiers or settings changed: carts.get_cart).
    storefront_cache_seconds: float = Field(1.0, ge=0, le=60)
    # Request bodies larger than this are refused with a 413 (media uploads have their own
    # limit, the catalog's largest media size).
    max_body_bytes: int = Field(1 << 20, ge=1024)
    # Rate limits (haina.core.ratelimit): where buckets live (auto, database, memory, off),
    # each plan's [requests per second, burst]; an app has a plan (haina apps plan), a staff
    # token has the "staff" plan.
    rate_limit_backend: str = "auto"
    rate_limit_plans: dict[str, tuple[float, int]] = Field(default_factory=lambda: {
        "standard": (20.0, 40), "plus": (100.0, 200), "premium": (500.0, 1000),
        "staff": (1000.0, 2000),
        # the storefront: one bucket per publishable key (all its buyers), one per buyer
        "storefront": (500.0, 1000), "buyer": (20.0, 60)})
    # The busiest routes (placing an order) answered by compiled handlers instead of
    # FastAPI's generic parameter solving (haina.core.http.direct); off: every request goes
    # through FastAPI (same answers, more CPU; for comparison and debugging).
    direct_routes: bool = True
    # On PostgreSQL, the short buyer routes marked loop_unit (carts, checkout) run their
    # units of work on the event loop, their statements awaited, instead of in the thread
    # pool (haina.core.loop); off: every sync endpoint in the pool (for comparison).
    loop_units: bool = True
    # FastAPI's OpenTelemetry spans, metrics and logs for each request, when an OpenTelemetry
    # provider is configured; off: no telemetry, and no per-request look for a provider
    telemetry: bool = False
    # Echo every SQL statement (debugging).
    echo_sql: bool = False
    # Webhook delivery (haina.webhooks.delivery): messages a worker process holds at once
    # (sending, or waiting for a connection), and how long a worker holds a message it is
    # sending before another may send it again (a worker that died mid-way); longer than the
    # 15 s a receiver is given.
    webhook_concurrency: int = Field(512, ge=1, le=100_000)
    # connections (and requests in flight) per receiving origin (scheme, host, port)
    webhook_connections_per_origin: int = Field(8, ge=1, le=256)
    webhook_lease_seconds: float = Field(60.0, ge=1)
    # Webhooks go to public addresses only (haina.webhooks.egress): an endpoint on a private,
    # loopback or link-local address is refused when saved and when connected to. On for local
    # development (a receiver on this machine) and the test suite; never in production.
    webhook_allow_private_addresses: bool = False
    # Cross-border import (haina.crossborder): the keys that encrypt buyers' ID numbers at rest,
    # "id:base64key[,id:base64key…]" (32-byte keys; the first encrypts, every one decrypts, so
    # a new key goes first and old ones stay until re-encrypted), and the key of the blind
    # index that finds an identity's orders (never rotated: the index would change). Unset: a
    # development key (never for production).
    crossborder_keys: str | None = None
    crossborder_index_key: str | None = None
    # the quotas of cross-border retail import, in CNY: per order, per buyer per calendar year
    crossborder_order_limit: int = Field(5_000, ge=1)
    crossborder_year_limit: int = Field(26_000, ge=1)
    # days before a qualified brand's authorisation (or a document) runs out that the worker
    # sends brand.expiring to the merchant and its agency (docs/crossborder.md)
    crossborder_expiry_reminder_days: int = Field(30, ge=1, le=365)
    # campaigns (docs/marketing.md): members enrolled per transaction of a launch or a
    # re-evaluation (an audience that fits one batch is enrolled by the request that launches it)
    campaign_batch_size: int = Field(1_000, ge=1, le=100_000)


@lru_cache
def get_settings() -> Settings:
    return Settings()
