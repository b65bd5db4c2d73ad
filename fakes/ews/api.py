"""The fake Exchange Web Services endpoint: HTTP, Basic auth, the SOAP envelope and dispatch.

Order of checks for a request, as on a real Exchange server:

1. path must be ``/EWS/Exchange.asmx`` (any case), else 404;
2. a tenant mailbox authenticated by Windows authentication (NTLM, or Negotiate falling back to
   NTLM: :mod:`fakes.ews.windows`; the connection stays authenticated) or by Basic when the server
   allows it, else 401 with one ``WWW-Authenticate`` header per scheme offered (``Negotiate``,
   ``NTLM``, ``Basic realm=...``), as IIS answers; an NTLM handshake in progress gets its
   challenge in a 401 of its own;
3. EWS enabled, else **403 Forbidden** (what Exchange Online answers when EWSEnabled is false:
   exchangelib reports it as an error mentioning ``Code: 403``, never as UnauthorizedError);
4. only POST (405 otherwise);
5. throttling set by :meth:`EwsApi.throttle`: SOAP fault ErrorServerBusy with BackOffMilliseconds;
6. RequestServerVersion newer than the server: SOAP fault ErrorInvalidServerVersion (exchangelib
   then tries older versions, which is how it detects the version);
7. the request against the schema's rules (:mod:`fakes.ews.schema`): SOAP fault ErrorSchemaValidation;
8. ExchangeImpersonation: SOAP fault ErrorImpersonateUserDenied without the right,
   ErrorNonExistentMailbox for an unknown user;
9. the operation handler, under the tenant lock.
"""

from __future__ import annotations

import base64
import hmac
import threading
from collections import Counter
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

from fakes.ews import schema
from fakes.ews.operations import HANDLERS, Context
from fakes.ews.soap import SOAP_NS, SoapFault, envelope, fault_envelope, local, t, text_of
from fakes.ews.store import Renderer, Snapshots
from fakes.ews.sync import CreationIndex
from fakes.ews.versions import SERVER_VERSIONS
from fakes.ews.windows import SCHEMES, WindowsAuth
from fakes.server import Request, Response
from fakes.tenant import Mailbox, Tenant, TenantError

EWS_PATH = "/ews/exchange.asmx"
XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
DEFAULT_FIND_CAP = 1000
_IMPERSONATED_ID = ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName")


