/* SPDX-License-Identifier: MIT */
/*
 * migrate.c — live migration in the agent (docs/agent.md, "Migration"): the agent's half of
 * the protocol the controller drives, after libvirt's (../shared/reference/reliability.md
 * §1.2: Prepare on the destination, Perform on the source, Finish, Confirm), with the source
 * authoritative until the end:
 *
 *   destination  POST .../incoming        define, GPU hardware, QEMU -incoming defer,
 *                                         migrate-incoming          phase incoming
 *   source       POST .../migrate         capabilities (pre-copy), downtime limit, bandwidth
 *                                         cap, migrate              phase migrating
 *   source       GET  .../migration       query-migrate
 *                (the supervisor follows it too: completed → migrated, QEMU paused in
 *                 postmigrate; failed or cancelled → running; on the destination the state
 *                 in → running: QEMU autostarts, it was not given -S)
 *   source       POST .../release         quit QEMU, release hardware, forget the VM
 *   on failure   POST .../migrate-cancel  (source) the guest keeps running here
 *                POST .../abort-incoming  (destination) kill QEMU, release, forget
 *
 * Why the destination autostarts: the switch-over then costs no round trip through the
 * controller, and the source cannot resume by itself: it stays paused in postmigrate until it
 * is released, or resumed by migrate-cancel when the controller decides the destination did
 * not take over (it then aborts the destination). Exactly one copy runs either way.
 *
 * Disks move too (block-mirror.h): the disks made in the agent's state directory (overlays on
 * an image, empty data disks; not read-only ones, which never change) are copied over NBD. The
 * destination makes each anew (an overlay on the same image path, which must be there), and
 * its QEMU exports them; the source mirrors each to the export, starts the RAM transfer once
 * every mirror is ready, and with pause-before-switchover finishes the mirrors while the guest
 * is paused, before the destination gets the last of the state and runs the guest:
 *
 *   destination  POST .../incoming        ... + NBD server, an export per disk  → "nbd"
 *   source       POST .../migrate         + "nbd": blockdev-add nbd, blockdev-mirror per
 *                                         disk                      status "mirroring"
 *   source       (tick, refresh)          all ready → migrate; pre-switchover → cancel the
 *                                         ready mirrors (a consistent copy), job-dismiss,
 *                                         blockdev-del, migrate-continue
 *   destination  (tick, refresh)          completed → nbd-server-stop
 *
 * The switch-over waits for the source's next look (GV_AGENT_MIGRATION_CHECK_MS at most),
 * which adds to the downtime of a VM whose disks are copied. A disk given by "path" is used as
 * is on both hosts: a writable one must be under a --shared-storage directory, or the
 * destination would write to another file of that name. Each agent's state directory is its
 * own, so its disks are copied even when it lies on shared storage.
 *
 * Refused: pass-through GPUs (plain vfio-pci has no migration support for a whole device,
 * passthrough.md §7: move such a VM offline), post-copy (not with VFIO devices), and writable
 * "path" disks outside the shared-storage directories.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/console.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"
#include "vmm/block-mirror.h"
#include "vmm/migrate.h"
#include "vmm/qmp.h"

#define QMP_CONNECT_MS 5000
#define QMP_COMMAND_MS 5000
#define TICK_QMP_MS 1000
#define QUIT_WAIT_MS 5000
#define CANCEL_WAIT_MS 10000
#define BANDWIDTH_MAX_MIB 1048576u               /* 1 TiB/s */
#define NO_CAP_BYTES ((uint64_t)BANDWIDTH_MAX_MIB << 20)
#define MIRROR_FINISH_MS 10000   /* the guest is paused meanwhile; write-blocking mirrors are
                                  * converged, so this is a bound, not an expectation */
#define MIRROR_TEARDOWN_MS 5000

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static bool qemu_alive(const struct gv_agent_vm *vm)
{
        return vm->proc.pidfd >= 0 && gv_proc_alive(&vm->proc);
}

static int vm_qmp(const struct gv_agent_vm *vm, int timeout_ms, struct gv_qmp **ret,
                  struct gv_error **err)
{
        _cleanup_free_ char *path = gv_path_join(vm->run_dir, "qmp.sock");
        return gv_qmp_connect(path, timeout_ms, ret, err);
}

/* ---- input ---- */

/* body: an object whose members are all in `allowed` (NULL-terminated). */
static int check_members(const json_t *body, const char *what, const char *const *allowed,
                         struct gv_error **err)
{
        const char *k;
        json_t *v;

        if (!json_is_object(body))
                return gv_error_set(err, EINVAL, "The body of %s must be a JSON object.", what);
        json_object_foreach((json_t *)body, k, v) {
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        ok |= strcmp(*a, k) == 0;
                if (!ok && !allowed[0])
                        return gv_error_set(err, EINVAL, "%s takes no parameters; '%s' is not "
                                            "one.", what, k);
                if (!ok) {
                        _cleanup_free_ char *l = strv_join((char **)allowed, ", ");
                        return gv_error_set(err, EINVAL, "%s takes %s; '%s' is not one of them.",
                                            what, l, k);
                }
        }
        return 0;
}

/* ---- disks ---- */

/* Copied by a live migration: made in the state directory, and writable (a read-only one is
 * the same fresh image on both hosts). */
static bool disk_copied(const struct gv_vm_disk *d)
{
        return d->kind != GV_VM_DISK_IMAGE && !d->readonly;
}

static size_t disks_copied(const struct gv_vm_config *c)
{
        size_t n = 0;
        for (size_t i = 0; i < c->n_disks; i++)
                n += disk_copied(&c->disks[i]);
        return n;
}

static json_t *disks_copied_json(const struct gv_vm_config *c)
{
        json_t *l = json_array();
        for (size_t i = 0; i < c->n_disks; i++)
                if (disk_copied(&c->disks[i]))
                        json_array_append_new(l, json_string(c->disks[i].name));
        return l;
}

