/* SPDX-License-Identifier: MIT */
/*
 * migrate.c — moving a VM to another host (docs/api.md, "migrate"; issue 6).
 *
 * Checks before anything moves, each refusal naming its reason: a live move needs every GPU of
 * the VM migratable (a pass-through GPU is not: vfio-pci has no migration support for a whole
 * device, ../shared/reference/passthrough.md — move it offline); the target is up and not in
 * maintenance; the placement engine finds the same kind of slice there (with the source host
 * left out); the GPU models are of one architecture, the NVIDIA driver versions and QEMU's CPU
 * model and accelerator are the same on both hosts (vgpu.md: a vGPU migrates between hosts with
 * the same vGPU manager, GPU family and type).
 *
 * Protocol, the source authoritative until the end (reliability.md, the libvirt migration
 * protocol): reserve on the target (the VM document's "migration" member and the target's
 * allocation document, one CAS batch), switch the target GPU's mode if the engine placed it on
 * an empty GPU of another mode, prepare the target (its agent defines the VM, makes the GPU
 * hardware and starts QEMU waiting for the incoming state), start the transfer on the source
 * (pre-copy only), follow it, then switch ownership in the store (one batch: the VM's host and
 * placement, the source's allocation released), and only then release the source. A failure at
 * any step before the switch cancels the transfer, aborts the target and releases its
 * reservation: the VM keeps running on the source. An offline move stops the VM, releases the
 * source, switches the store and starts the VM on the target.
 *
 * Who has the VM when a step fails is decided in migrate-settle.c; a controller restarted in
 * the middle resumes the operation (the agents answer steps already done from their
 * Operation-Id records; a move switched in the store before the restart is finished from the
 * operation's argument).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"
#include "util/strv.h"

#define POLL_MS 200
#define TRANSFER_TIMEOUT_MS (30 * 60 * 1000)

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* The GPU model of a host's GPU (by PCI address) in its inventory, or NULL. */
static const char *gpu_model(const json_t *host_doc, const char *pci)
{
        const json_t *g;
        size_t i;
        json_array_foreach(json_object_get(json_object_get(host_doc, "inventory"), "gpus"), i, g)
                if (pci && !strcmp(jstr(g, "pci_address") ?: "", pci))
                        return jstr(g, "model");
        return NULL;
}

static const char *architecture(struct gv_controller *c, const char *model)
{
        for (size_t i = 0; model && i < c->catalog->n_models; i++)
                if (!strcasecmp(c->catalog->models[i].name, model))
                        return c->catalog->models[i].architecture;
        return NULL;
}

/* Live compatibility of the two hosts for this VM: 0, or -EBUSY naming what differs. */
static int check_compatible(struct gv_controller *c, const char *name, const json_t *src,
                            const json_t *dst, const json_t *src_pl, const json_t *dst_pl,
                            struct gv_error **err)
{
        const json_t *si = json_object_get(src, "inventory");
        const json_t *di = json_object_get(dst, "inventory");
        const char *sd = jstr(si, "driver_version"), *dd = jstr(di, "driver_version");
        const json_t *sq = json_object_get(si, "qemu"), *dq = json_object_get(di, "qemu");
        size_t n = json_array_size(json_object_get(src_pl, "gpus"));

        if (n && (!sd || !dd || strcmp(sd, dd) != 0))
                return gv_error_set(err, EBUSY, "VM '%s' cannot live-migrate from %s to %s: the "
                                    "NVIDIA driver versions differ (%s, %s); a vGPU moves only "
                                    "between hosts with the same vGPU manager.", name,
                                    jstr(src, "name"), jstr(dst, "name"), sd ?: "unknown",
                                    dd ?: "unknown");
        if (strcmp(jstr(sq, "cpu_model") ?: "", jstr(dq, "cpu_model") ?: "") != 0 ||
            strcmp(jstr(sq, "accel") ?: "", jstr(dq, "accel") ?: "") != 0)
                return gv_error_set(err, EBUSY, "VM '%s' cannot live-migrate from %s to %s: "
                                    "QEMU's CPU model or accelerator differ (%s/%s, %s/%s).",
                                    name, jstr(src, "name"), jstr(dst, "name"),
                                    jstr(sq, "cpu_model") ?: "?", jstr(sq, "accel") ?: "?",
                                    jstr(dq, "cpu_model") ?: "?", jstr(dq, "accel") ?: "?");
        for (size_t i = 0; i < n; i++) {
                const json_t *s = json_array_get(json_object_get(src_pl, "gpus"), i);
                const json_t *d = json_array_get(json_object_get(dst_pl, "gpus"), i);
                const char *sm = gpu_model(src, jstr(s, "pci"));
                const char *dm = gpu_model(dst, jstr(d, "pci"));
                const char *sa = architecture(c, sm), *da = architecture(c, dm);
                if (!sa || !da || strcmp(sa, da) != 0)
                        return gv_error_set(err, EBUSY, "VM '%s' cannot live-migrate from %s to "
                                            "%s: its GPU would move from a %s (%s) to a %s (%s); "
                                            "a vGPU moves only within one GPU family.", name,
                                            jstr(src, "name"), jstr(dst, "name"), sm ?: "?",
                                            sa ?: "?", dm ?: "?", da ?: "?");
        }
        return 0;
}

