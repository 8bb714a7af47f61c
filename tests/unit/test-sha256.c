/* SPDX-License-Identifier: MIT */
/*
 * test-sha256: src/util/sha256.c against the FIPS 180-2 examples and lengths around the padding
 * boundaries, one-shot against incremental updates, and the constant-time comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/macro.h"
#include "util/sha256.h"

static const struct {
        size_t n_a; /* that many 'a's, when s is NULL */
        const char *s;
        const char *hex;
} vectors[] = {
        { 0, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { 0, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { 0, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { 55, NULL, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
        { 56, NULL, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
        { 63, NULL, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
        { 64, NULL, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
        { 65, NULL, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
        { 119, NULL, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
        { 128, NULL, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" },
        { 1000000, NULL, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static char *vector_data(size_t i, size_t *ret_n)
{
        size_t n = vectors[i].s ? strlen(vectors[i].s) : vectors[i].n_a;
        char *buf = xmalloc(n + 1);
        if (vectors[i].s)
                memcpy(buf, vectors[i].s, n + 1);
        else
                memset(buf, 'a', n);
        *ret_n = n;
        return buf;
}

static void test_vectors(void **state _unused_)
{
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                size_t n;
                _cleanup_free_ char *buf = vector_data(i, &n);
                char hex[GV_SHA256_HEX_SIZE];
                gv_sha256_hex(buf, n, hex);
                assert_string_equal(hex, vectors[i].hex);
        }
}

/* Fed in pieces of every size from 1 to 70 bytes (so pieces straddle block boundaries), the
 * digest is the same as in one call. */
static void test_incremental(void **state _unused_)
{
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                size_t n;
                _cleanup_free_ char *buf = vector_data(i, &n);
                if (n > 4096)
                        continue;
                for (size_t step = 1; step <= 70; step++) {
                        struct gv_sha256 s;
                        char hex[GV_SHA256_HEX_SIZE];
                        gv_sha256_init(&s);
                        for (size_t off = 0; off < n; off += step)
                                gv_sha256_update(&s, buf + off, MIN(step, n - off));
                        gv_sha256_final_hex(&s, hex);
                        assert_string_equal(hex, vectors[i].hex);
                }
        }
}

static void test_binary_digest(void **state _unused_)
{
        struct gv_sha256 s;
        uint8_t d[GV_SHA256_DIGEST_SIZE];
        gv_sha256_init(&s);
        gv_sha256_update(&s, "abc", 3);
        gv_sha256_final(&s, d);
        assert_int_equal(d[0], 0xba);
        assert_int_equal(d[1], 0x78);
        assert_int_equal(d[31], 0xad);
}

static void test_memeq(void **state _unused_)
{
        uint8_t a[32] = { 0 }, b[32] = { 0 };
        assert_true(gv_memeq_const_time(a, b, sizeof(a)));
        b[31] = 1;
        assert_false(gv_memeq_const_time(a, b, sizeof(a)));
        assert_true(gv_memeq_const_time(a, b, 31));
        b[31] = 0;
        b[0] = 0x80;
        assert_false(gv_memeq_const_time(a, b, sizeof(a)));
        assert_true(gv_memeq_const_time(a, b, 0));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_incremental),
                cmocka_unit_test(test_binary_digest),
                cmocka_unit_test(test_memeq),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
