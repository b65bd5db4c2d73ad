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
from collections.abc import Callable
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
        _redact_record(record)
        return True


class _RedactingRecordFactory:
    """Wraps the log record factory so that every record is redacted as it is created."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        _redact_record(record)
        return record


def _redact_record(record: logging.LogRecord) -> None:
    """Blank known secrets from the message, the traceback and the stack of ``record``."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return
    redacted = REDACTOR(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        if REDACTOR(text) != text:
            record.exc_text = REDACTOR(text)  # formatters print exc_text instead of re-formatting
    elif record.exc_text:
        record.exc_text = REDACTOR(record.exc_text)
    if record.stack_info:
        record.stack_info = REDACTOR(record.stack_info)


def install_log_redaction() -> None:
    """Blank every known secret from every log record, whichever handler emits it (idempotent).

    Records are redacted as they are created (a log record factory), which covers handlers
    added later, handlers of any logger and logging's last-resort stderr handler; the
    filter on the root logger's handlers also catches secrets learnt after a record was made.
    """
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(factory))
    for handler in [*logging.getLogger().handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class Vault:
    """Encrypted secrets by name; names are paths like ``auth/ews-basic/<user>/password``."""

    def __init__(self, state: StateStore, key: bytes | None = None) -> None:
        self._state = state
        self._fernet = Fernet(key or load_key())
        install_log_redaction()  # a process that handles secrets never logs them

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
            rows = conn.execute(sa.select(secrets_table.c.name).where(_starts_with(prefix))).all()
        return sorted(row.name for row in rows)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every secret whose name starts with ``prefix``; returns how many."""
        with self._state.transaction() as conn:
            result = conn.execute(secrets_table.delete().where(_starts_with(prefix)))
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


def _starts_with(prefix: str) -> Any:
    """Names that start with ``prefix`` literally and case-sensitively on every database.

    (``LIKE 'prefix%'`` would read ``_`` and ``%`` in the prefix as wildcards, and SQLite's LIKE
    ignores case: ``delete_prefix("auth/u_1/")`` would also delete ``auth/u11/...``.)
    """
    name = secrets_table.c.name
    return sa.func.substr(name, 1, len(prefix)) == prefix if prefix else sa.true()


#: in a dict stored in the vault, values under keys naming one of these are secrets;
#: the rest (user names, URLs, client ids) may be shown
SECRET_KEY_WORDS = ("password", "secret", "token", "key", "cache", "assertion", "credential")


def _remember(value: Any) -> None:
    """Teach the redactor the secrets in ``value``: a string whole, a dict by its key names."""
    if isinstance(value, str):
        REDACTOR.add(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if any(word in str(key).lower() for word in SECRET_KEY_WORDS):
                _remember_all(item)
            elif isinstance(item, dict | list | tuple):
                _remember(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _remember(item)


def _remember_all(value: Any) -> None:
    if isinstance(value, str):
        REDACTOR.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _remember_all(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _remember_all(item)
