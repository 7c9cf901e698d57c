"""A node's data directory: what lives where, and `initialise` (``milagro-node init``).

Layout (the directory is 0700; files holding credentials are 0600):

    node.toml     the node config, written once with every default documented
    node.db       the SQLite store (blocks, actor state, audit log)
    admin.token   the admin API token, for the CLI and the operator; the node
                  itself keeps only its SHA-256 in the store
    run.json      while the node runs: pid, API URL, start time

`initialise` is idempotent: it creates only what is missing and never
replaces an existing config, store or token.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import attrs

from actors.api_gateway import TOKEN_KEY, TOKEN_NAMESPACE, token_digest
from milagro_node.adapters.sqlite_store import Store

from .config import render_default_config


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
        _write_private(self.run_file, json.dumps(info, indent=2).encode())

    def read_admin_token(self) -> str:
        return self.admin_token.read_text().strip()


def initialise(root: Path) -> list[str]:
    """Create what a node needs in `root`; return what was created (for the CLI)."""
    data = DataDir(root)
    created: list[str] = []
    if not root.exists():
        created.append(f"data dir {root}")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not data.config.exists():
        _write_private(data.config, render_default_config(root).encode())
        created.append(f"config {data.config}")
    store = Store.open(data.db)
    data.db.chmod(0o600)
    try:
        if store.kv_get(TOKEN_NAMESPACE, TOKEN_KEY) is None:
            token = "mn_" + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
            _write_private(data.admin_token, token.encode() + b"\n")
            store.kv_put(TOKEN_NAMESPACE, TOKEN_KEY, token_digest(token))
            store.audit_append("cli", "node.init", {"data_dir": str(root)})
            created.append(f"admin token {data.admin_token}")
    finally:
        store.close()
    return created


def _write_private(path: Path, content: bytes) -> None:
    """Write `content` to `path` atomically, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
