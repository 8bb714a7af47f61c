/* SPDX-License-Identifier: MIT */
/* Process supervision (src/vmm/proc.c) against real /bin/sh children. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "vmm/proc.h"

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read fd to EOF into a new string. */
static char *read_all(int fd)
{
        size_t len = 0, cap = 256;
        char *s = xmalloc(cap);
        for (;;) {
                if (len + 1 == cap)
                        s = xreallocarray(s, cap *= 2, 1);
                ssize_t n = read(fd, s + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n >= 0);
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        s[len] = 0;
        return s;
}

/* Spawn argv with stdout on a pipe (other options from o), collect stdout and the status. */
static char *spawn_output(char *const argv[], struct gv_spawn_opts o, int *ret_status)
{
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        o.stdout_fd = fds[1];
        struct gv_proc p = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_spawn(argv, &o, &p, &e);
        if (r < 0)
                fail_msg("spawn: %s", gv_error_msg(e, r));
        close(fds[1]);
        char *out = read_all(fds[0]);
        close(fds[0]);
        int status = 0;
        assert_int_equal(gv_proc_wait(&p, 10000, &status, NULL), 1);
        gv_proc_close(&p);
        if (ret_status)
                *ret_status = status;
        return out;
}

#define OPTS_NULLIO ((struct gv_spawn_opts){ .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 })

static void test_fds_closed(void **state)
{
        (void)state;
        /* Deliberately without O_CLOEXEC: the spawn itself must close these. */
        int leak[3];
        for (int i = 0; i < 3; i++) {
                leak[i] = open("/dev/null", O_RDONLY);
                assert_true(leak[i] >= 3);
        }
        int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(keep >= 3);

        _cleanup_free_ char *script =
                xasprintf("for n in %d %d %d %d; do if [ -e /proc/self/fd/$n ]; then "
                          "echo open $n; else echo closed $n; fi; done",
                          leak[0], leak[1], leak[2], keep);
        char *argv[] = { "/bin/sh", "-c", script, NULL };
        struct gv_spawn_opts o = OPTS_NULLIO;
        o.keep_fds = &keep;
        o.n_keep = 1;
        int status = -1;
        _cleanup_free_ char *out = spawn_output(argv, o, &status);
        _cleanup_free_ char *want = xasprintf("closed %d\nclosed %d\nclosed %d\nopen %d\n",
                                              leak[0], leak[1], leak[2], keep);
        assert_string_equal(out, want);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* fds 0-2 cannot be "kept": they are the stdio slots. */
        int bad = 1;
        o.keep_fds = &bad;
        struct gv_proc p = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, &o, &p, NULL), -EINVAL);
        for (int i = 0; i < 3; i++)
                close(leak[i]);
        close(keep);
}

static void test_exec_failure(void **state)
{
        (void)state;
        char *argv[] = { "gv-test-no-such-program", "x", NULL };
        struct gv_proc p = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_proc_spawn(argv, NULL, &p, &e), -ENOENT);
        assert_string_equal(e->msg,
                            "Cannot run 'gv-test-no-such-program': No such file or directory.");
        assert_int_equal(p.pid, 0); /* ret untouched */

        /* Not executable. */
        char dir[] = "/tmp/gv-proc-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *plain = xasprintf("%s/not-a-program", dir);
        assert_int_equal(gv_write_file(plain, "echo hi\n", GV_WRITE_CREATE), 0);
        assert_int_equal(chmod(plain, 0644), 0);
        char *argv2[] = { plain, NULL };
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_proc_spawn(argv2, NULL, &p, &e2), -EACCES);
        _cleanup_free_ char *want = xasprintf("Cannot run '%s': Permission denied.", plain);
        assert_string_equal(e2->msg, want);
        assert_int_equal(gv_rm_rf(dir), 0);

        /* A working directory that does not exist. */
        char *argv3[] = { "/bin/true", NULL };
        struct gv_spawn_opts o = OPTS_NULLIO;
        o.cwd = "/nonexistent/gv-test";
        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_proc_spawn(argv3, &o, &p, &e3), -ENOENT);
        assert_non_null(strstr(e3->msg, "'/nonexistent/gv-test'"));

        /* No failed child is left behind as a zombie. */
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

