/* SPDX-License-Identifier: MIT */
/*
 * fence.c — fencing and evacuation (docs/api.md "Fencing and evacuation", docs/reliability.md
 * "Partitions and fencing").
 *
 * A host the controller cannot reach may still be running its VMs: a cut network looks like a
 * dead host from the controller's side. So nothing is re-placed off a silent host until a person
 * says it is off: fencing is that assertion ("fencing ensures that the erroneous node is
 * guaranteed to be offline ... no resource runs twice", Proxmox [S38]; Nova's evacuate needs
 * the operator to make sure the host is not operational [S27]).
 *
 *   fence      a host that is down (silent for host_down_after_ms) becomes `fenced`: recorded
 *              in its document ({"fence": {"at", "by", "reason", "answered": false}}), evented
 *              (host.fenced) and audited (the API). A fenced host takes no placements (the model
 *              sees it down) and keeps that state whatever its agent does, until unfence.
 *   evacuate   an operation (host.evacuate) that re-places every VM of a fenced, silent host and
 *              starts elsewhere those that ran: each is a move of mode "evacuate" (migrate.c),
 *              which reserves on a target, switches the store and defines and starts it there,
 *              with no step on the old host. Pass-through, vGPU and MIG alike: the old host is
 *              off, so nothing has to be carried over.
 *   back       when a fenced host's agent answers again, before its VMs are observed the
 *              controller destroys its copies of VMs that now live elsewhere (or nowhere) and
 *              the agent releases their hardware (Nova's _destroy_evacuated_instances [S25]);
 *              the host stays fenced (fence.answered becomes true).
 *   unfence    only after the host answered and its copies were destroyed: the host goes back
 *              to `down`, and the poller's next answer makes it `up`.
 *
 * And a move of a VM off a host that is down and not fenced is refused, naming the host, the VM
 * and the command to run (gv_ctl_fence_check_move, called by migrate.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

#define STEP_WAIT_MS (30 * 60 * 1000)
#define IDLE_WAIT_MS (2 * 60 * 1000)
#define REASON_MAX 256

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static int host_read(struct gv_controller *c, const char *host, struct gv_store_obj *ret,
                     struct gv_error **err)
{
        int r = gv_store_get(c->store, GV_STORE_HOST, host, ret, NULL);
        if (r < 0)
                return gv_error_set(err, ENOENT, "No host '%s' (gpuvirt host list shows them).",
                                    host);
        return 0;
}

static bool fence_answered(const json_t *host_doc)
{
        return json_is_true(json_object_get(json_object_get(host_doc, "fence"), "answered"));
}

int gv_ctl_fence_check_move(struct gv_controller *c, const char *vm, const char *src_host,
                            const char *mode, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        bool evacuate = !strcmp(mode, "evacuate");
        int r = host_read(c, src_host, &h, err);

        if (r < 0)
                return r;
        const char *st = jstr(h.doc, "state") ?: "";
        bool fenced = !strcmp(st, "fenced"), down = !strcmp(st, "down");
        if (down)
                r = gv_error_set(err, EBUSY, "host '%s' cannot be reached and is not "
                                 "fenced: it may still be running VM '%s'; power it off, then "
                                 "`gpuvirt host fence %s`.", src_host, vm, src_host);
        else if (fenced && !fence_answered(h.doc) && !evacuate)
                r = gv_error_set(err, EBUSY, "host '%s' is fenced and silent: VM '%s' "
                                 "cannot be moved from it, only re-placed: `gpuvirt host "
                                 "evacuate %s` (or mode \"evacuate\").", src_host, vm,
                                 src_host);
        else if (evacuate && !fenced)
                r = gv_error_set(err, EBUSY, "host '%s' is %s: only the VMs of a host that is "
                                 "down and fenced are evacuated; a host that answers is "
                                 "drained (gpuvirt host drain %s).", src_host, st, src_host);
        else if (evacuate && fence_answered(h.doc))
                r = gv_error_set(err, EBUSY, "host '%s' is fenced but its agent answered "
                                 "again: it is not off, so VM '%s' is moved, not evacuated "
                                 "(gpuvirt vm migrate %s --offline).", src_host, vm, vm);
        gv_store_obj_done(&h);
        return r;
}

/* ---- fence and unfence ---- */

