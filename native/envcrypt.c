/* An envelope recipient's key wrap in C, with libsodium: the HPKE key schedule, the wrap's
 * AES-256-GCM and the content keys, in one call per recipient.
 *
 * The same computation as milagro_node/core/hpke.py (`seal_secret` / `open_secret`) and
 * `_format.content_keys`, which stay the reference: the tests check both give the same
 * bytes, and the RFC 9180 vectors through both. In Python it took a dozen HMAC calls,
 * each with its own bytes objects and a copy of every secret; here each secret lives on
 * this stack only and is wiped before return.
 *
 * RFC 9180 section 4 and 5.1 (mode_base: psk and psk_id empty), one message (seq 0):
 *   LabeledExtract(salt, label, ikm)    = HMAC(salt, "HPKE-v1" || suite_id || label || ikm)
 *   LabeledExpand(prk, label, info, L)  = HMAC(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id
 *                                              || label || info || 0x01)[:L]    (L <= 32)
 *   DHKEM shared secret = LabeledExpand(LabeledExtract("", "eae_prk", dh), "shared_secret",
 *                                       enc || pkR, 32) with suite_id "KEM" || kem_id
 *   context = 0x00 || LabeledExtract("", "psk_id_hash", "") || LabeledExtract("", "info_hash", info)
 *   secret  = LabeledExtract(shared_secret, "secret", "")
 *   key     = LabeledExpand(secret, "key", context, 32); nonce = LabeledExpand(.., "base_nonce", .., 12)
 * with suite_id "HPKE" || kem_id || 0x0001 || 0x0002 for the schedule. An empty salt is
 * HMAC's all-zero key. */
#include "envcrypt.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#define HASH_SIZE 32
#define NONCE_SIZE 12
#define DHKEM_X25519 0x0020
static const char PAYLOAD_KEY_LABEL[] = "milagro-envelope/v1/payload-key\x01";
static const char COMMIT_LABEL[] = "milagro-envelope/v1/key-commitment\x01";

typedef struct {
    unsigned char id[10];
    size_t len;
} suite_id;

static suite_id kem_suite(unsigned kem_id) {
    suite_id s = {{'K', 'E', 'M', (unsigned char)(kem_id >> 8), (unsigned char)kem_id}, 5};
    return s;
}

static suite_id hpke_suite(unsigned kem_id) {
    suite_id s = {{'H', 'P', 'K', 'E', (unsigned char)(kem_id >> 8), (unsigned char)kem_id, 0, 1, 0, 2}, 10};
    return s;
}

/* HMAC-SHA256 over the concatenation of `parts` (empty ones skipped), from a state already
 * keyed: a key used twice is set up once. */
typedef struct {
    const void *p;
    size_t n;
} part;

typedef crypto_auth_hmacsha256_state hmac_key;

