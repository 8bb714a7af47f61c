/* SPDX-License-Identifier: MIT */
/* sysfs.c: the path builder and the bounded readers/writers every hw file goes through. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hw/sysfs.h"
#include "tree.h"
#include "util/alloc.h"
#include "util/strv.h"

static void test_new(void **state)
{
        (void)state;
        struct gv_sysfs *fs = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        assert_int_equal(gv_sysfs_new("relative/dir", &fs, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'relative/dir' is not an absolute path"));
        assert_null(fs);
        e = gv_error_free(e);

        struct tree *t = tree_new();
        _cleanup_free_ char *empty = xasprintf("%s/empty", t->root);
        assert_int_equal(mkdir(empty, 0755), 0);
        assert_int_equal(gv_sysfs_new(empty, &fs, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "has no 'sys' directory"));
        e = gv_error_free(e);

        /* Trailing slashes do not double up in paths. */
        _cleanup_free_ char *slashed = xasprintf("%s//", t->root);
        assert_int_equal(gv_sysfs_new(slashed, &fs, &e), 0);
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, "0000:3b:00.0", "driver");
        _cleanup_free_ char *want = xasprintf("%s/sys/bus/pci/devices/0000:3b:00.0/driver",
                                              t->root);
        assert_string_equal(p, want);
        fs = gv_sysfs_free(fs);
        tree_free(t);
}

static void test_paths(void **state)
{
        (void)state;
        struct gv_sysfs fs = { .root = (char *)"", .sys = (char *)"/sys" };
        struct {
                char *got;
                const char *want;
        } cases[] = {
                { gv_sysfs_pci_devices_dir(&fs), "/sys/bus/pci/devices" },
                { gv_sysfs_pci_device_dir(&fs, "0000:01:00.0"), "/sys/bus/pci/devices/0000:01:00.0" },
                { gv_sysfs_pci_driver_attr(&fs, "nvidia", "unbind"),
                  "/sys/bus/pci/drivers/nvidia/unbind" },
                { gv_sysfs_pci_drivers_probe(&fs), "/sys/bus/pci/drivers_probe" },
                { gv_sysfs_iommu_group_devices_dir(&fs, 17), "/sys/kernel/iommu_groups/17/devices" },
                { gv_sysfs_mdev_bus_dir(&fs), "/sys/class/mdev_bus" },
                { gv_sysfs_mdev_type_attr(&fs, "0000:41:00.4", "nvidia-700", "create"),
                  "/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-700/create" },
                { gv_sysfs_mdev_device_attr(&fs, "aa618089-8b16-4d01-a136-25a0f3c73123", "remove"),
                  "/sys/bus/mdev/devices/aa618089-8b16-4d01-a136-25a0f3c73123/remove" },
                { gv_sysfs_mdev_device_attr(&fs, "aa618089-8b16-4d01-a136-25a0f3c73123", NULL),
                  "/sys/bus/mdev/devices/aa618089-8b16-4d01-a136-25a0f3c73123" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_string_equal(cases[i].got, cases[i].want);
                free(cases[i].got);
        }
}

static void test_read(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        tree_file(t, "a/value", "hello\n");
        tree_file(t, "a/two", "x\n\n");
        tree_file(t, "a/nul", "ab\0cd");
        _cleanup_free_ char *value = tree_path(t, "a/value"), *two = tree_path(t, "a/two");
        _cleanup_free_ char *gone = tree_path(t, "a/gone");

        char *s = NULL;
        assert_int_equal(gv_sysfs_read(value, 0, &s, &e), 1);
        assert_string_equal(s, "hello"); /* one newline stripped */
        free(s);
        assert_int_equal(gv_sysfs_read(two, 0, &s, &e), 1);
        assert_string_equal(s, "x\n"); /* only one */
        free(s);

        s = (char *)"untouched";
        assert_int_equal(gv_sysfs_read(gone, GV_SYSFS_OPTIONAL, &s, &e), 0);
        assert_string_equal(s, "untouched");
        assert_null(e);
        assert_int_equal(gv_sysfs_read(gone, 0, &s, &e), -ENOENT);
        assert_non_null(strstr(e->msg, gone));
        e = gv_error_free(e);

        /* Too large for a sysfs attribute. */
        _cleanup_free_ char *big = xmalloc(GV_SYSFS_READ_MAX + 2);
        memset(big, 'x', GV_SYSFS_READ_MAX + 1);
        big[GV_SYSFS_READ_MAX + 1] = 0;
        tree_file(t, "a/big", big);
        _cleanup_free_ char *bigp = tree_path(t, "a/big");
        assert_int_equal(gv_sysfs_read(bigp, 0, &s, &e), -EFBIG);
        assert_non_null(strstr(e->msg, bigp));
        e = gv_error_free(e);
        tree_free(t);
}

static void test_numbers(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        tree_file(t, "n/vendor", "0x10de\n");
        tree_file(t, "n/short", "0x10\n");
        tree_file(t, "n/garbage", "\x01zz\n");
        tree_file(t, "n/class", "0x030200\n");
        tree_file(t, "n/count", "16\n");
        tree_file(t, "n/neg", "-1\n");
        tree_file(t, "n/empty", "");
        _cleanup_free_ char *vendor = tree_path(t, "n/vendor"), *shrt = tree_path(t, "n/short"),
                            *garbage = tree_path(t, "n/garbage"), *cls = tree_path(t, "n/class"),
                            *count = tree_path(t, "n/count"), *neg = tree_path(t, "n/neg"),
                            *empty = tree_path(t, "n/empty");

        uint32_t v = 7;
        assert_int_equal(gv_sysfs_read_hex(vendor, 4, 0, &v, &e), 1);
        assert_int_equal(v, 0x10de);
        assert_int_equal(gv_sysfs_read_hex(cls, 6, 0, &v, &e), 1);
        assert_int_equal(v, 0x030200);

        v = 7;
        assert_int_equal(gv_sysfs_read_hex(shrt, 4, 0, &v, &e), -EBADMSG);
        assert_int_equal(v, 7);
        assert_non_null(strstr(e->msg, shrt));
        assert_non_null(strstr(e->msg, "holds '0x10'"));
        assert_non_null(strstr(e->msg, "corrupt or truncated"));
        e = gv_error_free(e);

        assert_int_equal(gv_sysfs_read_hex(garbage, 4, 0, &v, &e), -EBADMSG);
        assert_non_null(strstr(e->msg, "holds '\\x01zz'")); /* escaped for the message */
        e = gv_error_free(e);

        /* A class read as a 4-digit ID is refused too: the width is exact. */
        assert_int_equal(gv_sysfs_read_hex(cls, 4, 0, &v, &e), -EBADMSG);
        e = gv_error_free(e);

        assert_int_equal(gv_sysfs_read_u32(count, 0, &v, &e), 1);
        assert_int_equal(v, 16);
        assert_int_equal(gv_sysfs_read_u32(neg, 0, &v, &e), -EBADMSG);
        assert_non_null(strstr(e->msg, "holds '-1'"));
        e = gv_error_free(e);
        assert_int_equal(gv_sysfs_read_u32(empty, 0, &v, &e), -EBADMSG);
        e = gv_error_free(e);

        int i = 5;
        assert_int_equal(gv_sysfs_read_int(neg, 0, &i, &e), 1);
        assert_int_equal(i, -1);
        tree_free(t);
}

static void test_links_and_lists(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        tree_dir(t, "bus/pci/drivers/vfio-pci");
        tree_link(t, "l/driver", "../bus/pci/drivers/vfio-pci");
        tree_file(t, "l/virtfn1", "");
        tree_file(t, "l/virtfn0", "");
        tree_file(t, "l/vendor", "");
        _cleanup_free_ char *link = tree_path(t, "l/driver"), *dir = tree_path(t, "l"),
                            *plain = tree_path(t, "l/vendor"), *none = tree_path(t, "nothing");

        char *s = NULL;
        assert_int_equal(gv_sysfs_read_link(link, 0, &s, &e), 1);
        assert_string_equal(s, "vfio-pci");
        free(s);
        assert_int_equal(gv_sysfs_read_link_target(link, 0, &s, &e), 1);
        assert_string_equal(s, "../bus/pci/drivers/vfio-pci");
        free(s);
        assert_int_equal(gv_sysfs_read_link(plain, 0, &s, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "not a symbolic link"));
        e = gv_error_free(e);

        char **l = NULL;
        assert_int_equal(gv_sysfs_list(dir, NULL, 0, &l, &e), 1);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], "driver"); /* sorted */
        l = strv_free(l);
        assert_int_equal(gv_sysfs_list(dir, "virtfn", 0, &l, &e), 1);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "virtfn0");
        assert_string_equal(l[1], "virtfn1");
        l = strv_free(l);
        assert_int_equal(gv_sysfs_list(none, NULL, GV_SYSFS_OPTIONAL, &l, &e), 0);
        assert_null(l);
        assert_int_equal(gv_sysfs_list(none, NULL, 0, &l, &e), -ENOENT);
        assert_non_null(strstr(e->msg, none));
        e = gv_error_free(e);
        tree_free(t);
}

