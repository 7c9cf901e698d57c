"""node.toml's schema: every section and key, with its type, default, documentation
and check, plus the checks that only make sense for a node (roles, listen addresses).

Node layer (runtime).  ``runtime.config`` loads files and environment overrides
against ``SCHEMA``; ``runtime.config_template`` renders ``SCHEMA`` and
``SECTION_DOCS`` as the commented node.toml; ``runtime.federation`` reuses
``check_roles`` for its members' roles.  One table drives all three so that a key's
default, its documentation and its check cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import json
import re

from milagro_node.core.multiaddr import MultiaddrError, is_dns_name, parse_multiaddr

from .config_fields import (
    Key,
    _Invalid,
    check_env_name,
    check_path,
    in_range,
    one_of,
    printable_text,
)

__all__ = ["ROLES", "SCHEMA", "SECTION_DOCS", "check_roles", "parse_host_port"]

ROLES = ("dta", "mfa", "custody")
MiB = 1024 * 1024


# --------------------------------------------------------------------------- node checks


def parse_host_port(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[addr]:port"); raise ValueError naming the problem."""
    expected = f'expected "host:port", got {json.dumps(text)}'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise _Invalid(expected)
        try:
            if "%" in host:
                raise ValueError("zone ids are not supported")
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not an IPv6 address") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise _Invalid(expected)
        if ":" in host:
            raise _Invalid(f'IPv6 addresses go in brackets, e.g. "[::1]:7400"; got {json.dumps(text)}')
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not an IPv4 address") from None
        elif not is_dns_name(host):
            raise _Invalid(f"{json.dumps(host)} in {json.dumps(text)} is not a host name or IP address")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise _Invalid(f"port {json.dumps(port)} in {json.dumps(text)} is not a number 0..65535")
    return host, int(port)


def _check_listen(text: str) -> str:
    parse_host_port(text)
    return text


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """Non-empty, known, no duplicates (shared with the federation loader)."""
    if not roles:
        raise _Invalid(f"at least one role is needed ({', '.join(ROLES)})")
    for role in roles:
        one_of(*ROLES)(role)
    duplicates = sorted({role for role in roles if roles.count(role) > 1})
    if duplicates:
        raise _Invalid(f"duplicate role {', '.join(map(json.dumps, duplicates))}")
    return roles


def _check_p2p_listen(addrs: tuple[str, ...]) -> tuple[str, ...]:
    if not addrs:
        raise _Invalid("at least one listen multiaddr is needed")
    for addr in addrs:
        try:
            protocols = [name for name, _ in parse_multiaddr(addr)]
        except MultiaddrError as exc:
            raise _Invalid(str(exc)) from None
        if "tcp" not in protocols and "udp" not in protocols:
            raise _Invalid(f"listen multiaddr {json.dumps(addr)} needs an address and /tcp/<port> or /udp/<port>")
        if "p2p" in protocols:
            raise _Invalid(f"listen multiaddr {json.dumps(addr)} must not contain /p2p (the peer id comes from the node key)")
    return addrs


def _check_identities(cids: tuple[str, ...]) -> tuple[str, ...]:
    for cid in cids:
        if not re.fullmatch(r"b[a-z2-7]{20,100}", cid):
            raise _Invalid(f"{json.dumps(cid)} is not an identity CID (base32, starting with b)")
    return cids


# --------------------------------------------------------------------------- schema

SECTION_DOCS = {
    "node": "Who this node is and what it does.",
    "api": "Websocket API (admin console and client JSON-RPC).",
    "p2p": "libp2p: where to listen, and the federation file that pins the other members.",
    "hsm": "PKCS#11 module that wraps every secret at rest (SoftHSM2 by default).",
    "limits": "Back-pressure and timing limits for the actors.",
    "dta": "Distributed Trust Authority role: who may authorise enrolments.",
    "mfa": "M-Pin authentication role: lockout, sessions, assertions, time permits.",
}

