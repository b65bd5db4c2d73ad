"""The fake Microsoft identity platform (Entra ID v2.0 endpoints) of one tenant.

:class:`Authority` is both the model (app registrations, user consent, authorization codes,
refresh and access tokens) and the handler of the three endpoints msal uses with
``instance_discovery=False``::

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /{tenant}/oauth2/v2.0/authorize      (auto-consent, 302 back to the redirect URI)
    POST /{tenant}/oauth2/v2.0/token          (client_credentials, authorization_code, refresh_token)

``{tenant}`` may be the tenant name (``contoso``), its domain or its id (:attr:`Authority.tid`);
anything else is ``invalid_tenant`` (AADSTS90002).

Access tokens are JWTs (v1.0 shape, RS256-signed with the authority's key, published at
``jwks_uri``) carrying ``aud``, ``iss``, ``tid``, ``oid``, ``appid`` and either ``scp`` (the
delegated permissions consented, space-separated) or ``roles`` (the application permissions
an administrator granted the app: :meth:`Authority.grant_app_roles`).
:meth:`Authority.validate` tells a resource server (the fake Graph, or the fake EWS for OAuth)
what one stands for; the authority keeps every token it issued, so it can expire them all. Refresh
tokens rotate: each use returns a new one and the old one stops working. Client assertions
(certificate credentials) are verified for real: RS256 with an ``x5t`` (SHA-1) or PS256 with
an ``x5t#S256`` (SHA-256) thumbprint of the registered certificate, signature checked with
``cryptography``, plus ``iss``/``sub`` == client id, ``aud`` == token endpoint and ``exp``.

Not reproduced: the v1 endpoints, ``/common`` and
``/organizations``, instance discovery, device code, ROPC, on-behalf-of, ``client_secret_basic``,
conditional access, admin consent for delegated permissions (a user consents to any scope
asked for at /authorize).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fakes.server import Request, Response
from fakes.tenant import Mailbox, Tenant, TenantError

GRAPH_RESOURCE = "https://graph.microsoft.com"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An error answer of the identity platform: OAuth ``error`` plus an AADSTS code."""

    def __init__(
        self, error: str, aadsts: int, description: str, status: int = 400, suberror: str | None = None
    ) -> None:
        super().__init__(f"AADSTS{aadsts}: {description}")
        self.error = error
        self.aadsts = aadsts
        self.status = status
        self.suberror = suberror

    def response(self) -> Response:
        payload: dict[str, Any] = {
            "error": self.error,
            "error_description": str(self),
            "error_codes": [self.aadsts],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
        if self.suberror:
            payload["suberror"] = self.suberror
        return Response.json(payload, self.status, _NO_STORE)


class TokenError(Exception):
    """An access token a resource server must refuse; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """What an access token stands for."""

    client_id: str
    user_id: str | None  # None: an app-only (client credentials) token
    audience: str  # the resource, e.g. "https://graph.microsoft.com"
    scopes: frozenset[str]  # delegated permissions (scp) without the resource prefix, lower case
    expires_at: float
    roles: frozenset[str] = frozenset()  # application permissions (roles), lower case

    @property
    def app_only(self) -> bool:
        return self.user_id is None

    def holds(self, permission: str) -> bool:
        """Whether the token carries ``permission`` (``roles`` for app-only tokens, else ``scp``)."""
        return permission.lower() in (self.roles if self.app_only else self.scopes)


@dataclass
class App:
    """An app registration: credentials and redirect URIs. No credential: a public client."""

    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    redirect_uris: tuple[str, ...] = ()
    any_loopback_redirect: bool = False
    roles: tuple[str, ...] = ()  # application permissions granted with admin consent

    @property
    def service_principal_id(self) -> str:
        """The object id of the app's service principal in the tenant (a token's ``oid``)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"app:{self.client_id}"))

    @property
    def confidential(self) -> bool:
        return self.secret is not None or self.certificate is not None

    def accepts_redirect(self, uri: str) -> bool:
        """Registered exactly, or any http://localhost|127.0.0.1 URL when allowed."""
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        loopback = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")
        return self.any_loopback_redirect and loopback


@dataclass
class _Code:
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    challenge: str | None
    nonce: str | None
    expires_at: float
    redeemed: bool = False


@dataclass
class _Grant:
    """What a refresh token stands for."""

    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


