/* SPDX-License-Identifier: MIT */
/*
 * test-confine.c — QEMU's confinement pieces (src/vmm/confine.h) and the spawn that applies them
 * (proc.h): the cgroup limits, v1 and v2 trees (stand-in directories, as cgroup-root allows),
 * the QEMU user's resolution, the search check, and a child that joins its cgroups and becomes
 * nobody before exec (as root; skipped, saying why, otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/strv.h"
#include "vmm/confine.h"
#include "vmm/proc.h"

static char *tmpdir(void)
{
        char *d = xstrdup("/tmp/gv-confine.XXXXXX");
        assert_non_null(mkdtemp(d));
        return d;
}

static char *slurp(const char *dir, const char *file)
{
        _cleanup_free_ char *p = gv_path_join(dir, file);
        char *t = NULL;
        size_t n = 0;
        if (gv_read_file(p, 65536, &t, &n) < 0)
                return NULL;
        return t;
}

static void test_limits(void **state)
{
        (void)state;
        struct gv_cgroup_limits l;

        gv_cgroup_limits_for(4096, 4, false, &l);
        assert_int_equal(l.memory_max, (uint64_t)(4096 + 512) << 20);
        assert_int_equal(l.pids_max, 260);
        assert_int_equal(l.cpu_weight, 400);
        gv_cgroup_limits_for(128, 1, true, &l);
        assert_int_equal(l.memory_max, (uint64_t)(128 + 512 + 1024) << 20);
        gv_cgroup_limits_for(1024, 200, false, &l);
        assert_int_equal(l.cpu_weight, 10000); /* v2's ceiling */
}

static void test_detect(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir(), *why = NULL, *why2 = NULL;
        _cleanup_free_ char *mem = gv_path_join(d, "memory");
        _cleanup_free_ char *ctl = gv_path_join(d, "cgroup.controllers");

        assert_int_equal(gv_cgroup_detect(d, &why), GV_CGROUP_NONE);
        assert_non_null(why);
        assert_non_null(strstr(why, "cgroup-root"));
        assert_int_equal(mkdir(mem, 0755), 0);
        assert_int_equal(gv_cgroup_detect(d, &why2), GV_CGROUP_V1);
        assert_null(why2);
        assert_int_equal(gv_write_file(ctl, "memory pids cpu\n", GV_WRITE_CREATE), 0);
        assert_int_equal(gv_cgroup_detect(d, NULL), GV_CGROUP_V2);
        assert_int_equal(gv_rm_rf(d), 0);
}

/* v1 stand-in: memory, pids, cpu hierarchies; the group in each with its limit, the pid written
 * by open_procs' fds, populated while that pid lives, listed, removed with its files. */
