"""Trusting a CA bundle in exchangelib, whatever ``REQUESTS_CA_BUNDLE`` says.

exchangelib talks through ``requests`` sessions that honour the environment, so a
``REQUESTS_CA_BUNDLE`` variable replaces any ``verify`` value we could pass. exchangelib lets
us choose the HTTP adapter class of every session it creates (``BaseProtocol.HTTP_ADAPTER_CLS``),
so :class:`TrustingAdapter` substitutes the CA bundle registered for the endpoint's origin
(scheme, host, port) at the moment a connection is chosen and verified. Endpoints without a
registered bundle keep the usual behaviour (the system's trust store, or the environment's).

The same adapter hands exchangelib responses that give a body already read in 64 KiB
chunks: exchangelib parses a SOAP answer from ``response.iter_content()``, whose default
chunk is one byte, and that loop cost more CPU than parsing the XML. A streamed body (EWS
streaming notifications) still comes as it arrives.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from exchangelib.protocol import BaseProtocol

READ_CHUNK = 64 * 1024  # bytes of a response body exchangelib gets at a time
_lock = threading.Lock()
_bundles: dict[str, str] = {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def trust(endpoint: str, ca_bundle: str | bool) -> None:
    """Verify the TLS certificate of ``endpoint``'s origin against ``ca_bundle`` (True: the default)."""
    origin = _origin(endpoint)
    with _lock:
        if isinstance(ca_bundle, str):
            _bundles[origin] = ca_bundle
        else:
            _bundles.pop(origin, None)
    BaseProtocol.HTTP_ADAPTER_CLS = TrustingAdapter


def bundle_for(url: str, verify: Any) -> Any:
    """The ``verify`` value to use for ``url``: its registered bundle, else ``verify`` unchanged."""
    if verify is False:
        return verify
    with _lock:
        return _bundles.get(_origin(url), verify)


class TrustingAdapter(requests.adapters.HTTPAdapter):
    """An HTTP adapter that verifies each origin against the CA bundle registered with :func:`trust`."""

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, bundle_for(url, verify), cert)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        return super().get_connection_with_tls_context(
            request, bundle_for(request.url, verify), proxies=proxies, cert=cert
        )

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        response.__class__ = _ChunkedResponse
        return response


class _ChunkedResponse(requests.Response):
    """A response whose ``iter_content()`` gives a body already read :data:`READ_CHUNK` bytes at
    a time, not one (a body still streaming keeps the caller's chunk: it must not wait to fill)."""

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: Any = False) -> Any:
        if self._content_consumed:
            chunk_size = max(chunk_size or 0, READ_CHUNK)
        return super().iter_content(chunk_size, decode_unicode)
