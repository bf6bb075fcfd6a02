"""The whole flow over HTTP through the SDK (``haina.client``): a merchant exports and
erases a member, an installed app sees the request and acknowledges it, the merchant sees
the acknowledgement — a real server on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from support import app_token, make_tenant, served_app

from haina.client import Haina, HainaError


@pytest.fixture
def served(engine):
    with served_app(engine) as url:
        yield url


def test_export_erase_and_acknowledge_through_the_sdk(served, sessions):
    _, token = make_tenant(sessions, "acme")
    app = app_token(sessions, "acme", "members:read")
    with Haina(served, token, max_wait=2) as shop, Haina(served, app, max_wait=2) as crm:
        member = shop.members.create(name="Tang Yu", phone="13712345678")
        shop.members.set_consents(member.id, email_marketing=True, channel="web",
                                  text_version="v1")
        assert [c.purpose for c in shop.members.consent_log(member.id).data] == [
            "email_marketing"]
        export = shop.data_requests.create(member.id, "export")
        assert export.archive is not None and export.archive.available
        data = json.loads(zipfile.ZipFile(io.BytesIO(shop.data_requests.archive(export.id)))
                          .read("data.json"))["data"]
        assert data["members"][0]["name"] == "Tang Yu"
        assert shop.data_requests.get(export.id).archive.downloads == 1

        erased = shop.data_requests.create(member.id, "erase")
        assert shop.data_requests.create(member.id, "erase").id == erased.id  # the first
        assert shop.members.get(member.id).name is None
        with pytest.raises(HainaError) as gone:
            shop.data_requests.archive(export.id)  # the erasure took the export's copy too
        assert gone.value.status == 410 and gone.value.slug == "archive-expired"

        seen = crm.data_requests.list()
        assert {r.id for r in seen.data} == {export.id, erased.id}
        [app_id] = erased.apps_pending
        done = crm.data_requests.acknowledge(erased.id)
        assert done.apps_pending == [] and done.acknowledgements[0].app_id == app_id
        assert shop.data_requests.get(erased.id).acknowledgements[0].status == "acknowledged"
        assert [r.id for r in shop.data_requests.list(member.id).data] == [erased.id, export.id]
        assert {k.kind for k in shop.data_requests.retention()} >= {"audit_events",
                                                                    "export_archives"}
        with pytest.raises(HainaError) as refused:
            shop.data_requests.acknowledge(erased.id)  # a staff token is no app
        assert refused.value.status == 403