static void hmac_keyed(unsigned char out[HASH_SIZE], const hmac_key *key, const part *parts, size_t count) {
    hmac_key st = *key;
    for (size_t i = 0; i < count; i++)
        if (parts[i].n)
            crypto_auth_hmacsha256_update(&st, parts[i].p, parts[i].n);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

static hmac_key zero_key; /* HKDF's empty salt: set once, by envc_available */

static void labeled_extract(unsigned char out[HASH_SIZE], const suite_id *sid, const hmac_key *salt,
                            const char *label, const unsigned char *ikm, size_t ikm_len) {
    const part parts[] = {{"HPKE-v1", 7}, {sid->id, sid->len}, {label, strlen(label)}, {ikm, ikm_len}};
    hmac_keyed(out, salt, parts, 4);
}

/* L <= 32: one HMAC block. */
static void labeled_expand(unsigned char *out, size_t length, const suite_id *sid, const hmac_key *prk,
                           const char *label, const unsigned char *info, size_t info_len) {
    unsigned char l2[2] = {0, (unsigned char)length}, block[HASH_SIZE];
    const part parts[] = {{l2, 2}, {"HPKE-v1", 7}, {sid->id, sid->len}, {label, strlen(label)},
                          {info, info_len}, {"\x01", 1}};
    hmac_keyed(block, prk, parts, 6);
    memcpy(out, block, length);
    sodium_memzero(block, sizeof block);
}

static void set_key(hmac_key *key, const unsigned char secret[HASH_SIZE]) {
    crypto_auth_hmacsha256_init(key, secret, HASH_SIZE);
}

/* The wrap's AES-256-GCM key and nonce, from the KEM's shared secret. */
static void schedule(unsigned char key[HASH_SIZE], unsigned char nonce[NONCE_SIZE], unsigned kem_id,
                     const unsigned char shared[HASH_SIZE], const unsigned char *info, size_t info_len) {
    unsigned char secret[HASH_SIZE], context[1 + 2 * HASH_SIZE];
    hmac_key keyed;
    suite_id sid = hpke_suite(kem_id);
    context[0] = 0; /* mode_base */
    labeled_extract(context + 1, &sid, &zero_key, "psk_id_hash", NULL, 0);
    labeled_extract(context + 1 + HASH_SIZE, &sid, &zero_key, "info_hash", info, info_len);
    set_key(&keyed, shared);
    labeled_extract(secret, &sid, &keyed, "secret", NULL, 0);
    set_key(&keyed, secret);
    labeled_expand(key, HASH_SIZE, &sid, &keyed, "key", context, sizeof context);
    labeled_expand(nonce, NONCE_SIZE, &sid, &keyed, "base_nonce", context, sizeof context);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(&keyed, sizeof keyed);
}

/* DHKEM(X25519)'s ExtractAndExpand: the shared secret from the DH output and enc || pkR. */
static void dhkem_shared(unsigned char shared[HASH_SIZE], unsigned kem_id, const unsigned char dh[HASH_SIZE],
                         const unsigned char *kem_context, size_t kem_context_len) {
    unsigned char prk[HASH_SIZE];
    hmac_key keyed;
    suite_id kem = kem_suite(kem_id);
    labeled_extract(prk, &kem, &zero_key, "eae_prk", dh, HASH_SIZE);
    set_key(&keyed, prk);
    labeled_expand(shared, HASH_SIZE, &kem, &keyed, "shared_secret", kem_context, kem_context_len);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(&keyed, sizeof keyed);
}

/* `secret` as envcrypt.h says: the KEM's shared secret, or the X25519 output (kem_context set). */
static void shared_secret(unsigned char shared[HASH_SIZE], unsigned kem_id, const unsigned char *secret,
                          const unsigned char *kem_context, size_t kem_context_len) {
    if (kem_context != NULL)
        dhkem_shared(shared, kem_id, secret, kem_context, kem_context_len);
    else
        memcpy(shared, secret, HASH_SIZE);
}

/* -- SHA3-256 (FIPS 202), for mx2's combiner ----------------------------------------------
 * Keccak-f[1600] on 25 little-endian 64-bit lanes (lane x + 5y); XOR, AND, NOT and fixed
 * rotations only, so its time does not depend on the data. The tables are the standard's;
 * envc_available recomputes them as FIPS 202 defines them (Algorithms 2 and 5) and refuses
 * to run on a mismatch. */
#define SHA3_RATE 136 /* bytes absorbed per permutation: 1600 - 2 x 256 bits */

static const uint64_t ROUND_CONSTANT[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
static const unsigned ROTATION[25] = { /* rho, by lane */
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14};
static const unsigned PI_TARGET[25] = { /* pi: lane (x, y) moves to (y, 2x + 3y mod 5) */
    0, 10, 20, 5, 15, 16, 1, 11, 21, 6, 7, 17, 2, 12, 22, 23, 8, 18, 3, 13, 14, 24, 9, 19, 4};

static int rc_bit(unsigned t) { /* FIPS 202 Algorithm 5: the LFSR x^8 + x^6 + x^5 + x^4 + 1 */
    unsigned r = 1;
    for (unsigned i = 0; i < t % 255; i++)
        r = (r << 1) ^ ((r >> 7) & 1 ? 0x171 : 0);
    return r & 1;
}

static int keccak_tables_ok(void) {
    for (unsigned round = 0; round < 24; round++) {
        uint64_t rc = 0;
        for (unsigned j = 0; j <= 6; j++)
            rc |= (uint64_t)rc_bit(j + 7 * round) << ((1u << j) - 1);
        if (rc != ROUND_CONSTANT[round])
            return 0;
    }
    unsigned x = 1, y = 0;
    for (unsigned t = 0; t < 24; t++) { /* Algorithm 2 */
        if (ROTATION[x + 5 * y] != ((t + 1) * (t + 2) / 2) % 64)
            return 0;
        unsigned next_y = (2 * x + 3 * y) % 5;
        x = y;
        y = next_y;
    }
    for (x = 0; x < 5; x++)
        for (y = 0; y < 5; y++)
            if (PI_TARGET[x + 5 * y] != y + 5 * ((2 * x + 3 * y) % 5))
                return 0;
    return ROTATION[0] == 0;
}

static inline uint64_t rotl(uint64_t v, unsigned n) { return n ? (v << n) | (v >> (64 - n)) : v; }

/* On a local copy of the state, which the compiler keeps in registers (taking its address,
 * to wipe it, would force it to memory): the caller wipes the state and scrub_stack its
 * frame. */
static void keccak_f(uint64_t lanes[25]) {
    uint64_t a[25], c[5], b[25];
    memcpy(a, lanes, sizeof a);
    for (unsigned round = 0; round < 24; round++) {
#pragma GCC unroll 5
        for (unsigned x = 0; x < 5; x++) /* theta */
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
        for (unsigned x = 0; x < 5; x++) {
            uint64_t d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
#pragma GCC unroll 5
            for (unsigned y = 0; y < 25; y += 5)
                a[x + y] ^= d;
        }
#pragma GCC unroll 25
        for (unsigned i = 0; i < 25; i++) /* rho and pi */
            b[PI_TARGET[i]] = rotl(a[i], ROTATION[i]);
#pragma GCC unroll 5
        for (unsigned y = 0; y < 25; y += 5) /* chi */
#pragma GCC unroll 5
            for (unsigned x = 0; x < 5; x++)
                a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y]);
        a[0] ^= ROUND_CONSTANT[round]; /* iota */
    }
    memcpy(lanes, a, sizeof a);
}

