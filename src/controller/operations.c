/* SPDX-License-Identifier: MIT */
/*
 * operations.c — long actions as operations (docs/api.md): a document in the store with state,
 * progress and message, carried out by a thread. Every step an operation takes is idempotent
 * (agent calls carry an Operation-Id derived from the operation's id), so an operation the
 * controller was in the middle of when it stopped is simply run again at the next start.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "http/problem.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"
#include "util/parse.h"

#define OP_WAIT_SLICE_MS 200

static const struct {
        const char *kind;
        gv_ctl_op_fn fn;
} op_table[] = {
        { "vm.create", gv_ctl_op_vm_create },
        { "vm.start", gv_ctl_op_vm_start },
        { "vm.stop", gv_ctl_op_vm_stop },
        { "vm.delete", gv_ctl_op_vm_delete },
        { "vm.migrate", gv_ctl_op_vm_migrate },
        { "host.drain", gv_ctl_op_host_drain },
        { "host.evacuate", gv_ctl_op_host_evacuate },
        { "gpu.mode", gv_ctl_op_gpu_mode },
        { "gpu.mig", gv_ctl_op_gpu_mig },
};

gv_ctl_op_fn gv_ctl_op_fn_of(const char *kind)
{
        for (size_t i = 0; i < ELEMENTSOF(op_table); i++)
                if (strcmp(op_table[i].kind, kind) == 0)
                        return op_table[i].fn;
        return NULL;
}

bool gv_controller_operation_done(const json_t *op)
{
        const char *s = json_string_value(json_object_get(op, "state"));
        return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0);
}

static void wake(struct gv_controller *c)
{
        pthread_mutex_lock(&c->notify_mu);
        c->changes++;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->notify_mu);
}

/* Write the operation's document: only its owner's thread writes it after the create (the
 * keeper renews its lease between writes: a compare-and-swap, retried while the owner is still
 * this controller). An operation another controller took over (lease.c) is not written any
 * more: false. */
static bool op_save(struct gv_controller *c, json_t *doc, int64_t generation, const char *event)
{
        const char *id = json_string_value(json_object_get(doc, "id"));
        _cleanup_free_ char *subject = xasprintf("operation/%s", id);
        bool ok = false;

        json_object_set_new(doc, "updated_at", json_integer(gv_ctl_now_ms() / 1000));
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_OPERATION,
                                            .key = id, .doc = doc, .generation = generation };
                int r;
                gv_ctl_lease_stamp(c, doc);
                if (event) {
                        json_t *data = json_pack("{s:O, s:O, s:O, s:O}", "kind",
                                                 json_object_get(doc, "kind"), "target",
                                                 json_object_get(doc, "target"), "state",
                                                 json_object_get(doc, "state"), "progress",
                                                 json_object_get(doc, "progress"));
                        r = gv_ctl_write_event(c, &w, 1, event, subject, data, NULL);
                } else {
                        r = gv_store_write(c->store, &w, 1, NULL);
                }
                if (r != -ESTALE) {
                        ok = r >= 0;
                        break;
                }
                /* The keeper renewed the lease meanwhile, or another controller took it. */
                struct gv_store_obj o = { 0 };
                if (gv_store_get(c->store, GV_STORE_OPERATION, id, &o, NULL) < 0)
                        break;
                bool mine = gv_ctl_lease_owns(c, o.doc);
                generation = o.generation;
                gv_store_obj_done(&o);
                if (!mine)
                        break;
        }
        wake(c);
        return ok;
}

static json_t *op_load(struct gv_controller *c, const char *id, int64_t *ret_generation)
{
        struct gv_store_obj o = { 0 };
        json_t *doc = NULL;

        if (gv_store_get(c->store, GV_STORE_OPERATION, id, &o, NULL) >= 0) {
                doc = json_incref(o.doc);
                if (ret_generation)
                        *ret_generation = o.generation;
        }
        gv_store_obj_done(&o);
        return doc;
}

