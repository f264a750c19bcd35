"""Run the Node scenario scripts of tests/js and read the JSON they print.

The scripts need Node >= 20 and the npm packages of tests/js/package-lock.json, which
`scripts/run-tests` installs (`npm ci` in tests/js). Without them a test fails and says
how to get them: it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from tests.integration.server_process import ROOT

JS_DIR = os.path.join(ROOT, "tests", "js")
NODE_MIN_MAJOR = 20


class JsSetupError(AssertionError):
    """Node or the npm packages are missing: says how to install them."""


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise JsSetupError("Node.js is not installed: these tests need Node >= "
                           f"{NODE_MIN_MAJOR} (apt-get install nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < NODE_MIN_MAJOR:
        raise JsSetupError(f"Node {version} is too old: these tests need Node >= "
                           f"{NODE_MIN_MAJOR}")
    return node


def require_packages(*names: str) -> None:
    """Fail unless every npm package `names` is installed under tests/js/node_modules."""
    missing = [name for name in names
               if not os.path.exists(os.path.join(JS_DIR, "node_modules", name,
                                                  "package.json"))]
    if missing:
        raise JsSetupError(
            f"npm packages missing in {JS_DIR}/node_modules: {', '.join(missing)}; "
            f"scripts/run-tests installs them, or run `npm ci` in {JS_DIR}")


class ScriptResult:
    """What a scenario script printed: `data` (its JSON) and its stderr."""

    def __init__(self, data: dict[str, Any], stderr: str, returncode: int) -> None:
        self.data = data
        self.stderr = stderr
        self.returncode = returncode

    def __getitem__(self, key: str) -> Any:
        return self.data.get(key)

    @property
    def errors(self) -> list[dict[str, str]]:
        return list(self.data.get("errors", []))

    def explain(self) -> str:
        """The script's errors, its values and the end of its log, for a failure message."""
        errors = "\n".join(f"[{e.get('step')}] {e.get('error')}" for e in self.errors)
        values = json.dumps({k: v for k, v in self.data.items() if k != "errors"}, indent=1)
        return (f"script errors:\n{errors or '(none)'}\nvalues: {values}\n"
                f"--- script stderr (end) ---\n{self.stderr[-6000:]}")


def run_script(script: str, config: dict[str, Any], timeout: float,
               env: dict[str, str] | None = None) -> ScriptResult:
    """Run `node tests/js/SCRIPT '<config as JSON>'` and parse the JSON line it prints.

    The script bounds its own steps; `timeout` (seconds) is the last resort here.
    """
    node = node_binary()
    proc = subprocess.run(
        [node, os.path.join(JS_DIR, script), json.dumps(config)], cwd=JS_DIR,
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(
            f"{script} printed no JSON result (exit {proc.returncode}):\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-6000:]}")
    return ScriptResult(json.loads(lines[-1]), proc.stderr, proc.returncode)
