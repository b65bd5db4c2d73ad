"""A small httpx client for the Zoho CRM v8 API, as the CRM plugin needs it.

It refreshes its access token with the refresh-token grant at ``{accounts_url}/oauth/v2/token``,
calls the API at the ``api_domain`` the token reply names, refreshes once more when a call
answers 401 ``INVALID_TOKEN``, and turns the service's failures into the exsync error
taxonomy: throttling and server trouble are :class:`TransientError` (with the wait
``Retry-After`` asks for, or :data:`THROTTLE_WAIT` after Zoho's ``TOO_MANY_REQUESTS``),
refused credentials :class:`AuthenticationFailed`, anything else :class:`CrmApiError`.
One :class:`httpx.Client` with keep-alive serves every call.

Listings follow v8's paging: ``page`` and ``per_page`` (at most 200) reach the first 2,000
records; the ``next_page_token`` of a page's ``info`` reaches the rest, so the client follows
the token whenever a page gives one. Record reads always name their ``fields`` (v8 requires
it), and If-Modified-Since is sent in Zoho's format (``2019-07-25T15:26:49+05:30``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from framework.errors import AuthenticationFailed, SyncError, TransientError
from framework.tls import certificate_error, ssl_context
from plugins.crm.mapping import format_time

API_ROOT = "/crm/v8"
PER_PAGE = 200
MAX_WRITE = 100
MAX_CRITERIA = 10  # Zoho's limit of criteria in one search
MAX_IN_VALUES = 50  # Zoho's limit of values in one COQL "in"
MAX_IN_CLAUSES = 10  # "in" criteria one COQL query joins with "or" (Zoho allows 25 criteria)
MAX_SELECT_VALUES = MAX_IN_VALUES * MAX_IN_CLAUSES
THROTTLE_WAIT = 2.0  # seconds to wait after Zoho's TOO_MANY_REQUESTS, which carries no Retry-After
PER_RECORD_KEYS = ("data", "Emails", "fields")  # where v8 reports each item's outcome
LOGIN_HINT = "Run 'exsync crm login' again with a new refresh token."
CLIENT_HINT = "Check the client id and client secret of the CRM's OAuth client."


class CrmApiError(SyncError):
    """The CRM refused a call as a whole (``code`` is Zoho's error code)."""

    def __init__(self, message: str, code: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or {}


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``served_at`` is the CRM's clock (its Date header) when it answered."""

    records: list[dict[str, Any]]
    more: bool
    served_at: datetime | None = None


class CrmClient:
    """Zoho CRM v8 over one keep-alive connection pool; ``verify`` is a CA bundle path or a bool."""

    def __init__(
        self,
        accounts_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        verify: str | bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.accounts_url = accounts_url.rstrip("/")
        self._grant = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        self._http = httpx.Client(verify=ssl_context(verify), timeout=timeout, trust_env=False)
        self._token = ""
        self.api_domain = ""

    def close(self) -> None:
        self._http.close()

    # auth ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Get a new access token with the refresh token; AuthenticationFailed if refused."""
        reply = self._send("POST", f"{self.accounts_url}/oauth/v2/token", data=self._grant)
        body = _json(reply)
        if reply.status_code >= 400 or "error" in body or "access_token" not in body:
            error = body.get("error") or body.get("code") or f"HTTP {reply.status_code}"
            hint = CLIENT_HINT if error == "invalid_client" else LOGIN_HINT
            raise AuthenticationFailed(f"The CRM refused the login ({error}).", hint=hint)
        self._token = str(body["access_token"])
        self.api_domain = str(body.get("api_domain") or self.accounts_url).rstrip("/")

    # the generic call ---------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        per_record: bool = False,
    ) -> dict[str, Any]:
        """Call ``/crm/v8/{path}``; 204 gives ``{}``. With ``per_record``, a 400 that reports
        each item's outcome (in ``data``, ``Emails`` or ``fields``) is returned instead of raised."""
        return _result(self._authorized(method, path, params, body, headers), per_record)

    def _authorized(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any, headers: dict[str, str] | None
    ) -> httpx.Response:
        if not self._token:
            self.refresh()
        reply = self._api(method, path, params, body, headers)
        if reply.status_code == 401 and _json(reply).get("code") == "INVALID_TOKEN":
            self.refresh()
            reply = self._api(method, path, params, body, headers)
        return reply

    def _api(
        self, method: str, path: str, params: dict[str, Any] | None, body: Any, headers: dict[str, str] | None
    ) -> httpx.Response:
        auth = {"Authorization": f"Zoho-oauthtoken {self._token}", **(headers or {})}
        return self._send(method, f"{self.api_domain}{API_ROOT}/{path}", params=params, json=body, headers=auth)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            reply = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            untrusted = certificate_error(httpx.URL(url).host, exc)
            if untrusted is not None:
                raise untrusted from exc
            raise TransientError(f"The CRM could not be reached ({type(exc).__name__}).") from exc
        if reply.status_code in (429, 503):
            raise TransientError(
                f"The CRM is throttling requests (HTTP {reply.status_code}{_code(reply)}).",
                retry_after=_throttle_wait(reply),
            )
        if reply.status_code >= 500:
            raise TransientError(f"The CRM had a server error (HTTP {reply.status_code}).")
        return reply

    # org and users ------------------------------------------------------------------------
    def org(self) -> dict[str, Any]:
        orgs = self.call("GET", "org").get("org") or [{}]
        result: dict[str, Any] = orgs[0]
        return result

    def users(self, kind: str = "AllUsers") -> list[dict[str, Any]]:
        """Users of ``kind`` (AllUsers, ActiveUsers, AdminUsers, CurrentUser...), every page."""
        found: list[dict[str, Any]] = []
        for page in self._pages("users", {"type": kind}, key="users"):
            found.extend(page.records)
        return found

    def current_user(self) -> dict[str, Any]:
        users = self.users("CurrentUser")
        if not users:
            raise AuthenticationFailed("The CRM did not say who this login belongs to.", hint=LOGIN_HINT)
        return users[0]

    # records ------------------------------------------------------------------------------
    def list_modified(self, module: str, fields: Sequence[str], since: datetime | None = None) -> Iterator[Page]:
        """Pages of ``module``'s records (with ``id`` and ``fields``) modified at or after
        ``since`` (all when None), newest first.

        Newest first, a record changed while the pages are read moves to a page already read
        (it is seen next time) instead of pushing an unread record onto one (missing it)."""
        params = {"fields": ",".join(fields), "sort_by": "Modified_Time", "sort_order": "desc"}
        return self._pages(module, params, headers=_modified_since(since))

    def deleted(self, module: str, since: datetime | None = None) -> Iterator[Page]:
        """Pages of ``module``'s deleted-record entries (id, deleted_time...) since ``since``."""
        return self._pages(f"{module}/deleted", {"type": "all"}, headers=_modified_since(since))

    def get(self, module: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One record with ``id`` and ``fields``; None if there is no such record."""
        try:
            reply = self.call("GET", f"{module}/{record_id}", params={"fields": ",".join(fields)})
        except CrmApiError as exc:
            if exc.code == "INVALID_DATA" and exc.details.get("api_name") == "id":
                return None
            raise
        records = reply.get("data") or [None]
        return records[0]

    def get_many(self, module: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """The records of ``ids`` (at most :data:`MAX_WRITE`) that exist, with ``id`` and ``fields``:
        one ``GET /{module}?ids=`` call."""
        _check_size(ids)
        if not ids:
            return []
        reply = self.call("GET", module, params={"ids": ",".join(ids), "fields": ",".join(fields)})
        found: list[dict[str, Any]] = reply.get("data") or []
        return found

    def insert(self, module: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create up to 100 records; one outcome per record, in order."""
        return self._write("POST", module, {"data": list(records), "trigger": []})

    def update(self, module: str, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Update up to 100 records (each carries its ``id``); one outcome per record."""
        return self._write("PUT", module, {"data": list(records), "trigger": []})

    def upsert(
        self, module: str, records: Sequence[dict[str, Any]], duplicate_check_fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Insert or update up to 100 records matched on ``duplicate_check_fields``."""
        body = {"data": list(records), "duplicate_check_fields": list(duplicate_check_fields), "trigger": []}
        return self._write("POST", f"{module}/upsert", body)

    def delete(self, module: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Delete up to 100 records; one outcome per id, in order."""
        _check_size(ids)
        reply = self.call("DELETE", module, params={"ids": ",".join(ids)}, per_record=True)
        return _outcomes(reply, len(ids))

    def search(self, module: str, *, email: str) -> list[dict[str, Any]]:
        """Records of ``module`` whose Email is ``email`` (any case)."""
        found: list[dict[str, Any]] = []
        for page in self._pages(f"{module}/search", {"email": email, "fields": "Email"}):
            found.extend(page.records)
        return found

    def search_any(
        self, module: str, field: str, values: Sequence[str], columns: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Records of ``module`` whose ``field`` equals any of ``values`` (at most
        :data:`MAX_CRITERIA`), in one search: ``criteria=((F:equals:a)or(F:equals:b)...)``.
        Zoho wants ``(``, ``)`` and ``,`` in a value escaped with a backslash. Records come with
        ``id``, ``field`` and ``columns``."""
        if len(values) > MAX_CRITERIA:
            raise ValueError(f"at most {MAX_CRITERIA} criteria per search, got {len(values)}")
        criteria = "or".join(f"({field}:equals:{_escape(v)})" for v in values)
        found: list[dict[str, Any]] = []
        fields = ",".join(dict.fromkeys((field, *columns)))
        for page in self._pages(f"{module}/search", {"criteria": f"({criteria})", "fields": fields}):
            found.extend(page.records)
        return found

    def select_in(
        self, module: str, field: str, values: Sequence[str], columns: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Records of ``module`` whose ``field`` is one of ``values`` (at most
        :data:`MAX_SELECT_VALUES`, each :func:`quotable`), with ``id`` and ``columns``: one COQL
        query (``POST /crm/v8/coql``) for every 200 records found, its ``in`` criteria of
        :data:`MAX_IN_VALUES` joined by ``or``."""
        if len(values) > MAX_SELECT_VALUES or not all(map(quotable, values)):
            raise ValueError(f"at most {MAX_SELECT_VALUES} values without quotes or backslashes, got {values!r}")
        quoted = [f"'{value}'" for value in values]
        criteria = [
            f"{field} in ({', '.join(quoted[start : start + MAX_IN_VALUES])})"
            for start in range(0, len(quoted), MAX_IN_VALUES)
        ]
        head = f"select {', '.join(('id', *columns))} from {module} where {_any_of(criteria)} limit {PER_PAGE}"
        found: list[dict[str, Any]] = []
        while True:
            reply = self.call("POST", "coql", body={"select_query": f"{head} offset {len(found)}"})
            records = reply.get("data") or []
            found.extend(records)
            if not records or not (reply.get("info") or {}).get("more_records"):
                return found

    def related_emails(self, module: str, record_id: str, owner_id: str) -> Iterator[dict[str, Any]]:
        """The mails in a record's Emails related list (``GET /{module}/{id}/Emails``), as
        ``owner_id`` sees them, every page (v8 pages it by ``index``)."""
        params: dict[str, Any] = {"owner_id": owner_id}
        while True:
            reply = self.call("GET", f"{module}/{record_id}/Emails", params=params)
            yield from reply.get("Emails") or []
            info = reply.get("info") or {}
            if not info.get("more_records") or not info.get("next_index"):
                return
            params = {"owner_id": owner_id, "index": info["next_index"]}

    def associate_email(self, module: str, record_id: str, email: dict[str, Any]) -> dict[str, Any]:
        """Associate one mail with a record (``POST /{module}/{id}/actions/associate_email``,
        scope ``ZohoCRM.modules.emails.ALL``); its outcome (``details.message_id`` on success)."""
        reply = self.call(
            "POST", f"{module}/{record_id}/actions/associate_email", body={"Emails": [email]}, per_record=True
        )
        return _outcomes(reply, 1, key="Emails")[0]

    def fields(self, module: str) -> list[dict[str, Any]]:
        """The field metadata of ``module`` (``GET /settings/fields?module=``)."""
        found: list[dict[str, Any]] = self.call("GET", "settings/fields", params={"module": module}).get("fields") or []
        return found

    def create_field(self, module: str, label: str, data_type: str, length: int) -> dict[str, Any]:
        """Create a custom field with Zoho's Create Custom Fields API (``POST /settings/fields``,
        scope ``ZohoCRM.settings.fields.ALL``); its outcome."""
        body = {"fields": [{"field_label": label, "data_type": data_type, "length": length}]}
        reply = self.call("POST", "settings/fields", params={"module": module}, body=body, per_record=True)
        return _outcomes(reply, 1, key="fields")[0]

    def _write(self, method: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        _check_size(body["data"])
        return _outcomes(self.call(method, path, body=body, per_record=True), len(body["data"]))

    def _pages(
        self, path: str, params: dict[str, Any], *, key: str = "data", headers: dict[str, str] | None = None
    ) -> Iterator[Page]:
        """Every page of a listing: by page number, or by the page token the last page gave."""
        position: dict[str, Any] = {"page": 1}
        while True:
            answer = self._authorized("GET", path, {**params, **position, "per_page": PER_PAGE}, None, headers)
            reply = _result(answer, per_record=False)
            records = reply.get(key) or []
            info = reply.get("info") or {}
            more = bool(info.get("more_records")) and bool(records)
            yield Page(records, more, _served_at(answer))
            if not more:
                return
            token = info.get("next_page_token")
            position = {"page_token": token} if token else {"page": int(info.get("page") or position["page"]) + 1}


def _modified_since(since: datetime | None) -> dict[str, str] | None:
    """The If-Modified-Since header for ``since``, in Zoho's format, to the second (rounded
    down, so nothing modified within that second is missed)."""
    return {"If-Modified-Since": str(format_time(since))} if since else None


def quotable(value: str) -> bool:
    """Whether ``value`` can be a COQL string literal as it is: no quote or backslash to escape."""
    return "'" not in value and "\\" not in value


def _any_of(criteria: Sequence[str]) -> str:
    """COQL criteria joined by ``or``, bracketed two at a time as Zoho wants: ``(A or (B or C))``."""
    return criteria[0] if len(criteria) == 1 else f"({criteria[0]} or {_any_of(criteria[1:])})"


def _served_at(reply: httpx.Response) -> datetime | None:
    try:
        return parsedate_to_datetime(reply.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None


def _result(reply: httpx.Response, per_record: bool) -> dict[str, Any]:
    if reply.status_code == 204 or not reply.content:
        return {}
    body = _json(reply)
    if reply.status_code < 400 or (per_record and any(isinstance(body.get(k), list) for k in PER_RECORD_KEYS)):
        return body
    code = str(body.get("code") or "")
    if code in ("INVALID_TOKEN", "AUTHENTICATION_FAILURE", "OAUTH_SCOPE_MISMATCH"):
        raise AuthenticationFailed(f"The CRM refused the access token ({code}).", hint=LOGIN_HINT)
    message = str(body.get("message") or reply.reason_phrase)
    raise CrmApiError(f"The CRM refused the call: {code or reply.status_code} ({message}).", code, body.get("details"))


def _outcomes(reply: dict[str, Any], expected: int, key: str = "data") -> list[dict[str, Any]]:
    data = reply.get(key)
    if not isinstance(data, list) or len(data) != expected:
        raise CrmApiError(f"The CRM answered {len(data or [])} outcomes for {expected} records.")
    return data


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")


def _check_size(items: Sequence[Any]) -> None:
    if len(items) > MAX_WRITE:
        raise ValueError(f"at most {MAX_WRITE} records per call, got {len(items)}")


def _json(reply: httpx.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(reply: httpx.Response) -> str:
    code = _json(reply).get("code")
    return f", {code}" if code else ""


def _throttle_wait(reply: httpx.Response) -> float | None:
    """How long to wait before calling again: the Retry-After, else :data:`THROTTLE_WAIT` for
    Zoho's ``TOO_MANY_REQUESTS`` (too many concurrent calls, or the API credits spent), which
    names no wait and means the call was refused unprocessed, so it is safe to repeat."""
    asked = _retry_after(reply.headers.get("Retry-After"))
    if asked is None and reply.status_code == 429 and _json(reply).get("code") == "TOO_MANY_REQUESTS":
        return THROTTLE_WAIT
    return asked


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None