struct fence_arg {
        const char *by, *reason;
        int64_t now_s;
};

static void set_fenced(json_t *doc, void *arg)
{
        struct fence_arg *a = arg;
        json_object_set_new(doc, "state", json_string("fenced"));
        json_object_set_new(doc, "fence", json_pack("{s:I, s:s, s:s?, s:b}", "at",
                                                    (json_int_t)a->now_s, "by", a->by,
                                                    "reason", a->reason, "answered", 0));
}

int gv_controller_host_fence(struct gv_controller *c, const char *host, const json_t *body,
                             const char *by, json_t **ret, struct gv_error **err)
{
        static const char *const keys[] = { "reason", NULL };
        struct fence_arg a = { .by = by && *by ? by : "local", .now_s = gv_ctl_now_ms() / 1000 };
        struct gv_store_obj h = { 0 };
        const char *k;
        json_t *x;
        int r;

        json_object_foreach((json_t *)body, k, x)
                if (!strv_contains((char **)keys, k))
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; a fence takes "
                                            "reason.", k);
        r = gv_json_opt_string(body, "reason", &a.reason, err);
        if (r < 0)
                return r;
        if (a.reason && strlen(a.reason) > REASON_MAX)
                return gv_error_set(err, EINVAL, "reason: at most %d bytes.", REASON_MAX);
        r = host_read(c, host, &h, err);
        if (r < 0)
                return r;
        const char *st = jstr(h.doc, "state") ?: "";
        bool already = !strcmp(st, "fenced");
        if (!already && strcmp(st, "down") != 0)
                r = gv_error_set(err, EBUSY, "host '%s' is %s: its agent answers, so it is not "
                                 "off. Fence only a host that is down (silent for %d s) after "
                                 "powering it off; drain a host that answers (gpuvirt host "
                                 "drain %s).", host, st, c->cfg.host_down_after_ms / 1000,
                                 host);
        gv_store_obj_done(&h);
        if (r < 0)
                return r;
        if (!already) {
                r = gv_ctl_host_update(c, host, set_fenced, &a, NULL, err);
                if (r < 0)
                        return r;
                gv_ctl_model_dirty(c);
                _cleanup_free_ char *subj = xasprintf("host/%s", host);
                gv_ctl_event(c, "host.fenced", subj,
                             json_pack("{s:s, s:s?}", "by", a.by, "reason", a.reason));
        }
        return gv_controller_host(c, host, ret, err);
}

static void set_unfenced(json_t *doc, void *arg)
{
        (void)arg;
        json_object_set_new(doc, "state", json_string("down"));
        json_object_del(doc, "fence");
}

int gv_controller_host_unfence(struct gv_controller *c, const char *host, json_t **ret,
                               struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        int r = host_read(c, host, &h, err);

        if (r < 0)
                return r;
        if (strcmp(jstr(h.doc, "state") ?: "", "fenced") != 0)
                r = gv_error_set(err, EINVAL, "host '%s' is %s, not fenced.", host,
                                 jstr(h.doc, "state") ?: "unknown");
        else if (!fence_answered(h.doc))
                r = gv_error_set(err, EBUSY, "host '%s' has not answered since it was fenced: "
                                 "its copies of VMs that now run elsewhere are not destroyed "
                                 "yet. Power it on; once its agent answers the controller "
                                 "destroys them, then unfence it.", host);
        gv_store_obj_done(&h);
        if (r < 0)
                return r;
        r = gv_ctl_host_update(c, host, set_unfenced, NULL, NULL, err);
        if (r < 0)
                return r;
        gv_ctl_model_dirty(c);
        _cleanup_free_ char *subj = xasprintf("host/%s", host);
        gv_ctl_event(c, "host.unfenced", subj, json_object());
        gv_ctl_poll_soon(c);
        return gv_controller_host(c, host, ret, err);
}

/* ---- a fenced host answers again ---- */

static void set_answered(json_t *doc, void *arg)
{
        (void)arg;
        json_t *f = json_object_get(doc, "fence");
        if (json_is_object(f))
                json_object_set_new(f, "answered", json_true());
}

