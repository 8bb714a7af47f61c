/* SPDX-License-Identifier: MIT */
/*
 * test-sampler.c — the metrics sampler's /proc readers (src/agent/sampler.h) against a fake
 * proc root made of fixture files: the aggregate CPU line and CPU count, MemTotal/MemAvailable,
 * a process's stat line whose command holds spaces and parentheses, utime + stime, VmRSS, the
 * vCPU threads told apart by name ("CPU n/KVM", "CPU n/TCG"), a thread that vanishes, a process
 * that is gone, and malformed files refused with a message naming them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/sampler.h"
#include "util/alloc.h"
#include "util/fileio.h"

/* A stat line as the kernel writes it: pid (comm) state ppid pgrp session tty tpgid flags
 * minflt cminflt majflt cmajflt utime stime cutime cstime ... */
#define STAT(pid, comm, ut, st)                                                                  \
        #pid " (" comm ") S 1 " #pid " " #pid " 0 -1 4194560 12018 0 5 0 " #ut " " #st         \
        " 0 0 20 0 5 0 10516 1218584576 11303 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 " \
        "17 1 0 0 0 0 0\n"

static void put(const char *root, const char *rel, const char *text)
{
        _cleanup_free_ char *path = gv_path_join(root, rel);
        _cleanup_free_ char *dir = xstrdup(path);
        *strrchr(dir, '/') = '\0';
        assert_int_equal(gv_mkdir_p(dir, 0755), 0);
        assert_int_equal(gv_write_file(path, text, GV_WRITE_CREATE), 0);
}

static int setup(void **state)
{
        char tmpl[] = "/tmp/gv-test-proc.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        char *root = xstrdup(tmpl);

        put(root, "stat",
            "cpu  1000 50 300 8000 200 10 20 30 400 0\n"
            "cpu0 500 25 150 4000 100 5 10 15 200 0\n"
            "cpu1 500 25 150 4000 100 5 10 15 200 0\n"
            "intr 12345 0 0\nctxt 999\nbtime 1700000000\nprocesses 77\n");
        put(root, "meminfo",
            "MemTotal:       16318616 kB\nMemFree:         1000000 kB\n"
            "MemAvailable:    8159308 kB\nBuffers:          100000 kB\n");
        /* QEMU: the process line sums every thread. */
        put(root, "4242/stat", STAT(4242, "qemu-system-x86", 700, 120));
        put(root, "4242/status",
            "Name:\tqemu-system-x86\nState:\tS (sleeping)\nVmPeak:\t 1300000 kB\n"
            "VmRSS:\t   45212 kB\nThreads:\t4\n");
        put(root, "4242/task/4242/stat", STAT(4242, "qemu-system-x86", 100, 20));
        put(root, "4242/task/4243/stat", STAT(4243, "CPU 0/KVM", 300, 50));
        put(root, "4242/task/4244/stat", STAT(4244, "CPU 1/TCG", 250, 40));
        put(root, "4242/task/4245/stat", STAT(4245, "worker", 50, 10));
        /* A name with spaces and a ')' inside, as a process may choose. */
        put(root, "4242/task/4246/stat", STAT(4246, "a) b (c", 0, 0));
        /* A thread that ended between readdir and open: a directory without a stat file. */
        _cleanup_free_ char *gone = gv_path_join(root, "4242/task/4247");
        assert_int_equal(gv_mkdir_p(gone, 0755), 0);
        /* Not a thread id. */
        _cleanup_free_ char *junk = gv_path_join(root, "4242/task/self");
        assert_int_equal(gv_mkdir_p(junk, 0755), 0);
        /* A zombie: no VmRSS. */
        put(root, "77/stat", STAT(77, "qemu-system-x86", 5, 5));
        put(root, "77/status", "Name:\tqemu-system-x86\nState:\tZ (zombie)\n");
        /* Garbage. */
        put(root, "88/stat", "88 no parentheses here\n");
        *state = root;
        return 0;
}

static int teardown(void **state)
{
        char *root = *state;
        (void)gv_rm_rf(root);
        free(root);
        return 0;
}

static void test_parse_stat(void **state)
{
        (void)state;
        struct gv_proc_cpu c;
        assert_int_equal(gv_proc_parse_stat("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1\n", &c), 0);
        /* total: user..steal (guest is inside user); idle: idle + iowait. */
        assert_int_equal(c.total, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8);
        assert_int_equal(c.idle, 4 + 5);
        assert_int_equal(c.n_cpus, 1);
        /* An old kernel's four fields. */
        assert_int_equal(gv_proc_parse_stat("cpu 10 0 5 85\n", &c), 0);
        assert_int_equal(c.total, 100);
        assert_int_equal(c.idle, 85);
        assert_int_equal(gv_proc_parse_stat("cpu0 1 2 3 4\n", &c), -EPROTO);
        assert_int_equal(gv_proc_parse_stat("cpu  1 2 x\n", &c), -EPROTO);
        assert_int_equal(gv_proc_parse_stat("", &c), -EPROTO);
}

