"""`exsync demo`, the README's first command, runs the whole job on the fakes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
    # where its state and fakes live, that they are temporary, and why records were skipped
    where = re.search(r"The demo keeps everything in (\S+), away from your own exsync data", out)
    assert where, out[:400]
    assert f"the state database {where.group(1)}/state.db" in out
    assert "All of it is temporary: removed when the demo ends" in out
    assert not Path(where.group(1)).exists()
    rows = re.findall(
        r"^\s+(contacts|tasks|events|mails)\s+[+~\-\d ]+?\s+(\d+)\s+(\d+)\s+(\d+)\s*$", result.stdout, re.M
    )
    assert rows
    for entity, _conflicts, skipped, _errors in rows:  # every skip is explained under its table
        assert int(skipped) == 0 or f"{entity}: {skipped} skipped: " in result.stdout
