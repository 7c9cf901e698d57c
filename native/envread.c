/* The common shape of an envelope v1, read in one C call.
 *
 * Why: reading an envelope in Python (milagro_node/core/envelope/_cbor.py) cost more than
 * all the non-crypto work of opening it put together. Nearly every envelope has one
 * shape: the v1 keys in canonical order, each with the type v1 gives it, and recipient
 * entries that all have one layout. That shape is checked here, head by head, under the
 * same rules as the Python reader (shortest heads, definite lengths, keys in DAG-CBOR
 * order, the same limits, nothing after the map) and its fields returned as offsets.
 *
 * This reader only accepts; it never explains. Anything else, valid or not (another key,
 * another type, non-ASCII text, recipients of mixed layouts), returns 0 and the Python
 * reader reads the bytes again from the start: it stays the reference, gives the exact
 * error code, and the tests check that both agree on whatever this one accepts.
 *
 * Every length is compared with what is left of the input before it is used, in that
 * order, so no declared size can move a read past the end.
 */
#include "envread.h"

#include <string.h>

enum { MAJOR_UINT = 0, MAJOR_BYTES = 2, MAJOR_TEXT = 3, MAJOR_LIST = 4, MAJOR_MAP = 5 };
enum { MAX_TEXT = 256, MAX_NESTED_BYTES = 4096 };

static const char *const KEYS[ENVR_KEYS] = {
    "v", "ct", "id", "seq", "sig", "body", "kind", "suite", "sender", "created", "expires",
    "recipients",
};
/* The major type each key's value must have here. */
static const int KEY_MAJOR[ENVR_KEYS] = {
    MAJOR_UINT, MAJOR_BYTES, MAJOR_BYTES, MAJOR_UINT, MAJOR_BYTES, MAJOR_BYTES, MAJOR_TEXT,
    MAJOR_TEXT, MAJOR_TEXT, MAJOR_UINT, MAJOR_UINT, MAJOR_LIST,
};

typedef struct {
    const unsigned char *data;
    size_t n, pos;
} cursor;

/* The head at c->pos, if it is definite, in its shortest form and complete. */
static int head(cursor *c, int *major, unsigned long long *arg) {
    if (c->pos >= c->n)
        return 0;
    unsigned char first = c->data[c->pos++];
    unsigned info = first & 0x1f;
    *major = first >> 5;
    if (*major > MAJOR_MAP)
        return 0; /* tags, floats, simple values */
    if (info < 24) {
        *arg = info;
        return 1;
    }
    if (info > 27)
        return 0; /* reserved, or an indefinite length */
    size_t size = (size_t)1 << (info - 24);
    if (size > c->n - c->pos)
        return 0;
    unsigned long long value = 0;
    for (size_t i = 0; i < size; i++)
        value = value << 8 | c->data[c->pos + i];
    c->pos += size;
    unsigned long long shortest = size == 1 ? 24 : 1ULL << (4 * size);
    if (value < shortest)
        return 0;
    *arg = value;
    return 1;
}

/* A string of `major` whose length is at most `cap`, present in full (text: ASCII). */
static int string(cursor *c, int major, size_t cap, envr_word *at, envr_word *len) {
    int got;
    unsigned long long length;
    if (!head(c, &got, &length) || got != major || length > cap || length > c->n - c->pos)
        return 0;
    if (major == MAJOR_TEXT)
        for (size_t i = 0; i < length; i++)
            if (c->data[c->pos + i] & 0x80)
                return 0;
    *at = c->pos;
    *len = length;
    c->pos += (size_t)length;
    return 1;
}

/* The text key `name`, in its one-byte head. */
static int key(cursor *c, const char *name) {
    size_t size = strlen(name);
    if (1 + size > c->n - c->pos || c->data[c->pos] != (0x60 | size)
        || memcmp(c->data + c->pos + 1, name, size) != 0)
        return 0;
    c->pos += 1 + size;
    return 1;
}

/* One recipient entry {enc: bytes, kid: text, wck: bytes}, in its one canonical layout. */
static int recipient(cursor *c, envr_word lens[3], envr_word offsets[3]) {
    static const char *const names[3] = {"enc", "kid", "wck"};
    static const int majors[3] = {MAJOR_BYTES, MAJOR_TEXT, MAJOR_BYTES};
    static const size_t caps[3] = {MAX_NESTED_BYTES, MAX_TEXT, MAX_NESTED_BYTES};
    size_t start = c->pos;
    if (c->pos >= c->n || c->data[c->pos++] != (MAJOR_MAP << 5 | 3))
        return 0;
    for (int i = 0; i < 3; i++) {
        envr_word at;
        if (!key(c, names[i]) || !string(c, majors[i], caps[i], &at, &lens[i]))
            return 0;
        offsets[i] = at - start;
    }
    return 1;
}

static int recipients(cursor *c, size_t count, envr_fields *out) {
    if (count == 0)
        return 0;
    size_t start = c->pos;
    envr_word lens[3], offsets[3];
    if (!recipient(c, lens, offsets))
        return 0;
    out->record = c->pos - start;
    for (size_t i = 1; i < count; i++) {
        envr_word more[3], more_offsets[3];
        if (!recipient(c, more, more_offsets) || memcmp(more, lens, sizeof lens) != 0)
            return 0; /* another layout: left to the general reader */
    }
    out->count = count;
    out->enc_len = lens[0], out->kid_len = lens[1], out->wck_len = lens[2];
    out->enc_at = offsets[0], out->kid_at = offsets[1], out->wck_at = offsets[2];
    return 1;
}

