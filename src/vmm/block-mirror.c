/* SPDX-License-Identifier: MIT */
/*
 * block-mirror.c — disks copied over NBD between two QEMUs (block-mirror.h): the destination's
 * NBD server and exports, the source's NBD client nodes and mirror jobs, query-block-jobs
 * parsed strictly.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "vmm/block-mirror.h"

/* ---- the destination ---- */

int gv_nbd_listen(const char *host, int *ret_fd, uint16_t *ret_port, struct gv_error **err)
{
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        int r = getaddrinfo(host, "0", &hints, &res), saved = 0;

        if (r != 0)
                return gv_error_set(err, EINVAL, "Cannot listen for the disk copy on '%s': %s.",
                                    host, gai_strerror(r));
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                int one = 1;
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                        saved = errno;
                        continue;
                }
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 16) < 0 ||
                    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
                        saved = errno;
                        close(fd);
                        continue;
                }
                freeaddrinfo(res);
                *ret_port = ntohs(ss.ss_family == AF_INET6
                                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(res);
        if (saved == EADDRNOTAVAIL)
                return gv_error_set(err, EINVAL, "Cannot listen for the disk copy on '%s': this "
                                    "host has no such address.", host);
        return gv_error_set(err, saved ? saved : EINVAL, "Cannot listen for the disk copy on "
                            "'%s': %s.", host, strerror(saved ? saved : EINVAL));
}

/* One byte of JSON whitespace carrying `fd` (SCM_RIGHTS): QEMU's monitor keeps the fd for the
 * next getfd and its parser skips the space. */
static int send_fd(struct gv_qmp *q, int fd, int timeout_ms, struct gv_error **err)
{
        char byte = ' ';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u = { 0 };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        for (;;) {
                if (sendmsg(gv_qmp_fd(q), &m, MSG_NOSIGNAL) == 1)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd p = { .fd = gv_qmp_fd(q), .events = POLLOUT };
                        int pr = poll(&p, 1, timeout_ms);
                        if (pr > 0)
                                continue;
                        if (pr == 0)
                                errno = ETIMEDOUT;
                }
                return gv_error_set(err, errno, "Cannot pass the disk copy's socket to QEMU: "
                                    "%s.", strerror(errno));
        }
}

int gv_nbd_server_start(struct gv_qmp *q, int listen_fd, int timeout_ms, struct gv_error **err)
{
        _cleanup_json_ json_t *getfd = json_pack("{s:s}", "fdname", GV_NBD_FDNAME);
        _cleanup_json_ json_t *args = json_pack("{s:{s:s, s:{s:s}}}", "addr", "type", "fd",
                                                "data", "str", GV_NBD_FDNAME);
        int r = send_fd(q, listen_fd, timeout_ms, err);

        if (r >= 0)
                r = gv_qmp_execute(q, "getfd", getfd, timeout_ms, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot hand the disk copy's socket to QEMU");
        r = gv_qmp_execute(q, "nbd-server-start", args, timeout_ms, NULL, err);
        if (r < 0) {
                /* QEMU takes the fd out of its list only when it uses it. */
                (void)gv_qmp_execute(q, "closefd", getfd, timeout_ms, NULL, NULL);
                return gv_error_wrap(err, r, "Cannot start QEMU's NBD server");
        }
        return 0;
}

int gv_nbd_export(struct gv_qmp *q, unsigned index, const char *name, int timeout_ms,
                  struct gv_error **err)
{
        _cleanup_free_ char *id = xasprintf("gv-export%u", index);
        _cleanup_free_ char *node = xasprintf("disk%u", index);
        _cleanup_json_ json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "nbd", "id",
                                                id, "node-name", node, "name", name, "writable",
                                                1);
        int r = gv_qmp_execute(q, "block-export-add", args, timeout_ms, NULL, err);
        return r < 0 ? gv_error_wrap(err, r, "Cannot export disk '%s' over NBD", name) : 0;
}

int gv_nbd_server_stop(struct gv_qmp *q, int timeout_ms, struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_qmp_execute(q, "nbd-server-stop", NULL, timeout_ms, NULL, &e);

        /* QEMU 7.2: "NBD server not running". */
        if (r == -EREMOTEIO && strstr(gv_error_msg(e, r), "not running"))
                return 0;
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "Cannot stop QEMU's NBD server");
        }
        return 0;
}

