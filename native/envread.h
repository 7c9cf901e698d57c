/* The common shape of an envelope v1, read in one C call: see envread.c. */
#ifndef MILAGRO_ENVREAD_H
#define MILAGRO_ENVREAD_H

#include <stddef.h>

/* The v1 keys, in their canonical DAG-CBOR order (shorter first, then bytewise). */
enum {
    ENVR_V, ENVR_CT, ENVR_ID, ENVR_SEQ, ENVR_SIG, ENVR_BODY, ENVR_KIND, ENVR_SUITE,
    ENVR_SENDER, ENVR_CREATED, ENVR_EXPIRES, ENVR_RECIPIENTS, ENVR_KEYS
};

/* Where each field of an accepted envelope is. For a present key k (bit k of `present`):
 * entry[k] is the offset of the key's head; an integer's value is in number[k]; a string's
 * content is at at[k], len[k] bytes. The recipients are `count` records of `record` bytes
 * each from at[ENVR_RECIPIENTS], all of one layout: a record's enc, kid and wck contents
 * start enc_at, kid_at and wck_at bytes into it. */
typedef unsigned long long envr_word; /* every field is one: the caller reads them as an array */
typedef struct {
    envr_word present;
    envr_word entry[ENVR_KEYS];
    envr_word number[ENVR_KEYS];
    envr_word at[ENVR_KEYS];
    envr_word len[ENVR_KEYS];
    envr_word count, record;
    envr_word enc_at, enc_len, kid_at, kid_len, wck_at, wck_len;
    envr_word names_ok; /* sender and every kid canonical identity CIDs, no kid twice, kind
                           of [A-Za-z0-9._:/-]+: the schema's name rules, checked here */
} envr_fields;

/* 1 if data[0..n) is a canonical DAG-CBOR map of v1 keys only, each value of the type v1
 * gives it, within the limits, with recipients of one layout; its fields are then in *out,
 * and out->names_ok says whether its names pass the schema's rules (0 is no error: the
 * caller's schema check then names the fault). 0 for anything else: the caller's general
 * reader then decides, and names the fault. */
int envr_read(const unsigned char *data, size_t n, size_t max_top_bytes, size_t max_list,
              envr_fields *out);

#endif
