"""The background worker: webhook delivery, scheduled housekeeping (expiries, privacy
follow-ups, retention), analytics refreshes. It
runs as a process of its own (``haina worker``, or the one ``haina serve`` starts), so
background work never runs inside an API process.

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


_last_run: dict[str, float] = {}


def _at_most_hourly(key: str, job: Callable[[Session], int]) -> Callable[[Session], int]:
    """A job that scans every merchant (retention) runs once an hour per process, not on
    every 5-second pass; in between it reports 0."""
    def run(session: Session) -> int:
        now = time.monotonic()
        if now - _last_run.get(key, -3600.0) < 3600:
            return 0
        _last_run[key] = now
        return job(session)

    return run


def _jobs() -> list[tuple[str, Callable[[Session], int]]]:
    from haina.analytics.service import run_queued_jobs
    from haina.campaigns import service as campaigns
    from haina.checkout import service as checkout
    from haina.crossborder import service as crossborder
    from haina.inventory import service as inventory
    from haina.members import service as members
    from haina.o2o import service as o2o
    from haina.platform import service as platform
    from haina.privacy import service as privacy
    from haina.storefront import service as storefront
    ttl = get_settings().idempotency_ttl_hours
    return [
        ("orders_expired", lambda s: checkout.cancel_expired_orders(s, utcnow())),
        ("holds_expired", lambda s: inventory.expire_holds(s, utcnow())),
        ("booking_holds_expired", lambda s: o2o.expire_holds(s, utcnow())),
        ("next_free_slots_refreshed", lambda s: o2o.refresh_next_free(s, utcnow())),
        ("idempotency_keys_purged", lambda s: purge_expired_keys(s, ttl)),
        ("points_expired", lambda s: members.expire_points(s, utcnow())),
        ("tiers_reevaluated", lambda s: members.reevaluate_tiers(s, utcnow())),
        ("analytics_refreshes_run", run_queued_jobs),
        ("campaigns_run", lambda s: campaigns.run_due_campaigns(s, utcnow())),
        ("campaign_jobs_run", campaigns.run_queued_jobs),
        ("staff_sessions_purged", lambda s: platform.purge_staff_sessions(s, utcnow())),
        ("buyer_sign_ins_retired", lambda s: storefront.retire_sign_ins(s, utcnow())),
        ("privacy_followed_up", lambda s: privacy.follow_up(s, utcnow())),
        ("merchant_redactions_asked", lambda s: privacy.ask_uninstalled_apps(s, utcnow())),
        ("retention_applied", _at_most_hourly("retention", lambda s: privacy.apply_retention(s, utcnow()))),
        ("brands_followed_up", _at_most_hourly(
            "brands", lambda s: crossborder.follow_up_brands(s, utcnow()))),
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


def run_forever(sessions: sessionmaker[Session], interval: float = 5.0,
                should_stop: Callable[[], bool] = lambda: False) -> None:
    """Pass after pass until ``should_stop()`` (checked between passes) or the process is
    told to stop; then fail the refresh this process was running, which frees its merchant's
    slot now rather than when the job is found stale."""
    # webhooks go out from a loop of their own, in a thread: not every 5 s but as events commit
    from haina.webhooks.delivery import DeliveryThread
    _jobs()  # imports every job's module first: the storefront declares its concealed fields
    delivery = DeliveryThread(sessions).start()
    try:
        while not should_stop():
            run_once(sessions)
            time.sleep(interval)
    finally:
        delivery.stop()
        from haina.analytics.service import stop_worker_job
        try:
            stop_worker_job()
        except Exception:  # stopping anyway: the job will be found stale later
            log.exception("could not mark the running analytics job failed")
