/* SPDX-License-Identifier: MIT */
/*
 * drain.c — host maintenance (issue 6, docs/api.md): a drained host is in state
 * `maintenance` — it keeps what runs there and takes no new placements — and its VMs move
 * elsewhere: those with vGPU or MIG slices (and none passed through) live, the others as the
 * drain's pass-through policy says: `offline` (stop, move, start), `stop` (stopped where they
 * are) or `keep` (left running; the drain says it could not empty the host). A dry run answers
 * the plan and changes nothing. Undrain makes the host take placements again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"
#include "util/strv.h"

#define STEP_WAIT_MS (30 * 60 * 1000)

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static bool movable_live(const json_t *vm)
{
        const json_t *s;
        size_t i;

        json_array_foreach(json_object_get(json_object_get(vm, "placement"), "gpus"), i, s)
                if (!strcmp(jstr(s, "alloc") ?: "", "whole"))
                        return false;
        return strcmp(jstr(vm, "state") ?: "", "running") == 0;
}

/* [{"vm", "action": "live"|"offline"|"stop"|"keep", "why"}] for the VMs on host. */
static json_t *plan_of(struct gv_controller *c, const char *host, const char *policy)
{
        struct gv_store_obj *v = NULL;
        size_t n = 0;
        json_t *plan = json_array();

        if (gv_store_list(c->store, GV_STORE_VM, &v, &n, NULL) < 0)
                return plan;
        for (size_t i = 0; i < n; i++) {
                const char *action, *why;
                if (strcmp(jstr(v[i].doc, "host") ?: "", host) != 0 ||
                    !json_is_object(json_object_get(v[i].doc, "placement")))
                        continue;
                if (movable_live(v[i].doc)) {
                        action = "live";
                        why = "vGPU or MIG: moves live";
                } else if (strcmp(jstr(v[i].doc, "state") ?: "", "running") != 0) {
                        action = "offline";
                        why = "not running: its reservation moves";
                } else {
                        const char *own = jstr(json_object_get(v[i].doc, "spec"),
                                               "maintenance");
                        action = own ? own : policy;
                        why = own ? "a GPU passed through: cannot move live (its own policy)"
                                  : "a GPU passed through: cannot move live";
                }
                json_array_append_new(plan, json_pack("{s:s, s:s, s:s}", "vm", v[i].key,
                                                      "action", action, "why", why));
        }
        gv_store_objs_free(v, n);
        return plan;
}

static void set_state_arg(json_t *doc, void *arg)
{
        json_object_set_new(doc, "state", json_string(arg));
}

int gv_controller_host_drain(struct gv_controller *c, const char *host, const json_t *body,
                             json_t **ret, bool *ret_is_op, struct gv_error **err)
{
        static const char *const keys[] = { "dry_run", "passthrough", NULL };
        const char *policy = "offline", *k;
        bool dry = false;
        struct gv_store_obj h = { 0 };
        json_t *x;
        int r;

        json_object_foreach((json_t *)body, k, x)
                if (!strv_contains((char **)keys, k))
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; a drain takes "
                                            "dry_run, passthrough.", k);
        r = gv_json_opt_bool(body, "dry_run", &dry, err);
        if (r >= 0)
                r = gv_json_opt_string(body, "passthrough", &policy, err);
        if (r < 0)
                return r;
        if (strcmp(policy, "offline") && strcmp(policy, "stop") && strcmp(policy, "keep"))
                return gv_error_set(err, EINVAL, "passthrough: '%s' is not offline, stop or "
                                    "keep.", policy);
        r = gv_store_get(c->store, GV_STORE_HOST, host, &h, NULL);
        gv_store_obj_done(&h);
        if (r < 0)
                return gv_error_set(err, ENOENT, "No host '%s' (gpuvirt host list shows them).",
                                    host);
        json_t *plan = plan_of(c, host, policy);
        if (dry) {
                *ret = json_pack("{s:s, s:s, s:o}", "host", host, "passthrough", policy, "plan",
                                 plan);
                *ret_is_op = false;
                return 0;
        }
        r = gv_ctl_host_update(c, host, set_state_arg, (void *)"maintenance", NULL, err);
        if (r < 0) {
                json_decref(plan);
                return r;
        }
        gv_ctl_model_dirty(c);
        _cleanup_free_ char *subj = xasprintf("host/%s", host);
        gv_ctl_event(c, "host.maintenance", subj, json_pack("{s:O}", "plan", plan));
        *ret_is_op = true;
        return gv_ctl_op_start(c, "host.drain", subj,
                               json_pack("{s:s, s:s, s:o}", "host", host, "passthrough", policy,
                                         "plan", plan),
                               ret, err);
}

