"""Where a person's data lives: one section per module, each with the module's own export
and erase functions (its ``service`` face). A new module that stores personal data adds its
section here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from haina.analytics import service as analytics
from haina.campaigns import service as campaigns
from haina.carts import service as carts
from haina.core.context import Tenant
from haina.crossborder import service as crossborder
from haina.marketing import service as marketing
from haina.members import service as members
from haina.o2o import service as o2o
from haina.orders import service as orders
from haina.payments import service as payments
from haina.storefront import service as storefront
from haina.webhooks import service as webhooks

Rows = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Person:
    """Who a request is about: the member ids (survivor first, then those merged into it),
    their orders, the personal values found before anything was erased, and the ids of the
    events about them (found by subject)."""

    tenant: Tenant
    member_ids: list[str]
    order_ids: list[str]
    values: frozenset[str]
    event_ids: list[str]
    # other objects about the person whose events name them as subject: the sign-in codes
    # sent to their phone (storefront)
    other_subjects: tuple[str, ...] = ()

    @property
    def subjects(self) -> list[str]:
        """Every subject id of the events about the person."""
        return [*self.member_ids, *self.order_ids, *self.other_subjects]

    @property
    def keys(self) -> list[str]:
        """Member ids and identity values: how an imported log may name the person."""
        return [*self.member_ids, *sorted(self.values)]


@dataclass(frozen=True)
class Section:
    name: str
    export: Callable[[Session, Person], Rows]
    # returns rows changed; None: nothing personal to erase (kept for the books or limits)
    erase: Callable[[Session, Person, dt.datetime], int] | None


def _members_erase(s: Session, p: Person, now: dt.datetime) -> int:
    return sum(members.erase_members(s, p.tenant, p.member_ids, now).values())


#: in the platform's lock order (cart → order → payment intents → member: docs/architecture.md),
#: so an erasure never deadlocks with a checkout or a refund of the same person
SECTIONS: list[Section] = [
    Section("carts", lambda s, p: carts.export_carts(s, p.tenant, p.member_ids),
            lambda s, p, now: carts.erase_carts(s, p.tenant, p.member_ids)),
    Section("orders", lambda s, p: orders.export_orders(s, p.tenant, p.order_ids),
            lambda s, p, now: orders.erase_orders(s, p.tenant, p.order_ids)),
    Section("payments", lambda s, p: payments.export_payments(s, p.tenant, p.order_ids),
            lambda s, p, now: payments.erase_payments(s, p.tenant, p.order_ids)),
    Section("members", lambda s, p: members.export_member_data(s, p.tenant, p.member_ids),
            _members_erase),
    # after the member (cancelling an order locks the quota after the member's points)
    Section("crossborder", lambda s, p: crossborder.export_orders(s, p.tenant, p.order_ids),
            lambda s, p, now: crossborder.erase_orders(s, p.tenant, p.order_ids, p.values)),
    Section("marketing", lambda s, p: marketing.export_redemptions(s, p.tenant, p.member_ids),
            lambda s, p, now: marketing.erase_wallet(s, p.tenant, p.member_ids)),
    Section("campaigns",
            lambda s, p: campaigns.export_campaign_members(s, p.tenant, p.member_ids),
            lambda s, p, now: campaigns.erase_campaign_members(s, p.tenant, p.member_ids)),
    Section("o2o", lambda s, p: o2o.export_bookings(s, p.tenant, p.member_ids),
            lambda s, p, now: o2o.erase_bookings(s, p.tenant, p.member_ids)),
    # the member's ratings of points: their comments (the scores stay in the averages)
    Section("o2o_ratings", lambda s, p: o2o.export_ratings(s, p.tenant, p.member_ids),
            lambda s, p, now: o2o.erase_ratings(s, p.tenant, p.member_ids)),
    Section("storefront", lambda s, p: storefront.export_buyer(s, p.tenant, p.member_ids,
                                                                p.values),
            lambda s, p, now: storefront.erase_buyer(s, p.tenant, p.member_ids, p.values)),
    Section("analytics", lambda s, p: analytics.export_member_analytics(s, p.tenant, p.keys),
            lambda s, p, now: analytics.erase_member_analytics(s, p.tenant, p.keys)),
    Section("webhooks", lambda s, p: webhooks.export_deliveries(s, p.tenant, p.event_ids),
            lambda s, p, now: webhooks.redact_attempts(s, p.tenant, p.event_ids, p.values)),
]
