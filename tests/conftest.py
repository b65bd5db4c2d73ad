"""Test-wide settings (a throwaway data directory and key, never the user's own) and the fakes."""

from __future__ import annotations

import os
import tempfile

from cryptography.fernet import Fernet

os.environ["EXSYNC_HOME"] = tempfile.mkdtemp(prefix="exsync-test-home-")
os.environ["EXSYNC_KEY"] = Fernet.generate_key().decode()
os.environ["COLUMNS"] = "250"  # rich tables wide enough to read in captured output
for name in ("EXSYNC_STATE", "EXSYNC_AS", "EXSYNC_CA_BUNDLE"):
    os.environ.pop(name, None)

from collections.abc import Iterator  # noqa: E402  (the environment above comes first)
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from fakes.cloud import FakeCloud  # noqa: E402
from fakes.harness import World  # noqa: E402


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCloud]:
    """The fake CRM, Graph + authority and EWS servers, started once per test session."""
    with FakeCloud(tmp_path_factory.mktemp("fakes")) as running:
        yield running


@pytest.fixture
def world(cloud: FakeCloud, tmp_path: Path) -> World:
    """Fresh fake state and a fresh exsync state database for one test."""
    cloud.reset()
    return World(cloud, tmp_path)
