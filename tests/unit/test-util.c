/* SPDX-License-Identifier: MIT */
/* Errors, files, JSON getters, string vectors and enum tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"
#include "util/strv.h"

static int failing_leaf(struct gv_error **err)
{
        return gv_error_set(err, ENOSPC, "GPU '%s' is full", "0000:18:00.0");
}

static int failing_middle(struct gv_error **err)
{
        int r = failing_leaf(err);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot create vGPU 'H100XM-20C'");
        return 0;
}

static void test_error_chain(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(failing_middle(&e), -ENOSPC);
        assert_non_null(e);
        assert_int_equal(e->code, ENOSPC);
        assert_string_equal(e->msg, "cannot create vGPU 'H100XM-20C': GPU '0000:18:00.0' is full");
        /* NULL err: only the errno comes back. */
        assert_int_equal(failing_middle(NULL), -ENOSPC);
        /* An existing error is not overwritten by a second set. */
        assert_int_equal(gv_error_set(&e, EINVAL, "second"), -EINVAL);
        assert_int_equal(e->code, ENOSPC);
        /* wrap without an error object makes one from strerror */
        _cleanup_(gv_error_freep) struct gv_error *f = NULL;
        assert_int_equal(gv_error_wrap(&f, -ENOENT, "reading '%s'", "x"), -ENOENT);
        assert_string_equal(f->msg, "reading 'x': No such file or directory");
        assert_string_equal(gv_errno_name(-EBUSY), "EBUSY");
        assert_string_equal(gv_error_msg(NULL, -ENOENT), "No such file or directory");
}

