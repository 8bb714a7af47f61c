/* SPDX-License-Identifier: MIT */
/*
 * sha256.c — SHA-256 from the algorithm in FIPS 180-4 (sections 4.1.2, 4.2.2, 5.1.1, 6.2).
 */
#include "util/sha256.h"

#include <string.h>

#include "util/macro.h"

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t sha256_k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned n)
{
        return (x >> n) | (x << (32 - n));
}

void gv_sha256_init(struct gv_sha256 *s)
{
        /* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
        static const uint32_t h0[8] = {
                0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
        };
        memcpy(s->h, h0, sizeof(h0));
        s->n = 0;
        s->bits = 0;
}

static void sha256_block(struct gv_sha256 *s, const uint8_t *p)
{
        uint32_t w[64];
        for (unsigned t = 0; t < 16; t++)
                w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
                       (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
        for (unsigned t = 16; t < 64; t++) {
                uint32_t s0 = ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
                uint32_t s1 = ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
                w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }

        uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
        uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
        for (unsigned t = 0; t < 64; t++) {
                uint32_t S1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
                uint32_t ch = (e & f) ^ (~e & g);
                uint32_t t1 = h + S1 + ch + sha256_k[t] + w[t];
                uint32_t S0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
                uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
                uint32_t t2 = S0 + maj;
                h = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = b;
                b = a;
                a = t1 + t2;
        }
        s->h[0] += a;
        s->h[1] += b;
        s->h[2] += c;
        s->h[3] += d;
        s->h[4] += e;
        s->h[5] += f;
        s->h[6] += g;
        s->h[7] += h;
}

void gv_sha256_update(struct gv_sha256 *s, const void *data, size_t len)
{
        const uint8_t *p = data;
        s->bits += (uint64_t)len * 8;
        while (len > 0) {
                if (s->n == 0 && len >= 64) {
                        sha256_block(s, p);
                        p += 64;
                        len -= 64;
                        continue;
                }
                size_t k = MIN(len, 64 - s->n);
                memcpy(s->buf + s->n, p, k);
                s->n += k;
                p += k;
                len -= k;
                if (s->n == 64) {
                        sha256_block(s, s->buf);
                        s->n = 0;
                }
        }
}

void gv_sha256_final(struct gv_sha256 *s, uint8_t ret[static GV_SHA256_DIGEST_SIZE])
{
        uint64_t bits = s->bits;
        uint8_t pad[72] = { 0x80 };
        /* Pad to 56 mod 64, then the 64-bit big-endian length (5.1.1). */
        size_t padlen = s->n < 56 ? 56 - s->n : 120 - s->n;
        for (unsigned i = 0; i < 8; i++)
                pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
        gv_sha256_update(s, pad, padlen + 8);

        for (unsigned i = 0; i < 8; i++)
                for (unsigned j = 0; j < 4; j++)
                        ret[4 * i + j] = (uint8_t)(s->h[i] >> (24 - 8 * j));
}

void gv_sha256_final_hex(struct gv_sha256 *s, char ret[static GV_SHA256_HEX_SIZE])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t d[GV_SHA256_DIGEST_SIZE];
        gv_sha256_final(s, d);
        for (unsigned i = 0; i < GV_SHA256_DIGEST_SIZE; i++) {
                ret[2 * i] = hex[d[i] >> 4];
                ret[2 * i + 1] = hex[d[i] & 15];
        }
        ret[64] = 0;
}

void gv_sha256_hex(const void *data, size_t len, char ret[static GV_SHA256_HEX_SIZE])
{
        struct gv_sha256 s;
        gv_sha256_init(&s);
        gv_sha256_update(&s, data, len);
        gv_sha256_final_hex(&s, ret);
}

bool gv_memeq_const_time(const void *a, const void *b, size_t n)
{
        const volatile uint8_t *x = a, *y = b;
        uint8_t diff = 0;
        for (size_t i = 0; i < n; i++)
                diff |= x[i] ^ y[i];
        return diff == 0;
}
