"""A small Microsoft Graph client on one keep-alive httpx connection.

It knows Graph's protocol, not its resources: bearer tokens (refreshed once on a 401),
paging over ``@odata.nextLink``, delta rounds that end on an ``@odata.deltaLink``, JSON
``$batch`` of up to 20 requests, and the mapping of HTTP failures onto exsync's error
taxonomy (429/503 with Retry-After -> :class:`TransientError`, 410 -> :class:`SyncStateLost`...).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx

from framework.errors import (
    AuthenticationFailed,
    RecordRejected,
    SyncError,
    SyncStateLost,
    TransientError,
)
from framework.tls import certificate_error, ssl_context

API_VERSION = "v1.0"
BATCH_LIMIT = 20
TokenProvider = Callable[[bool], str]
"""Returns an access token; called with True to force a fresh one after a 401."""

Json = dict[str, Any]


@dataclass
class DeltaRound:
    """A delta round, or one page of it: changed resources, removed ids and, on the last
    page, the link of the next round."""

    items: list[Json] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    delta_link: str = ""


@dataclass(frozen=True)
class BatchRequest:
    """One request of a ``$batch``; ``url`` is relative to the API version (``/users/...``)."""

    method: str
    url: str
    body: Json | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one :class:`BatchRequest`; ``error`` is set when it failed."""

    status: int
    body: Json
    error: SyncError | None = None


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _message(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", str(error or "")


def error_for(status: int, body: Any, headers: dict[str, str] | httpx.Headers) -> SyncError:
    """The exsync error for a failed Graph answer (a response, or one ``$batch`` sub-response)."""
    code, message = _message(body)
    text = f"Microsoft Graph answered {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    wait = retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    if status in (429, 503) or (status >= 500 and wait is not None):
        return TransientError(text, hint="Microsoft Graph is throttling; exsync waits and retries.", retry_after=wait)
    if status >= 500:
        return TransientError(text)
    if status == 410 or code in ("SyncStateNotFound", "syncStateNotFound", "resyncRequired"):
        return SyncStateLost(text, hint="The delta token expired; everything is read again.")
    if status == 412:
        return RecordRejected(
            text,
            hint="The item changed in Exchange after exsync read it; the next run reads it again and plans anew.",
        )
    if status == 401:
        return AuthenticationFailed(text, hint="Sign in again with 'exsync auth graph'.")
    if status == 403:
        return AuthenticationFailed(
            text,
            hint="The app registration lacks a permission (or consent) this mailbox needs; "
            "an administrator grants it in Microsoft Entra ID.",
        )
    return RecordRejected(text)


class GraphClient:
    """Microsoft Graph at ``base_url`` (``https://graph.microsoft.com``) with tokens from ``token_provider``."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        verify: str | bool = True,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        limit: Callable[[int], AbstractContextManager[None]] | None = None,
    ) -> None:
        """``limit``, given a request's cost (a ``$batch`` costs its requests), is held while the
        request is in flight: the limits shared by every worker (:meth:`Context.request_limit`)."""
        self._limit = limit
        self.root = f"{base_url.rstrip('/')}/{API_VERSION}"
        self._token_provider = token_provider
        self._token = ""
        self._http = httpx.Client(
            verify=ssl_context(verify),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # the one place requests go out ------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (``url`` absolute, or relative to the API root); raise on failure."""
        full = url if url.startswith(("http://", "https://")) else f"{self.root}{url}"
        response = self._send(method, full, params, json, headers, refresh=False)
        if response.status_code == 401:
            response = self._send(method, full, params, json, headers, refresh=True)
        if response.status_code >= 400:
            raise error_for(response.status_code, _json_or_none(response), response.headers)
        return response

    def _send(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        json: Any,
        headers: dict[str, str] | None,
        *,
        refresh: bool,
    ) -> httpx.Response:
        if refresh or not self._token:
            self._token = self._token_provider(refresh)
        all_headers = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        self.requests += 1
        batch = url.endswith("/$batch") and isinstance(json, dict)
        cost = len(json.get("requests") or []) if batch else 1
        try:
            with self._limit(cost) if self._limit else nullcontext():
                return self._http.request(method, url, params=params, json=json, headers=all_headers)
        except httpx.TransportError as exc:
            untrusted = certificate_error(httpx.URL(url).host, exc)
            if untrusted is not None:
                raise untrusted from exc
            raise TransientError(f"Microsoft Graph could not be reached: {exc}") from exc

    def get(self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Json:
        body: Json = self.request("GET", url, params=params, headers=headers).json()
        return body

    # collections --------------------------------------------------------------------------------
    def pages(
        self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Iterator[Json]:
        """Every resource of a collection, following ``@odata.nextLink``."""
        page = self.get(url, params, headers)
        while True:
            yield from page.get("value") or []
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.get(next_link, headers=headers)

    def delta(
        self,
        url: str,
        params: dict[str, str] | None = None,
        *,
        page_size: int = 999,
        headers: dict[str, str] | None = None,
    ) -> DeltaRound:
        """Follow a delta query (or a saved ``@odata.deltaLink``) to the end of its round."""
        whole = DeltaRound()
        for page in self.delta_pages(url, params, page_size=page_size, headers=headers):
            whole.items += page.items
            whole.removed += page.removed
            whole.delta_link = page.delta_link
        return whole

    def delta_pages(
        self,
        url: str,
        params: dict[str, str] | None = None,
        *,
        page_size: int = 999,
        headers: dict[str, str] | None = None,
    ) -> Iterator[DeltaRound]:
        """A delta round page by page; the last page carries the ``@odata.deltaLink``."""
        prefer = f"odata.maxpagesize={page_size}"
        all_headers = {**(headers or {})}
        all_headers["Prefer"] = ", ".join(filter(None, (all_headers.get("Prefer"), prefer)))
        page = self.get(url, params, all_headers)
        while True:
            result = DeltaRound()
            for resource in page.get("value") or []:
                if "@removed" in resource:
                    result.removed.append(str(resource.get("id")))
                else:
                    result.items.append(resource)
            result.delta_link = str(page.get("@odata.deltaLink") or "")
            next_link = page.get("@odata.nextLink")
            if not result.delta_link and not next_link:
                raise SyncStateLost("Microsoft Graph ended a delta round without a deltaLink.")
            yield result
            if result.delta_link:
                return
            page = self.get(str(next_link), headers=all_headers)

    # $batch -------------------------------------------------------------------------------------
    def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResponse]:
        """Send up to :data:`BATCH_LIMIT` requests as one ``$batch``; answers in request order."""
        if len(requests) > BATCH_LIMIT:
            raise ValueError(f"a $batch holds at most {BATCH_LIMIT} requests")
        if not requests:
            return []
        payload = {"requests": [_batch_entry(str(i), r) for i, r in enumerate(requests)]}
        body = self.request("POST", "/$batch", json=payload).json()
        answers = {str(a.get("id")): a for a in body.get("responses") or []}
        return [_batch_answer(answers.get(str(i))) for i in range(len(requests))]


def _batch_entry(request_id: str, request: BatchRequest) -> Json:
    entry: Json = {"id": request_id, "method": request.method, "url": request.url}
    headers = dict(request.headers or {})
    if request.body is not None:
        entry["body"] = request.body
        headers["Content-Type"] = "application/json"
    if headers:
        entry["headers"] = headers
    return entry


def _batch_answer(answer: Json | None) -> BatchResponse:
    if answer is None:
        return BatchResponse(0, {}, TransientError("Microsoft Graph did not answer this request of the batch."))
    status = int(answer.get("status") or 0)
    body = answer.get("body") if isinstance(answer.get("body"), dict) else {}
    assert isinstance(body, dict)
    if status >= 400:
        return BatchResponse(status, body, error_for(status, body, answer.get("headers") or {}))
    return BatchResponse(status, body)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
