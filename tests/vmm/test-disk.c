/* SPDX-License-Identifier: MIT */
/* Disk images (src/vmm/disk.c) with the real qemu-img; skipped (77) when it is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vmm/disk.h"
#include "vmm/proc.h"

#define MiB (1024ull * 1024ull)

static char tmpdir[] = "/tmp/gv-disk-XXXXXX";

static char *tpath(const char *name)
{
        return xasprintf("%s/%s", tmpdir, name);
}


/* A raw image: a sparse file of size bytes. */
static char *make_raw(const char *name, uint64_t size)
{
        char *p = tpath(name);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        close(fd);
        return p;
}

static char *make_qcow2(const char *name, uint64_t size)
{
        char *p = tpath(name);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_disk_create(p, size, &e);
        if (r < 0)
                fail_msg("gv_disk_create: %s", gv_error_msg(e, r));
        return p;
}

static void copy_prefix(const char *from, const char *to, size_t n)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        assert_int_equal(gv_read_file(from, 16 * MiB, &buf, &len), 0);
        assert_true(len >= n);
        int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
        close(fd);
}

static void patch(const char *path, off_t off, const void *bytes, size_t n)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
        close(fd);
}

static uint64_t be64_at(const char *path, off_t off)
{
        unsigned char b[8];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, b, 8, off), 8);
        close(fd);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | b[i];
        return v;
}

#define assert_contains(s, sub)                                                      \
        do {                                                                         \
                if (!strstr((s), (sub)))                                             \
                        fail_msg("'%s' does not contain '%s'", (s), (sub));          \
        } while (0)

static void test_create_and_info(void **state)
{
        (void)state;
        _cleanup_free_ char *p = make_qcow2("data.qcow2", 64 * MiB);
        struct gv_disk_info i = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_disk_info(p, &i, &e);
        if (r < 0)
                fail_msg("info: %s", gv_error_msg(e, r));
        assert_string_equal(i.format, "qcow2");
        assert_int_equal(i.virtual_size, 64 * MiB);
        assert_true(i.actual_size > 0 && i.actual_size < 64 * MiB); /* empty: metadata only */
        assert_null(i.backing_file);
        assert_null(i.backing_format);
        assert_false(i.corrupt);
        gv_disk_info_done(&i);
        assert_null(i.format);

        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600); /* guest data: not world-readable */
        assert_int_equal(gv_disk_check(p, false, NULL), 0);
        assert_int_equal(gv_disk_check(p, true, NULL), 0);

        /* Never overwrites: the existing image stays as it was. */
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_disk_create(p, 8 * MiB, &e2), -EEXIST);
        assert_contains(e2->msg, "already exists");
        assert_int_equal(gv_disk_info(p, &i, NULL), 0);
        assert_int_equal(i.virtual_size, 64 * MiB);
        gv_disk_info_done(&i);

        /* Sizes: zero and partial sectors are refused before anything is created. */
        _cleanup_free_ char *q = tpath("bad-size.qcow2");
        assert_int_equal(gv_disk_create(q, 0, NULL), -EINVAL);
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_disk_create(q, 1000, &e3), -EINVAL);
        assert_contains(e3->msg, "512-byte sectors");
        assert_int_equal(gv_file_exists(q), 0);

        /* A relative path is a file name, never an option. */
        assert_int_equal(chdir(tmpdir), 0);
        assert_int_equal(gv_disk_create("-f", 1 * MiB, NULL), 0);
        assert_int_equal(gv_disk_info("-f", &i, NULL), 0);
        assert_string_equal(i.format, "qcow2");
        gv_disk_info_done(&i);
        assert_int_equal(chdir("/"), 0);
}

