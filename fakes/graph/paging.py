"""Listing and delta state: the rows of a round and what a ``$deltatoken`` encodes."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field

from fakes.graph.calendar import Row, Window, instant
from fakes.graph.query import Query
from fakes.tenant import Mailbox

CURSOR_LIMIT = 64


@dataclass
class Cursor:
    """One listing or delta round: the rows to page through and how to show them."""

    box: Mailbox | None
    rows: list[Row]
    query: Query
    size: int
    delta_token: str | None = None  # for the @odata.deltaLink of the last page
    key: str = field(default_factory=lambda: secrets.token_urlsafe(12))


@dataclass(frozen=True)
class DeltaState:
    """What a $deltatoken encodes."""

    generation: int
    user_id: str
    folder: str
    seq: int
    window: Window | None
    options: dict[str, str]

    def encode(self) -> str:
        window = [moment.isoformat() for moment in self.window] if self.window else None
        payload = [self.generation, self.user_id, self.folder, self.seq, window, self.options]
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> DeltaState:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        generation, user_id, folder, seq, window, options = json.loads(raw)
        bounds = (instant(window[0]), instant(window[1])) if window else None
        return cls(int(generation), str(user_id), str(folder), int(seq), bounds, dict(options))
