"""Exchange Server over EWS: individual credentials or impersonation, over Windows authentication or Basic.

The authentication type is the org's choice (``auto``, ``ntlm``, ``basic``): ``auto`` lets
exchangelib pick from what the server offers (its ``WWW-Authenticate`` headers), NTLM before
Basic; ``ntlm`` also answers a server that offers only Negotiate (NTLM inside it).

The org's server (:class:`EwsServer`: endpoint, Exchange version) is plain configuration; the
logins (:class:`EwsLogin`) live only in the vault. Everything is verified against the server
before it is stored (B10), and every failure is translated into one clear sentence.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from abc import abstractmethod
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    UTC,
    Account,
    Build,
    Configuration,
    Credentials,
    Version,
)
from exchangelib import errors as ews_errors
from exchangelib.protocol import Protocol

from framework.contracts import AuthProvider
from framework.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ExsyncError,
    NotAllowed,
    SyncError,
    SyncStateLost,
    TransientError,
)
from framework.settings import Settings
from plugins.ews import tls
from plugins.ews.mapping import register_link
from plugins.ews.store import EwsStore

if TYPE_CHECKING:
    from framework.context import Context
    from framework.state import User

#: Exchange releases one may declare, as the build exchangelib derives the schema version from.
VERSIONS = {"2007": Build(8, 0), "2010": Build(14, 0), "2013": Build(15, 0), "2016": Build(15, 1)}
M365_HOSTS = ("outlook.office365.com", "outlook.office.com")
M365_SUFFIXES = (".office365.com",)
EWS_PATH = "/EWS/Exchange.asmx"
MODES = {"impersonation": "ews-impersonation", "individual": "ews-basic"}
MODE_WORDS = {"impersonation": "impersonation (a service account)", "individual": "individual Exchange credentials"}
#: The authentication types one may choose, as exchangelib's auth_type (None: what the server offers).
AUTH_TYPES: dict[str, str | None] = {"auto": None, "ntlm": NTLM, "basic": BASIC}
AUTH_WORDS = {NTLM: "Windows authentication (NTLM)", BASIC: "Basic authentication"}


# configuration -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EwsServer:
    """The org's Exchange server: where EWS answers and which version it speaks (not secret).

    ``build`` is the declared or detected build ("15.1.0.0"); empty means "detect on first use".
    ``auth_type`` is one of :data:`AUTH_TYPES`; ``auth_used`` the exchangelib type the last
    verification authenticated with (what ``auto`` found, used from then on without asking the
    server again; a new 'exsync auth ews' asks again).
    """

    endpoint: str
    build: str = ""
    api_version: str = ""
    insecure_http: bool = False
    auth_type: str = "auto"
    auth_used: str = ""

    SETTING: ClassVar[str] = "ews_server"

    @classmethod
    def load(cls, ctx: Context) -> EwsServer:
        stored = ctx.state.get_setting(cls.SETTING)
        if not stored:
            raise ConfigurationError(
                "No Exchange server is set up.",
                hint="An administrator runs 'exsync auth ews --endpoint URL --impersonation' or '--individual'.",
            )
        return cls(**stored)

    def save(self, ctx: Context) -> None:
        ctx.state.set_settings({self.SETTING: dataclasses.asdict(self)})

    def version(self) -> Version | None:
        """The exchangelib Version to declare, or None to let exchangelib ask the server."""
        if not self.build:
            return None
        build = Build(*(int(part) for part in self.build.split(".")))
        return Version(build=build, api_version=self.api_version or None)

    def exchangelib_auth_type(self) -> str | None:
        """exchangelib's auth_type: the one chosen, or for ``auto`` the one found when verified (None: ask)."""
        chosen = AUTH_TYPES.get(self.auth_type)
        return chosen if chosen is not None else (self.auth_used or None)

    @property
    def authentication(self) -> str:
        """The authentication in words: the type chosen, and for ``auto`` the one found."""
        chosen = AUTH_TYPES.get(self.auth_type)
        if chosen is not None:
            return AUTH_WORDS[chosen]
        found = AUTH_WORDS.get(self.auth_used)
        return f"auto: {found}" if found else "auto (what the server offers)"

    @property
    def product(self) -> str:
        """The Exchange release's name ("Microsoft Exchange Server 2013"), or "detected on first use"."""
        version = self.version()
        return version.fullname if version is not None else "detected on first use"

    @property
    def host(self) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


