"""The fake CRM's wire layer: Zoho CRM v8 routes over a :class:`~fakes.crm.model.CrmOrg`.

Routes (JSON throughout; every ``/crm/v8`` route needs ``Authorization: Zoho-oauthtoken <at>``;
any other version, ``/crm/v2`` included, is a 404 ``INVALID_URL_PATTERN``):

- ``POST /oauth/v2/token``: the refresh grant, with parameters in a form body or the query.
- ``GET /crm/v8/org``, ``GET /crm/v8/users?type=AllUsers|ActiveUsers|DeactiveUsers|AdminUsers|CurrentUser``.
- ``GET|POST|PUT|DELETE /crm/v8/{Module}``: list (``fields``, ``page``, ``per_page``,
  ``page_token``, ``sort_order``, header ``If-Modified-Since``; or ``ids=a,b``: those
  records), insert, update, delete (``ids=a,b``).
- ``POST /crm/v8/{Module}/upsert``, ``GET /crm/v8/{Module}/deleted``,
  ``GET /crm/v8/{Module}/search?email=|criteria=``, ``GET|PUT|DELETE /crm/v8/{Module}/{id}``,
  ``GET /crm/v8/{Module}/{id}/Emails?owner_id=&index=`` (the Emails related list),
  ``POST /crm/v8/{Module}/{id}/actions/associate_email``.
- ``GET|POST /crm/v8/settings/fields?module=``: field metadata, Create Custom Fields.
- ``POST /crm/v8/coql`` with ``{"select_query": "select A, B from Module where F in ('a', 'b')
  limit 200 offset 0"}``: criteria ``F = 'a'`` and ``F in (...)`` (at most 50 values) joined
  by ``or``, bracketed two at a time (``(A or (B or C))``), at most 25: the COQL exsync sends;
  ``id`` is the record's id.

v8's rules for reading records (Zoho's v8 OpenAPI ``record.json`` and the Get Records page):

- ``fields`` is required on every record read (list, one record): without it 400
  ``REQUIRED_PARAM_MISSING`` ``{"param": "fields"}``; more than 50 is 400 ``LIMIT_EXCEEDED``.
  A record comes with ``id`` and the fields asked for (null when empty).
- ``page``/``per_page`` reach the first 2,000 records; a page beyond is 400
  ``DISCRETE_PAGINATION_LIMIT_EXCEEDED``. Every page with more after it carries
  ``info.next_page_token`` (and ``page_token_expiry``, a day later); ``page_token`` continues
  that listing (same module, order and If-Modified-Since) past 2,000. ``page`` with
  ``page_token`` is 400; an unknown, foreign or expired token is 400 ``INVALID_DATA``.
- If-Modified-Since is accepted only in Zoho's format, ``2019-07-25T15:26:49+05:30``; an HTTP
  date, a fraction of a second or a missing offset is 400 ``INVALID_DATA``.
- Every error is ``{"code", "details", "message", "status": "error"}``.

v8's rules for writing (``fields.json``, ``record.json``, ``associate_email.json``; the checks
themselves are in :mod:`fakes.crm.fields`):

- Each module has field metadata (:data:`~fakes.crm.fields.STANDARD_FIELDS` plus custom
  fields); ``GET /settings/fields?module=`` lists it (``module`` missing: 400
  ``REQUIRED_PARAM_MISSING``; ``Emails`` or any other unknown module: ``INVALID_MODULE``).
  ``POST /settings/fields?module=`` creates custom fields (``field_label``, ``data_type``,
  ``length``; the API name is the label's words joined by ``_``): 201, or per field
  ``MANDATORY_NOT_FOUND``, ``INVALID_DATA``, ``DUPLICATE_DATA`` (the name is taken).
- Every written value is checked against its field: ``INVALID_DATA`` with ``api_name`` and
  ``expected_data_type`` (and ``maximum_length`` when too long); a mandatory field missing is
  ``MANDATORY_NOT_FOUND``; a unique field's value taken is ``DUPLICATE_DATA``. A field name the
  module does not have is ignored: not stored, not echoed (unconfirmed: see the note below).
- ``Recurring_Activity`` (Events) is Zoho's ``Recurring_Activity`` object of ``RRULE`` and
  ``EXDATE`` strings: ``RRULE`` is required and must be a well-formed rule, ``EXDATE`` is
  optional; anything else is per record ``INVALID_DATA`` with ``api_name`` (the key refused:
  ``Recurring_Activity``, ``RRULE`` or ``EXDATE``), ``json_path``
  (``$.data[1].Recurring_Activity.EXDATE``) and ``expected_data_type``.
- There is no Emails module (``INVALID_MODULE``): a mail is associated with a Contact, Lead,
  Account or Deal (``associate_email``: ``from``, ``to``, ``original_message_id``, ``sent``,
  ``date_time`` required, ``subject`` 1 to 250 characters) and listed in the record's Emails
  related list, which needs ``owner_id``. An account's list shows its contacts' mails, a
  deal's those of its contact and account's contacts. Each association is stored: the fake
  does not merge two associations of the same Message-ID.
- Upsert's ``duplicate_check_fields`` may name only the module's system duplicate-check
  fields (Email for Contacts and Leads, Account_Name, Deal_Name) and its unique fields;
  anything else is a top-level 400 ``INVALID_DATA``.
- Throttling is Zoho's (:class:`~fakes.crm.model.ApiLimits`): more concurrent calls than the
  edition allows (Free 5, Standard 10, Professional 15, Enterprise 20, Ultimate 25), more
  than 10 concurrent COQL queries (a sub-concurrency limit), or more calls than the org's API
  credits in 24 hours, is 429 ``TOO_MANY_REQUESTS`` without Retry-After.

Choices where Zoho's documentation is vague, and simplifications:

- The org object carries the edition both as ``license_details.paid_type`` and as a
  top-level ``edition``. The SalesInbox flag is ``sales_inbox_enabled``.
- Listings are in modification order, oldest first. ``sort_order=desc`` reverses this.
  ``sort_by`` accepts only ``Modified_Time``. ``per_page`` is clamped to 1..200.
  An empty listing is ``204`` with no body.
- If-Modified-Since selects changes at or after that instant.
- Writes take at most 100 records. Each record gets its own status in ``data``. The HTTP
  status is 201 when a record was inserted, 200 when records were only updated, and 400
  when every record failed. Deletes answer 200 (400 if all failed).
- An unknown record id is a top-level 400 ``INVALID_DATA``. An unknown module is a 400
  ``INVALID_MODULE``. Any other unknown route is a 404 ``INVALID_URL_PATTERN``.
- Token endpoint errors are HTTP 200 ``{"error": "invalid_code" | "invalid_client" |
  "unsupported_grant_type"}``, as Zoho answers them.
- Search supports ``email`` (the Email field) and ``criteria`` made of at most 10 ``equals``
  conditions joined all by ``and`` or all by ``or`` (Zoho's limit is 10 criteria; it also
  allows mixing, nested). Matching ignores case.
- COQL takes only the shape above (keywords in any case; quoted values without quotes or
  backslashes inside): anything else is 400 ``SYNTAX_ERROR``. ``in`` takes at most 50 values
  and ``limit`` at most 2,000 (v8's limits), more is 400 ``LIMIT_EXCEEDED``. Records come in id
  order with ``id`` and the selected fields; ``info`` has ``count`` and ``more_records``.
- Not confirmed in Zoho's documents, and chosen here: a field name the module does not have
  is ignored; the codes and details of a wrong If-Modified-Since, of ``page`` past 2,000
  records (``DISCRETE_PAGINATION_LIMIT_EXCEEDED``), of a refused ``duplicate_check_fields``
  and of throttling (``TOO_MANY_REQUESTS`` with empty details; Zoho may name the credits
  differently); that a picklist value not in the list is refused (Zoho may keep unrestricted
  picklists open); that the Emails related list of an account shows its contacts' mails and
  that of a deal those of its contact and account (Zoho documents a deal's list as the mails
  linked to the deal, with its contacts' mails in a second view); that associating the same
  Message-ID twice stores it twice. Zoho's Create Custom Fields API takes many more data
  types and properties than the nine types here.
- Not confirmed either (Zoho's spec gives ``RRULE`` and ``EXDATE`` as plain strings and
  documents neither format, nor anything for a changed single occurrence of a series):
  ``EXDATE`` is ``yyyy-MM-dd`` dates separated by commas (empty: none); an ``RRULE`` is
  ``NAME=VALUE`` parts joined by ``;``, each part once, from FREQ, INTERVAL, COUNT, UNTIL,
  BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, BYYEARDAY, BYWEEKNO, WKST and DTSTART, with FREQ
  one of DAILY, WEEKLY, MONTHLY, YEARLY (what Zoho's calendar repeats by), COUNT and
  INTERVAL positive, not both COUNT and UNTIL, UNTIL and DTSTART ``yyyy-MM-dd`` or
  ``yyyyMMdd[THHmmss[Z]]``, and the rest as RFC 5545 reads it; a refused key is
  ``INVALID_DATA`` (Zoho may say ``MANDATORY_NOT_FOUND`` for a missing ``RRULE``). The fake
  stores the object as written and expands nothing: a series is one record, as exsync
  reads it. ``GET /{Module}?ids=`` lists the records that exist and leaves unknown ids out,
  takes at most 100 ids (more is ``LIMIT_EXCEEDED``) and comes in one page in the order
  asked; COQL ``where id in (...)`` selects by id as other fields.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fakes.crm.model import CrmError, CrmOrg, CrmUser, Page, paginate
from fakes.server import Request, Response

API_VERSION = "v8"
MAX_PER_PAGE = 200
MAX_PAGED_RECORDS = 2000  # records reachable with page/per_page; page_token goes further
MAX_FIELDS = 50  # field API names one read may ask for
PAGE_TOKEN_LIFETIME = timedelta(days=1)
MAX_RECORDS_PER_CALL = 100
MAX_CRITERIA = 10
MAX_IN_VALUES = 50
_VALUE = r"'[^'\\]*'"
MAX_COQL_CRITERIA = 25
MAX_COQL_LIMIT = 2000
_SELECT = re.compile(
    r"\s*select\s+(?P<columns>\w+(?:\s*,\s*\w+)*)\s+from\s+(?P<module>\w+)\s+where\s+(?P<where>.+?)"
    r"(?:\s+limit\s+(?P<limit>\d+))?(?:\s+offset\s+(?P<offset>\d+))?\s*",
    re.IGNORECASE | re.DOTALL,
)
_COQL_CRITERION = re.compile(
    rf"\s*(?P<field>\w+)\s*(?:=\s*(?P<one>{_VALUE})|in\s*\((?P<many>\s*{_VALUE}(?:\s*,\s*{_VALUE})*)\s*\))",
    re.IGNORECASE,
)
_OR = re.compile(r"\s*or\b", re.IGNORECASE)
_HTTP_STATUS = {"INVALID_TOKEN": 401, "INVALID_URL_PATTERN": 404, "TOO_MANY_REQUESTS": 429}
# Zoho's date-time format for If-Modified-Since: ISO 8601 to the second, with an offset
_ZOHO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
_WRITE_DETAILS = ("Modified_Time", "Modified_By", "Created_Time", "id", "Created_By")
_CRITERION = re.compile(r"(\w+):(\w+):(.*)", re.DOTALL)
_USER_FILTERS: dict[str, Callable[[CrmUser, CrmUser], bool]] = {
    "AllUsers": lambda user, me: True,
    "ActiveUsers": lambda user, me: user.status == "active",
    "DeactiveUsers": lambda user, me: user.status != "active",
    "AdminUsers": lambda user, me: user.is_admin,
    "CurrentUser": lambda user, me: user.id == me.id,
}

_Apply = Callable[[dict[str, Any]], tuple[str, dict[str, Any], str | None]]


@dataclass
class _Call:
    """A CRM call after routing: who asks, about which module (and record)."""

    request: Request
    user: CrmUser
    module: str
    record_id: str = ""


class CrmApi:
    """The handler to give :class:`~fakes.server.FakeServer`: Zoho CRM v8 over ``org``."""

    def __init__(self, org: CrmOrg) -> None:
        self.org = org
        self._tokens = _PageTokens()
        self._routes: dict[tuple[str, ...], Callable[[_Call], Response]] = {
            ("GET",): self._list,
            ("POST",): self._insert,
            ("PUT",): self._update,
            ("DELETE",): self._delete,
            ("POST", "upsert"): self._upsert,
            ("GET", "deleted"): self._deleted,
            ("GET", "search"): self._search,
            ("GET", "{id}"): self._get,
            ("PUT", "{id}"): self._update_one,
            ("DELETE", "{id}"): self._delete_by_id,
            ("GET", "{id}", "Emails"): self._emails,
            ("POST", "{id}", "actions", "associate_email"): self._associate_email,
        }

    def __call__(self, request: Request) -> Response:
        try:
            if not request.path.startswith("/crm/"):
                return self._dispatch(request)
            heavy = request.path.rstrip("/").endswith("/coql")
            self.org.limits.begin(heavy)
            try:
                return self._dispatch(request)
            finally:
                self.org.limits.end(heavy)
        except CrmError as exc:
            return Response.json(exc.payload(), status=_HTTP_STATUS.get(exc.code, 400))

    def _dispatch(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["oauth", "v2", "token"] and request.method == "POST":
            return self._token(request)
        if parts[:2] != ["crm", API_VERSION] or len(parts) < 3:
            raise _bad_url()
        user = self._authenticate(request)
        head, rest = parts[2], parts[3:]
        if request.method == "GET" and not rest and head in ("org", "users"):
            return self._org() if head == "org" else self._users(request, user)
        if request.method == "POST" and not rest and head == "coql":
            return self._coql(request)
        if head == "settings" and rest == ["fields"] and request.method in ("GET", "POST"):
            return self._fields(request) if request.method == "GET" else self._create_fields(request)
        module = self.org.module_name(head)
        shape = (request.method, *("{id}" if p.isdigit() else p for p in rest))
        route = self._routes.get(shape)
        if route is None:
            raise _bad_url()
        return route(_Call(request, user, module, rest[0] if rest else ""))

    # OAuth and org -----------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        params = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        params.update({k: v[0] for k, v in request.query.items()})
        if params.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type"})
        try:
            token = self.org.refresh_access_token(
                params.get("client_id", ""), params.get("client_secret", ""), params.get("refresh_token", "")
            )
        except CrmError as exc:
            return Response.json({"error": exc.code})
        return Response.json(
            {
                "access_token": token,
                "api_domain": request.base_url,
                "token_type": "Bearer",
                "expires_in": self.org.token_lifetime,
            }
        )

    def _authenticate(self, request: Request) -> CrmUser:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme != "Zoho-oauthtoken" or not token.strip():
            raise CrmError("INVALID_TOKEN", "invalid oauth token")
        return self.org.authenticate(token.strip())

    def _org(self) -> Response:
        org = self.org
        users = org.users()
        license_details = {
            "paid": org.edition != "Free",
            "paid_type": org.edition,
            "users_license_purchased": len(users),
            "trial_type": None,
            "paid_expiry": None,
        }
        resource = {
            "id": org.id,
            "company_name": org.name,
            "primary_email": org.admin.email,
            "time_zone": str(org.tz),
            "edition": org.edition,
            "license_details": license_details,
            "sales_inbox_enabled": org.sales_inbox,
            "zgid": org.id,
        }
        return Response.json({"org": [resource]})

    def _users(self, request: Request, me: CrmUser) -> Response:
        kind = request.arg("type") or "AllUsers"
        keep = _USER_FILTERS.get(kind)
        if keep is None:
            raise CrmError("INVALID_DATA", "invalid data", {"param": "type"})
        users = [u.resource() for u in self.org.users() if keep(u, me)]
        page, per_page = _paging(request)
        return _page_response(paginate(users, page, per_page), page, per_page, "users")

    # records -------------------------------------------------------------------------------
    def _list(self, call: _Call) -> Response:
        request = call.request
        if (request.arg("sort_by") or "Modified_Time") != "Modified_Time":
            raise CrmError("INVALID_DATA", "invalid data", {"param": "sort_by"})
        order = request.arg("sort_order") or "asc"
        if order not in ("asc", "desc"):
            raise CrmError("INVALID_DATA", "invalid data", {"param": "sort_order"})
        fields = _fields(request)
        if request.arg("ids") is not None:
            return self._list_ids(call, fields)
        since = self._since(request)
        view = (call.module, order, since.isoformat() if since else "")
        page, per_page, offset = self._position(request, view)
        result = self.org.list_records(
            call.module, since=since, per_page=per_page, offset=offset, descending=order == "desc"
        )
        result.records = [_selected(r, fields) for r in result.records]
        token = self._tokens.issue(view, offset + per_page, self.org.now()) if result.more else None
        return _page_response(result, page, per_page, token=token)

    def _list_ids(self, call: _Call, fields: list[str]) -> Response:
        """``GET /{Module}?ids=a,b``: those records that exist, in the order asked, on one page."""
        ids = list(dict.fromkeys(i for i in (call.request.arg("ids") or "").split(",") if i))
        if not ids:
            raise CrmError("INVALID_DATA", "invalid data", {"param": "ids"})
        if len(ids) > MAX_RECORDS_PER_CALL:
            raise _limit_exceeded()
        records = [_selected(r, fields) for r in self.org.records_by_id(call.module, ids)]
        return _page_response(Page(records, False), 1, len(ids))

    def _position(self, request: Request, view: tuple[str, ...]) -> tuple[int, int, int]:
        """The page, per_page and first record of a listing page: by ``page`` up to
        :data:`MAX_PAGED_RECORDS` records, beyond that only by ``page_token``."""
        token = request.arg("page_token")
        page, per_page = _paging(request)
        if token is None:
            if page * per_page > MAX_PAGED_RECORDS:
                raise CrmError(
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    f"cannot fetch more than {MAX_PAGED_RECORDS} records using page; use page_token",
                    {"limit": MAX_PAGED_RECORDS},
                )
            return page, per_page, (page - 1) * per_page
        if request.arg("page") is not None:
            raise CrmError("INVALID_REQUEST", "page and page_token cannot be given together", {"param": "page"})
        offset = self._tokens.redeem(token, view, self.org.now())
        return offset // per_page + 1, per_page, offset

    def _get(self, call: _Call) -> Response:
        fields = _fields(call.request)
        return Response.json({"data": [_selected(self.org.get(call.module, call.record_id), fields)]})

    def _insert(self, call: _Call) -> Response:
        return _write(_body(call.request), lambda r: ("insert", self.org.insert(call.module, r, call.user), None))

    def _update(self, call: _Call) -> Response:
        def apply(record: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
            if not record.get("id"):
                raise CrmError("MANDATORY_NOT_FOUND", "required field not found", {"api_name": "id"})
            return "update", self.org.update(call.module, str(record["id"]), record, call.user), None

        return _write(_body(call.request), apply)

    def _update_one(self, call: _Call) -> Response:
        """``PUT /{Module}/{id}``: the record of the path, from the one record of the body."""
        body = _body(call.request)
        records = _records(body)
        if len(records) != 1:
            raise CrmError("INVALID_DATA", "invalid data", {"param": "data"})
        return _write(body, lambda r: ("update", self.org.update(call.module, call.record_id, r, call.user), None))

    def _delete_by_id(self, call: _Call) -> Response:
        """``DELETE /{Module}/{id}``."""
        result = self._delete_one(call, call.record_id)
        return Response.json({"data": [result]}, status=400 if result["status"] == "error" else 200)

    def _upsert(self, call: _Call) -> Response:
        body = _body(call.request)
        fields = body.get("duplicate_check_fields") or ()
        allowed = self.org.duplicate_check_fields(call.module)
        if not isinstance(fields, list | tuple) or any(f not in allowed for f in fields):
            wrong = next((f for f in fields if f not in allowed), fields) if isinstance(fields, list) else fields
            details = {"param": "duplicate_check_fields", "api_name": str(wrong), "allowed": allowed}
            raise CrmError("INVALID_DATA", "the field given cannot be used to check duplicates", details)
        return _write(body, lambda r: self.org.upsert(call.module, r, fields, call.user))

    def _delete(self, call: _Call) -> Response:
        ids = [i for i in (call.request.arg("ids") or "").split(",") if i]
        if not ids:
            raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "ids"})
        if len(ids) > MAX_RECORDS_PER_CALL:
            raise _limit_exceeded()
        results = [self._delete_one(call, record_id) for record_id in ids]
        failed = all(r["status"] == "error" for r in results)
        return Response.json({"data": results}, status=400 if failed else 200)

    def _delete_one(self, call: _Call, record_id: str) -> dict[str, Any]:
        try:
            self.org.delete(call.module, record_id, call.user)
        except CrmError as exc:
            return exc.payload()
        return {"code": "SUCCESS", "details": {"id": record_id}, "message": "record deleted", "status": "success"}

    def _deleted(self, call: _Call) -> Response:
        request = call.request
        page, per_page = _paging(request)
        result = self.org.deleted(
            call.module, since=self._since(request), kind=request.arg("type") or "all", page=page, per_page=per_page
        )
        return _page_response(result, page, per_page)

    def _search(self, call: _Call) -> Response:
        page, per_page = _paging(call.request)
        conditions, any_of = _conditions(call.request)
        result = self.org.search(call.module, conditions, any_of=any_of, page=page, per_page=per_page)
        return _page_response(result, page, per_page)

    def _coql(self, request: Request) -> Response:
        query = str(_body(request).get("select_query") or "")
        match = _SELECT.fullmatch(query)
        criteria = _coql_criteria(match["where"]) if match else None
        if match is None or criteria is None:
            raise CrmError("SYNTAX_ERROR", "error occured while parsing the query", {"select_query": query})
        limit, offset = int(match["limit"] or MAX_PER_PAGE), int(match["offset"] or 0)
        too_many = len(criteria) > MAX_COQL_CRITERIA or any(len(values) > MAX_IN_VALUES for _, values in criteria)
        if too_many or not 1 <= limit <= MAX_COQL_LIMIT:
            limits = {"criteria": MAX_COQL_CRITERIA, "in": MAX_IN_VALUES, "limit": MAX_COQL_LIMIT}
            raise CrmError("LIMIT_EXCEEDED", "limit exceeded", limits)
        columns = [c.strip() for c in match["columns"].split(",")]
        module = self.org.module_name(match["module"])
        result = self.org.select_in(module, criteria, columns, limit=limit, offset=offset)
        if not result.records:
            return Response(204)
        return Response.json(
            {"data": result.records, "info": {"count": len(result.records), "more_records": result.more}}
        )

    def _emails(self, call: _Call) -> Response:
        """The record's Emails related list, paged by ``index`` (``info.next_index``)."""
        if not call.request.arg("owner_id"):
            raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "owner_id"})
        try:
            start = int(call.request.arg("index") or 0)
        except ValueError:
            raise CrmError("INVALID_DATA", "invalid data", {"param_name": "index"}) from None
        mails = self.org.mails_of(call.module, call.record_id)[start:]
        if not mails:
            return Response(204)
        page, more = mails[:MAX_PER_PAGE], len(mails) > MAX_PER_PAGE
        info = {
            "count": len(page),
            "next_index": str(start + len(page)) if more else None,
            "prev_index": str(max(start - MAX_PER_PAGE, 0)) if start else None,
            "per_page": MAX_PER_PAGE,
            "more_records": more,
        }
        return Response.json({"Emails": page, "info": info})

    def _associate_email(self, call: _Call) -> Response:
        """``{"Emails": [mail]}`` associated with the record: 201 with each mail's ``message_id``."""
        body = _body(call.request)
        emails = body.get("Emails")
        if not isinstance(emails, list) or not emails:
            raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "Emails"})
        results = []
        for email in emails:
            try:
                message_id = self.org.associate_email(call.module, call.record_id, email, call.user)
            except CrmError as exc:
                if exc.code == "INVALID_MODULE":
                    raise
                results.append(exc.payload())
                continue
            details = {"message_id": message_id}
            results.append({"code": "SUCCESS", "details": details, "message": "email associated", "status": "success"})
        failed = all(r["status"] == "error" for r in results)
        return Response.json({"Emails": results}, status=400 if failed else 201)

    def _fields(self, request: Request) -> Response:
        """``GET /settings/fields?module=``: the module's field metadata."""
        return Response.json({"fields": self.org.field_resources(_module_param(request))})

    def _create_fields(self, request: Request) -> Response:
        """``POST /settings/fields?module=``: Zoho's Create Custom Fields API."""
        module = _module_param(request)
        fields = _body(request).get("fields")
        if not isinstance(fields, list) or not fields:
            raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "fields"})
        results = [self._create_field(module, spec) for spec in fields]
        failed = all(r["status"] == "error" for r in results)
        return Response.json({"fields": results}, status=400 if failed else 201)

    def _create_field(self, module: str, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            spec = {}
        for key in ("field_label", "data_type"):
            if not spec.get(key):
                details = {"api_name": key, "json_path": f"$.fields[0].{key}"}
                return CrmError("MANDATORY_NOT_FOUND", "required field not found", details).payload()
        length = spec.get("length")
        try:
            created = self.org.create_field(
                module, str(spec["field_label"]), str(spec["data_type"]), int(length) if length is not None else None
            )
        except (CrmError, ValueError) as exc:
            if isinstance(exc, CrmError):
                return exc.payload()
            return CrmError(
                "INVALID_DATA", "invalid data", {"api_name": "length", "expected_data_type": "integer"}
            ).payload()
        return {"code": "SUCCESS", "details": {"id": created.id}, "message": "field created", "status": "success"}

    def _since(self, request: Request) -> datetime | None:
        """If-Modified-Since in Zoho's format only (``2019-07-25T15:26:49+05:30``): anything
        else (an HTTP date, fractions of a second, no offset) is refused."""
        text = (request.header("If-Modified-Since") or "").strip()
        if not text:
            return None
        if _ZOHO_TIME.fullmatch(text) is None:
            raise CrmError(
                "INVALID_DATA",
                "the header If-Modified-Since must be in the format yyyy-MM-ddTHH:mm:ss±HH:mm",
                {"header": "If-Modified-Since", "expected_data_type": "datetime"},
            )
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise CrmError("INVALID_DATA", "invalid data", {"header": "If-Modified-Since"}) from None


def _write(body: dict[str, Any], apply: _Apply) -> Response:
    """Apply each record of ``body["data"]``, with a Zoho status per record."""
    results = [_apply_one(apply, record, index) for index, record in enumerate(_records(body))]
    succeeded = [r for r in results if r["status"] == "success"]
    if not succeeded:
        return Response.json({"data": results}, status=400)
    inserted = any(r["action"] == "insert" for r in succeeded)
    return Response.json({"data": results}, status=201 if inserted else 200)


def _apply_one(apply: _Apply, record: dict[str, Any], index: int) -> dict[str, Any]:
    try:
        action, view, duplicate_field = apply(record)
    except CrmError as exc:
        payload = exc.payload()
        path = payload["details"].get("json_path")
        if isinstance(path, str) and path.startswith("$.data[0]"):  # where in this body
            payload["details"] = {**payload["details"], "json_path": f"$.data[{index}]{path[len('$.data[0]') :]}"}
        return payload
    return {
        "code": "SUCCESS",
        "action": action,
        "duplicate_field": duplicate_field,
        "details": {k: view[k] for k in _WRITE_DETAILS},
        "message": "record added" if action == "insert" else "record updated",
        "status": "success",
    }


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise CrmError("INVALID_DATA", "the input body is not valid JSON", {}) from None
    if not isinstance(body, dict):
        raise CrmError("INVALID_DATA", "the input body is not a JSON object", {})
    return body


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    if data is None:
        raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "data"})
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise CrmError("INVALID_DATA", "invalid data", {"param": "data"})
    if len(data) > MAX_RECORDS_PER_CALL:
        raise _limit_exceeded()
    return data


