"""The Synapse-compatible admin API, under `/_synapse/admin/`."""

from __future__ import annotations

import re


def admin_patterns(path_regex: str, version: str = "v1") -> tuple[str, ...]:
    """The regex for an admin API path, e.g. `/_synapse/admin/v1/registration_tokens`."""
    return (f"^/_synapse/admin/{re.escape(version)}{path_regex}$",)
