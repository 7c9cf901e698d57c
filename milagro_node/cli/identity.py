"""``milagro-node identity show|rotate|export|import`` and the identity step of ``init``.

They run the data dir's store, HSM worker and keystore in this process
(`offline_node`): signing keys never leave the HSM, the encryption keys stay
wrapped under the KEK. ``rotate`` refuses while the node runs, so one process
at a time extends the log. ``import`` stores another node's exported log
(`actors.known_logs`), so ``envelope seal --to CID`` and ``envelope open`` know it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from actors.node_identity import NodeIdentity
from milagro_node.core.identity import IdentityError, IdentityState, export_log, verify_log
from milagro_node.core.multiaddr import parse_multiaddr
from milagro_node.runtime.config import NodeConfig
from milagro_node.runtime.datadir import DataDir
from milagro_node.runtime.offline import offline_node


def describe(state: IdentityState) -> dict[str, Any]:
    return {
        "identity": state.identity, "seq": state.seq, "head": state.head, "revoked": state.revoked,
        "sign_key": state.sign_key.hex(), "x25519": state.x25519.hex(),
        "mlkem768": state.mlkem768.hex() if state.mlkem768 else None,
        "roles": list(state.roles), "peer_id": state.peer_id, "addrs": list(state.addrs), "created": state.created,
    }


async def _with_identity(config: NodeConfig, action: str) -> Any:
    async with offline_node(config) as node:
        identity = NodeIdentity(node)
        if action == "create":
            return await identity.create(roles=tuple(config.node.roles), addrs=dialable(config.p2p.listen))
        if action == "rotate":
            return await identity.rotate()
        if action == "events":
            return await identity.events()
        raise ValueError(action)


def dialable(listen: tuple[str, ...]) -> tuple[str, ...]:
    """The listen addresses a peer could dial: a wildcard host (0.0.0.0, ::) names no address,
    so it is not announced in the identity (peers then use the addresses in peers.toml)."""
    return tuple(addr for addr in listen if parse_multiaddr(addr)[0][1] not in ("0.0.0.0", "::"))


def create_identity(config: NodeConfig) -> list[str]:
    """The init step: make the node's identity if it has none; say what was made."""
    state, created = trio.run(_with_identity, config, "create")
    return [f"node identity {state.identity} (peer id {state.peer_id})"] if created else []


def show(config: NodeConfig, as_json: bool) -> int:
    events = trio.run(_with_identity, config, "events")
    if not events:
        print("this node has no identity yet: run milagro-node init", file=sys.stderr)
        return 1
    info = describe(verify_log(events))
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        if info["mlkem768"]:  # 1,184 bytes: the human view shows its start
            info["mlkem768"] = f"{info['mlkem768'][:32]}... ({len(info['mlkem768']) // 2} bytes)"
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {', '.join(value) if isinstance(value, list) else value}")
    return 0


def rotate(config: NodeConfig) -> int:
    run = DataDir(config.data_dir).read_run_file()
    if run and _alive(run.get("pid")):
        print(f"the node is running (pid {run['pid']}): stop it before rotating its identity", file=sys.stderr)
        return 1
    state = trio.run(_with_identity, config, "rotate")
    print(f"rotated {state.identity} to event {state.seq} (signing key {state.sign_key.hex()})")
    return 0


def export(config: NodeConfig, out: Path | None) -> int:
    events = trio.run(_with_identity, config, "events")
    if not events:
        print("this node has no identity yet: run milagro-node init", file=sys.stderr)
        return 1
    data = export_log(events)
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        print(f"wrote the public identity log ({len(events)} events) to {out}", file=sys.stderr)
    return 0


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def import_file(config: NodeConfig, path: Path) -> int:
    """Verify an exported log and keep it; refuse one that forks from what is stored."""
    from .envelope import read_log, require_data_dir
    from .main import CliError

    require_data_dir(config)
    events, state = read_log(path)
    try:
        result = trio.run(_import, config, events)
    except IdentityError as exc:
        raise CliError(f"identity {exc.code}: {exc.message}") from None
    if result is None:
        print(f"{state.identity} is this node's own identity; nothing to import")
        return 0
    status = " (revoked)" if result.state.revoked else ""
    if result.after == result.before:
        print(f"{state.identity} already known: {_events(result.before)}, nothing new{status}")
    elif result.before == 0:
        print(f"imported {state.identity}: {_events(result.after)}, seq {result.state.seq}{status}")
    else:
        print(f"extended {state.identity} from {result.before} to {_events(result.after)}{status}")
    return 0


def _events(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


async def _import(config: NodeConfig, events: list[bytes]) -> Any:
    from actors.known_logs import KnownLogs, merge_logs

    async with offline_node(config) as node:
        own = await NodeIdentity(node).events()
        if own and own[0] == events[0]:
            # Our own log is kept by NodeIdentity; a copy that disagrees with it is a fork.
            merged = merge_logs(verify_log(own).identity, own, events)
            if not isinstance(merged, list):
                raise merged.error("this node's log", "the file")
            return None
        return await KnownLogs(node).add(events)
