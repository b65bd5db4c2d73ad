"""Microsoft To Do through Graph: the default task list and its tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakes.graph.errors import no_route, not_found
from fakes.graph.resources import TASK_LIST_ID, task_list
from fakes.graph.wire import Call, json_response
from fakes.server import Response
from fakes.tenant import Mailbox

if TYPE_CHECKING:
    from fakes.graph.api import GraphApi


class TodoRoutes:
    """To Do's routes of one :class:`~fakes.graph.api.GraphApi`."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def route(self, call: Call, box: Mailbox, rest: list[str]) -> Response:
        """``/todo/lists[/{id}]`` and the default list's tasks."""
        match rest:
            case ["lists"] if call.method == "GET":
                return json_response({"value": [task_list()]})
            case ["lists", list_id] if call.method == "GET" and list_id == TASK_LIST_ID:
                return json_response(task_list())
            case ["lists", list_id, "tasks", *tail] if list_id == TASK_LIST_ID:
                return self.api.items(call, box, "tasks", tail)
            case ["lists", list_id, *_]:
                raise not_found(f"The task list {list_id!r} does not exist.")
        raise no_route(call)
