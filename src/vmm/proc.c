/* SPDX-License-Identifier: MIT */
/*
 * proc.c — process supervision.
 *
 * The plan:
 *   - Spawn with clone3(CLONE_PIDFD) so the pidfd names the child from its first instant (no
 *     window in which another waiter could reap it and the pid be recycled); where clone3 is
 *     refused (old kernel, seccomp profiles that answer ENOSYS) fall back to fork() +
 *     pidfd_open(), which is equally safe as long as nothing else in the process reaps
 *     arbitrary children.
 *   - The child only calls async-signal-safe functions between clone and exec (no malloc: the
 *     parent may be multi-threaded): reset signals, mark every fd >= 3 close-on-exec with
 *     close_range(CLOSE_RANGE_CLOEXEC) (or a getdents64 loop over /proc/self/fd), move the
 *     stdio fds into place, clear close-on-exec on keep_fds, setsid/umask/chdir, exec. A
 *     failing step writes {step, errno} into a CLOEXEC pipe; a successful exec closes the pipe,
 *     so the parent's read() returns 0.
 *   - Exit is noticed by polling the pidfd (readable when the process exits), never by
 *     sleeping; a child is reaped with waitid(P_PIDFD).
 */
#include "proc.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"

/* What the child was doing when it failed; sent to the parent with the errno. */
enum child_step {
        STEP_SIGNALS,
        STEP_FDS,
        STEP_STDIO,
        STEP_SESSION,
        STEP_CHDIR,
        STEP_CGROUP,
        STEP_USER,
        STEP_EXEC,
};

struct child_report {
        int step;
        int error;
};

/* struct clone_args of clone3(2), version 0 (64 bytes); declared here because <linux/sched.h>
 * clashes with glibc's <sched.h>. */
struct gv_clone_args {
        uint64_t flags;
        uint64_t pidfd;
        uint64_t child_tid;
        uint64_t parent_tid;
        uint64_t exit_signal;
        uint64_t stack;
        uint64_t stack_size;
        uint64_t tls;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remaining poll() timeout until deadline (-1: none). */
static int remaining_ms(int64_t deadline)
{
        if (deadline < 0)
                return -1;
        int64_t left = deadline - now_ms();
        if (left <= 0)
                return 0;
        return left > INT_MAX ? INT_MAX : (int)left;
}

/* "a b c" for messages, capped so a long QEMU command line stays readable. */
static char *argv_string(char *const argv[])
{
        const size_t cap = 200;
        size_t len = 0;
        char *s = xmalloc(cap + 4);
        s[0] = 0;
        for (size_t i = 0; argv[i]; i++) {
                size_t n = strlen(argv[i]) + (i > 0);
                if (len + n > cap) {
                        memcpy(s + len, "...", 4);
                        return s;
                }
                if (i > 0)
                        s[len++] = ' ';
                memcpy(s + len, argv[i], n - (i > 0));
                len += n - (i > 0);
                s[len] = 0;
        }
        return s;
}

/* ---- the child side: async-signal-safe only ---- */

_noreturn_ static void child_fail(int report_fd, int step, int error)
{
        struct child_report rep = { .step = step, .error = error };
        ssize_t n;
        do
                n = write(report_fd, &rep, sizeof(rep));
        while (n < 0 && errno == EINTR);
        _exit(127);
}

static int child_reset_signals(void)
{
        struct sigaction sa = { .sa_handler = SIG_DFL };
        (void)sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                /* glibc reserves a few real-time signals and answers EINVAL for them. */
                (void)sigaction(sig, &sa, NULL);
        }
        sigset_t none;
        (void)sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return -errno;
        return 0;
}

/* Parse a decimal fd number from a /proc/self/fd entry without strtol (not async-signal-safe
 * by contract). -1 for anything else ("." and ".."). */