class Authority:
    """The identity platform of one :class:`~fakes.tenant.Tenant`; call it as a server handler.

    ``token_lifetime`` is the access-token lifetime (``expires_in``) in seconds,
    ``code_lifetime`` that of authorization codes; ``default_user`` signs in at /authorize
    when the request has no ``login_hint``. Thread-safe.
    """

    def __init__(
        self,
        tenant: Tenant,
        *,
        token_lifetime: int = 3600,
        code_lifetime: int = 600,
        default_user: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.tid = str(uuid.uuid5(uuid.NAMESPACE_DNS, tenant.domain))
        self.token_lifetime = token_lifetime
        self.code_lifetime = code_lifetime
        self.default_user = default_user
        self._lock = threading.RLock()
        self._apps: dict[str, App] = {}
        self._consents: dict[tuple[str, str], set[str]] = {}
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, TokenInfo] = {}

    # administration ---------------------------------------------------------------------
    def register_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate_pem: bytes | None = None,
        redirect_uris: Iterable[str] = (),
        any_loopback_redirect: bool = False,
        roles: Iterable[str] = (),
    ) -> App:
        """Register an application; ``certificate_pem`` is the X.509 certificate of its key,
        ``roles`` the application permissions (``Contacts.ReadWrite``...) granted to it."""
        certificate = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        app = App(client_id, secret, certificate, tuple(redirect_uris), any_loopback_redirect, tuple(roles))
        with self._lock:
            self._apps[client_id] = app
        return app

    def grant_app_roles(self, client_id: str, roles: Iterable[str]) -> None:
        """An administrator grants application permissions to the app (admin consent)."""
        with self._lock:
            app = self._apps[client_id]
            app.roles = (*app.roles, *(r for r in roles if r.lower() not in {x.lower() for x in app.roles}))

    def revoke_app_roles(self, client_id: str, roles: Iterable[str]) -> None:
        """Withdraw application permissions; tokens issued later no longer carry them."""
        gone = {r.lower() for r in roles}
        with self._lock:
            app = self._apps[client_id]
            app.roles = tuple(r for r in app.roles if r.lower() not in gone)

    def grant_consent(self, client_id: str, user: str, scopes: Iterable[str]) -> None:
        """Record that ``user`` (address or id) consented to ``scopes`` for the app."""
        user_id = self.tenant.mailbox(user).user_id
        with self._lock:
            granted = self._consents.setdefault((client_id, user_id), set())
            granted.update(s for s in map(_full_scope, scopes) if s not in OIDC_SCOPES)

    def revoke_consent(self, client_id: str, user: str) -> None:
        """Withdraw the user's consent: refreshing then fails with AADSTS65001."""
        user_id = self.tenant.mailbox(user).user_id
        with self._lock:
            self._consents.pop((client_id, user_id), None)

    def revoke_refresh_tokens(self, user: str) -> None:
        """Revoke every refresh token of ``user`` (AADSTS50173 when used)."""
        user_id = self.tenant.mailbox(user).user_id
        with self._lock:
            for grant in self._grants.values():
                if grant.user_id == user_id:
                    grant.revoked = True

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (Graph answers 401)."""
        with self._lock:
            self._tokens = {token: replace(info, expires_at=0.0) for token, info in self._tokens.items()}

    def issue_token(
        self,
        client_id: str,
        user: str | None = None,
        *,
        scopes: Iterable[str] = (),
        resource: str = GRAPH_RESOURCE,
    ) -> str:
        """An access token minted without HTTP: app-only when ``user`` is None."""
        if client_id not in self._apps:
            raise KeyError(f"no app {client_id!r} registered")
        user_id = self.tenant.mailbox(user).user_id if user else None
        with self._lock:
            return self._mint(client_id, user_id, resource, tuple(scopes))

    def validate(self, token: str) -> TokenInfo:
        """What ``token`` stands for; :class:`TokenError` when unknown or expired."""
        with self._lock:
            info = self._tokens.get(token)
        if info is None:
            raise TokenError("Access token validation failure. Invalid token.")
        if info.expires_at <= time.time():
            raise TokenError("Lifetime validation failed, the token is expired.")
        return info

    # HTTP ---------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        _, tenant, endpoint = [*request.path.split("/", 2), "", ""][:3]
        route = self._routes().get((request.method, endpoint))
        if route is None:
            return Response.json({"error": "not_found", "error_description": request.path}, 404)
        try:
            self._check_tenant(tenant)
            return route(request, tenant)
        except OAuthError as exc:
            return exc.response()

    def _routes(self) -> dict[tuple[str, str], Callable[[Request, str], Response]]:
        return {
            ("GET", "v2.0/.well-known/openid-configuration"): self._discovery,
            ("GET", "oauth2/v2.0/authorize"): self._authorize,
            ("POST", "oauth2/v2.0/token"): self._token,
            ("GET", "discovery/v2.0/keys"): self._keys,
        }

    def _keys(self, request: Request, tenant: str) -> Response:
        numbers = _signing_key().public_key().public_numbers()
        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": _KEY_ID,
            "n": _b64(_int_bytes(numbers.n)),
            "e": _b64(_int_bytes(numbers.e)),
        }
        return Response.json({"keys": [key]})

    def _check_tenant(self, segment: str) -> None:
        known = {self.tenant.tenant_id.lower(), self.tenant.domain.lower(), self.tid}
        if segment.lower() not in known:
            raise OAuthError(
                "invalid_tenant",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )

    def _issuer(self, request: Request) -> str:
        return f"{request.base_url}/{self.tid}/v2.0"

    def _discovery(self, request: Request, tenant: str) -> Response:
        base = f"{request.base_url}/{tenant}/oauth2/v2.0"
        return Response.json(
            {
                "issuer": self._issuer(request),
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
                "scopes_supported": sorted(OIDC_SCOPES),
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["none"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "jwks_uri": f"{request.base_url}/{tenant}/discovery/v2.0/keys",
                "code_challenge_methods_supported": ["S256"],
                "tenant_region_scope": None,
            }
        )

    # /authorize -----------------------------------------------------------------------------
    def _authorize(self, request: Request, tenant: str) -> Response:
        client_id = request.arg("client_id", "") or ""
        app = self._app(client_id)
        redirect_uri = request.arg("redirect_uri", "") or ""
        if not app.accepts_redirect(redirect_uri):
            raise OAuthError(
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'.",
            )
        state = request.arg("state")
        try:
            code = self._issue_code(app, request, redirect_uri)
        except OAuthError as exc:
            return _redirect(redirect_uri, error=exc.error, error_description=str(exc), state=state)
        return _redirect(redirect_uri, code=code, state=state, session_state=str(uuid.uuid4()))

    def _issue_code(self, app: App, request: Request, redirect_uri: str) -> str:
        if request.arg("response_type") != "code":
            raise OAuthError("unsupported_response_type", 700054, "The fake supports only response_type=code.")
        challenge = request.arg("code_challenge")
        if challenge and request.arg("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", 50148, "The fake supports only code_challenge_method=S256.")
        login = request.arg("login_hint") or self.default_user or ""
        box = self._user(login)
        scopes = tuple(_full_scope(s) for s in (request.arg("scope") or "").split())
        _resource_of(scopes)
        self.grant_consent(app.client_id, box.user_id, scopes)
        code = secrets.token_urlsafe(32)
        expires_at = time.time() + self.code_lifetime
        with self._lock:
            self._codes[code] = _Code(
                app.client_id, box.user_id, scopes, redirect_uri, challenge, request.arg("nonce"), expires_at
            )
        return code

    def _user(self, login: str) -> Mailbox:
        try:
            return self.tenant.mailbox(login)
        except TenantError:
            raise OAuthError(
                "invalid_request",
                50034,
                f"The user account {login!r} does not exist in the '{self.tenant.domain}' directory.",
            ) from None

    # /token ---------------------------------------------------------------------------------
    def _token(self, request: Request, tenant: str) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        grant_type = form.get("grant_type", "")
        grants = {
            "client_credentials": self._client_credentials,
            "authorization_code": self._redeem_code,
            "refresh_token": self._redeem_refresh_token,
        }
        grant = grants.get(grant_type)
        if grant is None:
            raise OAuthError(
                "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
            )
        app = self._authenticate(form, f"{request.base_url}{request.path}", grant_type)
        with self._lock:
            payload = grant(app, form, self._issuer(request))
        return Response.json(payload, headers=_NO_STORE)

    def _app(self, client_id: str) -> App:
        with self._lock:
            app = self._apps.get(client_id)
        if app is None:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant.domain}'.",
            )
        return app

    def _authenticate(self, form: dict[str, str], audience: str, grant_type: str) -> App:
        app = self._app(form.get("client_id", ""))
        if form.get("client_assertion"):
            _check_assertion(app, form, audience)
        elif "client_secret" in form:
            if app.secret is None or not hmac.compare_digest(app.secret, form["client_secret"]):
                raise _bad_client(
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent "
                    "in the request is the client secret value, not the client secret ID.",
                )
        elif app.confidential or grant_type == "client_credentials":
            raise _bad_client(
                7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
            )
        return app

    def _client_credentials(self, app: App, form: dict[str, str], issuer: str) -> dict[str, Any]:
        scopes = form.get("scope", "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scopes)} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier.",
            )
        resource = scopes[0].removesuffix("/.default").lower()
        token = self._mint(app.client_id, None, resource, ())
        return self._expiry() | {"access_token": token}

    def _redeem_code(self, app: App, form: dict[str, str], issuer: str) -> dict[str, Any]:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.client_id != app.client_id:
            raise OAuthError("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
        if code.redeemed:
            raise OAuthError(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please "
                "retry with a new valid code or use an existing refresh token.",
            )
        code.redeemed = True
        if code.expires_at <= time.time():
            raise OAuthError("invalid_grant", 70008, "The provided authorization code or refresh token has expired.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                50011,
                "The redirect URI does not match the redirect URI used to request the authorization code.",
            )
        _check_pkce(code.challenge, form.get("code_verifier"))
        scopes = form.get("scope", "").split() or code.scopes
        return self._user_tokens(app, code.user_id, scopes, issuer, code.nonce)

    def _redeem_refresh_token(self, app: App, form: dict[str, str], issuer: str) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        grant = self._grants.get(token)
        if grant is None or grant.client_id != app.client_id:
            raise OAuthError("invalid_grant", 70000, "The provided value for the 'refresh_token' is not valid.")
        if grant.revoked:
            raise OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            )
        scopes = form.get("scope", "").split() or grant.scopes
        payload = self._user_tokens(app, grant.user_id, scopes, issuer, None)
        del self._grants[token]  # rotation: the new refresh token replaces this one
        return payload

    def _user_tokens(
        self, app: App, user_id: str, scopes: Iterable[str], issuer: str, nonce: str | None
    ) -> dict[str, Any]:
        requested = list(scopes)
        full = tuple(_full_scope(s) for s in requested)
        resource = _resource_of(full)
        self._require_consent(app.client_id, user_id, full)
        box = self.tenant.mailbox(user_id)
        api_scopes = tuple(s.rsplit("/", 1)[-1] for s in requested if _full_scope(s) not in OIDC_SCOPES)
        payload = self._expiry() | {
            "scope": " ".join(requested),
            "access_token": self._mint(app.client_id, user_id, resource, api_scopes),
            "client_info": _b64(json.dumps({"uid": box.user_id, "utid": self.tid})),
        }
        if "offline_access" in full:
            payload["refresh_token"] = secrets.token_urlsafe(48)
            self._grants[payload["refresh_token"]] = _Grant(app.client_id, user_id, full)
        if "openid" in full:
            payload["id_token"] = self._id_token(app, box, issuer, nonce)
        return payload

    def _require_consent(self, client_id: str, user_id: str, scopes: Iterable[str]) -> None:
        granted = self._consents.get((client_id, user_id))
        wanted = {s for s in scopes if s not in OIDC_SCOPES and not s.endswith("/.default")}
        if granted is None or not wanted <= granted:
            raise OAuthError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{client_id}'. Send an interactive authorization request for this user and resource.",
                suberror="consent_required",
            )

    def _mint(self, client_id: str, user_id: str | None, resource: str, scopes: tuple[str, ...]) -> str:
        """A signed access token: ``scp`` for a user (``scopes``), ``roles`` of the app when app-only."""
        app = self._apps[client_id]
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": resource.rstrip("/"),
            "iss": f"https://sts.windows.net/{self.tid}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "tid": self.tid,
            "oid": user_id or app.service_principal_id,
            "sub": user_id or app.service_principal_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if user_id is None:
            claims.update(idtyp="app", roles=list(app.roles))
        else:
            box = self.tenant.mailbox(user_id)
            claims.update(idtyp="user", scp=" ".join(scopes), upn=box.address, name=box.display_name)
        token = _signed_jwt(claims)
        info = TokenInfo(
            client_id,
            user_id,
            claims["aud"],
            frozenset(s.lower() for s in scopes) if user_id else frozenset(),
            float(claims["exp"]),
            frozenset(r.lower() for r in app.roles) if user_id is None else frozenset(),
        )
        self._tokens[token] = info
        return token

    def _expiry(self) -> dict[str, Any]:
        return {"token_type": "Bearer", "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime}

    def _id_token(self, app: App, box: Mailbox, issuer: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": app.client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "name": box.display_name,
            "oid": box.user_id,
            "preferred_username": box.address,
            "sub": hashlib.sha256(f"{app.client_id}:{box.user_id}".encode()).hexdigest()[:43],
            "tid": self.tid,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}))}.{_b64(json.dumps(claims))}."


# helpers -------------------------------------------------------------------------------------
_KEY_ID = "exsync-fake-authority-key"


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """The key access tokens are signed with (one per process: generating RSA keys is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signed_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "RS256", "kid": _KEY_ID}))
    body = _b64(json.dumps(claims))
    signature = _signing_key().sign(f"{header}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{body}.{_b64(signature)}"


def _int_bytes(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _full_scope(scope: str) -> str:
    """A scope in its full, lower-case form: Graph is the resource of a bare permission."""
    scope = scope.strip().lower()
    if scope in OIDC_SCOPES or "://" in scope:
        return scope
    return f"{GRAPH_RESOURCE}/{scope}"


def _resource_of(scopes: Iterable[str]) -> str:
    """The one resource ``scopes`` are for (Graph if only OpenID scopes are asked for)."""
    resources = {s.rsplit("/", 1)[0] for s in scopes if s not in OIDC_SCOPES}
    if len(resources) > 1:
        raise OAuthError(
            "invalid_scope",
            28000,
            "Provide value for the input parameter scope which contains scopes for only one resource.",
        )
    return resources.pop() if resources else GRAPH_RESOURCE


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        return
    digest = _b64(hashlib.sha256((verifier or "").encode()).digest())
    if not verifier or not hmac.compare_digest(digest, challenge):
        raise OAuthError(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )


def _check_assertion(app: App, form: dict[str, str], audience: str) -> None:
    """Verify a private_key_jwt client assertion against the app's certificate."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise _bad_client(50027, "Invalid client_assertion_type.")
    try:
        header_part, claims_part, signature_part = form["client_assertion"].split(".")
        header = json.loads(_unb64(header_part))
        claims = json.loads(_unb64(claims_part))
        signature = _unb64(signature_part)
    except ValueError:
        raise _bad_client(50027, "JWT token is invalid or is malformed.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _bad_client(50027, "JWT token is invalid or is malformed.")
    signed = f"{header_part}.{claims_part}".encode()
    if app.certificate is None or not _signature_ok(app.certificate, header, signed, signature):
        raise _bad_client(700027, "Client assertion contains an invalid signature.")
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise _bad_client(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
    if claims.get("aud") != audience:
        raise _bad_client(50027, f"Invalid JWT token. The audience must be {audience!r}.")
    if float(claims.get("exp", 0)) <= time.time():
        raise _bad_client(700024, "Client assertion is not within its valid time range.")


def _signature_ok(certificate: x509.Certificate, header: dict[str, Any], signed: bytes, signature: bytes) -> bool:
    """RS256 with the certificate's SHA-1 ``x5t`` or PS256 with its SHA-256 ``x5t#S256``."""
    der_sha1 = _b64(certificate.fingerprint(hashes.SHA1()))  # x5t is defined as SHA-1 (RFC 7515)
    der_sha256 = _b64(certificate.fingerprint(hashes.SHA256()))
    key = certificate.public_key()
    schemes: dict[str, tuple[str, str, padding.AsymmetricPadding]] = {
        "RS256": ("x5t", der_sha1, padding.PKCS1v15()),
        "PS256": ("x5t#S256", der_sha256, padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256.digest_size)),
    }
    scheme = schemes.get(str(header.get("alg")))
    thumbprint = str(header.get(scheme[0] if scheme else "")).rstrip("=")  # msal keeps the padding
    if scheme is None or not isinstance(key, rsa.RSAPublicKey) or thumbprint != scheme[1]:
        return False
    try:
        key.verify(signature, signed, scheme[2], hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _bad_client(aadsts: int, description: str) -> OAuthError:
    return OAuthError("invalid_client", aadsts, description, status=401)


def _redirect(uri: str, **params: str | None) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return Response(302, b"", {"Location": f"{uri}{'&' if '?' in uri else '?'}{query}"})


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
