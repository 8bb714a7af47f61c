/* SPDX-License-Identifier: MIT */
/*
 * migrate-settle.c — where a VM runs once its move has ended, well or badly (docs/api.md,
 * "Migration failures"). The invariant: the VM runs on exactly one host, no slice is held for
 * it twice, and nothing of it is left on the other host.
 *
 * Two facts of the protocol make it decidable (docs/agent.md, "Migration"): the source's QEMU
 * never resumes by itself once its transfer completed (it stays paused until it is released or
 * migrate-cancel resumes it), and the target's QEMU runs only with the whole state. So:
 *
 *   the target's copy runs                     → the target has the VM: switch the store, release
 *                                                the source
 *   the transfer failed, was cancelled, moved  → the source keeps it: the target's copy is aborted
 *   nothing, or the target lost its copy         FIRST, then the source is told to cancel (which
 *                                                resumes it if it had completed)
 *   the transfer completed and the target does → unknown: the move is kept in the VM document
 *   not answer                                   ("migration": {"state": "unresolved"}, both
 *                                                reservations held) until the target answers
 *
 * And, on every poll of a host, leftovers are settled: a copy paused after a completed transfer
 * (phase migrated) on a host that does not own the VM is released; a copy made for a transfer
 * (phase incoming, or one whose QEMU ended before it ran) with no move under way is aborted; a
 * paused copy on the owning host with no move under way is resumed (its target was aborted while
 * the source did not answer); a copy in which nothing runs (stopped, crashed, defined) on a host
 * that does not own the VM is deleted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

char *gv_ctl_vm_phase_on(struct gv_controller *c, const char *host, const char *name,
                         bool fresh)
{
        _cleanup_free_ char *path = xasprintf(fresh ? "/v1/vms/%s/migration" : "/v1/vms/%s",
                                              name);
        _cleanup_json_ json_t *s = NULL;
        int r = gv_ctl_agent_call(c, host, "GET", path, NULL, NULL, &s, NULL);

        if (r == -ENOENT && fresh) /* no migration to report: the VM itself says */
                return gv_ctl_vm_phase_on(c, host, name, false);
        if (r == -ENOENT)
                return xstrdup("gone");
        if (r < 0)
                return NULL;
        return xstrdup(jstr(s, "phase") ?: "unknown");
}

int gv_ctl_migration_switch(struct gv_controller *c, const char *name, const char *src_host,
                            struct gv_error **err)
{
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj v = { 0 };
                int r = gv_ctl_vm_get(c, name, &v, err);
                if (r < 0)
                        return r;
                _cleanup_json_ json_t *doc = json_deep_copy(v.doc);
                const json_t *m = json_object_get(doc, "migration");
                if (!json_is_object(m)) {
                        /* Switched already (a resumed operation). */
                        bool done = strcmp(jstr(doc, "host") ?: "", src_host) != 0;
                        gv_store_obj_done(&v);
                        return done ? 0 : gv_error_set(err, ENOENT, "VM '%s' has no move to "
                                                       "finish.", name);
                }
                json_object_set(doc, "host", json_object_get(m, "host"));
                /* A pin follows the VM: its placement must stay valid for the model. */
                json_t *spec = json_object_get(doc, "spec");
                if (json_object_get(spec, "host"))
                        json_object_set(spec, "host", json_object_get(m, "host"));
                json_object_set(doc, "placement", json_object_get(m, "placement"));
                json_object_set_new(doc, "migration", json_null());
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM,
                                            .key = name, .doc = doc, .generation = v.generation };
                gv_store_obj_done(&v);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_alloc_write(c, src_host, name, NULL, &w, "vm.migrated",
                                       json_pack("{s:s, s:O}", "from", src_host, "to",
                                                 json_object_get(doc, "host")),
                                       &e);
                if (r == -ESTALE)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                gv_ctl_model_dirty(c);
                GV_FAILPOINT("vm.migrate.switched");
                return 0;
        }
        return gv_error_set(err, ESTALE, "VM '%s' changed under every retry.", name);
}