/* `path` is `dir` or below it (both canonical). */
static bool path_is_under(const char *path, const char *dir)
{
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        if (n == 1 && dir[0] == '/')
                return true;
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool on_shared_storage(const struct gv_agent *a, const char *file)
{
        _cleanup_free_ char *real = realpath(file, NULL);
        for (const char *const *d = a->cfg.shared_storage; d && *d; d++) {
                _cleanup_free_ char *rd = realpath(*d, NULL);
                if (path_is_under(real ? real : file, rd ? rd : *d))
                        return true;
        }
        return false;
}

static char *shared_list(const struct gv_agent *a)
{
        if (!a->cfg.shared_storage || !a->cfg.shared_storage[0])
                return xstrdup("none is declared");
        _cleanup_free_ char *l = strv_join((char **)a->cfg.shared_storage, "', '");
        return xasprintf("'%s'", l);
}

/* Can this VM live-migrate? Its pass-through GPUs (recorded hardware, else the definition's
 * requests) and disks say. */
static int check_migratable(const struct gv_agent *a, const struct gv_vm_config *c,
                            const struct gv_hw *hw, size_t n_hw, struct gv_error **err)
{
        for (size_t i = 0; i < n_hw; i++)
                if (hw[i].kind == GV_HW_PASSTHROUGH)
                        return gv_error_set(err, EBUSY, "VM '%s' holds GPU %s by pass-through, "
                                            "which cannot live-migrate: plain vfio-pci has no "
                                            "migration support for a whole device. Move it "
                                            "offline: stop it here, define and start it on the "
                                            "other host.", c->name, hw[i].gpu);
        for (size_t i = 0; i < c->n_gpus; i++)
                if (c->gpus[i].mode == GV_VM_GPU_PASSTHROUGH)
                        return gv_error_set(err, EBUSY, "VM '%s' asks for GPU %s%s by "
                                            "pass-through (gpus[%zu]), which cannot live-migrate: "
                                            "plain vfio-pci has no migration support for a whole "
                                            "device. Move it offline: stop it, define and start "
                                            "it on the other host.", c->name,
                                            c->gpus[i].gpu ? "'" : "",
                                            c->gpus[i].gpu ? c->gpus[i].gpu : "", i);
        for (size_t i = 0; i < c->n_disks; i++) {
                const struct gv_vm_disk *d = &c->disks[i];
                if (d->kind != GV_VM_DISK_IMAGE || d->readonly || on_shared_storage(a, d->path))
                        continue;
                _cleanup_free_ char *dirs = shared_list(a);
                return gv_error_set(err, EBUSY, "VM '%s' has disk '%s' ('%s'), which is neither "
                                    "made in the agent's state directory (those are copied) nor "
                                    "under a shared-storage directory (%s): the destination "
                                    "would write to another file of that name. Declare the "
                                    "directory both hosts see with --shared-storage on both "
                                    "agents, or move the VM offline.", c->name, d->name,
                                    d->path, dirs);
        }
        return 0;
}

/* Every image an overlay is based on is here (images are registered by path: each host needs
 * the file at the same path). */
static int check_images(const struct gv_vm_config *c, struct gv_error **err)
{
        for (size_t i = 0; i < c->n_disks; i++) {
                const struct gv_vm_disk *d = &c->disks[i];
                char host[256] = "this host";
                if (d->kind != GV_VM_DISK_OVERLAY || gv_file_exists(d->base) > 0)
                        continue;
                (void)gethostname(host, sizeof(host) - 1);
                return gv_error_set(err, EBUSY, "VM '%s': disk '%s' is an overlay on image "
                                    "'%s', which is not on host '%s': copy the image there, to "
                                    "the same path, and try again.", c->name, d->name, d->base,
                                    host);
        }
        return 0;
}

/* Source: abandon the mirror jobs and their NBD client nodes (a cancel with force, then
 * job-dismiss and blockdev-del); best effort, the source's disks are untouched either way. */
static void mirrors_teardown(struct gv_agent_vm *vm, struct gv_qmp *q)
{
        const struct gv_vm_config *c = vm->config;
        int64_t deadline = now_ms() + MIRROR_TEARDOWN_MS;

        for (size_t i = 0; i < c->n_disks; i++)
                if (disk_copied(&c->disks[i]))
                        (void)gv_mirror_cancel(q, (unsigned)i, true, QMP_COMMAND_MS, NULL);
        for (;;) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                bool busy = false;
                if (gv_block_jobs_query(q, QMP_COMMAND_MS, &jobs, &n, NULL) < 0)
                        break;
                for (size_t k = 0; k < n; k++)
                        busy |= gv_mirror_job_index(jobs[k].id, NULL) &&
                                !gv_block_job_is_over(&jobs[k]);
                gv_block_jobs_free(jobs, n);
                if (!busy || now_ms() > deadline)
                        break;
                sleep_ms(10);
        }
        for (size_t i = 0; i < c->n_disks; i++)
                if (disk_copied(&c->disks[i]))
                        (void)gv_mirror_remove(q, (unsigned)i, QMP_COMMAND_MS, NULL);
        vm->n_mirrors = 0;
        vm->mirroring = false;
}

/* Source, in pre-switchover (the guest paused): complete every ready mirror (block-job-cancel
 * without force keeps the target consistent), wait until each concluded without an error,
 * remove jobs and nodes. *ret_why on failure. */
static int mirrors_finish(struct gv_agent_vm *vm, struct gv_qmp *q, char **ret_why)
{
        const struct gv_vm_config *c = vm->config;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int64_t deadline = now_ms() + MIRROR_FINISH_MS;
        int r = 0;

        for (size_t i = 0; i < c->n_disks && r >= 0; i++)
                if (disk_copied(&c->disks[i]))
                        r = gv_mirror_cancel(q, (unsigned)i, false, QMP_COMMAND_MS, &e);
        while (r >= 0) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0, over = 0;
                r = gv_block_jobs_query(q, QMP_COMMAND_MS, &jobs, &n, &e);
                for (size_t k = 0; r >= 0 && k < n; k++) {
                        unsigned idx;
                        if (!gv_mirror_job_index(jobs[k].id, &idx) || idx >= c->n_disks)
                                continue;
                        if (jobs[k].error) {
                                *ret_why = xasprintf("copying disk '%s' failed: %s",
                                                     c->disks[idx].name, jobs[k].error);
                                r = -EIO;
                        }
                        over += gv_block_job_is_over(&jobs[k]);
                }
                gv_block_jobs_free(jobs, n);
                if (r < 0 || over == disks_copied(c))
                        break;
                if (now_ms() > deadline) {
                        *ret_why = xasprintf("the disks' mirrors did not finish within %d ms of "
                                             "the guest pausing", MIRROR_FINISH_MS);
                        r = -ETIMEDOUT;
                        break;
                }
                sleep_ms(2);
        }
        for (size_t i = 0; i < c->n_disks && r >= 0; i++)
                if (disk_copied(&c->disks[i]))
                        r = gv_mirror_remove(q, (unsigned)i, QMP_COMMAND_MS, &e);
        if (r < 0 && !*ret_why)
                *ret_why = xstrdup(gv_error_msg(e, r));
        if (r >= 0) {
                vm->n_mirrors = 0;
                vm->mirroring = false;
        }
        return r;
}