typedef struct {
    uint64_t lanes[25];
    size_t used; /* bytes absorbed into the current block */
} sha3;

static void sha3_absorb(sha3 *h, const unsigned char *p, size_t n) {
    while (n > 0 && h->used % 8) { /* up to a lane boundary */
        h->lanes[h->used / 8] ^= (uint64_t)*p++ << (8 * (h->used % 8));
        n--;
        if (++h->used == SHA3_RATE) {
            keccak_f(h->lanes);
            h->used = 0;
        }
    }
    while (n >= 8) { /* whole lanes */
        uint64_t lane = 0;
        for (unsigned i = 0; i < 8; i++)
            lane |= (uint64_t)p[i] << (8 * i);
        h->lanes[h->used / 8] ^= lane;
        p += 8;
        n -= 8;
        if ((h->used += 8) == SHA3_RATE) {
            keccak_f(h->lanes);
            h->used = 0;
        }
    }
    for (; n > 0; n--, h->used++) /* the rest, within one lane */
        h->lanes[h->used / 8] ^= (uint64_t)*p++ << (8 * (h->used % 8));
}

/* Zero the stack below the caller, where keccak_f's frame lay (libsodium 1.0.19's
 * sodium_stackzero, which the 1.0.18 here lacks): the first block's state comes from secrets. */
__attribute__((noinline)) static void scrub_stack(void) {
    unsigned char zone[1024]; /* keccak_f's frame is about 450 bytes, sha3_absorb's a few words */
    sodium_memzero(zone, sizeof zone);
}