static int child_parse_fd(const char *s)
{
        int v = 0;
        if (!*s)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (INT_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return v;
}

struct linux_dirent64_ {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

/* Mark every fd >= 3 close-on-exec. close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11) does it
 * in one call; older kernels get a getdents64 walk over /proc/self/fd (no malloc). */
static int child_cloexec_all(void)
{
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return 0;

        int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        char buf[4096] __attribute__((aligned(8)));
        for (;;) {
                long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
                if (n < 0) {
                        int e = errno;
                        (void)close(dfd);
                        return -e;
                }
                if (n == 0)
                        break;
                for (long off = 0; off < n;) {
                        struct linux_dirent64_ *d = (struct linux_dirent64_ *)(buf + off);
                        int fd = child_parse_fd(d->d_name);
                        if (fd >= 3 && fd != dfd)
                                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                        off += d->d_reclen;
                }
        }
        (void)close(dfd);
        return 0;
}

_noreturn_ static void child_run(char *const argv[], const struct gv_spawn_opts *o,
                                 const int stdio_src[3], int report_fd)
{
        if (child_reset_signals() < 0)
                child_fail(report_fd, STEP_SIGNALS, errno);

        int r = child_cloexec_all();
        if (r < 0)
                child_fail(report_fd, STEP_FDS, -r);

        /* Lift the stdio sources above 2 first, so moving one into slot i cannot clobber
         * another that happens to sit at i (e.g. stdout_fd = 0). */
        int lifted[3];
        for (int i = 0; i < 3; i++) {
                lifted[i] = fcntl(stdio_src[i], F_DUPFD_CLOEXEC, 3);
                if (lifted[i] < 0)
                        child_fail(report_fd, STEP_STDIO, errno);
        }
        for (int i = 0; i < 3; i++)
                if (dup2(lifted[i], i) < 0) /* dup2 clears close-on-exec on i */
                        child_fail(report_fd, STEP_STDIO, errno);

        for (size_t i = 0; i < o->n_keep; i++)
                if (fcntl(o->keep_fds[i], F_SETFD, 0) < 0)
                        child_fail(report_fd, STEP_FDS, errno);

        if (o->new_session && setsid() < 0)
                child_fail(report_fd, STEP_SESSION, errno);
        if (o->umask != 0)
                (void)umask(o->umask);
        for (size_t i = 0; i < o->n_cgroup_fds; i++) {
                /* Its own pid, in decimal, without stdio (not async-signal-safe). */
                char num[16];
                size_t n = sizeof(num);
                unsigned long v = (unsigned long)getpid();
                do {
                        num[--n] = (char)('0' + v % 10);
                        v /= 10;
                } while (v && n > 0);
                if (write(o->cgroup_fds[i], num + n, sizeof(num) - n) < 0)
                        child_fail(report_fd, STEP_CGROUP, errno);
        }
        if (o->cwd && chdir(o->cwd) < 0)
                child_fail(report_fd, STEP_CHDIR, errno);
        if (o->set_user) {
                /* The raw system calls: this child has one thread, and glibc's wrappers would
                 * try to change every thread of a process it no longer is. Groups first: after
                 * setresuid the right to change them is gone. */
                if (syscall(SYS_setgroups, o->n_groups, o->groups) < 0 ||
                    syscall(SYS_setresgid, o->gid, o->gid, o->gid) < 0 ||
                    syscall(SYS_setresuid, o->uid, o->uid, o->uid) < 0)
                        child_fail(report_fd, STEP_USER, errno);
                if (o->uid != 0 && (syscall(SYS_setresuid, 0, 0, 0) == 0 ||
                                    getuid() != o->uid || geteuid() != o->uid ||
                                    getgid() != o->gid || getegid() != o->gid))
                        child_fail(report_fd, STEP_USER, EPERM);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        child_fail(report_fd, STEP_USER, errno);
        }

        execvp(argv[0], argv);
        child_fail(report_fd, STEP_EXEC, errno);
}

/* ---- the parent side ---- */

/* A ThreadSanitizer build (gv_proc_spawn() forks there). */
#if defined(__SANITIZE_THREAD__) /* gcc */
#define TSAN_BUILD 1
#elif defined(__has_feature) /* clang */
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

/* clone3 with CLONE_PIDFD: returns the pid (0 in the child) and the pidfd in *ret_pidfd.
 * -ENOSYS (or -EPERM/-EINVAL from filters) makes the caller fall back to fork. */
static pid_t clone_with_pidfd(int *ret_pidfd)
{
        int pidfd = -1;
        struct gv_clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                .exit_signal = SIGCHLD,
        };
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return -errno;
        if (pid > 0)
                *ret_pidfd = pidfd;
        return (pid_t)pid;
}

static int spawn_error(struct gv_error **err, const char *what, int step, int error,
                       const struct gv_spawn_opts *o)
{
        switch (step) {
        case STEP_EXEC:
                return gv_error_set(err, error, "Cannot run '%s': %s.", what, strerror(error));
        case STEP_CHDIR:
                return gv_error_set(err, error,
                                    "Cannot run '%s': cannot change to directory '%s': %s.",
                                    what, o->cwd, strerror(error));
        case STEP_CGROUP:
                return gv_error_set(err, error, "Cannot run '%s': cannot join its cgroup: %s.",
                                    what, strerror(error));
        case STEP_USER:
                return gv_error_set(err, error,
                                    "Cannot run '%s': cannot switch to uid %u, gid %u: %s.",
                                    what, (unsigned)o->uid, (unsigned)o->gid, strerror(error));
        case STEP_SESSION:
                return gv_error_set(err, error, "Cannot run '%s': setsid() failed: %s.", what,
                                    strerror(error));
        case STEP_STDIO:
                return gv_error_set(err, error,
                                    "Cannot run '%s': cannot set up its stdin/stdout/stderr: %s.",
                                    what, strerror(error));
        case STEP_FDS:
                return gv_error_set(err, error,
                                    "Cannot run '%s': cannot close the other file descriptors "
                                    "or keep the requested ones: %s.",
                                    what, strerror(error));
        default:
                return gv_error_set(err, error,
                                    "Cannot run '%s': cannot reset signal handling: %s.", what,
                                    strerror(error));
        }
}

/* Wait status from waitid()'s siginfo, in the encoding WIFEXITED() and friends read. */
static int siginfo_to_status(const siginfo_t *si)
{
        switch (si->si_code) {
        case CLD_EXITED:
                return (si->si_status & 0xff) << 8;
        case CLD_KILLED:
                return si->si_status & 0x7f;
        case CLD_DUMPED:
                return (si->si_status & 0x7f) | 0x80;
        default:
                return -1;
        }
}

/* Reap a child through its pidfd (blocking unless nohang). 1 reaped, 0 not yet. */
static int reap(struct gv_proc *p, bool nohang)
{
        siginfo_t si = { 0 };
        int r;
        do
                r = waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | (nohang ? WNOHANG : 0));
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (si.si_pid == 0)
                return 0;
        p->reaped = true;
        p->status = siginfo_to_status(&si);
        return 1;
}

