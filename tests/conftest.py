"""Rules of this suite.

- Real parts only: SQLite files in tmp_path, websockets on 127.0.0.1 with port 0,
  node processes started with the installed `milagro-node` command. No mocks.
- Tests that sleep use trio's MockClock(autojump_threshold=0) (`autojump_clock`).
- Every test that starts a process bounds its waits and stops what it started.
- Nothing here reads or writes outside tmp_path; the environment of child
  processes is this one minus MILAGRO_* variables, plus what a test sets.
- A failed test that used a devnet reports each node's logged warnings and errors: the
  assertion says what did not happen, the nodes often say why (a timing failure on a
  loaded CI machine may not come back).
"""

import subprocess

import pytest
import trio.testing

from devnetkit import Devnet
from testkit import BIN, clean_env


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def cli():
    """Run `milagro-node ARGS...` to completion; return the CompletedProcess."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "milagro-node"), *map(str, args)],
            capture_output=True, text=True, timeout=timeout, env=env or clean_env(),
        )

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "setup" or not report.failed:
        return
    for net in {id(v): v for v in item.funcargs.values() if isinstance(v, Devnet)}.values():
        for i in range(1, len(net.nodes) + 1):
            report.sections.append((f"node-{i} warnings and errors", net.warnings(i) or "(none)"))
