"""A node's data directory: what lives where, and `initialise` (``milagro-node init``).

Layout (the directory is 0700; files holding credentials are 0600):

    node.toml     the node config, written once with every default documented
    node.db       the SQLite store (blocks, actor state, audit log)
    admin.token   the admin API token, for the CLI and the operator; the node
                  itself keeps only its SHA-256 in the store
    run.json      while the node runs: pid, API URL, start time
    softhsm/      the default SoftHSM2 token (softhsm2.conf, tokens/), see
                  actors.hsm_worker.provision
    hsm.pin       its user PIN (hsm.pin_file), when init generated it

`initialise` is idempotent: it creates only what is missing and never
replaces an existing config, store or token.

HSM: with the SoftHSM2 module (the default) `initialise` creates the data
dir's token when it has none, with a random user PIN written 0600 to
hsm.pin_file, or with the operator's PIN when hsm.pin_env / MILAGRO_HSM_PIN
(or an existing PIN file) supplies one. It records that in the store, so a
data dir whose token went missing later (copied without softhsm/) is refused
instead of silently getting a new, empty token: its wrapped secrets need the
old one. Other modules are provisioned by the operator with the vendor's
tools; `initialise` only checks that the configured token opens. Then it
creates the keys the node keeps in the token (the keystore's KEK).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from actors.api_gateway import TOKEN_KEY, TOKEN_NAMESPACE, token_digest
from milagro_node.adapters.sqlite_store import Store
from milagro_node.private_files import write_private

from .config import NodeConfig, load_node_config, render_default_config

# Store record of the SoftHSM token `initialise` created for this data dir.
HSM_NAMESPACE = "hsm"
SOFTHSM_TOKEN_KEY = "softhsm-token"


@attrs.frozen
class DataDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "node.toml"

    @property
    def db(self) -> Path:
        return self.root / "node.db"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    def read_run_file(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def write_run_file(self, info: dict[str, Any]) -> None:
        write_private(self.run_file, json.dumps(info, indent=2).encode())

    def read_admin_token(self) -> str:
        return self.admin_token.read_text().strip()


def initialise(root: Path, config: NodeConfig | None = None, *,
               environ: Mapping[str, str] = os.environ) -> list[str]:
    """Create what a node needs in `root`; return what was created (for the CLI).

    `config` is the node's config for `root` (default: loaded from `root`
    after its node.toml is written). Raises HsmError when the HSM part fails
    (everything before it stays created; a re-run continues from there).
    """
    data = DataDir(root)
    created: list[str] = []
    if not root.exists():
        created.append(f"data dir {root}")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not data.config.exists():
        write_private(data.config, render_default_config(root).encode())
        created.append(f"config {data.config}")
    store = Store.open(data.db)
    data.db.chmod(0o600)
    try:
        if store.kv_get(TOKEN_NAMESPACE, TOKEN_KEY) is None:
            token = "mn_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
            write_private(data.admin_token, token.encode() + b"\n")
            store.kv_put(TOKEN_NAMESPACE, TOKEN_KEY, token_digest(token))
            store.audit_append("cli", "node.init", {"data_dir": str(root)})
            created.append(f"admin token {data.admin_token}")
        if config is None:
            config = load_node_config(None, data_dir=root, environ=environ)
        created += _initialise_hsm(config, store, environ)
    finally:
        store.close()
    return created


def _initialise_hsm(config: NodeConfig, store: Store, environ: Mapping[str, str]) -> list[str]:
    """The data dir's SoftHSM token (when that is the module), then a session check and the keys."""
    # Imported here: commands that never touch the HSM need not load PKCS#11.
    from actors.hsm_worker.provision import create_softhsm_token, softhsm_token_present, softhsm_tokens_dir
    from actors.hsm_worker.session import HsmError, Pkcs11Session
    from actors.keystore import bootstrap_kek

    from .hsm_setup import hsm_target, is_default_softhsm, new_pin_file, read_pin

    created: list[str] = []
    hsm = config.hsm
    if is_default_softhsm(config):
        tokens = softhsm_tokens_dir(config.data_dir)
        record = store.kv_get(HSM_NAMESPACE, SOFTHSM_TOKEN_KEY)
        if not softhsm_token_present(config.data_dir):
            if record is not None:
                raise HsmError("hsm-unavailable", (
                    f"no usable token: this data dir had a SoftHSM token in {tokens} and it is gone (copied or "
                    "restored without its softhsm/ directory?); restore that directory. init does not make a "
                    "new token here, because the secrets in this data dir are wrapped under a key in the old one"))
            pin_file = new_pin_file(config, environ)
            user_pin, where = (None, f"PIN in {pin_file}, 0600") if pin_file else read_pin(config, environ)
            try:
                create_softhsm_token(config.data_dir, hsm.token_label, pin_file, user_pin=user_pin, module=hsm.module)
            finally:
                if user_pin is not None:
                    user_pin.close()
            if pin_file is None:
                where = f"PIN from {where}"
            store.audit_append("cli", "hsm.softhsm-token-created", {"label": hsm.token_label, "tokens": str(tokens)})
            created.append(f"SoftHSM token {hsm.token_label!r} in {tokens} ({where})")
        if record is None:
            store.kv_put(HSM_NAMESPACE, SOFTHSM_TOKEN_KEY,
                         json.dumps({"label": hsm.token_label, "tokens": str(tokens)}).encode())

    target = hsm_target(config, environ)
    try:
        # rescan: this process may have used the module on another token directory (tests)
        session = Pkcs11Session.open(target, rescan=True)
    finally:
        target.pin.close()
    try:
        created += bootstrap_kek(session, store)  # the keystore's node KEK, idempotently
    finally:
        session.close()
    return created