static void sha3_256(unsigned char out[HASH_SIZE], const part *parts, size_t count) {
    sha3 h;
    memset(&h, 0, sizeof h);
    for (size_t i = 0; i < count; i++)
        sha3_absorb(&h, parts[i].p, parts[i].n);
    h.lanes[h.used / 8] ^= (uint64_t)0x06 << (8 * (h.used % 8)); /* SHA-3's domain bits, pad10*1 */
    h.lanes[(SHA3_RATE - 1) / 8] ^= (uint64_t)0x80 << (8 * ((SHA3_RATE - 1) % 8));
    keccak_f(h.lanes);
    for (unsigned i = 0; i < HASH_SIZE; i++)
        out[i] = (unsigned char)(h.lanes[i / 8] >> (8 * (i % 8)));
    sodium_memzero(&h, sizeof h);
    scrub_stack();
}

void envc_sha3_256(const unsigned char *data, size_t len, unsigned char *out) {
    const part one[] = {{data, len}};
    sha3_256(out, one, 1);
}

int envc_available(void) {
    if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
        return 0;
    static const unsigned char zeros[HASH_SIZE];
    set_key(&zero_key, zeros); /* an empty salt is HashLen zero bytes: the same HMAC key */
    if (!keccak_tables_ok())
        return 0;
    return 1;
}

void envc_content_keys(const unsigned char *cek, unsigned char *payload_key, unsigned char *commitment) {
    const part payload[] = {{PAYLOAD_KEY_LABEL, sizeof PAYLOAD_KEY_LABEL - 1}};
    const part commit[] = {{COMMIT_LABEL, sizeof COMMIT_LABEL - 1}};
    hmac_key keyed;
    set_key(&keyed, cek);
    hmac_keyed(payload_key, &keyed, payload, 1);
    hmac_keyed(commitment, &keyed, commit, 1);
    sodium_memzero(&keyed, sizeof keyed);
}

static const unsigned char CONTENT_NONCE[NONCE_SIZE]; /* each payload key encrypts one payload */

void envc_seal_payload(const unsigned char *cek, const unsigned char *aad, size_t aad_len,
                       const unsigned char *payload, size_t len, unsigned char *ct) {
    unsigned char payload_key[HASH_SIZE];
    envc_content_keys(cek, payload_key, ct);
    crypto_aead_aes256gcm_encrypt_detached(ct + HASH_SIZE, ct + HASH_SIZE + len, NULL, payload, len, aad,
                                           aad_len, NULL, CONTENT_NONCE, payload_key);
    sodium_memzero(payload_key, sizeof payload_key);
}

/* Open the wrap, then derive and check the content keys, then decrypt the payload if given
 * (envc_unwrap's second half). */
static int open_wrap(unsigned kem_id, unsigned char shared[HASH_SIZE], const unsigned char *info,
                     size_t info_len, const unsigned char *wck, const unsigned char *commitment,
                     unsigned char *payload_key, const envc_payload *payload) {
    unsigned char key[HASH_SIZE], nonce[NONCE_SIZE], cek[ENVC_SECRET_SIZE], expected[HASH_SIZE];
    unsigned char own_key[HASH_SIZE];
    int rc = ENVC_OK;
    schedule(key, nonce, kem_id, shared, info, info_len);
    if (crypto_aead_aes256gcm_decrypt_detached(cek, NULL, wck, ENVC_SECRET_SIZE, wck + ENVC_SECRET_SIZE,
                                               NULL, 0, nonce, key) != 0) {
        rc = ENVC_UNWRAP_FAILED;
    } else {
        envc_content_keys(cek, own_key, expected);
        if (sodium_memcmp(expected, commitment, HASH_SIZE) != 0)
            rc = ENVC_COMMIT_MISMATCH;
        else if (payload != NULL &&
                 (payload->ct_len < crypto_aead_aes256gcm_ABYTES ||
                  crypto_aead_aes256gcm_decrypt_detached(
                      payload->out, NULL, payload->ct, payload->ct_len - crypto_aead_aes256gcm_ABYTES,
                      payload->ct + payload->ct_len - crypto_aead_aes256gcm_ABYTES, payload->aad,
                      payload->aad_len, CONTENT_NONCE, own_key) != 0))
            rc = ENVC_DECRYPT_FAILED;
    }
    if (payload_key != NULL) {
        if (rc == ENVC_OK)
            memcpy(payload_key, own_key, HASH_SIZE);
        else
            sodium_memzero(payload_key, HASH_SIZE);
    }
    sodium_memzero(shared, HASH_SIZE);
    sodium_memzero(key, sizeof key);
    sodium_memzero(cek, sizeof cek);
    sodium_memzero(own_key, sizeof own_key);
    sodium_memzero(expected, sizeof expected);
    return rc;
}

