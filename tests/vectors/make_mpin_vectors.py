"""Generate tests/vectors/mpin-v1.json: M-Pin test vectors from fixed seeds.

Run from the repository root:  .venv/bin/python tests/vectors/make_mpin_vectors.py
The output is deterministic (every scalar comes from a seed below, through the core's
``randbytes`` hook), and tests/core/test_mpin_vectors_own.py checks that running this again
gives the file byte for byte, and recomputes every value with py-arkworks-bls12381 from the
JSON alone.

What the file holds, for implementers in other languages (a browser client, say): the DSTs;
for one identity and three D-TAs, every share and sum, the PIN mapping and the token; a
two-pass login with and without a time permit (x, y, U, UT, V); a one-pass login (t,
message, the derived y, V); and a DVS enrolment and login (z, Pa, ID ‖ Pa, token, V).
Scalars are hex big-endian (32 bytes), points hex compressed (48 or 96 bytes).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from milagro_node.adapters.pairing import R
from milagro_node.core import mpin

OUT = Path(__file__).with_name("mpin-v1.json")
IDENTITY = b"alice@example.org"
PIN_DIGITS = "4921"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


def seeded(label: str):
    """A randbytes(64) for the core that returns SHA-512 of a tagged label (then of its count)."""
    count = [0]

    def randbytes(n: int) -> bytes:
        assert n == 64
        count[0] += 1
        return hashlib.sha512(f"milagro-mpin-v1-vector:{label}:{count[0]}".encode()).digest()

    return randbytes


def scalar_from(randbytes) -> int:
    return int.from_bytes(randbytes(64), "big") % R


def sc(k: int) -> str:
    return k.to_bytes(32, "big").hex()


def pt(p) -> str:
    return p.to_bytes().hex()


def render() -> str:
    masters = [mpin.new_master_share(seeded(f"dta-{i}")) for i in range(3)]
    cs_shares = [mpin.client_secret_share(s, IDENTITY) for s in masters]
    ss_shares = [mpin.server_secret_share(s) for s in masters]
    cs, ss = mpin.combine(cs_shares), mpin.combine(ss_shares)
    pin = mpin.pin_from_digits(PIN_DIGITS)
    token = mpin.extract_pin(cs, IDENTITY, pin)
    day = mpin.day_of(NOW)
    tp_shares = [mpin.time_permit_share(s, IDENTITY, day) for s in masters]
    tp = mpin.combine(tp_shares)

    def two_pass(label: str, *, identity=IDENTITY, token=token, permit=None, pa=None, dvs_z=None):
        attempt = mpin.ClientAttempt(token, identity, pin, permit=permit, day=day if permit else None,
                                     dvs_z=dvs_z, randbytes=seeded(f"{label}-client"))
        session = mpin.LoginSession(ss, attempt.pass1, now=NOW, ttl=30, day=day if permit else None, pa=pa,
                                    randbytes=seeded(f"{label}-server"))
        y = session.challenge(now=NOW)
        v = attempt.respond(y)
        session.finish(v, now=NOW + 1)
        out = {"x": sc(scalar_from(seeded(f"{label}-client"))), "U": pt(attempt.pass1.u), "y": sc(y), "V": pt(v)}
        if permit is not None:
            out["UT"] = pt(attempt.pass1.ut)
        return out

    message = b"login to example.org"
    one = mpin.ClientAttempt(token, IDENTITY, pin, randbytes=seeded("one-pass")).one_pass(t=NOW, message=message)
    mpin.verify_one_pass(ss, one, now=NOW, replay=mpin.ReplayCache(60), message=message)

    dvs = mpin.DvsKey.generate(seeded("dvs"))
    dvs_id = mpin.dvs_identity(IDENTITY, dvs.pa)
    dvs_cs = mpin.combine([mpin.client_secret_share(s, dvs_id) for s in masters])
    dvs_token = mpin.extract_pin(dvs_cs, dvs_id, pin, dvs_z=dvs.z)

    doc = {
        "description": "M-Pin on BLS12-381 (milagro_node.core.mpin), version 1. Scalars: 32-byte big-endian "
        "hex; points: compressed hex. Regenerate with tests/vectors/make_mpin_vectors.py.",
        "dst_identity": mpin.DST_IDENTITY.decode(),
        "dst_time_permit": mpin.DST_TIME_PERMIT.decode(),
        "identity": IDENTITY.decode(),
        "A": pt(mpin.identity_point(IDENTITY)),
        "dtas": [
            {"master_share": sc(s), "client_share": pt(c), "server_share": pt(q), "time_permit_share": pt(t)}
            for s, c, q, t in zip(masters, cs_shares, ss_shares, tp_shares)
        ],
        "client_secret": pt(cs),
        "server_secret": pt(ss),
        "pin_digits": PIN_DIGITS,
        "pin": pin,
        "token": pt(token),
        "now": NOW,
        "day": day,
        "H_T": pt(mpin.day_point(IDENTITY, day)),
        "time_permit": pt(tp),
        "two_pass": two_pass("two-pass"),
        "two_pass_with_permit": two_pass("two-pass-permit", permit=tp),
        "one_pass": {
            "x": sc(scalar_from(seeded("one-pass"))),
            "t": NOW,
            "message": message.decode(),
            "U": pt(one.pass1.u),
            "y": sc(mpin.one_pass_challenge(one.pass1, NOW, message)),
            "V": pt(one.v),
        },
        "dvs": {
            "z": sc(dvs.z),
            "Pa": pt(dvs.pa),
            "identity": dvs_id.hex(),
            "client_secret": pt(dvs_cs),
            "token": pt(dvs_token),
            "login": two_pass("dvs", identity=dvs_id, token=dvs_token, pa=dvs.pa, dvs_z=dvs.z),
        },
    }
    return json.dumps(doc, indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