int gv_controller_vm_migrate(struct gv_controller *c, const char *name, const json_t *body,
                             json_t **ret_op, struct gv_error **err)
{
        static const char *const keys[] = { "to", "mode", "downtime_ms", "max_bandwidth_mib",
                                             NULL };
        struct gv_store_obj v = { 0 }, src = { 0 }, dst = { 0 };
        const char *to = NULL, *mode = "live", *k, *state, *host;
        uint32_t downtime = 0, bw = 0;
        _cleanup_json_ json_t *pl = NULL, *mig = NULL;
        struct gv_sched_request rq;
        struct gv_sched_placement p;
        struct gv_sched_explain why;
        json_t *x;
        int r;

        json_object_foreach((json_t *)body, k, x)
                if (!strv_contains((char **)keys, k))
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; a migration takes "
                                            "to, mode, downtime_ms, max_bandwidth_mib.", k);
        r = gv_json_opt_string(body, "to", &to, err);
        if (r >= 0)
                r = gv_json_opt_string(body, "mode", &mode, err);
        if (r >= 0)
                r = gv_json_opt_u32(body, "downtime_ms", &downtime, err);
        if (r >= 0)
                r = gv_json_opt_u32(body, "max_bandwidth_mib", &bw, err);
        if (r < 0)
                return r;
        if (strcmp(mode, "live") != 0 && strcmp(mode, "offline") != 0 &&
            strcmp(mode, "evacuate") != 0)
                return gv_error_set(err, EINVAL, "mode: '%s' is not live, offline or evacuate "
                                    "(a VM of a fenced host).", mode);
        r = gv_ctl_vm_get(c, name, &v, err);
        if (r < 0)
                return r;
        state = jstr(v.doc, "state") ?: "";
        host = jstr(v.doc, "host");
        const json_t *src_pl = json_object_get(v.doc, "placement");
        if (!json_is_object(src_pl) || !host)
                r = gv_error_set(err, EBUSY, "VM '%s' is %s and holds no placement: there is "
                                 "nothing to move.", name, state);
        else if (json_is_object(json_object_get(v.doc, "migration")))
                r = gv_error_set(err, EBUSY, "VM '%s' is moving already (to %s).", name,
                                 jstr(json_object_get(v.doc, "migration"), "host") ?: "?");
        else
                r = gv_ctl_vm_idle(c, v.doc, err); /* before anything is reserved */
        /* Nothing leaves a silent host that may still run it (fence.c). */
        if (r >= 0)
                r = gv_ctl_fence_check_move(c, name, host, mode, err);
        if (r < 0)
                ;
        else if (!strcmp(mode, "live") && strcmp(state, "running") != 0)
                r = gv_error_set(err, EBUSY, "VM '%s' is %s: only a running VM live-migrates "
                                 "(use mode offline).", name, state);
        if (r >= 0 && !strcmp(mode, "live")) {
                const json_t *s;
                size_t i;
                json_array_foreach(json_object_get(src_pl, "gpus"), i, s)
                        if (!strcmp(jstr(s, "alloc") ?: "", "whole")) {
                                r = gv_error_set(err, EBUSY, "VM '%s' cannot live-migrate: its "
                                                 "GPU %s is passed through (vfio-pci cannot "
                                                 "migrate a whole device's state). Move it "
                                                 "offline: mode \"offline\" (gpuvirt vm migrate "
                                                 "%s --offline) stops it, moves it and starts "
                                                 "it.", name, jstr(s, "pci") ?: "?", name);
                                break;
                        }
        }
        if (r >= 0 && to && !strcmp(to, host))
                r = gv_error_set(err, EINVAL, "VM '%s' is on %s already.", name, host);
        if (r >= 0 && to) {
                r = gv_store_get(c->store, GV_STORE_HOST, to, &dst, NULL);
                if (r < 0)
                        r = gv_error_set(err, ENOENT, "No host '%s' to move VM '%s' to.", to,
                                         name);
                else if (strcmp(jstr(dst.doc, "state") ?: "", "up") != 0)
                        r = gv_error_set(err, EBUSY, "Host %s is %s: it takes no VMs.", to,
                                         jstr(dst.doc, "state") ?: "unknown");
        }
        if (r < 0)
                goto out;

        /* Place on another host: the source left out for this decision. */
        pthread_mutex_lock(&c->mu);
        r = gv_ctl_model_ensure(c, err);
        if (r >= 0)
                r = gv_ctl_request_from_spec(c, json_object_get(v.doc, "spec"), &rq, err);
        /* A move overrides the host the VM was pinned to when it was created, never the
         * tenant's GPU pools. */
        rq.labels = 0;
        if (r >= 0)
                r = gv_ctl_tenant_restrict(c, json_object_get(v.doc, "spec"), &rq, err);
        if (r >= 0 && to) {
                _cleanup_free_ char *l = xasprintf("host=%s", to);
                r = gv_sched_cluster_label_mask(c->cluster, l, &rq.labels, err);
        }
        if (r >= 0)
                r = gv_sched_request_resolve(c->cluster, &rq, err);
        int sh = r >= 0 ? gv_sched_cluster_find_host(c->cluster, host) : -1;
        enum gv_sched_host_state sstate = GV_SCHED_HOST_UP;
        if (sh >= 0) {
                sstate = gv_sched_cluster_host(c->cluster, (uint32_t)sh)->state;
                (void)gv_sched_cluster_set_host_state(c->cluster, (uint32_t)sh,
                                                      GV_SCHED_HOST_MAINTENANCE);
        }
        if (r >= 0) {
                r = gv_sched_place(c->cluster, gv_sched_policy_default(), &rq, &p, &why, err);
                if (r == -ENOSPC) {
                        _cleanup_free_ char *e = gv_sched_explain_format(&rq, &why);
                        gv_error_free(err ? *err : NULL);
                        if (err)
                                *err = NULL;
                        r = gv_error_set(err, ENOSPC, "VM '%s' has nowhere to go: %s", name, e);
                }
        }
        if (sh >= 0)
                (void)gv_sched_cluster_set_host_state(c->cluster, (uint32_t)sh, sstate);
        if (r >= 0) {
                pl = gv_ctl_placement_to_json(c, &p, gv_sched_policy_default()->name);
                r = gv_ctl_placement_agent_types(c, &p, pl, err);
        }
        if (r >= 0 && !dst.doc)
                r = gv_store_get(c->store, GV_STORE_HOST, jstr(pl, "host"), &dst, err);
        if (r >= 0)
                r = gv_store_get(c->store, GV_STORE_HOST, host, &src, err);
        if (r >= 0 && !strcmp(mode, "live"))
                r = check_compatible(c, name, src.doc, dst.doc, src_pl, pl, err);
        if (r >= 0)
                r = gv_sched_reserve(c->cluster, &rq, &p, err);
        if (r >= 0) {
                mig = json_pack("{s:O, s:O, s:s, s:s, s:i, s:i}", "host",
                                json_object_get(pl, "host"), "placement", pl, "mode", mode,
                                "state", "preparing", "downtime_ms", (int)downtime,
                                "max_bandwidth_mib", (int)bw);
                _cleanup_json_ json_t *doc = json_deep_copy(v.doc);
                json_object_set(doc, "migration", mig);
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM,
                                            .key = name, .doc = doc,
                                            .generation = v.generation };
                r = gv_ctl_alloc_write(c, jstr(pl, "host"), name, pl, &w, "vm.migration",
                                       json_pack("{s:s, s:s, s:O}", "state", "preparing",
                                                 "mode", mode, "to",
                                                 json_object_get(pl, "host")),
                                       err);
                if (r < 0) {
                        (void)gv_sched_release(c->cluster, &rq, &p, NULL);
                        c->model_dirty = true;
                }
                /* The VM was written since it was read: if an operation took it meanwhile,
                 * say which (409 either way; ESTALE is a conflict too). */
                struct gv_store_obj now = { 0 };
                _cleanup_(gv_error_freep) struct gv_error *held = NULL;
                if (r == -ESTALE && gv_ctl_vm_get(c, name, &now, NULL) >= 0 &&
                    gv_ctl_vm_idle(c, now.doc, &held) < 0) {
                        r = -EBUSY;
                        if (err) {
                                gv_error_free(*err);
                                *err = TAKE_PTR(held);
                        }
                }
                gv_store_obj_done(&now);
        }
        pthread_mutex_unlock(&c->mu);
        if (r >= 0)
                GV_FAILPOINT("vm.migrate.reserved");
        if (r >= 0) {
                _cleanup_free_ char *target = xasprintf("vm/%s", name);
                r = gv_ctl_op_start(c, "vm.migrate", target,
                                    json_pack("{s:s, s:s, s:O, s:s, s:b, s:O}", "name", name,
                                              "from", host, "to", json_object_get(pl, "host"),
                                              "mode", mode, "was_running",
                                              !strcmp(state, "running") ||
                                                      (!strcmp(mode, "evacuate") &&
                                                       !strcmp(state, "unknown") &&
                                                       strcmp(jstr(v.doc, "last_known_state")
                                                                      ?: "running",
                                                              "running") == 0),
                                              "from_placement", src_pl),
                                    ret_op, err);
                /* Not recorded (another operation took the VM in between, or the store
                 * failed): the target's reservation goes again. */
                if (r < 0 && !strcmp(mode, "live")) {
                        _cleanup_free_ char *op = xasprintf("refused-%s", name);
                        _cleanup_free_ char *note = xasprintf(
                                "A move to %s was not recorded: %s", jstr(pl, "host") ?: "?",
                                gv_error_msg(err ? *err : NULL, r));
                        gv_ctl_migration_drop(c, op, name, jstr(pl, "host"), pl, note);
                }
        }
