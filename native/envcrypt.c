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
#include <string.h>

#define HASH_SIZE 32
#define NONCE_SIZE 12
#define TAG_SIZE 16

static const unsigned char ZERO_SALT[HASH_SIZE];
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

/* HMAC-SHA256(key, p1 || p2 || p3 || p4 || p5); NULL parts are skipped. */
typedef struct {
    const void *p;
    size_t n;
} part;

static void hmac(unsigned char out[HASH_SIZE], const unsigned char *key, size_t key_len,
                 const part *parts, size_t count) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    for (size_t i = 0; i < count; i++)
        if (parts[i].n)
            crypto_auth_hmacsha256_update(&st, parts[i].p, parts[i].n);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

static void labeled_extract(unsigned char out[HASH_SIZE], const suite_id *sid,
                            const unsigned char *salt, size_t salt_len, const char *label,
                            const unsigned char *ikm, size_t ikm_len) {
    const part parts[] = {{"HPKE-v1", 7}, {sid->id, sid->len}, {label, strlen(label)}, {ikm, ikm_len}};
    hmac(out, salt ? salt : ZERO_SALT, salt ? salt_len : HASH_SIZE, parts, 4);
}

/* L <= 32: one HMAC block. */
static void labeled_expand(unsigned char *out, size_t length, const suite_id *sid,
                           const unsigned char prk[HASH_SIZE], const char *label,
                           const unsigned char *info, size_t info_len) {
    unsigned char l2[2] = {0, (unsigned char)length}, block[HASH_SIZE];
    const part parts[] = {{l2, 2}, {"HPKE-v1", 7}, {sid->id, sid->len}, {label, strlen(label)},
                          {info, info_len}, {"\x01", 1}};
    hmac(block, prk, HASH_SIZE, parts, 6);
    memcpy(out, block, length);
    sodium_memzero(block, sizeof block);
}

/* The wrap's AES-256-GCM key and nonce. */
static void schedule(unsigned char key[HASH_SIZE], unsigned char nonce[NONCE_SIZE], unsigned kem_id,
                     const unsigned char *secret, const unsigned char *kem_context,
                     size_t kem_context_len, const unsigned char *info, size_t info_len) {
    unsigned char shared[HASH_SIZE], prk[HASH_SIZE], context[1 + 2 * HASH_SIZE];
    if (kem_context != NULL) {
        suite_id kem = kem_suite(kem_id);
        labeled_extract(prk, &kem, NULL, 0, "eae_prk", secret, HASH_SIZE);
        labeled_expand(shared, HASH_SIZE, &kem, prk, "shared_secret", kem_context, kem_context_len);
    } else {
        memcpy(shared, secret, HASH_SIZE);
    }
    suite_id sid = hpke_suite(kem_id);
    context[0] = 0; /* mode_base */
    labeled_extract(context + 1, &sid, NULL, 0, "psk_id_hash", NULL, 0);
    labeled_extract(context + 1 + HASH_SIZE, &sid, NULL, 0, "info_hash", info, info_len);
    labeled_extract(prk, &sid, shared, HASH_SIZE, "secret", NULL, 0);
    labeled_expand(key, HASH_SIZE, &sid, prk, "key", context, sizeof context);
    labeled_expand(nonce, NONCE_SIZE, &sid, prk, "base_nonce", context, sizeof context);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(prk, sizeof prk);
}

int envc_available(void) {
    return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

void envc_content_keys(const unsigned char *cek, unsigned char *payload_key, unsigned char *commitment) {
    const part payload[] = {{PAYLOAD_KEY_LABEL, sizeof PAYLOAD_KEY_LABEL - 1}};
    const part commit[] = {{COMMIT_LABEL, sizeof COMMIT_LABEL - 1}};
    hmac(payload_key, cek, ENVC_SECRET_SIZE, payload, 1);
    hmac(commitment, cek, ENVC_SECRET_SIZE, commit, 1);
}

int envc_unwrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
                size_t kem_context_len, const unsigned char *info, size_t info_len,
                const unsigned char *wck, const unsigned char *commitment,
                unsigned char *payload_key) {
    unsigned char key[HASH_SIZE], nonce[NONCE_SIZE], cek[ENVC_SECRET_SIZE], expected[HASH_SIZE];
    int rc = ENVC_OK;
    schedule(key, nonce, kem_id, secret, kem_context, kem_context_len, info, info_len);
    if (crypto_aead_aes256gcm_decrypt_detached(cek, NULL, wck, ENVC_SECRET_SIZE, wck + ENVC_SECRET_SIZE,
                                               NULL, 0, nonce, key) != 0) {
        rc = ENVC_UNWRAP_FAILED;
    } else {
        envc_content_keys(cek, payload_key, expected);
        if (sodium_memcmp(expected, commitment, HASH_SIZE) != 0)
            rc = ENVC_COMMIT_MISMATCH;
    }
    if (rc != ENVC_OK)
        sodium_memzero(payload_key, HASH_SIZE);
    sodium_memzero(key, sizeof key);
    sodium_memzero(cek, sizeof cek);
    sodium_memzero(expected, sizeof expected);
    return rc;
}

void envc_wrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
               size_t kem_context_len, const unsigned char *info, size_t info_len,
               const unsigned char *cek, unsigned char *wck) {
    unsigned char key[HASH_SIZE], nonce[NONCE_SIZE];
    schedule(key, nonce, kem_id, secret, kem_context, kem_context_len, info, info_len);
    crypto_aead_aes256gcm_encrypt_detached(wck, wck + ENVC_SECRET_SIZE, NULL, cek, ENVC_SECRET_SIZE,
                                           NULL, 0, NULL, nonce, key);
    sodium_memzero(key, sizeof key);
}