static void info_synth(struct gv_migrate_info *i, enum gv_migrate_status st, const char *name,
                       const char *error)
{
        gv_migrate_info_done(i);
        *i = (struct gv_migrate_info){ .status = st, .status_name = xstrdup(name),
                                       .setup_time_ms = -1, .total_time_ms = -1,
                                       .expected_downtime_ms = -1, .downtime_ms = -1,
                                       .error_desc = error ? xstrdup(error) : NULL };
}

/* Source: the move failed because of its disks (or was cancelled while they copied): the RAM
 * transfer (if it started) cancelled, the mirrors torn down, the guest running here. *i gets
 * the outcome. */
static void abandon(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_qmp *q,
                    bool cancelled, const char *why, struct gv_migrate_info *i)
{
        vm->disk_copy_ended = vm->mirroring;
        vm->disk_copy_cancelled = cancelled;
        if (!vm->mirroring) {
                int64_t deadline = now_ms() + CANCEL_WAIT_MS;
                (void)gv_migrate_cancel(q, QMP_COMMAND_MS, NULL);
                for (;;) {
                        struct gv_migrate_info m = { 0 };
                        bool done = gv_migrate_query(q, QMP_COMMAND_MS, &m, NULL) < 0 ||
                                    gv_migrate_status_is_final(m.status) ||
                                    m.status == GV_MIGRATE_NONE;
                        gv_migrate_info_done(&m);
                        if (done || now_ms() > deadline)
                                break;
                        sleep_ms(10);
                }
        }
        mirrors_teardown(vm, q);
        gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
        free(vm->last_error);
        vm->last_error = xasprintf("The migration to '%s' %s%s%s",
                                   vm->migration_uri ? vm->migration_uri : "?",
                                   cancelled ? "was cancelled" : "failed", why ? ": " : ".",
                                   why ? why : "");
        (void)gv_agent_vm_save(a, vm, NULL);
        info_synth(i, cancelled ? GV_MIGRATE_CANCELLED : GV_MIGRATE_FAILED,
                   cancelled ? "cancelled" : "failed", why);
}

/* Source, each look at a migration that copies disks (before apply()): follow the mirrors,
 * start the RAM transfer once all are ready, finish them at pre-switchover, tear them down
 * when the transfer failed. *i is QEMU's query-migrate; while the mirrors copy it is replaced
 * by status "mirroring" (QEMU's answer then is an earlier migration's, or none). */
static void disks_step(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_qmp *q,
                       struct gv_migrate_info *i)
{
        const struct gv_vm_config *c = vm->config;
        struct gv_block_job *jobs = NULL;
        size_t n = 0, ready = 0, found = 0;
        _cleanup_free_ char *why = NULL;
        uint64_t total = 0, done = 0;

        if (!vm->mirroring) {
                if (gv_migrate_status_is_final(i->status) || i->status == GV_MIGRATE_NONE) {
                        /* Completed: finished at pre-switchover already. Failed or
                         * cancelled: nothing more to copy to. */
                        if (i->status != GV_MIGRATE_COMPLETED)
                                mirrors_teardown(vm, q);
                        vm->n_mirrors = 0;
                        return;
                }
        }
        if (gv_block_jobs_query(q, QMP_COMMAND_MS, &jobs, &n, NULL) < 0) {
                if (vm->mirroring)
                        info_synth(i, _GV_MIGRATE_STATUS_INVALID, "mirroring", NULL);
                return; /* asked again at the next look */
        }
        for (size_t k = 0; k < n; k++) {
                unsigned idx;
                if (!gv_mirror_job_index(jobs[k].id, &idx) || idx >= c->n_disks ||
                    !disk_copied(&c->disks[idx]))
                        continue;
                found++;
                total += jobs[k].len;
                done += jobs[k].offset;
                ready += jobs[k].ready && !gv_block_job_is_over(&jobs[k]);
                if (!why && (jobs[k].error || gv_block_job_is_over(&jobs[k])))
                        why = xasprintf("copying disk '%s' failed: %s", c->disks[idx].name,
                                        jobs[k].error ? jobs[k].error
                                                      : "its mirror job ended");
        }
        gv_block_jobs_free(jobs, n);
        if (found) {
                vm->disk_total = total;
                vm->disk_transferred = done;
        }
        if (!why && found < disks_copied(c))
                why = xstrdup("a disk's mirror job is gone from QEMU");
        if (why) {
                abandon(a, vm, q, false, why, i);
                return;
        }
        if (vm->mirroring) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                if (ready < found) {
                        info_synth(i, _GV_MIGRATE_STATUS_INVALID, "mirroring", NULL);
                        return;
                }
                /* Every disk is converged: the RAM transfer now (its parameters were set by
                 * the migrate call; QEMU keeps them). */
                int r = gv_migrate_start(q, vm->migration_uri, QMP_COMMAND_MS, &e);
                if (r < 0) {
                        abandon(a, vm, q, false, gv_error_msg(e, r), i);
                        return;
                }
                vm->mirroring = false;
                gv_migrate_info_done(i);
                if (gv_migrate_query(q, QMP_COMMAND_MS, i, NULL) < 0)
                        info_synth(i, GV_MIGRATE_SETUP, "setup", NULL);
                return;
        }
        if (i->status == GV_MIGRATE_PRE_SWITCHOVER) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = mirrors_finish(vm, q, &why);
                if (r >= 0)
                        r = gv_migrate_continue(q, QMP_COMMAND_MS, &e);
                if (r < 0) {
                        if (!why)
                                why = xstrdup(gv_error_msg(e, r));
                        abandon(a, vm, q, false, why, i);
                        return;
                }
                gv_migrate_info_done(i);
                if (gv_migrate_query(q, QMP_COMMAND_MS, i, NULL) < 0)
                        info_synth(i, GV_MIGRATE_DEVICE, "device", NULL);
        }
}

