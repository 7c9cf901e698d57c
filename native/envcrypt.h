/* An envelope recipient's key wrap, in one C call each way: see envcrypt.c. */
#ifndef MILAGRO_ENVCRYPT_H
#define MILAGRO_ENVCRYPT_H

#include <stddef.h>

#define ENVC_SECRET_SIZE 32 /* a KEM shared secret, an X25519 output, a content key */
#define ENVC_WCK_SIZE 48    /* the wrapped content key: AES-256-GCM of 32 bytes + tag */

enum { ENVC_OK = 0, ENVC_UNWRAP_FAILED = 1, ENVC_COMMIT_MISMATCH = 2, ENVC_LOW_ORDER = 3, ENVC_DECRYPT_FAILED = 4 };

/* A payload for an unwrap below to decrypt in the same call, so that its key never leaves
 * C: `ct` is the payload's AES-256-GCM ciphertext and tag (after the 32-byte commitment),
 * `aad` the header; `out` gets ct_len - 16 bytes. With one, `payload_key` may be NULL. */
typedef struct {
    const unsigned char *aad;
    size_t aad_len;
    const unsigned char *ct;
    size_t ct_len;
    unsigned char *out;
} envc_payload;

/* 1 if this machine can run the calls below (libsodium's AES-256-GCM needs AES-NI and
 * PCLMUL); 0: the caller keeps its general path. Call it once, before any other. */
int envc_available(void);

/* The wrap's HPKE base-mode context (RFC 9180, HKDF-SHA256, AES-256-GCM, KEM `kem_id`) from
 * `secret`: the KEM's shared secret or, when kem_context is not NULL, the raw X25519 output
 * that DHKEM's ExtractAndExpand turns into it (kem_context = enc || pkR). */

/* Open `wck` with `info`, derive the content key's payload key and commitment, and check
 * the commitment against `commitment` in constant time. ENVC_OK: the payload key is in
 * `payload_key` (if not NULL) and `payload`, if given, is decrypted (ENVC_DECRYPT_FAILED if
 * it does not). Anything else: `payload_key` is zeros. */
int envc_unwrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
                size_t kem_context_len, const unsigned char *info, size_t info_len,
                const unsigned char *wck, const unsigned char *commitment,
                unsigned char *payload_key, const envc_payload *payload);

/* envc_unwrap for DHKEM(X25519) from the recipient's private key `scalar` itself (32 bytes,
 * in the caller's secret memory): the DH runs here, and its output never leaves this call.
 * `enc` and `pk_r` are 32 bytes. ENVC_UNWRAP_FAILED also for a low-order `enc`. */
int envc_unwrap_x25519(const unsigned char *scalar, const unsigned char *enc, const unsigned char *pk_r,
                       const unsigned char *info, size_t info_len, const unsigned char *wck,
                       const unsigned char *commitment, unsigned char *payload_key,
                       const envc_payload *payload);

/* Seal the content key `cek` into `wck` (ENVC_WCK_SIZE bytes) under the same context. */
void envc_wrap(unsigned kem_id, const unsigned char *secret, const unsigned char *kem_context,
               size_t kem_context_len, const unsigned char *info, size_t info_len,
               const unsigned char *cek, unsigned char *wck);

/* envc_wrap for DHKEM(X25519) to the 32-byte public key `pk_r`: draws the ephemeral key
 * here (`ephemeral` NULL; else those 32 bytes, for test vectors), writes its public half to
 * `enc` (32 bytes) and the wrap to `wck`. The ephemeral key and the DH output live on this
 * stack only. ENVC_LOW_ORDER (nothing written) if `pk_r` is a low-order point. */
int envc_wrap_x25519(const unsigned char *pk_r, const unsigned char *ephemeral, const unsigned char *info,
                     size_t info_len, const unsigned char *cek, unsigned char *enc, unsigned char *wck);

/* mx2's wrap (kem_id 0xFF02) from the ML-KEM-768 half the caller made (`ss_m`, 32 bytes,
 * and `ct_m`, 1088): the X25519 half with an ephemeral key drawn here (`ephemeral` NULL) or
 * given, the combiner (SHA3-256) and the HPKE wrap. Writes ct_x (32 bytes: enc is
 * ct_m || ct_x) and `wck`. ENVC_LOW_ORDER (nothing written) for a low-order `pk_x`. */
int envc_wrap_mx2(const unsigned char *pk_m, const unsigned char *pk_x, const unsigned char *ss_m,
                  const unsigned char *ct_m, const unsigned char *ephemeral, const unsigned char *info,
                  size_t info_len, const unsigned char *cek, unsigned char *ct_x, unsigned char *wck);

/* envc_unwrap for mx2, from the ML-KEM-768 shared secret `ss_m` the caller decapsulated and
 * either the reader's X25519 key `scalar` (the DH runs here) or, with `scalar` NULL, the DH
 * output `ss_x`. `enc` is 1120 bytes, `pk_m` 1184, `pk_x` 32. Returns as envc_unwrap;
 * ENVC_UNWRAP_FAILED also for a low-order ct_x. */
int envc_unwrap_mx2(const unsigned char *scalar, const unsigned char *ss_x, const unsigned char *ss_m,
                    const unsigned char *enc, const unsigned char *pk_m, const unsigned char *pk_x,
                    const unsigned char *info, size_t info_len, const unsigned char *wck,
                    const unsigned char *commitment, unsigned char *payload_key,
                    const envc_payload *payload);

/* 1 if `sig` (64 bytes) is public key `pk`'s (32) Ed25519 signature of the `len` bytes at
 * `msg` (libsodium's crypto_sign_verify_detached: the message is read in place, not copied
 * as crypto_sign_open does). Needs no AES instructions: usable where envc_available is 0. */
int envc_ed25519_verify(const unsigned char *sig, const unsigned char *msg, size_t len, const unsigned char *pk);

/* SHA3-256 (FIPS 202) of `len` bytes into `out` (32): the combiner's hash, for the tests. */
void envc_sha3_256(const unsigned char *data, size_t len, unsigned char *out);

/* A payload's `ct` under content key `cek` (what open_wrap's payload decrypts): the key
 * commitment (32 bytes), then the AES-256-GCM ciphertext of the `len` bytes of `payload`
 * with `aad`, then its tag: len + 48 bytes in all. */
void envc_seal_payload(const unsigned char *cek, const unsigned char *aad, size_t aad_len,
                       const unsigned char *payload, size_t len, unsigned char *ct);

/* The payload key and the key commitment of content key `cek`. */
void envc_content_keys(const unsigned char *cek, unsigned char *payload_key,
                       unsigned char *commitment);

#endif