static void test_v1_tree(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir(), *path = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct gv_cgroup_limits l;
        const char *ctls[] = { "memory", "pids", "cpu" };
        int *fds = NULL;
        size_t n = 0;

        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *h = gv_path_join(d, ctls[i]);
                assert_int_equal(mkdir(h, 0755), 0);
        }
        gv_cgroup_limits_for(256, 2, false, &l);
        assert_int_equal(gv_cgroup_create(d, "gpuvirt/k/vm1", &l, &path, NULL), 0);
        _cleanup_free_ char *memdir = gv_path_join(d, "memory", "gpuvirt", "k", "vm1");
        assert_string_equal(path, memdir);
        _cleanup_free_ char *m = slurp(memdir, "memory.limit_in_bytes");
        _cleanup_free_ char *pdir = gv_path_join(d, "pids", "gpuvirt", "k", "vm1");
        _cleanup_free_ char *p = slurp(pdir, "pids.max");
        _cleanup_free_ char *cdir = gv_path_join(d, "cpu", "gpuvirt", "k", "vm1");
        _cleanup_free_ char *c = slurp(cdir, "cpu.shares");
        assert_string_equal(m, "805306368");
        assert_string_equal(p, "258");
        assert_string_equal(c, "2048");
        assert_false(gv_cgroup_populated(d, "gpuvirt/k/vm1"));

        /* A child joins through the fds, as gv_proc_spawn's does. */
        assert_int_equal(gv_cgroup_open_procs(d, "gpuvirt/k/vm1", &fds, &n, NULL), 0);
        assert_int_equal(n, 3);
        char *argv[] = { "sleep", "5", NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                                    .cgroup_fds = fds, .n_cgroup_fds = n };
        struct gv_proc proc = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, &so, &proc, NULL), 0);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        free(fds);
        _cleanup_free_ char *procs = slurp(cdir, "cgroup.procs");
        char want[32];
        snprintf(want, sizeof(want), "%d", (int)proc.pid);
        assert_string_equal(procs, want);
        assert_true(gv_cgroup_populated(d, "gpuvirt/k/vm1"));
        assert_int_equal(gv_cgroup_list(d, "gpuvirt/k", &names, NULL), 0);
        assert_int_equal(strv_length(names), 1);
        assert_string_equal(names[0], "vm1");
        assert_int_equal(gv_proc_signal(&proc, SIGKILL, NULL), 0);
        assert_int_equal(gv_proc_wait(&proc, 5000, NULL, NULL), 1);
        gv_proc_close(&proc);
        assert_false(gv_cgroup_populated(d, "gpuvirt/k/vm1"));

        /* Made anew over a leftover; removed in every hierarchy. */
        free(path);
        path = NULL;
        assert_int_equal(gv_cgroup_create(d, "gpuvirt/k/vm1", &l, &path, NULL), 0);
        assert_int_equal(gv_cgroup_remove(d, "gpuvirt/k/vm1", NULL), 0);
        assert_int_equal(gv_file_exists(memdir), 0);
        assert_int_equal(gv_file_exists(pdir), 0);
        assert_int_equal(gv_file_exists(cdir), 0);
        assert_int_equal(gv_cgroup_remove(d, "gpuvirt/k/vm1", NULL), 0); /* absent: fine */
        strv_free(names);
        names = NULL;
        assert_int_equal(gv_cgroup_list(d, "gpuvirt/k", &names, NULL), 0);
        assert_int_equal(strv_length(names), 0);
        assert_int_equal(gv_rm_rf(d), 0);
}

static void test_v2_tree(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir(), *path = NULL;
        _cleanup_free_ char *ctl = gv_path_join(d, "cgroup.controllers");
        struct gv_cgroup_limits l;

        assert_int_equal(gv_write_file(ctl, "cpuset cpu io memory pids\n", GV_WRITE_CREATE), 0);
        gv_cgroup_limits_for(512, 3, true, &l);
        assert_int_equal(gv_cgroup_create(d, "gpuvirt/k/vm2", &l, &path, NULL), 0);
        _cleanup_free_ char *g = gv_path_join(d, "gpuvirt", "k", "vm2");
        assert_string_equal(path, g);
        _cleanup_free_ char *m = slurp(g, "memory.max"), *p = slurp(g, "pids.max");
        _cleanup_free_ char *w = slurp(g, "cpu.weight");
        /* The root lets its children use the controllers (one write per controller). */
        _cleanup_free_ char *sub = slurp(d, "cgroup.subtree_control");
        assert_string_equal(m, "2147483648");
        assert_string_equal(p, "259");
        assert_string_equal(w, "300");
        assert_non_null(sub);
        assert_int_equal(gv_cgroup_remove(d, "gpuvirt/k/vm2", NULL), 0);
        assert_int_equal(gv_file_exists(g), 0);
        assert_int_equal(gv_rm_rf(d), 0);
}

static void test_no_hierarchy(void **state)
{
        (void)state;
        _cleanup_free_ char *d = tmpdir(), *path = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_cgroup_limits l;

        gv_cgroup_limits_for(128, 1, false, &l);
        assert_int_equal(gv_cgroup_create(d, "gpuvirt/k/x", &l, &path, &e), -ENOENT);
        assert_non_null(strstr(gv_error_msg(e, -ENOENT), "cgroup-root"));
        assert_null(path);
        assert_int_equal(gv_rm_rf(d), 0);
}

