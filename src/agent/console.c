/* SPDX-License-Identifier: MIT */
/*
 * console.c — the serial console relay and its bounded log (console.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/console.h"
#include "util/alloc.h"
#include "util/fileio.h"

#define WRITE_WAIT_MS 2000

int gv_agent_console_attach(struct gv_agent_vm *vm)
{
        _cleanup_free_ char *path = gv_path_join(vm->run_dir, "console.sock");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (vm->console_fd >= 0)
                return 0;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        vm->console_fd = fd;
        return 0;
}

void gv_agent_console_detach(struct gv_agent_vm *vm)
{
        if (vm->console_fd >= 0)
                close(vm->console_fd);
        vm->console_fd = -1;
}

static void append_log(struct gv_agent *a, struct gv_agent_vm *vm, const char *buf, size_t n)
{
        _cleanup_free_ char *log = gv_path_join(vm->run_dir, "console.log");
        struct stat st;
        int fd;

        if (stat(log, &st) == 0 && (size_t)st.st_size + n > a->cfg.console_log_max) {
                _cleanup_free_ char *old = gv_path_join(vm->run_dir, "console.log.1");
                (void)rename(log, old);
        }
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        (void)!write(fd, buf, n);
        close(fd);
}

void gv_agent_console_pump(struct gv_agent *a, struct gv_agent_vm *vm)
{
        char buf[4096];

        while (vm->console_fd >= 0) {
                ssize_t n = read(vm->console_fd, buf, sizeof(buf));
                if (n > 0) {
                        append_log(a, vm, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                gv_agent_console_detach(vm); /* EOF: QEMU went away */
        }
}

/* The last `max` bytes of console.log.1 + console.log. */
int gv_agent_console_read(struct gv_agent *a, const char *name, size_t max, char **ret,
                          size_t *ret_len, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        _cleanup_free_ char *cur = NULL, *old = NULL, *p1 = NULL, *p2 = NULL;
        size_t n_cur = 0, n_old = 0;

        pthread_mutex_lock(&a->lock);
        vm = gv_agent_vm_find_locked(a, name);
        if (!vm) {
                pthread_mutex_unlock(&a->lock);
                return gv_error_set(err, ENOENT, "No VM '%s' on this host.", name);
        }
        p1 = gv_path_join(vm->run_dir, "console.log.1");
        p2 = gv_path_join(vm->run_dir, "console.log");
        pthread_mutex_unlock(&a->lock);
        /* Files only: no VM lock needed (a rotation between the two reads loses nothing the
         * caller would not also miss by reading a moment later). */
        if (gv_read_file(p1, a->cfg.console_log_max * 2, &old, &n_old) < 0)
                n_old = 0;
        if (gv_read_file(p2, a->cfg.console_log_max * 2, &cur, &n_cur) < 0)
                n_cur = 0;
        size_t total = n_old + n_cur, skip = total > max ? total - max : 0;
        char *out = xmalloc(total - skip + 1), *o = out;
        if (skip < n_old) {
                memcpy(o, old + skip, n_old - skip);
                o += n_old - skip;
                skip = 0;
        } else {
                skip -= n_old;
        }
        memcpy(o, cur ? cur + skip : "", n_cur - skip);
        o += n_cur - skip;
        *o = '\0';
        *ret = out;
        *ret_len = (size_t)(o - out);
        return 0;
}

int gv_agent_console_write(struct gv_agent *a, const char *name, const void *buf, size_t len,
                           struct gv_error **err)
{
        struct gv_agent_vm *vm;
        const char *p = buf;
        int r = 0;

        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (vm->phase != GV_VM_RUNNING) {
                r = gv_error_set(err, EBUSY, "VM '%s' is %s; its console takes input only while "
                                 "it runs.", name, gv_vm_phase_to_string(vm->phase));
                goto out;
        }
        if (gv_agent_console_attach(vm) < 0) {
                r = gv_error_set(err, EIO, "VM '%s': the console socket does not answer.", name);
                goto out;
        }
        while (len) {
                ssize_t n = send(vm->console_fd, p, len, MSG_NOSIGNAL);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pf = { .fd = vm->console_fd, .events = POLLOUT };
                        if (poll(&pf, 1, WRITE_WAIT_MS) > 0)
                                continue;
                        r = gv_error_set(err, ETIMEDOUT, "VM '%s': the guest does not read its "
                                         "console (%zu bytes left).", name, len);
                        goto out;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                r = gv_error_set(err, EIO, "VM '%s': writing to the console failed: %s.", name,
                                 n < 0 ? strerror(errno) : "closed");
                gv_agent_console_detach(vm);
                goto out;
        }
out:
        pthread_mutex_unlock(&vm->lock);
        return r;
}