def _conditions(request: Request) -> tuple[list[tuple[str, str]], bool]:
    """``email=`` or ``criteria=(F:equals:v)and(G:equals:w)`` (or ``...or...``) as (field, value)
    pairs, and whether any one of them is enough (``or``) rather than all (``and``)."""
    email = request.arg("email")
    if email:
        return [("Email", email)], False
    criteria = (request.arg("criteria") or "").strip()
    if not criteria:
        raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "criteria"})
    if criteria.startswith("((") and criteria.endswith("))"):
        criteria = criteria[1:-1]
    if not (criteria.startswith("(") and criteria.endswith(")")):
        raise _invalid_query(criteria)
    joined_by_and = re.split(r"\)\s*and\s*\(", criteria[1:-1])
    joined_by_or = re.split(r"\)\s*or\s*\(", criteria[1:-1])
    if len(joined_by_and) > 1 and len(joined_by_or) > 1:
        raise _invalid_query(criteria)
    any_of = len(joined_by_or) > 1
    parts = joined_by_or if any_of else joined_by_and
    if len(parts) > MAX_CRITERIA:
        raise _invalid_query(criteria)
    conditions = []
    for part in parts:
        match = _CRITERION.fullmatch(part.strip())
        if match is None or match.group(2) != "equals":
            raise _invalid_query(part)
        conditions.append((match.group(1), re.sub(r"\\(.)", r"\1", match.group(3))))  # Zoho's \( \) \, escapes
    return conditions, any_of