static void check_overlay(const char *base, const char *base_fmt, uint64_t base_size)
{
        _cleanup_free_ char *abs = realpath(base, NULL);
        assert_non_null(abs);
        _cleanup_free_ char *ov = xasprintf("%s.ov0.qcow2", base);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_disk_create_overlay(base, ov, 0, &e);
        if (r < 0)
                fail_msg("overlay: %s", gv_error_msg(e, r));
        struct gv_disk_info i = { 0 };
        assert_int_equal(gv_disk_info(ov, &i, NULL), 0);
        assert_string_equal(i.format, "qcow2");
        assert_int_equal(i.virtual_size, base_size);
        assert_non_null(i.backing_file);
        assert_string_equal(i.backing_file, abs);
        assert_string_equal(i.backing_format, base_fmt);
        gv_disk_info_done(&i);
        r = gv_disk_check(ov, false, &e);
        if (r < 0)
                fail_msg("check: %s", gv_error_msg(e, r));

        /* Larger: grows. */
        _cleanup_free_ char *big = xasprintf("%s.ov1.qcow2", base);
        assert_int_equal(gv_disk_create_overlay(base, big, base_size + 4 * MiB, NULL), 0);
        assert_int_equal(gv_disk_info(big, &i, NULL), 0);
        assert_int_equal(i.virtual_size, base_size + 4 * MiB);
        assert_string_equal(i.backing_format, base_fmt);
        gv_disk_info_done(&i);

        /* Smaller: refused, nothing left behind. */
        _cleanup_free_ char *small = xasprintf("%s.ov2.qcow2", base);
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_disk_create_overlay(base, small, base_size - 512, &e2), -EINVAL);
        assert_contains(e2->msg, "smaller than base image");
        assert_contains(e2->msg, base);
        assert_int_equal(gv_file_exists(small), 0);

        /* Overwrite: refused, the existing overlay untouched (still the grown one). */
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_disk_create_overlay(base, big, 0, &e3), -EEXIST);
        assert_contains(e3->msg, big);
        assert_int_equal(gv_disk_info(big, &i, NULL), 0);
        assert_int_equal(i.virtual_size, base_size + 4 * MiB);
        gv_disk_info_done(&i);

        /* An overlay on the overlay: a three-deep chain checks out. */
        _cleanup_free_ char *top = xasprintf("%s.ov3.qcow2", base);
        assert_int_equal(gv_disk_create_overlay(ov, top, 0, NULL), 0);
        assert_int_equal(gv_disk_info(top, &i, NULL), 0);
        assert_string_equal(i.backing_format, "qcow2");
        gv_disk_info_done(&i);
        assert_int_equal(gv_disk_check(top, false, NULL), 0);
}

static void test_overlay_on_raw(void **state)
{
        (void)state;
        _cleanup_free_ char *base = make_raw("base.raw", 16 * MiB);
        check_overlay(base, "raw", 16 * MiB);
}

static void test_overlay_on_qcow2(void **state)
{
        (void)state;
        _cleanup_free_ char *base = make_qcow2("base.qcow2", 32 * MiB);
        check_overlay(base, "qcow2", 32 * MiB);
}

static void test_missing(void **state)
{
        (void)state;
        _cleanup_free_ char *gone = tpath("gone.raw");
        _cleanup_free_ char *ov = tpath("gone-ov.qcow2");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_disk_create_overlay(gone, ov, 0, &e), -ENOENT);
        assert_contains(e->msg, "does not exist");
        assert_contains(e->msg, gone);
        assert_int_equal(gv_file_exists(ov), 0);

        struct gv_disk_info i = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_disk_info(gone, &i, &e2), -ENOENT);
        _cleanup_free_ char *want = xasprintf("Disk image '%s' does not exist.", gone);
        assert_string_equal(e2->msg, want);
        assert_null(i.format);

        /* The base vanishes after the overlay was made: the chain does not resolve. */
        _cleanup_free_ char *base = make_raw("doomed.raw", 4 * MiB);
        _cleanup_free_ char *ov2 = tpath("orphan.qcow2");
        assert_int_equal(gv_disk_create_overlay(base, ov2, 0, NULL), 0);
        assert_int_equal(unlink(base), 0);
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_disk_check(ov2, true, &e3), -ENOENT);
        assert_contains(e3->msg, "backing chain");
        assert_contains(e3->msg, base);
}