static void test_exit_status_and_timeout(void **state)
{
        (void)state;
        char *argv[] = { "/bin/sh", "-c", "exit 7", NULL };
        struct gv_proc p = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, NULL, &p, NULL), 0);
        assert_true(p.child);
        int status = 0;
        assert_int_equal(gv_proc_wait(&p, -1, &status, NULL), 1);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 7);
        /* A second wait answers the same. */
        status = 0;
        assert_int_equal(gv_proc_wait(&p, 0, &status, NULL), 1);
        assert_int_equal(WEXITSTATUS(status), 7);
        assert_false(gv_proc_alive(&p));
        gv_proc_close(&p);
        assert_int_equal(p.pidfd, -1);
        gv_proc_close(&p); /* twice is fine */

        char *argv2[] = { "sleep", "5", NULL };
        assert_int_equal(gv_proc_spawn(argv2, NULL, &p, NULL), 0);
        int64_t t0 = now_ms();
        assert_int_equal(gv_proc_wait(&p, 0, &status, NULL), 0);
        assert_int_equal(gv_proc_wait(&p, 150, &status, NULL), 0);
        int64_t waited = now_ms() - t0;
        assert_true(waited >= 150 && waited < 2000);
        assert_true(gv_proc_alive(&p));
        assert_int_equal(gv_proc_signal(&p, SIGKILL, NULL), 0);
        assert_int_equal(gv_proc_wait(&p, 5000, &status, NULL), 1);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_proc_signal(&p, SIGTERM, &e), -ESRCH);
        gv_proc_close(&p);
}

static void test_exit_noticed_promptly(void **state)
{
        (void)state;
        char *argv[] = { "sleep", "0.1", NULL };
        struct gv_proc p = GV_PROC_NULL;
        int64_t t0 = now_ms();
        assert_int_equal(gv_proc_spawn(argv, NULL, &p, NULL), 0);
        int status = -1;
        assert_int_equal(gv_proc_wait(&p, 5000, &status, NULL), 1);
        int64_t took = now_ms() - t0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (took < 100 || took >= 200)
                fail_msg("a 'sleep 0.1' child was noticed after %lld ms, want 100-199",
                         (long long)took);
        gv_proc_close(&p);
}

static void test_signals_reset(void **state)
{
        (void)state;
        /* An ignored signal stays ignored across exec, and POSIX sh cannot trap a signal that
         * was ignored on entry: the trap below works only if the spawn reset SIGUSR1. A blocked
         * SIGHUP likewise would survive exec without the mask reset. */
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_usr1;
        sigaction(SIGUSR1, &ign, &old_usr1);
        sigset_t block, old_mask;
        sigemptyset(&block);
        sigaddset(&block, SIGHUP);
        sigprocmask(SIG_BLOCK, &block, &old_mask);

        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        char *argv[] = { "/bin/sh", "-c",
                         "trap 'exit 42' USR1; echo ready; while :; do sleep 0.02; done", NULL };
        struct gv_spawn_opts o = OPTS_NULLIO;
        o.stdout_fd = fds[1];
        struct gv_proc p = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, &o, &p, NULL), 0);
        close(fds[1]);
        char buf[6] = { 0 };
        assert_int_equal(read(fds[0], buf, 6), 6);
        assert_memory_equal(buf, "ready\n", 6);
        assert_int_equal(gv_proc_signal(&p, SIGUSR1, NULL), 0);
        int status = 0;
        assert_int_equal(gv_proc_wait(&p, 5000, &status, NULL), 1);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 42);
        gv_proc_close(&p);
        close(fds[0]);

        /* SIGHUP blocked here must not be blocked in the child. */
        char *argv2[] = { "sleep", "5", NULL };
        assert_int_equal(gv_proc_spawn(argv2, NULL, &p, NULL), 0);
        assert_int_equal(gv_proc_signal(&p, SIGHUP, NULL), 0);
        assert_int_equal(gv_proc_wait(&p, 5000, &status, NULL), 1);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGHUP);
        gv_proc_close(&p);

        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        sigaction(SIGUSR1, &old_usr1, NULL);
}

static void test_adopt(void **state)
{
        (void)state;
        _cleanup_free_ char *marker = xasprintf("guest=gvtest-%d,debug-threads=on", (int)getpid());
        char *argv[] = { "/bin/sh", "-c", "sleep 10; :", marker, NULL };
        struct gv_proc child = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, NULL, &child, NULL), 0);

        struct gv_proc a = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_adopt(child.pid, marker, &a, &e);
        if (r < 0)
                fail_msg("adopt: %s", gv_error_msg(e, r));
        assert_int_equal(a.pid, child.pid);
        assert_false(a.child);
        assert_true(a.pidfd >= 0);
        assert_true(gv_proc_alive(&a));

        /* A prefix of the marker is not the marker: "guest=vm1" must not match "guest=vm10". */
        struct gv_proc b = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        assert_int_equal(gv_proc_adopt(child.pid, "guest=gvtest", &b, &e2), -ESTALE);
        assert_non_null(strstr(e2->msg, "'guest=gvtest'"));
        assert_int_equal(b.pidfd, -1);

        /* Adopted: the exit is seen, the status is not ours to know. */
        assert_int_equal(gv_proc_signal(&a, SIGTERM, NULL), 0);
        int status = 0;
        assert_int_equal(gv_proc_wait(&a, 5000, &status, NULL), 1);
        assert_int_equal(status, -1);
        gv_proc_close(&a);
        assert_int_equal(gv_proc_wait(&child, 5000, &status, NULL), 1);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
        pid_t dead = child.pid;
        gv_proc_close(&child);

        _cleanup_(gv_error_freep) struct gv_error *e3 = NULL;
        assert_int_equal(gv_proc_adopt(dead, marker, &b, &e3), -ESRCH);
        assert_int_equal(gv_proc_adopt(0, marker, &b, NULL), -EINVAL);
}