/* ---- the source ---- */

#define BUF_MIN (64u * 1024u)          /* QEMU's default mirror granularity */
#define BUF_MAX (16u * 1024u * 1024u)  /* QEMU's default buf-size */

/* QEMU's words for a node or job that is not there (7.2): blockdev-del "Failed to find node
 * with node-name='...'", job-dismiss "Job not found". */
static bool is_gone(int r, const struct gv_error *e)
{
        const char *m = gv_error_msg(e, r);
        return r == -ENODEV || (r == -EREMOTEIO && (strstr(m, "Failed to find node") ||
                                                   strstr(m, "not found") ||
                                                   strstr(m, "No job with id")));
}

static int blockdev_del(struct gv_qmp *q, unsigned index, int timeout_ms, struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *node = xasprintf("gv-nbd%u", index);
        _cleanup_json_ json_t *args = json_pack("{s:s}", "node-name", node);
        int r = gv_qmp_execute(q, "blockdev-del", args, timeout_ms, NULL, &e);

        if (r < 0 && is_gone(r, e))
                return 0;
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "Cannot remove the NBD client node '%s'", node);
        }
        return 0;
}

int gv_mirror_start(struct gv_qmp *q, unsigned index, const char *host, uint16_t port,
                    const char *name, bool full, uint64_t speed, int timeout_ms,
                    struct gv_error **err)
{
        _cleanup_free_ char *node = xasprintf("gv-nbd%u", index);
        _cleanup_free_ char *job = xasprintf("gv-mirror%u", index);
        _cleanup_free_ char *disk = xasprintf("disk%u", index);
        _cleanup_free_ char *p = xasprintf("%u", port);
        _cleanup_json_ json_t *add = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s}", "driver",
                                               "nbd", "node-name", node, "server", "type",
                                               "inet", "host", host, "port", p, "export", name);
        /* QEMU 7.2's blockdev-mirror has no "target-is-zero": with sync full it zeroes the
         * NBD target's unallocated ranges itself (write-zeroes, cheap over NBD). */
        _cleanup_json_ json_t *mirror = json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:b}", "job-id", job, "device", disk, "target", node,
                "sync", full ? "full" : "top", "copy-mode", "write-blocking", "auto-dismiss", 0);
        int r;

        if (speed) {
                /* QEMU copies up to buf-size (16 MiB by default) at once and then sleeps off
                 * the cap: at 1 MiB/s that is 16 s without a look at the target, so a
                 * destination that died goes unnoticed that long. A quarter second's worth
                 * keeps the job looking. */
                uint64_t buf = MIN(MAX(speed / 4, BUF_MIN), BUF_MAX) / BUF_MIN * BUF_MIN;
                json_object_set_new(mirror, "speed",
                                    json_integer((json_int_t)MIN(speed, (uint64_t)INT64_MAX)));
                json_object_set_new(mirror, "buf-size", json_integer((json_int_t)buf));
        }
        r = gv_qmp_execute(q, "blockdev-add", add, timeout_ms, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot reach the destination's export of disk '%s' "
                                     "at '%s' port %u", name, host, port);
        r = gv_qmp_execute(q, "blockdev-mirror", mirror, timeout_ms, NULL, err);
        if (r < 0) {
                (void)blockdev_del(q, index, timeout_ms, NULL);
                return gv_error_wrap(err, r, "Cannot start copying disk '%s'", name);
        }
        return 0;
}

int gv_mirror_cancel(struct gv_qmp *q, unsigned index, bool force, int timeout_ms,
                     struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *job = xasprintf("gv-mirror%u", index);
        _cleanup_json_ json_t *args = json_pack("{s:s, s:b}", "device", job, "force", force);
        int r = gv_qmp_execute(q, "block-job-cancel", args, timeout_ms, NULL, &e);

        if (r < 0 && is_gone(r, e))
                return gv_error_set(err, ENODEV, "There is no block job '%s'.", job);
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "Cannot cancel block job '%s'", job);
        }
        return 0;
}

