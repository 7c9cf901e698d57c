"""``milagro-node``: the command line of a node.

Exit status: 0 success, 1 the operation failed (node down, audit chain
broken), 2 bad usage or bad configuration (the message names the file, the
key and what is wrong).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

import milagro_node
from actors.mailbox import ActorError
from milagro_node.adapters.sqlite_store import Store, StoreError
from milagro_node.api_client import ApiCallError, ApiUnavailable, connect
from milagro_node.runtime.config import ConfigError, NodeConfig, default_data_dir, load_node_config
from milagro_node.runtime.federation import load_configured_federation
from milagro_node.runtime.datadir import DataDir, initialise
from milagro_node.runtime.logs import configure_logging
from milagro_node.runtime.roles import RoleUnavailable, check_installed

from .tables import render_status


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help=f"the node's data directory (default: {default_data_dir()})",
                        default=argparse.SUPPRESS)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="node config file (default: <data dir>/node.toml)")
    parser = argparse.ArgumentParser(prog="milagro-node", parents=[common],
                                     description="Milagro Node: D-TA, M-Pin MFA and key custody peer node.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("init", parents=[common], help="create the data dir, config, store and admin token")
    commands.add_parser("run", parents=[common], help="run the node until Ctrl-C / SIGTERM")
    status = commands.add_parser("status", parents=[common], help="ask a running node for its status")
    status.add_argument("--json", action="store_true", help="print the raw JSON status")
    console = commands.add_parser("console", parents=[common],
                                  help="print a one-time login link to the running node's admin console")
    console.add_argument("--open", action="store_true", help="also open the link in a web browser")
    audit = commands.add_parser("audit", parents=[common], help="audit log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_commands.add_parser("verify", parents=[common], help="re-check the whole hash chain")
    hsm = commands.add_parser("hsm", parents=[common], help="HSM (PKCS#11) tools")
    hsm_commands = hsm.add_subparsers(dest="hsm_command", required=True, metavar="ACTION")
    hsm_commands.add_parser("check", parents=[common],
                            help="check that the configured module, token and PIN do what the node needs")
    identity = commands.add_parser("identity", parents=[common], help="the node's identity (decentralized PKI)")
    identity_commands = identity.add_subparsers(dest="identity_command", required=True, metavar="ACTION")
    show = identity_commands.add_parser("show", parents=[common], help="print the identity, its keys and roles")
    show.add_argument("--json", action="store_true", help="print JSON")
    identity_commands.add_parser("rotate", parents=[common],
                                 help="rotate to the pre-committed signing key and new encryption keys")
    export = identity_commands.add_parser("export", parents=[common], help="write the public identity log")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    imported = identity_commands.add_parser("import", parents=[common],
                                            help="verify and keep another node's exported identity log")
    imported.add_argument("file", type=Path, help="a log written by `identity export`")
    envelope = commands.add_parser("envelope", parents=[common], help="seal, open and inspect envelopes as files")
    envelope_commands = envelope.add_subparsers(dest="envelope_command", required=True, metavar="ACTION")
    seal = envelope_commands.add_parser("seal", parents=[common],
                                        help="encrypt and sign a payload from this node to recipients")
    seal.add_argument("--to", action="append", required=True, metavar="LOG_FILE|CID",
                      help="a recipient: an exported identity log, or the CID of a known identity (repeat)")
    seal.add_argument("--kind", default="file", help="what the payload is, for routing (default: file)")
    seal.add_argument("--suite", choices=("mx1", "mx2"),
                      help="mx1 (X25519) or mx2 (X25519 + ML-KEM-768); default mx2 if every recipient can")
    seal.add_argument("--ttl", type=int, default=24 * 3600, metavar="SECONDS",
                      help="lifetime (default: 86400, at most 7 days)")
    seal.add_argument("--in", dest="input", type=Path, metavar="FILE", help="the payload (default: standard input)")
    seal.add_argument("--out", type=Path, metavar="FILE", help="where to write the envelope (default: standard output)")
    opened = envelope_commands.add_parser("open", parents=[common],
                                          help="verify and decrypt an envelope addressed to this node")
    opened.add_argument("--from", dest="senders", action="append", type=Path, default=[], metavar="LOG_FILE",
                        help="the sender's exported identity log, if the node does not know it (repeat)")
    opened.add_argument("--in", dest="input", type=Path, metavar="FILE",
                        help="the envelope (default: standard input)")
    opened.add_argument("--out", type=Path, metavar="FILE",
                        help="where to write the payload (default: standard output)")
    inspected = envelope_commands.add_parser("inspect", parents=[common],
                                             help="print an envelope's header without verifying or decrypting")
    inspected.add_argument("--in", dest="input", type=Path, metavar="FILE",
                           help="the envelope (default: standard input)")
    inspected.add_argument("--json", action="store_true", help="print JSON")
    from .client import add_client_parser

    add_client_parser(commands, common)
    dev = commands.add_parser("devnet", help="run N nodes on 127.0.0.1 as one local federation, until Ctrl-C")
    dev.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    dev.add_argument("--dir", type=Path, default=Path("devnet"), help="where their data dirs go (default ./devnet)")
    commands.add_parser("version", parents=[common], help="print the version")
    return parser


def _config(args: argparse.Namespace) -> NodeConfig:
    return load_node_config(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))


def cmd_init(args: argparse.Namespace) -> int:
    config = _config(args)
    from actors.hsm_worker.session import HsmError  # imported late: other commands need not load PKCS#11

    from .identity import create_identity

    try:
        created = initialise(config.data_dir, config)
        created += create_identity(config)
    except HsmError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None
    except ActorError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None
    for item in created:
        print(f"created {item}")
    if not created:
        print(f"{config.data_dir} is already initialised; nothing changed")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging(config.node.log_format, config.node.log_level)
    load_configured_federation(config)  # a broken peers.toml stops the node here, not later
    try:
        check_installed(config.node.roles)
    except RoleUnavailable as exc:
        raise CliError(str(exc), 2) from None
    data = DataDir(config.data_dir)
    if not data.db.exists():
        raise CliError(f"{config.data_dir} is not initialised: run milagro-node init --data-dir {config.data_dir}", 2)
    from milagro_node.runtime.node import lock_memory, serve  # imported late: `status` need not load the actors

    lock_memory(config)  # before any key is loaded
    trio.run(serve, config)
    return 0


def node_admin_target(config: NodeConfig) -> tuple[str, str]:
    """The API URL of the node running from `config`'s data dir, and its admin token."""
    data = DataDir(config.data_dir)
    run = data.read_run_file() or {}
    url = run.get("api") or f"ws://{config.api.listen}"
    token = os.environ.get("MILAGRO_ADMIN_TOKEN")
    if token is None:
        try:
            token = data.read_admin_token()
        except OSError as exc:
            raise CliError(f"cannot read the admin token ({exc.strerror}: {data.admin_token}); "
                           "set MILAGRO_ADMIN_TOKEN or pass the node's --data-dir", 2) from None
    return url, token


