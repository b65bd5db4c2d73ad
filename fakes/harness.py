"""Drive exsync against the fakes as an administrator would: the acceptance suite's world.

A :class:`World` is one scenario: the fake cloud, a fresh state database, and the result of
every command run through the real CLI (in-process, with click's test runner).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from fakes.cloud import (
    DOMAIN,
    GRAPH_CLIENT_ID,
    GRAPH_CLIENT_SECRET,
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    TENANT_ID,
    FakeCloud,
    mailbox_password,
)
from fakes.crm.seed import CLIENT_ID, CLIENT_SECRET
from framework.cli import build_cli
from framework.settings import Settings
from framework.state import StateStore, User
from framework.vault import Vault

ADMIN = "amelia.admin"


def address(user: str) -> str:
    """``sam.standard`` -> ``sam.standard@contoso.example``."""
    return user if "@" in user else f"{user}@{DOMAIN}"


@dataclass
class World:
    """One scenario: fresh fakes, a fresh state database, and every command's result."""

    cloud: FakeCloud
    directory: Path
    results: list[Result] = field(default_factory=list)
    logged_in: set[str] = field(default_factory=set)
    ews_auth_type: str = "auto"  # what the administrator passes as 'exsync auth ews --auth-type'
    exchange: str = "graph"  # the service the org's mailboxes are reached through: "ews" or "graph"

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.directory / 'state.db'}"

    @property
    def last(self) -> Result:
        return self.results[-1]

    # running commands ---------------------------------------------------------------------
    def run(self, user: str, command: str, *, answer: str | None = None, trust_ca: bool = True) -> Result:
        """Run ``command`` (``exsync ...``) as CRM user ``user``, logging them in to the CRM first."""
        email = address(user)
        if email not in self.logged_in:
            self.crm_login(email)
        return self.invoke(["--as", email, *shlex.split(command)[1:]], answer=answer, trust_ca=trust_ca)

    def crm_login(self, email: str) -> Result:
        token = self.cloud.crm_refresh_token(email)
        result = self.invoke(
            [
                "crm",
                "login",
                "--accounts-url",
                self.cloud.crm_url,
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--refresh-token",
                token,
            ]
        )
        assert result.exit_code == 0, result.output
        self.logged_in.add(email)
        return result

    def invoke(self, args: list[str], *, answer: str | None = None, trust_ca: bool = True) -> Result:
        prefix = ["--state", self.state_url]
        if trust_ca:
            prefix += ["--ca-bundle", str(self.cloud.ca.bundle_path)]
        result = CliRunner().invoke(build_cli(), prefix + args, input=answer, catch_exceptions=False)
        self.results.append(result)
        return result

    def json(self) -> Any:
        return json.loads(self.last.stdout)

    # authentication -------------------------------------------------------------------------
    def ews_impersonation(
        self,
        *,
        email: str = SERVICE_ACCOUNT,
        password: str = SERVICE_PASSWORD,
        endpoint: str | None = None,
        trust_ca: bool = True,
    ) -> Result:
        return self.run(
            ADMIN,
            f"exsync auth ews --impersonation --endpoint {endpoint or self.cloud.ews_url} --email {email} "
            f"--password {shlex.quote(password)} --domain CONTOSO --auth-type {self.ews_auth_type}",
            trust_ca=trust_ca,
        )

    def ews_individual(self) -> Result:
        return self.run(
            ADMIN, f"exsync auth ews --individual --endpoint {self.cloud.ews_url} --auth-type {self.ews_auth_type}"
        )

    def ews_own_credentials(self, user: str, for_user: str | None = None) -> Result:
        whose = address(for_user or user)
        return self.run(
            user,
            f"exsync auth ews --individual --endpoint {self.cloud.ews_url} --user {whose} --email {whose} "
            f"--password {shlex.quote(mailbox_password(whose))} --domain CONTOSO",
        )

    def graph_args(self) -> str:
        return (
            f"--tenant {TENANT_ID} --client-id {GRAPH_CLIENT_ID} --client-secret {GRAPH_CLIENT_SECRET} "
            f"--authority {self.cloud.authority_url} --graph-url {self.cloud.graph_url}"
        )

    def graph_client_credentials(self) -> Result:
        return self.run(ADMIN, f"exsync auth graph --flow client-credentials {self.graph_args()}")

    def graph_auth_code(self, user: str) -> Result:
        email = address(user)
        return self.run(
            user, f"exsync auth graph --flow auth-code {self.graph_args()} --user {email} --login-hint {email} --auto"
        )

    # looking at the state ---------------------------------------------------------------------
    @property
    def state(self) -> StateStore:
        return StateStore(self.state_url)

    @property
    def settings(self) -> Settings:
        return Settings.load(self.state)

    def vault_names(self, prefix: str) -> list[str]:
        return Vault(self.state).names(prefix)

    def user(self, user: str) -> User:
        found = self.state.user(address(user))
        assert found is not None, f"{user} is unknown to exsync"
        return found

    def all_output(self) -> str:
        return "\n".join(r.output for r in self.results)
