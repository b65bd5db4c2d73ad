"""Trust for the TLS connections exsync opens: one shared SSL context per CA bundle."""

from __future__ import annotations

import functools
import ssl

import httpx

from framework.errors import ConfigurationError

TRUST_HINT = (
    "Trust the CA that issued it: pass --ca-bundle PEM (or set EXSYNC_CA_BUNDLE) for one command, "
    "or save it once with 'exsync settings set --ca-bundle PEM'."
)


def untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (an httpx or requests error), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        for arg in getattr(current, "args", ()):
            if isinstance(arg, ssl.SSLCertVerificationError):
                return arg
            if isinstance(arg, BaseException) and "CERTIFICATE_VERIFY_FAILED" in str(arg):
                return untrusted_certificate(arg) or ssl.SSLCertVerificationError(str(arg))
        current = current.__cause__ or current.__context__
    return None


def certificate_error(host: str, exc: BaseException) -> ConfigurationError | None:
    """A clear error when ``exc`` is ``host``'s TLS certificate not being trusted, else None."""
    failure = untrusted_certificate(exc)
    if failure is None:
        return None
    reason = getattr(failure, "verify_message", "") or "certificate verify failed"
    return ConfigurationError(f"The TLS certificate of {host} is not trusted ({reason}).", hint=TRUST_HINT)


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