static void test_user(void **state)
{
        (void)state;
        struct gv_confine_user u = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        if (geteuid() != 0) {
                /* Not root: the agent's own user, whatever was asked, and why. */
                assert_int_equal(gv_confine_user_resolve("nobody", NULL, &u, NULL), 0);
                assert_false(u.switch_user);
                assert_int_equal(u.uid, geteuid());
                assert_non_null(strstr(u.why, "not as root"));
                gv_confine_user_done(&u);
                skip();
        }
        assert_int_equal(gv_confine_user_resolve("gv-no-such-user", NULL, &u, &e), -ENOENT);
        assert_non_null(strstr(gv_error_msg(e, 0), "'gv-no-such-user'"));
        assert_non_null(strstr(gv_error_msg(e, 0), "qemu-user"));
        assert_int_equal(gv_confine_user_resolve("root", NULL, &u, NULL), 0);
        assert_false(u.switch_user);
        assert_string_equal(u.name, "root");
        assert_non_null(strstr(u.why, "root"));
        gv_confine_user_done(&u);
        assert_int_equal(gv_confine_user_resolve("", NULL, &u, NULL), 0);
        assert_false(u.switch_user);
        gv_confine_user_done(&u);
        struct passwd *pw = getpwnam("nobody");
        if (!pw)
                skip();
        assert_int_equal(gv_confine_user_resolve("nobody", "/nonexistent/kvm", &u, NULL), 0);
        assert_true(u.switch_user);
        assert_int_equal(u.uid, pw->pw_uid);
        assert_int_equal(u.gid, pw->pw_gid);
        assert_int_equal(u.n_groups, 0); /* no /dev/kvm there: no kvm group */
        assert_null(u.why);
        gv_confine_user_done(&u);
}

/* As root: a 0700 directory stops nobody and is named; the spawn really becomes nobody. */
static void test_reach_and_switch(void **state)
{
        (void)state;
        struct gv_confine_user u = { 0 };
        struct passwd *pw = getpwnam("nobody");

        if (geteuid() != 0 || !pw)
                skip();
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *inner = gv_path_join(d, "vm", "run");
        _cleanup_free_ char *out = gv_path_join(d, "id.out");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_mkdir_p(inner, 0700), 0);
        assert_int_equal(gv_confine_user_resolve("nobody", "/nonexistent/kvm", &u, NULL), 0);
        assert_int_equal(chmod(d, 0700), 0);
        assert_int_equal(gv_confine_can_reach(&u, inner, &e), -EACCES);
        assert_non_null(strstr(gv_error_msg(e, 0), d));
        assert_non_null(strstr(gv_error_msg(e, 0), "chmod o+x"));
        _cleanup_free_ char *vm = gv_path_join(d, "vm");
        assert_int_equal(chmod(d, 0711), 0);
        assert_int_equal(chmod(vm, 0711), 0);
        assert_int_equal(gv_confine_give(&u, inner, 0700, NULL), 0);
        assert_int_equal(gv_confine_can_reach(&u, inner, NULL), 0);

        /* id -u / -g / -G as the child after the switch. */
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        char *argv[] = { "sh", "-c", "id -u; id -g; id -G; grep ^NoNewPrivs /proc/self/status",
                         NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = fd, .stderr_fd = -1,
                                    .set_user = true, .uid = u.uid, .gid = u.gid,
                                    .groups = u.groups, .n_groups = u.n_groups };
        struct gv_proc p = GV_PROC_NULL;
        int status = -1;
        assert_int_equal(gv_proc_spawn(argv, &so, &p, NULL), 0);
        close(fd);
        assert_int_equal(gv_proc_wait(&p, 10000, &status, NULL), 1);
        gv_proc_close(&p);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        _cleanup_free_ char *text = slurp(d, "id.out");
        _cleanup_free_ char *want = xasprintf("%u\n%u\n%u\nNoNewPrivs:\t1\n", (unsigned)u.uid,
                                              (unsigned)u.gid, (unsigned)u.gid);
        assert_string_equal(text, want);
        gv_confine_user_done(&u);
        assert_int_equal(gv_rm_rf(d), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_detect),
                cmocka_unit_test(test_v1_tree),
                cmocka_unit_test(test_v2_tree),
                cmocka_unit_test(test_no_hierarchy),
                cmocka_unit_test(test_user),
                cmocka_unit_test(test_reach_and_switch),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
