"""Test-wide settings: a throwaway data directory and encryption key, never the user's own."""

from __future__ import annotations

import os
import tempfile

from cryptography.fernet import Fernet

os.environ["EXSYNC_HOME"] = tempfile.mkdtemp(prefix="exsync-test-home-")
os.environ["EXSYNC_KEY"] = Fernet.generate_key().decode()
os.environ["COLUMNS"] = "250"  # rich tables wide enough to read in captured output
for name in ("EXSYNC_STATE", "EXSYNC_AS", "EXSYNC_CA_BUNDLE"):
    os.environ.pop(name, None)