/* ---- progress ---- */

static bool is_destination(const struct gv_agent_vm *vm)
{
        return vm->phase == GV_VM_INCOMING || vm->incoming;
}

static json_t *progress_json(const struct gv_agent_vm *vm, const struct gv_migrate_info *i,
                             const struct gv_migrate_params *p)
{
        json_t *o = gv_migrate_info_to_json(i);
        json_object_set_new(o, "name", json_string(vm->config->name));
        json_object_set_new(o, "phase", json_string(gv_vm_phase_to_string(vm->phase)));
        json_object_set_new(o, "role", json_string(is_destination(vm) ? "destination"
                                                                      : "source"));
        json_object_set_new(o, "uri", vm->migration_uri ? json_string(vm->migration_uri)
                                                        : json_null());
        json_object_set_new(o, "downtime_limit_ms",
                            p ? json_integer(p->downtime_limit_ms) : json_null());
        json_object_set_new(o, "max_bandwidth_mib",
                            p && p->max_bandwidth < NO_CAP_BYTES
                                    ? json_integer((json_int_t)(p->max_bandwidth >> 20))
                                    : json_null());
        /* The disks copied with it (source): bytes of the mirrors, as of the last look. */
        bool disks = !is_destination(vm) && disks_copied(vm->config) &&
                     (vm->n_mirrors || vm->disk_total);
        json_object_set_new(o, "disk_total",
                            disks ? json_integer((json_int_t)vm->disk_total) : json_null());
        json_object_set_new(o, "disk_transferred",
                            disks ? json_integer((json_int_t)vm->disk_transferred)
                                  : json_null());
        if (is_destination(vm))
                json_object_set_new(o, "nbd", vm->nbd_address[0]
                                                      ? json_string(vm->nbd_address)
                                                      : json_null());
        return o;
}

/* What QEMU says about the migration moves the VM's phase on. */
static void apply(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_qmp *q,
                  const struct gv_migrate_info *i)
{
        if (vm->phase == GV_VM_MIGRATING) {
                if (i->status == GV_MIGRATE_COMPLETED) {
                        /* QEMU is paused in postmigrate here; the VM runs on the destination. */
                        gv_agent_vm_set_phase(vm, GV_VM_MIGRATED);
                        vm->want_running = false;
                } else if (i->status == GV_MIGRATE_FAILED || i->status == GV_MIGRATE_CANCELLED ||
                           i->status == GV_MIGRATE_NONE) {
                        /* Pre-copy failed or cancelled: the guest never stopped running here. */
                        gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
                        free(vm->last_error);
                        vm->last_error = xasprintf("The migration to '%s' %s%s%s",
                                                   vm->migration_uri ? vm->migration_uri : "?",
                                                   i->status == GV_MIGRATE_CANCELLED
                                                           ? "was cancelled"
                                                           : "failed",
                                                   i->error_desc ? ": " : ".",
                                                   i->error_desc ? i->error_desc : "");
                } else {
                        return;
                }
                (void)gv_agent_vm_save(a, vm, NULL);
                return;
        }
        if (vm->phase == GV_VM_INCOMING && i->status == GV_MIGRATE_COMPLETED) {
                _cleanup_free_ char *st = NULL;
                /* The state is in and QEMU starts the guest by itself (no -S). A failed
                 * incoming migration ends QEMU, which the supervisor's pidfd reports. */
                if (gv_qmp_query_status(q, TICK_QMP_MS, &st, NULL) < 0 ||
                    strcmp(st, "running") != 0)
                        return;
                /* The source finished its mirrors before the switch-over: nothing writes to
                 * the exports any more. (QEMU logs a permission conflict between the exports
                 * and the guest's disks as it activated them: the exports shared write access
                 * until now, and the guest's disks take their usual exclusive access again at
                 * their next activation.) */
                if (disks_copied(vm->config))
                        (void)gv_nbd_server_stop(q, TICK_QMP_MS, NULL);
                vm->nbd_address[0] = '\0';
                gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
                vm->started_at = (int64_t)time(NULL);
                (void)gv_agent_console_attach(vm);
                (void)gv_agent_vm_save(a, vm, NULL);
        }
}

/* Ask QEMU, move the phase on; *ret (may be NULL) gets the answer. */
static int refresh(struct gv_agent *a, struct gv_agent_vm *vm, int timeout_ms,
                   struct gv_migrate_info *ret, struct gv_migrate_params *ret_params,
                   struct gv_error **err)
{
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        int r = vm_qmp(vm, timeout_ms, &q, err);

        if (r >= 0)
                r = gv_migrate_query(q, timeout_ms, &i, err);
        if (r >= 0 && ret_params)
                r = gv_migrate_get_params(q, timeout_ms, ret_params, err);
        if (r < 0)
                return gv_error_wrap(err, r, "VM '%s': cannot ask QEMU about the migration",
                                     vm->config->name);
        if (vm->phase == GV_VM_MIGRATING && vm->n_mirrors)
                disks_step(a, vm, q, &i);
        apply(a, vm, q, &i);
        if (ret) {
                *ret = i;
                i = (struct gv_migrate_info){ 0 };
        }
        return 0;
}

void gv_agent_migration_tick(struct gv_agent *a, struct gv_agent_vm *vm)
{
        int64_t now = now_ms();

        if (now < vm->migration_check_ms || !qemu_alive(vm))
                return;
        vm->migration_check_ms = now + GV_AGENT_MIGRATION_CHECK_MS;
        (void)refresh(a, vm, TICK_QMP_MS, NULL, NULL, NULL);
}

/* ---- ending QEMU ---- */

