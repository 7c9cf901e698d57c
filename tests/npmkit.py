"""Run the npm side of the interop checks (tests/interop/cid.mjs) once per module.

The packages come from tests/interop/package-lock.json, installed by
scripts/test.sh. Without node or the packages the checks skip, except under
CI (CI=true), where a missing npm side is a failure: the check must run there.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

INTEROP = Path(__file__).resolve().parent / "interop"
SCRIPT = INTEROP / "cid.mjs"
INSTALLED = INTEROP / "node_modules" / ".package-lock.json"  # written last by `npm ci`


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason} (CI is set, so the npm interop check must run)")
    pytest.skip(reason)


def run_cid_script(request: dict) -> dict:
    """Send `request` ({"values": [...], "raw": [...], "blocks": [...]}) to cid.mjs; return its answer."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (scripts/test.sh installs Debian's nodejs and npm as root)")
    if not INSTALLED.exists():
        unavailable(f"npm packages not installed: run `npm ci --prefix {INTEROP}` (scripts/test.sh does)")
    proc = subprocess.run([node, str(SCRIPT)], input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, cwd=INTEROP)
    assert proc.returncode == 0, f"cid.mjs failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)