int gv_proc_spawn(char *const argv[], const struct gv_spawn_opts *o, struct gv_proc *ret,
                  struct gv_error **err)
{
        static const struct gv_spawn_opts defaults = {
                .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
        };
        if (!argv || !argv[0] || !argv[0][0])
                return gv_error_set(err, EINVAL, "No program to run: the argument list is empty.");
        if (!o)
                o = &defaults;
        for (size_t i = 0; i < o->n_keep; i++) {
                if (o->keep_fds[i] < 3)
                        return gv_error_set(err, EINVAL,
                                            "Cannot keep fd %d open in '%s': fds 0-2 are "
                                            "stdin/stdout/stderr; pass them as stdin_fd, "
                                            "stdout_fd or stderr_fd.",
                                            o->keep_fds[i], argv[0]);
                if (fcntl(o->keep_fds[i], F_GETFD) < 0)
                        return gv_error_set(err, EBADF,
                                            "Cannot keep fd %d open in '%s': it is not open.",
                                            o->keep_fds[i], argv[0]);
        }

        _cleanup_close_ int devnull = -1;
        int src[3] = { o->stdin_fd, o->stdout_fd, o->stderr_fd };
        for (int i = 0; i < 3; i++) {
                if (src[i] >= 0)
                        continue;
                if (devnull < 0) {
                        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
                        if (devnull < 0)
                                return gv_error_set(err, errno, "Cannot open '/dev/null': %s.",
                                                    strerror(errno));
                }
                src[i] = devnull;
        }