def _paging(request: Request) -> tuple[int, int]:
    """``page`` (at least 1) and ``per_page`` (clamped to 1..200, default 200)."""
    values = []
    for name, default in (("page", 1), ("per_page", MAX_PER_PAGE)):
        try:
            values.append(int(request.arg(name) or default))
        except ValueError:
            raise CrmError("INVALID_DATA", "invalid data", {"param": name}) from None
    return max(values[0], 1), min(max(values[1], 1), MAX_PER_PAGE)


def _page_response(
    result: Page, page: int, per_page: int, key: str = "data", token: tuple[str, datetime] | None = None
) -> Response:
    if not result.records:
        return Response(204)
    info: dict[str, Any] = {
        "per_page": per_page,
        "count": len(result.records),
        "page": page,
        "more_records": result.more,
    }
    if token is not None:
        info["next_page_token"], expiry = token
        info["page_token_expiry"] = expiry.replace(microsecond=0).isoformat()
    return Response.json({key: result.records, "info": info})


def _fields(request: Request) -> list[str]:
    """The ``fields`` a record read asks for: required, at most :data:`MAX_FIELDS`."""
    fields = [f.strip() for f in (request.arg("fields") or "").split(",") if f.strip()]
    if not fields:
        raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "fields"})
    if len(fields) > MAX_FIELDS:
        raise CrmError("LIMIT_EXCEEDED", "the number of fields exceeds the limit", {"limit": MAX_FIELDS})
    return fields