int gv_controller_host_undrain(struct gv_controller *c, const char *host, json_t **ret,
                               struct gv_error **err)
{
        int r = gv_ctl_host_update(c, host, set_state_arg, (void *)"up", NULL, err);
        if (r < 0)
                return r;
        gv_ctl_model_dirty(c);
        _cleanup_free_ char *subj = xasprintf("host/%s", host);
        gv_ctl_event(c, "host.up", subj, json_pack("{s:s}", "was", "maintenance"));
        return gv_controller_host(c, host, ret, err);
}

/* Run one step's operation to its end; 0 when it succeeded. */
static int run_step(struct gv_controller *c, int r, json_t *op, const char **ret_why,
                    char **ret_buf)
{
        _cleanup_json_ json_t *done = NULL;

        if (r < 0)
                return r;
        r = gv_controller_operation(c, jstr(op, "id"), STEP_WAIT_MS, &done, NULL);
        json_decref(op);
        if (r < 0)
                return r;
        if (!strcmp(jstr(done, "state") ?: "", "succeeded"))
                return 0;
        *ret_buf = xstrdup(jstr(done, "message") ?: "failed");
        *ret_why = *ret_buf;
        return -EIO;
}

int gv_ctl_op_host_drain(struct gv_controller *c, const char *op_id, json_t *arg,
                         json_t **ret_result, struct gv_error **err)
{
        const json_t *plan = json_object_get(arg, "plan"), *p;
        size_t i, n = json_array_size(plan), moved = 0, kept = 0, failed = 0;
        json_t *out = json_array();

        json_array_foreach(plan, i, p) {
                const char *vm = jstr(p, "vm"), *action = jstr(p, "action") ?: "";
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                _cleanup_free_ char *buf = NULL;
                const char *why = NULL;
                json_t *op = NULL;
                int r = 0;

                gv_ctl_op_progress(c, op_id, (int)(100 * i / (n ? n : 1)), "%s: %s (%zu of %zu)",
                                   vm, action, i + 1, n);
                /* An operation under way on the VM (a user's, or a move this drain made
                 * before a restart) ends first: one at a time per VM (gv_ctl_vm_idle). */
                (void)gv_ctl_vm_wait_idle(c, vm ? vm : "?", STEP_WAIT_MS);
                /* One read of the VM after it: that operation may have stopped it (a stopped
                 * VM moves offline), and a drain resumed after a restart finds the moves it
                 * made before the restart done (a VM no longer on the host, or gone, is not
                 * moved again). */
                struct gv_store_obj cur = { 0 };
                bool moves = !strcmp(action, "live") || !strcmp(action, "offline");
                bool found = moves && gv_ctl_vm_get(c, vm ? vm : "?", &cur, NULL) >= 0;
                bool moved_already = moves && (!found || strcmp(jstr(cur.doc, "host") ?: "",
                                                                jstr(arg, "host") ?: ""));
                if (found && !strcmp(action, "live") &&
                    strcmp(jstr(cur.doc, "state") ?: "", "running") != 0)
                        action = "offline";
                gv_store_obj_done(&cur);
                if (moved_already) {
                        r = 0;
                } else if (!strcmp(action, "live") || !strcmp(action, "offline")) {
                        json_t *b = json_pack("{s:s}", "mode", action);
                        r = gv_controller_vm_migrate(c, vm, b, &op, &e);
                        json_decref(b);
                        r = run_step(c, r, op, &why, &buf);
                } else if (!strcmp(action, "stop")) {
                        r = gv_controller_vm_stop(c, vm, 0, &op, &e);
                        r = run_step(c, r, op, &why, &buf);
                }
                if (r < 0 && !why)
                        why = gv_error_msg(e, r);
                GV_FAILPOINT("host.drain.step");
                if (!strcmp(action, "keep"))
                        kept++;
                else if (r < 0)
                        failed++;
                else
                        moved++;
                json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s?}", "vm", vm,
                                                     "action", action, "result",
                                                     !strcmp(action, "keep") ? "kept"
                                                     : r < 0                 ? "failed"
                                                                             : "done",
                                                     "error", r < 0 ? why : NULL));
        }
        if (failed) {
                /* The operation fails, saying which VMs stayed and why (its result would not
                 * be shown on a failure). */
                _cleanup_strv_free_ char **l = NULL;
                const json_t *o;
                json_array_foreach(out, i, o)
                        if (!strcmp(jstr(o, "result") ?: "", "failed"))
                                strv_consume(&l, xasprintf("%s (%s)", jstr(o, "vm"),
                                                           jstr(o, "error") ?: "?"));
                _cleanup_free_ char *list = strv_join(l, "; ");
                json_decref(out);
                return gv_error_set(err, EBUSY, "The drain of %s left %zu VM(s) there: %s. The "
                                    "host stays in maintenance; drain again or undrain it.",
                                    jstr(arg, "host") ?: "?", failed, list);
        }
        *ret_result = json_pack("{s:O, s:o, s:i, s:i, s:i, s:b}", "host",
                                json_object_get(arg, "host"), "vms", out, "done", (int)moved,
                                "kept", (int)kept, "failed", (int)failed, "empty", kept == 0);
        return 0;
}