static void test_not_images(void **state)
{
        (void)state;
        struct gv_disk_info i = { 0 };

        /* A text file: qemu-img calls it raw; we do not. */
        _cleanup_free_ char *txt = tpath("notes.txt");
        assert_int_equal(gv_write_file(txt, "hello, this is not a disk\n", GV_WRITE_CREATE), 0);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_disk_info(txt, &i, &e), -EINVAL);
        assert_contains(e->msg, txt);
        assert_contains(e->msg, "not a disk image");
        assert_int_equal(gv_disk_check(txt, true, NULL), -EINVAL);
        _cleanup_free_ char *ov = tpath("on-text.qcow2");
        assert_int_equal(gv_disk_create_overlay(txt, ov, 0, NULL), -EINVAL);
        assert_int_equal(gv_file_exists(ov), 0);

        /* Empty file and a directory. */
        _cleanup_free_ char *empty = make_raw("empty.img", 0);
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_disk_info(empty, &i, &e2), -EINVAL);
        assert_contains(e2->msg, "empty");
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_disk_info(tmpdir, &i, &e3), -EINVAL);
        assert_contains(e3->msg, "not a regular file");

        /* A qcow2 cut off inside its header: qemu-img's words, the path. */
        _cleanup_free_ char *good = make_qcow2("whole.qcow2", 16 * MiB);
        _cleanup_free_ char *cut = tpath("cut.qcow2");
        copy_prefix(good, cut, 100);
        _cleanup_(gv_error_freep) struct gv_error *e4 = NULL;
        assert_int_equal(gv_disk_info(cut, &i, &e4), -EINVAL);
        assert_contains(e4->msg, cut);
        assert_contains(e4->msg, "qcow2 header too short");
        assert_null(i.format);

        /* Cut off after the header (its L1 and refcount tables gone): info still reads the
         * header, check finds the damage. */
        _cleanup_free_ char *cut2 = tpath("cut2.qcow2");
        copy_prefix(good, cut2, 65536);
        assert_int_equal(gv_disk_info(cut2, &i, NULL), 0);
        gv_disk_info_done(&i);
        _cleanup_(gv_error_freep) struct gv_error *e5 = NULL;
        assert_int_equal(gv_disk_check(cut2, false, &e5), -EINVAL);
        assert_contains(e5->msg, "is corrupt");
        assert_contains(e5->msg, "qemu-img check -r all");
}

static void test_corrupt(void **state)
{
        (void)state;
        struct gv_disk_info i = { 0 };

        /* qcow2 header: incompatible_features is the big-endian u64 at offset 72; bit 1 is
         * the "corrupt" bit (qcow2 specification, docs/interop/qcow2.txt). */
        _cleanup_free_ char *flagged = make_qcow2("flagged.qcow2", 16 * MiB);
        uint8_t bit = 0x02;
        patch(flagged, 79, &bit, 1);
        assert_int_equal(gv_disk_info(flagged, &i, NULL), 0);
        assert_true(i.corrupt);
        gv_disk_info_done(&i);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_disk_check(flagged, true, &e), -EINVAL);
        assert_contains(e->msg, "marked corrupt");
        _cleanup_free_ char *ov = tpath("on-flagged.qcow2");
        assert_int_equal(gv_disk_create_overlay(flagged, ov, 0, NULL), -EINVAL);
        assert_int_equal(gv_file_exists(ov), 0);

        /* Garbage in the L1 table (its offset: the u64 at header offset 40). */
        _cleanup_free_ char *garbled = make_qcow2("garbled.qcow2", 16 * MiB);
        uint64_t l1 = be64_at(garbled, 40);
        assert_true(l1 > 0);
        const uint8_t junk[8] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
        patch(garbled, (off_t)l1, junk, sizeof(junk));
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_disk_check(garbled, false, &e2), -EINVAL);
        assert_contains(e2->msg, garbled);
        assert_contains(e2->msg, "is corrupt (");

        /* A backing file named without its format: the backing-format header extension
         * (magic 0xe2792aca) renamed to an unknown one, which readers skip. */
        _cleanup_free_ char *base = make_raw("fmtless-base.raw", 4 * MiB);
        _cleanup_free_ char *fmtless = tpath("fmtless.qcow2");
        assert_int_equal(gv_disk_create_overlay(base, fmtless, 0, NULL), 0);
        _cleanup_free_ char *hdr = NULL;
        size_t len = 0;
        assert_int_equal(gv_read_file(fmtless, 16 * MiB, &hdr, &len), 0);
        const uint8_t magic[4] = { 0xe2, 0x79, 0x2a, 0xca }, other[4] = { 0x12, 0x34, 0x56, 0x78 };
        void *at = memmem(hdr, MIN(len, 4096), magic, 4);
        assert_non_null(at);
        patch(fmtless, (off_t)((char *)at - hdr), other, 4);
        assert_int_equal(gv_disk_info(fmtless, &i, NULL), 0);
        assert_non_null(i.backing_file);
        assert_null(i.backing_format);
        gv_disk_info_done(&i);
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_disk_check(fmtless, true, &e3), -EINVAL);
        assert_contains(e3->msg, "without its format");
}

