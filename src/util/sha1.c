/* SPDX-License-Identifier: MIT */
/*
 * sha1.c — SHA-1 from the algorithm in FIPS 180-4 (sections 4.1.1, 4.2.1, 5.1.1, 6.1.2).
 */
#include "util/sha1.h"

#include <string.h>

static inline uint32_t rol32(uint32_t x, unsigned n)
{
        return (x << n) | (x >> (32 - n));
}

void gv_sha1_init(struct gv_sha1 *s)
{
        static const uint32_t h0[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                                        0xc3d2e1f0 };
        memcpy(s->h, h0, sizeof(h0));
        s->n = 0;
        s->bits = 0;
}

static void sha1_block(struct gv_sha1 *s, const uint8_t *p)
{
        uint32_t w[80];
        for (unsigned t = 0; t < 16; t++)
                w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
                       (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
        for (unsigned t = 16; t < 80; t++)
                w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

        uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
        for (unsigned t = 0; t < 80; t++) {
                uint32_t f, k;
                if (t < 20) {
                        f = (b & c) | (~b & d);
                        k = 0x5a827999;
                } else if (t < 40) {
                        f = b ^ c ^ d;
                        k = 0x6ed9eba1;
                } else if (t < 60) {
                        f = (b & c) | (b & d) | (c & d);
                        k = 0x8f1bbcdc;
                } else {
                        f = b ^ c ^ d;
                        k = 0xca62c1d6;
                }
                uint32_t tmp = rol32(a, 5) + f + e + k + w[t];
                e = d;
                d = c;
                c = rol32(b, 30);
                b = a;
                a = tmp;
        }
        s->h[0] += a;
        s->h[1] += b;
        s->h[2] += c;
        s->h[3] += d;
        s->h[4] += e;
}

void gv_sha1_update(struct gv_sha1 *s, const void *data, size_t len)
{
        const uint8_t *p = data;
        s->bits += (uint64_t)len * 8;
        while (len) {
                size_t k = sizeof(s->buf) - s->n;
                if (k > len)
                        k = len;
                memcpy(s->buf + s->n, p, k);
                s->n += k;
                p += k;
                len -= k;
                if (s->n == sizeof(s->buf)) {
                        sha1_block(s, s->buf);
                        s->n = 0;
                }
        }
}

void gv_sha1_final(struct gv_sha1 *s, uint8_t ret[static GV_SHA1_DIGEST_SIZE])
{
        uint64_t bits = s->bits;
        uint8_t pad = 0x80, zero = 0, len[8];

        gv_sha1_update(s, &pad, 1);
        while (s->n != 56)
                gv_sha1_update(s, &zero, 1);
        for (unsigned i = 0; i < 8; i++)
                len[i] = (uint8_t)(bits >> (56 - 8 * i));
        gv_sha1_update(s, len, 8);
        for (unsigned i = 0; i < 5; i++) {
                ret[4 * i] = (uint8_t)(s->h[i] >> 24);
                ret[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
                ret[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
                ret[4 * i + 3] = (uint8_t)s->h[i];
        }
}

void gv_sha1(const void *data, size_t len, uint8_t ret[static GV_SHA1_DIGEST_SIZE])
{
        struct gv_sha1 s;
        gv_sha1_init(&s);
        gv_sha1_update(&s, data, len);
        gv_sha1_final(&s, ret);
}