SCHEMA: dict[str, dict[str, Key]] = {
    "node": {
        "name": Key("str", "milagro-node", "Name shown in logs and node.status.", printable_text(64)),
        "roles": Key("list", list(ROLES), 'Roles this node serves: any of "dta", "mfa", "custody".', check_roles),
        "log_format": Key("str", "kv", 'Log line format: "kv" (key=value) or "json".', one_of("kv", "json")),
        "log_level": Key("str", "info", '"debug", "info", "warning" or "error".',
                         one_of("debug", "info", "warning", "error")),
        "lock_memory": Key("bool", True, "Lock the whole process in RAM and out of core dumps (mlockall), where\n"
                           "RLIMIT_MEMLOCK is unlimited or the node has CAP_IPC_LOCK; node.status shows\n"
                           "secret_memory.process. false: only secret memory itself is locked."),
        "data_dir": Key("path", None, "Where the node keeps its store, keys and PIN file.\n"
                        "Default: this file's directory (MILAGRO_DATA_DIR wins over this key).",
                        check_path, env=False, active=False),
    },
    "api": {
        "listen": Key("str", "127.0.0.1:7400", 'Listen address "host:port"; IPv6 as "[::1]:7400"; port 0 picks one.',
                      _check_listen),
        "max_message_bytes": Key("int", 2 * MiB, "Largest websocket message accepted (1024 .. 16 MiB);\n"
                                 "the default fits envelope.send with a 1 MiB payload (base64).",
                                 in_range(1024, 16 * MiB)),
        "max_connections": Key("int", 64, "Concurrent websocket connections.", in_range(1, 100_000)),
        "requests_per_second": Key("float", 50.0, "Sustained request rate per connection.",
                                   in_range(0.0, 1e6, above=True)),
        "burst": Key("int", 100, "Requests a connection may send at once above that rate.", in_range(1, 1_000_000)),
        "console_idle_seconds": Key("int", 1800, "An admin console session ends after this long without an action.",
                                    in_range(1, 7 * 86400)),
        "console_max_seconds": Key("int", 43200, "...and this long after its login, whatever happens.",
                                   in_range(1, 30 * 86400)),
    },
    "p2p": {
        "listen": Key("list", ["/ip4/0.0.0.0/tcp/4001"], "Multiaddrs to listen on.", _check_p2p_listen),
        "peers_file": Key("path", "peers.toml", "The federation file (relative to this file's directory).\n"
                          "Left unset, a missing peers.toml means no federation yet; set, it must exist.",
                          check_path, active=False),
    },
    "hsm": {
        "module": Key("path", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module (shared library).", check_path),
        "token_label": Key("str", "milagro-node", "Label of the token holding the node's keys.", printable_text(32)),
        "token_serial": Key("opt_str", None, "Token serial number, when several tokens share the label.",
                            printable_text(16), active=False, example="0123456789abcdef"),
        "pin_file": Key("opt_path", "hsm.pin", "File holding the user PIN, relative to the data directory\n"
                        '(MILAGRO_HSM_PIN, when set, holds the PIN itself). "" for none.'),
        "pin_env": Key("opt_str", None, "Name of an environment variable holding the PIN.", check_env_name,
                       active=False, example="HSM_USER_PIN"),
        "pin": Key("opt_str", None, "The PIN itself: refused unless allow_pin_in_config = true (tests only).",
                   env=False, active=False, example="1234", secret=True),
        "allow_pin_in_config": Key("bool", False, "Accept hsm.pin in this file."),
    },
    "limits": {
        "mailbox_size": Key("int", 64, "Messages an actor's mailbox holds before senders wait (1..10000).",
                            in_range(1, 10_000)),
        "request_timeout": Key("float", 10.0, "Seconds before a request to an actor or peer fails.",
                               in_range(0.0, 3600.0, above=True)),
        "shutdown_grace": Key("float", 4.0, "Seconds actors get to finish on shutdown (at most 5).",
                              in_range(0.0, 5.0)),
    },
    "dta": {
        "grant_issuers": Key("list", [], "Identity CIDs whose grants authorise an enrolment here.\n"
                             "Empty: this node and every member pinned in peers.toml.", _check_identities,
                             active=False, example=["bafyrei..."]),
    },
    "mfa": {
        "max_failures": Key("int", 5, "Wrong logins in a row before an identity is locked (1..100;\n"
                            "NIST SP 800-63B allows up to 100; a small number lets anyone lock users out).",
                            in_range(1, 100)),
        "lockout_seconds": Key("int", 900, "How long a lockout lasts; 0: until an admin unlocks it.",
                               in_range(0, 365 * 86400)),
        "session_seconds": Key("int", 60, "Seconds between pass 1 and pass 2 before a login session expires.",
                               in_range(1, 3600)),
        "assertion_seconds": Key("int", 300, "Lifetime of a signed login assertion.", in_range(10, 86400)),
        "time_permits": Key("bool", True, "Require the day's time permit at login (revocation stops permits)."),
        "one_pass_skew": Key("int", 30, "Seconds a one-pass login's timestamp may differ from our clock.",
                             in_range(1, 600)),
        "workers": Key("int", 2, "Worker processes for pairings (pyblst holds the GIL).", in_range(1, 64)),
        "sync_login_audit": Key("bool", False, "Sync each login's audit entry to disk before its verdict (an fsync\n"
                                "per login). Off: it is written before the verdict, so a crash of the node\n"
                                "keeps it, and synced within 50 ms, so a power cut may lose the last 50 ms\n"
                                "of login entries. Failure counts are synced before the verdict either way."),
        "grant_issuers": Key("list", [], "Identity CIDs whose grants may register a user's DVS device key here\n"
                             "at its first key-escrow-less login. Empty: this node and every member\n"
                             "pinned in peers.toml (list the relying parties that are not D-TAs, so that\n"
                             "the D-TAs together cannot name a device key of their own).", _check_identities,
                             active=False, example=["bafyrei..."]),
        "require_device_key": Key("bool", False, "Take key-escrow-less (DVS) logins only: a token without a\n"
                                  "device key is refused (mfa-device-required)."),
    },
}
