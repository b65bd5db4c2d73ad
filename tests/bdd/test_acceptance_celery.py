"""The administration scenarios again on the celery executor: the state on PostgreSQL, one job
per user on RabbitMQ, two ``exsync worker`` processes (skipped when the services are absent)."""

from __future__ import annotations

import pytest
from pytest_bdd import scenarios

from tests.workers.support import CeleryWorld, celery_world, database, queue, services

__all__ = ["celery_world", "database", "queue", "services"]

scenarios("administration.feature")


@pytest.fixture
def world(celery_world: CeleryWorld) -> CeleryWorld:
    """The scenario's world; its first sync switches to the celery executor and starts two workers."""
    celery_world.workers_on_switch = (2, 1)
    return celery_world