/* quit over QMP (then SIGKILL), or SIGKILL at once; the exit is expected. */
static void end_qemu(struct gv_agent *a, struct gv_agent_vm *vm, bool quit)
{
        int status = -1, r = 0;

        if (qemu_alive(vm)) {
                if (quit) {
                        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                        vm->last_stop = GV_VM_STOP_QUIT;
                        if (vm_qmp(vm, 2000, &q, NULL) >= 0) {
                                int qr = gv_qmp_execute(q, "quit", NULL, QMP_COMMAND_MS, NULL,
                                                        NULL);
                                if (qr >= 0 || qr == -ECONNRESET)
                                        r = gv_proc_wait(&vm->proc, QUIT_WAIT_MS, &status, NULL);
                        }
                }
                if (r <= 0) {
                        vm->last_stop = GV_VM_STOP_KILL;
                        (void)gv_proc_signal(&vm->proc, SIGKILL, NULL);
                        (void)gv_proc_wait(&vm->proc, QUIT_WAIT_MS, &status, NULL);
                }
        } else if (vm->proc.pidfd >= 0) {
                (void)gv_proc_wait(&vm->proc, 0, &status, NULL);
        }
        gv_agent_vm_exited(a, vm, true, status);
}

/* ---- adoption after a restart ---- */

void gv_agent_migration_adopt(struct gv_agent *a, struct gv_agent_vm *vm, bool alive)
{
        if (vm->phase == GV_VM_INCOMING) {
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
                /* Complete before the restart: the VM runs here now. */
                if (alive && vm_qmp(vm, QMP_CONNECT_MS, &q, NULL) >= 0 &&
                    gv_migrate_query(q, QMP_COMMAND_MS, &i, NULL) >= 0) {
                        apply(a, vm, q, &i);
                        if (vm->phase == GV_VM_RUNNING)
                                return;
                }
                /* Not complete: the source still runs, so this half-filled copy is worth
                 * nothing; roll it back (abort-incoming forgets the VM). */
                end_qemu(a, vm, false);
                free(vm->last_error);
                vm->last_error = xstrdup("The agent restarted during this incoming migration: "
                                         "its QEMU was killed and its hardware released (the "
                                         "source still runs it); abort-incoming removes it.");
                (void)gv_agent_vm_save(a, vm, NULL);
                return;
        }
        if (!alive) {
                /* A source whose QEMU is gone: migrating, it crashed; migrated, it no longer
                 * matters (gv_agent_vm_exited keeps the phase). */
                gv_agent_vm_exited(a, vm, false, -1);
                return;
        }
        if (vm->phase == GV_VM_MIGRATING) {
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                struct gv_block_job *jobs = NULL;
                size_t n = 0, ours = 0;
                (void)gv_agent_console_attach(vm);
                vm->migration_check_ms = 0; /* the supervisor follows it from here */
                /* Its disks' mirrors, found again: still copying if no RAM transfer runs (or
                 * ran to its end) yet. */
                if (vm_qmp(vm, QMP_CONNECT_MS, &q, NULL) >= 0 &&
                    gv_block_jobs_query(q, QMP_COMMAND_MS, &jobs, &n, NULL) >= 0) {
                        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
                        for (size_t k = 0; k < n; k++)
                                ours += gv_mirror_job_index(jobs[k].id, NULL);
                        gv_block_jobs_free(jobs, n);
                        if (ours && gv_migrate_query(q, QMP_COMMAND_MS, &i, NULL) >= 0) {
                                vm->n_mirrors = (unsigned)disks_copied(vm->config);
                                vm->mirroring = i.status != GV_MIGRATE_SETUP &&
                                                i.status != GV_MIGRATE_ACTIVE &&
                                                i.status != GV_MIGRATE_PRE_SWITCHOVER &&
                                                i.status != GV_MIGRATE_DEVICE &&
                                                i.status != GV_MIGRATE_CANCELLING &&
                                                i.status != GV_MIGRATE_COMPLETED;
                        }
                }
        }
}

/* Destination: QEMU's NBD server on the migration's listen host, an export per disk to fill;
 * vm->nbd_address the HOST:PORT the source mirrors to. */
static int nbd_serve(struct gv_agent_vm *vm, const char *host, struct gv_error **err)
{
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_close_ int fd = -1;
        uint16_t port = 0;
        int r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);

        if (r >= 0)
                r = gv_nbd_listen(host, &fd, &port, err);
        if (r >= 0)
                r = gv_nbd_server_start(q, fd, QMP_COMMAND_MS, err);
        for (size_t i = 0; r >= 0 && i < vm->config->n_disks; i++)
                if (disk_copied(&vm->config->disks[i]))
                        r = gv_nbd_export(q, (unsigned)i, vm->config->disks[i].name,
                                          QMP_COMMAND_MS, err);
        if (r < 0)
                return gv_error_wrap(err, r, "VM '%s': cannot receive its disks",
                                     vm->config->name);
        if (strchr(host, ':'))
                snprintf(vm->nbd_address, sizeof(vm->nbd_address), "[%s]:%u", host, port);
        else
                snprintf(vm->nbd_address, sizeof(vm->nbd_address), "%s:%u", host, port);
        return 0;
}

/* ---- the API ---- */