int gv_mirror_remove(struct gv_qmp *q, unsigned index, int timeout_ms, struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *job = xasprintf("gv-mirror%u", index);
        _cleanup_json_ json_t *args = json_pack("{s:s}", "id", job);
        int r = gv_qmp_execute(q, "job-dismiss", args, timeout_ms, NULL, &e);

        if (r < 0 && !is_gone(r, e)) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "Cannot dismiss block job '%s'", job);
        }
        return blockdev_del(q, index, timeout_ms, err);
}

/* ---- query-block-jobs ---- */

void gv_block_jobs_free(struct gv_block_job *jobs, size_t n)
{
        for (size_t i = 0; jobs && i < n; i++) {
                free(jobs[i].id);
                free(jobs[i].type);
                free(jobs[i].status);
                free(jobs[i].error);
        }
        free(jobs);
}

static int job_string(const json_t *o, size_t i, const char *key, bool required, char **ret,
                      struct gv_error **err)
{
        json_t *v = json_object_get(o, key);
        if (!v && !required)
                return 0;
        if (!json_is_string(v))
                return gv_error_set(err, EPROTO, "QEMU's query-block-jobs has a '[%zu].%s' that "
                                    "is %s, not a string.", i, key, v ? "another type" : "missing");
        *ret = xstrdup(json_string_value(v));
        return 0;
}

static int job_u64(const json_t *o, size_t i, const char *key, uint64_t *ret,
                   struct gv_error **err)
{
        json_t *v = json_object_get(o, key);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return gv_error_set(err, EPROTO, "QEMU's query-block-jobs has a '[%zu].%s' that "
                                    "is not a non-negative integer.", i, key);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

int gv_block_jobs_from_json(const json_t *j, struct gv_block_job **ret, size_t *ret_n,
                            struct gv_error **err)
{
        struct gv_block_job *jobs = NULL;
        size_t n = 0, i;
        json_t *o;
        int r = 0;

        if (!json_is_array(j))
                return gv_error_set(err, EPROTO, "QEMU's query-block-jobs answer is not a list.");
        jobs = xcalloc(json_array_size(j) + 1, sizeof(*jobs));
        json_array_foreach(j, i, o) {
                struct gv_block_job *b = &jobs[n++];
                json_t *ready = json_object_get(o, "ready");
                if (!json_is_object(o)) {
                        r = gv_error_set(err, EPROTO, "QEMU's query-block-jobs has a '[%zu]' "
                                         "that is not an object.", i);
                        break;
                }
                r = job_string(o, i, "device", true, &b->id, err);
                if (r >= 0)
                        r = job_string(o, i, "type", true, &b->type, err);
                if (r >= 0)
                        r = job_string(o, i, "status", true, &b->status, err);
                if (r >= 0)
                        r = job_string(o, i, "error", false, &b->error, err);
                if (r >= 0)
                        r = job_u64(o, i, "len", &b->len, err);
                if (r >= 0)
                        r = job_u64(o, i, "offset", &b->offset, err);
                if (r >= 0 && !json_is_boolean(ready))
                        r = gv_error_set(err, EPROTO, "QEMU's query-block-jobs has a "
                                         "'[%zu].ready' that is not a boolean.", i);
                if (r < 0)
                        break;
                b->ready = json_is_true(ready);
        }
        if (r < 0) {
                gv_block_jobs_free(jobs, n);
                return r;
        }
        *ret = jobs;
        *ret_n = n;
        return 0;
}

int gv_block_jobs_query(struct gv_qmp *q, int timeout_ms, struct gv_block_job **ret,
                        size_t *ret_n, struct gv_error **err)
{
        _cleanup_json_ json_t *j = NULL;
        int r = gv_qmp_execute(q, "query-block-jobs", NULL, timeout_ms, &j, err);
        if (r < 0)
                return r;
        return gv_block_jobs_from_json(j, ret, ret_n, err);
}

bool gv_mirror_job_index(const char *id, unsigned *ret_index)
{
        uint32_t v;
        if (!id || strncmp(id, "gv-mirror", 9) != 0 || gv_parse_u32(id + 9, 10, &v) < 0 ||
            v > 4096)
                return false;
        if (ret_index)
                *ret_index = v;
        return true;
}

bool gv_block_job_is_over(const struct gv_block_job *j)
{
        return j->status && (strcmp(j->status, "concluded") == 0 ||
                             strcmp(j->status, "null") == 0);
}
