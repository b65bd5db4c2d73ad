from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from framework.context import Context
from framework.engine import Engine, RunReport
from framework.host import build_host
from framework.state import User
from framework.testing import MemoryWorld, memory_settings
from plugins import conflicts, entities

ADMIN = User("u1", "admin@example.com", "Ada Admin", "CEO", "Administrator", is_admin=True, enabled=True)


@dataclass
class MemoryOrg:
    """An org installed on the memory plugin, with one enabled admin user."""

    world: MemoryWorld
    ctx: Context

    def sync(self, **kwargs: object) -> RunReport:
        (report,) = Engine(self.ctx, sleep=lambda _s: None).run([ADMIN], **kwargs)  # type: ignore[arg-type]
        return report

    def set(self, **settings: object) -> None:
        self.ctx.state.set_settings(settings)


def make_org(url: str = "sqlite://") -> MemoryOrg:
    world = MemoryWorld()
    host = build_host(extra=[entities, conflicts, world.plugin()], entry_points=False)
    ctx = Context(url, host=host, acting_as="u1")
    ctx.state.set_settings(memory_settings())
    ctx.state.upsert_users([ADMIN])
    return MemoryOrg(world, ctx)


@pytest.fixture
def org() -> Iterator[MemoryOrg]:
    yield make_org()