int gv_agent_vm_incoming(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                         struct gv_error **err)
{
        static const char *const keys[] = { "definition", "listen", NULL };
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = NULL;
        _cleanup_json_ json_t *st = NULL;
        _cleanup_free_ char *uri = NULL, *actual = NULL, *host = NULL;
        struct gv_agent_vm *vm;
        json_t *def = NULL;
        const char *listen = NULL;
        bool existed;
        int r = check_members(body, "An incoming migration", keys, err);

        if (r >= 0)
                r = gv_json_get_object(body, "definition", &def, err);
        if (r >= 0)
                r = gv_json_get_string(body, "listen", &listen, err);
        if (r >= 0)
                r = gv_migrate_address_parse(listen, true, &host, NULL, err);
        if (r >= 0)
                r = gv_vm_config_from_json(def, &c, err);
        if (r < 0)
                return r;
        if (strcmp(c->name, name) != 0)
                return gv_error_set(err, EINVAL, "The definition names VM '%s', not '%s'.",
                                    c->name, name);
        if (!json_is_string(json_object_get(def, "uuid")))
                return gv_error_set(err, EINVAL, "definition.uuid is required: the destination "
                                    "runs the VM under the source's UUID.");
        r = check_migratable(a, c, NULL, 0, err);
        if (r >= 0)
                r = check_images(c, err);
        if (r < 0)
                return r;
        uri = xasprintf("tcp:%s", listen);

        pthread_mutex_lock(&a->lock);
        existed = gv_agent_vm_find_locked(a, name) != NULL;
        pthread_mutex_unlock(&a->lock);
        r = gv_agent_vm_define(a, def, &st, err); /* the same definition again is fine */
        if (r < 0)
                return r;
        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (vm->phase == GV_VM_INCOMING && qemu_alive(vm) && vm->migration_uri) {
                actual = xstrdup(vm->migration_uri); /* asked again: the same answer */
        } else if (qemu_alive(vm)) {
                r = gv_error_set(err, EBUSY, "VM '%s' is %s here already; an incoming "
                                 "migration needs it defined and not running.", name,
                                 gv_vm_phase_to_string(vm->phase));
        } else {
                vm->nbd_address[0] = '\0';
                r = gv_agent_vm_start_incoming(a, vm, uri, &actual, err);
                if (r >= 0)
                        GV_FAILPOINT("agent.migrate.incoming");
                if (r >= 0 && disks_copied(vm->config)) {
                        r = nbd_serve(vm, host, err);
                        if (r < 0) {
                                /* As a failed start: no QEMU, no hardware, the reason kept. */
                                end_qemu(a, vm, false);
                                vm->incoming = false;
                                free(vm->last_error);
                                vm->last_error = xstrdup(gv_error_msg(err ? *err : NULL, r));
                                (void)gv_agent_vm_save(a, vm, NULL);
                        }
                }
                /* Nothing is left of a VM this call defined (the source still runs it), its
                 * disk files included. */
                if (r < 0 && !existed)
                        (void)gv_agent_vm_forget_locked(a, vm, NULL);
        }
        if (r >= 0) {
                *ret = json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", name, "uuid",
                                 vm->config->uuid, "uri", actual, "phase",
                                 gv_vm_phase_to_string(vm->phase), "disks",
                                 disks_copied_json(vm->config));
                /* Present iff the source has disks to copy here. */
                if (vm->nbd_address[0])
                        json_object_set_new(*ret, "nbd", json_string(vm->nbd_address));
        }
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_migrate(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                        struct gv_error **err)
{
        static const char *const keys[] = { "uri", "downtime_ms", "max_bandwidth_mib",
                                            "postcopy", "nbd", NULL };
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        struct gv_migrate_params p = { .downtime_limit_ms = GV_MIGRATE_DOWNTIME_DEFAULT_MS,
                                       .max_bandwidth = NO_CAP_BYTES };
        _cleanup_free_ char *nbd_host = NULL;
        struct gv_agent_vm *vm;
        const char *uri = NULL, *nbd = NULL;
        uint16_t nbd_port = 0;
        size_t n_disks = 0;
        uint32_t bw = 0;
        int r = check_members(body, "A migration", keys, err);

        if (r >= 0)
                r = gv_json_get_string(body, "uri", &uri, err);
        if (r >= 0)
                r = gv_migrate_uri_parse(uri, false, NULL, NULL, err);
        if (r >= 0)
                r = gv_json_opt_string(body, "nbd", &nbd, err);
        if (r >= 0 && nbd)
                r = gv_migrate_address_parse(nbd, false, &nbd_host, &nbd_port, err);
        if (r < 0 && nbd)
                r = gv_error_wrap(err, r, "nbd");
        if (r >= 0)
                r = gv_json_opt_u32(body, "downtime_ms", &p.downtime_limit_ms, err);
        if (r >= 0)
                r = gv_json_opt_u32(body, "max_bandwidth_mib", &bw, err);
        if (r >= 0)
                r = gv_json_opt_bool(body, "postcopy", &p.postcopy, err);
        if (r >= 0 && json_object_get(body, "max_bandwidth_mib") &&
            (bw < 1 || bw > BANDWIDTH_MAX_MIB))
                r = gv_error_set(err, EINVAL, "max_bandwidth_mib: %" PRIu32 " is out of range: 1 "
                                 "to %u MiB/s (leave it out for no cap).", bw, BANDWIDTH_MAX_MIB);
        if (r >= 0 && json_object_get(body, "max_bandwidth_mib"))
                p.max_bandwidth = (uint64_t)bw << 20;
        if (r >= 0 && (p.downtime_limit_ms < 1 || p.downtime_limit_ms > GV_MIGRATE_DOWNTIME_MAX_MS))
                r = gv_error_set(err, EINVAL, "downtime_ms: %" PRIu32 " is out of range: 1 to "
                                 "%u ms.", p.downtime_limit_ms, GV_MIGRATE_DOWNTIME_MAX_MS);
        if (r >= 0)
                r = gv_migrate_params_check(&p, err); /* post-copy: refused, saying why */
        if (r < 0)
                return r;

        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (vm->phase == GV_VM_MIGRATING || vm->phase == GV_VM_MIGRATED)
                r = gv_error_set(err, EBUSY, "VM '%s' is %s to '%s' already; %s", name,
                                 gv_vm_phase_to_string(vm->phase),
                                 vm->migration_uri ? vm->migration_uri : "?",
                                 vm->phase == GV_VM_MIGRATING
                                         ? "follow it with GET .../migration or cancel it."
                                         : "release it here, or resume it with migrate-cancel.");
        else if (vm->phase != GV_VM_RUNNING || !qemu_alive(vm))
                r = gv_error_set(err, EBUSY, "VM '%s' is %s; only a running VM live-migrates "
                                 "(move a stopped one offline: define it on the other host and "
                                 "delete it here).", name, gv_vm_phase_to_string(vm->phase));
        if (r >= 0)
                r = check_migratable(a, vm->config, vm->hw, vm->n_hw, err);
        if (r >= 0) {
                n_disks = disks_copied(vm->config);
                if (n_disks && !nbd) {
                        _cleanup_json_ json_t *l = disks_copied_json(vm->config);
                        _cleanup_free_ char *names = json_dumps(l, JSON_COMPACT);
                        r = gv_error_set(err, EBUSY, "VM '%s' has disks to copy (%s), but the "
                                         "destination exported nothing: give 'nbd', the "
                                         "HOST:PORT of the destination's incoming answer.",
                                         name, names);
                } else if (!n_disks && nbd) {
                        r = gv_error_set(err, EINVAL, "VM '%s' has no disk to copy (none made "
                                         "in the agent's state directory and writable); leave "
                                         "'nbd' out.", name);
                }
        }
        p.pause_before_switchover = n_disks > 0;
        if (r >= 0)
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
        if (r >= 0)
                r = gv_migrate_setup(q, &p, QMP_COMMAND_MS, err);
        vm->disk_copy_ended = false;
        if (r >= 0 && n_disks) {
                /* The disks first; the RAM transfer starts once every mirror is ready
                 * (disks_step). */
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                vm->n_mirrors = (unsigned)n_disks;
                vm->disk_total = vm->disk_transferred = 0;
                for (size_t k = 0; r >= 0 && k < vm->config->n_disks; k++)
                        if (disk_copied(&vm->config->disks[k]))
                                r = gv_mirror_start(q, (unsigned)k, nbd_host, nbd_port,
                                                    vm->config->disks[k].name,
                                                    vm->config->disks[k].kind ==
                                                            GV_VM_DISK_EMPTY,
                                                    p.max_bandwidth < NO_CAP_BYTES
                                                            ? p.max_bandwidth
                                                            : 0,
                                                    QMP_COMMAND_MS, &e);
                if (r < 0) {
                        mirrors_teardown(vm, q);
                        if (r == -EREMOTEIO)
                                r = gv_error_set(err, EBUSY, "VM '%s' cannot copy its disks to "
                                                 "'%s': %s", name, nbd, gv_error_msg(e, r));
                        gv_error_propagate(err, TAKE_PTR(e));
                } else {
                        vm->mirroring = true;
                }
        } else if (r >= 0) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                vm->n_mirrors = 0;
                vm->mirroring = false;
                vm->disk_total = vm->disk_transferred = 0;
                r = gv_migrate_start(q, uri, QMP_COMMAND_MS, &e);
                /* QEMU's refusals (a migration blocker, one already running) are about the
                 * VM's state, not a fault here. */
                if (r == -EREMOTEIO)
                        r = gv_error_set(err, EBUSY, "VM '%s' cannot migrate: %s", name,
                                         gv_error_msg(e, r));
                gv_error_propagate(err, TAKE_PTR(e));
        }
        if (r >= 0) {
                gv_agent_vm_set_phase(vm, GV_VM_MIGRATING);
                vm->incoming = false;
                free(vm->migration_uri);
                vm->migration_uri = xstrdup(uri);
                free(vm->last_error);
                vm->last_error = NULL;
                vm->migration_check_ms = now_ms() + GV_AGENT_MIGRATION_CHECK_MS;
                (void)gv_agent_vm_save(a, vm, NULL);
                GV_FAILPOINT("agent.migrate.started");
                gv_agent_wake(a);
                /* The progress as of now (a tiny VM may be done already, small disks copied).
                 * The transfer runs whatever this answer says: a failed query is answered as
                 * "setup" (or "mirroring"). QEMU serves one monitor connection at a time. */
                q = gv_qmp_free(q);
                if (refresh(a, vm, QMP_COMMAND_MS, &i, NULL, NULL) < 0)
                        info_synth(&i, vm->mirroring ? _GV_MIGRATE_STATUS_INVALID
                                                     : GV_MIGRATE_SETUP,
                                   vm->mirroring ? "mirroring" : "setup", NULL);
                *ret = progress_json(vm, &i, &p);
        }
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_migration(struct gv_agent *a, const char *name, json_t **ret,
                          struct gv_error **err)
{
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        struct gv_migrate_params p = { 0 };
        struct gv_agent_vm *vm;
        int r = gv_agent_vm_get(a, name, &vm, err);

