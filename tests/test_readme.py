"""The README's administrator walk-through, read from README.md itself and run command by
command against ``exsync fakes serve``: the README cannot drift from what exsync does."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from framework.cli import build_cli

README = Path(__file__).resolve().parent.parent / "README.md"


def walk_through() -> list[str]:
    """The ``exsync`` commands of the administrators' section, continuations joined, comments
    dropped, ``a && b`` split."""
    text = README.read_text()
    section = text[text.index("## For administrators") :]
    section = section[: section.index("\n## ", 1)]
    block = "\n".join(line[4:] for line in section.splitlines() if line.startswith("    "))
    block = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in block.splitlines():
        line = line.split("  #")[0].strip()
        commands += [part.strip() for part in line.split("&&") if part.strip().startswith("exsync ")]
    return commands


def test_the_readme_opens_with_the_demo_and_the_tests():
    blocks = [line.strip() for line in README.read_text().splitlines() if line.startswith("    ")][:2]
    assert blocks[0].endswith(".venv/bin/exsync demo")
    assert blocks[1].endswith(".venv/bin/pytest")


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    """``exsync fakes serve`` in a process of its own, as an administrator would start it."""
    served = subprocess.Popen(
        [sys.executable, "-m", "framework", "fakes", "serve", "--json", "--size", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert served.stdout is not None
        yield json.loads(served.stdout.readline())
    finally:
        served.terminate()
        served.wait(timeout=30)


def _for_the_fakes(command: str, fakes: dict[str, Any]) -> tuple[str, str | None]:
    """The README's command with the fakes in place of its examples, and what it prompts for."""
    crm, graph, ews = fakes["crm"], fakes["graph"], fakes["ews"]
    admin = next(u for u in crm["users"] if u["admin"])
    others = [u["email"] for u in crm["users"] if not u["admin"]]
    replacements = {
        "https://accounts.zoho.com": crm["accounts_url"],
        "--client-id ID": f"--client-id {crm['client_id']}",
        "https://mail.example.com/EWS/Exchange.asmx": ews["endpoint"],
        "svc@example.com": ews["impersonation_account"]["email"],
        "--domain EXAMPLE": "--domain CONTOSO",
        "--tenant T": f"--tenant {graph['tenant']} --authority {graph['authority']} --graph-url {graph['graph_url']}",
        "--client-id C": f"--client-id {graph['client_id']}",
        "alice@example.com bob@example.com": " ".join(others[:2]),
        "--watch": "--watch --rounds 1",
    }
    for example, real in replacements.items():
        command = command.replace(example, real)
    prompts = {
        "exsync crm login": f"{crm['client_secret']}\n{admin['refresh_token']}\n",
        "exsync auth ews": f"{ews['impersonation_account']['password']}\n",
        "exsync auth graph": f"{graph['client_secret']}\n",
    }
    return command, next((answer for start, answer in prompts.items() if command.startswith(start)), None)


def test_the_administrator_walk_through_works_as_written(fakes: dict[str, Any], tmp_path: Path):
    commands = walk_through()
    assert commands[0].startswith("exsync crm login") and commands[-1] == "exsync uninstall --yes"
    assert any(c.startswith("exsync auth graph --flow client-credentials") and "--client-secret" in c for c in commands)
    env = {"EXSYNC_STATE": f"sqlite:///{tmp_path / 'state.db'}", "EXSYNC_CA_BUNDLE": fakes["ca_bundle"]}
    env |= {"EXSYNC_HOME": str(tmp_path), "EXSYNC_KEY": os.environ["EXSYNC_KEY"]}
    outputs = {}
    for written in commands:
        command, answer = _for_the_fakes(written, fakes)
        result = CliRunner().invoke(build_cli(), shlex.split(command)[1:], input=answer, env=env)
        assert result.exit_code == 0, f"$ {written}\n{result.output}"
        outputs[written.split("  ")[0]] = result.output
    status = next(out for cmd, out in outputs.items() if cmd.startswith("exsync status"))
    assert "ok" in status
    assert any("Plan for" in out or "Dry run" in out for out in outputs.values())