def ask_node(config: NodeConfig, method: str, **params: Any) -> Any:
    """One admin call to the node running from `config`'s data dir; CliError when it fails."""
    url, token = node_admin_target(config)

    async def ask() -> Any:
        async with connect(url, token=token) as api:
            return await api.call(method, **params)

    try:
        return trio.run(ask)
    except ApiCallError as exc:
        raise CliError(f"the node at {url} refused: {exc.message}") from None
    except ApiUnavailable as exc:
        raise CliError(f"{exc}; is the node running?") from None


def cmd_status(args: argparse.Namespace) -> int:
    status = ask_node(_config(args), "node.status")
    print(json.dumps(status, indent=2) if args.json else render_status(status))
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    ticket = ask_node(_config(args), "console.ticket")
    print(f"Admin console (this link logs in once, within {ticket['expires_in']:.0f} s):\n\n    {ticket['url']}\n")
    if args.open:
        import webbrowser  # imported late: only this flag needs it

        if not webbrowser.open(ticket["url"]):
            print("milagro-node: no browser to open here; open the link above yourself", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    config = _config(args)
    db = DataDir(config.data_dir).db
    if not db.exists():
        raise CliError(f"no store at {db}: is {config.data_dir} a node's data dir?", 2)
    try:
        store = Store.open(db)
    except StoreError as exc:
        raise CliError(f"cannot open the store: {exc}") from None
    try:
        verdict = store.audit_verify()
    finally:
        store.close()
    if verdict.ok:
        print(f"audit chain ok: {verdict.checked} entries verified")
        return 0
    print(f"audit chain BROKEN at entry {verdict.first_bad_seq}: {verdict.reason}", file=sys.stderr)
    return 1


def cmd_hsm(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging(config.node.log_format, "warning")  # e.g. a PIN file readable by others
    from .hsm import run_check  # imported late: other commands need not load PKCS#11

    return run_check(config)


def cmd_identity(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging(config.node.log_format, "warning")
    from . import identity

    try:
        if args.identity_command == "show":
            return identity.show(config, args.json)
        if args.identity_command == "rotate":
            return identity.rotate(config)
        if args.identity_command == "import":
            return identity.import_file(config, args.file)
        return identity.export(config, args.out)
    except ActorError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None


def cmd_envelope(args: argparse.Namespace) -> int:
    from . import envelope

    if args.envelope_command == "inspect":  # reads a file: no node, no config
        return envelope.inspect(args.input, args.json)
    config = _config(args)
    configure_logging(config.node.log_format, "warning")
    try:
        if args.envelope_command == "seal":
            return envelope.seal(config, args.to, kind=args.kind, suite=args.suite, ttl=args.ttl,
                                 input_path=args.input, out=args.out)
        return envelope.open_(config, args.senders, input_path=args.input, out=args.out)
    except ActorError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None


def cmd_devnet(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 32:
        raise CliError("--nodes must be from 1 to 32", 2)
    from . import devnet

    return devnet.run(args.dir, args.nodes)


def cmd_client(args: argparse.Namespace) -> int:
    from . import client

    return client.run(args, node_admin_target=lambda: node_admin_target(_config(args)))


def cmd_version(args: argparse.Namespace) -> int:
    print(f"milagro-node {milagro_node.__version__}")
    return 0


COMMANDS = {"init": cmd_init, "run": cmd_run, "status": cmd_status, "console": cmd_console, "audit": cmd_audit, "hsm": cmd_hsm, "identity": cmd_identity,
            "envelope": cmd_envelope, "client": cmd_client, "devnet": cmd_devnet, "version": cmd_version}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"milagro-node: configuration error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"milagro-node: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
