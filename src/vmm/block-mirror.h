/* SPDX-License-Identifier: MIT */
/*
 * block-mirror.h — copying a running VM's disks to another QEMU over NBD, the storage half of a
 * live migration without shared storage (typed wrappers on qmp.h), the way libvirt does it:
 *
 *   destination  nbd-server-start on a listening socket, block-export-add (writable) for each
 *                disk the source must fill, while QEMU waits with -incoming defer
 *   source       blockdev-add {"driver": "nbd", ...} for each disk (a client of that export),
 *                blockdev-mirror from the disk's node to it; once every job is ready, the RAM
 *                migration runs; with the guest paused before the switch-over,
 *                block-job-cancel on a READY mirror finishes it with the copy consistent
 *                (QEMU's "cancel" of a ready mirror completes without pivoting), job-dismiss,
 *                blockdev-del
 *
 * The QMP facts, as QEMU 7.2 speaks them (checked against qemu-system-x86_64 7.2.22):
 *   getfd            {"fdname": NAME}   takes the fd sent with SCM_RIGHTS on the monitor socket
 *   nbd-server-start {"addr": {"type": "fd", "data": {"str": NAME}}}  listens on that socket
 *   block-export-add {"type": "nbd", "id", "node-name", "name", "writable": true} — an export
 *                    of a node of a QEMU in -incoming activates it early, as QEMU intends for
 *                    non-shared storage migration
 *   nbd-server-stop  closes the server and every NBD export
 *   blockdev-add     {"driver": "nbd", "node-name", "server": {"type": "inet", "host", "port"},
 *                     "export"}
 *   blockdev-mirror  {"job-id", "device", "target", "sync": "full"|"top", "copy-mode":
 *                     "write-blocking", "auto-dismiss": false[, "speed": BYTES_PER_S,
 *                     "buf-size": BYTES]}
 *                    (no "target-is-zero" in 7.2)
 *   query-block-jobs [{"device": JOB-ID, "type": "mirror", "len", "offset", "ready", "status",
 *                      "error"?, ...}]  (status: QEMU's JobStatus: created, running, ready,
 *                      standby, waiting, pending, aborting, concluded, null, ...)
 *   block-job-cancel {"device": JOB-ID[, "force": true]}  (force: a ready mirror is abandoned
 *                     instead of completed)
 *   job-dismiss      {"id": JOB-ID}  (a concluded job; auto-dismiss off keeps it, and its error,
 *                     until then)
 *   blockdev-del     {"node-name"}
 *
 * Names: the disk at index I of a VM's definition is QEMU node "diskI" (qemu-cmd.c); its mirror
 * job is "gv-mirrorI", its NBD client node "gv-nbdI", its export "gv-exportI" named as the
 * caller says (the disk's name).
 *
 * copy-mode write-blocking: once a mirror is ready, each guest write reaches both disks before
 * the guest sees it complete, so the mirror stays converged however fast the guest writes, and
 * finishing it with the guest paused copies next to nothing.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "vmm/qmp.h"

#define GV_NBD_FDNAME "gv-nbd"

/* A listening TCP socket on `host` (an IPv4 or IPv6 address without brackets, or a DNS name;
 * the first address it resolves to that binds), port 0: the kernel picks a free one, so no
 * other process can take the port between choosing and listening. *ret_fd is O_CLOEXEC;
 * *ret_port the port bound. */
int gv_nbd_listen(const char *host, int *ret_fd, uint16_t *ret_port, struct gv_error **err);
/* Hand `listen_fd` to QEMU (SCM_RIGHTS on the monitor socket, then getfd) and start its NBD
 * server on it. The caller keeps (and closes) its own copy of the fd. */
int gv_nbd_server_start(struct gv_qmp *q, int listen_fd, int timeout_ms, struct gv_error **err);
/* Export node "disk<index>" writable under `name`. */
int gv_nbd_export(struct gv_qmp *q, unsigned index, const char *name, int timeout_ms,
                  struct gv_error **err);
/* nbd-server-stop; a QEMU whose server does not run is fine (returns 0). */
int gv_nbd_server_stop(struct gv_qmp *q, int timeout_ms, struct gv_error **err);

/* The NBD client node "gv-nbd<index>" for export `name` at host:port, then the mirror job
 * "gv-mirror<index>" from node "disk<index>" to it: `full` copies the whole disk (an empty
 * data disk), otherwise only the top image's own data (an overlay: the base image is on both
 * hosts). `speed`: a cap in bytes per second (the
 * migration's bandwidth cap, as libvirt passes it on), 0 for none. On failure nothing of it is
 * left. */
int gv_mirror_start(struct gv_qmp *q, unsigned index, const char *host, uint16_t port,
                    const char *name, bool full, uint64_t speed, int timeout_ms,
                    struct gv_error **err);
/* block-job-cancel of "gv-mirror<index>": a ready job completes (the copy consistent), or with
 * `force` is abandoned. -ENODEV when there is no such job. */
int gv_mirror_cancel(struct gv_qmp *q, unsigned index, bool force, int timeout_ms,
                     struct gv_error **err);
/* job-dismiss of a concluded "gv-mirror<index>" and blockdev-del of "gv-nbd<index>"; what is
 * gone already is fine. Fails while the job still runs (cancel it and wait first). */
int gv_mirror_remove(struct gv_qmp *q, unsigned index, int timeout_ms, struct gv_error **err);

struct gv_block_job {
        char *id;       /* "device" in QEMU's answer: the job id */
        char *type;     /* "mirror", "stream", ... */
        char *status;   /* QEMU's JobStatus */
        bool ready;
        uint64_t len, offset; /* bytes: the work known so far and done so far */
        char *error;    /* why it failed, or NULL */
};
void gv_block_jobs_free(struct gv_block_job *jobs, size_t n);
/* query-block-jobs parsed strictly (-EPROTO naming the member). */
int gv_block_jobs_from_json(const json_t *j, struct gv_block_job **ret, size_t *ret_n,
                            struct gv_error **err);
int gv_block_jobs_query(struct gv_qmp *q, int timeout_ms, struct gv_block_job **ret,
                        size_t *ret_n, struct gv_error **err);
/* Is `id` one of ours ("gv-mirror<index>")? */
bool gv_mirror_job_index(const char *id, unsigned *ret_index);
/* A job that will not move any more: concluded or null. */
bool gv_block_job_is_over(const struct gv_block_job *j);