        int report[2];
        if (pipe2(report, O_CLOEXEC) < 0)
                return gv_error_set(err, errno, "Cannot create a pipe to run '%s': %s.", argv[0],
                                    strerror(errno));
        _cleanup_close_ int report_r = report[0];
        _cleanup_close_ int report_w = report[1];

        /* Block every signal across the clone so the child cannot run one of our handlers
         * before it has reset them. */
        sigset_t all, saved;
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &saved);

        int pidfd = -1;
        /* ThreadSanitizer follows a child only through fork(), which it intercepts: after a raw
         * clone3() it takes the child's steps before exec (dup2, the kmock's locks) for the
         * parent's and reports races with the parent's threads that cannot happen. Its builds
         * (make test-tsan) take the fork() path, as a kernel without clone3 does. */
        pid_t pid = TSAN_BUILD ? -ENOSYS : clone_with_pidfd(&pidfd);
        if (pid == -ENOSYS || pid == -EPERM || pid == -EINVAL) {
                pid = fork();
                if (pid < 0)
                        pid = -errno;
        }
        if (pid == 0)
                child_run(argv, o, src, report_w);

        int saved_errno = -pid;
        (void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0)
                return gv_error_set(err, saved_errno, "Cannot start a process for '%s': %s.",
                                    argv[0], strerror(saved_errno));

        struct gv_proc p = { .pid = pid, .pidfd = pidfd, .child = true };
        if (p.pidfd < 0) {
                /* fork fallback: the child cannot be reaped by anyone else before this (it is
                 * ours and only waitid on its pidfd reaps it), so its pid is still its own. */
                p.pidfd = pidfd_open(pid, 0);
                if (p.pidfd < 0) {
                        int e = errno;
                        (void)kill(pid, SIGKILL);
                        (void)waitpid(pid, NULL, 0);
                        return gv_error_set(err, e, "Cannot open a pidfd for '%s': %s.",
                                            argv[0], strerror(e));
                }
        }

        report_w = safe_close(report_w);
        struct child_report rep;
        ssize_t n;
        do
                n = read(report_r, &rep, sizeof(rep));
        while (n < 0 && errno == EINTR);
        if (n != 0) {
                /* A failed step, or a read error we cannot interpret: either way the child is
                 * not the program we meant; make sure it is gone and reaped. */
                (void)pidfd_send_signal(p.pidfd, SIGKILL, NULL, 0);
                (void)reap(&p, false);
                (void)close(p.pidfd);
                if (n == (ssize_t)sizeof(rep))
                        return spawn_error(err, argv[0], rep.step, rep.error, o);
                return gv_error_set(err, EIO, "Cannot run '%s': lost track of its start.",
                                    argv[0]);
        }

        *ret = p;
        return 0;
}

/* Whether /proc/PID/cmdline holds marker as one whole argument. */
static int cmdline_has(pid_t pid, const char *marker, bool *ret)
{
        char path[sizeof("/proc//cmdline") + DECIMAL_STR_MAX(pid_t)];
        (void)snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = gv_read_file(path, 1024 * 1024, &buf, &len);
        if (r < 0)
                return r;
        bool found = false;
        for (size_t off = 0; off < len;) {
                const char *arg = buf + off;
                size_t n = strnlen(arg, len - off);
                if (strcmp(arg, marker) == 0)
                        found = true;
                off += n + 1;
        }
        *ret = found;
        return 0;
}

