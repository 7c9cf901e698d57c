"""Real SoftHSM2 tokens for tests (imported by name: tests/ is on sys.path).

Each test gets its own token directory under tmp_path, initialised with
``softhsm2-util`` (fine in tests; nodes create theirs with `milagro-node init`).

One process, many token directories: SoftHSM reads ``SOFTHSM2_CONF`` when the
module is initialised, and python-pkcs11 loads the module once per process.
`activate` points the module at a token's directory by re-initialising it
(`Pkcs11Session.open(..., rescan=True)`), so call it before starting actors
on that token, and only while no other session of this process is open.
Child processes get the token through `SoftToken.env` / `SoftToken.argv`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from actors.hsm_worker import HsmTarget, HsmWorker
from actors.hsm_worker.session import Pkcs11Session
from actors.keystore import Keystore, KeystoreClient
from actors.store import StoreActor
from milagro_node.runtime.supervisor import ActorSpec, Supervisor
from milagro_node.secret_memory import SecretBytes

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@attrs.frozen
class SoftToken:
    conf: Path
    label: str
    pin: str

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def target(self) -> HsmTarget:
        return HsmTarget(MODULE, self.label, None, SecretBytes.copy_from(self.pin.encode()),
                         tuple(self.env.items()))

    def argv(self) -> list[str]:
        return [str(self.conf), self.label, self.pin]

    @classmethod
    def from_argv(cls, conf: str, label: str, pin: str) -> SoftToken:
        return cls(Path(conf), label, pin)


def make_token(root: Path, label: str = "milagro-test", pin: str = "test-user-pin", *,
               mechanisms: tuple[str, ...] | None = None) -> SoftToken:
    """Create a token directory with its own softhsm2.conf under `root` and one token in it.

    `mechanisms` (e.g. ``("CKM_AES_KEY_GEN", "CKM_AES_GCM")``): the only ones the token
    lists (SoftHSM's ``slots.mechanisms``), to play a token that lacks some; all by default.
    """
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    allowed = "" if mechanisms is None else f"slots.mechanisms = {','.join(mechanisms)}\n"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n{allowed}")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "test-so-pin", "--pin", pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)}, check=True, capture_output=True, timeout=30)
    return SoftToken(conf, label, pin)


def activate(token: SoftToken) -> None:
    """Point this process's PKCS#11 module at `token`'s directory (see the module docstring)."""
    os.environ.update(token.env)
    Pkcs11Session.open(token.target(), rescan=True).close()


def keystore_specs(db: Path, token: SoftToken) -> list[ActorSpec]:
    """The actors a keystore needs: store, hsm-worker, keystore."""
    return [
        ActorSpec("store", lambda: StoreActor(db)),
        ActorSpec("hsm-worker", lambda: HsmWorker(token.target)),
        ActorSpec("keystore", Keystore, needs=("store", "hsm-worker")),
    ]


@contextlib.asynccontextmanager
async def keystore_node(db: Path, token: SoftToken) -> AsyncIterator[tuple[KeystoreClient, Supervisor]]:
    """Run store + hsm-worker + keystore on `db` and `token` for the block; stop them after."""
    async with trio.open_nursery() as nursery:
        sup = Supervisor(keystore_specs(db, token), node_status=lambda: {"actors": sup.snapshot()})
        await nursery.start(sup.run)
        yield KeystoreClient(sup), sup
        nursery.cancel_scope.cancel()


@pytest.fixture
def soft_token(tmp_path, monkeypatch) -> SoftToken:
    """A fresh token in tmp_path/hsm, active in this process for the test."""
    token = make_token(tmp_path / "hsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    activate(token)
    return token