void gv_ctl_op_progress(struct gv_controller *c, const char *op_id, int pct, const char *fmt,
                        ...)
{
        int64_t gen = 0;
        _cleanup_json_ json_t *doc = op_load(c, op_id, &gen);
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (!doc || !gv_ctl_lease_owns(c, doc))
                return; /* taken over by another controller: its writes now */
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        json_object_set_new(doc, "progress", json_integer(pct));
        json_object_set_new(doc, "message", json_string(msg ? msg : ""));
        (void)op_save(c, doc, gen, "operation.progress");
}

struct op_run {
        struct gv_controller *c;
        char *id;
};

/* An operation resumed after a restart (or taken over) whose VM was deleted and created again
 * meanwhile under the same name: it was asked of the old VM and must not act on the new one
 * (crash-random found a stop resumed after a controller kill stopping a VM started since). */
static bool vm_replaced(struct gv_controller *c, const json_t *doc, struct gv_error **err)
{
        const char *target = json_string_value(json_object_get(doc, "target")) ?: "";
        const char *want = json_string_value(json_object_get(doc, "vm_uuid"));
        struct gv_store_obj vm = { 0 };
        bool replaced = false;

        if (!want || !gv_startswith(target, "vm/") ||
            gv_store_get(c->store, GV_STORE_VM, target + 3, &vm, NULL) < 0)
                return false;
        const char *have = json_string_value(json_object_get(vm.doc, "uuid"));
        if (have && strcmp(have, want) != 0) {
                replaced = true;
                gv_error_set(err, ESTALE, "VM '%s' was deleted and created again since this "
                             "operation was asked for; it applied to the VM that is gone and "
                             "was not carried out.", target + 3);
        }
        gv_store_obj_done(&vm);
        return replaced;
}

static void *op_thread(void *arg)
{
        struct op_run *run = arg;
        struct gv_controller *c = run->c;
        int64_t gen = 0;
        _cleanup_json_ json_t *doc = op_load(c, run->id, &gen);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *result = NULL;
        gv_ctl_op_fn fn;
        int r;

        if (!doc || !gv_ctl_lease_owns(c, doc))
                goto out;
        fn = gv_ctl_op_fn_of(json_string_value(json_object_get(doc, "kind")));
        json_object_set_new(doc, "state", json_string("running"));
        if (!op_save(c, doc, gen, "operation.progress"))
                goto out; /* another controller has it now */
        if (vm_replaced(c, doc, &e))
                r = -ESTALE;
        else if (!fn)
                r = gv_error_set(&e, EINVAL, "Unknown operation kind '%s'.",
                                 json_string_value(json_object_get(doc, "kind")));
        else
                r = fn(c, run->id, json_object_get(doc, "arg"), &result, &e);
        json_decref(doc);
        doc = op_load(c, run->id, &gen); /* progress was written meanwhile */
        if (!doc || !gv_ctl_lease_owns(c, doc))
                goto out; /* taken over while it ran: the new owner ends it */
        if (r >= 0) {
                json_object_set_new(doc, "state", json_string("succeeded"));
                json_object_set_new(doc, "progress", json_integer(100));
                json_object_set_new(doc, "result", result ? result : json_null());
                result = NULL;
        } else {
                json_object_set_new(doc, "state", json_string("failed"));
                json_object_set_new(doc, "error", gv_http_problem_from_error(r, e, NULL));
                json_object_set_new(doc, "message", json_string(gv_error_msg(e, r)));
        }
        (void)op_save(c, doc, gen, "operation.done");
out:
        gv_ctl_lease_disown(c, run->id);
        json_decref(result);
        free(run->id);
        free(run);
        return NULL;
}

void gv_ctl_op_run(struct gv_controller *c, const char *id)
{
        struct op_run *run = xnew0(struct op_run, 1);
        run->c = c;
        run->id = xstrdup(id);
        gv_ctl_lease_own(c, id);
        gv_ctl_spawn(c, op_thread, run);
}

/* One operation at a time per VM (the 1,000-kill run found a stop accepted while a start, whose
 * client a kill had cut off, still ran; docs/api.md "One operation at a time"): the VM document
 * names its latest operation ("operation"), and another is refused while that one is pending or
 * running. A name left behind by an operation that ended, or was pruned, does not hold the VM. */
