"""Events through Graph: series masters and single events, occurrences by id, calendarView and
``/events/{id}/instances`` (the wire side of :mod:`fakes.graph.calendar`)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from fakes import series
from fakes.graph.calendar import (
    Row,
    find_instance,
    instance_resource,
    is_series,
    split_occurrence_id,
    view_rows,
)
from fakes.graph.errors import no_route, not_found
from fakes.graph.paging import Cursor
from fakes.graph.resources import calendar_resource, item_field, merged, writable_fields
from fakes.graph.schema import check_body, check_rules
from fakes.graph.wire import LIST_PAGE, Call, body_of, json_response, top_of, window_of
from fakes.server import Response
from fakes.tenant import Mailbox

if TYPE_CHECKING:
    from fakes.graph.api import GraphApi


class EventRoutes:
    """The calendar's routes of one :class:`~fakes.graph.api.GraphApi`."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def route(self, call: Call, box: Mailbox, rest: list[str]) -> Response:
        """``/events...``, ``/calendar[/events|/calendarView[/delta]]``, ``/calendars[/{id}/...]``."""
        get = call.method == "GET"
        match rest:
            case ["events", *tail] | ["calendar", "events", *tail]:
                return self.events(call, box, tail)
            case ["calendarView"] | ["calendar", "calendarView"] if get:
                return self.calendar_view(call, box)
            case ["calendarView", "delta"] | ["calendar", "calendarView", "delta"] if get:
                return self.api.delta(call, box, "calendar", windowed=True)
            case ["calendar"] if get:
                return json_response(self.api.query(call).present("", calendar_resource(box)))
            case ["calendars"] if get:
                return json_response({"value": [self.api.query(call).present("", calendar_resource(box))]})
            case ["calendars", calendar_id, *tail]:
                if calendar_id != calendar_resource(box)["id"]:
                    raise not_found(f"The fake Graph has only the default calendar, not {calendar_id!r}.")
                return self.route(call, box, ["calendar", *tail])
        raise no_route(call)

    def events(self, call: Call, box: Mailbox, tail: list[str]) -> Response:
        """Events: series masters and single instances, and occurrences addressed by their ids."""
        occurrence = split_occurrence_id(tail[0]) if tail else None
        match (call.method, tail):
            case ("GET", [event_id, "instances"]):
                return self.instances(call, box, event_id)
            case ("GET" | "PATCH" | "DELETE", [_]) if occurrence is not None:
                return self._occurrence(call, box, *occurrence)
        return self.api.items(call, box, "calendar", tail, delta=False)

    def _occurrence(self, call: Call, box: Mailbox, master_id: str, key: str) -> Response:
        with self.api.tenant.lock:
            master = self.api.tenant.get(box, "calendar", master_id)
            instance = find_instance(master, key)
            if instance is None or instance.original is None:
                raise not_found()
            if call.method == "DELETE":
                self.api.tenant.update(box, "calendar", master_id, series.cancelled(master.data, instance.original))
                return Response(204)
            if call.method == "PATCH":
                body = body_of(call.request)
                check_body("calendar", body)
                changes = {**(instance.changes or {}), **writable_fields(body)}
                check_rules("calendar", merged(instance_resource(master, instance), changes))
                patch = series.changed(master.data, instance.original, changes)
                master = self.api.tenant.update(box, "calendar", master_id, patch)
                instance = find_instance(master, key) or instance
            resource = instance_resource(master, instance)
        return json_response(self.api.query(call).present("calendar", resource))

    def calendar_view(self, call: Call, box: Mailbox) -> Response:
        def build() -> Cursor:
            window = window_of(call.request)
            query = self.api.query(call)
            timed: list[tuple[datetime, Row]] = []
            for item in self.api.tenant.items(box, "calendar"):
                if query.matches(partial(item_field, item)):
                    timed.extend(view_rows(item, window))
            timed.sort(key=lambda pair: pair[0])
            return Cursor(box, [row for _, row in timed], query, top_of(call.request, LIST_PAGE))

        return self.api.serve(call, build)

    def instances(self, call: Call, box: Mailbox, event_id: str) -> Response:
        def build() -> Cursor:
            item = self.api.tenant.get(box, "calendar", event_id)
            window = window_of(call.request)
            rows = [row for _, row in view_rows(item, window)] if is_series(item.data) else []
            return Cursor(box, rows, self.api.query(call), top_of(call.request, LIST_PAGE))

        return self.api.serve(call, build)
