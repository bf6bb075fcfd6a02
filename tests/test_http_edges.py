"""The HTTP edge: docs served from the package, ``nosniff`` on every response, bounded bodies.

None of this depends on the database, so it runs on SQLite only."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from support import database_from_template, make_tenant

from haina.core.config import Settings

PNG_HEAD = bytes.fromhex("89504e470d0a1a0a0000000d49484452")


@pytest.fixture
def db_url(request, tmp_path):
    yield from database_from_template(request, "sqlite", tmp_path, "t_")


@pytest.fixture
def app(engine, tmp_path):
    from haina.api import create_app
    return create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                               media_dir=tmp_path / "media"), engine=engine)


def is_problem(r, status, slug):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"https://haina.dev/problems/{slug}", r.json()
    return r.json()


def product(sku="TIRE-1", **extra):
    return {"sku": sku, "title": "tire", "price": {"amount": "99.00", "currency": "CNY"},
            "stock": 1, **extra}


# ---------------------------------------------------------------- docs

def test_docs_load_their_assets_from_this_server(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(assets) == 3, assets  # script, stylesheet, icon
    assert all(a.startswith("/static/docs/") for a in assets), assets
    assert "cdn" not in r.text and "https://" not in r.text.split("<script>")[0]
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in assets:
        got = client.get(url)
        assert got.status_code == 200, url
        assert got.headers["content-type"].split(";")[0] == expected[url[url.rfind("."):]]
        assert len(got.content) > 100
    assert "SwaggerUIBundle" in client.get("/static/docs/swagger-ui-bundle.js").text
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc (CDN only) is not offered
    assert client.get("/static/docs/../../api.py").status_code == 404


# ---------------------------------------------------------------- nosniff

def test_every_response_says_nosniff(app, sessions):
    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom, include_in_schema=False)
    _, token = make_tenant(sessions)
    with TestClient(app, raise_server_exceptions=False) as c:
        auth = {"Authorization": f"Bearer {token}"}
        responses = [
            c.get("/healthz"), c.get("/docs"), c.get("/static/docs/swagger-ui.css"),
            c.get("/openapi.json"),
            c.get("/v1/products", headers=auth),                      # 200
            c.post("/v1/products", json=product(), headers=auth),     # 201
            c.get("/v1/products"),                                    # 401
            c.get("/v1/products/prod_nope", headers=auth),            # 404
            c.post("/v1/products", json={"sku": 1}, headers=auth),    # 422
            c.post("/v1/products", content=b"x" * (2 << 20), headers=auth),  # 413
            c.get("/boom"),                                           # 500
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 201, 401, 404, 422,
                                                  413, 500]
    for r in responses:
        assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url, r.headers)
        assert r.headers.get_list("x-content-type-options") == ["nosniff"]


# ---------------------------------------------------------------- body limit

def test_the_default_limit_is_one_mebibyte_and_configurable(monkeypatch):
    assert Settings().max_body_bytes == 1 << 20
    monkeypatch.setenv("HAINA_MAX_BODY_BYTES", "4096")
    assert Settings().max_body_bytes == 4096


def test_a_json_body_over_the_limit_is_a_413_problem_and_nothing_is_stored(client):
    big = product(metadata={"note": "x" * (2 << 20)})
    r = client.post("/v1/products", json=big)
    problem = is_problem(r, 413, "payload-too-large")
    assert problem["max_bytes"] == 1 << 20 and problem["instance"] == "/v1/products"
    assert r.headers["connection"] == "close"
    assert client.get("/v1/products").json()["data"] == []
    # just under the limit is not refused for its size
    fits = product(metadata={"note": "x" * ((1 << 20) - 1000)})
    assert client.post("/v1/products", json=fits).status_code != 413


def test_a_chunked_body_is_counted_while_it_streams(client):
    sent = []

    def chunks(total, size=64 << 10):
        body = b'{"sku": "TIRE-1", "title": "tire", "stock": 1, ' \
               b'"price": {"amount": "99.00", "currency": "CNY"}, "description": "'
        yield body
        for _ in range(total // size):
            sent.append(size)
            yield b"x" * size
        yield b'"}'

    r = client.post("/v1/products", content=chunks(3 << 20),
                    headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers  # sent chunked
    is_problem(r, 413, "payload-too-large")
    assert client.get("/v1/products").json()["data"] == []
    # a small chunked body goes through (a description is at most 20 000 characters)
    r = client.post("/v1/products", content=chunks(16 << 10, size=4 << 10),
                    headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read():
    """The check uses Content-Length alone: the application never runs."""
    from haina.core.asgi import HttpEdge

    called = []

    async def inner(scope, receive, send):
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    c = TestClient(HttpEdge(inner, 1000))  # no lifespan: the inner app speaks only http
    r = c.post("/anything", content=b"x" * 1001)
    assert r.status_code == 413 and called == []
    assert r.headers["x-content-type-options"] == "nosniff"
    r = c.post("/anything", content=b"x" * 1000)
    assert r.status_code == 204 and called == ["/anything"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_media_uploads_keep_the_catalogs_own_larger_limit(client):
    from haina.catalog.service import MAX_MEDIA_BYTES
    p = client.post("/v1/products", json=product()).json()
    image = PNG_HEAD + b"\0" * (3 << 20)  # over the 1 MiB request limit, under 10 MiB
    r = client.post(f"/v1/products/{p['id']}/media",
                    files={"file": ("big.png", image, "image/png")})
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(image)
    # the route's limit is the largest media size (+ multipart framing), not unlimited
    r = client.post(f"/v1/products/{p['id']}/media",
                    headers={"content-type": "multipart/form-data; boundary=x",
                             "content-length": str(MAX_MEDIA_BYTES + (1 << 20))},
                    content=b"")
    is_problem(r, 413, "payload-too-large")
