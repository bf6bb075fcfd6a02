"""The console's webhook endpoints (``haina.webhooks``): add one, rotate its signing secret
(the old one signing beside the new for a grace period), disable or enable it. Owners only:
an endpoint sends the shop's events to an address outside. A new secret is shown once, on the
page that answers the form (never in an address), as the API shows it once.
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, _page, _t, router
from haina.core.errors import Invalid
from haina.webhooks import service as webhooks
from haina.webhooks.schemas import EndpointIn, EndpointUpdate


def _secret_page(request: Request, v: Visit, endpoint_id: str, url: str, secret: str,
                 old_until: dt.datetime | None, created: bool) -> Response:
    return _page(request, v, "console/endpoint_secret.html", title=_t(v, "Signing secret"),
                 endpoint_id=endpoint_id, url=url, secret=secret, old_until=old_until,
                 created=created)


@router.post("/console/webhooks/endpoints")
async def create_endpoint(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        types = [t.strip() for t in form.get("event_types", "").replace("，", ",").split(",")
                 if t.strip()]
        try:
            data = EndpointIn(url=form.get("url", "").strip(), event_types=types,
                              description=form.get("description", "").strip() or None)
        except ValidationError as exc:
            raise Invalid("; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                                    for e in exc.errors()), slug="validation-error") from None
        made = webhooks.create_endpoint(session, v.tenant, data)
        return _secret_page(request, v, made.id, made.url, made.secret, None, True)

    return await _act(request, "manage_endpoints", work)


@router.post("/console/webhooks/endpoints/{endpoint_id}/rotate")
async def rotate_secret(request: Request, endpoint_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        hours = form.get("grace_hours", "24").strip()
        if not (hours.isascii() and hours.isdigit() and int(hours) <= 168):
            raise Invalid("grace_hours: a whole number of hours, 0 to 168",
                          slug="validation-error")
        endpoint = webhooks.get_endpoint(session, v.tenant, endpoint_id)
        new = webhooks.rotate_secret(session, v.tenant, endpoint_id,
                                     dt.timedelta(hours=int(hours)))
        return _secret_page(request, v, endpoint.id, endpoint.url, new.secret,
                            new.previous_secret_expires_at, False)

    return await _act(request, "manage_endpoints", work)


@router.post("/console/webhooks/endpoints/{endpoint_id}/state")
async def disable_or_enable(request: Request, endpoint_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        disabled = form.get("disabled") == "true"
        done = webhooks.update_endpoint(session, v.tenant, endpoint_id,
                                        EndpointUpdate(disabled=disabled))
        return _back("/console/webhooks", **{"disabled" if disabled else "enabled": done.url})

    return await _act(request, "manage_endpoints", work)