out:
        gv_store_obj_done(&v);
        gv_store_obj_done(&src);
        gv_store_obj_done(&dst);
        return r;
}

/* ---- the operation ---- */

/* The address the target's agent should listen on for the incoming state: its endpoint's host,
 * or loopback when the controller reaches it over a UNIX socket (same machine). */
static char *listen_address(struct gv_controller *c, const char *host)
{
        struct gv_store_obj h = { 0 };
        char *out = NULL;

        if (gv_store_get(c->store, GV_STORE_HOST, host, &h, NULL) >= 0) {
                const char *ep = jstr(h.doc, "endpoint") ?: "";
                size_t skip = !strncmp(ep, "http://", 7) ? 7 : !strncmp(ep, "https://", 8) ? 8 : 0;
                if (skip) {
                        const char *a = ep + skip, *colon = strrchr(a, ':');
                        out = xasprintf("%.*s:0", (int)(colon ? colon - a : (long)strlen(a)), a);
                }
        }
        gv_store_obj_done(&h);
        return out ? out : xstrdup("127.0.0.1:0");
}

/* Follows the source's transfer to its end and says who has the VM (migrate-settle.c):
 *   the source reports completed       → the target decides (await_target)
 *   the source reports failed/cancelled → SOURCE
 *   nothing moved for migration_stall_ms (a cut network, a frozen target) → SOURCE
 *   the source does not answer: the target decides if its copy runs (the transfer completed);
 *   a target that lost its copy → SOURCE; after host_down_after_ms of silence → SOURCE (the
 *   target is aborted first: a source that completed stays paused, and is resumed when it
 *   answers again)
 * *ret_final: the source's last report when it completed (its downtime and transfer time). */
