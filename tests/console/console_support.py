"""The console tests' helpers, in a module of a unique name (``from conftest import`` finds
another directory's conftest when several test directories are collected together)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

PASSWORD = "a long enough password"


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    """Sign in as a browser does: the form at /console, posted to /login."""
    page = client.get("/console")
    assert page.status_code == 200 and 'type="password"' in page.text
    r = client.post("/login", data={"email": email, "password": password, "next": "/console",
                                    "csrf_token": form_token(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text
    return client
