"""`exsync demo`, the README's first command, runs the whole job on the fakes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("exchange", ["ews", "graph"])
def test_demo_installs_authenticates_syncs_and_shows_the_dashboard(exchange, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EXSYNC_KEY"} | {"EXSYNC_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "framework", "demo", "--size", "6", "--exchange", exchange],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    for expected in ("exsync install", "exsync sync", "Sync summary", "exsync dashboard", "synced pairs"):
        assert expected in out
    assert "exsync-crm-secret" not in result.stdout + result.stderr