int gv_proc_adopt(pid_t pid, const char *marker, struct gv_proc *ret, struct gv_error **err)
{
        if (pid <= 0)
                return gv_error_set(err, EINVAL, "Cannot adopt process %d: not a process id.",
                                    (int)pid);
        if (!marker || !*marker)
                return gv_error_set(err, EINVAL,
                                    "Cannot adopt process %d: no marker argument to recognise "
                                    "it by.",
                                    (int)pid);

        _cleanup_close_ int pidfd = pidfd_open(pid, 0);
        if (pidfd < 0) {
                if (errno == ESRCH)
                        return gv_error_set(err, ESRCH, "Process %d is gone.", (int)pid);
                return gv_error_set(err, errno, "Cannot open a pidfd for process %d: %s.",
                                    (int)pid, strerror(errno));
        }

        /* The pidfd pins the process's identity; the cmdline read below belongs to it as long
         * as it is still running after the read (checked next), since its pid cannot be
         * reused before it exits. */
        bool found = false;
        int r = cmdline_has(pid, marker, &found);

        struct gv_proc p = { .pid = pid, .pidfd = pidfd, .child = false };
        if (!gv_proc_alive(&p) || r == -ENOENT || r == -ESRCH)
                return gv_error_set(err, ESRCH, "Process %d is gone.", (int)pid);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the command line of process %d: %s.",
                                    (int)pid, strerror(-r));
        if (!found)
                return gv_error_set(err, ESTALE,
                                    "Process %d is not ours: its command line lacks '%s' (the "
                                    "pid was reused; the process we started has exited).",
                                    (int)pid, marker);

        p.pidfd = TAKE_FD(pidfd);
        *ret = p;
        return 0;
}

int gv_proc_wait(struct gv_proc *p, int timeout_ms, int *ret_status, struct gv_error **err)
{
        if (p->reaped) {
                if (ret_status)
                        *ret_status = p->status;
                return 1;
        }
        if (p->pidfd < 0)
                return gv_error_set(err, EBADF, "Cannot wait for process %d: it has no pidfd.",
                                    (int)p->pid);

        int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
        for (;;) {
                struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
                int n = poll(&pfd, 1, remaining_ms(deadline));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return gv_error_set(err, errno, "Cannot wait for process %d: %s.",
                                            (int)p->pid, strerror(errno));
                }
                if (n == 0)
                        return 0;
                break;
        }

        int status = -1;
        if (p->child) {
                int r = reap(p, false);
                if (r == -ECHILD) {
                        /* Reaped behind our back (SIGCHLD set to SIG_IGN, or a waitpid(-1)
                         * elsewhere): it did exit, the status is lost. */
                        p->reaped = true;
                        p->status = -1;
                } else if (r < 0)
                        return gv_error_set(err, -r, "Cannot reap process %d: %s.", (int)p->pid,
                                            strerror(-r));
                status = p->status;
        }
        if (ret_status)
                *ret_status = status;
        return 1;
}

bool gv_proc_alive(const struct gv_proc *p)
{
        if (p->reaped)
                return false;
        if (p->pidfd >= 0) {
                struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
                int n;
                do
                        n = poll(&pfd, 1, 0);
                while (n < 0 && errno == EINTR);
                return n == 0;
        }
        if (p->pid <= 0)
                return false;
        return kill(p->pid, 0) == 0 || errno == EPERM;
}

int gv_proc_signal(const struct gv_proc *p, int sig, struct gv_error **err)
{
        if (p->pidfd < 0 || p->reaped)
                return gv_error_set(err, ESRCH, "Cannot signal process %d: it is gone.",
                                    (int)p->pid);
        if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0) {
                if (errno == ESRCH)
                        return gv_error_set(err, ESRCH,
                                            "Cannot signal process %d: it has exited.",
                                            (int)p->pid);
                return gv_error_set(err, errno, "Cannot send signal %d to process %d: %s.", sig,
                                    (int)p->pid, strerror(errno));
        }
        return 0;
}