static enum gv_ctl_settle await_target(struct gv_controller *c, const char *name,
                                       const char *dst_host, char **ret_why);

static enum gv_ctl_settle follow_transfer(struct gv_controller *c, const char *op_id,
                                          const char *name, const char *src_host,
                                          const char *dst_host, json_t **ret_final,
                                          char **ret_why)
{
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/migration", name);
        int64_t now = gv_ctl_now_ms(), deadline = now + TRANSFER_TIMEOUT_MS;
        int64_t moved = -1, moved_at = now, silent_since = 0, begun = now;
        long wait_ms = 10; /* grows to POLL_MS after a second: a short move is seen at once, a
                            * long one followed cheaply */

        for (;;) {
                _cleanup_json_ json_t *m = NULL;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = gv_ctl_agent_call(c, src_host, "GET", path, NULL, NULL, &m, &e);
                now = gv_ctl_now_ms();
                if (r < 0) {
                        /* The source is silent or lost the VM: the target may have it. */
                        _cleanup_free_ char *p = gv_ctl_vm_phase_on(c, dst_host, name, true);
                        if (p && !strcmp(p, "running"))
                                return GV_CTL_SETTLE_TARGET;
                        if (p && strcmp(p, "incoming") != 0) {
                                *ret_why = xasprintf("%s does not follow the transfer (%s) and "
                                                     "the copy on %s is %s.", src_host,
                                                     gv_error_msg(e, r), dst_host, p);
                                return GV_CTL_SETTLE_SOURCE;
                        }
                        if (r != -EHOSTDOWN) {
                                *ret_why = xasprintf("%s: %s", src_host, gv_error_msg(e, r));
                                return GV_CTL_SETTLE_SOURCE;
                        }
                        if (!silent_since)
                                silent_since = now;
                        if (now - silent_since > c->cfg.host_down_after_ms) {
                                *ret_why = xasprintf("%s has not answered for %lld s in the "
                                                     "middle of the transfer: %s",
                                                     src_host, (long long)(now - silent_since) /
                                                                       1000,
                                                     gv_error_msg(e, r));
                                return GV_CTL_SETTLE_SOURCE;
                        }
                        gv_ctl_op_progress(c, op_id, 40, "%s does not answer; waiting for it "
                                           "or for %s to take %s over", src_host, dst_host,
                                           name);
                } else {
                        silent_since = 0;
                        const char *st = jstr(m, "status") ?: "";
                        json_int_t total = json_integer_value(json_object_get(m, "ram_total"));
                        json_int_t done = json_integer_value(json_object_get(m,
                                                                             "ram_transferred"));
                        json_int_t left = json_integer_value(json_object_get(m, "ram_remaining"));
                        json_int_t disk = json_integer_value(json_object_get(m,
                                                                             "disk_transferred"));
                        double mbps = json_number_value(json_object_get(m, "mbps"));
                        if (!strcmp(st, "completed")) {
                                *ret_final = TAKE_PTR(m);
                                return await_target(c, name, dst_host, ret_why);
                        }
                        if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
                                *ret_why = xasprintf("The transfer %s: %s.", st,
                                                     jstr(m, "error") ?: "no reason given");
                                return GV_CTL_SETTLE_SOURCE;
                        }
                        if (done + disk != moved) {
                                moved = done + disk;
                                moved_at = now;
                        } else if (now - moved_at > c->cfg.migration_stall_ms) {
                                *ret_why = xasprintf("The transfer moved nothing for %d s (the "
                                                     "network to %s cut, or its copy frozen?).",
                                                     c->cfg.migration_stall_ms / 1000, dst_host);
                                return GV_CTL_SETTLE_SOURCE;
                        }
                        json_int_t disk_total = json_integer_value(json_object_get(m,
                                                                                   "disk_total"));
                        json_int_t dev = json_integer_value(json_object_get(m,
                                                                            "device_transferred"));
                        const json_t *exp = json_object_get(m, "expected_downtime_ms");
                        int pct = total > 0 ? (int)(30 + 60 * (done < total ? done : total) /
                                                             total)
                                            : 30;
                        _cleanup_free_ char *disks =
                                disk_total > 0 ? xasprintf("disks %lld/%lld MiB, ",
                                                           (long long)(disk >> 20),
                                                           (long long)(disk_total >> 20))
                                               : xstrdup("");
                        _cleanup_free_ char *down =
                                json_is_integer(exp)
                                        ? xasprintf(", expected downtime %lld ms",
                                                    (long long)json_integer_value(exp))
                                        : xstrdup("");
                        gv_ctl_op_progress(c, op_id, pct, "moving %s: %sRAM %lld/%lld MiB, %lld "
                                           "MiB left, device state %lld KiB, %.0f Mbit/s%s",
                                           name, disks, (long long)(done >> 20),
                                           (long long)(total >> 20), (long long)(left >> 20),
                                           (long long)(dev >> 10), mbps, down);
                }
                if (now > deadline) {
                        *ret_why = xasprintf("The transfer did not end within %d minutes.",
                                             TRANSFER_TIMEOUT_MS / 60000);
                        return GV_CTL_SETTLE_SOURCE;
                }
                struct timespec ts = { .tv_nsec = wait_ms * 1000000L };
                nanosleep(&ts, NULL);
                if (now - begun > 1000) /* every 10 ms in its first second */
                        wait_ms = wait_ms * 2 < POLL_MS ? wait_ms * 2 : POLL_MS;
        }
}

