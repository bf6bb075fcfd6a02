"""The storefront's own OpenAPI document (/store/v1/openapi.json) is valid and /store/v1 keeps
to it: schemathesis generates requests for every operation, with a publishable key and a
fresh buyer session each; none may crash (5xx) or answer outside the documented shapes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support import build_schema, make_tenant

from haina.api import create_app
from haina.core.config import Settings
from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.members import service as members
from haina.members.schemas import MemberCreate
from haina.storefront import service as storefront
from haina.storefront.schemas import PublishableKeyIn

_dir = Path(tempfile.mkdtemp(prefix="haina-store-openapi-"))
_url = f"sqlite:///{_dir / 'haina.db'}"
_engine = make_engine(_url)
_sessions = make_sessionmaker(_engine)


def _build():
    build_schema(_engine)
    tenant, _ = make_tenant(_sessions, "fuzz-store")
    with transaction(_sessions) as s:
        key = storefront.create_key(s, tenant, PublishableKeyIn(
            name="fuzz", channel="app", sandbox=True)).key
        member = members.create_member(s, tenant, MemberCreate(phone="13800138000"))
    return (create_app(Settings(database_url=_url, media_dir=_dir / "media",
                                rate_limit_backend="off"), engine=_engine), key, member.id)


app, KEY, MEMBER = _build()
schema = schemathesis.openapi.from_asgi("/store/v1/openapi.json", app)


def _buyer_token() -> str:
    with transaction(_sessions) as s:
        shop = storefront.lookup_shop(s, KEY, 0)
        assert shop is not None
        return storefront.open_session(s, shop, MEMBER).access_token


@schema.parametrize()
@settings(max_examples=int(os.environ.get("HAINA_FUZZ_EXAMPLES", "8")), deadline=None,
          derandomize=os.environ.get("HAINA_FUZZ_EXAMPLES") is None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_storefront_operation_crashes_or_leaves_its_contract(case):
    case.headers = {**(case.headers or {}), "X-Publishable-Key": KEY,
                    "Authorization": f"Bearer {_buyer_token()}"}
    response = case.call(timeout=120)
    case.validate_response(response, checks=(not_a_server_error, status_code_conformance,
                                             content_type_conformance,
                                             response_schema_conformance))
