/* SPDX-License-Identifier: MIT */
/*
 * test-sha1-base64: src/util/sha1.c against the RFC 3174 / FIPS 180 examples (and lengths around
 * the padding boundaries, their digests from Python's hashlib), one-shot against incremental
 * updates; src/util/base64.c against the RFC 4648 section 10 vectors, strict decoding (bad
 * characters, padding, leftover bits) and round trips; the RFC 6455 section 1.3 handshake
 * example (SHA-1 and base64 together).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/base64.h"
#include "util/macro.h"
#include "util/sha1.h"

static const struct {
        size_t n_a; /* that many 'a's, when s is NULL */
        size_t repeat;
        const char *s;
        const char *hex;
} vectors[] = {
        { 0, 1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
        /* RFC 3174 section 7.3, TEST1..TEST4 */
        { 0, 1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { 0, 1, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
        { 1000000, 1, NULL, "34aa973cd4c4daa4f61eeb2bdbad27316534016f" },
        { 0, 10, "0123456701234567012345670123456701234567012345670123456701234567",
          "dea356a2cddd90c7a7ecedc5ebb563934f460452" },
        { 55, 1, NULL, "c1c8bbdc22796e28c0e15163d20899b65621d65a" },
        { 56, 1, NULL, "c2db330f6083854c99d4b5bfb6e8f29f201be699" },
        { 63, 1, NULL, "03f09f5b158a7a8cdad920bddc29b81c18a551f5" },
        { 64, 1, NULL, "0098ba824b5c16427bd7a1122a5a442a25ec644d" },
        { 65, 1, NULL, "11655326c708d70319be2610e8a57d9a5b959d3b" },
        { 119, 1, NULL, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56" },
        { 128, 1, NULL, "ad5b3fdbcb526778c2839d2f151ea753995e26a0" },
};

static char *vector_data(size_t i, size_t *ret_n)
{
        size_t one = vectors[i].s ? strlen(vectors[i].s) : vectors[i].n_a;
        size_t n = one * vectors[i].repeat;
        char *buf = xmalloc(n + 1);
        for (size_t r = 0; r < vectors[i].repeat; r++) {
                if (vectors[i].s)
                        memcpy(buf + r * one, vectors[i].s, one);
                else
                        memset(buf + r * one, 'a', one);
        }
        *ret_n = n;
        return buf;
}

static void hex(const uint8_t d[GV_SHA1_DIGEST_SIZE], char out[41])
{
        for (size_t i = 0; i < GV_SHA1_DIGEST_SIZE; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha1_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                size_t n;
                _cleanup_free_ char *data = vector_data(i, &n);
                uint8_t d[GV_SHA1_DIGEST_SIZE];
                char h[41];

                gv_sha1(data, n, d);
                hex(d, h);
                if (strcmp(h, vectors[i].hex) != 0)
                        fail_msg("vector %zu (%zu bytes): %s, want %s", i, n, h, vectors[i].hex);

                /* The same bytes fed in uneven pieces. */
                struct gv_sha1 s;
                gv_sha1_init(&s);
                for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 % 97 + 1)
                        gv_sha1_update(&s, data + off, MIN(step, n - off));
                gv_sha1_final(&s, d);
                hex(d, h);
                if (strcmp(h, vectors[i].hex) != 0)
                        fail_msg("vector %zu in pieces: %s, want %s", i, h, vectors[i].hex);
        }
}

/* RFC 4648 section 10. */
static const char *const b64[][2] = {
        { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_base64_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(b64); i++) {
                _cleanup_free_ char *e = gv_base64_encode(b64[i][0], strlen(b64[i][0]));
                assert_string_equal(e, b64[i][1]);
                _cleanup_free_ void *d = NULL;
                size_t n = 99;
                assert_int_equal(gv_base64_decode(b64[i][1], &d, &n), 0);
                assert_int_equal(n, strlen(b64[i][0]));
                assert_memory_equal(d, b64[i][0], n);
        }
}

static void test_base64_strict(void **state)
{
        static const char *const bad[] = {
                "Zg",        /* no padding */
                "Zg=",       /* short padding */
                "Z===",      /* three pads */
                "Zh==",      /* leftover bits set (canonical is Zg==) */
                "Zm9=",      /* leftover bits set (canonical is Zm8=) */
                "Zg==Zg==",  /* padding before the end */
                "Zm=v",      /* data after a pad */
                "Zm9v\n",    /* whitespace */
                "Zm9-",      /* base64url alphabet */
                "Zm9_",
                "Zm 9",
        };
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                void *d = (void *)1;
                size_t n = 7;
                if (gv_base64_decode(bad[i], &d, &n) != -EINVAL)
                        fail_msg("'%s' decoded", bad[i]);
                assert_ptr_equal(d, (void *)1); /* outputs untouched on failure */
                assert_int_equal(n, 7);
        }
}

static void test_base64_roundtrip(void **state)
{
        uint8_t all[256];
        (void)state;
        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (uint8_t)(255 - i);
        for (size_t len = 0; len <= sizeof(all); len++) {
                _cleanup_free_ char *e = gv_base64_encode(all, len);
                assert_int_equal(strlen(e), (len + 2) / 3 * 4);
                _cleanup_free_ void *d = NULL;
                size_t n = 0;
                assert_int_equal(gv_base64_decode(e, &d, &n), 0);
                assert_int_equal(n, len);
                assert_memory_equal(d, all, len);
        }
}

/* RFC 6455 section 1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is answered with
 * "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static void test_websocket_accept_example(void **state)
{
        const char *in = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        uint8_t d[GV_SHA1_DIGEST_SIZE];
        (void)state;
        gv_sha1(in, strlen(in), d);
        _cleanup_free_ char *e = gv_base64_encode(d, sizeof(d));
        assert_string_equal(e, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha1_vectors),
                cmocka_unit_test(test_base64_vectors),
                cmocka_unit_test(test_base64_strict),
                cmocka_unit_test(test_base64_roundtrip),
                cmocka_unit_test(test_websocket_accept_example),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