void gv_ctl_migration_drop(struct gv_controller *c, const char *op_id, const char *name,
                           const char *dst_host, const json_t *dst_pl, const char *why)
{
        struct gv_store_obj v = { 0 };

        if (gv_ctl_vm_get(c, name, &v, NULL) >= 0) {
                _cleanup_json_ json_t *doc = json_deep_copy(v.doc);
                json_object_set_new(doc, "migration", json_null());
                json_object_set_new(doc, "error", json_string(why));
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM,
                                            .key = name, .doc = doc, .generation = v.generation };
                (void)gv_ctl_alloc_write(c, dst_host, name, NULL, &w, "vm.migration",
                                         json_pack("{s:s, s:s}", "state", "failed", "error",
                                                   why),
                                         NULL);
        }
        gv_store_obj_done(&v);
        gv_ctl_restore_modes(c, op_id, dst_host, dst_pl);
        gv_ctl_model_dirty(c);
}

int gv_ctl_migration_finish(struct gv_controller *c, const char *op_id, const char *name,
                            const char *src_host, const json_t *src_pl, struct gv_error **err)
{
        _cleanup_free_ char *release = xasprintf("/v1/vms/%s/release", name);
        int r = gv_ctl_migration_switch(c, name, src_host, err);

        if (r < 0)
                return r;
        /* Best effort: a source that does not answer now is released by the poller when it
         * does (its copy paused on a host that no longer owns the VM). */
        (void)gv_ctl_agent_vm(c, op_id, "release", src_host, "POST", release, NULL, NULL, NULL);
        GV_FAILPOINT("vm.migrate.released");
        gv_ctl_restore_modes(c, op_id, src_host, src_pl);
        (void)gv_ctl_vm_set_state(c, name, "running", NULL);
        return 0;
}

static void set_unresolved(json_t *doc, void *arg)
{
        json_t *m = json_object_get(doc, "migration");
        if (json_is_object(m)) {
                json_object_set_new(m, "state", json_string("unresolved"));
                json_object_set_new(m, "error", json_string(arg));
        }
        json_object_set_new(doc, "state", json_string("unknown"));
        json_object_set_new(doc, "error", json_string(arg));
}

/* The source's transfer status, or NULL when it does not answer. */
static char *source_status(struct gv_controller *c, const char *host, const char *name)
{
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/migration", name);
        _cleanup_json_ json_t *m = NULL;
        int r = gv_ctl_agent_call(c, host, "GET", path, NULL, NULL, &m, NULL);

        if (r == -ENOENT)
                return xstrdup("gone");
        return r < 0 ? NULL : xstrdup(jstr(m, "status") ?: "none");
}

int gv_ctl_migration_undo(struct gv_controller *c, const char *op_id, const char *name,
                          const char *src_host, const char *dst_host, const json_t *dst_pl,
                          bool started, bool unknown, const char *why)
{
        _cleanup_free_ char *cancel = xasprintf("/v1/vms/%s/migrate-cancel", name);
        _cleanup_free_ char *abort_in = xasprintf("/v1/vms/%s/abort-incoming", name);
        _cleanup_free_ char *st = NULL;
        int r = 0;

        if (!unknown) {
                /* The target's copy first: once it is gone the source can safely resume. */
                r = gv_ctl_agent_vm(c, op_id, "abort", dst_host, "POST", abort_in, NULL, NULL,
                                    NULL);
                if (r >= 0 || r == -ENOENT || !started) {
                        if (started)
                                (void)gv_ctl_agent_vm(c, op_id, "cancel", src_host, "POST",
                                                      cancel, NULL, NULL, NULL);
                        gv_ctl_migration_drop(c, op_id, name, dst_host, dst_pl, why);
                        return 0;
                }
                /* The target does not answer. A source whose transfer has not completed is
                 * cancelled: the target can then never run the VM, and its copy is aborted
                 * when it answers again (a leftover incoming copy). */
                st = source_status(c, src_host, name);
                if (st && strcmp(st, "completed") != 0) {
                        /* Without resuming: should it complete meanwhile (the target reachable
                         * from the source but not from here), it stays paused, unresolved. */
                        _cleanup_json_ json_t *keep = json_pack("{s:b}", "resume", 0);
                        (void)gv_ctl_agent_vm(c, op_id, "cancel-keep", src_host, "POST", cancel,
                                              keep, NULL, NULL);
                        free(st);
                        st = source_status(c, src_host, name);
                        if (st && strcmp(st, "completed") != 0) {
                                gv_ctl_migration_drop(c, op_id, name, dst_host, dst_pl, why);
                                return 0;
                        }
                }
        }
        (void)gv_ctl_vm_update(c, name, set_unresolved, (void *)why, "vm.migration", NULL);
        gv_ctl_vms_changed(c);
        return -EAGAIN;
}

