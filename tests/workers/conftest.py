"""The celery executor's fixtures (:mod:`tests.workers.support`) for the tests of this folder."""

from tests.workers.support import celery_world, database, queue, services

__all__ = ["celery_world", "database", "queue", "services"]
