"""Cached tables are written only by the store that owns their cache (so it can invalidate)."""

from __future__ import annotations

import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# table -> the only modules allowed to change it
OWNERS = {
    "users": {"storage/stores/users.py"},
    "access_tokens": {"storage/stores/tokens.py", "storage/stores/devices.py"},
}


class CacheGuardTestCase(unittest.TestCase):
    def test_cached_tables_have_one_writer(self) -> None:
        """No module outside a cached table's store updates or deletes its rows."""
        offenders = []
        for path in sorted(ROOT.glob("*/**/*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith((".venv/", ".synapse-venv/", "tests/")):
                continue
            text = path.read_text(encoding="utf-8")
            for table, owners in OWNERS.items():
                pattern = rf"(UPDATE|DELETE FROM)\s+{table}\b"
                if rel not in owners and re.search(pattern, text):
                    offenders.append(f"{rel} writes {table}")
        self.assertEqual(offenders, [])
