"""Haina's OAuth 2 authorization server, built on Authlib's grants and endpoints.

- Authorization code with PKCE: S256 is required on every authorization request; ``plain``
  and a missing challenge are refused (RFC 7636, and RFC 9700's advice to use PKCE always).
  Codes are single-use, live 60 seconds, and are bound to the app, the redirect URI and the
  challenge. A code presented twice revokes every token issued from it (RFC 6749 §4.1.2).
- Refresh tokens rotate: each use gives a new refresh token and ends the old one. Presenting
  an ended refresh token again is taken as theft (RFC 9700 §4.14.2): the whole family — every
  token descending from the same authorization — is revoked.
- Client credentials: an app's token for its own calls (which merchants installed it); it
  acts for no merchant.
- Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414).

Tokens are random (256 bits) and stored as SHA-256, as staff tokens are. One server object is
made per request around the request's session (Authlib's hooks take no session argument).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from haina.core import credentials
from haina.core.context import COMPONENTS, EXTRA_ACTIONS
from haina.core.db import rowcount, utcnow
from haina.core.ids import new_id
from haina.platform.apps import check_client_secret
from haina.platform.models import App, AppGrant, OAuthCode, OAuthToken

ACCESS_PREFIX = "hnat_"
REFRESH_PREFIX = "hnrt_"
CODE_SECONDS = 60
ACCESS_SECONDS = 3600
REFRESH_DAYS = 30
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def all_scopes() -> list[str]:
    return [f"{c}:{a}" for c in COMPONENTS for a in ("read", "write", *EXTRA_ACTIONS.get(c, ()))]


# ---------------------------------------------------------------- Authlib's model faces

class Client(ClientMixin):
    """An app as Authlib sees an OAuth client (confidential: it always has a secret)."""

    def __init__(self, row: App) -> None:
        self.row = row
        self.id = row.id

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> str | None:
        uris = list(self.row.redirect_uris)
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.row.scopes.split()
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass
class Principal:
    """Whom a token acts for: a merchant's grant to the app (None: the app itself)."""

    tenant_id: str | None
    grant_id: str | None
    family_id: str
    staff_id: str | None = None


class Code:
    def __init__(self, row: OAuthCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class Token(TokenMixin):
    def __init__(self, row: OAuthToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.app_id == client.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - self.row.created_at).total_seconds()))

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


def revoke_family(session: Session, family_id: str, now: dt.datetime | None = None) -> None:
    session.execute(update(OAuthToken).where(OAuthToken.family_id == family_id,
                                             OAuthToken.revoked_at.is_(None))
                    .values(revoked_at=now or utcnow()))
    credentials.changed(session)


def _grant_installed(session: Session, tenant_id: str | None, grant_id: str | None) -> bool:
    if tenant_id is None:
        return True
    return session.scalar(select(AppGrant.status).where(
        AppGrant.tenant_id == tenant_id, AppGrant.id == grant_id)) == "installed"


# ---------------------------------------------------------------- grants