int gv_ctl_vm_idle(struct gv_controller *c, const json_t *vm_doc, struct gv_error **err)
{
        const char *id = json_string_value(json_object_get(vm_doc, "operation"));
        const char *name = json_string_value(json_object_get(vm_doc, "name")) ?: "?";
        struct gv_store_obj o = { 0 };
        int r = 0;

        if (!id || gv_store_get(c->store, GV_STORE_OPERATION, id, &o, NULL) < 0)
                return 0;
        if (!gv_controller_operation_done(o.doc))
                r = gv_error_set(err, EBUSY, "VM '%s' has operation %s (%s, %s) under way; wait "
                                 "for it to end (GET /api/v1/operations/%s), then try again.",
                                 name, id,
                                 json_string_value(json_object_get(o.doc, "kind")) ?: "?",
                                 json_string_value(json_object_get(o.doc, "state")) ?: "?", id);
        gv_store_obj_done(&o);
        return r;
}

int gv_ctl_vm_wait_idle(struct gv_controller *c, const char *name, int wait_ms)
{
        struct gv_store_obj v = { 0 };
        _cleanup_free_ char *id = NULL;
        _cleanup_json_ json_t *done = NULL;

        if (gv_ctl_vm_get(c, name, &v, NULL) < 0)
                return 0;
        if (gv_ctl_vm_idle(c, v.doc, NULL) < 0)
                id = xstrdup(json_string_value(json_object_get(v.doc, "operation")));
        gv_store_obj_done(&v);
        return id ? gv_controller_operation(c, id, wait_ms, &done, NULL) : 0;
}

/* The operation's document and, for one on a VM, the VM's naming it (one batch: of two asked
 * at once, one is recorded and the other refused, -EBUSY). */
static int op_record(struct gv_controller *c, json_t *doc, const char *id, const char *kind,
                     const char *target, struct gv_error **err)
{
        _cleanup_free_ char *subject = xasprintf("operation/%s", id);
        const char *vm = gv_startswith(target, "vm/") ? target + 3 : NULL;

        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj v = { 0 };
                _cleanup_json_ json_t *vdoc = NULL;
                struct gv_store_write w[2] = {
                        { .op = GV_STORE_CREATE, .kind = GV_STORE_OPERATION, .key = id,
                          .doc = doc },
                };
                size_t n = 1;
                int r;

                if (vm && gv_store_get(c->store, GV_STORE_VM, vm, &v, NULL) >= 0) {
                        r = gv_ctl_vm_idle(c, v.doc, err);
                        if (r < 0) {
                                gv_store_obj_done(&v);
                                return r;
                        }
                        /* The tenant of the VM it works on: its members may follow it (api.c);
                         * and which VM of that name: op_thread refuses to act on a later one. */
                        json_t *t = json_object_get(json_object_get(v.doc, "spec"), "tenant");
                        if (json_is_string(t))
                                json_object_set(doc, "tenant", t);
                        json_t *u = json_object_get(v.doc, "uuid");
                        if (json_is_string(u))
                                json_object_set(doc, "vm_uuid", u);
                        vdoc = json_deep_copy(v.doc);
                        json_object_set_new(vdoc, "operation", json_string(id));
                        w[n++] = (struct gv_store_write){ .op = GV_STORE_UPDATE,
                                                          .kind = GV_STORE_VM, .key = vm,
                                                          .doc = vdoc,
                                                          .generation = v.generation };
                }
                gv_store_obj_done(&v);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_write_event(c, w, n, "operation.progress", subject,
                                       json_pack("{s:s, s:s, s:s}", "kind", kind, "target",
                                                 target, "state", "pending"),
                                       &e);
                if (n > 1)
                        gv_ctl_vms_changed(c);
                if (r != -ESTALE || n == 1) {
                        if (r < 0)
                                gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                /* The VM was written meanwhile: read again (another operation may hold it). */
        }
        return gv_error_set(err, EBUSY, "VM '%s' changed under each of 10 attempts to record "
                            "the operation; try again.", vm);
}

