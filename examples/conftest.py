"""What the examples' end-to-end tests share with tests/conftest.py: each process a test starts
takes any free port for its admin listener, and logs readable lines."""

from __future__ import annotations

import os

os.environ.setdefault("RECEIVER_ADMIN_PORT", "0")
os.environ.setdefault("RECEIVER_LOG_FORMAT", "console")
