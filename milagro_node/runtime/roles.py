"""Which installed components each role needs, and a clear refusal when they are missing.

Node layer (runtime). A node installs only the roles it serves (``scripts/install.sh
--roles dta,mfa`` installs the base plus pyproject.toml's optional groups of those roles).
`check_installed` runs before a node starts, so a role whose components are absent stops
the node with the command that adds them, instead of an ImportError from deep inside an
actor.

Two checks, because a package can be present without its role having been installed (libp2p
itself pulls in coincurve and pycryptodome, which the custody role also needs): the roles
that install.sh recorded in the environment (``<venv>/.milagro-installed``: "<inputs hash>
<groups>", e.g. "3f2a... dta,mfa"), when that record exists, and the importable modules of
each role. `ROLE_MODULES` must stay in step with pyproject.toml's
``[project.optional-dependencies]``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ROLE_MODULES", "RoleUnavailable", "check_installed", "install_command", "missing_modules"]

# role -> the top-level modules its actors import (pyproject groups: dta, mfa, custody)
ROLE_MODULES: dict[str, tuple[str, ...]] = {
    "dta": ("pyblst",),
    "mfa": ("pyblst", "trio_parallel"),
    "custody": ("coincurve", "Crypto"),
}
INSTALL_RECORD = ".milagro-installed"


class RoleUnavailable(Exception):
    """A configured role cannot run here; the message names the install command."""


def missing_modules(role: str) -> list[str]:
    return [name for name in ROLE_MODULES.get(role, ()) if importlib.util.find_spec(name) is None]


def recorded_roles(prefix: Path | None = None) -> set[str] | None:
    """The role groups install.sh installed into this environment, or None if it kept no record."""
    try:
        fields = (Path(prefix or sys.prefix) / INSTALL_RECORD).read_text().split()
    except OSError:
        return None
    return set(fields[1].split(",")) - {"test"} if len(fields) > 1 else set()


def install_command(roles: Iterable[str]) -> str:
    return f"scripts/install.sh --roles {','.join(roles)}"


def check_installed(roles: tuple[str, ...]) -> None:
    """Raise `RoleUnavailable` naming every configured role that lacks its components."""
    recorded = recorded_roles()
    problems = []
    for role in roles:
        modules = missing_modules(role)
        if modules:
            problems.append(f"the {role} role needs {', '.join(modules)}, which is not installed here")
        elif recorded is not None and role in ROLE_MODULES and role not in recorded:
            installed = ",".join(sorted(recorded)) or "no role"
            problems.append(f"the {role} role is not installed in this environment (installed: {installed})")
    if problems:
        raise RoleUnavailable(f"{'; '.join(problems)}: run {install_command(roles)}, "
                              f"or remove the role from [node] roles")
