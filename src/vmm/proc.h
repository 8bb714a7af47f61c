/* SPDX-License-Identifier: MIT */
/*
 * proc.h — process supervision for QEMU and its helpers (qemu-img): spawn with every other fd
 * closed, notice the exit at once through a pidfd (poll it, no SIGCHLD handler, no sleeping),
 * adopt a running process after the agent restarts, run a helper to completion with a timeout.
 *
 * No logging; errors follow src/util/error.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

struct gv_proc {
        pid_t pid;
        int pidfd;        /* pidfd_open(2) / clone3 CLONE_PIDFD: readable when the process exits */
        bool child;       /* we spawned it (can reap with waitid(P_PIDFD)); false when adopted */
        /* Added to the agreed API: gv_proc_wait() remembers a reaped child's status here, so a
         * second wait answers the same instead of ECHILD. Zero in GV_PROC_NULL. */
        bool reaped;
        int status;
};
#define GV_PROC_NULL ((struct gv_proc){ .pid = 0, .pidfd = -1 })

struct gv_spawn_opts {
        int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null */
        const int *keep_fds; size_t n_keep; /* fds to keep open in the child (not CLOEXEC there) */
        bool new_session;                   /* setsid(): survives the agent (VMs must) */
        mode_t umask;                       /* applied in the child; 0 = leave as is */
        const char *cwd;                    /* NULL: leave */
        /* Confinement (confine.h): the child writes its pid into each of these open files
         * (cgroup.procs of its cgroups) first, while still privileged; then, with set_user,
         * switches to groups/gid/uid (setgroups, setresgid, setresuid: real, effective and
         * saved), checks that it cannot get root back, sets no_new_privs, and execs. */
        const int *cgroup_fds; size_t n_cgroup_fds;
        bool set_user;
        uid_t uid;
        gid_t gid;
        const gid_t *groups; size_t n_groups;
};

/* fork+exec argv (argv[0] searched in PATH) with every other fd closed (close_range or a
 * loop over /proc/self/fd), signal mask and dispositions reset in the child. Exec failure is
 * reported to the parent through a CLOEXEC pipe: -ENOENT "Cannot run 'qemu-system-x86_64': No
 * such file or directory." etc. o may be NULL: stdio on /dev/null, nothing else changed.
 * keep_fds must be >= 3 (0-2 are the stdio slots): -EINVAL otherwise. */
int gv_proc_spawn(char *const argv[], const struct gv_spawn_opts *o, struct gv_proc *ret,
                  struct gv_error **err);

/* Adopt a running process after a restart: pidfd_open(pid), then check that
 * /proc/PID/cmdline holds the argument `marker` (one whole argument, e.g. "guest=NAME,..."), so
 * a recycled pid is not mistaken for our VM. -ESRCH when it is gone, -ESTALE when the pid
 * belongs to something else. */
int gv_proc_adopt(pid_t pid, const char *marker, struct gv_proc *ret, struct gv_error **err);

/* Wait for exit up to timeout_ms (-1 forever, 0 poll) on the pidfd. Returns 1 when it exited
 * (*ret_status: the wait status for a child, -1 when adopted and unknown), 0 on timeout.
 * ret_status may be NULL. */
int gv_proc_wait(struct gv_proc *p, int timeout_ms, int *ret_status, struct gv_error **err);

/* True while the process has not exited (a zombie counts as exited). */
bool gv_proc_alive(const struct gv_proc *p);

/* pidfd_send_signal(2). -ESRCH when the process is gone (reaped). */
int gv_proc_signal(const struct gv_proc *p, int sig, struct gv_error **err);

/* Closes the pidfd; does not kill. A child that has already exited is reaped first, so it does
 * not linger as a zombie. Safe on GV_PROC_NULL and twice. */
void gv_proc_close(struct gv_proc *p);

/* Run to completion with a timeout, capturing stdout and stderr (each capped at max bytes;
 * the rest is read and dropped): for qemu-img and friends. On a non-zero exit: -EIO with
 * "'CMD' failed (exit N): STDERR". -ETIMEDOUT kills it (and its process group). ret_stdout and
 * ret_stderr may be NULL; they are NUL-terminated. */
int gv_proc_run(char *const argv[], int timeout_ms, size_t max, char **ret_stdout,
                char **ret_stderr, struct gv_error **err);

/* As gv_proc_run(), but any exit is success: *ret_status gets the wait status (WIFEXITED...),
 * for callers that give exit codes their own meaning (qemu-img check: 2 corrupt, 3 leaks).
 * Fails only when it cannot run it or it times out. */
int gv_proc_run_status(char *const argv[], int timeout_ms, size_t max, char **ret_stdout,
                       char **ret_stderr, int *ret_status, struct gv_error **err);

/* Pidfile helpers: write atomically (tmp + rename), read strictly ("PID" with an optional
 * trailing newline, PID > 0; anything else is -EINVAL). */
int gv_pidfile_write(const char *path, pid_t pid, struct gv_error **err);
int gv_pidfile_read(const char *path, pid_t *ret, struct gv_error **err);