class S256Only(CodeChallenge):
    """PKCE with S256 on every authorization request; ``plain`` is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and "
                                      "code_challenge_method=S256",
                                      redirect_uri=redirect_uri,
                                      state=grant.request.payload.state)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)",
                                      redirect_uri=redirect_uri,
                                      state=grant.request.payload.state)
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        requested = (self.request.payload.scope or "").split()
        allowed = set(self.request.client.row.scopes.split())
        if not set(requested) <= allowed:
            raise InvalidScopeError(
                f"the app did not register {' '.join(sorted(set(requested) - allowed))}",
                redirect_uri=redirect_uri, state=self.request.payload.state)
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        principal: Principal = request.user
        data = request.payload.data
        now = utcnow()
        session = self.server.session
        session.add(OAuthCode(
            id=new_id("oauth_code"), code_hash=digest(code), app_id=request.client.id,
            tenant_id=principal.tenant_id, grant_id=principal.grant_id,
            staff_id=principal.staff_id or "",
            redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=request.payload.scope or request.client.row.scopes,
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "S256"),
            expires_at=now + dt.timedelta(seconds=CODE_SECONDS), created_at=now))
        session.flush()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """The code, claimed (single use): a code seen before revokes what it gave."""
        session: Session = self.server.session
        row = session.scalar(select(OAuthCode).where(OAuthCode.code_hash == digest(code),
                                                     OAuthCode.app_id == client.id))
        if row is None:
            return None
        now = utcnow()
        claimed = rowcount(session.execute(
            update(OAuthCode).where(OAuthCode.id == row.id, OAuthCode.used_at.is_(None))
            .values(used_at=now)))
        if not claimed:
            revoke_family(session, row.id, now)  # RFC 6749 §4.1.2: a reused code
            return None
        if row.expires_at <= now or not _grant_installed(session, row.tenant_id, row.grant_id):
            return None
        return Code(row)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # claimed (used_at) when it was read

    def authenticate_user(self, authorization_code: Code) -> Principal:
        row = authorization_code.row
        return Principal(tenant_id=row.tenant_id, grant_id=row.grant_id, family_id=row.id,
                         staff_id=row.staff_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        session: Session = self.server.session
        row = session.scalar(select(OAuthToken).where(OAuthToken.token_hash == digest(refresh_token),
                                                      OAuthToken.kind == "refresh"))
        client = self.request.client
        if row is None or row.app_id != client.id or row.revoked_at is not None:
            return None
        now = utcnow()
        claimed = rowcount(session.execute(
            update(OAuthToken).where(OAuthToken.id == row.id, OAuthToken.rotated_at.is_(None),
                                     OAuthToken.revoked_at.is_(None))
            .values(rotated_at=now)))
        if not claimed:  # rotated before: someone replays it
            revoke_family(session, row.family_id, now)
            return None
        if row.expires_at <= now or not _grant_installed(session, row.tenant_id, row.grant_id):
            return None
        return Token(row)

    def authenticate_user(self, refresh_token: Token) -> Principal:
        row = refresh_token.row
        return Principal(tenant_id=row.tenant_id, grant_id=row.grant_id,
                         family_id=row.family_id)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        pass  # rotated (rotated_at) when it was claimed


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


def find_token(session: Session, token_string: str) -> Token | None:
    """Any token of ours (access or refresh), for revocation and introspection."""
    row = session.scalar(select(OAuthToken).where(OAuthToken.token_hash == digest(token_string)))
    return Token(row) if row is not None else None


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return find_token(self.server.session, token_string)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        # a refresh token ends its whole family (RFC 7009 §2.1: the access tokens of the same
        # authorization too); an access token ends alone
        if token.row.kind == "refresh":
            revoke_family(self.server.session, token.row.family_id)
        else:
            token.row.revoked_at = utcnow()
            credentials.changed(self.server.session)
        self.server.session.flush()


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return find_token(self.server.session, token_string)

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return token.row.app_id == client.id  # an app learns about its own tokens only

    def introspect_token(self, token: Token) -> dict[str, Any]:
        row = token.row
        return {"active": True, "client_id": row.app_id, "scope": row.scope,
                "token_type": "Bearer" if row.kind == "access" else "refresh_token",
                "exp": int(row.expires_at.timestamp()), "iat": int(row.created_at.timestamp()),
                "sub": row.tenant_id or row.app_id, "haina_tenant_id": row.tenant_id,
                "haina_grant_id": row.grant_id}


# ---------------------------------------------------------------- the server

def _random(prefix: str) -> Any:
    def make(*_: Any, **__: Any) -> str:
        return prefix + secrets.token_urlsafe(32)
    return make


def _expires_in(client: Client, grant_type: str) -> int:
    return ACCESS_SECONDS


class Server(AuthorizationServer):
    """One per request, around the request's session; responses are (status, body, headers)
    for the web layer to send."""

    def __init__(self, session: Session) -> None:
        super().__init__(scopes_supported=all_scopes())
        self.session = session
        self.register_token_generator("default", BearerTokenGenerator(
            _random(ACCESS_PREFIX), _random(REFRESH_PREFIX), _expires_in))
        self.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        if not client_id or len(client_id) > 40:
            return None
        row = self.session.get(App, client_id)
        return Client(row) if row is not None else None

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope and not set(scope.split()) <= set(self.scopes_supported or ()):
            raise InvalidScopeError(f"unknown scope in {scope!r}; scopes look like orders:read")

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        principal: Principal | None = request.user
        client: Client = request.client
        now = utcnow()
        family = principal.family_id if principal else new_id("oauth_token")
        common = {"family_id": family, "app_id": client.id,
                  "tenant_id": principal.tenant_id if principal else None,
                  "grant_id": principal.grant_id if principal else None,
                  "scope": token.get("scope") or "", "created_at": now}
        self.session.add(OAuthToken(
            id=new_id("oauth_token"), token_hash=digest(token["access_token"]), kind="access",
            expires_at=now + dt.timedelta(seconds=int(token["expires_in"])), **common))
        if token.get("refresh_token"):
            # a refresh that narrowed the scope narrows the access token only: the new refresh
            # token keeps the old one's scope (RFC 6749 §6)
            previous = getattr(request, "refresh_token", None)
            if isinstance(previous, Token):
                common["scope"] = previous.row.scope
            self.session.add(OAuthToken(
                id=new_id("oauth_token"), token_hash=digest(token["refresh_token"]),
                kind="refresh", expires_at=now + dt.timedelta(days=REFRESH_DAYS), **common))
        self.session.flush()

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # the web layer hands a ready OAuth2Request (see make_request)

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list]:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


def make_request(method: str, uri: str, headers: dict[str, str],
                 data: dict[str, str]) -> OAuth2Request:
    """An Authlib request from what the web layer read (query or form fields)."""
    request = _Request(method, uri, headers=headers)
    request.payload = BasicOAuth2Payload(data)
    request._form = data
    return request


class _Request(OAuth2Request):
    _form: dict[str, str]

    @property
    def args(self) -> dict[str, str]:
        return self._form

    @property
    def form(self) -> dict[str, str]:
        return self._form


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": all_scopes(),
        "service_documentation": f"{issuer}/docs",
    }


def authenticate_access_token(session: Session, token: str) -> OAuthToken | None:
    """A live access token's row (not expired, not revoked, its grant still installed)."""
    row = session.scalar(select(OAuthToken).where(OAuthToken.token_hash == digest(token),
                                                  OAuthToken.kind == "access"))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if not _grant_installed(session, row.tenant_id, row.grant_id):
        return None
    return row
