"""OAuth 2 helpers for apps: PKCE, the authorization URL, code exchange, refresh (rotating),
client credentials, revocation and introspection."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge) for PKCE with S256, the only method Haina accepts."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class TokenSet:
    access_token: str
    expires_at: float  # seconds since the epoch
    scope: str
    refresh_token: str | None = None

    @classmethod
    def from_answer(cls, answer: dict[str, Any], now: float | None = None) -> TokenSet:
        return cls(access_token=answer["access_token"],
                   expires_at=(now or time.time()) + float(answer.get("expires_in", 3600)),
                   scope=answer.get("scope", ""), refresh_token=answer.get("refresh_token"))

    def expired(self, margin: float = 30.0) -> bool:
        return time.time() + margin >= self.expires_at


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.status, self.error, self.description = status, error, description


class OAuthApp:
    """An app's OAuth 2 client credentials at one Haina."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self._http = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def authorization_url(self, redirect_uri: str, scopes: Iterable[str], state: str,
                          code_challenge: str, *, lang: str | None = None) -> str:
        """Where to send the merchant's browser to install the app."""
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": redirect_uri, "scope": " ".join(scopes), "state": state,
                  "code_challenge": code_challenge, "code_challenge_method": "S256"}
        if lang:
            params["lang"] = lang
        return f"{self.base_url}/oauth/authorize?{urlencode(params)}"

    def _post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        r = self._http.post(path, data=data, auth=(self.client_id, self.client_secret))
        body = r.json() if r.content else {}
        if r.status_code >= 400:
            raise OAuthError(r.status_code, body.get("error", "error"),
                             body.get("error_description"))
        return body

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        return TokenSet.from_answer(self._post("/oauth/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}))

    def refresh(self, refresh_token: str, scopes: Iterable[str] | None = None) -> TokenSet:
        """A new access token and a new refresh token (the old one stops working: keep the
        new one — presenting the old one again revokes every token of the installation)."""
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scopes:
            data["scope"] = " ".join(scopes)
        return TokenSet.from_answer(self._post("/oauth/token", data))

    def client_credentials(self) -> TokenSet:
        """A token for the app's own calls (its installations), acting for no merchant."""
        return TokenSet.from_answer(self._post("/oauth/token",
                                               {"grant_type": "client_credentials"}))

    def revoke(self, token: str) -> None:
        self._post("/oauth/revoke", {"token": token})

    def introspect(self, token: str) -> dict[str, Any]:
        return self._post("/oauth/introspect", {"token": token})