static void test_write(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        tree_file(t, "w/attr", "");
        _cleanup_free_ char *attr = tree_path(t, "w/attr"), *none = tree_path(t, "w/none");

        assert_int_equal(gv_sysfs_write(attr, "vfio-pci", &e), 0);
        _cleanup_free_ char *got = tree_read(t, "w/attr");
        assert_string_equal(got, "vfio-pci");

        /* A write never creates a file (sysfs attributes exist or not). */
        assert_int_equal(gv_sysfs_write(none, "1", &e), -ENOENT);
        assert_non_null(strstr(e->msg, "Writing '1' to"));
        assert_non_null(strstr(e->msg, none));
        assert_int_equal(access(none, F_OK), -1);
        e = gv_error_free(e);
        tree_free(t);
}

static void test_escape(void **state)
{
        (void)state;
        char long_s[100];
        memset(long_s, 'a', sizeof(long_s) - 1);
        long_s[99] = 0;
        _cleanup_free_ char *a = gv_sysfs_escape("ok\n\x7f'");
        assert_string_equal(a, "ok\\n\\x7f\\x27");
        _cleanup_free_ char *b = gv_sysfs_escape(long_s);
        assert_int_equal(strlen(b), 64 + 3);
        assert_string_equal(b + 64, "...");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new),     cmocka_unit_test(test_paths),
                cmocka_unit_test(test_read),    cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_links_and_lists), cmocka_unit_test(test_write),
                cmocka_unit_test(test_escape),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