static void test_readonly_file(void **state)
{
        (void)state;
        _cleanup_free_ char *p = make_qcow2("ro.qcow2", 8 * MiB);
        assert_int_equal(chmod(p, 0444), 0);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_disk_check(p, false, &e), -EACCES);
        assert_contains(e->msg, p);
        assert_contains(e->msg, "attach it read-only");
        assert_int_equal(gv_disk_check(p, true, NULL), 0);
        assert_int_equal(chmod(p, 0644), 0);
        assert_int_equal(gv_disk_check(p, false, NULL), 0);
}

static void test_in_use(void **state)
{
        (void)state;
        if (!gv_program_in_path("qemu-system-x86_64")) {
                print_message("skipped: qemu-system-x86_64 is not installed; the lock test "
                              "needs a QEMU holding the image\n");
                skip();
        }
        _cleanup_free_ char *p = make_qcow2("busy.qcow2", 8 * MiB);
        _cleanup_free_ char *pidfile = tpath("busy.pid");
        _cleanup_free_ char *drive = xasprintf("file=%s,if=none,id=d0,format=qcow2", p);
        _cleanup_free_ char *name = xasprintf("guest=gv-disk-test-%d", (int)getpid());
        /* -daemonize returns once QEMU is initialised, the image open and locked. */
        char *argv[] = { "qemu-system-x86_64", "-machine", "q35", "-nodefaults", "-display",
                         "none", "-S", "-name", name, "-drive", drive, "-daemonize",
                         "-pidfile", pidfile, NULL };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_run(argv, 30000, 4096, NULL, NULL, &e);
        if (r < 0)
                fail_msg("qemu: %s", gv_error_msg(e, r));
        pid_t pid = 0;
        assert_int_equal(gv_pidfile_read(pidfile, &pid, NULL), 0);
        struct gv_proc q = GV_PROC_NULL;
        assert_int_equal(gv_proc_adopt(pid, name, &q, NULL), 0);

        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        r = gv_disk_check(p, false, &e2);
        int r_ro = gv_disk_check(p, true, NULL);
        assert_int_equal(gv_proc_signal(&q, SIGKILL, NULL), 0);
        assert_int_equal(gv_proc_wait(&q, 10000, NULL, NULL), 1);
        gv_proc_close(&q);

        assert_int_equal(r, -EBUSY);
        assert_contains(e2->msg, "in use by another process");
        assert_int_equal(r_ro, 0);
        assert_int_equal(gv_disk_check(p, false, NULL), 0);
}

int main(void)
{
        if (!gv_program_in_path("qemu-img")) {
                printf("test-disk: skipped: qemu-img is not installed (not found in PATH)\n");
                return 77;
        }
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 99;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_and_info),
                cmocka_unit_test(test_overlay_on_raw),
                cmocka_unit_test(test_overlay_on_qcow2),
                cmocka_unit_test(test_missing),
                cmocka_unit_test(test_not_images),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_readonly_file),
                cmocka_unit_test(test_in_use),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        if (!getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(tmpdir);
        return r;
}
