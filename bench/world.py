"""The product, set up as an administrator would: CLI steps in-process, then the engine.

:class:`Setup` runs ``exsync crm login``, ``install``, ``auth ...`` and ``users enable`` through
:func:`framework.cli.build_cli` (as ``exsync demo`` and the acceptance suite do) against a
:class:`~bench.cloud.RemoteCloud`, and then syncs with :class:`framework.engine.Engine` over a
:class:`framework.context.Context` like the one ``exsync sync`` builds, so that a run can be
timed and its reports read without the CLI's printing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from click.testing import CliRunner

from bench.cloud import RemoteCloud
from fakes.cloud import GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, SERVICE_ACCOUNT, SERVICE_PASSWORD, TENANT_ID
from fakes.crm.seed import CLIENT_ID, CLIENT_SECRET
from framework.cli import build_cli
from framework.context import Context
from framework.engine import Engine, RunReport
from framework.state import User

T = TypeVar("T")
#: how the product reaches Exchange in each set-up
EXCHANGES = {
    "graph": "Microsoft Graph, auth code (delegated: /me, tasks included)",
    "graph-cc": "Microsoft Graph, client credentials (app-only: no tasks)",
    "ews": "EWS, Basic + ApplicationImpersonation",
}


@dataclass
class Measure:
    """Wall time, requests per fake server and memory of one measured piece of work."""

    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    peak_bytes: int | None = None  # tracemalloc peak, when traced
    rss_growth_bytes: int | None = None  # peak RSS over the RSS at the start
    cpu: float = 0.0  # CPU seconds of this (the product's) process
    fakes_cpu: float = 0.0  # CPU seconds of the fakes' process

    @property
    def cpu_split(self) -> str:
        """Where the CPU went: ``product / fakes`` seconds."""
        return f"{self.cpu:,.1f} / {self.fakes_cpu:,.1f}"

    @property
    def total_requests(self) -> int:
        """Requests to the CRM, Graph and EWS (token requests to the authority not counted)."""
        return sum(v for k, v in self.requests.items() if k != "login")


class Setup:
    """A state database configured for one way of reaching Exchange, on ``cloud``."""

    def __init__(self, cloud: RemoteCloud, exchange: str) -> None:
        self.cloud = cloud
        self.exchange = exchange
        self.directory = Path(tempfile.mkdtemp(prefix="exsync-bench-"))
        os.environ["EXSYNC_KEY_FILE"] = str(self.directory / "key")
        self.info = cloud.info
        self.admin = str(self.info["admin"])
        self._context: Context | None = None

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.directory / 'state.db'}"

    # configuring through the CLI ----------------------------------------------------------------
    def cli(self, step: str) -> str:
        """Run ``exsync <step>`` in-process as the admin; return its output, raise if it failed."""
        args = ["--state", self.state_url, "--ca-bundle", self.info["ca_bundle"], *shlex.split(step)]
        result = CliRunner().invoke(build_cli(), args, catch_exceptions=False)
        if result.exit_code:
            raise RuntimeError(f"'exsync {step.split()[0]}' failed ({result.exit_code}):\n{result.output}")
        return result.output

    def configure(self, users: list[str] | None = None) -> None:
        """Log in, install, authenticate and enable ``users`` (default: the admin)."""
        info = self.info
        self.cli(
            f"crm login --accounts-url {info['crm_url']} --client-id {CLIENT_ID} "
            f"--client-secret {CLIENT_SECRET} --refresh-token {info['admin_token']}"
        )
        self.cli("install --scope all --accept-terms")
        self.cli(self._auth_step())
        self.cli("users list")
        self.cli("users enable " + " ".join(users or [self.admin]))

    def _auth_step(self) -> str:
        info = self.info
        graph = (
            f"--tenant {TENANT_ID} --client-id {GRAPH_CLIENT_ID} --client-secret {GRAPH_CLIENT_SECRET} "
            f"--authority {info['authority_url']} --graph-url {info['graph_url']}"
        )
        if self.exchange == "ews":
            return (
                f"auth ews --impersonation --endpoint {info['ews_url']} --email {SERVICE_ACCOUNT} "
                f"--password {shlex.quote(SERVICE_PASSWORD)} --domain CONTOSO"
            )
        if self.exchange == "graph":
            return f"auth graph --flow auth-code {graph} --user {self.admin} --login-hint {self.admin} --auto"
        return f"auth graph --flow client-credentials {graph}"

    # syncing --------------------------------------------------------------------------------------
    def context(self) -> Context:
        """The context ``exsync --as ADMIN sync`` works in (one per setup, warmed up)."""
        if self._context is None:
            ctx = Context(self.state_url, acting_as=self.admin, ca_bundle=self.info["ca_bundle"])
            for name in ("host", "state", "vault", "audit", "auth_providers", "crm_connectors", "entities"):
                getattr(ctx, name)
            ctx.conflict_policies  # noqa: B018 - warm the cached property before threads share it
            self._context = ctx
        return self._context

    def users(self, emails: list[str] | None = None) -> list[User]:
        chosen = [u for u in self.context().state.users() if u.enabled]
        if emails is not None:
            wanted = set(emails)
            chosen = [u for u in chosen if u.email in wanted]
        return chosen

    def sync(self, users: list[User] | None = None) -> list[RunReport]:
        """One "Sync now" over ``users`` (default: every enabled user), sequentially, as the engine runs."""
        return Engine(self.context()).run(users if users is not None else self.users())

    def close(self) -> None:
        if self._context is not None:
            self._context.state.engine.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)


# measuring ----------------------------------------------------------------------------------------
def measure(cloud: RemoteCloud, work: Callable[[], T], *, trace: bool = False) -> tuple[T, Measure]:
    """Run ``work``: wall time, the fakes' request counts, peak RSS growth, and (``trace``) tracemalloc's peak."""
    before, fakes_cpu = cloud.requests(), cloud.call("cpu")
    with _rss_sampler() as rss:
        if trace:
            tracemalloc.start()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            result = work()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            peak = tracemalloc.get_traced_memory()[1] if trace else None
        finally:
            if trace:
                tracemalloc.stop()
    after, fakes_cpu = cloud.requests(), cloud.call("cpu") - fakes_cpu
    requests = {name: after[name] - before.get(name, 0) for name in after}
    return result, Measure(seconds, requests, peak, rss(), cpu, fakes_cpu)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def _rss_sampler(interval: float = 0.05) -> Iterator[Callable[[], int]]:
    """Samples this process's RSS every ``interval`` seconds; yields a function giving the peak growth."""
    start = _rss_bytes()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: max(peak[0], _rss_bytes()) - start
    finally:
        stop.set()
        thread.join()


def written(reports: list[RunReport]) -> int:
    """Records a run created, updated or deleted, on both sides, over every user and entity."""
    return sum(
        counts.created + counts.updated + counts.deleted
        for report in reports
        for entity in report.entities.values()
        for counts in entity.sides.values()
    )


def errors(reports: list[RunReport]) -> list[str]:
    found = [r.error for r in reports if r.error]
    found += [e for r in reports for entity in r.entities.values() for e in entity.errors]
    return found


def per_entity(reports: list[RunReport]) -> dict[str, dict[str, Any]]:
    """{entity: {"crm": created, "exchange": created, "outcome": ...}} summed over users."""
    out: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, entity in report.entities.items():
            row = out.setdefault(name, {"crm": 0, "exchange": 0, "outcome": entity.outcome})
            for side, counts in entity.sides.items():
                row[side] += counts.created + counts.updated + counts.deleted
    return out
