"""Hook functions a sandbox node imports by reference (``where="remote"`` tests)."""

from __future__ import annotations

import json
import os
from typing import Any


def record_where(input: dict[str, Any], tool_use_id: str | None) -> dict[str, Any]:
    """Record which OS process ran this hook, then let the tool call go on."""
    with open(os.environ["REMOTE_HOOK_LOG"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "tool": input.get("tool_name")}) + "\n")
    return {}