def _selected(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """``record`` with ``id`` and the ``fields`` asked for (a field without a value is null)."""
    return {k: record.get(k) for k in ("id", *fields)}


class _PageTokens:
    """Page tokens: opaque, bound to one listing (module, order, If-Modified-Since), valid for
    :data:`PAGE_TOKEN_LIFETIME`; each says where its next page starts."""

    def __init__(self) -> None:
        self._issued: dict[str, tuple[tuple[str, ...], int, datetime]] = {}
        self._lock = threading.Lock()

    def issue(self, view: tuple[str, ...], offset: int, now: datetime) -> tuple[str, datetime]:
        token = secrets.token_hex(24)
        expiry = now + PAGE_TOKEN_LIFETIME
        with self._lock:
            self._issued[token] = (view, offset, expiry)
        return token, expiry

    def redeem(self, token: str, view: tuple[str, ...], now: datetime) -> int:
        with self._lock:
            issued = self._issued.get(token)
        if issued is None or issued[0] != view:
            raise CrmError("INVALID_DATA", "invalid page token", {"param": "page_token"})
        if issued[2] <= now:
            raise CrmError("INVALID_DATA", "the page token has expired", {"param": "page_token"})
        return issued[1]


def _module_param(request: Request) -> str:
    module = request.arg("module")
    if not module:
        raise CrmError("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "module"})
    return module


def _bad_url() -> CrmError:
    return CrmError("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", {})


def _limit_exceeded() -> CrmError:
    return CrmError("LIMIT_EXCEEDED", "the number of records exceeds the limit", {"limit": MAX_RECORDS_PER_CALL})


def _invalid_query(text: str) -> CrmError:
    details = {
        "reason": f"only up to {MAX_CRITERIA} (field:equals:value) conditions, joined all by 'and' or all by 'or', "
        "are supported",
        "criteria": text,
    }
    return CrmError("INVALID_QUERY", "invalid query formed", details)


def _coql_criteria(where: str) -> list[tuple[str, list[str]]] | None:
    """The ``F = 'a'`` and ``F in ('a', 'b')`` criteria of a COQL WHERE joined by ``or``, bracketed
    two at a time beyond two (``(A or (B or C))``, as Zoho wants), as (field, values); None
    for anything else."""
    parsed = _or_of(f"({where})")
    return parsed[0] if parsed is not None and not parsed[1].strip() else None


def _or_of(text: str) -> tuple[list[tuple[str, list[str]]], str] | None:
    """One criterion, or ``(X)`` or ``(X or Y)`` of them, from the start of ``text``; and the rest."""
    text = text.lstrip()
    if not text.startswith("("):
        match = _COQL_CRITERION.match(text)
        if match is None:
            return None
        values = [v[1:-1] for v in re.findall(_VALUE, match["many"] or match["one"])]
        return [(match["field"], values)], text[match.end() :]
    left = _or_of(text[1:])
    if left is None:
        return None
    criteria, rest = left
    if (joined := _OR.match(rest)) is not None:
        right = _or_of(rest[joined.end() :])
        if right is None:
            return None
        criteria, rest = criteria + right[0], right[1]
    rest = rest.lstrip()
    return (criteria, rest[1:]) if rest.startswith(")") else None