static void test_session_umask_cwd(void **state)
{
        (void)state;
        char *argv[] = { "sleep", "5", NULL };
        struct gv_spawn_opts o = OPTS_NULLIO;
        struct gv_proc p = GV_PROC_NULL;

        o.new_session = true;
        assert_int_equal(gv_proc_spawn(argv, &o, &p, NULL), 0);
        assert_int_equal(getsid(p.pid), p.pid);
        assert_int_equal(getpgid(p.pid), p.pid);
        assert_int_equal(gv_proc_signal(&p, SIGKILL, NULL), 0);
        assert_int_equal(gv_proc_wait(&p, 5000, NULL, NULL), 1);
        gv_proc_close(&p);

        o.new_session = false;
        assert_int_equal(gv_proc_spawn(argv, &o, &p, NULL), 0);
        assert_int_equal(getsid(p.pid), getsid(0));
        assert_int_equal(gv_proc_signal(&p, SIGKILL, NULL), 0);
        assert_int_equal(gv_proc_wait(&p, 5000, NULL, NULL), 1);
        gv_proc_close(&p);

        mode_t old = umask(022);
        char *argv2[] = { "/bin/sh", "-c", "umask; pwd", NULL };
        o.umask = 027;
        o.cwd = "/proc";
        _cleanup_free_ char *out = spawn_output(argv2, o, NULL);
        assert_string_equal(out, "0027\n/proc\n");
        o.umask = 0;
        o.cwd = NULL;
        _cleanup_free_ char *out2 = spawn_output(argv2, o, NULL);
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        _cleanup_free_ char *want = xasprintf("0022\n%s\n", cwd);
        assert_string_equal(out2, want);
        umask(old);
}

static void test_close_reaps_exited_child(void **state)
{
        (void)state;
        char *argv[] = { "/bin/true", NULL };
        struct gv_proc p = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, NULL, &p, NULL), 0);
        pid_t pid = p.pid;
        struct pollfd pfd = { .fd = p.pidfd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        gv_proc_close(&p);
        assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

static void test_reaped_elsewhere(void **state)
{
        (void)state;
        /* With SIGCHLD ignored the kernel reaps children itself: the exit is still seen on the
         * pidfd, with the status unknown. */
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        sigaction(SIGCHLD, &ign, &old);
        char *argv[] = { "/bin/true", NULL };
        struct gv_proc p = GV_PROC_NULL;
        assert_int_equal(gv_proc_spawn(argv, NULL, &p, NULL), 0);
        int status = 0;
        assert_int_equal(gv_proc_wait(&p, 5000, &status, NULL), 1);
        assert_int_equal(status, -1);
        assert_false(gv_proc_alive(&p));
        gv_proc_close(&p);
        sigaction(SIGCHLD, &old, NULL);
}

static void test_run(void **state)
{
        (void)state;
        char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2", NULL };
        _cleanup_free_ char *out = NULL, *errs = NULL;
        assert_int_equal(gv_proc_run(argv, 5000, 4096, &out, &errs, NULL), 0);
        assert_string_equal(out, "out\n");
        assert_string_equal(errs, "err\n");

        /* More than a pipe buffer (64 KiB) of output: capped, and no deadlock. */
        char *argv2[] = { "/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; echo -n x >&2",
                          NULL };
        _cleanup_free_ char *big = NULL, *errs2 = NULL;
        assert_int_equal(gv_proc_run(argv2, 10000, 1000, &big, &errs2, NULL), 0);
        assert_int_equal(strlen(big), 1000);
        assert_int_equal(strspn(big, "a"), 1000);
        assert_string_equal(errs2, "x");

        /* Non-zero exit: -EIO naming the command, the code and what it said. */
        char *argv3[] = { "/bin/sh", "-c", "echo partial; echo 'disk on fire' >&2; exit 3", NULL };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char *never = NULL;
        assert_int_equal(gv_proc_run(argv3, 5000, 4096, &never, NULL, &e), -EIO);
        assert_null(never);
        assert_string_equal(e->msg, "'/bin/sh -c echo partial; echo 'disk on fire' >&2; exit 3' "
                                    "failed (exit 3): disk on fire");

        /* The status variant hands the exit code back instead. */
        int status = 0;
        _cleanup_free_ char *o4 = NULL;
        assert_int_equal(gv_proc_run_status(argv3, 5000, 4096, &o4, NULL, &status, NULL), 0);
        assert_int_equal(WEXITSTATUS(status), 3);
        assert_string_equal(o4, "partial\n");

        /* Not found. */
        char *argv5[] = { "gv-test-no-such-program", NULL };
        assert_int_equal(gv_proc_run(argv5, 5000, 4096, NULL, NULL, NULL), -ENOENT);
}

static void test_run_timeout_kills_group(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-proc-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *pidpath = xasprintf("%s/grandchild", dir);
        _cleanup_free_ char *script = xasprintf("sleep 30 & echo $! > %s; wait", pidpath);
        char *argv[] = { "/bin/sh", "-c", script, NULL };

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int64_t t0 = now_ms();
        assert_int_equal(gv_proc_run(argv, 300, 4096, NULL, NULL, &e), -ETIMEDOUT);
        int64_t took = now_ms() - t0;
        assert_true(took >= 300 && took < 3000);
        assert_non_null(strstr(e->msg, "did not finish within 300 ms"));

        /* The grandchild (same process group) was killed too. */
        pid_t gpid = 0;
        assert_int_equal(gv_pidfile_read(pidpath, &gpid, NULL), 0);
        int fd = pidfd_open(gpid, 0);
        if (fd >= 0) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                assert_int_equal(poll(&pfd, 1, 3000), 1);
                close(fd);
        } else {
                assert_int_equal(errno, ESRCH);
        }
        assert_int_equal(gv_rm_rf(dir), 0);
}