/* The transfer completed on the source (which stays paused): the target's copy must say it runs
 * before it becomes the VM (its agent notices the end of the incoming state within a moment). A
 * target that does not answer for migration_stall_ms leaves the outcome UNKNOWN: it may run the
 * VM, so the source must not resume. */
static enum gv_ctl_settle await_target(struct gv_controller *c, const char *name,
                                       const char *dst_host, char **ret_why)
{
        int64_t deadline = gv_ctl_now_ms() + 30000, silent_since = 0;

        for (;;) {
                /* Its migration report: the agent reads QEMU for it, so the copy is seen
                 * running the moment it runs (its own check comes only every so often). */
                _cleanup_free_ char *p = gv_ctl_vm_phase_on(c, dst_host, name, true);
                int64_t now = gv_ctl_now_ms();
                if (p && !strcmp(p, "running"))
                        return GV_CTL_SETTLE_TARGET;
                if (p && strcmp(p, "incoming") != 0) {
                        *ret_why = xasprintf("After the transfer the copy on %s is %s, not "
                                             "running.", dst_host, p);
                        return GV_CTL_SETTLE_SOURCE;
                }
                if (p) {
                        silent_since = 0;
                        if (now > deadline) {
                                *ret_why = xasprintf("The copy on %s did not start running "
                                                     "within 30 s of the transfer's end.",
                                                     dst_host);
                                return GV_CTL_SETTLE_SOURCE;
                        }
                } else {
                        if (!silent_since)
                                silent_since = now;
                        if (now - silent_since > c->cfg.migration_stall_ms) {
                                *ret_why = xasprintf("The transfer completed, but %s has not "
                                                     "answered since.", dst_host);
                                return GV_CTL_SETTLE_UNKNOWN;
                        }
                }
                struct timespec ts = { .tv_nsec = 10 * 1000000L };
                nanosleep(&ts, NULL);
        }
}

