from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from receiver import Receiver  # noqa: E402

from haina.core.config import get_settings  # noqa: E402


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def acme(sessions):
    """The merchant ``acme`` and a full-access token of it."""
    from support import make_tenant
    return make_tenant(sessions)


@pytest.fixture
def tenant(acme):
    return acme[0]


@pytest.fixture
def client(app, acme):
    """An API client of ``acme`` (the same merchant as ``tenant``)."""
    from fastapi.testclient import TestClient
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {acme[1]}"
        yield c


@pytest.fixture
def guarded(monkeypatch):
    """The production setting: private addresses refused (the suite allows them otherwise:
    its receivers are on loopback)."""
    monkeypatch.setenv("HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
