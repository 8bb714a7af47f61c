/* SPDX-License-Identifier: MIT */
/*
 * base64.c — RFC 4648 base64 (base64.h).
 */
#include "util/base64.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *gv_base64_encode(const void *data, size_t len)
{
        const uint8_t *p = data;
        char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;

        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = alphabet[(v >> 18) & 63];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? alphabet[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static int value_of(char c)
{
        const char *p = c ? strchr(alphabet, c) : NULL;
        return p ? (int)(p - alphabet) : -1;
}

int gv_base64_decode(const char *s, void **ret, size_t *ret_len)
{
        size_t n = strlen(s);
        if (n % 4)
                return -EINVAL;
        uint8_t *out = xmalloc(n / 4 * 3 + 1);
        size_t k = 0;
        for (size_t i = 0; i < n; i += 4) {
                int v[4], pad = 0;
                for (int j = 0; j < 4; j++) {
                        if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        v[j] = value_of(s[i + j]);
                        if (v[j] < 0 || pad) /* not in the alphabet, or data after a '=' */
                                goto bad;
                }
                uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                             (uint32_t)v[3];
                /* Canonical only: the bits the padding leaves over must be zero. */
                if ((pad == 1 && (x & 0xff)) || (pad == 2 && (x & 0xffff)))
                        goto bad;
                out[k++] = (uint8_t)(x >> 16);
                if (pad < 2)
                        out[k++] = (uint8_t)(x >> 8);
                if (pad < 1)
                        out[k++] = (uint8_t)x;
        }
        out[k] = 0;
        *ret = out;
        *ret_len = k;
        return 0;
bad:
        free(out);
        return -EINVAL;
}