        if (r < 0)
                return r;
        if (!qemu_alive(vm))
                r = gv_error_set(err, ENOENT, "VM '%s' has no migration to report: it is %s, "
                                 "without a QEMU here.", name, gv_vm_phase_to_string(vm->phase));
        if (r >= 0)
                r = refresh(a, vm, QMP_COMMAND_MS, &i, is_destination(vm) ? NULL : &p, err);
        /* A move that ended while the disks copied: QEMU's answer is of no migration, or of an
         * earlier one. */
        if (r >= 0 && vm->disk_copy_ended && vm->phase == GV_VM_RUNNING)
                info_synth(&i, vm->disk_copy_cancelled ? GV_MIGRATE_CANCELLED : GV_MIGRATE_FAILED,
                           vm->disk_copy_cancelled ? "cancelled" : "failed", vm->last_error);
        if (r >= 0 && i.status == GV_MIGRATE_NONE && vm->phase != GV_VM_INCOMING)
                r = gv_error_set(err, ENOENT, "VM '%s' has not migrated since its QEMU started.",
                                 name);
        if (r >= 0)
                *ret = progress_json(vm, &i, is_destination(vm) ? NULL : &p);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

/* After migrate_cancel, until QEMU says it is over. */
static int wait_final(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_migrate_info *ret,
                      struct gv_error **err)
{
        int64_t deadline = now_ms() + CANCEL_WAIT_MS;

