"""The booking lifecycle as data (see ``haina.core.lifecycle``).

held → confirmed → checked_in → completed. A hold that is not confirmed in time expires; a
held or confirmed booking can be cancelled; both give the slot back. Rescheduling keeps the
state and moves the slot.
"""

from __future__ import annotations

from haina.core.lifecycle import START, Lifecycle, pairs

BOOKING_LIFECYCLE = Lifecycle("booking", "booking.", {
    "booking.held": pairs((START, "held")),
    "booking.confirmed": pairs((START, "confirmed"), ("held", "confirmed")),
    "booking.rescheduled": pairs(("held", "held"), ("confirmed", "confirmed")),
    "booking.checked_in": pairs(("confirmed", "checked_in")),
    "booking.completed": pairs(("checked_in", "completed")),
    "booking.cancelled": pairs(("held", "cancelled"), ("confirmed", "cancelled")),
    "booking.expired": pairs(("held", "expired")),
    # the buyer's rating of the job: the booking stays completed
    "booking.rated": pairs(("completed", "completed")),
})
