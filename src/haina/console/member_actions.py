"""The console's member actions (``haina.members``): change a profile's name, email and phone,
and add or take away points with a reason (staff and owners). An erased member refuses both
(409 ``member-erased``, shown as a page). Routes register on the console's router
(``haina.console.web``).

The points form carries a one-time nonce, made when the member's page is shown, used as the
adjustment's idempotency key (``core.idempotency``): a form posted twice (a double click, a
resend after a lost answer) adjusts once, and the second post answers as the first did; the
same nonce with other values is refused (422). A refused adjustment keeps no key, so the
corrected form can be sent again."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, router
from haina.core.errors import Invalid, Problem
from haina.core.idempotency import run_idempotent
from haina.members import service as members
from haina.members.schemas import MemberUpdate, PointsAdjustmentIn


def _invalid(exc: ValidationError) -> Invalid:
    return Invalid("; ".join((".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
                             + e["msg"] for e in exc.errors()), slug="validation-error")


@router.post("/console/members/{member_id}/profile")
async def change_profile(request: Request, member_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        try:  # an emptied field is cleared, as PATCH /v1/members/{id} with null
            data = MemberUpdate.model_validate(
                {k: form.get(k, "").strip() or None for k in ("name", "email", "phone")})
        except ValidationError as exc:
            raise _invalid(exc) from None
        members.update_member(session, v.tenant, member_id, data)
        return _back(f"/console/members/{member_id}", changed=member_id)

    return await _act(request, "change_member", work)


@router.post("/console/members/{member_id}/points")
async def adjust_points(request: Request, member_id: str) -> Response:
    def work(session: Session, v: Visit, form: dict[str, str]) -> Response:
        points = form.get("points", "").strip()
        try:
            data = PointsAdjustmentIn.model_validate({
                "points": int(points) if points.lstrip("-").isdigit() else points,
                "reason": form.get("reason", "")})
        except ValidationError as exc:
            raise _invalid(exc) from None
        nonce = form.get("form_nonce", "")
        if not 16 <= len(nonce) <= 64:
            raise Invalid("this form has no one-time key: reload the page and try again",
                          slug="form-nonce-required")

        def adjust() -> tuple[int, dict[str, str]]:
            entry = members.adjust_points(session, v.tenant, member_id, data)
            return 303, {"adjusted": f"{entry.points:+d}"}

        done = run_idempotent(session, v.tenant, f"console-form:{nonce}",
                              f"console:points:{member_id}",
                              json.dumps(data.model_dump(), sort_keys=True), adjust)
        if done.problem:  # undo the key too: the corrected form may be sent again
            raise Problem(done.body.get("detail", ""), status=done.status,
                          slug=str(done.body.get("type", "")).rsplit("/", 1)[-1] or None)
        return _back(f"/console/members/{member_id}", **done.body)

    return await _act(request, "change_member", work)
