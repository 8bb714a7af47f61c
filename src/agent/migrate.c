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
 * Refused: pass-through GPUs (plain vfio-pci has no migration support for a whole device,
 * passthrough.md §7: move such a VM offline), post-copy (not with VFIO devices), and disks in
 * the agent's state directory (overlays, empty disks: not copied yet; an image both hosts see,
 * given by "path", is fine).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/console.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"
#include "vmm/migrate.h"
#include "vmm/qmp.h"

#define QMP_CONNECT_MS 5000
#define QMP_COMMAND_MS 5000
#define TICK_QMP_MS 1000
#define QUIT_WAIT_MS 5000
#define CANCEL_WAIT_MS 10000
#define BANDWIDTH_MAX_MIB 1048576u               /* 1 TiB/s */
#define NO_CAP_BYTES ((uint64_t)BANDWIDTH_MAX_MIB << 20)

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

/* Can this VM live-migrate? Its pass-through GPUs (recorded hardware, else the definition's
 * requests) and disks say. */
static int check_migratable(const struct gv_vm_config *c, const struct gv_hw *hw, size_t n_hw,
                            struct gv_error **err)
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
        for (size_t i = 0; i < c->n_disks; i++)
                if (c->disks[i].kind != GV_VM_DISK_IMAGE)
                        return gv_error_set(err, EBUSY, "VM '%s' has disk '%s' in the agent's "
                                            "state directory, which a live migration does not "
                                            "copy yet: give the VM disks both hosts see "
                                            "(\"path\") or move it offline.", c->name,
                                            c->disks[i].name);
        return 0;
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
        return o;
}

/* What QEMU says about the migration moves the VM's phase on. */
static void apply(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_qmp *q,
                  const struct gv_migrate_info *i)
{
        if (vm->phase == GV_VM_MIGRATING) {
                if (i->status == GV_MIGRATE_COMPLETED) {
                        /* QEMU is paused in postmigrate here; the VM runs on the destination. */
                        vm->phase = GV_VM_MIGRATED;
                        vm->want_running = false;
                } else if (i->status == GV_MIGRATE_FAILED || i->status == GV_MIGRATE_CANCELLED ||
                           i->status == GV_MIGRATE_NONE) {
                        /* Pre-copy failed or cancelled: the guest never stopped running here. */
                        vm->phase = GV_VM_RUNNING;
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
                vm->phase = GV_VM_RUNNING;
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
                (void)gv_agent_console_attach(vm);
                vm->migration_check_ms = 0; /* the supervisor follows it from here */
        }
}

/* ---- the API ---- */

int gv_agent_vm_incoming(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                         struct gv_error **err)
{
        static const char *const keys[] = { "definition", "listen", NULL };
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = NULL;
        _cleanup_json_ json_t *st = NULL;
        _cleanup_free_ char *uri = NULL, *actual = NULL;
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
                r = gv_migrate_address_parse(listen, true, NULL, NULL, err);
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
        r = check_migratable(c, NULL, 0, err);
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
                r = gv_agent_vm_start_incoming(a, vm, uri, &actual, err);
                /* Nothing is left of a VM this call defined (the source still runs it). */
                if (r < 0 && !existed)
                        (void)gv_agent_vm_forget_locked(a, vm, NULL);
        }
        if (r >= 0)
                *ret = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "uuid", vm->config->uuid,
                                 "uri", actual, "phase", gv_vm_phase_to_string(vm->phase));
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_migrate(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                        struct gv_error **err)
{
        static const char *const keys[] = { "uri", "downtime_ms", "max_bandwidth_mib",
                                            "postcopy", NULL };
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        struct gv_migrate_params p = { .downtime_limit_ms = GV_MIGRATE_DOWNTIME_DEFAULT_MS,
                                       .max_bandwidth = NO_CAP_BYTES };
        struct gv_agent_vm *vm;
        const char *uri = NULL;
        uint32_t bw = 0;
        int r = check_members(body, "A migration", keys, err);

        if (r >= 0)
                r = gv_json_get_string(body, "uri", &uri, err);
        if (r >= 0)
                r = gv_migrate_uri_parse(uri, false, NULL, NULL, err);
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
                r = check_migratable(vm->config, vm->hw, vm->n_hw, err);
        if (r >= 0)
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
        if (r >= 0)
                r = gv_migrate_setup(q, &p, QMP_COMMAND_MS, err);
        if (r >= 0) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_migrate_start(q, uri, QMP_COMMAND_MS, &e);
                /* QEMU's refusals (a migration blocker, one already running) are about the
                 * VM's state, not a fault here. */
                if (r == -EREMOTEIO)
                        r = gv_error_set(err, EBUSY, "VM '%s' cannot migrate: %s", name,
                                         gv_error_msg(e, r));
                gv_error_propagate(err, TAKE_PTR(e));
        }
        if (r >= 0) {
                vm->phase = GV_VM_MIGRATING;
                vm->incoming = false;
                free(vm->migration_uri);
                vm->migration_uri = xstrdup(uri);
                free(vm->last_error);
                vm->last_error = NULL;
                vm->migration_check_ms = now_ms() + GV_AGENT_MIGRATION_CHECK_MS;
                (void)gv_agent_vm_save(a, vm, NULL);
                gv_agent_wake(a);
                /* The progress as of now (a tiny VM may be done already). The transfer runs
                 * whatever this answer says: a failed query is answered as "setup". */
                if (gv_migrate_query(q, QMP_COMMAND_MS, &i, NULL) >= 0) {
                        apply(a, vm, q, &i);
                } else {
                        gv_migrate_info_done(&i);
                        i = (struct gv_migrate_info){ .status = GV_MIGRATE_SETUP,
                                                      .status_name = xstrdup("setup"),
                                                      .setup_time_ms = -1, .total_time_ms = -1,
                                                      .expected_downtime_ms = -1,
                                                      .downtime_ms = -1 };
                }
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
        static const char *const keys[] = { NULL };
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info i = { 0 };
        struct gv_agent_vm *vm;
        int r = check_members(body, "A cancel", keys, err);

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
        if (r >= 0 && vm->phase == GV_VM_MIGRATING) {
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                r = vm_qmp(vm, QMP_CONNECT_MS, &q, err);
                if (r >= 0)
                        r = gv_migrate_cancel(q, QMP_COMMAND_MS, err);
                q = gv_qmp_free(q);
                if (r >= 0)
                        r = wait_final(a, vm, &i, err); /* running, or migrated if it won */
        }
        if (r >= 0 && vm->phase == GV_VM_MIGRATED) {
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
                        vm->phase = GV_VM_RUNNING;
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
