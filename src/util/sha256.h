/* SPDX-License-Identifier: MIT */
/*
 * sha256.h — SHA-256 (FIPS 180-4), for request hashes (the agent's operation journal, the
 * controller's idempotency keys) and for API tokens, which are stored only as their hash.
 * Not for passwords (no salt, no stretching): a token is 32 random bytes, so a fast hash is
 * enough to keep a stolen store from yielding usable secrets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GV_SHA256_DIGEST_SIZE 32
#define GV_SHA256_HEX_SIZE 65 /* 64 lower-case hex digits and a NUL */

struct gv_sha256 {
        uint32_t h[8];
        uint8_t buf[64];
        size_t n;      /* bytes in buf */
        uint64_t bits; /* message length so far */
};

void gv_sha256_init(struct gv_sha256 *s);
void gv_sha256_update(struct gv_sha256 *s, const void *data, size_t len);
/* Finish: the digest into ret (s is used up; init it again to reuse it). */
void gv_sha256_final(struct gv_sha256 *s, uint8_t ret[static GV_SHA256_DIGEST_SIZE]);
void gv_sha256_final_hex(struct gv_sha256 *s, char ret[static GV_SHA256_HEX_SIZE]);

/* One call: the digest of data as hex. */
void gv_sha256_hex(const void *data, size_t len, char ret[static GV_SHA256_HEX_SIZE]);

/* Whether a and b (n bytes each) are equal, in time that depends only on n (for comparing
 * secrets' hashes without telling an attacker how many leading bytes matched). */
bool gv_memeq_const_time(const void *a, const void *b, size_t n);
