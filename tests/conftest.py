"""Test-wide settings: a throwaway data directory and encryption key, never the user's own."""

from __future__ import annotations

import os
import tempfile

from cryptography.fernet import Fernet

os.environ["EXSYNC_HOME"] = tempfile.mkdtemp(prefix="exsync-test-home-")
os.environ["EXSYNC_KEY"] = Fernet.generate_key().decode()
os.environ.pop("EXSYNC_STATE", None)