static int migrate_live(struct gv_controller *c, const char *op_id, const char *name,
                        const json_t *vm, const char *src_host, const char *dst_host,
                        const json_t *dst_pl, json_t **ret_final, struct gv_error **err)
{
        const json_t *mig = json_object_get(vm, "migration");
        _cleanup_json_ json_t *as_dst = json_deep_copy(vm), *def = NULL, *in = NULL;
        _cleanup_free_ char *incoming = xasprintf("/v1/vms/%s/incoming", name);
        _cleanup_free_ char *migrate = xasprintf("/v1/vms/%s/migrate", name);
        _cleanup_free_ char *why = NULL;
        _cleanup_free_ char *listen = listen_address(c, dst_host);
        enum gv_ctl_settle outcome = GV_CTL_SETTLE_SOURCE;
        bool started = false;
        int r;

        json_object_set(as_dst, "placement", (json_t *)dst_pl);
        def = gv_ctl_agent_definition(c, as_dst, err);
        r = def ? 0 : -EINVAL;
        if (r >= 0)
                r = gv_ctl_switch_modes(c, op_id, name, dst_host, dst_pl, err);
        if (r >= 0) {
                gv_ctl_op_progress(c, op_id, 10, "preparing %s on %s", name, dst_host);
                _cleanup_json_ json_t *body = json_pack("{s:O, s:s}", "definition", def,
                                                        "listen", listen);
                r = gv_ctl_agent_vm(c, op_id, "incoming", dst_host, "POST", incoming, body, &in,
                                    err);
        }
        if (r >= 0)
                GV_FAILPOINT("vm.migrate.incoming");
        if (r >= 0) {
                json_t *body = json_pack("{s:O}", "uri", json_object_get(in, "uri"));
                json_int_t dt = json_integer_value(json_object_get(mig, "downtime_ms"));
                json_int_t bw = json_integer_value(json_object_get(mig, "max_bandwidth_mib"));
                if (dt > 0)
                        json_object_set_new(body, "downtime_ms", json_integer(dt));
                if (bw > 0)
                        json_object_set_new(body, "max_bandwidth_mib", json_integer(bw));
                /* The target exports the disks it must receive (docs/agent.md, "Migration"). */
                if (jstr(in, "nbd"))
                        json_object_set(body, "nbd", json_object_get(in, "nbd"));
                gv_ctl_op_progress(c, op_id, 30, "moving %s from %s to %s", name, src_host,
                                   dst_host);
                r = gv_ctl_agent_vm(c, op_id, "migrate", src_host, "POST", migrate, body, NULL,
                                    err);
                json_decref(body);
                started = r >= 0;
                if (started)
                        GV_FAILPOINT("vm.migrate.started");
        }
        if (r >= 0)
                outcome = follow_transfer(c, op_id, name, src_host, dst_host, ret_final, &why);
        else
                why = xstrdup(gv_error_msg(err ? *err : NULL, r));
        if (outcome != GV_CTL_SETTLE_TARGET) {
                gv_ctl_op_progress(c, op_id, 95, "undoing the move: %s", why);
                r = gv_ctl_migration_undo(c, op_id, name, src_host, dst_host, dst_pl, started,
                                          outcome == GV_CTL_SETTLE_UNKNOWN, why);
                gv_error_free(err ? *err : NULL);
                if (err)
                        *err = NULL;
                if (r == -EAGAIN)
                        return gv_error_set(err, EIO, "%s %s is left paused on %s and may run on "
                                            "%s: the controller settles it as soon as %s answers "
                                            "again.", why, name, src_host, dst_host, dst_host);
                return gv_error_set(err, EIO, "%s %s stays on %s.", why, name, src_host);
        }
        GV_FAILPOINT("vm.migrate.completed");
        gv_ctl_op_progress(c, op_id, 92, "%s runs on %s; releasing %s", name, dst_host,
                           src_host);
        /* QEMU may say completed a moment before it fills in the total time and the downtime:
         * the source's last word, now that the target runs. */
        _cleanup_json_ json_t *last = NULL;
        _cleanup_free_ char *mpath = xasprintf("/v1/vms/%s/migration", name);
        if (gv_ctl_agent_call(c, src_host, "GET", mpath, NULL, NULL, &last, NULL) >= 0 &&
            !strcmp(jstr(last, "status") ?: "", "completed")) {
                json_decref(*ret_final);
                *ret_final = TAKE_PTR(last);
        }
        return gv_ctl_migration_finish(c, op_id, name, src_host,
                                       json_object_get(vm, "placement"), err);
}

