/* SPDX-License-Identifier: MIT */
/*
 * console.c — the serial console relay and its bounded log (console.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
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

/* The guest writes as fast as it likes (Firecracker's serial note, reliability.md [S62]): the
 * log is two files of at most console_log_max bytes each, console.log and the one before it,
 * console.log.1; a chunk larger than the bound keeps only its last console_log_max bytes. The
 * files live in the agent's log/ (never in a directory the QEMU user may write) and are
 * opened without following links. */
static void append_log(struct gv_agent *a, struct gv_agent_vm *vm, const char *buf, size_t n)
{
        _cleanup_free_ char *log = gv_path_join(vm->log_dir, "console.log");
        size_t max = a->cfg.console_log_max;
        struct stat st;
        int fd;

        if (n > max) {
                buf += n - max;
                n = max;
        }
        if (lstat(log, &st) == 0 && (size_t)st.st_size + n > max) {
                _cleanup_free_ char *old = gv_path_join(vm->log_dir, "console.log.1");
                (void)rename(log, old);
        }
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
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
        p1 = gv_path_join(vm->log_dir, "console.log.1");
        p2 = gv_path_join(vm->log_dir, "console.log");
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

/* ---- follow ---- */

#define FOLLOW_RECHECK_MS 500

struct gv_console_follow {
        struct gv_agent *a;
        struct gv_agent_vm *vm;   /* valid for the agent's life (deleted VMs are kept) */
        char *log;                /* log/console.log */
        char *backlog;
        size_t n_backlog, pos;
        int fd;                   /* the log being read, -1 before it exists */
        int inotify_fd;           /* the log directory, -1 when it could not be watched */
        bool done;
};

void gv_console_follow_free(struct gv_console_follow *f)
{
        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        if (f->inotify_fd >= 0)
                close(f->inotify_fd);
        free(f->log);
        free(f->backlog);
        free(f);
}

/* The last `max` bytes of console.log.1 followed by console.log's first `cur` bytes. */
static char *tail_bytes(const char *old_path, int fd, off_t cur, size_t max, size_t cap,
                        size_t *ret_len)
{
        _cleanup_free_ char *old = NULL;
        size_t n_old = 0, want = (size_t)cur < max ? max - (size_t)cur : 0;
        off_t from = (size_t)cur > max ? cur - (off_t)max : 0;
        char *out;
        size_t n = 0;

        if (want && gv_read_file(old_path, cap, &old, &n_old) < 0)
                n_old = 0;
        if (n_old > want) {
                memmove(old, old + (n_old - want), want);
                n_old = want;
        }
        out = xmalloc(n_old + (size_t)(cur - from) + 1);
        if (n_old)
                memcpy(out, old, n_old);
        n = n_old;
        while (fd >= 0 && from < cur) {
                ssize_t k = pread(fd, out + n, (size_t)(cur - from), from);
                if (k <= 0)
                        break;
                from += k;
                n += (size_t)k;
        }
        *ret_len = n;
        return out;
}

int gv_agent_console_follow(struct gv_agent *a, const char *name, size_t backlog,
                            struct gv_console_follow **ret, struct gv_error **err)
{
        struct gv_console_follow *f;
        struct gv_agent_vm *vm;
        _cleanup_free_ char *old = NULL;
        struct stat st;

        pthread_mutex_lock(&a->lock);
        vm = gv_agent_vm_find_locked(a, name);
        if (!vm) {
                pthread_mutex_unlock(&a->lock);
                return gv_error_set(err, ENOENT, "No VM '%s' on this host.", name);
        }
        f = xnew0(struct gv_console_follow, 1);
        f->a = a;
        f->vm = vm;
        f->log = gv_path_join(vm->log_dir, "console.log");
        old = gv_path_join(vm->log_dir, "console.log.1");
        f->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (f->inotify_fd >= 0 &&
            inotify_add_watch(f->inotify_fd, vm->log_dir,
                              IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF) < 0) {
                close(f->inotify_fd);
                f->inotify_fd = -1; /* not started yet: no log directory; poll instead */
        }
        pthread_mutex_unlock(&a->lock);
        /* The watch is in place before the size is taken: nothing written after it is missed,
         * nothing before it is sent twice. */
        f->fd = open(f->log, O_RDONLY | O_CLOEXEC);
        off_t cur = f->fd >= 0 && fstat(f->fd, &st) == 0 ? st.st_size : 0;
        if (backlog)
                f->backlog = tail_bytes(old, f->fd, cur, backlog, a->cfg.console_log_max * 2,
                                        &f->n_backlog);
        if (f->fd >= 0 && lseek(f->fd, cur, SEEK_SET) < 0) {
                int r = -errno;
                gv_console_follow_free(f);
                return gv_error_set(err, -r, "Cannot read '%s': %s.", f->log, strerror(-r));
        }
        *ret = f;
        return 0;
}

/* Is the VM still in the table with a QEMU that may write more? */
static bool follow_live(struct gv_console_follow *f)
{
        bool live = false;

        pthread_mutex_lock(&f->a->lock);
        for (size_t i = 0; i < f->a->n_vms; i++)
                if (f->a->vms[i] == f->vm) {
                        /* Read without the VM's lock (an operation may hold it for seconds):
                         * a stale answer costs one more round. */
                        enum gv_vm_phase p = __atomic_load_n(&f->vm->phase, __ATOMIC_RELAXED);
                        live = gv_vm_phase_has_qemu(p);
                }
        pthread_mutex_unlock(&f->a->lock);
        return live;
}

/* Read what is new: > 0 bytes, 0 nothing now, -errno. Follows a rotation: the old file is read
 * to its end (it gets no more bytes once renamed), then the new one from its start. */
static ssize_t follow_read_new(struct gv_console_follow *f, char *buf, size_t max)
{
        for (;;) {
                struct stat now, mine;
                if (f->fd < 0) {
                        f->fd = open(f->log, O_RDONLY | O_CLOEXEC);
                        if (f->fd < 0)
                                return errno == ENOENT ? 0 : -errno;
                }
                ssize_t n = read(f->fd, buf, max);
                if (n != 0)
                        return n < 0 ? -errno : n;
                if (stat(f->log, &now) < 0 || fstat(f->fd, &mine) < 0 ||
                    now.st_ino != mine.st_ino || now.st_dev != mine.st_dev) {
                        close(f->fd);
                        f->fd = -1; /* rotated (or gone): the new file, from its start */
                        if (access(f->log, F_OK) < 0)
                                return 0;
                        continue;
                }
                return 0;
        }
}

ssize_t gv_console_follow_read(struct gv_console_follow *f, char *buf, size_t max, int stop_fd)
{
        if (f->pos < f->n_backlog) {
                size_t n = MIN(max, f->n_backlog - f->pos);
                memcpy(buf, f->backlog + f->pos, n);
                f->pos += n;
                return (ssize_t)n;
        }
        for (;;) {
                ssize_t n = follow_read_new(f, buf, max);
                if (n != 0 || f->done)
                        return n;
                if (!follow_live(f)) {
                        /* QEMU is gone, and the supervisor pumped its last bytes before it said
                         * so: read to the end of the log, then end. */
                        f->done = true;
                        continue;
                }
                struct pollfd pf[2] = { { .fd = stop_fd, .events = POLLIN },
                                        { .fd = f->inotify_fd, .events = POLLIN } };
                int k = poll(pf, f->inotify_fd >= 0 ? 2 : 1, FOLLOW_RECHECK_MS);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0 && (pf[0].revents & POLLIN))
                        return 0; /* the server is stopping */
                if (k > 0 && f->inotify_fd >= 0 && (pf[1].revents & POLLIN)) {
                        char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                        while (read(f->inotify_fd, ev, sizeof(ev)) > 0)
                                ;
                }
        }
}
