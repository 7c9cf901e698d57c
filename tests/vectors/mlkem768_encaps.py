"""Deterministic ML-KEM-768 encapsulation (FIPS 203, ML-KEM.Encaps_internal) in pure Python.

For test vectors only: OpenSSL (through `cryptography`) encapsulates with its own randomness,
so an envelope made with it can never be reproduced byte for byte. This module takes the
32-byte message ``m`` as input instead. It is slow (tens of ms) and not constant-time: never
use it for real secrets. `encapsulate` is checked against OpenSSL in tests/core/test_envelope_vectors.py:
OpenSSL's decapsulation of our ciphertext must give our shared secret (ML-KEM's implicit
rejection would give a different one for any wrong ciphertext bit).

Written from the FIPS 203 algorithm descriptions (SampleNTT, SamplePolyCBD, NTT, MultiplyNTTs,
ByteEncode/Decode, Compress, K-PKE.Encrypt, ML-KEM.Encaps_internal) with ML-KEM-768's
parameters; names follow the standard.
"""

from __future__ import annotations

import hashlib

Q = 3329
N = 256
K = 3
ETA1 = 2
ETA2 = 2
DU = 10
DV = 4


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]
GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]


def ntt(f: list[int]) -> list[int]:
    f = list(f)
    i = 1
    length = 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta = ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                f[j + length] = (f[j] - t) % Q
                f[j] = (f[j] + t) % Q
        length //= 2
    return f


def ntt_inverse(f: list[int]) -> list[int]:
    f = list(f)
    i = 127
    length = 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta = ZETAS[i]
            i -= 1
            for j in range(start, start + length):
                t = f[j]
                f[j] = (t + f[j + length]) % Q
                f[j + length] = zeta * (f[j + length] - t) % Q
        length *= 2
    return [x * 3303 % Q for x in f]  # 3303 = 128^-1 mod q


def multiply_ntts(f: list[int], g: list[int]) -> list[int]:
    h = [0] * N
    for i in range(128):
        a0, a1, b0, b1 = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * GAMMAS[i]) % Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % Q
    return h


def _add(f: list[int], g: list[int]) -> list[int]:
    return [(a + b) % Q for a, b in zip(f, g)]


def sample_ntt(seed: bytes) -> list[int]:
    """Rejection sampling of a uniform NTT-domain polynomial from SHAKE128(seed)."""
    length = 840
    while True:
        stream = hashlib.shake_128(seed).digest(length)
        a, pos = [], 0
        while len(a) < N and pos + 3 <= len(stream):
            c0, c1, c2 = stream[pos], stream[pos + 1], stream[pos + 2]
            pos += 3
            d1 = c0 + 256 * (c1 % 16)
            d2 = c1 // 16 + 16 * c2
            if d1 < Q:
                a.append(d1)
            if d2 < Q and len(a) < N:
                a.append(d2)
        if len(a) == N:
            return a
        length *= 2  # SHAKE's output is a prefix-stable stream: asking for more is the same XOF


def sample_cbd(data: bytes, eta: int) -> list[int]:
    bits = [(byte >> k) & 1 for byte in data for k in range(8)]
    f = []
    for i in range(N):
        x = sum(bits[2 * i * eta + j] for j in range(eta))
        y = sum(bits[2 * i * eta + eta + j] for j in range(eta))
        f.append((x - y) % Q)
    return f


def prf(eta: int, s: bytes, b: int) -> bytes:
    return hashlib.shake_256(s + bytes([b])).digest(64 * eta)


def byte_encode(f: list[int], d: int) -> bytes:
    value = 0
    for i, a in enumerate(f):
        value |= a << (i * d)
    return value.to_bytes(32 * d, "little")


def byte_decode(data: bytes, d: int) -> list[int]:
    value = int.from_bytes(data, "little")
    mask = (1 << d) - 1
    out = [(value >> (i * d)) & mask for i in range(N)]
    return [x % Q for x in out] if d == 12 else out


def compress(x: int, d: int) -> int:
    return ((x << d) + Q // 2) // Q % (1 << d)


def decompress(y: int, d: int) -> int:
    return (y * Q + (1 << (d - 1))) >> d


def kpke_encrypt(ek: bytes, m: bytes, r: bytes) -> bytes:
    t_hat = [byte_decode(ek[384 * i:384 * (i + 1)], 12) for i in range(K)]
    rho = ek[384 * K:384 * K + 32]
    a_hat = [[sample_ntt(rho + bytes([j, i])) for j in range(K)] for i in range(K)]
    n = 0
    y = []
    for _ in range(K):
        y.append(sample_cbd(prf(ETA1, r, n), ETA1))
        n += 1
    e1 = []
    for _ in range(K):
        e1.append(sample_cbd(prf(ETA2, r, n), ETA2))
        n += 1
    e2 = sample_cbd(prf(ETA2, r, n), ETA2)
    y_hat = [ntt(p) for p in y]
    u = []
    for i in range(K):  # u = NTT^-1(A^T o y) + e1
        acc = [0] * N
        for j in range(K):
            acc = _add(acc, multiply_ntts(a_hat[j][i], y_hat[j]))
        u.append(_add(ntt_inverse(acc), e1[i]))
    mu = [decompress(bit, 1) for bit in byte_decode(m, 1)]
    acc = [0] * N
    for j in range(K):
        acc = _add(acc, multiply_ntts(t_hat[j], y_hat[j]))
    v = _add(_add(ntt_inverse(acc), e2), mu)
    c1 = b"".join(byte_encode([compress(x, DU) for x in p], DU) for p in u)
    c2 = byte_encode([compress(x, DV) for x in v], DV)
    return c1 + c2


def encapsulate(ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM-768.Encaps_internal(ek, m) -> (shared secret K, ciphertext c)."""
    if len(ek) != 384 * K + 32 or len(m) != 32:
        raise ValueError("ML-KEM-768 needs a 1,184-byte key and a 32-byte message")
    g = hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()
    shared, r = g[:32], g[32:]
    return shared, kpke_encrypt(ek, m, r)
