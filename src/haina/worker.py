"""The background worker: scheduled housekeeping (and, later, webhook delivery).

Each pass runs its jobs in their own transactions, so one failing job neither blocks nor
undoes the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from haina.core.config import get_settings
from haina.core.db import transaction, utcnow
from haina.core.idempotency import purge_expired_keys

log = logging.getLogger("haina.worker")


def _jobs() -> list[tuple[str, Callable[[Session], int]]]:
    from haina.analytics.service import run_queued_jobs
    from haina.inventory import service as inventory
    from haina.members import service as members
    from haina.checkout import service as checkout
    ttl = get_settings().idempotency_ttl_hours
    return [
        ("orders_expired", lambda s: checkout.cancel_expired_orders(s, utcnow())),
        ("holds_expired", lambda s: inventory.expire_holds(s, utcnow())),
        ("idempotency_keys_purged", lambda s: purge_expired_keys(s, ttl)),
        ("points_expired", lambda s: members.expire_points(s, utcnow())),
        ("tiers_reevaluated", lambda s: members.reevaluate_tiers(s, utcnow())),
        ("analytics_refreshes_run", run_queued_jobs),
    ]


def run_once(sessions: sessionmaker[Session]) -> dict[str, int]:
    done: dict[str, int] = {}
    for name, job in _jobs():
        try:
            with transaction(sessions) as session:
                done[name] = job(session)
        except Exception:  # one job's failure must not stop the others
            log.exception("worker job %s failed", name)
            done[name] = -1
    return done


def run_forever(sessions: sessionmaker[Session], interval: float = 5.0) -> None:
    while True:
        run_once(sessions)
        time.sleep(interval)
