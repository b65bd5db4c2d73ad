"""Trust for the TLS connections exsync opens: one shared SSL context per CA bundle."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.lru_cache(maxsize=8)
def ssl_context(verify: str | bool) -> ssl.SSLContext:
    """The SSL context for ``verify``: a CA-bundle path, True for the bundled public CAs
    (certifi, as httpx uses), False for none.

    Building a context loads its certificates, which takes milliseconds; a sweep opens clients
    for every user, so each context is built once per process and shared (contexts are safe to
    share between connections and threads).
    """
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=False)
