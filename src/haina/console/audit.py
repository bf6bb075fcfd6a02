"""The console's audit trail (``GET /v1/audit-events`` as a page): every change made by a
credential, newest first, with who made it (a staff account signed in here, a staff token,
an app, a buyer, a storefront key), what changed (the event's type and subject) and its
data; filtered by the kind of actor, one actor, the event type (exact, or a prefix such as
``order.*``) and the days it happened (in the shop's time zone), 25 to a page. Staff accounts
are named by their email and apps by their name. Read only. Routes register on the console's
router."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from haina.console.web import PAGE_SIZE, Visit, _day, _page, _t, _view, router
from haina.core.events import list_events
from haina.core.http import SessionDep
from haina.platform import service as platform

ACTORS = ("staff", "staff_token", "app", "buyer", "storefront_key")
DATA_SHOWN = 240  # characters of an event's data in the list
# the console's page of a subject, by its id's prefix (haina.core.ids.PREFIXES)
PAGES = {"ord": "/console/orders/", "mem": "/console/members/", "pi": "/console/payments/",
         "cart": "/console/carts/", "prod": "/console/products/", "cmp": "/console/campaigns/", "sp": "/console/service-points/",
         "decl": "/console/crossborder/declarations/", "brand": "/console/crossborder/brands/",
         "dreq": "/console/data-requests/"}


def actor_names(session: Session, v: Visit) -> dict[str, str]:
    """The shop's staff accounts' emails and its apps' names, by id (to name an actor)."""
    names = {a.id: a.email for a in platform.list_staff(session, v.tenant)}
    names |= {g.app_id: g.app_name
              for g in platform.list_grants(session, v.tenant, limit=200).data}
    return names


def _subject_page(subject_id: str | None) -> str | None:
    """Where the console shows an event's subject (None: it has no page of its own)."""
    prefix = (subject_id or "").partition("_")[0]
    return PAGES[prefix] + str(subject_id) if prefix in PAGES else None


def _data(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= DATA_SHOWN else text[:DATA_SHOWN - 1] + "…"


@router.get("/console/audit")
@_view
def audit_trail(request: Request, session: SessionDep, v: Visit, actor_type: str | None = None,
                actor: str | None = None, type: str | None = None, since: str | None = None,
                until: str | None = None, cursor: str | None = None) -> Response:
    actor_type = actor_type if actor_type in ACTORS else None
    actor = (actor or "").strip()[:40] or None
    type = (type or "").strip()[:80] or None
    since_at, until_at = _day(since, v.fmt.zone), _day(until, v.fmt.zone)
    page = list_events(session, v.tenant, type=type, created_gte=since_at,
                       created_lt=until_at + dt.timedelta(days=1) if until_at else None,
                       limit=PAGE_SIZE, cursor=cursor, audited=True, actor_type=actor_type,
                       actor_id=actor)
    filters = {"actor_type": actor_type, "actor": actor, "type": type,
               "since": since_at and since, "until": until_at and until}
    more = None
    if page.next_cursor:
        more = request.url.path + "?" + urlencode(
            {**{k: val for k, val in filters.items() if val}, "cursor": page.next_cursor})
    names = actor_names(session, v)
    return _page(request, v, "console/audit.html", title=_t(v, "Audit trail"),
                 events=page.data, filters=filters, more=more, actors=ACTORS, names=names,
                 shown=_data, subject_page=_subject_page)
