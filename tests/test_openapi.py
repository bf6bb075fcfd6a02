"""The OpenAPI document is valid and the API keeps to it: schemathesis generates requests for
every operation; none may crash the server (5xx) or answer outside the documented shapes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support import app_token, build_schema, make_tenant

from haina.api import create_app
from haina.core.config import Settings
from haina.core.context import COMPONENTS
from haina.core.db import make_engine, make_sessionmaker

# Built at collection (schemathesis needs the schema then): a fresh SQLite database in a temp
# dir, schema from the models, one merchant with a "*" token.
_dir = Path(tempfile.mkdtemp(prefix="haina-openapi-"))
_url = f"sqlite:///{_dir / 'haina.db'}"
_engine = make_engine(_url)


def _build():
    build_schema(_engine)
    sessions = make_sessionmaker(_engine)
    _, token = make_tenant(sessions, "fuzz-shop")
    every_scope = " ".join(f"{c}:write" for c in COMPONENTS)
    return (create_app(Settings(database_url=_url, media_dir=_dir / "media",
                                rate_limit_backend="off"), engine=_engine),
            token, app_token(sessions, "fuzz-shop", every_scope))


app, TOKEN, APP_TOKEN = _build()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("HAINA_FUZZ_EXAMPLES", "12")), deadline=None,
          derandomize=os.environ.get("HAINA_FUZZ_EXAMPLES") is None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@pytest.mark.parametrize("credential", ["staff token", "app token"])
def test_no_operation_crashes_or_leaves_its_contract(case, credential):
    """With a staff token and with an app's token (all scopes, through a merchant's grant)."""
    token = TOKEN if credential == "staff token" else APP_TOKEN
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call(timeout=120)  # not 10 s: a plot drawn on a loaded machine is slow, not broken
    case.validate_response(response, checks=(not_a_server_error, status_code_conformance,
                                             content_type_conformance,
                                             response_schema_conformance))
