"""Drive Haina's OAuth 2 pages as a browser and an app would (helpers shared by the tests)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from haina.core.db import transaction
from haina.platform import service
from haina.platform.schemas import AppIn

REDIRECT = "http://localhost:8765/callback"
PASSWORD = "correct horse battery"
_INPUT = re.compile(r"<input\b([^>]*)>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def form_fields(page: str, action: str | None = None) -> dict[str, str]:
    """The named inputs of the page's form (the one posting to ``action`` when given)."""
    if action is not None:
        start = page.index(f'action="{action}"')
        page = page[start:page.index("</form>", start)]
    fields = {}
    for match in _INPUT.finditer(page):
        attrs = {k: html.unescape(v) for k, v in _ATTR.findall(match.group(1))}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    return verifier, challenge


def make_staff(sessions, slug: str, email: str, role: str = "owner") -> None:
    with transaction(sessions) as s:
        service.create_staff(s, slug, email, PASSWORD, role)


def make_app(sessions, scopes: str = "orders:read members:read", name: str = "Win-back",
             listed: bool = True, category: str = "marketing") -> tuple[str, str]:
    with transaction(sessions) as s:
        created = service.register_app(s, AppIn(
            name=name, description="wins back lapsed buyers", category=category,
            redirect_uris=[REDIRECT], scopes=scopes.split(), listed=listed))
    return created.client_id, created.client_secret


def authorize_url(client_id: str, challenge: str | None, scope: str = "orders:read members:read",
                  state: str = "st-1", method: str | None = "S256",
                  redirect_uri: str = REDIRECT) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    return "/oauth/authorize?" + urlencode(params)


def login(browser, email: str, password: str = PASSWORD, next_url: str = "/"):
    page = browser.get("/login", params={"next": next_url})
    fields = form_fields(page.text, "/login")
    fields.update(email=email, password=password)
    return browser.post("/login", data=fields, follow_redirects=False)


def consent(browser, url: str, decision: str = "allow"):
    """Open the consent page (signed in) and press a button; the response (a redirect)."""
    page = browser.get(url, follow_redirects=False)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text, "/oauth/authorize")
    fields["decision"] = decision
    return browser.post("/oauth/authorize", data=fields, follow_redirects=False)


def redirect_params(response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(client, client_id: str, secret: str, code: str, verifier: str | None,
             redirect_uri: str = REDIRECT):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post("/oauth/token", data=data, auth=(client_id, secret))


def install(browser, sessions, client_id: str, secret: str, email: str,
            scope: str = "orders:read members:read") -> dict:
    """The whole dance: sign in, consent, exchange the code; the token answer."""
    verifier, challenge = pkce()
    url = authorize_url(client_id, challenge, scope=scope)
    assert login(browser, email, next_url=url).status_code == 303
    params = redirect_params(consent(browser, url))
    answer = exchange(browser, client_id, secret, params["code"], verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()
