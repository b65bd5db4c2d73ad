"""Windows authentication of the fake EWS: NTLM, and Negotiate falling back to NTLM, as IIS answers it.

An on-premises Exchange serves EWS through IIS, whose Windows authentication offers
``WWW-Authenticate: Negotiate`` and ``WWW-Authenticate: NTLM`` (and ``Basic`` when the
administrator enabled it). NTLM authenticates a *connection*, in two round trips:

1. the client sends ``Authorization: NTLM <NEGOTIATE_MESSAGE>`` (or ``Negotiate <token>``);
   the server answers 401 with ``WWW-Authenticate: NTLM <CHALLENGE_MESSAGE>``;
2. the client sends ``Authorization: NTLM <AUTHENTICATE_MESSAGE>`` on the same connection; the
   server checks the response against the account's password hash and serves the request.
   Later requests on that connection need no Authorization header.

The acceptor is pyspnego's (``spnego.server``), so a wrong password fails inside the protocol
(the NTLMv2 response does not match), not in code of ours. pyspnego's NTLM acceptor reads the
accounts from the credential file named by ``NTLM_USER_FILE`` (the format gss-ntlmssp shares:
``DOMAIN:USER:PASSWORD`` lines); :class:`WindowsAuth` writes one file per tenant (mode 0600) and
points the variable at it while the acceptor runs, under a process-wide lock. Each mailbox can
log in as ``NETBIOS\\user``, ``dns.domain\\user`` or by UPN (``user@dns.domain``, no domain).

Left out: Kerberos (the ``Negotiate`` scheme falls back to NTLM, as it does for a client outside
the domain), channel binding checks (Extended Protection) and per-request re-authentication.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import struct
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from fakes.tenant import Tenant

SCHEMES = ("Negotiate", "NTLM")
_ENVIRONMENT = "NTLM_USER_FILE"
_environment_lock = threading.Lock()  # NTLM_USER_FILE is process-wide


@dataclass
class Step:
    """What one Authorization header led to: an authenticated account, a token to send back, or neither."""

    principal: str | None = None
    token: str | None = None
    scheme: str = "NTLM"


class WindowsAuth:
    """The NTLM/Negotiate acceptor of one tenant, with the state of each connection it authenticated.

    ``step(connection, header)`` advances the handshake of ``connection``; ``principal(connection)``
    is the account a connection authenticated as (``DOMAIN\\user`` or a UPN) and its scheme, or None.
    """

    MAX_CONNECTIONS = 4096

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.netbios = tenant.domain.split(".")[0].upper()
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, Any] = OrderedDict()
        self._done: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._file: Path | None = None
        self._written: tuple[tuple[str, str], ...] = ()

    def principal(self, connection: int) -> tuple[str, str] | None:
        """The account ``connection`` authenticated as and the scheme it used, if it did."""
        with self._lock:
            return self._done.get(connection)

    def step(self, connection: int, header: str) -> Step:
        """Feed the ``Authorization: NTLM|Negotiate <token>`` of ``connection`` to its acceptor."""
        scheme, _, encoded = header.partition(" ")
        scheme = next((s for s in SCHEMES if s.lower() == scheme.lower()), "NTLM")
        try:
            token = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return Step(scheme=scheme)
        with self._lock:
            acceptor = self._pending.pop(connection, None)
            self._done.pop(connection, None)
        try:
            with self._credentials():
                if acceptor is None:
                    acceptor = spnego.server(protocol=scheme.lower(), service="HTTP")
                answer = acceptor.step(token)
        except (SpnegoError, ValueError, struct.error):
            return Step(scheme=scheme)  # a wrong password or a malformed message: start again
        reply = base64.b64encode(answer).decode() if answer else None
        with self._lock:
            if not acceptor.complete:
                self._remember(self._pending, connection, acceptor)
                return Step(token=reply, scheme=scheme)
            principal = str(acceptor.client_principal or "")
            self._remember(self._done, connection, (principal, scheme))
        return Step(principal=principal, token=reply, scheme=scheme)

    def _remember(self, table: OrderedDict[int, Any], connection: int, value: Any) -> None:
        table[connection] = value
        while len(table) > self.MAX_CONNECTIONS:
            table.popitem(last=False)

    @contextlib.contextmanager
    def _credentials(self) -> Iterator[None]:
        """The tenant's credential file as ``NTLM_USER_FILE`` while pyspnego reads it."""
        with _environment_lock:
            path = self._credential_file()
            previous = os.environ.get(_ENVIRONMENT)
            os.environ[_ENVIRONMENT] = str(path)
            try:
                yield
            finally:
                if previous is None:
                    os.environ.pop(_ENVIRONMENT, None)
                else:
                    os.environ[_ENVIRONMENT] = previous

    def _credential_file(self) -> Path:
        """The credential file of the tenant's mailboxes, rewritten when an account or password changed."""
        accounts = tuple(sorted((box.address, box.password) for box in self.tenant.users() if box.password))
        if self._file is not None and accounts == self._written:
            return self._file
        if self._file is None:
            handle, name = tempfile.mkstemp(prefix="exsync-fake-ntlm-", suffix=".txt")
            os.close(handle)
            self._file = Path(name)
            self._file.chmod(0o600)
            weakref.finalize(self, self._file.unlink, missing_ok=True)
        lines = []
        for address, password in accounts:
            if ":" in password or "\n" in password:
                continue  # the file format cannot hold it: such an account can only use Basic
            user, _, dns = address.partition("@")
            lines += [f"{self.netbios}:{user}:{password}", f"{dns}:{user}:{password}", f":{address}:{password}"]
        self._file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._written = accounts
        return self._file