/* ---- on every poll ---- */

/* The VM document is still the one read before the agent was asked: every move writes the VM
 * before its first agent call, so a copy the agent reported is not one a move made since. */
static bool unchanged(struct gv_controller *c, const struct gv_store_obj *v)
{
        struct gv_store_obj now = { 0 };
        bool same = gv_ctl_vm_get(c, v->key, &now, NULL) >= 0 && now.generation == v->generation;

        gv_store_obj_done(&now);
        return same;
}

/* An unresolved move: settled the moment its target answers. */
static void resolve(struct gv_controller *c, const struct gv_store_obj *v)
{
        const json_t *m = json_object_get(v->doc, "migration");
        const char *src = jstr(v->doc, "host"), *dst = jstr(m, "host");
        _cleanup_free_ char *op_id = xasprintf("settle-%s-%lld", v->key,
                                               (long long)v->generation);
        _cleanup_free_ char *p = dst ? gv_ctl_vm_phase_on(c, dst, v->key, false) : NULL;
        _cleanup_free_ char *why = NULL;

        if (!p || !src || !unchanged(c, v))
                return;
        if (!strcmp(p, "running")) {
                (void)gv_ctl_migration_finish(c, op_id, v->key, src,
                                              json_object_get(v->doc, "placement"), NULL);
                _cleanup_free_ char *subj = xasprintf("vm/%s", v->key);
                gv_ctl_event(c, "vm.migration.settled", subj,
                             json_pack("{s:s, s:s}", "host", dst, "why",
                                       "the target runs the VM"));
                return;
        }
        why = xasprintf("%s Settled when %s answered again: its copy was %s, so %s kept the VM.",
                        jstr(m, "error") ?: "", dst, p, src);
        if (gv_ctl_migration_undo(c, op_id, v->key, src, dst, json_object_get(m, "placement"),
                                  true, false, why) >= 0) {
                _cleanup_free_ char *subj = xasprintf("vm/%s", v->key);
                gv_ctl_event(c, "vm.migration.settled", subj,
                             json_pack("{s:s, s:s}", "host", src, "why", why));
                gv_ctl_poll_soon(c);
        }
}

