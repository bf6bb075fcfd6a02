"""The catalog's tests keep uploaded media in each test's temp dir (not ./var/media)."""

from __future__ import annotations

import pytest


@pytest.fixture
def app(engine, tmp_path):
    from haina.api import create_app
    from haina.core.config import Settings
    return create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                               media_dir=tmp_path / "media"), engine=engine)
