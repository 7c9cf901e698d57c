"""The pairing adapter (pyblst) and the M-Pin core agree with py-arkworks-bls12381.

arkworks is an independent implementation (and not constant time: tests only). Every
operation the core uses — scalar multiplication, addition, negation, hashing to G1,
decoding with subgroup checks, the pairing-product check — is computed both ways on
hypothesis-drawn inputs; then whole logins are recomputed with arkworks from the same
scalars, and arkworks's own pairing check must agree with the core's verdict.
"""

import py_arkworks_bls12381 as ark
from hypothesis import given, settings
from hypothesis import strategies as st

from milagro_node.adapters.pairing import G1, G2, R, BadPointError, hash_to_g1, pairing_product_is_one
from milagro_node.core import mpin

scalars = st.integers(min_value=0, max_value=R - 1) | st.sampled_from([0, 1, 2, R - 1, R - 2])
FAST = settings(max_examples=40, deadline=None)
SLOW = settings(max_examples=12, deadline=None)


def ark_g1(k: int) -> ark.G1Point:
    return ark.G1Point() * ark.Scalar(k)


def ark_g2(k: int) -> ark.G2Point:
    return ark.G2Point() * ark.Scalar(k)


def ours_as_ark_g1(p: G1) -> ark.G1Point:
    return ark.G1Point.from_compressed_bytes(p.to_bytes())


def ours_as_ark_g2(p: G2) -> ark.G2Point:
    return ark.G2Point.from_compressed_bytes(p.to_bytes())


@FAST
@given(a=scalars, b=scalars)
def test_g1_arithmetic_agrees(a, b):
    g = G1.generator()
    assert (g * a).to_bytes() == ark_g1(a).to_compressed_bytes()
    assert (g * a + g * b).to_bytes() == (ark_g1(a) + ark_g1(b)).to_compressed_bytes()
    assert (g * a - g * b).to_bytes() == (ark_g1(a) - ark_g1(b)).to_compressed_bytes()
    assert (-(g * a)).to_bytes() == (-ark_g1(a)).to_compressed_bytes()
    assert (g * a) * b == g * (a * b % R)


@FAST
@given(a=scalars, b=scalars)
def test_g2_arithmetic_agrees(a, b):
    q = G2.generator()
    assert (q * a).to_bytes() == ark_g2(a).to_compressed_bytes()
    assert (q * a + q * b).to_bytes() == (ark_g2(a) + ark_g2(b)).to_compressed_bytes()
    assert (-(q * a)).to_bytes() == (-ark_g2(a)).to_compressed_bytes()


@FAST
@given(msg=st.binary(max_size=300), k=scalars)
def test_hash_to_g1_with_the_project_dst_agrees(msg, k):
    ours = hash_to_g1(msg, mpin.DST_IDENTITY)
    theirs = ark.G1Point.hash_to_curve(msg, mpin.DST_IDENTITY)
    assert ours.to_bytes() == theirs.to_compressed_bytes()
    assert (ours * k).to_bytes() == (theirs * ark.Scalar(k)).to_compressed_bytes()


@FAST
@given(data=st.binary(min_size=48, max_size=48), flags=st.sampled_from([0x80, 0xA0]))
def test_g1_decoding_agrees(data, flags):
    data = bytes([(data[0] & 0x1F) | flags]) + data[1:]
    try:
        theirs = ark.G1Point.from_compressed_bytes(data)
    except Exception:
        theirs = None
    try:
        ours = G1.from_bytes(data)
    except BadPointError:
        ours = None
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert ours.to_bytes() == theirs.to_compressed_bytes() == data


@SLOW
@given(data=st.binary(min_size=96, max_size=96), flags=st.sampled_from([0x80, 0xA0]))
def test_g2_decoding_agrees(data, flags):
    data = bytes([(data[0] & 0x1F) | flags]) + data[1:]
    try:
        theirs = ark.G2Point.from_compressed_bytes(data)
    except Exception:
        theirs = None
    try:
        ours = G2.from_bytes(data)
    except BadPointError:
        ours = None
    assert (ours is None) == (theirs is None)


@SLOW
@given(a=scalars, b=scalars, c=scalars, d=scalars, cancel=st.booleans())
def test_pairing_product_check_agrees(a, b, c, d, cancel):
    if cancel:  # make e(a·G, b·Q)·e(c·G, d·Q) = 1: c·d = −a·b
        d = 1
        c = -a * b % R
    ours = pairing_product_is_one(G1.generator() * a, G2.generator() * b, G1.generator() * c, G2.generator() * d)
    theirs = ark.GT.pairing_check([ark_g1(a), ark_g1(c)], [ark_g2(b), ark_g2(d)])
    assert ours == theirs
    assert ours == ((a * b + c * d) % R == 0)


def counter_bytes(seed: int):
    """A deterministic randbytes for the core, so arkworks can redo the same computation."""
    state = [seed]

    def randbytes(n: int) -> bytes:
        state[0] += 1
        return (state[0].to_bytes(8, "big") * ((n + 7) // 8))[:n]

    return randbytes


@SLOW
@given(
    shares=st.lists(st.integers(min_value=1, max_value=R - 1), min_size=1, max_size=4),
    identity=st.binary(min_size=1, max_size=64),
    pin=st.integers(min_value=0, max_value=99_999_999),
    typo=st.sampled_from([0, 0, 1, -1, 12345]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_whole_login_agrees_with_arkworks(shares, identity, pin, typo, seed):
    cs = mpin.combine([mpin.client_secret_share(s, identity) for s in shares])
    ss = mpin.combine([mpin.server_secret_share(s) for s in shares])
    token = mpin.extract_pin(cs, identity, pin)
    entered = min(max(pin + typo, 0), 99_999_999)
    rand = counter_bytes(seed)
    attempt = mpin.ClientAttempt(token, identity, entered, randbytes=rand)
    session = mpin.LoginSession(ss, attempt.pass1, now=0, ttl=60, randbytes=rand)
    y = session.challenge(now=1)
    v = attempt.respond(y)

    # The same computation in arkworks, from the same scalars.
    s = sum(shares) % R
    a = ark.G1Point.hash_to_curve(identity, mpin.DST_IDENTITY)
    x = int.from_bytes(counter_bytes(seed)(64), "big") % R
    assert ours_as_ark_g1(cs) == a * ark.Scalar(s)
    assert ours_as_ark_g2(ss) == ark_g2(s)
    assert ours_as_ark_g1(token) == a * ark.Scalar(s) - a * ark.Scalar(pin)
    assert ours_as_ark_g1(attempt.pass1.u) == a * ark.Scalar(x)
    sec = ours_as_ark_g1(token) + a * ark.Scalar(entered)
    assert ours_as_ark_g1(v) == -(sec * ark.Scalar((x + y) % R))
    p = a * ark.Scalar(y) + ours_as_ark_g1(attempt.pass1.u)
    theirs = ark.GT.pairing_check([ours_as_ark_g1(v), p], [ark.G2Point(), ours_as_ark_g2(ss)])

    assert theirs == (entered == pin)
    try:
        session.finish(v, now=2)
        ours = True
    except mpin.MpinError as exc:
        # When s = pin - entered (mod r) the client's secret collapses to the identity, so V
        # is the identity point, refused as a bad point before any pairing; a refusal either way.
        assert exc.code in ("mpin-bad-proof", "mpin-bad-point")
        ours = False
    assert ours == theirs
