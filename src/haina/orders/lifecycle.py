"""The order lifecycle as data (see ``haina.core.lifecycle``).

pending_payment → paid → fulfilled → completed; an unpaid or paid (not yet shipped) order can
be cancelled (a paid one is refunded in full first, as events of its payment); a full refund
outside a cancellation makes a paid, fulfilled or completed order ``refunded``, a partial one
leaves its state as it was (``refund_status`` tells them apart).
"""

from __future__ import annotations

from haina.core.lifecycle import START, Lifecycle, pairs

ORDER_LIFECYCLE = Lifecycle("order", "order.", {
    "order.created": pairs((START, "pending_payment")),
    "order.paid": pairs(("pending_payment", "paid")),
    "order.shipped": pairs(("paid", "paid")),
    "order.fulfilled": pairs(("paid", "fulfilled")),
    "order.completed": pairs(("fulfilled", "completed")),
    "order.refunded": pairs(("paid", "paid"), ("fulfilled", "fulfilled"),
                            ("completed", "completed"), ("paid", "refunded"),
                            ("fulfilled", "refunded"), ("completed", "refunded")),
    "order.cancelled": pairs(("pending_payment", "cancelled"), ("paid", "cancelled")),
})
