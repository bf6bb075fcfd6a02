"""A revoked credential stops working in every API process when the revocation commits
(core.credentials: NOTIFY haina_credentials on PostgreSQL, a listener per process)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from haina.core import credentials
from haina.core.db import transaction
from haina.platform import service
from tests.support import make_tenant, until


def test_this_process_forgets_at_once_and_again_at_commit(sessions):
    tenant, token = make_tenant(sessions)
    with transaction(sessions) as s:
        service.authenticate(s, token, 60)
    assert service.cached_tenant(token, 60) is not None
    with transaction(sessions) as s:
        credentials.changed(s)
        assert service.cached_tenant(token, 60) is None
        # a request of this process caches the token again before the change commits
        service.authenticate(s, token, 60)
        assert service.cached_tenant(token, 60) is not None
    assert service.cached_tenant(token, 60) is None  # forgotten again at commit


@pytest.mark.pg
@pytest.mark.parametrize("db_url", ["pg"], indirect=True)
def test_a_notice_reaches_a_listener_at_commit_and_never_for_a_rollback(db_url, engine, sessions):
    _, token = make_tenant(sessions)
    listener = credentials.Listener(
        engine.url.set(drivername="postgresql")
        .render_as_string(hide_password=False)).start()
    try:
        assert listener.listening.wait(10)
        with pytest.raises(RuntimeError), transaction(sessions) as s:
            credentials.changed(s)
            raise RuntimeError("rolled back")
        with transaction(sessions) as s:
            service.authenticate(s, token, 60)
        with transaction(sessions) as s:
            credentials.changed(s)
            credentials.changed(s)  # one notice per transaction
        assert until(lambda: listener.notices >= 1)
        # PostgreSQL delivers notices in commit order: the rolled-back one would have come
        # first; one more committed change is the next and last notice seen
        with transaction(sessions) as s:
            credentials.changed(s)
        assert until(lambda: listener.notices >= 2)
        assert listener.notices == 2
    finally:
        listener.stop(timeout=5)


@pytest.mark.pg
@pytest.mark.parametrize("db_url", ["pg"], indirect=True)
def test_a_token_revoked_by_another_process_stops_working_here(db_url, engine, sessions):
    """Another process's revocation (its SQL and its notice, on a connection of its own):
    this API process, which holds the token in its cache for a minute, refuses it once the
    revocation commits."""
    from haina.api import create_app
    from haina.core.config import Settings
    _, token = make_tenant(sessions)
    app = create_app(Settings(database_url=str(engine.url), token_cache_seconds=60),
                     engine=engine)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        # (the listener forgets everything once when it starts listening)
        assert app.state.credentials_listener.listening.wait(10)
        assert client.get("/v1/orders").status_code == 200  # verified, now cached
        assert service.cached_tenant(token, 60) is not None
        with engine.begin() as conn:  # the other process
            conn.execute(text("UPDATE api_tokens SET revoked_at = now() "
                              "WHERE token_hash = :h"), {"h": service._hash(token)})
            conn.execute(text(f"NOTIFY {credentials.CHANNEL}"))
        assert until(lambda: client.get("/v1/orders").status_code == 401)
