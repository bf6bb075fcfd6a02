"""Verifying Haina's webhook deliveries (Standard Webhooks signatures)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
    """The delivery's payload ``{"type", "timestamp", "data"}`` once its signature (by the
    endpoint's ``whsec_…`` secret) and timestamp (within 5 minutes) check out; otherwise
    :class:`WebhookVerificationError`. Pass the raw body, byte for byte as received.

    The ``webhook-id`` header is the event's id: store it to drop a redelivered duplicate
    (delivery is at least once)."""
    wanted = {k.lower(): v for k, v in headers.items()
              if k.lower() in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    raw = body.decode() if isinstance(body, bytes) else body
    Webhook(secret).verify(raw, wanted)
    payload: dict[str, Any] = json.loads(raw)
    return payload
