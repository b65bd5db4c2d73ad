"""The fakes as an exsync plugin: ``exsync fakes serve`` and ``exsync demo``."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule

from fakes.cloud import (
    GRAPH_CLIENT_ID,
    GRAPH_CLIENT_SECRET,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    TENANT_ID,
    FakeCloud,
    Options,
)
from fakes.crm.seed import CLIENT_ID, CLIENT_SECRET
from framework import hookimpl

console = Console()


@click.group()
def fakes() -> None:
    """The fake CRM, Microsoft Graph (with its OAuth authority) and Exchange EWS servers."""


@fakes.command()
@click.option("--size", default=20, show_default=True, help="Records to seed per module and mailbox folder.")
@click.option("--seed", default=1, show_default=True, help="Faker seed: the same seed gives the same data.")
@click.option("--edition", default="Enterprise", show_default=True, help="The fake CRM org's edition.")
@click.option("--sales-inbox", is_flag=True, help="The fake CRM org uses SalesInbox.")
@click.option("--ews-version", default="Exchange2016", show_default=True, help="Version the fake EWS announces.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line of URLs and credentials when ready.")
def serve(size: int, seed: int, edition: str, sales_inbox: bool, ews_version: str, as_json: bool) -> None:
    """Start all three fakes on free ports of 127.0.0.1 and serve until interrupted."""
    cloud = FakeCloud(options=Options(edition, sales_inbox, ews_version)).start()
    try:
        cloud.seed(size, seed)
        description = cloud.description()
        if as_json:
            click.echo(json.dumps(description), nl=True)
        else:
            console.print_json(data=description)
            console.print("Serving; press Ctrl+C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        cloud.stop()


@click.command()
@click.option(
    "--exchange",
    type=click.Choice(["ews", "graph"]),
    default="ews",
    show_default=True,
    help="Exchange Server over EWS (impersonation) or Microsoft 365 over Graph (client credentials).",
)
@click.option("--size", default=25, show_default=True, help="Records to seed per module and mailbox folder.")
@click.option("--seed", default=1, show_default=True, help="Faker seed.")
@click.option("--keep", is_flag=True, help="Keep the demo's state directory and print where it is.")
def demo(exchange: str, size: int, seed: int, keep: bool) -> None:
    """Run the whole job on the built-in fakes: install, authenticate, enable users, sync, dashboard."""
    directory = Path(tempfile.mkdtemp(prefix="exsync-demo-"))
    os.environ["EXSYNC_KEY_FILE"] = str(directory / "key")
    fate = "kept afterwards (--keep)" if keep else "removed when the demo ends (--keep keeps them)"
    console.print(
        f"The demo keeps everything in {directory}, away from your own exsync data: the state database "
        f"{directory / 'state.db'}, its key, and the fake servers' CA in {directory / 'fakes'}; the fakes "
        f"serve on free ports of 127.0.0.1 while it runs. All of it is temporary: {fate}.",
        highlight=False,
    )
    try:
        _demo_steps(directory, exchange, size, seed)
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if keep:
        console.print(f"State kept in {directory}: e.g. 'exsync --state sqlite:///{directory / 'state.db'} status'")


def _demo_steps(directory: Path, exchange: str, size: int, seed: int) -> None:
    with FakeCloud(directory / "fakes") as cloud:
        cloud.seed(size, seed)
        admin = cloud.crm.admin.email
        base = ["--state", f"sqlite:///{directory / 'state.db'}", "--ca-bundle", str(cloud.ca.bundle_path)]
        steps = [
            f"crm login --accounts-url {cloud.crm_url} --client-id {CLIENT_ID} --client-secret {CLIENT_SECRET} "
            f"--refresh-token {cloud.crm_refresh_token(admin)}",
            "install --scope all --accept-terms",
            _auth_step(cloud, exchange),
            "users enable " + " ".join(u.email for u in cloud.crm.users()),
            "settings show",
            "sync",
            "dashboard",
        ]
        for step in steps:
            _run(base, step, may_fail=step == "sync")


def _auth_step(cloud: FakeCloud, exchange: str) -> str:
    if exchange == "ews":
        return (
            f"auth ews --impersonation --endpoint {cloud.ews_url} --email {SERVICE_ACCOUNT} "
            f"--password {shlex.quote(SERVICE_PASSWORD)} --domain CONTOSO"
        )
    return (
        f"auth graph --flow client-credentials --tenant {TENANT_ID} --client-id {GRAPH_CLIENT_ID} "
        f"--client-secret {GRAPH_CLIENT_SECRET} --authority {cloud.authority_url} --graph-url {cloud.graph_url}"
    )


def _run(base: list[str], step: str, *, may_fail: bool = False) -> None:
    """Run one exsync command in-process, showing it as a person would type it (secrets hidden)."""
    from framework.cli import build_cli

    shown = " ".join(_hide(word, previous) for previous, word in zip(["", *step.split()], step.split(), strict=False))
    console.print(Rule(f"$ exsync {shown}", align="left"))
    try:
        build_cli().main(base + shlex.split(step), prog_name="exsync", standalone_mode=False)
    except SystemExit as exit_:
        if exit_.code and not may_fail:
            raise click.ClickException(f"'exsync {step.split()[0]}' failed; see above.") from None


def _hide(word: str, previous: str) -> str:
    return "********" if previous in ("--client-secret", "--refresh-token", "--password") else word


@hookimpl
def exsync_cli_commands() -> list[click.Command]:
    return [fakes, demo]
