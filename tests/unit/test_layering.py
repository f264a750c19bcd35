"""The layers import one way: servlets -> handlers -> stores (DESIGN.md, "Layout")."""

from __future__ import annotations

import ast
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# package -> top-level packages it must never import
FORBIDDEN = {
    "homeserver": {"storage", "handlers", "client_api", "rest", "federation"},
    "storage": {"handlers", "client_api", "rest", "federation"},
    "handlers": {"client_api", "rest"},
    "client_api": {"storage"},
    "rest": {"storage"},
}

# The container and CLI wire every layer together; they are the only exceptions.
WIRING = {"homeserver/server.py", "homeserver/__main__.py", "homeserver/app.py",
          "homeserver/logging_setup.py"}


def imported_packages(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


class LayeringTestCase(unittest.TestCase):
    def test_imports_point_one_way(self) -> None:
        """No store imports a handler, no servlet imports a store, the core imports neither."""
        violations = []
        for package, forbidden in FORBIDDEN.items():
            for path in sorted((ROOT / package).rglob("*.py")):
                rel = path.relative_to(ROOT).as_posix()
                if rel in WIRING:
                    continue
                bad = imported_packages(path) & forbidden
                if bad:
                    violations.append(f"{rel} imports {sorted(bad)}")
        self.assertEqual(violations, [])

    def test_checker_sees_violations(self) -> None:
        """The import scanner finds both plain and from-imports (guards the test above)."""
        tmp = ROOT / "tests" / "unit" / "_layering_probe.py"
        tmp.write_text("import storage.database\nfrom handlers.auth import Auth\n")
        try:
            self.assertEqual(imported_packages(tmp), {"storage", "handlers"})
        finally:
            tmp.unlink()
