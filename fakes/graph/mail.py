"""Mail through Graph: messages (read only), their attachments, and the well-known mail folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakes.graph.errors import no_route, not_found
from fakes.graph.resources import (
    MAIL_FOLDERS,
    attachment_resources,
    check_item_id,
    mail_folder,
    mail_folder_resource,
)
from fakes.graph.wire import Call, json_response
from fakes.server import Response
from fakes.tenant import Mailbox

if TYPE_CHECKING:
    from fakes.graph.api import GraphApi


class MailRoutes:
    """Mail's routes of one :class:`~fakes.graph.api.GraphApi`."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def route(self, call: Call, box: Mailbox, rest: list[str]) -> Response:
        """``/messages[/{id}[/attachments]]``, ``/mailFolders[/{id}[/messages...]]``."""
        get = call.method == "GET"
        match rest:
            case ["messages"] if get:
                return self.api.listing(call, box, *MAIL_FOLDERS)
            case ["messages", message_id, *tail] if get:
                return self._message(call, box, message_id, tail)
            case ["mailFolders"] if get:
                rows = [mail_folder_resource(box, f, self.api.tenant.items(box, f)) for f in MAIL_FOLDERS]
                return json_response({"value": [self.api.query(call).present("", r) for r in rows]})
            case ["mailFolders", folder_id] if get:
                folder = mail_folder(box, folder_id)
                resource = mail_folder_resource(box, folder, self.api.tenant.items(box, folder))
                return json_response(self.api.query(call).present("", resource))
            case ["mailFolders", folder_id, "messages", *tail]:
                return self.api.items(call, box, mail_folder(box, folder_id), tail, writable=False)
        raise no_route(call)

    def _message(self, call: Call, box: Mailbox, message_id: str, tail: list[str]) -> Response:
        check_item_id(message_id)
        item = self.api.tenant.find(box, message_id)
        if item.folder not in MAIL_FOLDERS:
            raise not_found()
        match tail:
            case []:
                return json_response(self.api.query(call).render(item))
            case ["attachments"]:
                query = self.api.query(call)
                return json_response({"value": [query.present("", a) for a in attachment_resources(item)]})
        raise no_route(call)
