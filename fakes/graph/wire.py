"""Reading a Graph request: the caller, the query options, paging sizes, the JSON body, the window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fakes.graph.authority import TokenInfo
from fakes.graph.calendar import Window, as_int, instant
from fakes.graph.errors import GraphError
from fakes.server import Request, Response

_QUERY_OPTIONS = ("$select", "$expand", "$filter", "$orderby", "$count")
_SUPPORTED_OPTIONS = frozenset({"$top", "$skip", "$skiptoken", "$deltatoken", *_QUERY_OPTIONS})
MAX_PAGE = 999
LIST_PAGE = 10
USERS_PAGE = 100
DELTA_PAGE = 100


@dataclass(frozen=True)
class Call:
    request: Request
    token: TokenInfo

    @property
    def method(self) -> str:
        return self.request.method


def prefs_of(request: Request) -> dict[str, str]:
    """The ``Prefer`` header as {name: value}."""
    prefs = {}
    for part in (request.header("prefer") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def options_of(request: Request) -> dict[str, str]:
    return {name: value for name in _QUERY_OPTIONS if (value := request.arg(name)) is not None}


def check_options(request: Request) -> None:
    unknown = sorted(k for k in request.query if k.startswith("$") and k not in _SUPPORTED_OPTIONS)
    if unknown:
        raise GraphError(400, "BadRequest", f"Query option '{unknown[0]}' is not supported by the fake Graph.")


def top_of(request: Request, default: int) -> int:
    raw = request.arg("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise GraphError(
            400, "BadRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive."
        )
    return int(raw)


def skip_of(request: Request) -> int:
    raw = request.arg("$skip", "0") or "0"
    if not raw.isdigit():
        raise GraphError(400, "BadRequest", f"Invalid $skip value '{raw}'.")
    return int(raw)


def max_page_size(request: Request) -> int:
    size = as_int(prefs_of(request).get("odata.maxpagesize"), DELTA_PAGE)
    return size if 1 <= size <= MAX_PAGE else DELTA_PAGE


def body_of(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def json_response(payload: Any, status: int = 200) -> Response:
    return Response.json(payload, status)


def window_of(request: Request) -> Window:
    try:
        return instant(request.arg("startDateTime") or ""), instant(request.arg("endDateTime") or "")
    except ValueError:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by "
            "the query string parameters StartDateTime and EndDateTime.",
        ) from None