/* Whether the agent's copy of VM `name` on `host` belongs to no one: the store has no such VM,
 * or it lives on another host with no move toward this one. */
static bool copy_is_stale(struct gv_controller *c, const char *host, const char *name)
{
        struct gv_store_obj v = { 0 };
        int r = gv_store_get(c->store, GV_STORE_VM, name, &v, NULL);
        bool stale;

        if (r == -ENOENT)
                return true;
        if (r < 0)
                return false;
        const json_t *m = json_object_get(v.doc, "migration");
        stale = strcmp(jstr(v.doc, "host") ?: "", host) != 0 &&
                !(json_is_object(m) && !strcmp(jstr(m, "host") ?: "", host));
        gv_store_obj_done(&v);
        return stale;
}

int gv_ctl_fence_settle(struct gv_controller *c, const char *host, const json_t *agent_vms)
{
        struct gv_store_obj h = { 0 };
        const json_t *a;
        size_t i, failed = 0;
        int64_t at;

        if (gv_store_get(c->store, GV_STORE_HOST, host, &h, NULL) < 0)
                return 0;
        if (strcmp(jstr(h.doc, "state") ?: "", "fenced") != 0) {
                gv_store_obj_done(&h);
                return 0;
        }
        at = json_integer_value(json_object_get(json_object_get(h.doc, "fence"), "at"));
        bool first = !fence_answered(h.doc);
        gv_store_obj_done(&h);

        json_t *destroyed = json_array();
        json_array_foreach(agent_vms, i, a) {
                const char *name = jstr(a, "name"), *phase = jstr(a, "phase") ?: "";
                if (!name || !copy_is_stale(c, host, name))
                        continue;
                _cleanup_free_ char *op_id = xasprintf("fence-%s-%lld", host, (long long)at);
                _cleanup_free_ char *kill = xasprintf("/v1/vms/%s/kill", name);
                _cleanup_free_ char *del = xasprintf("/v1/vms/%s", name);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = 0;
                /* A copy that runs (or is paused) is killed: its guest lives on another host
                 * now, and nothing of this copy may reach its disks or its network again. */
                if (strcmp(phase, "defined") != 0 && strcmp(phase, "stopped") != 0 &&
                    strcmp(phase, "crashed") != 0) {
                        _cleanup_free_ char *step = xasprintf("kill-%s", name);
                        r = gv_ctl_agent_vm(c, op_id, step, host, "POST", kill, NULL, NULL, &e);
                }
                if (r >= 0 || r == -EINVAL || r == -EBUSY) {
                        _cleanup_free_ char *step = xasprintf("remove-%s", name);
                        gv_error_free(e);
                        e = NULL;
                        r = gv_ctl_agent_vm(c, op_id, step, host, "DELETE", del, NULL, NULL, &e);
                }
                if (r == -ENOENT)
                        r = 0;
                if (r < 0)
                        failed++;
                json_array_append_new(destroyed, json_pack("{s:s, s:s, s:s?}", "vm", name,
                                                           "phase", phase, "error",
                                                           r < 0 ? gv_error_msg(e, r) : NULL));
        }
        _cleanup_free_ char *subj = xasprintf("host/%s", host);
        if (json_array_size(destroyed) || first)
                gv_ctl_event(c, "host.fence.settled", subj,
                             json_pack("{s:o, s:b}", "destroyed", destroyed, "complete",
                                       failed == 0));
        else
                json_decref(destroyed);
        /* Answered: unfence becomes possible once nothing is left to destroy. */
        if (failed == 0 && first)
                (void)gv_ctl_host_update(c, host, set_answered, NULL, NULL, NULL);
        return failed ? -EIO : 0;
}

/* ---- evacuate ---- */

int gv_controller_host_evacuate(struct gv_controller *c, const char *host, json_t **ret_op,
                                struct gv_error **err)
{
        struct gv_store_obj h = { 0 }, *v = NULL;
        size_t n = 0;
        int r = host_read(c, host, &h, err);