int gv_ctl_op_start(struct gv_controller *c, const char *kind, const char *target, json_t *arg,
                    json_t **ret_op, struct gv_error **err)
{
        _cleanup_free_ char *id = gv_ctl_new_id("op");
        int64_t now = gv_ctl_now_ms() / 1000;
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:n, s:n, s:o}", "id",
                                id, "kind", kind, "target", target, "state", "pending",
                                "progress", 0, "message", "", "created_at", (json_int_t)now,
                                "updated_at", (json_int_t)now, "result", "error", "arg",
                                arg ? arg : json_object());
        gv_ctl_lease_stamp(c, doc); /* this controller runs it (lease.c) */
        int r = op_record(c, doc, id, kind, target, err);
        if (r < 0) {
                json_decref(doc);
                return r;
        }
        gv_ctl_op_run(c, id);
        if (ret_op) {
                json_object_del(doc, "arg");
                *ret_op = doc;
        } else {
                json_decref(doc);
        }
        return 0;
}

void gv_ctl_op_resume_all(struct gv_controller *c)
{
        /* Those whose owner is gone (a crashed or stopped controller, or none recorded: a
         * store from before several controllers); a live one's stay with it (lease.c). */
        gv_ctl_lease_takeover(c);
}

static json_t *public_op(json_t *doc)
{
        json_t *p = json_deep_copy(doc);
        json_object_del(p, "arg");
        /* Which controller runs it (several may share the store), without the pid's details. */
        const json_t *id = json_object_get(json_object_get(doc, "owner"), "id");
        if (id)
                json_object_set(p, "owner", (json_t *)id);
        else
                json_object_del(p, "owner");
        return p;
}

int gv_controller_operation(struct gv_controller *c, const char *id, int wait_ms, json_t **ret,
                            struct gv_error **err)
{
        struct timespec deadline;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        for (;;) {
                uint64_t seen;
                int w = 0;
                pthread_mutex_lock(&c->notify_mu);
                seen = c->changes;
                pthread_mutex_unlock(&c->notify_mu);
                _cleanup_json_ json_t *doc = op_load(c, id, NULL);
                if (!doc)
                        return gv_error_set(err, ENOENT, "No operation '%s'.", id);
                if (wait_ms <= 0 || gv_controller_operation_done(doc)) {
                        *ret = public_op(doc);
                        return 0;
                }
                /* Woken by this controller's writes; another controller's (it may run the
                 * operation) are seen by reading again every OP_WAIT_SLICE_MS. */
                struct timespec slice;
                clock_gettime(CLOCK_REALTIME, &slice);
                slice.tv_nsec += OP_WAIT_SLICE_MS * 1000000L;
                if (slice.tv_nsec >= 1000000000L) {
                        slice.tv_sec++;
                        slice.tv_nsec -= 1000000000L;
                }
                bool last = slice.tv_sec > deadline.tv_sec ||
                            (slice.tv_sec == deadline.tv_sec && slice.tv_nsec >= deadline.tv_nsec);
                if (last)
                        slice = deadline;
                pthread_mutex_lock(&c->notify_mu);
                while (!c->stopping && c->changes == seen && w != ETIMEDOUT)
                        w = pthread_cond_timedwait(&c->cond, &c->notify_mu, &slice);
                bool stop = c->stopping;
                pthread_mutex_unlock(&c->notify_mu);
                if ((w == ETIMEDOUT && last) || stop)
                        wait_ms = 0;
        }
}

static int cmp_created_desc(const void *a, const void *b)
{
        const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        json_int_t cx = json_integer_value(json_object_get(x, "created_at"));
        json_int_t cy = json_integer_value(json_object_get(y, "created_at"));
        return (cy > cx) - (cy < cx);
}

json_t *gv_controller_operations(struct gv_controller *c, size_t limit)
{
        struct gv_store_obj *o = NULL;
        size_t n = 0;
        json_t *a = json_array();

        if (gv_store_list(c->store, GV_STORE_OPERATION, &o, &n, NULL) < 0)
                return a;
        json_t **v = xnew0(json_t *, n + 1);
        for (size_t i = 0; i < n; i++)
                v[i] = o[i].doc;
        qsort(v, n, sizeof(*v), cmp_created_desc);
        for (size_t i = 0; i < n && (!limit || i < limit); i++)
                json_array_append_new(a, public_op(v[i]));
        free(v);
        gv_store_objs_free(o, n);
        return a;
}
