from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from haina.core.context import Tenant
from haina.core.http import IdempotencyKeyHeader, Router, SessionDep, create
from haina.core.pagination import Page
from haina.payments import ledger, service
from haina.payments.schemas import (
    BalanceOut,
    CaptureIn,
    JournalEntryOut,
    PaymentIntentCreate,
    PaymentIntentOut,
    PayoutCreate,
    PayoutOut,
    RefundCreate,
    RefundOut,
)
from haina.platform.auth import require

router = Router(prefix="/v1", tags=["payments"])
READ, WRITE = require("payments:read"), require("payments:write")
LEDGER = require("ledger:read")


def _declined(out: PaymentIntentOut):
    """A failed payment is recorded, and answered 402 with the intent in the problem."""
    if out.status == "failed":
        problem = service.payment_problem(out)
        return problem.status, problem.to_dict()
    return None


@router.post("/payment_intents", status_code=201, response_model=PaymentIntentOut,
             summary="Pay an order (sandbox test cards in the docs)",
             responses={402: {"description": "payment-failed (problem+json)"}})
def create_intent(session: SessionDep, body: PaymentIntentCreate, request: Request,
                  tenant: Tenant = Depends(WRITE),
                  idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_intent(session, tenant, body), answer=_declined)


@router.get("/payment_intents", response_model=Page[PaymentIntentOut])
def list_intents(session: SessionDep, order_id: str | None = None,
                 status: Literal["requires_capture", "succeeded", "failed", "canceled"] | None
                 = None, created_gte: AwareDatetime | None = None,
                 created_lt: AwareDatetime | None = None,
                 limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                 tenant: Tenant = Depends(READ)) -> Page[PaymentIntentOut]:
    return service.list_intents(session, tenant, order_id, limit, cursor, status=status,
                                created_gte=created_gte, created_lt=created_lt)


@router.get("/payment_intents/{intent_id}", response_model=PaymentIntentOut)
def get_intent(session: SessionDep, intent_id: str,
               tenant: Tenant = Depends(READ)) -> PaymentIntentOut:
    return service.get_intent(session, tenant, intent_id)


@router.post("/payment_intents/{intent_id}/capture", response_model=PaymentIntentOut,
             responses={402: {"description": "payment-failed (problem+json)"}})
def capture(session: SessionDep, intent_id: str, request: Request, body: CaptureIn | None = None,
            tenant: Tenant = Depends(WRITE),
            idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    amount = body.amount if body else None
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.capture(session, tenant, intent_id, amount), status=200,
                  answer=_declined)


@router.post("/payment_intents/{intent_id}/cancel", response_model=PaymentIntentOut,
             summary="Release an authorisation")
def cancel(session: SessionDep, intent_id: str, request: Request, tenant: Tenant = Depends(WRITE),
           idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, None,
                  lambda: service.cancel_intent(session, tenant, intent_id), status=200)


@router.post("/refunds", status_code=201, response_model=RefundOut,
             summary="Refund part or all of a captured payment")
def refund(session: SessionDep, body: RefundCreate, request: Request,
           tenant: Tenant = Depends(WRITE),
           idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.refund(session, tenant, body))


@router.get("/refunds", response_model=Page[RefundOut])
def list_refunds(session: SessionDep, order_id: str | None = None,
                 payment_intent_id: str | None = Query(None, max_length=40),
                 limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
                 tenant: Tenant = Depends(READ)) -> Page[RefundOut]:
    return service.list_refunds(session, tenant, order_id, limit, cursor,
                                payment_intent_id=payment_intent_id)


@router.post("/payouts", status_code=201, response_model=PayoutOut,
             summary="Pay the merchant what the platform owes")
def payout(session: SessionDep, body: PayoutCreate, request: Request,
           tenant: Tenant = Depends(WRITE),
           idempotency_key: str | None = IdempotencyKeyHeader) -> Response:
    return create(request, session, tenant, idempotency_key, body,
                  lambda: service.create_payout(session, tenant, body.amount))


@router.get("/ledger/balances", response_model=Page[BalanceOut], tags=["ledger"],
            summary="Account balances, derived from the journal (every account and currency, "
                    "on one page)")
def balances(session: SessionDep, tenant: Tenant = Depends(LEDGER)) -> Page[BalanceOut]:
    return Page[BalanceOut](data=ledger.balances(session, tenant), has_more=False)


@router.get("/ledger/entries", response_model=Page[JournalEntryOut], tags=["ledger"])
def entries(session: SessionDep, ref_id: str | None = None, kind: str | None = None,
            limit: int = Query(50, ge=1, le=200), cursor: str | None = None,
            tenant: Tenant = Depends(LEDGER)) -> Page[JournalEntryOut]:
    return ledger.list_entries(session, tenant, ref_id=ref_id, kind=kind, limit=limit,
                               cursor=cursor)