/* Lowercase base32 (RFC 4648): each character's value, 0xff for the rest. */
static const unsigned char BASE32[256] = {
    [0 ... 255] = 0xff,
    ['a'] = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    ['2'] = 26, 27, 28, 29, 30, 31,
};

/* A CIDv1 of codec raw (0x55) or dag-cbor (0x71) with a sha2-256 multihash, spelled as
 * the node spells it: "b" + lowercase base32 of its 36 bytes, unpadded, the 2 bits left
 * over zero. The same rule as _format.is_canonical_cid (the tests compare them). */
static int canonical_cid(const unsigned char *text, size_t n) {
    enum { TEXT_SIZE = 59, PREFIX_CHARS = 7 }; /* 7 characters: 35 bits, the 32 of the prefix first */
    if (n != TEXT_SIZE || text[0] != 'b')
        return 0;
    unsigned bad = 0;
    for (size_t i = 1; i < n; i++)
        bad |= BASE32[text[i]]; /* 0xff for a character outside the alphabet */
    if (bad > 31 || (BASE32[text[n - 1]] & 3) != 0) /* 58 x 5 = 290 bits: the last 2 are zero */
        return 0;
    unsigned long long acc = 0;
    for (size_t i = 1; i <= PREFIX_CHARS; i++)
        acc = acc << 5 | BASE32[text[i]];
    unsigned long prefix = (unsigned long)(acc >> 3); /* CIDv1, raw or dag-cbor, sha2-256 of 32 bytes */
    return prefix == 0x01551220ul || prefix == 0x01711220ul;
}

/* kind is one or more of [A-Za-z0-9._:/-] (_format.check_kind). */
static int kind_chars(const unsigned char *text, size_t n) {
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = text[i];
        int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (c == 0 || strchr("._:/-", c) == NULL)) /* strchr finds the NUL too */
            return 0;
    }
    return 1;
}

static int names_ok(const unsigned char *data, const envr_fields *f) {
    if (!(f->present >> ENVR_SENDER & 1) || !(f->present >> ENVR_KIND & 1)
        || !canonical_cid(data + f->at[ENVR_SENDER], f->len[ENVR_SENDER])
        || !kind_chars(data + f->at[ENVR_KIND], f->len[ENVR_KIND]))
        return 0;
    if (!(f->present >> ENVR_RECIPIENTS & 1))
        return 1;
    /* No kid twice: each goes into a small open-addressing table keyed by 8 of its digest's
     * characters (they share the CID prefix), compared in full on a collision. */
    enum { SLOTS = 256 }; /* > 2 x the most recipients envr_read admits (max_list) */
    const unsigned char *slot[SLOTS] = {0};
    const unsigned char *kids = data + f->at[ENVR_RECIPIENTS] + f->kid_at;
    if (f->count > SLOTS / 2)
        return 0;
    for (size_t i = 0; i < f->count; i++) {
        const unsigned char *kid = kids + i * f->record;
        if (!canonical_cid(kid, f->kid_len))
            return 0;
        unsigned long long key;
        memcpy(&key, kid + f->kid_len - sizeof key, sizeof key);
        size_t at = (size_t)(key * 0x9E3779B97F4A7C15ull >> 56) % SLOTS;
        for (; slot[at] != NULL; at = (at + 1) % SLOTS)
            if (memcmp(slot[at], kid, f->kid_len) == 0)
                return 0;
        slot[at] = kid;
    }
    return 1;
}

int envr_read(const unsigned char *data, size_t n, size_t max_top_bytes, size_t max_list,
              envr_fields *out) {
    cursor c = {data, n, 0};
    int major;
    unsigned long long pairs;
    memset(out, 0, sizeof *out);
    if (!head(&c, &major, &pairs) || major != MAJOR_MAP || pairs > ENVR_KEYS)
        return 0;
    int next = 0; /* keys must come in KEYS order, each at most once */
    for (unsigned long long i = 0; i < pairs; i++) {
        size_t entry = c.pos;
        while (next < ENVR_KEYS && !key(&c, KEYS[next]))
            next++;
        if (next == ENVR_KEYS)
            return 0; /* a key out of order, repeated, or not a v1 key */
        int k = next++;
        out->present |= 1ull << k;
        out->entry[k] = entry;
        unsigned long long arg;
        switch (KEY_MAJOR[k]) {
        case MAJOR_UINT:
            if (!head(&c, &major, &arg) || major != MAJOR_UINT)
                return 0;
            out->number[k] = arg;
            break;
        case MAJOR_BYTES:
            if (!string(&c, MAJOR_BYTES, max_top_bytes, &out->at[k], &out->len[k]))
                return 0;
            break;
        case MAJOR_TEXT:
            if (!string(&c, MAJOR_TEXT, MAX_TEXT, &out->at[k], &out->len[k]))
                return 0;
            break;
        default: /* the recipients list */
            if (!head(&c, &major, &arg) || major != MAJOR_LIST || arg > max_list)
                return 0;
            out->at[k] = c.pos;
            if (!recipients(&c, (size_t)arg, out))
                return 0;
        }
    }
    if (c.pos != n)
        return 0;
    out->names_ok = names_ok(data, out);
    return 1;
}
