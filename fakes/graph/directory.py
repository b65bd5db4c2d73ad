"""The directory through Graph: ``/me``, ``/users``, ``/users/{id|upn}``, ``/users/$count``, and
whose mailbox a token may reach."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakes.graph.calendar import Row
from fakes.graph.errors import GraphError
from fakes.graph.paging import Cursor
from fakes.graph.permissions import require
from fakes.graph.resources import user_resource
from fakes.graph.wire import USERS_PAGE, Call, json_response, top_of
from fakes.server import Response
from fakes.tenant import Mailbox, TenantError

if TYPE_CHECKING:
    from fakes.graph.api import GraphApi


class DirectoryRoutes:
    """The directory's routes of one :class:`~fakes.graph.api.GraphApi`."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def route(self, call: Call, segments: list[str]) -> Response:
        """``GET /me``, ``/users``, ``/users/$count`` and ``/users/{id|upn}``."""
        if segments == ["me"]:
            box = self.own_box(call)  # an app-only token is refused as such first
            require(call.token, "me", write=False)
            return json_response(self.api.query(call).present("", user_resource(box)))
        require(call.token, "users", write=False)
        match segments:
            case ["users"]:
                return self._users(call)
            case ["users", "$count"]:
                _require_eventual(call)
                query = self.api.query(call)
                count = sum(1 for u in map(user_resource, self.api.tenant.users()) if query.matches(u.get))
                return Response(200, str(count).encode(), {"Content-Type": "text/plain"})
        return self._user(call, segments[1])

    def own_box(self, call: Call) -> Mailbox:
        """The signed-in user's mailbox (``/me``); app-only tokens have none."""
        if call.token.user_id is None:
            raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        return self.api.tenant.mailbox(call.token.user_id)

    def box_for(self, call: Call, key: str) -> Mailbox:
        """``/users/{id|upn}``: any mailbox for an app-only token, only its own for a user's."""
        box = self.api.tenant.mailbox(key)
        if not call.token.app_only and call.token.user_id != box.user_id:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return box

    def _users(self, call: Call) -> Response:
        def build() -> Cursor:
            query = self.api.query(call)
            if query.count:
                _require_eventual(call)
            users = query.ordered(
                [u for u in map(user_resource, self.api.tenant.users()) if query.matches(u.get)], dict.get
            )
            rows: list[Row] = [("", user) for user in users]
            return Cursor(None, rows, query, top_of(call.request, USERS_PAGE))

        return self.api.serve(call, build)

    def _user(self, call: Call, key: str) -> Response:
        try:
            box = self.api.tenant.mailbox(key)
        except TenantError:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            ) from None
        return json_response(self.api.query(call).present("", user_resource(box)))


def _require_eventual(call: Call) -> None:
    """Counting directory objects needs ``ConsistencyLevel: eventual`` (advanced queries)."""
    if (call.request.header("consistencylevel") or "").lower() != "eventual":
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
