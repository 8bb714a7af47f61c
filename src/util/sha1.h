/* SPDX-License-Identifier: MIT */
/*
 * sha1.h — SHA-1 (FIPS 180-4), for the WebSocket handshake only (RFC 6455 section 4.2.2:
 * Sec-WebSocket-Accept is base64(SHA-1(key + GUID))). SHA-1 is broken for collision resistance;
 * the handshake uses it as a fixed checksum, not for security. Use sha256.h for anything else.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define GV_SHA1_DIGEST_SIZE 20

struct gv_sha1 {
        uint32_t h[5];
        uint8_t buf[64];
        size_t n;      /* bytes in buf */
        uint64_t bits; /* message length so far */
};

void gv_sha1_init(struct gv_sha1 *s);
void gv_sha1_update(struct gv_sha1 *s, const void *data, size_t len);
/* Finish: the digest into ret (s is used up; init it again to reuse it). */
void gv_sha1_final(struct gv_sha1 *s, uint8_t ret[static GV_SHA1_DIGEST_SIZE]);
/* One call. */
void gv_sha1(const void *data, size_t len, uint8_t ret[static GV_SHA1_DIGEST_SIZE]);