/* The offline move's second half, after the store switched: define (and start) on the target. */
static int offline_target(struct gv_controller *c, const char *op_id, const char *name,
                          const char *dst_host, bool was_running, struct gv_error **err)
{
        _cleanup_free_ char *start = xasprintf("/v1/vms/%s/start", name);
        struct gv_store_obj v = { 0 };
        _cleanup_json_ json_t *def = NULL;
        int r = gv_ctl_vm_get(c, name, &v, err);

        if (r < 0)
                return r;
        def = gv_ctl_agent_definition(c, v.doc, err);
        r = def ? 0 : -EINVAL;
        gv_ctl_op_progress(c, op_id, 50, "defining %s on %s", name, dst_host);
        if (r >= 0)
                r = gv_ctl_switch_modes(c, op_id, name, dst_host,
                                        json_object_get(v.doc, "placement"), err);
        gv_store_obj_done(&v);
        if (r >= 0)
                r = gv_ctl_agent_vm(c, op_id, "define", dst_host, "POST", "/v1/vms", def, NULL,
                                    err);
        if (r >= 0)
                GV_FAILPOINT("vm.migrate.offline_defined");
        if (r >= 0 && was_running) {
                gv_ctl_op_progress(c, op_id, 70, "starting %s on %s", name, dst_host);
                r = gv_ctl_agent_vm(c, op_id, "start", dst_host, "POST", start, NULL, NULL, err);
        }
        (void)gv_ctl_vm_set_state(c, name, r < 0 ? "failed" : was_running ? "running" : "defined",
                                  r < 0 ? gv_error_msg(err ? *err : NULL, r) : NULL);
        gv_ctl_poll_soon(c);
        return r;
}

static int migrate_offline(struct gv_controller *c, const char *op_id, const char *name,
                           const json_t *vm, const char *src_host, const char *dst_host,
                           const json_t *dst_pl, bool was_running, struct gv_error **err)
{
        _cleanup_free_ char *stop = xasprintf("/v1/vms/%s/stop", name);
        _cleanup_free_ char *del = xasprintf("/v1/vms/%s", name);
        _cleanup_json_ json_t *def = NULL, *as_dst = json_deep_copy(vm);
        int r;

        json_object_set(as_dst, "placement", (json_t *)dst_pl);
        def = gv_ctl_agent_definition(c, as_dst, err);
        if (!def) {
                gv_ctl_migration_drop(c, op_id, name, dst_host, dst_pl, gv_error_msg(*err, -EINVAL));
                return -EINVAL;
        }
        gv_ctl_op_progress(c, op_id, 10, "stopping %s on %s", name, src_host);
        (void)gv_ctl_vm_set_state(c, name, "stopping", NULL);
        r = gv_ctl_agent_vm(c, op_id, "stop", src_host, "POST", stop, NULL, NULL, err);
        if (r >= 0)
                GV_FAILPOINT("vm.migrate.offline_stopped");
        if (r >= 0 || r == -ENOENT)
                r = gv_ctl_agent_vm(c, op_id, "remove", src_host, "DELETE", del, NULL, NULL, err);
        if (r >= 0)
                GV_FAILPOINT("vm.migrate.offline_removed");
        if (r == -ENOENT)
                r = 0;
        if (r < 0) {
                _cleanup_free_ char *why = xstrdup(gv_error_msg(err ? *err : NULL, r));
                gv_ctl_migration_drop(c, op_id, name, dst_host, dst_pl, why);
                (void)gv_ctl_vm_set_state(c, name, "failed", why);
                return r;
        }
        gv_ctl_restore_modes(c, op_id, src_host, json_object_get(vm, "placement"));
        r = gv_ctl_migration_switch(c, name, src_host, err);
        if (r < 0)
                return r;
        (void)gv_ctl_vm_set_state(c, name, "stopped", NULL);
        return offline_target(c, op_id, name, dst_host, was_running, err);
}

