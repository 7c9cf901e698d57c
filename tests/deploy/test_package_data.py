"""Every native extension that native/build.py makes ships in the installed package.

A non-editable install (the container image) carries only what pyproject.toml's package-data
names: an extension missing there builds, then fails at the first import in the image.
"""

import fnmatch
import importlib.util
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_extension_is_package_data():
    spec = importlib.util.spec_from_file_location("native_build", REPO / "native" / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("native_build", build)
    spec.loader.exec_module(build)
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["milagro_node"]
    for name in build.EXTENSIONS:
        so = f"{name}.cpython-311-x86_64-linux-gnu.so"
        assert any(fnmatch.fnmatch(so, p) for p in patterns), f"{name} is not in pyproject.toml's package-data"
