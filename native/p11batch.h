/* A batch of PKCS#11 operations in one C call: see p11batch.c. */
#ifndef MILAGRO_P11BATCH_H
#define MILAGRO_P11BATCH_H

#include <stddef.h>

enum { P11B_ENCRYPT_GCM = 1, P11B_DECRYPT_GCM = 2, P11B_SIGN_EDDSA = 3 };
enum { P11B_GCM_NONCE = 12, P11B_GCM_TAG = 16 };

/* One operation; its bytes are at offsets into the batch's three buffers:
 *   encrypt: secret[in] plaintext, public_in[aad] -> public_out[out]: nonce || ciphertext || tag
 *   decrypt: public_in[in] nonce || ciphertext || tag, public_in[aad] -> secret[out]: plaintext
 *   sign:    public_in[in] message -> public_out[out]: signature */
typedef struct {
    int kind;
    unsigned long key;       /* CK_OBJECT_HANDLE */
    size_t in, in_len;
    size_t aad, aad_len;
    size_t out, out_len;     /* out_len: the room at out; then the bytes written */
    unsigned long rv;        /* the CK_RV of the operation (0: CKR_OK) */
} p11b_op;

typedef struct p11b_module p11b_module;

/* The entry points of the module at `path`, which must be loaded already (python-pkcs11
   loaded and initialised it); NULL, and the reason in err, if it lacks one. */
p11b_module *p11b_open(const char *path, char *err, size_t err_len);
void p11b_close(p11b_module *module);
/* Run ops[0..n) in order in `session`; each gets its own rv. Returns how many failed. */
size_t p11b_run(const p11b_module *module, unsigned long session, p11b_op *ops, size_t n,
                const unsigned char *public_in, unsigned char *public_out, unsigned char *secret);

#endif