static void test_pidfile(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-proc-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *path = xasprintf("%s/qemu.pid", dir);

        pid_t pid = 0;
        _cleanup_(gv_error_freep) struct gv_error *e0 = NULL;
        assert_int_equal(gv_pidfile_read(path, &pid, &e0), -ENOENT);
        assert_non_null(strstr(e0->msg, path));

        assert_int_equal(gv_pidfile_write(path, 4242, NULL), 0);
        _cleanup_free_ char *raw = NULL;
        assert_int_equal(gv_read_file(path, 100, &raw, NULL), 0);
        assert_string_equal(raw, "4242\n");
        assert_int_equal(gv_pidfile_read(path, &pid, NULL), 0);
        assert_int_equal(pid, 4242);
        /* Overwrite in place, atomically. */
        assert_int_equal(gv_pidfile_write(path, 17, NULL), 0);
        assert_int_equal(gv_pidfile_read(path, &pid, NULL), 0);
        assert_int_equal(pid, 17);
        assert_int_equal(gv_pidfile_write(path, 0, NULL), -EINVAL);

        static const char *const garbage[] = {
                "", "\n", "12abc\n", "-5\n", "0\n", " 12\n", "12\n\n", "99999999999\n",
                "0x10\n", "12 13\n",
        };
        for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
                assert_int_equal(gv_write_file(path, garbage[i], GV_WRITE_CREATE), 0);
                pid = 1;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                if (gv_pidfile_read(path, &pid, &e) != -EINVAL)
                        fail_msg("pidfile '%s' was accepted", garbage[i]);
                assert_int_equal(pid, 1);
                assert_non_null(strstr(e->msg, "does not hold a process id"));
        }
        /* A large file is refused without reading it all. */
        _cleanup_free_ char *huge = xmalloc(10001);
        memset(huge, '1', 10000);
        huge[10000] = 0;
        assert_int_equal(gv_write_file(path, huge, GV_WRITE_CREATE), 0);
        assert_int_equal(gv_pidfile_read(path, &pid, NULL), -EINVAL);
        assert_int_equal(gv_rm_rf(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fds_closed),
                cmocka_unit_test(test_exec_failure),
                cmocka_unit_test(test_exit_status_and_timeout),
                cmocka_unit_test(test_exit_noticed_promptly),
                cmocka_unit_test(test_signals_reset),
                cmocka_unit_test(test_adopt),
                cmocka_unit_test(test_session_umask_cwd),
                cmocka_unit_test(test_close_reaps_exited_child),
                cmocka_unit_test(test_reaped_elsewhere),
                cmocka_unit_test(test_run),
                cmocka_unit_test(test_run_timeout_kills_group),
                cmocka_unit_test(test_pidfile),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