        if (r < 0)
                return r;
        const char *st = jstr(h.doc, "state") ?: "";
        if (!strcmp(st, "down"))
                r = gv_error_set(err, EBUSY, "host '%s' cannot be reached and is not "
                                 "fenced: it may still be running its VMs; power it off, then "
                                 "`gpuvirt host fence %s`.", host, host);
        else if (strcmp(st, "fenced") != 0)
                r = gv_error_set(err, EBUSY, "host '%s' is %s: only a host that is down and "
                                 "fenced is evacuated; drain a host that answers (gpuvirt host "
                                 "drain %s).", host, st, host);
        else if (fence_answered(h.doc))
                r = gv_error_set(err, EBUSY, "host '%s' is fenced but its agent answered again: "
                                 "it is not off. Move its VMs (gpuvirt host drain %s after "
                                 "unfence), or power it off.", host, host);
        gv_store_obj_done(&h);
        if (r < 0)
                return r;
        r = gv_store_list(c->store, GV_STORE_VM, &v, &n, err);
        if (r < 0)
                return r;
        json_t *vms = json_array();
        for (size_t i = 0; i < n; i++)
                if (!strcmp(jstr(v[i].doc, "host") ?: "", host) &&
                    json_is_object(json_object_get(v[i].doc, "placement")) &&
                    !json_is_object(json_object_get(v[i].doc, "migration")))
                        json_array_append_new(vms, json_string(v[i].key));
        gv_store_objs_free(v, n);
        _cleanup_free_ char *subj = xasprintf("host/%s", host);
        return gv_ctl_op_start(c, "host.evacuate", subj,
                               json_pack("{s:s, s:o}", "host", host, "vms", vms), ret_op, err);
}

int gv_ctl_op_host_evacuate(struct gv_controller *c, const char *op_id, json_t *arg,
                            json_t **ret_result, struct gv_error **err)
{
        const json_t *vms = json_object_get(arg, "vms"), *x;
        size_t i, n = json_array_size(vms), moved = 0, failed = 0;
        json_t *out = json_array();
        _cleanup_strv_free_ char **fails = NULL;

        json_array_foreach(vms, i, x) {
                const char *vm = json_string_value(x);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                _cleanup_json_ json_t *done = NULL, *b = json_pack("{s:s}", "mode", "evacuate");
                json_t *op = NULL;
                const char *why = NULL, *to = NULL;

                if (!vm)
                        continue;
                gv_ctl_op_progress(c, op_id, (int)(100 * i / (n ? n : 1)), "%s (%zu of %zu)",
                                   vm, i + 1, n);
                /* One operation at a time per VM (gv_ctl_vm_idle): one under way (its
                 * agent calls to the silent host fail within seconds) ends first. */
                (void)gv_ctl_vm_wait_idle(c, vm, IDLE_WAIT_MS);
                int r = gv_controller_vm_migrate(c, vm, b, &op, &e);
                if (r >= 0) {
                        r = gv_controller_operation(c, jstr(op, "id"), STEP_WAIT_MS, &done, &e);
                        json_decref(op);
                }
                if (r >= 0 && strcmp(jstr(done, "state") ?: "", "succeeded") != 0) {
                        why = jstr(done, "message") ?: "failed";
                        r = -EIO;
                }
                if (r >= 0)
                        to = jstr(json_object_get(done, "result"), "to");
                else if (!why)
                        why = gv_error_msg(e, r);
                if (r < 0) {
                        failed++;
                        strv_consume(&fails, xasprintf("%s (%s)", vm, why));
                } else {
                        moved++;
                }
                json_array_append_new(out, json_pack("{s:s, s:s, s:s?, s:s?}", "vm", vm,
                                                     "result", r < 0 ? "failed" : "done", "to",
                                                     to, "error", r < 0 ? why : NULL));
        }
        if (failed) {
                _cleanup_free_ char *list = strv_join(fails, "; ");
                json_decref(out);
                return gv_error_set(err, EBUSY, "The evacuation of %s left %zu VM(s) there: %s. "
                                    "The host stays fenced; evacuate again once there is room.",
                                    jstr(arg, "host") ?: "?", failed, list);
        }
        *ret_result = json_pack("{s:O, s:o, s:i}", "host", json_object_get(arg, "host"), "vms",
                                out, "done", (int)moved);
        return 0;
}