static void test_files(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-util-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *p = gv_path_join(dir, "/a/", "b", "c.txt");
        _cleanup_free_ char *sub = gv_path_join(dir, "a", "b");
        assert_string_equal(p + strlen(dir), "/a/b/c.txt");
        assert_int_equal(gv_mkdir_p(sub, 0755), 0);
        assert_int_equal(gv_write_file(p, "0x10de", GV_WRITE_CREATE | GV_WRITE_NEWLINE), 0);
        _cleanup_free_ char *s = NULL;
        assert_int_equal(gv_read_line(p, &s), 0);
        assert_string_equal(s, "0x10de");
        _cleanup_free_ char *raw = NULL;
        size_t n = 0;
        assert_int_equal(gv_read_file(p, 16, &raw, &n), 0);
        assert_int_equal(n, 7);
        /* limit enforced */
        char big[9000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(gv_write_file(p, big, GV_WRITE_ATOMIC), 0);
        char *t = NULL;
        assert_int_equal(gv_read_file(p, 4096, &t, NULL), -EFBIG);
        assert_null(t);
        /* missing file, and writing a missing file without CREATE */
        _cleanup_free_ char *q = gv_path_join(dir, "nope");
        assert_int_equal(gv_read_line(q, &t), -ENOENT);
        assert_int_equal(gv_write_file(q, "1", 0), -ENOENT);
        assert_int_equal(gv_file_exists(q), 0);
        assert_int_equal(gv_file_exists(p), 1);
        /* links */
        _cleanup_free_ char *l = gv_path_join(dir, "driver");
        assert_int_equal(symlink("../../../bus/pci/drivers/vfio-pci", l), 0);
        _cleanup_free_ char *b = NULL;
        assert_int_equal(gv_readlink_basename(l, &b), 0);
        assert_string_equal(b, "vfio-pci");
        assert_int_equal(gv_rm_rf(dir), 0);
        assert_int_equal(gv_file_exists(dir), 0);
        assert_int_equal(gv_rm_rf("/"), -EINVAL);
}

static void test_program_in_path(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-util-path.XXXXXX";
        _cleanup_free_ char *old = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *exe = xasprintf("%s/gv-tool", dir);
        _cleanup_free_ char *plain = xasprintf("%s/gv-data", dir);
        assert_int_equal(gv_write_file(exe, "#!/bin/sh\n", GV_WRITE_CREATE), 0);
        assert_int_equal(chmod(exe, 0755), 0);
        assert_int_equal(gv_write_file(plain, "x", GV_WRITE_CREATE), 0);
        _cleanup_free_ char *p = xasprintf("/nonexistent-dir:%s", dir);
        setenv("PATH", p, 1);
        assert_true(gv_program_in_path("gv-tool"));
        assert_false(gv_program_in_path("gv-data")); /* not executable */
        assert_false(gv_program_in_path("gv-missing"));
        setenv("PATH", "/nonexistent-dir", 1);
        assert_false(gv_program_in_path("gv-tool"));
        if (old)
                setenv("PATH", old, 1);
        else
                unsetenv("PATH");
        unlink(exe);
        unlink(plain);
        rmdir(dir);
}

static void test_json(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *j = NULL;
        assert_int_equal(gv_json_loads("{\"a\": 1,", &j, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "line 1"));
        e = gv_error_free(e);
        assert_int_equal(gv_json_loads("{\"a\": 1, \"a\": 2}", &j, &e), -EINVAL); /* dup keys */
        e = gv_error_free(e);
        assert_int_equal(gv_json_loads("{\"n\": 5, \"s\": \"x\", \"b\": true, \"neg\": -1, "
                                       "\"big\": 4294967296, \"arr\": []}", &j, NULL), 0);
        _cleanup_json_ json_t *o = j;
        uint32_t u = 0;
        const char *s = NULL;
        bool b = false;
        json_t *arr = NULL;
        assert_int_equal(gv_json_get_u32(o, "n", &u, NULL), 0);
        assert_int_equal(u, 5);
        assert_int_equal(gv_json_get_string(o, "s", &s, NULL), 0);
        assert_string_equal(s, "x");
        assert_int_equal(gv_json_get_bool(o, "b", &b, NULL), 0);
        assert_true(b);
        assert_int_equal(gv_json_get_array(o, "arr", &arr, NULL), 0);
        assert_int_equal(gv_json_get_u32(o, "neg", &u, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'neg'"));
        e = gv_error_free(e);
        assert_int_equal(gv_json_get_u32(o, "big", &u, NULL), -EINVAL);
        assert_int_equal(gv_json_get_string(o, "n", &s, &e), -EINVAL);
        assert_string_equal(e->msg, "key 'n' must be a string");
        e = gv_error_free(e);
        assert_int_equal(gv_json_get_string(o, "missing", &s, &e), -EINVAL);
        assert_string_equal(e->msg, "missing key 'missing'");
        u = 77;
        assert_int_equal(gv_json_opt_u32(o, "missing", &u, NULL), 0);
        assert_int_equal(u, 77);
        _cleanup_free_ char *dump = gv_json_dumps_pretty(o);
        assert_non_null(strstr(dump, "\"arr\""));
}

static void test_strv(void **state)
{
        (void)state;
        _cleanup_strv_free_ char **l = strv_split("  flr bus\n", " \n");
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "flr");
        assert_true(strv_contains(l, "bus"));
        assert_false(strv_contains(l, "pm"));
        strv_extend(&l, "a");
        strv_sort(l);
        _cleanup_free_ char *j = strv_join(l, ",");
        assert_string_equal(j, "a,bus,flr");
        _cleanup_strv_free_ char **empty = strv_split("", " ");
        assert_int_equal(strv_length(empty), 0);
}

static void test_enum(void **state)
{
        (void)state;
        assert_string_equal(gv_log_level_to_string(GV_LOG_DEBUG), "debug");
        assert_int_equal(gv_log_level_from_string("info"), GV_LOG_INFO);
        assert_int_equal(gv_log_level_from_string("verbose"), -EINVAL);
        assert_int_equal(gv_log_level_from_string(NULL), -EINVAL);
        assert_null(gv_log_level_to_string(_GV_LOG_LEVEL_MAX));
        static const char *const t[] = { "none", "passthrough", NULL, "mig" };
        _cleanup_free_ char *s = STRING_TABLE_JOIN(t, ", ");
        assert_string_equal(s, "none, passthrough, mig");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_chain), cmocka_unit_test(test_files),
                cmocka_unit_test(test_json),        cmocka_unit_test(test_strv),
                cmocka_unit_test(test_enum),        cmocka_unit_test(test_program_in_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
