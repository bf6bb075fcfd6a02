"""The console's member actions (``haina.members``): change a profile's name, email and phone,
and add or take away points with a reason (staff and owners). An erased member refuses both
(409 ``member-erased``, shown as a page). Routes register on the console's router
(``haina.console.web``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from haina.console.web import Visit, _act, _back, router
from haina.core.errors import Invalid
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
        entry = members.adjust_points(session, v.tenant, member_id, data)
        return _back(f"/console/members/{member_id}", adjusted=f"{entry.points:+d}")

    return await _act(request, "change_member", work)
