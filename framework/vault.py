"""The secret vault: credentials and tokens encrypted at rest, and kept out of every output.

Secrets are Fernet-encrypted into the state store's ``secrets`` table. The key comes from
``EXSYNC_KEY`` or from a key file created with mode 0600 on first use. Every secret the
vault sees is remembered by the process-wide :data:`REDACTOR`, which the audit log and the
logging filter use to blank it wherever it might otherwise appear.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from framework.errors import ConfigurationError
from framework.state import StateStore, data_dir, secrets_table

REDACTED = "********"


class Redactor:
    """Remembers secret values and blanks them out of text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) >= 4:
            with self._lock:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    """A logging filter that blanks every known secret from log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = REDACTOR(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class Vault:
    """Encrypted secrets by name; names are paths like ``auth/ews-basic/<user>/password``."""

    def __init__(self, state: StateStore, key: bytes | None = None) -> None:
        self._state = state
        self._fernet = Fernet(key or load_key())

    def put(self, name: str, value: str | dict[str, Any]) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        _remember(value)
        token = self._fernet.encrypt(text.encode())
        with self._state.transaction() as conn:
            conn.execute(secrets_table.delete().where(secrets_table.c.name == name))
            conn.execute(secrets_table.insert().values(name=name, ciphertext=token))

    def get(self, name: str) -> str | None:
        with self._state.engine.connect() as conn:
            token = conn.execute(sa.select(secrets_table.c.ciphertext).where(secrets_table.c.name == name)).scalar()
        if token is None:
            return None
        try:
            text = self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                f"The secret {name!r} cannot be decrypted with the current key.",
                hint="Set EXSYNC_KEY (or restore the key file) that was in use when it was stored.",
            ) from exc
        REDACTOR.add(text)
        return text

    def get_json(self, name: str) -> dict[str, Any] | None:
        text = self.get(name)
        if text is None:
            return None
        value: dict[str, Any] = json.loads(text)
        _remember(value)
        return value

    def names(self, prefix: str = "") -> list[str]:
        with self._state.engine.connect() as conn:
            rows = conn.execute(sa.select(secrets_table.c.name).where(secrets_table.c.name.startswith(prefix))).all()
        return sorted(row.name for row in rows)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every secret whose name starts with ``prefix``; returns how many."""
        with self._state.transaction() as conn:
            result = conn.execute(secrets_table.delete().where(secrets_table.c.name.startswith(prefix)))
            return int(result.rowcount or 0)


def load_key() -> bytes:
    """``EXSYNC_KEY``, else the key file in the data directory, created 0600 on first use."""
    if env := os.environ.get("EXSYNC_KEY"):
        return _valid(env.encode(), "EXSYNC_KEY")
    path = Path(os.environ.get("EXSYNC_KEY_FILE") or data_dir() / "key")
    if path.exists():
        return _valid(path.read_bytes().strip(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _valid(key: bytes, source: str) -> bytes:
    try:
        Fernet(key)
    except ValueError as exc:
        raise ConfigurationError(
            f"The encryption key in {source} is not a valid key.",
            hint="It must be 32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key().",
        ) from exc
    return key


def _remember(value: Any) -> None:
    if isinstance(value, str):
        REDACTOR.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _remember(item)
