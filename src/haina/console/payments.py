"""The console's payments (``haina.payments``): what the shop is owed and the latest payouts
(the ledger's balances, derived from its entries), the payment intents with filters (state,
the days made, an order), and a payment's page with its attempts (the intent's events: each
authorisation, failure, capture and cancellation, and who made it), its refunds and the
ledger entries they posted, debit and credit per account, as ``GET /v1/ledger/entries``
shows them. Read only: payments are taken, refunded and paid out through the API. Routes
register on the console's router."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from haina.console.audit import actor_names
from haina.console.web import PAGE_SIZE, Visit, _day, _page, _t, _view, router
from haina.core.events import list_events
from haina.core.http import SessionDep
from haina.payments import service as payments

STATUSES = ("requires_capture", "succeeded", "failed", "canceled")
PAYOUTS = 10  # the latest payouts shown above the list


@router.get("/console/payments")
@_view
def payment_list(request: Request, session: SessionDep, v: Visit, status: str | None = None,
                 since: str | None = None, until: str | None = None, order: str | None = None,
                 cursor: str | None = None) -> Response:
    status = status if status in STATUSES else None
    since_at, until_at = _day(since, v.fmt.zone), _day(until, v.fmt.zone)
    order = (order or "").strip()[:40] or None
    page = payments.list_intents(
        session, v.tenant, order, PAGE_SIZE, cursor, status=status, created_gte=since_at,
        created_lt=until_at + dt.timedelta(days=1) if until_at else None)
    filters = {"status": status, "since": since_at and since, "until": until_at and until,
               "order": order}
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {**{k: val for k, val in filters.items() if val}, "cursor": page.next_cursor})
    balances = payments.balances(session, v.tenant)
    payouts = payments.list_journal_entries(session, v.tenant, kind="payout",
                                            limit=PAYOUTS).data
    return _page(request, v, "console/payments.html", title=_t(v, "Payments"),
                 intents=page.data, filters=filters, more=more, statuses=STATUSES,
                 balances=balances, payouts=payouts)


@router.get("/console/payments/{intent_id}")
@_view
def payment_page(request: Request, session: SessionDep, v: Visit, intent_id: str) -> Response:
    intent = payments.get_intent(session, v.tenant, intent_id)
    refunds = payments.list_refunds(session, v.tenant, limit=50,
                                    payment_intent_id=intent.id).data
    entries = [e for ref in [intent.id] + [r.id for r in refunds]
               for e in payments.list_journal_entries(session, v.tenant, ref_id=ref).data]
    entries.sort(key=lambda e: e.created_at)
    attempts = sorted(list_events(session, v.tenant, subject_id=intent.id, limit=50).data,
                      key=lambda e: e.id)
    return _page(request, v, "console/payment.html", title=_t(v, "Payment") + " " + intent.id,
                 intent=intent, refunds=refunds, entries=entries, attempts=attempts,
                 names=actor_names(session, v))
