"""Graph's error answers: :class:`GraphError` and the OData error body, and the common ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fakes.server import FaultRule, Request, Response
from fakes.tenant import TenantError

if TYPE_CHECKING:
    from fakes.graph.wire import Call


class GraphError(Exception):
    """A Graph error answer: HTTP status, OData error code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self, request: Request | None = None) -> Response:
        return Response.json(error_payload(self.code, self.message, request), self.status, self.headers)


def error_payload(code: str, message: str, request: Request | None = None) -> dict[str, Any]:
    """Graph's OData error body."""
    request_id = str(uuid.uuid4())
    client_request_id = request.header("client-request-id") if request else None
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def throttle_rule(
    *, retry_after: float = 1.0, times: int | None = 1, path: str = "/v1.0/", method: str | None = None
) -> FaultRule:
    """A fault rule answering 429 TooManyRequests with Retry-After, shaped like Graph's."""
    body = error_payload("TooManyRequests", "Too many requests.")
    return FaultRule(path=path, method=method, status=429, retry_after=retry_after, times=times, body=body)


def no_route(call: Call) -> GraphError:
    return GraphError(400, "BadRequest", f"Unsupported request: {call.request.method} {call.request.path}.")


def not_found(message: str = "The specified object was not found in the store.") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", message)


def from_tenant(exc: TenantError) -> GraphError:
    if exc.code == "ErrorItemNotFound":
        return not_found(exc.message)
    if exc.code == "ErrorNonExistentMailbox":
        return GraphError(404, "ErrorInvalidUser", exc.message)
    return GraphError(400, exc.code, exc.message)


def unauthorized(message: str) -> GraphError:
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": 'Bearer realm=""'})


def sync_state_not_found() -> GraphError:
    return GraphError(
        410, "SyncStateNotFound", "The sync state is not found or has expired; start a new delta round without a token."
    )
