"""`exsync fakes serve --json`: one line of URLs and credentials, then real servers until stopped."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import httpx
import pytest


def test_serve_prints_urls_and_credentials_that_work_then_stops_on_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "framework", "fakes", "serve", "--json", "--size", "3", "--ews-no-basic"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        verify = ssl.create_default_context(cafile=info["ca_bundle"])
        crm = info["crm"]
        admin = next(u for u in crm["users"] if u["admin"])
        token = httpx.post(
            f"{crm['accounts_url']}/oauth/v2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": crm["client_id"],
                "client_secret": crm["client_secret"],
                "refresh_token": admin["refresh_token"],
            },
            verify=verify,
        ).json()["access_token"]
        org = httpx.get(
            f"{crm['api_url']}/crm/v8/org", headers={"Authorization": f"Zoho-oauthtoken {token}"}, verify=verify
        )
        assert org.status_code == 200
        graph = info["graph"]
        discovery = httpx.get(
            f"{graph['authority']}/{graph['tenant']}/v2.0/.well-known/openid-configuration", verify=verify
        )
        assert discovery.json()["token_endpoint"].startswith("https://")
        ews = httpx.post(info["ews"]["endpoint"], content=b"", verify=verify)
        assert ews.status_code == 401  # authentication is required: Windows only, as asked
        assert ews.headers.get_list("WWW-Authenticate") == ["Negotiate", "NTLM"]
        assert (info["ews"]["authentication"], info["ews"]["domain"]) == (["Negotiate", "NTLM"], "CONTOSO")
        assert info["ews"]["impersonation_account"]["email"].startswith("svc@")
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_faults_are_injected_into_served_fakes_from_outside_the_process(tmp_path):
    env = {**os.environ, "EXSYNC_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "framework", "fakes", "serve", "--json", "--size", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def fault(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "framework", "fakes", "fault", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    try:
        info = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        verify = ssl.create_default_context(cafile=info["ca_bundle"])
        org_url = f"{info['crm']['api_url']}/crm/v8/org"
        zoho_429 = '{"code": "TOO_MANY_REQUESTS", "details": {}, "message": "slow down", "status": "error"}'

        added = fault("crm", "--path", "/crm/v8/", "--status", "429", "--body", zoho_429, "--times", "1")
        throttled = httpx.get(org_url, verify=verify)
        after = httpx.get(org_url, verify=verify)
        listed = fault("crm", "--list")
        dropping = fault("graph", "--drop")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{info['graph']['graph_url']}/v1.0/users", verify=verify)
        cleared = fault("graph", "--clear")
        refused = fault("crm", "--status", "700")
        nothing = fault("crm")

        assert added.returncode == 0, added.stderr
        assert (throttled.status_code, throttled.json()["code"]) == (429, "TOO_MANY_REQUESTS")
        assert "Retry-After" not in throttled.headers
        assert after.status_code == 401  # the fault fired once; then the fake answers (no token here)
        assert [rule["fired"] for rule in json.loads(listed.stdout)] == [1]
        assert (dropping.returncode, cleared.returncode) == (0, 0)
        assert httpx.get(f"{info['graph']['graph_url']}/v1.0/users", verify=verify).status_code == 401
        assert refused.returncode != 0 and "no HTTP status" in refused.stderr
        assert nothing.returncode != 0 and "--status, --latency or --drop" in nothing.stderr
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
    assert not (tmp_path / "fakes.json").exists()
    assert fault("crm", "--list").returncode != 0