/* A copy of a VM on `host` that no move accounts for. */
static void leftover(struct gv_controller *c, const char *host, const json_t *a,
                     const struct gv_store_obj *v)
{
        const char *name = v->key, *owner = jstr(v->doc, "host") ?: "";
        const char *phase = jstr(a, "phase") ?: "";
        const char *action = NULL, *step = NULL;

        if (strcmp(owner, host) != 0 && !strcmp(phase, "migrated"))
                action = "release", step = "leftover-release";
        else if (strcmp(owner, host) != 0 &&
                 (!strcmp(phase, "incoming") ||
                  (json_is_true(json_object_get(a, "incoming")) && strcmp(phase, "running") != 0)))
                action = "abort-incoming", step = "leftover-abort";
        else if (!strcmp(owner, host) && !strcmp(phase, "migrated"))
                action = "migrate-cancel", step = "leftover-resume";
        /* Nothing runs in it, on a host the VM does not live on, and no move under way: a
         * source whose release was cut after its QEMU ended (the 1,000-kill run found a live
         * move's source left "stopped"), or an offline move's or a create's copy left behind.
         * Every move writes the VM before its first agent call (unchanged), so it is none of
         * theirs: deleted, which releases its hardware. */
        else if (*owner && strcmp(owner, host) != 0 &&
                 (!strcmp(phase, "stopped") || !strcmp(phase, "crashed") ||
                  !strcmp(phase, "defined")))
                action = "delete", step = "leftover-delete";
        if (!action || !unchanged(c, v))
                return;
        bool del = !strcmp(action, "delete");
        _cleanup_free_ char *op_id = xasprintf("settle-%s-%lld", name, (long long)v->generation);
        _cleanup_free_ char *path = del ? xasprintf("/v1/vms/%s", name)
                                        : xasprintf("/v1/vms/%s/%s", name, action);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_ctl_agent_vm(c, op_id, step, host, del ? "DELETE" : "POST", path, NULL, NULL,
                                &e);
        _cleanup_free_ char *subj = xasprintf("vm/%s", name);
        gv_ctl_event(c, "vm.leftover", subj,
                     json_pack("{s:s, s:s, s:s, s:s?}", "host", host, "phase", phase, "action",
                               action, "error", r < 0 ? gv_error_msg(e, r) : NULL));
        gv_ctl_poll_soon(c);
}

/* A copy made for a transfer (incoming, not running) of a VM that no longer exists: the move
 * failed when its target died, and the VM was deleted on its source since (found by the random
 * kills, reliability.md "Crash consistency"). No move or VM owns it: aborted, which releases
 * its hardware. Anything else without a VM document is left alone. */
static void leftover_of_gone(struct gv_controller *c, const char *host, const json_t *a)
{
        const char *name = jstr(a, "name"), *phase = jstr(a, "phase") ?: "";
        const char *uuid = jstr(json_object_get(a, "config"), "uuid") ?: "";

        if (!json_is_true(json_object_get(a, "incoming")) || !strcmp(phase, "running"))
                return;
        /* The VM's uuid in the id: a later VM of the same name gets its own abort. */
        _cleanup_free_ char *op_id = xasprintf("settle-%s-gone-%.8s", name, uuid);
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/abort-incoming", name);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_ctl_agent_vm(c, op_id, "leftover-abort", host, "POST", path, NULL, NULL, &e);
        _cleanup_free_ char *subj = xasprintf("vm/%s", name);
        gv_ctl_event(c, "vm.leftover", subj,
                     json_pack("{s:s, s:s, s:s, s:s?}", "host", host, "phase", phase, "action",
                               "abort-incoming", "error", r < 0 ? gv_error_msg(e, r) : NULL));
        gv_ctl_poll_soon(c);
}

void gv_ctl_migrations_reconcile(struct gv_controller *c, const char *host,
                                 const json_t *agent_vms, const struct gv_store_obj *v, size_t n)
{
        const json_t *a;
        size_t k;

        for (size_t i = 0; i < n; i++) {
                const json_t *m = json_object_get(v[i].doc, "migration");
                /* Asked when the target has just answered a poll: the poller never waits on a
                 * target that may still be silent. */
                if (json_is_object(m) && !strcmp(jstr(m, "state") ?: "", "unresolved") &&
                    !strcmp(jstr(m, "host") ?: "", host))
                        resolve(c, &v[i]);
        }
        json_array_foreach(agent_vms, k, a) {
                const char *name = jstr(a, "name");
                bool known = false;
                for (size_t i = 0; name && i < n; i++) {
                        if (strcmp(v[i].key, name) != 0)
                                continue;
                        known = true;
                        /* A move under way (or unresolved) owns its copies. */
                        if (!json_is_object(json_object_get(v[i].doc, "migration")))
                                leftover(c, host, a, &v[i]);
                        break;
                }
                if (name && !known)
                        leftover_of_gone(c, host, a);
        }
}
