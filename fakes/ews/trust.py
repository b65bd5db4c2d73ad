"""Make exchangelib trust a private CA (the fakes' CA, or an on-premises Exchange's internal CA).

``REQUESTS_CA_BUNDLE`` overrides a session's ``verify`` in requests, so exchangelib's documented
hook is used instead: an HTTPAdapter subclass, installed as ``BaseProtocol.HTTP_ADAPTER_CLS``, that
passes the CA bundle when it verifies certificates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests.adapters
from exchangelib.protocol import BaseProtocol, close_connections


def ca_adapter(bundle_path: Path | str) -> type[requests.adapters.HTTPAdapter]:
    """An HTTPAdapter class that verifies server certificates against ``bundle_path`` only."""
    bundle = str(bundle_path)

    class CABundleAdapter(requests.adapters.HTTPAdapter):
        """Verifies TLS against the configured CA bundle, whatever ``verify`` says."""

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn=conn, url=url, verify=bundle, cert=cert)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            return super().get_connection_with_tls_context(request, bundle, proxies=proxies, cert=cert)

    return CABundleAdapter


@contextmanager
def trust_ca(bundle_path: Path | str) -> Iterator[type[requests.adapters.HTTPAdapter]]:
    """Within the block, exchangelib trusts the CA in ``bundle_path``; the previous adapter is restored after.

    Cached exchangelib protocols (and their pooled sessions) are closed on entry and exit, so no
    session made with another adapter is reused.
    """
    previous = BaseProtocol.HTTP_ADAPTER_CLS
    adapter = ca_adapter(bundle_path)
    close_connections()
    BaseProtocol.HTTP_ADAPTER_CLS = adapter
    try:
        yield adapter
    finally:
        close_connections()
        BaseProtocol.HTTP_ADAPTER_CLS = previous