/* An evacuation (fence.c): the source is fenced and silent, so no step runs there — the store
 * switches to the target (the source's reservation released) and the VM is defined there, and
 * started if it ran. Its copy on the source is destroyed when the source answers again. */
static int migrate_evacuate(struct gv_controller *c, const char *op_id, const char *name,
                            const char *src_host, const char *dst_host, bool was_running,
                            struct gv_error **err)
{
        gv_ctl_op_progress(c, op_id, 10, "re-placing %s from fenced %s on %s", name, src_host,
                           dst_host);
        int r = gv_ctl_migration_switch(c, name, src_host, err);
        if (r < 0)
                return r;
        (void)gv_ctl_vm_set_state(c, name, "stopped", NULL);
        return offline_target(c, op_id, name, dst_host, was_running, err);
}

/* The operation's argument records the move ({"name", "from", "to", "mode", "was_running",
 * "from_placement"}): a controller restarted after the store switched to the target finds no
 * "migration" in the VM any more, and finishes from the argument (the agents' answers to steps
 * already done come back from their Operation-Id records). */
static int resume_switched(struct gv_controller *c, const char *op_id, const json_t *arg,
                           const char *name, struct gv_error **err)
{
        const char *from = jstr(arg, "from"), *to = jstr(arg, "to");

        if (strcmp(jstr(arg, "mode") ?: "live", "live") != 0)
                return offline_target(c, op_id, name, to,
                                      json_is_true(json_object_get(arg, "was_running")), err);
        return gv_ctl_migration_finish(c, op_id, name, from,
                                       json_object_get(arg, "from_placement"), err);
}

int gv_ctl_op_vm_migrate(struct gv_controller *c, const char *op_id, json_t *arg,
                         json_t **ret_result, struct gv_error **err)
{
        const char *name = jstr(arg, "name");
        struct gv_store_obj v = { 0 };
        int r = gv_ctl_vm_get(c, name ? name : "?", &v, err);

        if (r < 0)
                return r;
        const json_t *mig = json_object_get(v.doc, "migration");
        _cleanup_free_ char *src_host = xstrdup(jstr(v.doc, "host") ?: "");
        _cleanup_free_ char *dst_host = xstrdup(jstr(mig, "host") ?: "");
        _cleanup_json_ json_t *dst_pl = json_incref(json_object_get(mig, "placement"));
        _cleanup_free_ char *mode = xstrdup(jstr(mig, "mode") ?: jstr(arg, "mode") ?: "live");
        _cleanup_json_ json_t *final = NULL;
        int64_t t0 = gv_ctl_now_ms();

        if (!json_is_object(mig) && jstr(arg, "to") && !strcmp(src_host, jstr(arg, "to"))) {
                /* Switched before a restart: finish the move. */
                gv_store_obj_done(&v);
                free(src_host);
                src_host = xstrdup(jstr(arg, "from") ?: "?");
                free(dst_host);
                dst_host = xstrdup(jstr(arg, "to"));
                r = resume_switched(c, op_id, arg, name, err);
        } else if (!json_is_object(mig) || !*dst_host ||
                   !strcmp(jstr(mig, "state") ?: "", "unresolved")) {
                gv_store_obj_done(&v);
                return gv_error_set(err, EINVAL, "VM '%s' has no move under way.", name);
        } else {
                r = !strcmp(mode, "evacuate")
                            ? migrate_evacuate(c, op_id, name, src_host, dst_host,
                                               json_is_true(json_object_get(arg, "was_running")),
                                               err)
                    : !strcmp(mode, "offline")
                            ? migrate_offline(c, op_id, name, v.doc, src_host, dst_host, dst_pl,
                                              json_is_true(json_object_get(arg, "was_running")),
                                              err)
                            : migrate_live(c, op_id, name, v.doc, src_host, dst_host, dst_pl,
                                           &final, err);
                gv_store_obj_done(&v);
        }
        gv_ctl_poll_soon(c);
        if (r < 0)
                return r;
        /* The figures of the move: QEMU's own for a live one (downtime is the time the guest
         * was paused), the whole stop-to-start wall time for an offline one. */
        json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:I}", "vm", name, "from", src_host, "to",
                                dst_host, "mode", mode, "elapsed_ms",
                                (json_int_t)(gv_ctl_now_ms() - t0));
        if (final) {
                json_object_set(res, "downtime_ms", json_object_get(final, "downtime_ms"));
                json_object_set(res, "transfer_ms", json_object_get(final, "total_time_ms"));
                json_object_set(res, "ram_transferred",
                                json_object_get(final, "ram_transferred"));
        } else if (strcmp(mode, "live") != 0) {
                json_object_set(res, "downtime_ms", json_object_get(res, "elapsed_ms"));
        }
        *ret_result = res;
        return 0;
}
