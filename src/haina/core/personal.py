"""Personal values in stored JSON and text: finding and irreversibly replacing them.

A person's erasure (``haina.privacy``) collects the values that identify them — names,
phones, emails, identity values, address fields — and each module replaces them wherever it
copied them: not only in its own columns but in JSON payloads (the outbox's events, the
idempotency keys' stored responses, webhook attempt excerpts) that hold copies of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

#: what an erased value becomes (a fixed marker: nothing of the original can be recovered)
ERASED = "[erased]"
#: values shorter than this are not searched for inside other strings (a one-letter name would
#: match half the database); they are still replaced where they are a whole value
MIN_NEEDLE = 3


def needles(values: Iterable[Any]) -> frozenset[str]:
    """The non-empty string forms of ``values``, for :func:`scrub`."""
    return frozenset(str(v).strip() for v in values if v is not None and str(v).strip())


def _hit(text: str, found: frozenset[str]) -> bool:
    if text in found:
        return True
    lowered = text.lower()
    return any(len(n) >= MIN_NEEDLE and n.lower() in lowered for n in found)


def scrub(value: Any, found: frozenset[str]) -> tuple[Any, bool]:
    """``value`` with every string that is or contains one of ``found`` replaced by
    :data:`ERASED` (dict keys too), recursively; and whether anything was replaced."""
    if not found:
        return value, False
    if isinstance(value, str):
        return (ERASED, True) if _hit(value, found) else (value, False)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        changed = False
        for k, v in value.items():
            new_v, c1 = scrub(v, found)
            new_k, c2 = scrub(k, found) if isinstance(k, str) else (k, False)
            if c2:
                new_k = f"{ERASED}{len(out)}"  # two erased keys must not collide
            out[new_k] = new_v
            changed = changed or c1 or c2
        return out, changed
    if isinstance(value, list | tuple):
        items = [scrub(v, found) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def export_rows(session: Session, table: Table, tenant_id: str, column: str,
                ids: Sequence[str]) -> list[dict[str, Any]]:
    """The merchant's rows of ``table`` whose ``column`` is among ``ids``, as JSON-able dicts
    (without ``tenant_id``), in id order: one section of a person's data export."""
    out: list[dict[str, Any]] = []
    ids = list(dict.fromkeys(ids))
    order = table.c.id if "id" in table.c else list(table.primary_key.columns)[-1]
    for start in range(0, len(ids), 500):
        stmt = select(table).where(table.c.tenant_id == tenant_id,
                                   table.c[column].in_(ids[start:start + 500])).order_by(order)
        out += [{k: _plain(v) for k, v in row._mapping.items() if k != "tenant_id"}
                for row in session.execute(stmt)]
    return out
