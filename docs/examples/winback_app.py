"""A win-back app for Haina merchants: the example of docs/apps.md.

A merchant installs it through OAuth; it subscribes to ``order.paid`` webhooks at that
merchant, reads the buyer of each paid order (``members:read``) and keeps, per merchant, when
each member last bought. ``GET /winback?tenant=…&days=60`` lists the members who have not
bought for that long: the ones to win back (with a coupon, a message …).

Run it beside Haina::

    HAINA_URL=http://127.0.0.1:8000 CLIENT_ID=app_… CLIENT_SECRET=hnsec_… \\
    APP_URL=http://127.0.0.1:8765 uvicorn --factory winback_app:create_app --port 8765

State is kept in memory to stay short; a real app keeps tokens and secrets in a database.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from haina.client import Haina, OAuthApp, TokenSet, pkce_pair, verify_webhook
from haina.client.webhooks import WebhookVerificationError

SCOPES = ["orders:read", "members:read", "webhooks:write"]


@dataclass
class Merchant:
    tenant_id: str
    tokens: TokenSet
    webhook_secret: str = ""
    last_bought: dict[str, dt.datetime] = field(default_factory=dict)  # member id → when
    names: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # webhook ids handled (deliveries repeat)


def create_app(haina_url: str | None = None, client_id: str | None = None,
               client_secret: str | None = None, app_url: str | None = None) -> FastAPI:
    haina_url = haina_url or os.environ["HAINA_URL"]
    app_url = (app_url or os.environ["APP_URL"]).rstrip("/")
    oauth = OAuthApp(haina_url, client_id or os.environ["CLIENT_ID"],
                     client_secret or os.environ["CLIENT_SECRET"])
    redirect_uri = f"{app_url}/callback"
    pending: dict[str, str] = {}  # state → PKCE verifier
    merchants: dict[str, Merchant] = {}
    web = FastAPI(title="Win-back")
    web.state.merchants = merchants

    def client_for(m: Merchant) -> Haina:
        def keep(tokens: TokenSet) -> None:  # refresh tokens rotate: keep the new one
            m.tokens = tokens
        return Haina(haina_url, tokens=m.tokens, oauth=oauth, on_tokens=keep)

    @web.get("/install")
    def install() -> RedirectResponse:
        """The merchant clicks "install" in the marketplace listing: off to Haina's consent."""
        state = secrets.token_urlsafe(16)
        verifier, challenge = pkce_pair()
        pending[state] = verifier
        return RedirectResponse(oauth.authorization_url(redirect_uri, SCOPES, state, challenge))

    @web.get("/callback")
    def callback(code: str, state: str) -> Response:
        verifier = pending.pop(state, None)
        if verifier is None:
            return JSONResponse({"error": "unknown state"}, status_code=400)
        tokens = oauth.exchange_code(code, redirect_uri, verifier)
        tenant_id = oauth.introspect(tokens.access_token)["haina_tenant_id"]
        merchant = merchants.setdefault(tenant_id, Merchant(tenant_id, tokens))
        merchant.tokens = tokens
        with client_for(merchant) as haina:
            endpoint = haina.webhooks.create_endpoint(f"{app_url}/webhooks", ["order.paid"],
                                                      description="win-back")
        merchant.webhook_secret = endpoint.secret
        return JSONResponse({"installed": tenant_id})

    @web.post("/webhooks")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        for merchant in merchants.values():  # whose endpoint is it? the one whose secret fits
            try:
                event = verify_webhook(request.headers, body, merchant.webhook_secret)
            except WebhookVerificationError:
                continue
            if request.headers["webhook-id"] in merchant.seen:
                return Response(status_code=204)  # a redelivery: already handled
            if event["type"] == "order.paid":
                await _record_purchase(merchant, event)
            merchant.seen.add(request.headers["webhook-id"])
            return Response(status_code=204)
        return Response(status_code=400)

    async def _record_purchase(merchant: Merchant, event: dict) -> None:
        from starlette.concurrency import run_in_threadpool
        member_id = event["data"].get("member_id")
        if not member_id:
            return

        def read() -> str:
            with client_for(merchant) as haina:
                return haina.members.get(member_id).name or member_id

        merchant.names[member_id] = await run_in_threadpool(read)
        merchant.last_bought[member_id] = dt.datetime.fromisoformat(event["timestamp"])

    @web.get("/winback")
    def winback(tenant: str, days: int = 60) -> list[dict]:
        merchant = merchants.get(tenant)
        if merchant is None:
            return []
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        return [{"member_id": m, "name": merchant.names.get(m, ""), "last_bought": t.isoformat()}
                for m, t in sorted(merchant.last_bought.items(), key=lambda kv: kv[1])
                if t < cutoff]

    return web