int envc_unwrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
                size_t kem_context_len, const unsigned char *info, size_t info_len,
                const unsigned char *wck, const unsigned char *commitment,
                unsigned char *payload_key, const envc_payload *payload) {
    unsigned char shared[HASH_SIZE];
    shared_secret(shared, kem_id, secret, kem_context, kem_context_len);
    return open_wrap(kem_id, shared, info, info_len, wck, commitment, payload_key, payload);
}

int envc_unwrap_x25519(const unsigned char *scalar, const unsigned char *enc, const unsigned char *pk_r,
                       const unsigned char *info, size_t info_len, const unsigned char *wck,
                       const unsigned char *commitment, unsigned char *payload_key,
                       const envc_payload *payload) {
    unsigned char dh[HASH_SIZE], kem_context[2 * HASH_SIZE], shared[HASH_SIZE];
    if (crypto_scalarmult(dh, scalar, enc) != 0) { /* an all-zero output: a low-order enc */
        if (payload_key != NULL)
            sodium_memzero(payload_key, HASH_SIZE);
        return ENVC_UNWRAP_FAILED;
    }
    memcpy(kem_context, enc, HASH_SIZE);
    memcpy(kem_context + HASH_SIZE, pk_r, HASH_SIZE);
    dhkem_shared(shared, DHKEM_X25519, dh, kem_context, sizeof kem_context);
    sodium_memzero(dh, sizeof dh);
    return open_wrap(DHKEM_X25519, shared, info, info_len, wck, commitment, payload_key, payload);
}

void envc_wrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
               size_t kem_context_len, const unsigned char *info, size_t info_len,
               const unsigned char *cek, unsigned char *wck) {
    unsigned char shared[HASH_SIZE], key[HASH_SIZE], nonce[NONCE_SIZE];
    shared_secret(shared, kem_id, secret, kem_context, kem_context_len);
    schedule(key, nonce, kem_id, shared, info, info_len);
    crypto_aead_aes256gcm_encrypt_detached(wck, wck + ENVC_SECRET_SIZE, NULL, cek, ENVC_SECRET_SIZE,
                                           NULL, 0, NULL, nonce, key);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(key, sizeof key);
}

/* An ephemeral X25519 key, drawn here or given (`ephemeral`, for test vectors): its public
 * half into `pk_e`, its DH with `peer` into `dh`; the private key is wiped before return.
 * 0 for an all-zero DH output (a low-order `peer`). libsodium's fixed-base multiplication
 * makes `pk_e` in ~25 us, where OpenSSL's HPKE takes ~45 us to generate the key pair. */
static int ephemeral_dh(const unsigned char *ephemeral, const unsigned char *peer, unsigned char pk_e[HASH_SIZE],
                        unsigned char dh[HASH_SIZE]) {
    unsigned char sk[HASH_SIZE];
    if (ephemeral != NULL)
        memcpy(sk, ephemeral, HASH_SIZE);
    else
        randombytes_buf(sk, HASH_SIZE);
    int ok = crypto_scalarmult_base(pk_e, sk) == 0 && crypto_scalarmult(dh, sk, peer) == 0;
    sodium_memzero(sk, sizeof sk);
    return ok;
}

