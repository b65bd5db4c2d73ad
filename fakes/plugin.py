"""The fakes as an exsync plugin: ``exsync fakes serve`` and ``exsync demo``."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import click
import httpx
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
from framework.state import data_dir

console = Console()
FAULT_SERVICES = ("crm", "login", "graph", "ews")


@click.group()
def fakes() -> None:
    """The fake CRM, Microsoft Graph (with its OAuth authority) and Exchange EWS servers."""


@fakes.command()
@click.option("--size", default=20, show_default=True, help="Records to seed per module and mailbox folder.")
@click.option("--seed", default=1, show_default=True, help="Faker seed: the same seed gives the same data.")
@click.option("--edition", default="Enterprise", show_default=True, help="The fake CRM org's edition.")
@click.option("--sales-inbox", is_flag=True, help="The fake CRM org uses SalesInbox.")
@click.option("--ews-version", default="Exchange2016", show_default=True, help="Version the fake EWS announces.")
@click.option(
    "--ews-no-basic", is_flag=True, help="The fake EWS refuses Basic authentication (Windows authentication only)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line of URLs and credentials when ready.")
def serve(
    size: int, seed: int, edition: str, sales_inbox: bool, ews_version: str, ews_no_basic: bool, as_json: bool
) -> None:
    """Start all three fakes on free ports of 127.0.0.1 and serve until interrupted."""
    options = Options(edition, sales_inbox, ews_version, ews_basic=not ews_no_basic)
    cloud = FakeCloud(options=options).start()
    try:
        cloud.seed(size, seed)
        description = cloud.description()
        _write_running(cloud)
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
        running_file().unlink(missing_ok=True)
        cloud.stop()


def running_file() -> Path:
    """Where ``exsync fakes serve`` says its fakes listen, for ``exsync fakes fault``."""
    return data_dir() / "fakes.json"


def _write_running(cloud: FakeCloud) -> None:
    """Where the served fakes listen (readable by this user only)."""
    path = running_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    servers = {name: server.base_url for name, server in cloud.servers.items()}
    path.write_text(json.dumps({"ca_bundle": str(cloud.ca.bundle_path), "servers": servers}))
    path.chmod(0o600)


@fakes.command()
@click.argument("service", type=click.Choice(FAULT_SERVICES))
@click.option("--path", default="", help="Only requests whose path contains this (default: every request).")
@click.option("--method", help="Only requests with this HTTP method.")
@click.option("--status", type=int, help="Answer with this HTTP status (e.g. 429, 503).")
@click.option("--retry-after", type=float, help="With --status: the Retry-After header, in seconds.")
@click.option("--body", help="With --status: the JSON body to answer with.")
@click.option("--latency", type=float, default=0.0, help="Answer this many seconds late.")
@click.option("--drop", is_flag=True, help="Close the connection without answering.")
@click.option("--times", type=int, help="Fire this many times only (default: until cleared).")
@click.option("--list", "list_", is_flag=True, help="List the fault rules of SERVICE and how often each fired.")
@click.option("--clear", is_flag=True, help="Remove every fault rule of SERVICE.")
def fault(
    service: str,
    path: str,
    method: str | None,
    status: int | None,
    retry_after: float | None,
    body: str | None,
    latency: float,
    drop: bool,
    times: int | None,
    list_: bool,
    clear: bool,
) -> None:
    """Make a fake served by 'exsync fakes serve' throttle, fail, slow down or drop connections.

    SERVICE is crm, login (the Microsoft identity platform), graph or ews. For example
    'exsync fakes fault crm --status 429 --body '{"code": "TOO_MANY_REQUESTS"}' --times 3'."""
    base, verify = _running(service)
    with httpx.Client(base_url=f"{base}/_fake/faults", verify=verify, timeout=10) as client:
        if clear:
            client.delete("")
            click.echo(f"The fault rules of {service} are cleared.")
            return
        if list_:
            click.echo(json.dumps(client.get("").json()["faults"], indent=2))
            return
        if not (status or latency or drop):
            raise click.UsageError("Say what goes wrong: --status, --latency or --drop (or --list, --clear).")
        rule: dict[str, Any] = {"path": path, "method": method, "status": status, "retry_after": retry_after}
        rule["latency"] = latency
        rule.update({"drop": drop, "times": times, "body": _json_body(body)})
        reply = client.post("", json=rule)
        if reply.status_code != 201:
            raise click.UsageError(f"The fake refused the rule: {reply.json().get('error')}")
        click.echo(f"Added to {service}: {json.dumps(reply.json())}")


def _running(service: str) -> tuple[str, ssl.SSLContext]:
    """The base URL of ``service`` and a TLS context trusting the served fakes' CA."""
    try:
        info = json.loads(running_file().read_text())
    except (OSError, ValueError):
        raise click.UsageError("No fakes are being served here; start them with 'exsync fakes serve'.") from None
    return info["servers"][service], ssl.create_default_context(cafile=info["ca_bundle"])


def _json_body(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise click.BadParameter("--body must be JSON") from None


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
