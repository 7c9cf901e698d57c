"""tests/vectors/mpin-v1.json: regenerated identically, then recomputed from the JSON alone.

Every value is recomputed with py-arkworks-bls12381 from the scalars in the file, following
the protocol as written in `milagro_node.core.mpin`'s docstring (not the core's code), so the
file is a specification another implementation can be checked against. Finally the core's
own verifier accepts the logins from their decoded bytes.
"""

import hashlib
import json
from pathlib import Path

import py_arkworks_bls12381 as ark

from milagro_node.core import mpin
from vectors import make_mpin_vectors

VECTORS = Path(__file__).parents[1] / "vectors" / "mpin-v1.json"
DATA = json.loads(VECTORS.read_text())
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
Q = ark.G2Point()


def sc(hex_: str) -> ark.Scalar:
    return ark.Scalar(int(hex_, 16))


def g1(hex_: str) -> ark.G1Point:
    return ark.G1Point.from_compressed_bytes(bytes.fromhex(hex_))


def g2(hex_: str) -> ark.G2Point:
    return ark.G2Point.from_compressed_bytes(bytes.fromhex(hex_))


IDENTITY = DATA["identity"].encode()
A = ark.G1Point.hash_to_curve(IDENTITY, DATA["dst_identity"].encode())
H_T = ark.G1Point.hash_to_curve(
    DATA["day"].to_bytes(8, "big") + hashlib.sha256(IDENTITY).digest(), DATA["dst_time_permit"].encode()
)
S = sum(int(d["master_share"], 16) for d in DATA["dtas"]) % R


def test_the_file_is_what_the_generator_makes():
    assert VECTORS.read_text() == make_mpin_vectors.render()


def test_shares_sums_and_token():
    assert g1(DATA["A"]) == A
    assert g1(DATA["H_T"]) == H_T
    assert DATA["day"] == DATA["now"] // 86400
    for dta in DATA["dtas"]:
        s = sc(dta["master_share"])
        assert g1(dta["client_share"]) == A * s
        assert g2(dta["server_share"]) == Q * s
        assert g1(dta["time_permit_share"]) == H_T * s
    assert g1(DATA["client_secret"]) == A * ark.Scalar(S)
    assert g2(DATA["server_secret"]) == Q * ark.Scalar(S)
    assert g1(DATA["time_permit"]) == H_T * ark.Scalar(S)
    assert DATA["pin"] == int(DATA["pin_digits"])  # 4 digits: the plain value
    assert g1(DATA["token"]) == A * ark.Scalar(S) - A * ark.Scalar(DATA["pin"])


def check_login(login, *, a=A, sec, base, pa=Q):
    x, y = int(login["x"], 16), int(login["y"], 16)
    assert g1(login["U"]) == a * ark.Scalar(x)
    u = g1(login["UT"]) if "UT" in login else g1(login["U"])
    assert u == base * ark.Scalar(x)
    v = g1(login["V"])
    assert v == -(sec * ark.Scalar((x + y) % R))
    p = base * ark.Scalar(y) + u
    assert ark.GT.pairing_check([v, p], [pa, g2(DATA["server_secret"])])


def test_two_pass_logins():
    sec = g1(DATA["token"]) + A * ark.Scalar(DATA["pin"])
    check_login(DATA["two_pass"], sec=sec, base=A)
    check_login(DATA["two_pass_with_permit"], sec=sec + g1(DATA["time_permit"]), base=A + H_T)


def test_one_pass_login_and_its_challenge():
    one = DATA["one_pass"]
    h = hashlib.sha512(b"MILAGRO-MPIN-V1-ONE-PASS")
    h.update(one["t"].to_bytes(8, "big", signed=True))
    for part in (IDENTITY, bytes.fromhex(one["U"]), b"", one["message"].encode()):
        h.update(len(part).to_bytes(4, "big") + part)
    assert int(one["y"], 16) == int.from_bytes(h.digest(), "big") % R
    check_login(one, sec=g1(DATA["token"]) + A * ark.Scalar(DATA["pin"]), base=A)


def test_dvs_enrolment_and_login():
    dvs = DATA["dvs"]
    z = int(dvs["z"], 16)
    pa = g2(dvs["Pa"])
    assert pa == Q * ark.Scalar(pow(z, -1, R))
    identity = bytes.fromhex(dvs["identity"])
    assert identity == IDENTITY + pa.to_compressed_bytes()
    a = ark.G1Point.hash_to_curve(identity, DATA["dst_identity"].encode())
    assert g1(dvs["client_secret"]) == a * ark.Scalar(S)
    assert g1(dvs["token"]) == a * ark.Scalar(S * z % R) - a * ark.Scalar(DATA["pin"])
    sec = g1(dvs["token"]) + a * ark.Scalar(DATA["pin"])
    check_login(dvs["login"], a=a, sec=sec, base=a, pa=pa)


def test_the_core_accepts_the_logins_from_their_bytes():
    ss = mpin.decode_g2(bytes.fromhex(DATA["server_secret"]))
    for key, day in (("two_pass", None), ("two_pass_with_permit", DATA["day"])):
        login = DATA[key]
        ut = mpin.decode_g1(bytes.fromhex(login["UT"])) if "UT" in login else None
        pass1 = mpin.Pass1(IDENTITY, mpin.decode_g1(bytes.fromhex(login["U"])), ut)
        assert mpin.verify_pass2(ss, pass1, int(login["y"], 16), mpin.decode_g1(bytes.fromhex(login["V"])), day=day)
    one = DATA["one_pass"]
    proof = mpin.OnePassProof(mpin.Pass1(IDENTITY, mpin.decode_g1(bytes.fromhex(one["U"]))),
                              mpin.decode_g1(bytes.fromhex(one["V"])), one["t"])
    mpin.verify_one_pass(ss, proof, now=one["t"], replay=mpin.ReplayCache(60), message=one["message"].encode())
