"""The console's storefront page (``haina.storefront``): the publishable keys of the buyer-facing
API per sales channel (list; create with the web origins allowed to call ``/store/v1``; revoke)
and, for a shop with sandbox keys, the **sandbox inbox** of sign-in codes (docs/storefront.md).

Keys are made and revoked by owners (a key sells on a channel in the merchant's name). A key is
public by design (it ships inside an app) and the API lists it, but the console shows it whole
only on the page answering its creation, and its ends in the list: enough to tell keys apart.
The inbox holds codes that sign a buyer in, so read-only accounts do not see them.
Routes register on the console's router (``haina.console.web``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console.web import PAGE_SIZE, Visit, _act, _back, _page, _t, _view, router
from haina.core.errors import Invalid
from haina.core.http import SessionDep
from haina.storefront import service as storefront
from haina.storefront.schemas import PublishableKeyIn

KEY_CHANNELS = ("app", "mini_program", "web")


def _origins(text: str) -> list[str]:
    """One origin a line (commas and spaces separate them too)."""
    return [o for o in text.replace(",", " ").replace("，", " ").split() if o]


@router.get("/console/storefront")
@_view
def storefront_page(request: Request, session: SessionDep, v: Visit,
                    cursor: str | None = None) -> Response:
    page = storefront.list_keys(session, v.tenant, limit=PAGE_SIZE, cursor=cursor)
    sandbox = any(k.sandbox and k.revoked_at is None for k in page.data)
    inbox = storefront.sandbox_inbox(session, v.tenant).data \
        if v.can("read_sandbox_inbox") else []
    return _page(request, v, "console/storefront.html", title=_t(v, "Storefront"),
                 keys=page.data, inbox=inbox, sandbox=sandbox, channels=KEY_CHANNELS,
                 more=f"{request.url.path}?cursor={page.next_cursor}" if page.next_cursor else None)


@router.post("/console/storefront/keys")
async def create_key(request: Request) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:
            data = PublishableKeyIn(name=form.get("name", "").strip(),
                                    channel=form.get("channel", ""),  # type: ignore[arg-type]
                                    allowed_origins=_origins(form.get("allowed_origins", "")),
                                    sandbox=form.get("sandbox") == "on")
        except ValidationError as exc:
            raise Invalid("; ".join((".".join(str(p) for p in e["loc"]) + ": " if e["loc"]
                                     else "") + e["msg"] for e in exc.errors()),
                          slug="validation-error") from None
        made = storefront.create_key(session, v.tenant, data)
        return _page(request, v, "console/storefront_key.html", title=_t(v, "Publishable key"),
                     key=made)

    return await _act(request, "manage_keys", work)


@router.post("/console/storefront/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        done = storefront.revoke_key(session, v.tenant, key_id)
        return _back("/console/storefront", revoked=done.name)

    return await _act(request, "manage_keys", work)
