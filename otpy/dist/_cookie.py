"""The distribution cookie when none is given, read or created like ``erl`` does."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["default_cookie"]


def default_cookie() -> str:
    """The cookie when none is given: ``$OTPY_COOKIE``, else ``~/.erlang.cookie``
    (created like erl does, 20 random capitals, mode 0400, if missing)."""
    env = os.environ.get("OTPY_COOKIE")
    if env:
        return env
    path = Path.home() / ".erlang.cookie"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        cookie = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(20))
        path.write_text(cookie)
        path.chmod(0o400)
        return cookie
