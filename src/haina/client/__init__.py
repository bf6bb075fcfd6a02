"""The Python SDK for Haina's API: what a service provider's app (or a merchant's own system)
uses to call the platform on a merchant's behalf.

::

    from haina.client import Haina, OAuthApp, pkce_pair, verify_webhook

    oauth = OAuthApp("https://haina.example", client_id, client_secret)
    verifier, challenge = pkce_pair()
    url = oauth.authorization_url(redirect_uri, ["orders:read", "members:read"], state, challenge)
    # … the merchant's owner approves; your redirect URI receives ?code=…&state=…
    tokens = oauth.exchange_code(code, redirect_uri, verifier)
    haina = Haina("https://haina.example", tokens=tokens, oauth=oauth,
                  on_tokens=save_somewhere)          # refreshes (and rotates) by itself
    for member in haina.members.iterate(q="li"):     # every page, lazily
        ...
    order = haina.orders.get("ord_…")                # typed: haina.orders.schemas.OrderOut

- Every call returns the API's own Pydantic models (the ``schemas`` of each module).
- Errors are :class:`HainaError` with the problem's ``type``, ``status`` and ``detail``.
- A POST that creates or charges gets an ``Idempotency-Key`` of its own, reused when the call
  is retried, so a retry never creates twice.
- A 429 waits ``Retry-After`` and retries; network errors and 5xx are retried with
  exponential backoff (GETs, and POSTs under their idempotency key).
- :class:`Storefront` is the buyer's side (``/store/v1``, a publishable key; docs/storefront.md).
- :func:`verify_webhook` checks a delivery's Standard Webhooks signature and its timestamp.
"""

from haina.client.core import Haina, HainaError
from haina.client.oauth import OAuthApp, TokenSet, pkce_pair
from haina.client.storefront import Storefront
from haina.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = ["Haina", "HainaError", "OAuthApp", "Storefront", "TokenSet",
           "WebhookVerificationError", "pkce_pair", "verify_webhook"]
