/* SPDX-License-Identifier: MIT */
/* Strict parsers: every rejection a sysfs file or an API body could provoke. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/parse.h"

static void test_u64(void **state)
{
        (void)state;
        uint64_t v = 7;
        assert_int_equal(gv_parse_u64("0", 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(gv_parse_u64("18446744073709551615", 10, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(gv_parse_u64("18446744073709551616", 10, &v), -ERANGE);
        assert_int_equal(gv_parse_u64("0x10de\n", 0, &v), 0); /* sysfs "vendor" */
        assert_int_equal(v, 0x10de);
        assert_int_equal(gv_parse_u64("10de", 16, &v), 0);
        assert_int_equal(v, 0x10de);
        assert_int_equal(gv_parse_u64("010", 0, &v), 0); /* no octal surprise */
        assert_int_equal(v, 10);
        v = 99;
        assert_int_equal(gv_parse_u64("", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("\n", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("-1", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("+1", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64(" 1", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("1 ", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("1\n\n", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("12abc", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("0x", 0, &v), -EINVAL);
        assert_int_equal(gv_parse_u64("ff", 10, &v), -EINVAL);
        assert_int_equal(gv_parse_u64(NULL, 10, &v), -EINVAL);
        assert_int_equal(v, 99); /* ret untouched on failure */
}

static void test_narrow(void **state)
{
        (void)state;
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
        int i;
        assert_int_equal(gv_parse_u32("4294967295", 10, &u32), 0);
        assert_int_equal(gv_parse_u32("4294967296", 10, &u32), -ERANGE);
        assert_int_equal(gv_parse_u16("0xffff", 0, &u16), 0);
        assert_int_equal(gv_parse_u16("0x10000", 0, &u16), -ERANGE);
        assert_int_equal(gv_parse_u8("256", 10, &u8), -ERANGE);
        assert_int_equal(gv_parse_int("-1\n", &i), 0); /* numa_node */
        assert_int_equal(i, -1);
        assert_int_equal(gv_parse_int("2147483648", &i), -ERANGE);
        assert_int_equal(gv_parse_int("-2147483648", &i), 0);
        assert_int_equal(i, INT32_MIN);
        assert_int_equal(gv_parse_int("--1", &i), -EINVAL);
}

static void test_bool_size(void **state)
{
        (void)state;
        bool b = false;
        uint64_t s;
        assert_int_equal(gv_parse_bool("Yes", &b), 0);
        assert_true(b);
        assert_int_equal(gv_parse_bool("0\n", &b), 0);
        assert_false(b);
        assert_int_equal(gv_parse_bool("maybe", &b), -EINVAL);
        assert_int_equal(gv_parse_size("80G", &s), 0);
        assert_true(s == 80ull << 30);
        assert_int_equal(gv_parse_size("512MiB", &s), 0);
        assert_true(s == 512ull << 20);
        assert_int_equal(gv_parse_size("4096", &s), 0);
        assert_true(s == 4096);
        assert_int_equal(gv_parse_size("1.5G", &s), -EINVAL);
        assert_int_equal(gv_parse_size("G", &s), -EINVAL);
        assert_int_equal(gv_parse_size("10X", &s), -EINVAL);
        assert_int_equal(gv_parse_size("99999999999T", &s), -ERANGE);
}

static void test_uuid(void **state)
{
        (void)state;
        struct gv_uuid u, w;
        char buf[GV_UUID_STR_LEN + 1];
        assert_int_equal(gv_parse_uuid("AA618089-8B16-4D01-A136-25A0F3C73123", &u), 0);
        assert_string_equal(gv_uuid_format(&u, buf), "aa618089-8b16-4d01-a136-25a0f3c73123");
        assert_int_equal(gv_parse_uuid("aa618089-8b16-4d01-a136-25a0f3c73123\n", &w), 0);
        assert_memory_equal(u.b, w.b, 16);
        assert_int_equal(gv_parse_uuid("aa618089-8b16-4d01-a136-25a0f3c7312", &u), -EINVAL);
        assert_int_equal(gv_parse_uuid("aa618089+8b16-4d01-a136-25a0f3c73123", &u), -EINVAL);
        assert_int_equal(gv_parse_uuid("ga618089-8b16-4d01-a136-25a0f3c73123", &u), -EINVAL);
        assert_int_equal(gv_uuid_random(&u), 0);
        assert_int_equal(u.b[6] >> 4, 4);
        assert_int_equal(u.b[8] >> 6, 2);
        assert_false(gv_uuid_is_null(&u));
}

static void test_pci(void **state)
{
        (void)state;
        struct gv_pci_addr a, b;
        char buf[GV_PCI_ADDR_STR_MAX];
        assert_int_equal(gv_parse_pci_addr("0000:3b:00.0", &a), 0);
        assert_string_equal(gv_pci_addr_format(&a, buf), "0000:3b:00.0");
        assert_int_equal(gv_parse_pci_addr("00000000:3B:00.0", &b), 0); /* NVML busId */
        assert_true(gv_pci_addr_equal(&a, &b));
        assert_int_equal(gv_parse_pci_addr("3b:00.0", &b), 0);
        assert_true(gv_pci_addr_equal(&a, &b));
        assert_int_equal(gv_parse_pci_addr("0000:41:01.3", &b), 0);
        assert_int_equal(b.slot, 1);
        assert_int_equal(b.function, 3);
        assert_true(gv_pci_addr_compare(&a, &b) < 0);
        assert_int_equal(gv_parse_pci_addr("0000:3b:20.0", &b), -ERANGE);
        assert_int_equal(gv_parse_pci_addr("0000:3b:00.8", &b), -ERANGE);
        assert_int_equal(gv_parse_pci_addr("0000:3b:00", &b), -EINVAL);
        assert_int_equal(gv_parse_pci_addr("0000:3bb:00.0", &b), -EINVAL);
        assert_int_equal(gv_parse_pci_addr("123456789:3b:00.0", &b), -EINVAL);
        assert_int_equal(gv_parse_pci_addr("0000:3b:00.0x", &b), -EINVAL);
        assert_int_equal(gv_parse_pci_addr("0000.3b:00:0", &b), -EINVAL);
        assert_int_equal(gv_parse_pci_addr("", &b), -EINVAL);
}

static void test_names(void **state)
{
        (void)state;
        assert_true(gv_name_is_valid("infer-2"));
        assert_true(gv_name_is_valid("a"));
        assert_true(gv_name_is_valid("node_a.1"));
        assert_false(gv_name_is_valid(""));
        assert_false(gv_name_is_valid("-x"));
        assert_false(gv_name_is_valid("Upper"));
        assert_false(gv_name_is_valid("a/b"));
        assert_false(gv_name_is_valid("0123456789012345678901234567890123456789012345678901234567890123"));
        char s[] = "  padded \n";
        assert_string_equal(gv_strip(s), "padded");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_u64),      cmocka_unit_test(test_narrow),
                cmocka_unit_test(test_bool_size), cmocka_unit_test(test_uuid),
                cmocka_unit_test(test_pci),      cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
