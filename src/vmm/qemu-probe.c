/* SPDX-License-Identifier: MIT */
/*
 * qemu-probe.c — what this machine's QEMU can do (gv_qemu_probe(), qemu-cmd.h): its version,
 * KVM or TCG, and a CPU model that starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/parse.h"
#include "vmm/qemu-cmd.h"

#define PROBE_TIMEOUT_MS 10000
#define PROBE_OUTPUT_MAX 8192

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run argv with `input` on stdin, stdout+stderr captured (capped). Returns the exit status
 * (128+signal when killed by one), -ETIMEDOUT after PROBE_TIMEOUT_MS, -errno when it cannot
 * start (-ENOENT when the binary is missing). */
static int run(char *const argv[], const char *input, char **ret_output)
{
        int in[2], out[2], status = 0, r;
        size_t len = 0;
        char *buf = xcalloc(PROBE_OUTPUT_MAX + 1, 1);
        long long deadline = now_ms() + PROBE_TIMEOUT_MS;
        pid_t pid;
        int errpipe[2];

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
            pipe2(errpipe, O_CLOEXEC) < 0) {
                free(buf);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                free(buf);
                return r;
        }
        if (pid == 0) {
                int e;
                dup2(in[0], 0);
                dup2(out[1], 1);
                dup2(out[1], 2);
                execvp(argv[0], argv);
                e = errno;
                (void)!write(errpipe[1], &e, sizeof(e));
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        close(errpipe[1]);
        {
                int e = 0;
                if (read(errpipe[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
                        close(errpipe[0]);
                        close(in[1]);
                        close(out[0]);
                        waitpid(pid, NULL, 0);
                        free(buf);
                        return -e;
                }
                close(errpipe[0]);
        }
        if (input) {
                /* QEMU may die before it reads: take EPIPE without the process-wide SIGPIPE,
                 * and drop the signal if it became pending for this thread. */
                sigset_t pipe_set, old;
                struct timespec zero = { 0 };
                sigemptyset(&pipe_set);
                sigaddset(&pipe_set, SIGPIPE);
                pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
                if (write(in[1], input, strlen(input)) < 0 && errno == EPIPE)
                        (void)sigtimedwait(&pipe_set, NULL, &zero);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        /* Keep stdin open: QEMU reads QMP from it and would see EOF as nothing at all. */
        for (;;) {
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                long long left = deadline - now_ms();
                if (left <= 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        close(in[1]);
                        close(out[0]);
                        free(buf);
                        return -ETIMEDOUT;
                }
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                char tmp[1024];
                ssize_t n = read(out[0], tmp, sizeof(tmp));
                if (n <= 0)
                        break;
                size_t take = (size_t)n < PROBE_OUTPUT_MAX - len ? (size_t)n : PROBE_OUTPUT_MAX - len;
                memcpy(buf + len, tmp, take);
                len += take;
        }
        close(in[1]);
        close(out[0]);
        waitpid(pid, &status, 0);
        *ret_output = buf;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The last non-empty line of QEMU's output, for the reason text. */
static char *last_line(const char *s)
{
        const char *end = s + strlen(s);

        while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
                end--;
        const char *start = end;
        while (start > s && start[-1] != '\n')
                start--;
        return xasprintf("%.*s", (int)(end - start), start);
}

static bool cpu_starts(const char *binary, const char *cpu, enum gv_accel accel, char **ret_why)
{
        char *argv[] = { (char *)binary, "-machine", "q35", "-accel",
                         (char *)gv_accel_to_string(accel), "-cpu", (char *)cpu, "-nodefaults",
                         "-display", "none", "-S", "-qmp", "stdio", NULL };
        _cleanup_free_ char *out = NULL;
        int st = run(argv, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"quit\"}\n", &out);

        if (st == 0)
                return true;
        _cleanup_free_ char *line = out ? last_line(out) : xstrdup("");
        *ret_why = st < 0 ? xasprintf("%s", strerror(-st))
                          : xasprintf("QEMU exited with %d: %s", st, line);
        return false;
}

/* Whether QEMU starts with the sandbox gpuvirt asks for (no accelerator needed to tell). */
static bool sandbox_starts(const char *binary, char **ret_why)
{
        char *argv[] = { (char *)binary, "-machine", "none", "-nodefaults", "-display", "none",
                         "-sandbox", GV_QEMU_SANDBOX, "-S", "-qmp", "stdio", NULL };
        _cleanup_free_ char *out = NULL;
        int st = run(argv, "{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"quit\"}\n", &out);

        if (st == 0)
                return true;
        _cleanup_free_ char *line = out ? last_line(out) : xstrdup("");
        *ret_why = st < 0 ? xasprintf("%s", strerror(-st))
                          : xasprintf("QEMU exited with %d: %s", st, line);
        return false;
}

int gv_qemu_probe(const char *binary, const char *kvm_path, struct gv_qemu_caps *ret,
                  struct gv_error **err)
{
        const char *bin = binary ? binary : "qemu-system-x86_64";
        char *argv[] = { (char *)bin, "--version", NULL };
        _cleanup_free_ char *out = NULL, *accel_reason = NULL, *why = NULL;
        struct gv_qemu_caps c = { 0 };
        int st;

        st = run(argv, NULL, &out);
        if (st == -ENOENT)
                return gv_error_set(err, ENOENT, "'%s' is not installed; install the Debian "
                                    "package qemu-system-x86.", bin);
        if (st != 0)
                return gv_error_set(err, st < 0 ? -st : EIO, "'%s --version' failed: %s", bin,
                                    st < 0 ? strerror(-st) : out);
        /* "QEMU emulator version 7.2.22 (Debian ...)" */
        const char *v = strstr(out, "version ");
        if (!v || sscanf(v + 8, "%u.%u.%u", &c.major, &c.minor, &c.micro) < 2)
                return gv_error_set(err, EPROTO, "Cannot read the version in '%s --version': "
                                    "'%s'.", bin, out);

        gv_accel_probe(kvm_path, &c.accel, &accel_reason, NULL);
        if (c.accel == GV_ACCEL_KVM) {
                if (cpu_starts(bin, "host", GV_ACCEL_KVM, &why)) {
                        c.cpu_model = xstrdup("host");
                        c.reason = xasprintf("kvm (%s), cpu model host", accel_reason);
                } else {
                        c.cpu_model = xstrdup("");
                        c.reason = xasprintf("kvm (%s), QEMU's default cpu model: '-cpu host' "
                                             "does not start here (%s)", accel_reason, why);
                }
        } else {
                c.cpu_model = xstrdup("max");
                c.reason = xasprintf("tcg: %s", accel_reason);
        }
        c.sandbox = sandbox_starts(bin, &c.sandbox_why);
        *ret = c;
        return 0;
}

void gv_qemu_caps_done(struct gv_qemu_caps *c)
{
        free(c->cpu_model);
        free(c->reason);
        free(c->sandbox_why);
        *c = (struct gv_qemu_caps){ 0 };
}