void gv_proc_close(struct gv_proc *p)
{
        if (p->pidfd >= 0 && p->child && !p->reaped)
                (void)reap(p, true);
        p->pidfd = safe_close(p->pidfd);
}

/* ---- run to completion ---- */

struct capture {
        int fd;
        char *data;
        size_t len;
        size_t max;
};

/* Read what is there; 0 on EOF (fd closed), 1 when more may come. */
static int capture_read(struct capture *c)
{
        char chunk[16384];
        /* Bounded, so a writer that never pauses cannot keep us here. */
        for (int i = 0; i < 1024; i++) {
                ssize_t n = read(c->fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 1;
                        c->fd = safe_close(c->fd);
                        return 0;
                }
                if (n == 0) {
                        c->fd = safe_close(c->fd);
                        return 0;
                }
                size_t take = MIN((size_t)n, c->max - c->len);
                if (take > 0) {
                        memcpy(c->data + c->len, chunk, take);
                        c->len += take;
                        c->data[c->len] = 0;
                }
        }
        return 1;
}

static void capture_done(struct capture *c)
{
        c->fd = safe_close(c->fd);
        free(c->data);
        c->data = NULL;
}

static int capture_open(struct capture *c, size_t max, int *ret_write_fd, struct gv_error **err)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return gv_error_set(err, errno, "Cannot create a pipe: %s.", strerror(errno));
        if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
                int e = errno;
                (void)close(fds[0]);
                (void)close(fds[1]);
                return gv_error_set(err, e, "Cannot set up a pipe: %s.", strerror(e));
        }
        c->fd = fds[0];
        c->max = max;
        c->len = 0;
        c->data = xmalloc(max + 1);
        c->data[0] = 0;
        *ret_write_fd = fds[1];
        return 0;
}

int gv_proc_run_status(char *const argv[], int timeout_ms, size_t max, char **ret_stdout,
                       char **ret_stderr, int *ret_status, struct gv_error **err)
{
        if (!argv || !argv[0] || !argv[0][0])
                return gv_error_set(err, EINVAL, "No program to run: the argument list is empty.");

        struct capture out = { .fd = -1 }, errc = { .fd = -1 };
        _cleanup_close_ int out_w = -1, err_w = -1;
        int r = capture_open(&out, max, &out_w, err);
        if (r < 0)
                return r;
        r = capture_open(&errc, max, &err_w, err);
        if (r < 0) {
                capture_done(&out);
                return r;
        }

        /* Its own session (and so process group): a timeout kills whatever it started too. */
        struct gv_spawn_opts o = {
                .stdin_fd = -1, .stdout_fd = out_w, .stderr_fd = err_w, .new_session = true,
        };
        struct gv_proc p = GV_PROC_NULL;
        r = gv_proc_spawn(argv, &o, &p, err);
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        if (r < 0) {
                capture_done(&out);
                capture_done(&errc);
                return r;
        }

        int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
        bool exited = false, timed_out = false;
        while (!exited) {
                struct pollfd pfd[3] = {
                        { .fd = p.pidfd, .events = POLLIN },
                        { .fd = out.fd, .events = POLLIN },  /* fd -1 is ignored by poll */
                        { .fd = errc.fd, .events = POLLIN },
                };
                int left = remaining_ms(deadline);
                if (left == 0) {
                        timed_out = true;
                        break;
                }
                int n = poll(pfd, 3, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = gv_error_set(err, errno, "Cannot watch '%s': %s.", argv[0],
                                         strerror(errno));
                        timed_out = true; /* kill it below */
                        break;
                }
                if (pfd[1].revents)
                        (void)capture_read(&out);
                if (pfd[2].revents)
                        (void)capture_read(&errc);
                if (pfd[0].revents)
                        exited = true;
        }

        if (timed_out) {
                /* The child is not reaped yet, so its pid (= its process group id) is still
                 * its own: killing the group cannot hit a stranger. */
                (void)kill(-p.pid, SIGKILL);
                (void)pidfd_send_signal(p.pidfd, SIGKILL, NULL, 0);
        } else {
                /* Everything it wrote before exiting is in the pipes now; take it without
                 * waiting for EOF, which a lingering grandchild could hold back. */
                if (out.fd >= 0)
                        (void)capture_read(&out);
                if (errc.fd >= 0)
                        (void)capture_read(&errc);
        }
        int status = -1;
        int rr = gv_proc_wait(&p, -1, &status, NULL);
        gv_proc_close(&p);

        if (timed_out && r >= 0) {
                _cleanup_free_ char *cmd = argv_string(argv);
                r = gv_error_set(err, ETIMEDOUT,
                                 "'%s' did not finish within %d ms; it was killed.", cmd,
                                 timeout_ms);
        } else if (r >= 0 && rr < 0) {
                r = gv_error_set(err, ECHILD, "Lost the exit status of '%s'.", argv[0]);
        }
        if (r < 0) {
                capture_done(&out);
                capture_done(&errc);
                return r;
        }

        out.fd = safe_close(out.fd);
        errc.fd = safe_close(errc.fd);
        if (ret_stdout)
                *ret_stdout = TAKE_PTR(out.data);
        if (ret_stderr)
                *ret_stderr = TAKE_PTR(errc.data);
        if (ret_status)
                *ret_status = status;
        capture_done(&out);
        capture_done(&errc);
        return 0;
}

