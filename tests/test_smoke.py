def test_health_answers_on_both_backends(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_missing_token_is_a_problem(client):
    r = client.get("/v1/events", headers={"Authorization": ""})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/unauthorized")


def test_events_list_shows_tenant_creation(client):
    body = client.get("/v1/events").json()
    assert [e["type"] for e in body["data"]] == ["token.created", "tenant.created"]
