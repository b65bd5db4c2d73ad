"""Fixtures of the entity tests; their helpers live in entity_support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from entity_support import EXCHANGES, Org, make_org

from fakes.harness import World


@pytest.fixture(params=EXCHANGES)
def org(request: pytest.FixtureRequest, world: World) -> Iterator[Org]:
    """An org syncing the admin's mailbox over EWS (impersonation) or Graph (authorization code)."""
    yield make_org(world, request.param)