int gv_proc_run(char *const argv[], int timeout_ms, size_t max, char **ret_stdout,
                char **ret_stderr, struct gv_error **err)
{
        _cleanup_free_ char *out = NULL, *errs = NULL;
        int status = 0;
        int r = gv_proc_run_status(argv, timeout_ms, max, &out, &errs, &status, err);
        if (r < 0)
                return r;

        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *cmd = argv_string(argv);
                gv_strip(errs);
                if (WIFSIGNALED(status)) {
                        const char *name = sigabbrev_np(WTERMSIG(status));
                        return gv_error_set(err, EIO, "'%s' was killed by signal SIG%s%s%s", cmd,
                                            name ? name : "?", *errs ? ": " : ".", errs);
                }
                return gv_error_set(err, EIO, "'%s' failed (exit %d)%s%s", cmd,
                                    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                    *errs ? ": " : ".", errs);
        }

        if (ret_stdout)
                *ret_stdout = TAKE_PTR(out);
        if (ret_stderr)
                *ret_stderr = TAKE_PTR(errs);
        return 0;
}

/* ---- pidfiles ---- */

int gv_pidfile_write(const char *path, pid_t pid, struct gv_error **err)
{
        if (pid <= 0)
                return gv_error_set(err, EINVAL, "Cannot write pidfile '%s': %d is not a pid.",
                                    path, (int)pid);
        char buf[DECIMAL_STR_MAX(pid_t) + 1];
        (void)snprintf(buf, sizeof(buf), "%d\n", (int)pid);
        int r = gv_write_file(path, buf, GV_WRITE_CREATE | GV_WRITE_ATOMIC);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot write pidfile '%s': %s.", path,
                                    strerror(-r));
        return 0;
}

int gv_pidfile_read(const char *path, pid_t *ret, struct gv_error **err)
{
        _cleanup_free_ char *s = NULL;
        int r = gv_read_file(path, 64, &s, NULL);
        if (r == -EFBIG)
                return gv_error_set(err, EINVAL,
                                    "Pidfile '%s' is too large to hold a process id; remove it.",
                                    path);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read pidfile '%s': %s.", path,
                                    strerror(-r));
        uint32_t v = 0;
        r = gv_parse_u32(s, 10, &v); /* strict: digits and at most one trailing newline */
        if (r < 0 || v == 0 || v > INT_MAX)
                return gv_error_set(err, EINVAL,
                                    "Pidfile '%s' does not hold a process id ('%s'); remove it.",
                                    path, gv_strip(s));
        *ret = (pid_t)v;
        return 0;
}