class EwsApi:
    """The fake EWS over a shared :class:`Tenant`; an instance is a :class:`fakes.server.FakeServer` handler.

    ``version`` is one of :data:`fakes.ews.versions.SERVER_VERSIONS` (Exchange2007_SP1 ...
    Exchange2016). ``enabled=False`` answers authenticated requests with 403 as when EWS is
    switched off. ``find_cap`` is the EWSFindCountLimit: FindItem returns at most that many items
    per call, whatever MaxEntriesReturned asks for. :attr:`calls` counts the operations served.
    ``basic_auth`` offers Basic authentication (an administrator may switch it off);
    ``windows_auth`` the Windows schemes offered (``("Negotiate", "NTLM")``, IIS's default; empty: none).
    :attr:`schemes_used` counts the schemes requests were authenticated with.
    """

    def __init__(
        self,
        tenant: Tenant,
        version: str = "Exchange2016",
        enabled: bool = True,
        find_cap: int = DEFAULT_FIND_CAP,
        *,
        basic_auth: bool = True,
        windows_auth: tuple[str, ...] = SCHEMES,
    ) -> None:
        if version not in SERVER_VERSIONS:
            raise ValueError(f"unknown Exchange version {version!r}; choose one of {sorted(SERVER_VERSIONS)}")
        if not set(windows_auth) <= set(SCHEMES):
            raise ValueError(f"unknown Windows authentication schemes {windows_auth!r}; choose from {SCHEMES}")
        self.tenant = tenant
        self.version = SERVER_VERSIONS[version]
        self.enabled = enabled
        self.find_cap = find_cap
        self.basic_auth = basic_auth
        self.windows_auth = windows_auth
        self.schemes_used: Counter[str] = Counter()
        self._windows = WindowsAuth(tenant)
        self.calls: Counter[str] = Counter()
        self._generation = 1
        self._busy = 0
        self._back_off_ms = 0
        self._lock = threading.Lock()
        self._renderer = Renderer()
        self._snapshots = Snapshots()
        self._creations = CreationIndex()

    # controls ------------------------------------------------------------------------------------
    def throttle(self, n: int, backoff_ms: int) -> None:
        """Make the next ``n`` authenticated requests fail with ErrorServerBusy asking for ``backoff_ms``."""
        with self._lock:
            self._busy, self._back_off_ms = n, backoff_ms

    def invalidate_sync_states(self) -> None:
        """Make every sync state issued so far invalid (ErrorInvalidSyncStateData), forcing a full resync."""
        with self._lock:
            self._generation += 1

    # HTTP ----------------------------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        if request.path.lower() != EWS_PATH:
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        user, scheme, token = self._authenticate(request)
        if user is None:
            return self._unauthorized(scheme, token)
        with self._lock:
            self.schemes_used[scheme] += 1
        if not self.enabled:
            return Response(403, b"403 - Forbidden: EWS is disabled for this mailbox.", {"Content-Type": "text/plain"})
        if request.method != "POST":
            return Response(405, b"Method Not Allowed", {"Allow": "POST", "Content-Type": "text/plain"})
        final = [("WWW-Authenticate", f"{scheme} {token}")] if token else []
        try:
            return Response(200, self._serve(user, request.body), XML_HEADERS, final)
        except SoapFault as fault:
            return Response(500, fault_envelope(fault), XML_HEADERS, final)

    def _unauthorized(self, scheme: str, token: str | None) -> Response:
        """401: the next step of a Windows handshake, or every scheme the server offers."""
        body = b"401 - Unauthorized: Access is denied due to invalid credentials."
        if token:
            return Response(401, body, {"Content-Type": "text/plain"}, [("WWW-Authenticate", f"{scheme} {token}")])
        offered = list(self.windows_auth)
        if self.basic_auth:
            offered.append(f'Basic realm="{self.tenant.domain}"')
        return Response(401, body, {"Content-Type": "text/plain"}, [("WWW-Authenticate", o) for o in offered])

    def _authenticate(self, request: Request) -> tuple[Mailbox | None, str, str | None]:
        """The mailbox the request is authenticated as, the scheme, and a Windows token to send back."""
        header = request.header("authorization") or ""
        scheme = header.partition(" ")[0].lower()
        if not header:
            known = self._windows.principal(request.connection) if self.windows_auth else None
            return (self._user(known[0]), known[1], None) if known else (None, "", None)
        if scheme in {s.lower() for s in self.windows_auth}:
            step = self._windows.step(request.connection, header)
            return (self._user(step.principal) if step.principal else None), step.scheme, step.token
        if scheme == "basic" and self.basic_auth:
            return self._basic(header.partition(" ")[2]), "Basic", None
        return None, "", None

    def _basic(self, token: str) -> Mailbox | None:
        try:
            username, _, password = base64.b64decode(token).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        box = self._user(username)
        if box is None or not box.password or not hmac.compare_digest(box.password, password):
            return None
        return box

    def _user(self, username: str) -> Mailbox | None:
        """A mailbox by SMTP address / UPN, or DOMAIN\\user (resolved in the tenant's domain)."""
        name = username.rpartition("\\")[2]
        if "@" not in name:
            name = f"{name}@{self.tenant.domain}"
        try:
            return self.tenant.mailbox(name)
        except TenantError:
            return None

    # SOAP ----------------------------------------------------------------------------------------
    def _serve(self, user: Mailbox, body: bytes) -> bytes:
        self._check_throttle()
        header, operation = _parse_envelope(body)
        requested = header.get("version") or self.version.name
        if not self.version.accepts(requested):
            raise SoapFault("ErrorInvalidServerVersion", "The specified server version is invalid.")
        name = local(operation.tag)
        schema.check(operation, requested)
        handler = HANDLERS.get(name)
        if handler is None:
            raise SoapFault("ErrorInternalServerError", f"The fake EWS does not implement {name}.")
        with self.tenant.lock:
            context = self._context(self._acting(user, header.get("impersonate")))
            messages = handler(context, operation)
        with self._lock:
            self.calls[name] += 1
        return envelope(name, messages, self.version.header())

    def _check_throttle(self) -> None:
        with self._lock:
            if self._busy <= 0:
                return
            self._busy -= 1
            back_off = self._back_off_ms
        raise SoapFault(
            "ErrorServerBusy",
            "The server cannot service this request right now. Try again later.",
            back_off_ms=back_off,
        )

    def _acting(self, user: Mailbox, impersonate: str | None) -> Mailbox:
        if impersonate is None:
            return user
        if not user.can_impersonate:
            raise SoapFault(
                "ErrorImpersonateUserDenied", "The account does not have permission to impersonate the requested user."
            )
        try:
            return self.tenant.mailbox(impersonate)
        except TenantError as exc:
            raise SoapFault("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.") from exc

    def _context(self, mailbox: Mailbox) -> Context:
        return Context(
            tenant=self.tenant,
            mailbox=mailbox,
            renderer=self._renderer,
            snapshots=self._snapshots,
            creations=self._creations,
            generation=self._generation,
            find_cap=self.find_cap,
        )


def _parse_envelope(body: bytes) -> tuple[dict[str, str | None], Element]:
    """The interesting SOAP headers (requested version, impersonated user) and the operation element."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {exc}") from exc
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    if soap_body is None or len(soap_body) == 0:
        raise SoapFault("ErrorSchemaValidation", "The request has no SOAP Body.")
    header = root.find(f"{{{SOAP_NS}}}Header")
    found: dict[str, str | None] = {"version": None, "impersonate": None}
    if header is not None:
        version = header.find(t("RequestServerVersion"))
        found["version"] = None if version is None else version.get("Version")
        sid = header.find(f"{t('ExchangeImpersonation')}/{t('ConnectingSID')}")
        if sid is not None:
            found["impersonate"] = next((text_of(c) for c in sid if local(c.tag) in _IMPERSONATED_ID), "")
    return found, soap_body[0]
