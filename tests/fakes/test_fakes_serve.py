"""`exsync fakes serve --json`: one line of URLs and credentials, then real servers until stopped."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys

import httpx


def test_serve_prints_urls_and_credentials_that_work_then_stops_on_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "framework", "fakes", "serve", "--json", "--size", "3"],
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
        assert ews.status_code == 401  # Basic authentication is required
        assert info["ews"]["impersonation_account"]["email"].startswith("svc@")
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