static void test_parse_meminfo(void **state)
{
        (void)state;
        struct gv_proc_mem m;
        assert_int_equal(gv_proc_parse_meminfo("MemTotal: 100 kB\nMemAvailable: 40 kB\n", &m), 0);
        assert_int_equal(m.total_kib, 100);
        assert_int_equal(m.available_kib, 40);
        /* "MemAvailableX" is not MemAvailable. */
        assert_int_equal(gv_proc_parse_meminfo("MemTotal: 100 kB\nMemAvailableX: 4 kB\n", &m),
                         -EPROTO);
        assert_int_equal(gv_proc_parse_meminfo("MemTotal: 100 kB\n", &m), -EPROTO);
}

static void test_parse_pid_stat(void **state)
{
        (void)state;
        struct gv_proc_task t;
        assert_int_equal(gv_proc_parse_pid_stat(STAT(9, "CPU 3/KVM", 123, 77), &t), 0);
        assert_string_equal(t.comm, "CPU 3/KVM");
        assert_int_equal(t.ticks, 200);
        assert_int_equal(gv_proc_parse_pid_stat(STAT(9, "a) b (c", 1, 2), &t), 0);
        assert_string_equal(t.comm, "a) b (c");
        assert_int_equal(t.ticks, 3);
        assert_int_equal(gv_proc_parse_pid_stat("9 (x) S 1 2\n", &t), -EPROTO);
        assert_int_equal(gv_proc_parse_pid_stat("9 x S 1 2 3\n", &t), -EPROTO);
        uint64_t rss = 0;
        assert_int_equal(gv_proc_parse_status_rss("Name:\tq\nVmRSS:\t  512 kB\n", &rss), 0);
        assert_int_equal(rss, 512);
        assert_int_equal(gv_proc_parse_status_rss("Name:\tq\n", &rss), -ENOENT);
}

static void test_vcpu_names(void **state)
{
        (void)state;
        assert_true(gv_proc_comm_is_vcpu("CPU 0/KVM"));
        assert_true(gv_proc_comm_is_vcpu("CPU 15/TCG"));
        assert_false(gv_proc_comm_is_vcpu("CPU /KVM"));
        assert_false(gv_proc_comm_is_vcpu("CPU 0/KVMX"));
        assert_false(gv_proc_comm_is_vcpu("CPU x/KVM"));
        assert_false(gv_proc_comm_is_vcpu("qemu-system-x86"));
        assert_false(gv_proc_comm_is_vcpu("IO mon_iothread"));
}

static void test_read_host(void **state)
{
        const char *root = *state;
        struct gv_proc_cpu c;
        struct gv_proc_mem m;
        assert_int_equal(gv_proc_read_host(root, &c, &m, NULL), 0);
        assert_int_equal(c.n_cpus, 2);
        assert_int_equal(c.total, 1000 + 50 + 300 + 8000 + 200 + 10 + 20 + 30);
        assert_int_equal(c.idle, 8200);
        assert_int_equal(m.total_kib, 16318616);
        assert_int_equal(m.available_kib, 8159308);

        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_proc_read_host("/nonexistent-proc", &c, &m, &err), -ENOENT);
        assert_non_null(strstr(err->msg, "'/nonexistent-proc'"));
}

static void test_read_usage(void **state)
{
        const char *root = *state;
        struct gv_proc_usage u;
        assert_int_equal(gv_proc_read_usage(root, 4242, &u, NULL), 0);
        assert_int_equal(u.ticks, 820);                  /* the process line: every thread */
        assert_int_equal(u.vcpu_ticks, 350 + 290);       /* CPU 0/KVM and CPU 1/TCG only */
        assert_int_equal(u.n_vcpu_threads, 2);
        assert_int_equal(u.n_threads, 5);                /* 4247 (no stat) and "self" skipped */
        assert_true(u.has_rss);
        assert_int_equal(u.rss_kib, 45212);

        assert_int_equal(gv_proc_read_usage(root, 77, &u, NULL), 0);
        assert_false(u.has_rss);                         /* a zombie */
        assert_int_equal(u.n_threads, 0);

        _cleanup_(gv_error_freep) struct gv_error *e1 = NULL, *e2 = NULL;
        assert_int_equal(gv_proc_read_usage(root, 99999, &u, &e1), -ESRCH);
        assert_non_null(strstr(e1->msg, "99999"));
        assert_int_equal(gv_proc_read_usage(root, 88, &u, &e2), -EPROTO);
        assert_non_null(strstr(e2->msg, "/88/stat'"));
}

/* The real /proc: this process has a thread, ticks and an RSS. */
static void test_real_proc(void **state)
{
        (void)state;
        struct gv_proc_usage u;
        struct gv_proc_cpu c;
        struct gv_proc_mem m;
        assert_int_equal(gv_proc_read_usage("/proc", getpid(), &u, NULL), 0);
        assert_true(u.n_threads >= 1);
        assert_true(u.has_rss && u.rss_kib > 0);
        assert_int_equal(u.n_vcpu_threads, 0);
        assert_int_equal(gv_proc_read_host("/proc", &c, &m, NULL), 0);
        assert_true(c.n_cpus >= 1 && c.total > c.idle);
        assert_true(m.total_kib >= m.available_kib && m.total_kib > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_stat),
                cmocka_unit_test(test_parse_meminfo),
                cmocka_unit_test(test_parse_pid_stat),
                cmocka_unit_test(test_vcpu_names),
                cmocka_unit_test(test_read_host),
                cmocka_unit_test(test_read_usage),
                cmocka_unit_test(test_real_proc),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
