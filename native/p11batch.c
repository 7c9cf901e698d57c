/* A batch of PKCS#11 operations in one C call.
 *
 * Why: the HSM thread holds the GIL between PKCS#11 calls, and python-pkcs11
 * makes four or five of them per AES-GCM operation. Each time it gets the GIL
 * back it may wait for the trio loop, which keeps the thread from overlapping
 * with it. Called through cffi (which releases the GIL around the call), a whole
 * batch of wraps, unwraps and Ed25519 signatures here takes the GIL once.
 *
 * Only what the batch needs is declared (PKCS#11 v2.40 / v3.0 types, as
 * python-pkcs11 and SoftHSM2 use them). Failures are reported per operation by
 * their CK_RV; the caller re-runs a failed one through python-pkcs11, which
 * turns it into the right error (and notices a lost token).
 */
#include "p11batch.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;

typedef struct {
    CK_ULONG mechanism;
    void *parameter;
    CK_ULONG parameter_len;
} CK_MECHANISM;

typedef struct {
    const unsigned char *iv;
    CK_ULONG iv_len;
    CK_ULONG iv_bits;
    const unsigned char *aad;
    CK_ULONG aad_len;
    CK_ULONG tag_bits;
} CK_GCM_PARAMS;

#define CKM_EDDSA 0x00001057UL
#define CKM_AES_GCM 0x00001087UL
#define CKR_ARGUMENTS_BAD 0x00000007UL
#define CKR_BUFFER_TOO_SMALL 0x00000150UL
#define GCM_TAG_BITS 128

typedef CK_RV (*init_fn)(CK_ULONG session, CK_MECHANISM *mechanism, CK_ULONG key);
typedef CK_RV (*run_fn)(CK_ULONG session, const unsigned char *data, CK_ULONG data_len,
                        unsigned char *out, CK_ULONG *out_len);

struct p11b_module {
    void *library;
    init_fn encrypt_init, decrypt_init, sign_init;
    run_fn encrypt, decrypt, sign;
};

static void *entry(void *library, const char *name, char *err, size_t err_len) {
    void *fn = dlsym(library, name);
    if (!fn)
        snprintf(err, err_len, "the module does not export %s", name);
    return fn;
}

p11b_module *p11b_open(const char *path, char *err, size_t err_len) {
    /* RTLD_NOLOAD: only the instance python-pkcs11 loaded and initialised. */
    void *library = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!library) {
        snprintf(err, err_len, "the module is not loaded: %s", dlerror());
        return NULL;
    }
    p11b_module *m = calloc(1, sizeof *m);
    if (!m) {
        dlclose(library);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    m->library = library;
    if (!(m->encrypt_init = (init_fn)entry(library, "C_EncryptInit", err, err_len))
        || !(m->encrypt = (run_fn)entry(library, "C_Encrypt", err, err_len))
        || !(m->decrypt_init = (init_fn)entry(library, "C_DecryptInit", err, err_len))
        || !(m->decrypt = (run_fn)entry(library, "C_Decrypt", err, err_len))
        || !(m->sign_init = (init_fn)entry(library, "C_SignInit", err, err_len))
        || !(m->sign = (run_fn)entry(library, "C_Sign", err, err_len))) {
        p11b_close(m);
        return NULL;
    }
    return m;
}

void p11b_close(p11b_module *module) {
    if (module) {
        dlclose(module->library);
        free(module);
    }
}

static int fill_random(unsigned char *p, size_t n) {
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got, n -= (size_t)got;
    }
    return 0;
}

static CK_RV run_one(const p11b_module *m, CK_ULONG session, p11b_op *op, const unsigned char *public_in,
                     unsigned char *public_out, unsigned char *secret) {
    const unsigned char *aad = public_in + op->aad;
    const unsigned char *data;
    unsigned char *out, *nonce;
    CK_GCM_PARAMS gcm = {NULL, P11B_GCM_NONCE, P11B_GCM_NONCE * 8, aad, op->aad_len, GCM_TAG_BITS};
    CK_MECHANISM mechanism = {CKM_AES_GCM, &gcm, sizeof gcm};
    CK_ULONG data_len = op->in_len, room = op->out_len;
    init_fn init;
    run_fn run;
    switch (op->kind) {
    case P11B_ENCRYPT_GCM:
        if (room < P11B_GCM_NONCE || fill_random(public_out + op->out, P11B_GCM_NONCE) != 0)
            return CKR_ARGUMENTS_BAD;
        nonce = public_out + op->out;
        gcm.iv = nonce, data = secret + op->in;
        out = nonce + P11B_GCM_NONCE, room -= P11B_GCM_NONCE;
        init = m->encrypt_init, run = m->encrypt;
        break;
    case P11B_DECRYPT_GCM:
        if (data_len < P11B_GCM_NONCE + P11B_GCM_TAG)
            return CKR_ARGUMENTS_BAD;
        gcm.iv = public_in + op->in;
        data = public_in + op->in + P11B_GCM_NONCE, data_len -= P11B_GCM_NONCE;
        out = secret + op->out;
        init = m->decrypt_init, run = m->decrypt;
        break;
    case P11B_SIGN_EDDSA:
        mechanism = (CK_MECHANISM){CKM_EDDSA, NULL, 0};
        data = public_in + op->in, out = public_out + op->out;
        init = m->sign_init, run = m->sign;
        break;
    default:
        return CKR_ARGUMENTS_BAD;
    }
    CK_RV rv = init(session, &mechanism, op->key);
    if (rv != 0)
        return rv;
    /* The caller sized `out` for the result, so this one call finishes the operation. */
    CK_ULONG written = room;
    rv = run(session, data, data_len, out, &written);
    op->out_len = rv != 0 ? 0 : written + (op->kind == P11B_ENCRYPT_GCM ? P11B_GCM_NONCE : 0);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        /* Not expected; but the operation stays active until a call with room ends it,
           and the session would refuse every later one. End it and drop the result. */
        unsigned char *more = malloc(written ? written : 1);
        if (more) {
            run(session, data, data_len, more, &written);
            explicit_bzero(more, written);
            free(more);
        }
    }
    return rv;
}

size_t p11b_run(const p11b_module *module, unsigned long session, p11b_op *ops, size_t n,
                const unsigned char *public_in, unsigned char *public_out, unsigned char *secret) {
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        ops[i].rv = run_one(module, session, &ops[i], public_in, public_out, secret);
        failed += ops[i].rv != 0;
    }
    return failed;
}
