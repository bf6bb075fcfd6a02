"""Foreign brands' qualification files: submitted by the merchant or its operating agency's
app, reviewed by platform staff (``haina crossborder brands review``) or by a certified
agency or customs-broker app the staff delegated reviews to; every submission and decision is
recorded with who took it, when and why (``crossborder_brand_decisions``). A cross-border
product is enabled only under an approved brand; revoking a brand unlists its products at
once, so placing an order needs no further check. States: ``BRAND_LIFECYCLE``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from haina.catalog import service as catalog
from haina.core.config import get_settings
from haina.core.context import Tenant
from haina.core.db import add_unique, tenant_row, utcnow
from haina.core.errors import Conflict, Forbidden, Invalid, not_found
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.pagination import Page, paginate
from haina.crossborder.lifecycle import BRAND_LIFECYCLE
from haina.crossborder.models import Brand, BrandDecision, CrossborderProduct, Reviewer
from haina.crossborder.schemas import (
    BrandDecisionIn,
    BrandDecisionOut,
    BrandIn,
    BrandOut,
    ReviewerOut,
)
from haina.platform import service as platform

#: a decision (the API's and the CLI's verb) and the state and event it leads to
DECISIONS = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}
#: the certifications (``haina apps certify --category``) a reviewer app must hold
REVIEWER_CATEGORIES = ("customs-broker", "operations-agency")
#: who expires a file whose authorisation or a document ran out (the worker)
EXPIRY_ACTOR = "platform:expiry"


class BrandNotQualified(Conflict):
    slug, title = "brand-not-qualified", "The brand is not qualified"


class ReviewerRequired(Forbidden):
    slug, title = "reviewer-required", "Only a reviewer decides on a qualification file"


def _today() -> dt.date:
    return (utcnow() + dt.timedelta(hours=8)).date()  # China's date


def _actor(tenant: Tenant) -> str:
    who = tenant.actor()
    if who is None:
        return f"merchant:{tenant.slug}"
    kind, ident = who
    return f"app:{ident}" if kind == "app" else f"merchant:{ident}"


def _decisions(session: Session, tenant_id: str, brand_ids: list[str]) -> dict[str, list[BrandDecisionOut]]:
    found: dict[str, list[BrandDecisionOut]] = {b: [] for b in brand_ids}
    if brand_ids:
        for d in session.scalars(select(BrandDecision).where(
                BrandDecision.tenant_id == tenant_id, BrandDecision.brand_id.in_(brand_ids))
                .order_by(BrandDecision.id)):
            found[d.brand_id].append(BrandDecisionOut(action=d.action,
                                                      actor=d.actor, reason=d.reason, at=d.at))
    return found


def _out(row: Brand, decisions: list[BrandDecisionOut]) -> BrandOut:
    return BrandOut(id=row.id, name=row.name, origin_country=row.origin_country,
                    owner=row.owner, agency_app_id=row.agency_app_id,
                    agency_name=row.agency_name, authorisation=row.authorisation,
                    documents=row.documents, status=row.status,
                    submitted_by=row.submitted_by, decided_by=row.decided_by,
                    decided_at=row.decided_at, reason=row.reason, decisions=decisions,
                    valid_until=row.valid_until, created_at=row.created_at,
                    updated_at=row.updated_at)


def _brand_out(session: Session, row: Brand) -> BrandOut:
    return _out(row, _decisions(session, row.tenant_id, [row.id])[row.id])


def _record(session: Session, row: Brand, action: str, actor: str, reason: str | None,
            now: dt.datetime, **extra: object) -> None:
    session.add(BrandDecision(id=new_id("brand_decision"), tenant_id=row.tenant_id,
                              brand_id=row.id, action=action, actor=actor, reason=reason,
                              at=now))
    session.flush()
    record_event(session, row.tenant_id, f"brand.{action}", row.id,
                 {"brand_id": row.id, "name": row.name, "status": row.status, "actor": actor,
                  "reason": reason, "agency_app_id": row.agency_app_id, **extra})


def _fill(session: Session, tenant: Tenant, row: Brand, data: BrandIn) -> None:
    """The file's contents, checked: the agency (an app submitting is the agency; a named
    agency app must be installed at the merchant with a crossborder scope) and the
    authorisation still valid."""
    agency = data.agency_app_id
    if tenant.app_id:
        if agency and agency != tenant.app_id:
            raise Invalid("an agency's app submits the files it acts in, naming itself",
                          slug="agency-mismatch", agency_app_id=agency)
        agency = tenant.app_id
    elif agency and agency not in platform.apps_holding(session, tenant.id, "crossborder"):
        raise Invalid(f"app {agency} is not installed here with a crossborder scope",
                      slug="agency-not-installed", agency_app_id=agency)
    if data.authorisation.valid_until < _today():
        raise Invalid("the brand's authorisation expired on "
                      f"{data.authorisation.valid_until.isoformat()}",
                      slug="authorisation-expired")
    for document in data.documents:
        if document.valid_until is not None and document.valid_until < _today():
            raise Invalid(f"the document {document.title!r} expired on "
                          f"{document.valid_until.isoformat()}", slug="document-expired")
    row.valid_until = min([data.authorisation.valid_until,
                           *(d.valid_until for d in data.documents if d.valid_until)])
    row.expiry_reminded_at = None
    row.name, row.origin_country, row.owner = data.name.strip(), data.origin_country, data.owner
    row.agency_app_id, row.agency_name = agency, data.agency_name
    row.authorisation = data.authorisation.model_dump(mode="json")
    row.documents = [d.model_dump(mode="json", exclude_none=True) for d in data.documents]


def submit_brand(session: Session, tenant: Tenant, data: BrandIn) -> BrandOut:
    """A new qualification file, ``submitted`` for review (``brand.submitted``). 409
    ``brand-exists`` for a name the merchant has filed already; 422 ``agency-mismatch``,
    ``agency-not-installed``, ``authorisation-expired``."""
    now = utcnow()
    row = Brand(id=new_id("brand"), tenant_id=tenant.id, status="submitted",
                submitted_by=_actor(tenant), created_at=now, updated_at=now)
    _fill(session, tenant, row, data)
    add_unique(session, row, lambda: Conflict(f"a brand named {data.name!r} is filed already",
                                              slug="brand-exists"))
    BRAND_LIFECYCLE.check("brand.submitted", None, "submitted")
    _record(session, row, "submitted", row.submitted_by, None, now)
    return _brand_out(session, row)


def resubmit_brand(session: Session, tenant: Tenant, brand_id: str, data: BrandIn) -> BrandOut:
    """A rejected or revoked file corrected and submitted again (409 ``invalid-state``
    otherwise; the brand's name is kept)."""
    row = tenant_row(session, tenant.id, Brand, brand_id, "brand", lock=True)
    BRAND_LIFECYCLE.check("brand.submitted", row.status, "submitted")
    if tenant.app_id and row.agency_app_id not in (None, tenant.app_id):
        raise not_found("brand", brand_id)  # another agency's file is not this app's
    name = row.name
    _fill(session, tenant, row, data)
    now = utcnow()
    row.name, row.status, row.submitted_by, row.updated_at = name, "submitted", _actor(tenant), now
    row.decided_by = row.decided_at = row.reason = None
    _record(session, row, "submitted", row.submitted_by, None, now)
    return _brand_out(session, row)


def get_brand(session: Session, tenant: Tenant, brand_id: str) -> BrandOut:
    return _brand_out(session, tenant_row(session, tenant.id, Brand, brand_id, "brand"))


def list_brands(session: Session, tenant: Tenant, *, status: str | None = None,
                limit: int = 50, cursor: str | None = None) -> Page[BrandOut]:
    """The merchant's qualification files, newest first, with their histories."""
    stmt = select(Brand).where(Brand.tenant_id == tenant.id)
    if status:
        stmt = stmt.where(Brand.status == status)
    page = paginate(session, stmt, Brand.id, limit=limit, cursor=cursor, convert=lambda r: r,
                    kind="brand")
    found = _decisions(session, tenant.id, [r.id for r in page.data])
    return Page[BrandOut](data=[_out(r, found[r.id]) for r in page.data],
                          has_more=page.has_more, next_cursor=page.next_cursor)


def _decide(session: Session, tenant: Tenant, row: Brand, decision: str, actor: str,
            reason: str) -> BrandOut:
    after = DECISIONS[decision]
    BRAND_LIFECYCLE.check(f"brand.{after}", row.status, after)
    if after == "approved" and row.valid_until is not None and row.valid_until < _today():
        raise Invalid(f"the file ran out after {row.valid_until.isoformat()}: it is submitted "
                      "again with a valid authorisation", slug="authorisation-expired")
    now = utcnow()
    row.status, row.decided_by, row.decided_at = after, actor, now
    row.reason, row.updated_at = reason.strip(), now
    unlisted = _unlist_products(session, tenant, row, now) if after == "revoked" else 0
    _record(session, row, after, actor, row.reason, now,
            **({"products_unlisted": unlisted} if after == "revoked" else {}))
    return _brand_out(session, row)


def _unlist_products(session: Session, tenant: Tenant, row: Brand, now: dt.datetime) -> int:
    """The brand's listed products are no longer sold, at once: disabled here and
    ``suspended`` in the catalogue (whose copy the order path reads: refused with or
    without a buyer until the merchant lists them again under a qualified brand)."""
    ids = list(session.scalars(select(CrossborderProduct.id).where(
        CrossborderProduct.tenant_id == row.tenant_id, CrossborderProduct.brand_id == row.id,
        CrossborderProduct.enabled.is_(True)).order_by(CrossborderProduct.id)
        .with_for_update()))
    if not ids:
        return 0
    session.execute(update(CrossborderProduct).where(
        CrossborderProduct.tenant_id == row.tenant_id, CrossborderProduct.id.in_(ids))
        .values(enabled=False, updated_at=now).execution_options(synchronize_session=False))
    catalog.set_trade_mode(session, tenant, ids, "suspended")
    return len(ids)


def decide_brand(session: Session, tenant: Tenant, brand_id: str,
                 data: BrandDecisionIn) -> BrandOut:
    """A delegated reviewer app's decision on a merchant's file (the app installed there).
    403 ``reviewer-required`` for a merchant's own credential or an app the platform did not
    delegate reviews to (or whose certification lapsed), ``own-file`` for the file's agency;
    409 ``invalid-state`` for a decision the file's state does not allow."""
    row = tenant_row(session, tenant.id, Brand, brand_id, "brand", lock=True)  # 404 first
    if not tenant.app_id:
        raise ReviewerRequired("a merchant does not review its own files: platform staff or "
                               "an agency they delegated to do")
    reviewer = session.get(Reviewer, tenant.app_id)
    if reviewer is None or reviewer.revoked_at is not None \
            or not _certified_reviewer(session, tenant.app_id):
        raise ReviewerRequired("this app is not a delegated, certified reviewer of "
                               "qualification files")
    if row.agency_app_id == tenant.app_id or row.submitted_by == f"app:{tenant.app_id}":
        raise Forbidden("an agency does not review a file it acts in", slug="own-file")
    return _decide(session, tenant, row, data.decision, f"app:{tenant.app_id}", data.reason)


def review_brand(session: Session, tenant: Tenant, brand_id: str, decision: str, reason: str,
                 by: str) -> BrandOut:
    """Platform staff's decision (the CLI), recorded as ``platform:<by>``."""
    if decision not in DECISIONS:
        raise Invalid(f"a decision is one of {', '.join(DECISIONS)}", slug="invalid-decision")
    if not reason.strip() or not by.strip():
        raise Invalid("a decision names who takes it and why", slug="reason-required")
    row = tenant_row(session, tenant.id, Brand, brand_id, "brand", lock=True)
    return _decide(session, tenant, row, decision, f"platform:{by.strip()[:190]}",
                   reason[:2000])


def review_queue(session: Session, status: str = "submitted") -> list[tuple[str, BrandOut]]:
    """Every merchant's files in ``status`` (the platform's queue), as (tenant id, file)."""
    rows = list(session.scalars(select(Brand).where(Brand.status == status)
                                .order_by(Brand.updated_at, Brand.id).limit(1000)))
    return [(r.tenant_id, _brand_out(session, r)) for r in rows]


def follow_up_brands(session: Session, now: dt.datetime) -> int:
    """The worker's pass over approved files across merchants (China's date): a file whose
    authorisation or a document ends within ``crossborder_expiry_reminder_days`` is
    reminded of once (``brand.expiring``); one past its last valid day is ``expired``
    (``brand.expired``, recorded in its history as ``platform:expiry``) and its products are
    unlisted at once, as a revocation does. The events go to the merchant's webhooks, and
    name the agency's app. Returns the files reminded of or expired."""
    today = (now + dt.timedelta(hours=8)).date()
    horizon = today + dt.timedelta(days=get_settings().crossborder_expiry_reminder_days)
    done = 0
    ran_out = session.scalars(select(Brand).where(
        Brand.status == "approved", Brand.valid_until < today)
        .order_by(Brand.tenant_id, Brand.id).limit(500).with_for_update()).all()
    for row in ran_out:
        until = row.valid_until
        assert until is not None
        BRAND_LIFECYCLE.check("brand.expired", row.status, "expired")
        row.status, row.decided_by, row.decided_at, row.updated_at = \
            "expired", EXPIRY_ACTOR, now, now
        row.reason = f"the authorisation or a document ran out after {until.isoformat()}"
        unlisted = _unlist_products(session, Tenant(id=row.tenant_id, slug=""), row, now)
        _record(session, row, "expired", EXPIRY_ACTOR, row.reason, now,
                valid_until=until.isoformat(), products_unlisted=unlisted)
        done += 1
    for row in session.scalars(select(Brand).where(
            Brand.status == "approved", Brand.valid_until >= today,
            Brand.valid_until <= horizon, Brand.expiry_reminded_at.is_(None))
            .order_by(Brand.tenant_id, Brand.id).limit(500).with_for_update()).all():
        row.expiry_reminded_at = now
        BRAND_LIFECYCLE.check("brand.expiring", row.status, "approved")
        until = row.valid_until
        assert until is not None
        record_event(session, row.tenant_id, "brand.expiring", row.id,
                     {"brand_id": row.id, "name": row.name, "status": row.status,
                      "agency_app_id": row.agency_app_id, "valid_until": until.isoformat(),
                      "days_left": (until - today).days})
        done += 1
    session.flush()
    return done


def qualified_brand(session: Session, tenant: Tenant, brand_id: str | None) -> None:
    """409 ``brand-not-qualified`` unless ``brand_id`` is the merchant's approved brand."""
    if brand_id is None:
        raise BrandNotQualified("a cross-border product is sold under a qualified foreign "
                                "brand: give brand_id (file one with POST "
                                "/v1/crossborder/brands)")
    row = tenant_row(session, tenant.id, Brand, brand_id, "brand")
    if row.status != "approved":
        raise BrandNotQualified(f"brand {row.name!r} is {row.status}, not approved: its "
                                "products cannot be listed yet", brand_id=row.id,
                                brand_status=row.status)


# ---------------------------------------------------------------- delegated reviewers

def _reviewer_out(r: Reviewer) -> ReviewerOut:
    return ReviewerOut(app_id=r.id, delegated_by=r.delegated_by, evidence=r.evidence,
                       delegated_at=r.delegated_at, revoked_at=r.revoked_at)


def _certified_reviewer(session: Session, app_id: str) -> bool:
    return any(c.category in REVIEWER_CATEGORIES
               for c in platform.get_app(session, app_id).certifications)


def delegate_review(session: Session, app_id: str, by: str, evidence: str) -> ReviewerOut:
    """Platform staff delegate the review of qualification files to an app certified as a
    customs broker or an operating agency (422 ``not-certified`` otherwise); delegating again
    renews a withdrawn delegation."""
    if not _certified_reviewer(session, app_id):
        raise Invalid(f"app {app_id} is not certified as a customs broker or an operating "
                      "agency: certify it first (haina apps certify --category …)",
                      slug="not-certified")
    if not evidence.strip() or not by.strip():
        raise Invalid("a delegation names who grants it and what it rests on",
                      slug="evidence-required")
    row = session.get(Reviewer, app_id)
    if row is None:
        row = Reviewer(id=app_id)
        session.add(row)
    row.delegated_by, row.evidence = by.strip()[:200], evidence.strip()[:2000]
    row.delegated_at, row.revoked_at = utcnow(), None
    session.flush()
    return _reviewer_out(row)


def withdraw_delegation(session: Session, app_id: str) -> ReviewerOut:
    row = session.get(Reviewer, app_id)
    if row is None:
        raise not_found("reviewer", app_id)
    row.revoked_at = row.revoked_at or utcnow()
    session.flush()
    return _reviewer_out(row)


def list_reviewers(session: Session) -> list[ReviewerOut]:
    return [_reviewer_out(r) for r in session.scalars(select(Reviewer).order_by(Reviewer.id))]
