"""The event types endpoints subscribe to are the ones the code records."""

from __future__ import annotations

import re
from pathlib import Path

from haina.webhooks.schemas import EVENT_TYPES

SRC = Path(__file__).resolve().parents[2] / "src" / "haina"
# record_event(session, tenant, "type.name", …) and payments' _event(…, "type.name", …)
CALL = re.compile(r"(?:record_event|_event)\((?:[^()\"]|\([^()]*\))*?\"([a-z_]+\.[a-z_]+(?:\.[a-z_]+)?)\"", re.S)


def recorded_types() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found.update(CALL.findall(path.read_text()))
    from support import lifecycles
    for lifecycle in lifecycles():
        found.update(lifecycle.transitions)
    return found


def test_every_recorded_event_type_can_be_subscribed_to():
    recorded = recorded_types()
    assert {"order.created", "order.paid", "payment_intent.succeeded", "member.created",
            "endpoint.attempts_exhausted"} <= recorded  # the scan finds them
    missing = recorded - set(EVENT_TYPES)
    assert not missing, f"add these to haina.webhooks.schemas.EVENT_TYPES: {sorted(missing)}"


def test_event_types_are_unique_and_well_formed():
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+(\.[a-z_]+)?", t) for t in EVENT_TYPES)