@dataclass(frozen=True)
class EwsLogin:
    """An Exchange login: e-mail address, password and (optional) Windows domain."""

    email: str
    password: str = dataclasses.field(repr=False)
    domain: str = ""

    @property
    def username(self) -> str:
        """What Basic authentication sends: ``DOMAIN\\user`` with a domain, else the address (UPN)."""
        return f"{self.domain}\\{self.email.split('@')[0]}" if self.domain else self.email

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def check_endpoint(url: str, insecure_http: bool = False) -> str:
    """The EWS endpoint URL, refused for plain http (unless ``insecure_http``) and Microsoft 365 (B03, B07)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{url!r} is not an EWS URL.", hint=f"Use https://mail.example.com{EWS_PATH}.")
    host = parts.hostname.lower()
    if host in M365_HOSTS or host.endswith(M365_SUFFIXES):
        raise ConfigurationError(
            f"{host} is Microsoft 365 (Exchange Online), which EWS with Basic authentication cannot reach: "
            "Microsoft 365 only accepts OAuth, and Microsoft retired EWS for Exchange Online in October 2026.",
            hint="Connect Microsoft 365 through Microsoft Graph: 'exsync auth graph'. EWS is for Exchange Server.",
        )
    if parts.scheme == "http" and not insecure_http:
        raise ConfigurationError(
            f"{url} is plain http: the password would cross the network unencrypted.",
            hint="Use the https endpoint of the Exchange server (only test servers may use --insecure-http).",
        )
    path = parts.path if parts.path not in ("", "/") else EWS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def declared_version(version: str) -> tuple[str, str]:
    """The build and schema of a declared version (2007/2010/2013/2016); empty for 'auto' (detect)."""
    if version == "auto":
        return "", ""
    try:
        build = VERSIONS[version]
    except KeyError:
        raise ConfigurationError(
            f"{version!r} is not an Exchange version exsync knows.",
            hint=f"Choose one of: {', '.join(VERSIONS)}, or auto.",
        ) from None
    return str(build), build.api_version()


# connections -------------------------------------------------------------------------------------
def connect(ctx: Context, server: EwsServer, login: EwsLogin, mailbox: str, impersonate: bool) -> Account:
    """An exchangelib Account on ``mailbox`` (no network traffic until it is used)."""
    register_link()  # again: another library may have deregistered it since the plugin was imported
    tls.trust(server.endpoint, ctx.tls_verify)
    config = Configuration(
        service_endpoint=server.endpoint,
        credentials=Credentials(login.username, login.password),
        auth_type=server.exchangelib_auth_type(),
        version=server.version(),
    )
    release_protocol(config)
    return Account(
        primary_smtp_address=mailbox,
        config=config,
        autodiscover=False,
        access_type=IMPERSONATION if impersonate else DELEGATE,
        default_timezone=UTC,
    )


class HideAuthorization(logging.Filter):
    """Blanks the Authorization header that exchangelib's debug log prints with each request."""

    PATTERN = re.compile(r"('authorization': )'[^']*'", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = self.PATTERN.sub(r"\1'********'", message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


def hide_authorization() -> None:
    """Install :class:`HideAuthorization` on exchangelib's request logger (idempotent)."""
    logger = logging.getLogger("exchangelib.util")
    if not any(isinstance(f, HideAuthorization) for f in logger.filters):
        logger.addFilter(HideAuthorization())


def release_protocol(config: Configuration) -> None:
    """Close the sessions of exchangelib's cached protocol for ``config`` and forget it."""
    with suppress(KeyError):
        protocol, _created = Protocol[config]
        del Protocol[config]
        if not isinstance(protocol, Exception):
            protocol.close()


def probe(ctx: Context, server: EwsServer, login: EwsLogin, mailbox: str, impersonate: bool) -> EwsServer:
    """Open ``mailbox`` and make one real call; return ``server``, with the version it speaks if undeclared."""
    account = connect(ctx, server, login, mailbox, impersonate)
    try:
        _ = account.root  # one GetFolder, as the mailbox's owner or impersonating it
        version = account.version
        used = str(account.protocol.auth_type)
    except ews_errors.EWSError as exc:
        raise setup_error(exc, server, login, mailbox) from exc
    finally:
        release_protocol(account.protocol.config)
    server = dataclasses.replace(server, auth_used=used)
    if server.build:
        return server  # declared: kept as the administrator said
    return dataclasses.replace(server, build=str(version.build), api_version=version.api_version)


# errors ------------------------------------------------------------------------------------------
_TLS = re.compile(r"ssl|certificate|tls", re.IGNORECASE)
_UNREACHABLE = re.compile(r"connection|refused|resolve|timed out|unreachable|max retries", re.IGNORECASE)
_HTTP_STATUS = re.compile(r"Code: (\d{3})")


def setup_error(exc: Exception, server: EwsServer, login: EwsLogin, mailbox: str) -> ExsyncError:
    """One clear sentence (and a hint) for an exchangelib failure met while setting up."""
    text = str(exc)
    basic = server.exchangelib_auth_type() == BASIC
    if isinstance(exc, ews_errors.UnauthorizedError) and basic and not offers_basic(server):
        return ConfigurationError(
            f"The server {server.host} does not accept Basic authentication (it is switched off there).",
            hint="Use Windows authentication: --auth-type ntlm, or --auth-type auto to use what the server offers.",
        )
    if "Failed to get auth type" in text or "No compatible auth type" in text:
        return ConfigurationError(
            f"The server {server.host} offers no authentication exsync can choose by itself.",
            hint="Name it: --auth-type ntlm (Windows authentication, also behind Negotiate) or --auth-type basic.",
        )
    if isinstance(exc, ews_errors.UnauthorizedError):
        return AuthenticationFailed(
            f"The server {server.host} refused the user name or password of {login.username}.",
            hint="Check the e-mail address, the password and the domain, then try again.",
        )
    if isinstance(exc, ews_errors.ErrorImpersonateUserDenied | ews_errors.ErrorImpersonationDenied):
        return AuthenticationFailed(
            f"{login.email} may not impersonate {mailbox}: the account lacks the ApplicationImpersonation role.",
            hint="Grant it (New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>), "
            "or use individual credentials instead (--individual).",
        )
    if isinstance(exc, ews_errors.ErrorNonExistentMailbox):
        return ConfigurationError(f"There is no mailbox {mailbox} on {server.host}.", hint="Check the address.")
    if isinstance(exc, ews_errors.ErrorAccessDenied) or _http_status(text) in (403, 404):
        return ConfigurationError(
            f"EWS is disabled on {server.host} (or not at {urlsplit(server.endpoint).path}): {_first_line(text)}",
            hint="Enable EWS (Set-OrganizationConfig / Set-CASMailbox -EwsEnabled $true) and check the URL.",
        )
    if isinstance(exc, ews_errors.ErrorInvalidServerVersion | ews_errors.ErrorInvalidSchemaVersionForMailboxVersion):
        return ConfigurationError(
            f"{server.host} does not accept the declared Exchange version.",
            hint="Declare the server's real version, or use --version auto to detect it.",
        )
    if isinstance(exc, ews_errors.TransportError) and _TLS.search(text) and "Unknown failure" not in text:
        return ConfigurationError(
            f"The TLS certificate of {server.host} is not trusted: {_first_line(text)}",
            hint="Pass the CA certificate that issued it with --ca-bundle (or the 'ca_bundle' setting).",
        )
    unexpected_answer = isinstance(exc, ews_errors.MalformedResponseError | ews_errors.ResponseMessageError)
    if isinstance(exc, ews_errors.ErrorTimeoutExpired) or (not unexpected_answer and _UNREACHABLE.search(text)):
        return ConfigurationError(
            f"Cannot reach the Exchange server at {server.host}.",
            hint="Check the endpoint URL, the network and that the server is up.",
        )
    return ConfigurationError(
        f"The Exchange server at {server.host} answered unexpectedly: {_first_line(text)}",
        hint="Check the endpoint URL and the server's EWS configuration.",
    )


def offers_basic(server: EwsServer) -> bool:
    """Whether the server's 401 challenge lists Basic (True when that cannot be found out)."""
    try:
        answer = requests.post(
            server.endpoint,
            data=b"",
            headers={"Content-Type": "text/xml; charset=utf-8"},
            verify=tls.bundle_for(server.endpoint, True),
            timeout=10,
            allow_redirects=False,
        )
    except requests.RequestException:
        return True
    offered = answer.headers.get("WWW-Authenticate", "")
    return answer.status_code != 401 or re.search(r"(^|[\s,])basic\b", offered, re.IGNORECASE) is not None


def sync_error(exc: Exception, server: EwsServer, login: EwsLogin, mailbox: str) -> SyncError:
    """The engine's error for an exchangelib failure met while syncing ``mailbox``."""
    if isinstance(exc, ews_errors.ErrorServerBusy):
        return TransientError(f"{server.host} is busy (throttling).", retry_after=exc.back_off)
    if isinstance(exc, ews_errors.ErrorInvalidSyncStateData):
        return SyncStateLost(f"The EWS sync state of {mailbox} is no longer valid.")
    transient = (
        ews_errors.ErrorInternalServerTransientError,
        ews_errors.ErrorTimeoutExpired,
        ews_errors.ErrorTooManyObjectsOpened,
        ews_errors.ErrorInternalServerError,
    )
    if isinstance(exc, transient) or (_http_status(str(exc)) or 0) in (429, 500, 502, 503, 504):
        return TransientError(f"{server.host} failed temporarily: {_first_line(str(exc))}")
    error = setup_error(exc, server, login, mailbox)
    hint = error.hint
    if isinstance(exc, ews_errors.UnauthorizedError):
        hint = (
            "The stored password may have changed: run 'exsync auth update-password' "
            "(or, if the server's authentication methods changed, 'exsync auth ews' again)."
        )
    return AuthenticationFailed(error.message, hint=hint)


def _http_status(text: str) -> int | None:
    found = _HTTP_STATUS.search(text)
    return int(found.group(1)) if found else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "no details"


# providers ---------------------------------------------------------------------------------------
class EwsProvider(AuthProvider):
    """What both EWS providers share: the org's server, a login from the vault, an :class:`EwsStore`."""

    mode: ClassVar[str]

    def login_name(self, user: User | None) -> str:
        return self.vault_prefix(user) + "login"

    def login(self, ctx: Context, user: User | None) -> EwsLogin | None:
        stored = ctx.vault.get_json(self.login_name(user))
        return EwsLogin(**stored) if stored else None

    def store_login(self, ctx: Context, user: User | None, login: EwsLogin) -> None:
        ctx.vault.put(self.login_name(user), login.as_dict())

    def has_credentials(self, ctx: Context, user: User | None) -> bool:
        return self.login(ctx, user) is not None

    @abstractmethod
    def credentials_for(self, ctx: Context, user: User) -> EwsLogin:
        """The login that opens ``user``'s mailbox; AuthenticationFailed when none is stored."""

    def open(self, ctx: Context, user: User) -> EwsStore:
        server = EwsServer.load(ctx)
        login = self.credentials_for(ctx, user)
        account = connect(ctx, server, login, user.address, impersonate=self.org_wide)

        def translate(exc: Exception) -> SyncError:
            return sync_error(exc, server, login, user.address)

        def adjust(entity: str, record: Any, native: Any) -> None:
            ctx.hook.exsync_adjust_native(entity=entity, side="exchange", record=record, native=native)

        return EwsStore(account, translate=translate, adjust=adjust, release=release_protocol)


class EwsBasic(EwsProvider):
    """Each user stores their own Exchange e-mail, password and domain (B10, B11)."""

    name = "ews-basic"
    description = "Exchange Server (EWS), individual credentials: each user stores their own login."
    org_wide = False
    mode = "individual"

    def credentials_for(self, ctx: Context, user: User) -> EwsLogin:
        login = self.login(ctx, user)
        if login is None:
            raise AuthenticationFailed(
                f"{user.email} has not stored Exchange credentials.",
                hint=f"{user.email} runs 'exsync auth ews --user {user.email} --password' (prompted, hidden).",
            )
        return login


class EwsImpersonation(EwsProvider):
    """A service account with ApplicationImpersonation syncs every enabled user's mailbox (B08)."""

    name = "ews-impersonation"
    description = "Exchange Server (EWS), impersonation: one service account reaches every mailbox."
    org_wide = True
    mode = "impersonation"

    def credentials_for(self, ctx: Context, user: User) -> EwsLogin:
        login = self.login(ctx, None)
        if login is None:
            raise AuthenticationFailed(
                "No Exchange service account is stored.",
                hint="An administrator runs 'exsync auth ews --impersonation --endpoint URL --email ...'.",
            )
        return login


def providers() -> dict[str, EwsProvider]:
    """The two EWS providers by mode."""
    return {"individual": EwsBasic(), "impersonation": EwsImpersonation()}


# the set-up flows (the CLI is a thin layer over these) -----------------------------------------------
def _audit(ctx: Context, action: str, outcome: str, user: User | None = None, **detail: Any) -> None:
    actor = ctx.actor
    ctx.audit.record(action, outcome, actor=actor.email, user_id=(user or actor).crm_id, provider="ews", **detail)


def _claim_mode(ctx: Context, mode: str) -> Settings:
    """The settings, refusing a mode other than the one chosen once (B17)."""
    settings = ctx.settings
    if settings.impersonation_choice and settings.impersonation_choice != mode:
        chosen = MODE_WORDS[settings.impersonation_choice]
        _audit(ctx, "authenticate-org", "refused", reason=f"{chosen} was chosen before", wanted=mode)
        raise NotAllowed(
            f"This org chose {chosen} when it was set up; that choice cannot be changed to {MODE_WORDS[mode]}: "
            "only uninstalling exsync and installing it again resets it.",
            hint="'exsync uninstall', then 'exsync install' (synced data on both sides stays).",
        )
    return settings


def _verified(
    ctx: Context, server: EwsServer, login: EwsLogin, mailbox: str, impersonate: bool, action: str
) -> EwsServer:
    try:
        return probe(ctx, server, login, mailbox, impersonate)
    except ExsyncError as exc:
        _audit(ctx, action, "failed", endpoint=server.endpoint, account=login.email, error=exc.message)
        raise


def configure_server(
    ctx: Context, endpoint: str, version: str, insecure_http: bool, auth_type: str = "auto"
) -> EwsServer:
    """The Exchange server an administrator names, checked first (B03, B07, B09); refusals are audit-logged."""
    try:
        build, api_version = declared_version(version)
        if auth_type not in AUTH_TYPES:
            choices = ", ".join(AUTH_TYPES)
            raise ConfigurationError(
                f"{auth_type!r} is not an authentication type exsync knows.", hint=f"Choose one of: {choices}."
            )
        return EwsServer(check_endpoint(endpoint, insecure_http), build, api_version, insecure_http, auth_type)
    except ConfigurationError as exc:
        _audit(ctx, "authenticate-org", "refused", endpoint=endpoint, reason=exc.message)
        raise


def check_org_endpoint(ctx: Context, endpoint: str, insecure_http: bool) -> None:
    """Refuse a user's ``--endpoint`` other than the org's: only an administrator sets it."""
    configured = EwsServer.load(ctx).endpoint
    if check_endpoint(endpoint, insecure_http) != configured:
        raise NotAllowed(
            f"This org's EWS endpoint is {configured}; only an administrator can change it.",
            hint="Leave out --endpoint to store your own credentials for the org's server.",
        )


def check_org_auth_type(ctx: Context, auth_type: str) -> None:
    """Refuse a user's ``--auth-type`` other than the org's: only an administrator chooses it."""
    configured = EwsServer.load(ctx).auth_type
    if auth_type != configured:
        raise NotAllowed(
            f"This org authenticates to Exchange with --auth-type {configured}; only an administrator can change it.",
            hint="Leave out --auth-type to store your own credentials.",
        )


def setup_impersonation(ctx: Context, server: EwsServer, login: EwsLogin) -> EwsServer:
    """The admin sets up the service account: verified on its own mailbox, then impersonating one user."""
    actor = ctx.require_admin("authenticate-org")
    settings = _claim_mode(ctx, "impersonation")
    server = _verified(ctx, server, login, login.email, False, "authenticate-org")
    server = _verified(ctx, server, login, actor.address, True, "authenticate-org")
    _commit(ctx, settings, server, "impersonation")
    EwsImpersonation().store_login(ctx, None, login)
    _audit(ctx, "authenticate-org", "ok", endpoint=server.endpoint, account=login.email, mode="impersonation")
    return server


def choose_individual(ctx: Context, server: EwsServer) -> None:
    """The admin chooses individual credentials for the org, once (B11, B17)."""
    ctx.require_admin("authenticate-org")
    settings = _claim_mode(ctx, "individual")
    _commit(ctx, settings, server, "individual")
    _audit(ctx, "authenticate-org", "ok", endpoint=server.endpoint, mode="individual")


def _commit(ctx: Context, settings: Settings, server: EwsServer, mode: str) -> None:
    previous = ctx.state.get_setting(EwsServer.SETTING)
    if not server.build and previous and previous["endpoint"] == server.endpoint:
        server = dataclasses.replace(server, build=previous["build"], api_version=previous["api_version"])
    server.save(ctx)
    settings.impersonation_choice = mode
    settings.auth_method = MODES[mode]
    settings.save(ctx.state)


def store_user_login(ctx: Context, user_key: str | None, login_for: Any) -> User:
    """A user stores their own Exchange login (an admin may store anyone's), verified first (B10, B32).

    ``login_for`` builds the login from the target user (its default e-mail is the user's mailbox).
    """
    actor = ctx.require_in_scope("authenticate")
    user = _target_user(ctx, user_key)
    if user.crm_id != actor.crm_id and not actor.is_admin:
        ctx.require_admin("authenticate-other-user")
    if ctx.settings.auth_method != EwsBasic.name:
        raise ConfigurationError(
            "This org does not use individual Exchange credentials.",
            hint="With impersonation nobody stores their own login; otherwise an administrator first runs "
            "'exsync auth ews --individual --endpoint URL'.",
        )
    login: EwsLogin = login_for(user)
    server = EwsServer.load(ctx)
    try:
        verified = probe(ctx, server, login, user.address, impersonate=False)
    except ExsyncError as exc:
        _audit(ctx, "authenticate", "failed", user, account=login.email, error=exc.message)
        raise
    if verified != server:  # the version or the authentication found on first use
        verified.save(ctx)
    EwsBasic().store_login(ctx, user, login)
    _audit(ctx, "authenticate", "ok", user, account=login.email, mode="individual")
    return user


def update_password(ctx: Context, password: str, user_key: str | None = None) -> str:
    """Replace a stored password after verifying it: the service account's (admins, impersonation) or a user's own."""
    actor = ctx.require_in_scope("update-password")
    mode = ctx.settings.impersonation_choice
    if mode == "impersonation":
        ctx.require_admin("update-the-service-account-password")
        owner: User | None = None
        mailbox = actor.address
    else:
        owner = _target_user(ctx, user_key)
        if owner.crm_id != actor.crm_id:
            ctx.require_admin("update-another-user's-password")
        mailbox = owner.address
    provider = providers()[mode or "individual"]
    old = provider.login(ctx, owner)
    if old is None:
        raise ConfigurationError(
            "There is no stored Exchange login whose password could be updated.",
            hint="Store one first with 'exsync auth ews'.",
        )
    login = dataclasses.replace(old, password=password)
    server = EwsServer.load(ctx)
    try:
        probe(ctx, server, login, mailbox, impersonate=owner is None)
    except ExsyncError as exc:
        _audit(ctx, "update-password", "failed", owner, account=login.email, error=exc.message)
        raise
    provider.store_login(ctx, owner, login)
    if owner is not None and owner.needs_attention:
        ctx.state.update_user(owner.crm_id, needs_attention="")
    _audit(ctx, "update-password", "ok", owner, account=login.email)
    return login.email


def _target_user(ctx: Context, user_key: str | None) -> User:
    if user_key in (None, "", "me"):
        return ctx.actor
    user = ctx.state.user(user_key)
    if user is None:
        raise NotAllowed(f"{user_key!r} is not a user of the CRM org.", hint="Check the address ('exsync users list').")
    return user
