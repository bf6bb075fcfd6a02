"""Uploaded media: the leading bytes must match the declared type (an HTML page sent as
image/png is refused, not stored and later served as a PNG)."""

from __future__ import annotations

import pytest

from haina.catalog.service import MEDIA_SIGNATURES, MEDIA_TYPES

# the first bytes of a real file of each accepted type
SAMPLES = {
    "image/png": bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001"),
    "image/jpeg": bytes.fromhex("ffd8ffe000104a46494600010100000100010000"),
    "image/gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00",
    "video/mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2",
    "video/quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ",
    "video/webm": bytes.fromhex("1a45dfa39f4286810142f7810142f2810442f381"),
}
HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"


def test_every_accepted_type_has_a_signature_and_a_sample():
    assert set(MEDIA_SIGNATURES) == set(MEDIA_TYPES) == set(SAMPLES)


@pytest.mark.parametrize("declared", sorted(SAMPLES))
def test_each_type_accepts_its_own_bytes_and_refuses_the_others(declared):
    check = MEDIA_SIGNATURES[declared]
    assert check(SAMPLES[declared][:16])
    for other, sample in SAMPLES.items():
        if other != declared:
            assert not check(sample[:16]), (declared, other)
    assert not check(HTML[:16])
    assert not check(b"")


@pytest.fixture
def app(engine, tmp_path):
    from haina.api import create_app
    from haina.core.config import Settings
    return create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                               media_dir=tmp_path / "media"), engine=engine)


def upload(client, product_id, content, content_type, filename="f"):
    return client.post(f"/v1/products/{product_id}/media",
                       files={"file": (filename, content, content_type)})


def test_html_sent_as_png_is_a_422_problem_and_nothing_is_stored(client, tmp_path):
    p = client.post("/v1/products", json={"sku": "S1", "title": "tire", "stock": 1,
                                          "price": {"amount": "9.00", "currency": "CNY"}}).json()
    r = upload(client, p["id"], HTML, "image/png", "front.png")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "https://haina.dev/problems/media-type-mismatch"
    assert "image/png" in r.json()["detail"]
    assert client.get(f"/v1/products/{p['id']}").json()["media"] == []
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*"))
    # a JPEG declared as PNG is refused too; declared as JPEG it is stored
    assert upload(client, p["id"], SAMPLES["image/jpeg"], "image/png").status_code == 422
    r = upload(client, p["id"], SAMPLES["image/jpeg"], "image/jpeg", "a.jpg")
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "image/jpeg"
    served = client.get(r.json()["url"])
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