        for (;;) {
                struct gv_migrate_info i = { 0 };
                int r = refresh(a, vm, QMP_COMMAND_MS, &i, NULL, err);
                if (r < 0)
                        return r;
                if (gv_migrate_status_is_final(i.status) || i.status == GV_MIGRATE_NONE) {
                        *ret = i;
                        return 0;
                }
                gv_migrate_info_done(&i);
                if (now_ms() > deadline)
                        return gv_error_set(err, ETIMEDOUT, "VM '%s': the migration is still "
                                            "not cancelled %d ms after migrate_cancel.",
                                            vm->config->name, CANCEL_WAIT_MS);
                sleep_ms(10);
        }
}

int gv_agent_vm_migrate_cancel(struct gv_agent *a, const char *name, const json_t *body,
                               json_t **ret, struct gv_error **err)
{
        static const char *const keys[] = { "resume", NULL };
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        struct gv_agent_vm *vm;
        bool resume = true;
        int r = check_members(body, "A cancel", keys, err);

        /* {"resume": false}: stop a transfer in progress, but leave a completed one paused —
         * for a caller that cannot tell whether the destination runs the VM. */
        if (r >= 0)
                r = gv_json_opt_bool(body, "resume", &resume, err);
        if (r < 0)
                return r;
        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (vm->phase == GV_VM_INCOMING || (vm->incoming && vm->phase == GV_VM_RUNNING))
                r = gv_error_set(err, EBUSY, "VM '%s' is the destination of a migration here: "
                                 "cancel it on the source, and abort-incoming here.", name);
        else if (!qemu_alive(vm) || (vm->phase != GV_VM_MIGRATING &&
                                     vm->phase != GV_VM_MIGRATED && vm->phase != GV_VM_RUNNING))
                r = gv_error_set(err, EBUSY, "VM '%s' is %s; there is no migration to cancel.",
                                 name, gv_vm_phase_to_string(vm->phase));
        if (r >= 0 && vm->phase == GV_VM_MIGRATING && vm->mirroring) {
                /* Still copying the disks: no RAM transfer to cancel yet. */
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
                if (r >= 0) {
                        abandon(a, vm, q, true, "the disks were still being copied", &i);
                        *ret = progress_json(vm, &i, NULL);
                        pthread_mutex_unlock(&vm->lock);
                        return 0;
                }
        }
        if (r >= 0 && vm->phase == GV_VM_MIGRATING) {
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
                if (r >= 0)
                        r = gv_migrate_cancel(q, QMP_COMMAND_MS, err);
                q = gv_qmp_free(q);
                if (r >= 0)
                        r = wait_final(a, vm, &i, err); /* running, or migrated if it won */
        }
        if (r >= 0 && vm->phase == GV_VM_MIGRATED && resume) {
                /* Completed before the cancel (or earlier): the caller decided the destination
                 * did not take over, so the guest resumes here; the destination must be
                 * aborted. */
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                _cleanup_free_ char *st = NULL;
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
                if (r >= 0)
                        r = gv_qmp_execute(q, "cont", NULL, QMP_COMMAND_MS, NULL, err);
                if (r >= 0)
                        r = gv_qmp_query_status(q, QMP_COMMAND_MS, &st, err);
                if (r >= 0 && strcmp(st, "running") != 0)
                        r = gv_error_set(err, EIO, "VM '%s' did not resume after the migration: "
                                         "QEMU is '%s'.", name, st);
                if (r >= 0) {
                        gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
                        vm->want_running = true;
                        free(vm->last_error);
                        vm->last_error = xasprintf("The migration to '%s' had completed when it "
                                                   "was cancelled; the VM resumed here (its "
                                                   "copy on the destination must be aborted).",
                                                   vm->migration_uri ? vm->migration_uri : "?");
                        (void)gv_agent_vm_save(a, vm, NULL);
                }
        }
        if (r >= 0) {
                gv_migrate_info_done(&i);
                r = refresh(a, vm, QMP_COMMAND_MS, &i, NULL, err);
        }
        if (r >= 0 && vm->disk_copy_ended && vm->phase == GV_VM_RUNNING)
                info_synth(&i, vm->disk_copy_cancelled ? GV_MIGRATE_CANCELLED : GV_MIGRATE_FAILED,
                           vm->disk_copy_cancelled ? "cancelled" : "failed", vm->last_error);
        if (r >= 0 && i.status == GV_MIGRATE_NONE)
                r = gv_error_set(err, ENOENT, "VM '%s' has not migrated since its QEMU started; "
                                 "there is nothing to cancel.", name);
        if (r >= 0)
                *ret = progress_json(vm, &i, NULL);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_release(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                        struct gv_error **err)
{
        static const char *const keys[] = { "force", NULL };
        struct gv_agent_vm *vm;
        bool force = false;
        int r = check_members(body, "A release", keys, err);

        if (r >= 0)
                r = gv_json_opt_bool(body, "force", &force, err);
        if (r < 0)
                return r;
        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (vm->phase == GV_VM_MIGRATING && qemu_alive(vm))
                (void)refresh(a, vm, QMP_COMMAND_MS, NULL, NULL, NULL); /* completed by now? */
        if (vm->phase != GV_VM_MIGRATED && !force)
                r = gv_error_set(err, EBUSY, "VM '%s' is %s; release lets go of the source only "
                                 "after a completed migration (the VM then runs on the "
                                 "destination). Cancel a migration in progress with "
                                 "migrate-cancel; {\"force\": true} lets go of it anyway, its "
                                 "QEMU killed.", name, gv_vm_phase_to_string(vm->phase));
        if (r >= 0) {
                end_qemu(a, vm, vm->phase == GV_VM_MIGRATED);
                GV_FAILPOINT("agent.migrate.released");
                r = gv_agent_vm_forget_locked(a, vm, err);
        }
        if (r >= 0)
                *ret = json_pack("{s:s, s:b}", "name", name, "released", 1);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_abort_incoming(struct gv_agent *a, const char *name, const json_t *body,
                               json_t **ret, struct gv_error **err)
{
        static const char *const keys[] = { "force", NULL };
        struct gv_agent_vm *vm;
        bool force = false;
        int r = check_members(body, "An abort", keys, err);

        if (r >= 0)
                r = gv_json_opt_bool(body, "force", &force, err);
        if (r < 0)
                return r;
        r = gv_agent_vm_get(a, name, &vm, err);
        if (r < 0)
                return r;
        if (!vm->incoming && vm->phase != GV_VM_INCOMING && !force)
                r = gv_error_set(err, EBUSY, "VM '%s' did not come here by an incoming migration "
                                 "(or was started or stopped here since); stop and delete it "
                                 "instead, or pass {\"force\": true}.", name);
        if (r >= 0) {
                /* Nothing of the destination's copy is worth keeping: the source has the VM. */
                end_qemu(a, vm, false);
                vm->incoming = false;
                r = gv_agent_vm_forget_locked(a, vm, err);
        }
        if (r >= 0)
                *ret = json_pack("{s:s, s:b}", "name", name, "aborted", 1);
        pthread_mutex_unlock(&vm->lock);
        return r;
}
