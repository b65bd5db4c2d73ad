"""What a new administrator meets first on the command line, against the fakes: certificate
errors that say what to do, ``--json`` where people type it, a CA bundle saved once."""

from __future__ import annotations

import json

from fakes.cloud import GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, TENANT_ID
from fakes.crm.seed import CLIENT_ID, CLIENT_SECRET
from fakes.harness import ADMIN, World, address


def _crm_login(world: World, *, trust_ca: bool):
    token = world.cloud.crm_refresh_token(address(ADMIN))
    args = ["crm", "login", "--accounts-url", world.cloud.crm_url, "--client-id", CLIENT_ID]
    args += ["--client-secret", CLIENT_SECRET, "--refresh-token", token]
    return world.invoke(args, trust_ca=trust_ca)


def _names_the_untrusted_certificate(output: str) -> None:
    text = " ".join(output.split())
    assert "The TLS certificate of 127.0.0.1 is not trusted" in text, text
    assert "--ca-bundle" in text and "exsync settings set --ca-bundle PEM" in text
    assert "could not be reached" not in text


def test_a_crm_behind_an_untrusted_certificate_says_so_and_how_to_trust_it(world: World):
    result = _crm_login(world, trust_ca=False)
    assert result.exit_code == 1
    _names_the_untrusted_certificate(result.output)


def test_a_graph_authority_behind_an_untrusted_certificate_says_so(world: World):
    assert _crm_login(world, trust_ca=True).exit_code == 0
    world.run(ADMIN, "exsync install --scope all --accept-terms")
    graph = (
        f"exsync auth graph --flow client-credentials --tenant {TENANT_ID} --client-id {GRAPH_CLIENT_ID} "
        f"--client-secret {GRAPH_CLIENT_SECRET} --authority {world.cloud.authority_url} "
        f"--graph-url {world.cloud.graph_url}"
    )
    result = world.run(ADMIN, graph, trust_ca=False)
    assert result.exit_code == 1
    _names_the_untrusted_certificate(result.output)


def test_the_ca_bundle_saved_once_is_trusted_by_every_later_command(world: World):
    assert _crm_login(world, trust_ca=True).exit_code == 0
    bundle = str(world.cloud.ca.bundle_path)
    saved = world.run(ADMIN, f"exsync --json settings set --ca-bundle {bundle}")
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.stdout)["ca_bundle"] == bundle
    listed = world.run(ADMIN, "exsync users list", trust_ca=False)
    assert listed.exit_code == 0, listed.output
    assert address(ADMIN) in listed.output


def test_a_ca_bundle_that_is_not_pem_is_refused(world: World, tmp_path):
    assert _crm_login(world, trust_ca=True).exit_code == 0
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    result = world.run(ADMIN, f"exsync settings set --ca-bundle {junk}")
    assert result.exit_code == 2
    assert "holds no PEM certificate" in result.output
    assert not world.settings.ca_bundle


def test_the_help_names_the_environment_variables(world: World):
    text = " ".join(world.invoke(["--help"]).output.split())
    for variable in ("EXSYNC_CA_BUNDLE", "EXSYNC_STATE", "EXSYNC_AS"):
        assert variable in text


def test_json_works_after_the_subcommand_too(world: World):
    world.run(ADMIN, "exsync install --scope all --accept-terms")
    for command in ("users list", "status", "settings show", "audit --since 7d", "auth status"):
        before = world.run(ADMIN, f"exsync --json {command}")
        after = world.run(ADMIN, f"exsync {command} --json")
        assert after.exit_code == 0, after.output
        assert json.loads(after.stdout) == json.loads(before.stdout) or command.startswith("audit"), command
    refused = world.run(ADMIN, "exsync users enable nobody@example.com --json")
    assert refused.exit_code == 2
    assert json.loads(refused.stderr)["error"].startswith("No CRM user")
