"""The payment intent lifecycle as data (see ``haina.core.lifecycle``).

An intent is authorised (or declined) when created, then captured, cancelled (voided) or
failed at capture; an intent for nothing (an order whose total is 0) succeeds at once.
Refunds are objects of their own (``refund.succeeded``) that leave the intent ``succeeded``.
"""

from __future__ import annotations

from haina.core.lifecycle import START, Lifecycle, pairs

PAYMENT_INTENT_LIFECYCLE = Lifecycle("payment intent", "payment_intent.", {
    "payment_intent.authorized": pairs((START, "requires_capture")),
    "payment_intent.failed": pairs((START, "failed"), ("requires_capture", "failed")),
    "payment_intent.succeeded": pairs(("requires_capture", "succeeded"), (START, "succeeded")),
    "payment_intent.canceled": pairs(("requires_capture", "canceled")),
})