int envc_wrap_x25519(const unsigned char *pk_r, const unsigned char *ephemeral, const unsigned char *info,
                     size_t info_len, const unsigned char *cek, unsigned char *enc, unsigned char *wck) {
    unsigned char pk_e[HASH_SIZE], dh[HASH_SIZE], kem_context[2 * HASH_SIZE];
    int rc = ENVC_LOW_ORDER;
    if (ephemeral_dh(ephemeral, pk_r, pk_e, dh)) {
        memcpy(kem_context, pk_e, HASH_SIZE);
        memcpy(kem_context + HASH_SIZE, pk_r, HASH_SIZE);
        envc_wrap(DHKEM_X25519, dh, kem_context, sizeof kem_context, info, info_len, cek, wck);
        memcpy(enc, pk_e, HASH_SIZE);
        rc = ENVC_OK;
    }
    sodium_memzero(dh, sizeof dh);
    return rc;
}

/* -- mx2: X25519 + ML-KEM-768 (milagro_node/core/envelope/_hybrid_kem.py) -------------------
 * The ML-KEM half runs in the caller (OpenSSL, through `cryptography`); the X25519 half, the
 * combiner and the HPKE wrap run here, so neither shared secret becomes a Python object. */
#define MX2_KEM 0xFF02
#define MLKEM768_CT 1088
#define MLKEM768_PK 1184
static const char MX2_LABEL[] = "milagro/mx2/X25519+ML-KEM-768";

static void mx2_combine(unsigned char out[HASH_SIZE], const unsigned char *ss_m, const unsigned char *ss_x,
                        const unsigned char *ct_m, const unsigned char *ct_x, const unsigned char *pk_m,
                        const unsigned char *pk_x) {
    const part parts[] = {{MX2_LABEL, sizeof MX2_LABEL - 1}, {ss_m, HASH_SIZE}, {ss_x, HASH_SIZE},
                          {ct_m, MLKEM768_CT}, {ct_x, HASH_SIZE}, {pk_m, MLKEM768_PK}, {pk_x, HASH_SIZE}};
    sha3_256(out, parts, 7);
}

int envc_wrap_mx2(const unsigned char *pk_m, const unsigned char *pk_x, const unsigned char *ss_m,
                  const unsigned char *ct_m, const unsigned char *ephemeral, const unsigned char *info,
                  size_t info_len, const unsigned char *cek, unsigned char *ct_x, unsigned char *wck) {
    unsigned char pk_e[HASH_SIZE], ss_x[HASH_SIZE], shared[HASH_SIZE];
    int rc = ENVC_LOW_ORDER;
    if (ephemeral_dh(ephemeral, pk_x, pk_e, ss_x)) {
        mx2_combine(shared, ss_m, ss_x, ct_m, pk_e, pk_m, pk_x);
        envc_wrap(MX2_KEM, shared, NULL, 0, info, info_len, cek, wck);
        memcpy(ct_x, pk_e, HASH_SIZE);
        rc = ENVC_OK;
    }
    sodium_memzero(ss_x, sizeof ss_x);
    sodium_memzero(shared, sizeof shared);
    return rc;
}

int envc_unwrap_mx2(const unsigned char *scalar, const unsigned char *ss_x, const unsigned char *ss_m,
                    const unsigned char *enc, const unsigned char *pk_m, const unsigned char *pk_x,
                    const unsigned char *info, size_t info_len, const unsigned char *wck,
                    const unsigned char *commitment, unsigned char *payload_key,
                    const envc_payload *payload) {
    unsigned char dh[HASH_SIZE], shared[HASH_SIZE];
    const unsigned char *ct_x = enc + MLKEM768_CT;
    if (scalar == NULL) {
        memcpy(dh, ss_x, HASH_SIZE);
    } else if (crypto_scalarmult(dh, scalar, ct_x) != 0) { /* a low-order ct_x */
        if (payload_key != NULL)
            sodium_memzero(payload_key, HASH_SIZE);
        return ENVC_UNWRAP_FAILED;
    }
    mx2_combine(shared, ss_m, dh, enc, ct_x, pk_m, pk_x);
    sodium_memzero(dh, sizeof dh);
    return open_wrap(MX2_KEM, shared, info, info_len, wck, commitment, payload_key, payload);
}

int envc_ed25519_verify(const unsigned char *sig, const unsigned char *msg, size_t len, const unsigned char *pk) {
    return sodium_init() >= 0 && crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}
