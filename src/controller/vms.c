/* SPDX-License-Identifier: MIT */
/*
 * vms.c — VMs across hosts (docs/api.md): create = validate, place, reserve (one store batch:
 * the host's allocation document at the generation read, compare-and-swap, and the VM's
 * document), then an operation that defines and starts the VM on its agent; any failure there
 * removes what the agent made and releases the reservation. Start, stop and delete are
 * operations too; the poller keeps each VM's state in step with its agent.
 *
 * VM document: {"name", "uuid", "state", "host", "spec" (the create request, normalised),
 * "placement" ({"host", "policy", "gpus": [...]}, null once released), "error", "created_at"}.
 * Allocation document (per host): {"vms": {NAME: placement}}.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/vm-config.h"

#define VM_CREATE_KEYS \
        "name", "image", "disk_size", "vcpus", "memory_mib", "gpus", "nics", "cloud_init", \
        "policy", "host", "maintenance", "tenant"

int gv_ctl_vm_get(struct gv_controller *c, const char *name, struct gv_store_obj *ret,
                  struct gv_error **err)
{
        int r = gv_store_get(c->store, GV_STORE_VM, name, ret, NULL);
        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "No VM '%s' (gpuvirt vm list shows them).",
                                    name);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read VM '%s' from the store.", name);
        return 0;
}

void gv_ctl_vms_changed(struct gv_controller *c)
{
        __atomic_add_fetch(&c->vms_version, 1, __ATOMIC_SEQ_CST);
}

/* Read-modify-write of a VM document with CAS and an event. */
int gv_ctl_vm_update(struct gv_controller *c, const char *name,
                     void (*fn)(json_t *doc, void *arg), void *arg, const char *event,
                     struct gv_error **err)
{
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj v = { 0 };
                int r = gv_ctl_vm_get(c, name, &v, err);
                if (r < 0)
                        return r;
                json_t *doc = json_deep_copy(v.doc);
                fn(doc, arg);
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM,
                                            .key = name, .doc = doc, .generation = v.generation };
                _cleanup_free_ char *subj = xasprintf("vm/%s", name);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_write_event(c, &w, 1, event, subj,
                                       json_pack("{s:O, s:O}", "state",
                                                 json_object_get(doc, "state"), "host",
                                                 json_object_get(doc, "host")),
                                       &e);
                gv_ctl_vms_changed(c);
                json_decref(doc);
                gv_store_obj_done(&v);
                if (r == -ESTALE)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                return 0;
        }
        return gv_error_set(err, ESTALE, "VM '%s' changed under every retry.", name);
}

struct state_arg {
        const char *state;
        const char *error; /* NULL: clear */
};

static void set_state(json_t *doc, void *arg)
{
        const struct state_arg *a = arg;
        json_object_set_new(doc, "state", json_string(a->state));
        json_object_set_new(doc, "error", a->error ? json_string(a->error) : json_null());
}

int gv_ctl_vm_set_state(struct gv_controller *c, const char *name, const char *state,
                        const char *error)
{
        struct state_arg a = { state, error };
        return gv_ctl_vm_update(c, name, set_state, &a, "vm.state", NULL);
}

/* ---- reserve and release ---- */

/* The batch that reserves (placement != NULL) or releases (NULL) `name` on `host`, with
 * vm_write and the admission guards (extra: tenant and licence documents at the generation
 * their counts were made at). A reservation, decided on the model, is written only at the
 * allocation generation the model reflects (model.c): -ESTALE, the model marked dirty, when
 * another controller (or a release here) wrote the host's allocations since: place again. */
static int alloc_write_x(struct gv_controller *c, const char *host, const char *name,
                         const json_t *placement, struct gv_store_write *vm_write,
                         const struct gv_store_write *extra, size_t n_extra, const char *event,
                         json_t *event_data, struct gv_error **err)
{
        int64_t expect = placement ? gv_ctl_model_alloc_gen(c, host) : -1;

        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj a = { 0 };
                _cleanup_json_ json_t *doc = NULL;
                _cleanup_free_ struct gv_store_write *w = xnew0(struct gv_store_write,
                                                                 2 + n_extra);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                _cleanup_free_ char *subj = NULL; /* before any goto stale */
                int r = gv_store_get(c->store, GV_STORE_ALLOC, host, &a, NULL);
                int64_t from = r >= 0 ? a.generation : 0;
                w[0] = (struct gv_store_write){ .kind = GV_STORE_ALLOC, .key = host };
                if (r >= 0) {
                        doc = json_deep_copy(a.doc);
                        w[0].op = GV_STORE_UPDATE;
                        w[0].generation = a.generation;
                } else {
                        doc = json_pack("{s:{}}", "vms");
                        w[0].op = GV_STORE_CREATE;
                }
                gv_store_obj_done(&a);
                if (expect >= 0 && from != expect)
                        goto stale;
                if (!json_is_object(json_object_get(doc, "vms")))
                        json_object_set_new(doc, "vms", json_object());
                if (placement)
                        json_object_set(json_object_get(doc, "vms"), name, (json_t *)placement);
                else
                        json_object_del(json_object_get(doc, "vms"), name);
                w[0].doc = doc;
                w[1] = *vm_write;
                for (size_t i = 0; i < n_extra; i++)
                        w[2 + i] = extra[i];
                subj = xasprintf("vm/%s", name);
                r = gv_ctl_write_event(c, w, 2 + n_extra, event, subj, json_incref(event_data),
                                       &e);
                gv_ctl_vms_changed(c);
                if (r >= 0) {
                        gv_ctl_model_alloc_moved(c, host, from, w[0].new_generation);
                        vm_write->new_generation = w[1].new_generation;
                        json_decref(event_data);
                        return 0;
                }
                bool alloc_moved = false;
                if (r == -EEXIST && w[0].op == GV_STORE_CREATE) {
                        /* Which one exists: the host's allocation document (made meanwhile by
                         * another writer) or the VM (a real conflict)? */
                        struct gv_store_obj x = { 0 };
                        alloc_moved = !(w[1].op == GV_STORE_CREATE &&
                                        gv_store_get(c->store, GV_STORE_VM, name, &x, NULL) >= 0);
                        gv_store_obj_done(&x);
                } else if (r == -ESTALE) {
                        /* Whose: the host's allocations, or the VM's / a guard's? */
                        struct gv_store_obj x = { 0 };
                        int k = gv_store_get(c->store, GV_STORE_ALLOC, host, &x, NULL);
                        alloc_moved = k >= 0 ? x.generation != from : from != 0;
                        gv_store_obj_done(&x);
                }
                if (alloc_moved && expect < 0)
                        continue; /* a release or an unguarded write: re-read and merge */
                if (alloc_moved || (r == -ESTALE && n_extra > 0))
                        goto stale; /* the decision or the count is out of date */
                if (r == -ESTALE)
                        continue; /* the VM's document: as before, read it again */
                json_decref(event_data);
                gv_error_propagate(err, TAKE_PTR(e));
                return r;
        stale:
                c->model_dirty = true; /* a reservation: the caller holds mu */
                json_decref(event_data);
                return gv_error_set(err, ESTALE, "The allocations on host %s changed since this "
                                    "controller's placement model was read (another controller "
                                    "reserved there, or a VM left); place again.", host);
        }
        json_decref(event_data);
        return gv_error_set(err, ESTALE, "The allocations of host %s changed under every retry.",
                            host);
}

int gv_ctl_alloc_write(struct gv_controller *c, const char *host, const char *name,
                       const json_t *placement, struct gv_store_write *vm_write,
                       const char *event, json_t *event_data, struct gv_error **err)
{
        return alloc_write_x(c, host, name, placement, vm_write, NULL, 0, event, event_data,
                             err);
}

/* ---- admission across controllers ----
 *
 * A tenant's quotas and a licence pool's seats are counted over the VM documents under `mu`,
 * which excludes nothing in another controller. So every write that takes quota or seats (a
 * create, a start) carries, in its batch, an update of the tenant's document and of every
 * licence pool document at the generation read BEFORE the count: of two controllers counting
 * at once, one batch fails with -ESTALE and counts again. Releases take nothing and carry none.
 */
struct guards {
        struct gv_store_obj *o;
        size_t n;
        struct gv_store_write *w;
};

static void guards_done(struct guards *g)
{
        gv_store_objs_free(g->o, g->n);
        free(g->w);
        *g = (struct guards){ 0 };
}

static void guards_read(struct gv_controller *c, const json_t *spec, struct guards *g)
{
        const char *tenant = json_string_value(json_object_get(spec, "tenant"));
        struct gv_store_obj *lic = NULL;
        size_t n_lic = 0;

        *g = (struct guards){ 0 };
        if (gv_store_list(c->store, GV_STORE_LICENSE, &lic, &n_lic, NULL) < 0) {
                lic = NULL;
                n_lic = 0;
        }
        g->o = xnew0(struct gv_store_obj, n_lic + 1);
        for (size_t i = 0; i < n_lic; i++)
                g->o[g->n++] = lic[i];
        free(lic); /* its members moved */
        if (tenant && gv_store_get(c->store, GV_STORE_TENANT, tenant, &g->o[g->n], NULL) >= 0)
                g->n++;
        g->w = xnew0(struct gv_store_write, g->n + 1);
        for (size_t i = 0; i < g->n; i++)
                g->w[i] = (struct gv_store_write){ .op = GV_STORE_UPDATE,
                                                   .kind = i < n_lic ? GV_STORE_LICENSE
                                                                     : GV_STORE_TENANT,
                                                   .key = g->o[i].key, .doc = g->o[i].doc,
                                                   .generation = g->o[i].generation };
}

/* Release a VM's reservation and record why (state failed with the error), or delete it. */
int gv_ctl_vm_release(struct gv_controller *c, const char *name, const char *error, bool delete)
{
        struct gv_store_obj v = { 0 };
        int r = gv_ctl_vm_get(c, name, &v, NULL);
        const char *host;

        if (r < 0)
                return r;
        host = json_string_value(json_object_get(json_object_get(v.doc, "placement"), "host"));
        _cleanup_json_ json_t *doc = json_deep_copy(v.doc);
        struct gv_store_write w = { .kind = GV_STORE_VM, .key = name, .generation = v.generation };
        if (delete) {
                w.op = GV_STORE_DELETE;
        } else {
                w.op = GV_STORE_UPDATE;
                json_object_set_new(doc, "state", json_string("failed"));
                json_object_set_new(doc, "placement", json_null());
                json_object_set_new(doc, "error", error ? json_string(error) : json_null());
                w.doc = doc;
        }
        const char *ev = delete ? "vm.deleted" : "vm.state";
        json_t *data = json_pack("{s:s, s:s?}", "state", delete ? "deleted" : "failed", "error",
                                 error);
        if (host)
                r = gv_ctl_alloc_write(c, host, name, NULL, &w, ev, data, NULL);
        else {
                _cleanup_free_ char *subj = xasprintf("vm/%s", name);
                r = gv_ctl_write_event(c, &w, 1, ev, subj, data, NULL);
                gv_ctl_vms_changed(c);
        }
        gv_store_obj_done(&v);
        gv_ctl_model_dirty(c);
        return r;
}

/* ---- create ---- */

static int check_keys(const json_t *spec, struct gv_error **err)
{
        static const char *const keys[] = { VM_CREATE_KEYS, NULL };
        const char *k;
        json_t *v;

        if (!json_is_object(spec))
                return gv_error_set(err, EINVAL, "A VM is a JSON object (docs/api.md, "
                                    "vm-create).");
        json_object_foreach((json_t *)spec, k, v)
                if (!strv_contains((char **)keys, k))
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; a VM takes name, "
                                            "image, disk_size, vcpus, memory_mib, gpus, nics, "
                                            "cloud_init, policy, host, maintenance, "
                                            "tenant.", k);
        const json_t *t = json_object_get(spec, "tenant");
        if (t && (!json_is_string(t) || !gv_name_is_valid(json_string_value(t))))
                return gv_error_set(err, EINVAL, "tenant: the name of a tenant (gpuvirt tenant "
                                    "list shows them); its quotas and GPU pools apply to the "
                                    "VM, and licence costs are summed by it.");
        /* What a drain does with the VM when it cannot move live (a GPU passed through):
         * offline (stop, move, start), stop (it stays, stopped), keep (it blocks the drain). */
        const json_t *m = json_object_get(spec, "maintenance");
        const char *mv = json_string_value(m);
        if (m && (!mv || (strcmp(mv, "offline") != 0 && strcmp(mv, "stop") != 0 &&
                          strcmp(mv, "keep") != 0)))
                return gv_error_set(err, EINVAL, "maintenance: use \"offline\", \"stop\" or "
                                    "\"keep\" (what a host drain does with this VM when it "
                                    "cannot move live).");
        if (json_array_size(json_object_get(spec, "gpus")) > 1)
                return gv_error_set(err, EINVAL, "gpus: at most one GPU request per VM in this "
                                    "version.");
        if (json_object_get(spec, "gpus") && !json_is_array(json_object_get(spec, "gpus")))
                return gv_error_set(err, EINVAL, "gpus: a list (e.g. [{\"kind\": \"vgpu\", "
                                    "\"type\": \"H100XM-20C\"}]).");
        if (!json_is_null(json_object_get(spec, "cloud_init") ?: json_null())) {
                /* Checked here with the agent's own parser, so a bad seed is a 400 before
                 * anything is placed; the agent gets it as given (agent_definition). */
                struct gv_vm_cloud_init *ci = NULL;
                int r = gv_vm_cloud_init_from_json(json_object_get(spec, "cloud_init"), &ci,
                                                   err);
                gv_vm_cloud_init_free(ci);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A bare MIG instance reaches a VM as the MIG-backed vGPU of its profile (vgpu.md §8): the
 * C-series type of the profile on that model, if any. */
static const char *mig_vgpu_type(const struct gv_gpu_model *gm, const char *profile)
{
        const char *any = NULL;
        for (size_t i = 0; gm && i < gm->n_vgpu_types; i++) {
                const struct gv_vgpu_type *t = &gm->vgpu_types[i];
                if (!t->gi_profile || strcmp(t->gi_profile, profile) != 0)
                        continue;
                if (t->series == GV_VGPU_SERIES_C)
                        return t->name;
                any = any ? any : t->name;
        }
        return any;
}

int gv_ctl_placement_agent_types(struct gv_controller *c, const struct gv_sched_placement *p,
                                 json_t *pl, struct gv_error **err)
{
        for (uint32_t i = 0; i < p->n_slots; i++) {
                const struct gv_sched_slot *s = &p->slots[i];
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c->cluster, s->gpu);
                const struct gv_gpu_model *gm = gv_sched_cluster_model(c->cluster,
                                                                       g->model)->catalog;
                json_t *js = json_array_get(json_object_get(pl, "gpus"), i);
                const char *name = json_string_value(json_object_get(js, "name"));
                if (s->alloc != GV_SCHED_ALLOC_MIG)
                        continue;
                const char *t = name ? mig_vgpu_type(gm, name) : NULL;
                if (!t)
                        return gv_error_set(err, EOPNOTSUPP, "MIG %s on %s: a VM gets a MIG "
                                            "instance through a MIG-backed vGPU, and the catalog "
                                            "has none for this profile; ask for a vGPU type.",
                                            name ? name : "?", gm ? gm->name : "?");
                json_object_set_new(js, "vgpu_type", json_string(t));
        }
        return 0;
}

/* The spec checked and completed (defaults), and where the engine would put it now: *ret_pl
 * (the placement's JSON, agent types filled in), with rq and p for a reservation. Under c->mu.
 * `name_required`: a create names its VM (and a taken name is refused); a preview need not. */
static int place_locked(struct gv_controller *c, json_t *spec, bool name_required,
                        const struct gv_sched_policy **ret_policy, struct gv_sched_request *rq,
                        struct gv_sched_placement *p, json_t **ret_pl, struct gv_error **err)
{
        const struct gv_sched_policy *policy = gv_sched_policy_default();
        const char *name = NULL, *pname = NULL, *image = NULL;
        struct gv_sched_explain why;
        int r = name_required ? gv_json_get_string(spec, "name", &name, err)
                              : gv_json_opt_string(spec, "name", &name, err);

        if (r >= 0 && name && !gv_name_is_valid(name))
                r = gv_error_set(err, EINVAL, "name: '%s' is not a valid VM name (lower-case "
                                 "letters, digits and '-', 1-63, starting and ending with a "
                                 "letter or digit).", name);
        if (r >= 0)
                r = gv_json_opt_string(spec, "policy", &pname, err);
        if (r >= 0 && pname)
                r = gv_sched_policy_find(pname, &policy, err);
        if (r >= 0)
                r = gv_json_opt_string(spec, "image", &image, err);
        if (r < 0)
                return r;
        if (image) {
                struct gv_store_obj im = { 0 };
                if (gv_store_get(c->store, GV_STORE_IMAGE, image, &im, NULL) < 0)
                        return gv_error_set(err, ENOENT, "image: no image '%s' (gpuvirt image "
                                            "list shows them).", image);
                gv_store_obj_done(&im);
        }
        if (!json_object_get(spec, "vcpus"))
                json_object_set_new(spec, "vcpus", json_integer(1));
        if (!json_object_get(spec, "memory_mib"))
                json_object_set_new(spec, "memory_mib", json_integer(1024));

        r = gv_ctl_model_ensure(c, err);
        if (r >= 0 && name_required) {
                struct gv_store_obj old = { 0 };
                if (gv_store_get(c->store, GV_STORE_VM, name, &old, NULL) >= 0)
                        r = gv_error_set(err, EEXIST, "A VM named '%s' exists already.", name);
                gv_store_obj_done(&old);
        }
        if (r >= 0)
                r = gv_ctl_request_from_spec(c, spec, rq, err);
        if (r >= 0)
                r = gv_ctl_tenant_restrict(c, spec, rq, err);
        if (r >= 0)
                r = gv_sched_request_resolve(c->cluster, rq, err);
        if (r >= 0) {
                r = gv_sched_place(c->cluster, policy, rq, p, &why, err);
                if (r == -ENOSPC) {
                        _cleanup_free_ char *x = gv_sched_explain_format(rq, &why);
                        gv_error_free(err ? *err : NULL);
                        if (err)
                                *err = NULL;
                        r = gv_error_set(err, ENOSPC, "%s", x);
                }
        }
        if (r < 0)
                return r;
        _cleanup_json_ json_t *pl = gv_ctl_placement_to_json(c, p, policy->name);
        r = gv_ctl_placement_agent_types(c, p, pl, err);
        if (r < 0)
                return r;
        *ret_policy = policy;
        *ret_pl = TAKE_PTR(pl);
        return 0;
}

int gv_controller_vm_place(struct gv_controller *c, const json_t *spec_in, json_t **ret,
                           struct gv_error **err)
{
        _cleanup_json_ json_t *spec = NULL, *pl = NULL;
        const struct gv_sched_policy *policy;
        struct gv_sched_request rq;
        struct gv_sched_placement p;
        int r = check_keys(spec_in, err);

        if (r < 0)
                return r;
        spec = json_deep_copy(spec_in);
        pthread_mutex_lock(&c->mu);
        r = place_locked(c, spec, false, &policy, &rq, &p, &pl, err);
        pthread_mutex_unlock(&c->mu);
        if (r < 0)
                return r;
        /* Nothing is reserved: the answer holds until the cluster changes. */
        *ret = json_pack("{s:O, s:O, s:O, s:b}", "host", json_object_get(pl, "host"),
                         "placement", pl, "spec", spec, "reserved", 0);
        return 0;
}

/* Attempts of a create or a start whose decision or count another controller made stale. */
#define ADMIT_ATTEMPTS 5

int gv_controller_vm_create(struct gv_controller *c, const json_t *spec_in, json_t **ret_op,
                            struct gv_error **err)
{
        const char *name = NULL;
        uint8_t uuid[16];
        char us[37];
        int r;

        r = check_keys(spec_in, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *spec = json_deep_copy(spec_in);
        pthread_mutex_lock(&c->mu);
        for (int attempt = 0;; attempt++) {
                _cleanup_json_ json_t *pl = NULL, *vm = NULL;
                const struct gv_sched_policy *policy;
                struct gv_sched_request rq;
                struct gv_sched_placement p;
                struct guards g = { 0 };
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;

                /* The guards before anything is counted or placed (see guards_read). */
                guards_read(c, spec, &g);
                r = place_locked(c, spec, true, &policy, &rq, &p, &pl, &e);
                name = json_string_value(json_object_get(spec, "name"));
                if (r >= 0)
                        r = gv_sched_reserve(c->cluster, &rq, &p, &e);
                if (r < 0) {
                        guards_done(&g);
                        gv_error_propagate(err, TAKE_PTR(e));
                        break;
                }
                if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid))
                        memset(uuid, 0x5a, sizeof(uuid));
                uuid[6] = (uuid[6] & 0x0f) | 0x40;
                uuid[8] = (uuid[8] & 0x3f) | 0x80;
                snprintf(us, sizeof(us),
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
                         uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14],
                         uuid[15]);
                vm = json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:n, s:I}", "name", name, "uuid",
                               us, "state", "pending", "host", json_object_get(pl, "host"),
                               "spec", spec, "placement", pl, "error", "created_at",
                               (json_int_t)(gv_ctl_now_ms() / 1000));
                /* Its seats from now on (license.c), refused here before anything is written
                 * when an enforcing pool is full. */
                json_object_set_new(vm, "seat_since", json_integer(gv_ctl_now_ms()));
                struct gv_store_write w = { .op = GV_STORE_CREATE, .kind = GV_STORE_VM,
                                            .key = name, .doc = vm };
                r = gv_ctl_tenant_admit(c, vm, true, &e);
                if (r >= 0)
                        r = gv_ctl_license_admit(c, vm, &e);
                if (r >= 0)
                        r = alloc_write_x(c, json_string_value(json_object_get(pl, "host")),
                                          name, pl, &w, g.w, g.n, "vm.created",
                                          json_pack("{s:s, s:O}", "state", "pending",
                                                    "placement", pl),
                                          &e);
                guards_done(&g);
                if (r >= 0)
                        break;
                (void)gv_sched_release(c->cluster, &rq, &p, NULL);
                c->model_dirty = true;
                if (r == -ESTALE && attempt + 1 >= ADMIT_ATTEMPTS) {
                        /* A conflict, not a failure: 409 (reliability.md R8: never 500). */
                        r = gv_error_set(err, EBUSY, "VM '%s': other controllers reserved on "
                                         "the cluster under each of %d attempts; try again.",
                                         name, ADMIT_ATTEMPTS);
                        break;
                }
                if (r != -ESTALE) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        break;
                }
                /* Another controller reserved or counted meanwhile: the model is rebuilt from
                 * the store and the request placed again. */
        }
        pthread_mutex_unlock(&c->mu);
        if (r < 0)
                return r;
        GV_FAILPOINT("vm.create.reserved");
        _cleanup_free_ char *target = xasprintf("vm/%s", name);
        return gv_ctl_op_start(c, "vm.create", target, json_pack("{s:s}", "name", name), ret_op,
                               err);
}

/* The agent's VM definition (docs/agent.md) of a VM document. */
json_t *gv_ctl_agent_definition(struct gv_controller *c, const json_t *vm, struct gv_error **err)
{
        const json_t *spec = json_object_get(vm, "spec"), *s;
        const char *image = json_string_value(json_object_get(spec, "image"));
        json_t *gpus = json_array(), *disks = json_array();
        size_t i;

        json_array_foreach(json_object_get(json_object_get(vm, "placement"), "gpus"), i, s) {
                const char *alloc = json_string_value(json_object_get(s, "alloc")) ?: "";
                json_t *pci = json_object_get(s, "pci"), *name = json_object_get(s, "name");
                json_t *g;
                if (strcmp(alloc, "whole") == 0)
                        g = json_pack("{s:s, s:O}", "mode", "passthrough", "gpu", pci);
                else if (strcmp(alloc, "vgpu") == 0)
                        g = json_pack("{s:s, s:O, s:O}", "mode", "vgpu", "type", name, "gpu", pci);
                else if (strcmp(alloc, "mig-vgpu") == 0)
                        g = json_pack("{s:s, s:O, s:O}", "mode", "mig-vgpu", "type", name, "gpu",
                                      pci);
                else if (strcmp(alloc, "mig") == 0)
                        g = json_pack("{s:s, s:O, s:O}", "mode", "mig-vgpu", "type",
                                      json_object_get(s, "vgpu_type"), "gpu", pci);
                else
                        g = NULL;
                if (!g) {
                        json_decref(gpus);
                        json_decref(disks);
                        gv_error_set(err, EINVAL, "placement: allocation '%s' cannot be given to "
                                     "a VM.", alloc);
                        return NULL;
                }
                json_array_append_new(gpus, g);
        }
        if (image) {
                struct gv_store_obj im = { 0 };
                if (gv_store_get(c->store, GV_STORE_IMAGE, image, &im, err) < 0) {
                        json_decref(gpus);
                        json_decref(disks);
                        return NULL;
                }
                json_t *d = json_pack("{s:s, s:O}", "name", "root", "base",
                                      json_object_get(im.doc, "path"));
                if (json_object_get(spec, "disk_size"))
                        json_object_set(d, "size", json_object_get(spec, "disk_size"));
                json_array_append_new(disks, d);
                gv_store_obj_done(&im);
        }
        json_t *def = json_pack("{s:O, s:O, s:O, s:O, s:o, s:o}", "name",
                                json_object_get(vm, "name"), "uuid", json_object_get(vm, "uuid"),
                                "vcpus", json_object_get(spec, "vcpus"), "memory_mib",
                                json_object_get(spec, "memory_mib"), "gpus", gpus, "disks",
                                disks);
        if (json_object_get(spec, "nics"))
                json_object_set(def, "nics", json_object_get(spec, "nics"));
        if (json_object_get(spec, "cloud_init"))
                json_object_set(def, "cloud_init", json_object_get(spec, "cloud_init"));
        return def;
}

int gv_ctl_agent_vm(struct gv_controller *c, const char *op_id, const char *step,
                    const char *host, const char *method, const char *path, const json_t *body,
                    json_t **ret, struct gv_error **err)
{
        _cleanup_free_ char *opid = xasprintf("%s-%s", op_id, step);
        return gv_ctl_agent_call(c, host, method, path, body, opid, ret, err);
}

/* The engine may place a slot on an empty GPU of another mode (docs/placement.md, "Modes"):
 * switch it on the agent first (a vGPU needs mode vgpu, a MIG instance mode mig; the agent binds
 * a pass-through GPU itself). The GPU is empty — the engine switches only empty GPUs — and the
 * agent refuses the switch if a VM holds it after all. */
struct restore_arg {
        size_t slot;
        const char *mode;
};

static void set_restore(json_t *doc, void *arg)
{
        const struct restore_arg *a = arg;
        json_t *s = json_array_get(json_object_get(json_object_get(doc, "placement"), "gpus"),
                                   a->slot);
        if (s)
                json_object_set_new(s, "restore_mode", json_string(a->mode));
}

int gv_ctl_switch_modes(struct gv_controller *c, const char *op_id, const char *name,
                        const char *host, const json_t *placement, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        const json_t *s;
        size_t i;
        bool switched = false;
        int r = gv_store_get(c->store, GV_STORE_HOST, host, &h, err);

        if (r < 0)
                return r;
        json_array_foreach(json_object_get(placement, "gpus"), i, s) {
                const char *alloc = json_string_value(json_object_get(s, "alloc")) ?: "";
                const char *pci = json_string_value(json_object_get(s, "pci"));
                const char *want = !strcmp(alloc, "vgpu") ? "vgpu"
                                   : !strcmp(alloc, "mig") || !strcmp(alloc, "mig-vgpu") ? "mig"
                                                                                          : NULL;
                const char *now = NULL;
                const json_t *g;
                size_t k;
                if (!want || !pci)
                        continue;
                json_array_foreach(json_object_get(json_object_get(h.doc, "inventory"), "gpus"),
                                   k, g)
                        if (!strcmp(json_string_value(json_object_get(g, "pci_address")) ?: "",
                                    pci))
                                now = json_string_value(json_object_get(g, "mode"));
                if (now && !strcmp(now, want))
                        continue;
                _cleanup_free_ char *path = xasprintf("/v1/gpus/%s/mode", pci);
                _cleanup_free_ char *step = xasprintf("mode-%zu", i);
                _cleanup_json_ json_t *body = json_pack("{s:s}", "mode", want);
                gv_ctl_op_progress(c, op_id, 15, "switching GPU %s of %s to mode %s", pci, host,
                                   want);
                /* Recorded first: the switch is undone when the VM lets the GPU go, as the
                 * engine assumes (an emptied GPU returns to its configured mode). */
                struct restore_arg ra = { i, now ? now : "none" };
                (void)gv_ctl_vm_update(c, name, set_restore, &ra, "vm.state", NULL);
                r = gv_ctl_agent_vm(c, op_id, step, host, "POST", path, body, NULL, err);
                if (r < 0)
                        break;
                switched = true;
        }
        gv_store_obj_done(&h);
        if (r >= 0 && switched)
                (void)gv_ctl_host_refresh(c, host, NULL);
        return r;
}

/* After a VM let its GPUs go: a GPU switched for it (restore_mode) and now empty goes back to
 * the mode it had. Best effort: a GPU left in the other mode is still usable, and shown. */
void gv_ctl_restore_modes(struct gv_controller *c, const char *op_id, const char *host,
                          const json_t *placement)
{
        const json_t *s;
        size_t i;
        bool any = false;

        json_array_foreach(json_object_get(placement, "gpus"), i, s) {
                const char *mode = json_string_value(json_object_get(s, "restore_mode"));
                const char *pci = json_string_value(json_object_get(s, "pci"));
                if (!mode || !pci)
                        continue;
                _cleanup_free_ char *user = gv_ctl_gpu_user(c, host, pci);
                if (user)
                        continue; /* another VM took it meanwhile: it keeps the mode */
                _cleanup_free_ char *path = xasprintf("/v1/gpus/%s/mode", pci);
                _cleanup_free_ char *step = xasprintf("restore-%zu", i);
                _cleanup_json_ json_t *body = json_pack("{s:s}", "mode", mode);
                (void)gv_ctl_agent_vm(c, op_id, step, host, "POST", path, body, NULL, NULL);
                any = true;
        }
        if (any)
                (void)gv_ctl_host_refresh(c, host, NULL);
}

int gv_ctl_op_vm_create(struct gv_controller *c, const char *op_id, json_t *arg,
                        json_t **ret_result, struct gv_error **err)
{
        const char *name = json_string_value(json_object_get(arg, "name"));
        struct gv_store_obj v = { 0 };
        _cleanup_json_ json_t *def = NULL, *st = NULL;
        _cleanup_free_ char *start = NULL, *kill = NULL, *del = NULL;
        const char *host;
        int r = gv_ctl_vm_get(c, name ? name : "?", &v, err);

        if (r < 0)
                return r;
        host = json_string_value(json_object_get(v.doc, "host"));
        if (!json_is_object(json_object_get(v.doc, "placement")) || !host) {
                gv_store_obj_done(&v);
                return gv_error_set(err, EINVAL, "VM '%s' holds no reservation (state %s).", name,
                                    json_string_value(json_object_get(v.doc, "state")));
        }
        GV_FAILPOINT("vm.create.recorded");
        start = xasprintf("/v1/vms/%s/start", name);
        kill = xasprintf("/v1/vms/%s/kill", name);
        del = xasprintf("/v1/vms/%s", name);
        def = gv_ctl_agent_definition(c, v.doc, err);
        r = def ? 0 : -EINVAL;
        if (r >= 0)
                r = gv_ctl_switch_modes(c, op_id, name, host,
                                        json_object_get(v.doc, "placement"), err);
        if (r >= 0) {
                gv_ctl_op_progress(c, op_id, 20, "defining %s on %s", name, host);
                r = gv_ctl_agent_vm(c, op_id, "define", host, "POST", "/v1/vms", def, NULL, err);
        }
        if (r >= 0) {
                GV_FAILPOINT("vm.create.defined");
                (void)gv_ctl_vm_set_state(c, name, "starting", NULL);
                GV_FAILPOINT("vm.create.starting");
                gv_ctl_op_progress(c, op_id, 50, "starting %s on %s", name, host);
                r = gv_ctl_agent_vm(c, op_id, "start", host, "POST", start, NULL, &st, err);
        }
        if (r < 0) {
                /* Leave nothing behind: the agent's VM (and with it its GPU hardware), then the
                 * reservation; the VM stays, failed, saying why. */
                _cleanup_free_ char *why = xstrdup(gv_error_msg(err ? *err : NULL, r));
                gv_ctl_op_progress(c, op_id, 90, "cleaning up on %s: %s", host, why);
                (void)gv_ctl_agent_vm(c, op_id, "kill", host, "POST", kill, NULL, NULL, NULL);
                (void)gv_ctl_agent_vm(c, op_id, "delete", host, "DELETE", del, NULL, NULL, NULL);
                struct gv_store_obj now = { 0 };
                _cleanup_json_ json_t *pl = NULL;
                if (gv_ctl_vm_get(c, name, &now, NULL) >= 0) /* with the modes switched meanwhile */
                        pl = json_incref(json_object_get(now.doc, "placement"));
                gv_store_obj_done(&now);
                (void)gv_ctl_vm_release(c, name, why, false);
                gv_ctl_restore_modes(c, op_id, host, pl);
                gv_store_obj_done(&v);
                return r;
        }
        GV_FAILPOINT("vm.create.started");
        (void)gv_ctl_vm_set_state(c, name, "running", NULL);
        GV_FAILPOINT("vm.create.done");
        /* The GPU views show the new hardware in a moment, not at the next tick (in the
         * poller: a refresh here cost the create 15 ms, BENCHMARKS.md). */
        gv_ctl_poll_soon(c);
        *ret_result = json_pack("{s:s, s:s, s:O}", "vm", name, "host", host, "placement",
                                json_object_get(v.doc, "placement"));
        gv_store_obj_done(&v);
        return 0;
}

/* ---- start, stop, delete ---- */

static void set_starting(json_t *doc, void *arg)
{
        json_object_set_new(doc, "state", json_string("starting"));
        json_object_set_new(doc, "seat_since", json_integer(*(int64_t *)arg));
        json_object_set_new(doc, "error", json_null());
}

/* A start takes its licence seats under `mu` and says so in the VM's state before `mu` is let
 * go: two starts cannot both take the last seat (license.c). A VM that holds them already
 * (starting, running, ...) is left as it is; any other (stopped, crashed, failed) is admitted. */
static int start_admit(struct gv_controller *c, const char *name, struct gv_error **err)
{
        int r = 0;

        pthread_mutex_lock(&c->mu);
        for (int attempt = 0; attempt < ADMIT_ATTEMPTS; attempt++) {
                struct gv_store_obj v = { 0 };
                struct guards g = { 0 };
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_vm_get(c, name, &v, &e);
                const char *st = r >= 0 ? json_string_value(json_object_get(v.doc, "state"))
                                        : NULL;
                if (r < 0 || !json_is_object(json_object_get(v.doc, "placement")) ||
                    gv_ctl_license_state_holds(st)) {
                        gv_store_obj_done(&v);
                        gv_error_propagate(err, TAKE_PTR(e));
                        break; /* holds its seats already, or vm_op says why it cannot */
                }
                /* stopped, crashed, a start that failed: the guards (guards_read) first, then
                 * the VM at the generation the count saw, then the count. */
                guards_read(c, json_object_get(v.doc, "spec"), &g);
                gv_store_obj_done(&v);
                r = gv_ctl_vm_get(c, name, &v, &e);
                int64_t now = gv_ctl_now_ms();
                if (r >= 0) {
                        json_object_set_new(v.doc, "seat_since", json_integer(now));
                        r = gv_ctl_tenant_admit(c, v.doc, false, &e);
                }
                if (r >= 0)
                        r = gv_ctl_license_admit(c, v.doc, &e);
                if (r >= 0) {
                        _cleanup_json_ json_t *doc = json_deep_copy(v.doc);
                        set_starting(doc, &now);
                        _cleanup_free_ struct gv_store_write *w =
                                xnew0(struct gv_store_write, g.n + 1);
                        w[0] = (struct gv_store_write){ .op = GV_STORE_UPDATE,
                                                        .kind = GV_STORE_VM, .key = name,
                                                        .doc = doc,
                                                        .generation = v.generation };
                        for (size_t i = 0; i < g.n; i++)
                                w[1 + i] = g.w[i];
                        _cleanup_free_ char *subj = xasprintf("vm/%s", name);
                        r = gv_ctl_write_event(c, w, g.n + 1, "vm.starting", subj,
                                               json_pack("{s:O, s:O}", "state",
                                                         json_object_get(doc, "state"), "host",
                                                         json_object_get(doc, "host")),
                                               &e);
                        gv_ctl_vms_changed(c);
                }
                gv_store_obj_done(&v);
                guards_done(&g);
                if (r == -ESTALE && attempt + 1 >= ADMIT_ATTEMPTS) {
                        r = gv_error_set(err, EBUSY, "VM '%s' or its tenant's and licence "
                                         "pools' counts changed under each of %d attempts; "
                                         "try again.", name, ADMIT_ATTEMPTS);
                        break;
                }
                if (r != -ESTALE) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        break;
                }
        }
        pthread_mutex_unlock(&c->mu);
        return r;
}

/* A move under way owns the VM until it ends (the 1,000-kill run found a stop accepted
 * mid-move: the move then carried the stopped VM on and failed to start it): -EBUSY. A delete
 * is still taken for a move left unresolved by a silent target: the source's copy goes, and the
 * target's when it answers (migrate-settle.c). */
static int moving(const char *kind, const char *name, const json_t *doc, struct gv_error **err)
{
        const json_t *mig = json_object_get(doc, "migration");
        if (json_is_object(mig) &&
            (strcmp(kind, "vm.delete") != 0 ||
             strcmp(json_string_value(json_object_get(mig, "state")) ?: "", "unresolved") != 0))
                return gv_error_set(err, EBUSY, "VM '%s' is being moved to %s; wait for the "
                                    "move to end (GET /api/v1/operations), then try again.",
                                    name, json_string_value(json_object_get(mig, "host")) ?: "?");
        return 0;
}

static int vm_op(struct gv_controller *c, const char *kind, const char *name, json_t *arg,
                 json_t **ret_op, struct gv_error **err)
{
        struct gv_store_obj v = { 0 };
        int r = 0;
        /* Before start_admit writes "starting": refused without a trace (gv_ctl_op_start
         * refuses one that got here at the same time as another). A VM not found: said below. */
        if (gv_ctl_vm_get(c, name, &v, NULL) >= 0) {
                r = moving(kind, name, v.doc, err);
                if (r >= 0)
                        r = gv_ctl_vm_idle(c, v.doc, err);
        }
        gv_store_obj_done(&v);
        if (r >= 0 && strcmp(kind, "vm.start") == 0)
                r = start_admit(c, name, err);
        if (r >= 0)
                r = gv_ctl_vm_get(c, name, &v, err);

        if (r >= 0 && strcmp(kind, "vm.delete") != 0 &&
            !json_is_object(json_object_get(v.doc, "placement")))
                r = gv_error_set(err, EBUSY, "VM '%s' is %s and holds no placement; delete it "
                                 "and create it again.", name,
                                 json_string_value(json_object_get(v.doc, "state")));
        gv_store_obj_done(&v);
        if (r < 0) {
                json_decref(arg);
                return r;
        }
        if (strcmp(kind, "vm.start") == 0)
                GV_FAILPOINT("vm.start.admitted");
        json_object_set_new(arg, "name", json_string(name));
        _cleanup_free_ char *target = xasprintf("vm/%s", name);
        r = gv_ctl_op_start(c, kind, target, arg, ret_op, err);
        /* Give back the seats start_admit took; not when another operation took the VM in
         * between (-EBUSY): the state is that one's now. */
        if (r < 0 && r != -EBUSY && strcmp(kind, "vm.start") == 0)
                (void)gv_ctl_vm_set_state(c, name, "stopped", NULL);
        return r;
}

int gv_controller_vm_start(struct gv_controller *c, const char *name, json_t **ret_op,
                           struct gv_error **err)
{
        return vm_op(c, "vm.start", name, json_object(), ret_op, err);
}

int gv_controller_vm_stop(struct gv_controller *c, const char *name, int timeout_s,
                          json_t **ret_op, struct gv_error **err)
{
        if (timeout_s < 0 || timeout_s > 3600)
                return gv_error_set(err, EINVAL, "timeout_s: 0..3600.");
        return vm_op(c, "vm.stop", name, json_pack("{s:i}", "timeout_s", timeout_s), ret_op,
                     err);
}

int gv_controller_vm_delete(struct gv_controller *c, const char *name, json_t **ret_op,
                            struct gv_error **err)
{
        return vm_op(c, "vm.delete", name, json_object(), ret_op, err);
}

static int simple_vm_op(struct gv_controller *c, const char *op_id, json_t *arg,
                        const char *verb, const char *during, const char *after,
                        const json_t *body, json_t **ret_result, struct gv_error **err)
{
        const char *name = json_string_value(json_object_get(arg, "name"));
        struct gv_store_obj v = { 0 };
        int r = gv_ctl_vm_get(c, name ? name : "?", &v, err);
        _cleanup_free_ char *path = NULL;
        const char *host;

        if (r < 0)
                return r;
        host = json_string_value(json_object_get(v.doc, "host"));
        path = xasprintf("/v1/vms/%s/%s", name, verb);
        bool is_start = strcmp(verb, "start") == 0;
        (void)gv_ctl_vm_set_state(c, name, during, NULL);
        GV_FAILPOINT(is_start ? "vm.start.marked" : "vm.stop.marked");
        gv_ctl_op_progress(c, op_id, 30, "%s on %s", during, host ? host : "?");
        r = host ? gv_ctl_agent_vm(c, op_id, verb, host, "POST", path, body, NULL, err)
                 : gv_error_set(err, EINVAL, "VM '%s' has no host.", name);
        if (r >= 0)
                GV_FAILPOINT(is_start ? "vm.start.answered" : "vm.stop.answered");
        (void)gv_ctl_vm_set_state(c, name, r >= 0 ? after : "failed",
                           r >= 0 ? NULL : gv_error_msg(err ? *err : NULL, r));
        if (r >= 0)
                GV_FAILPOINT(is_start ? "vm.start.done" : "vm.stop.done");
        if (r >= 0)
                *ret_result = json_pack("{s:s, s:s}", "vm", name, "state", after);
        gv_store_obj_done(&v);
        return r;
}

int gv_ctl_op_vm_start(struct gv_controller *c, const char *op_id, json_t *arg,
                       json_t **ret_result, struct gv_error **err)
{
        return simple_vm_op(c, op_id, arg, "start", "starting", "running", NULL, ret_result,
                            err);
}

int gv_ctl_op_vm_stop(struct gv_controller *c, const char *op_id, json_t *arg,
                      json_t **ret_result, struct gv_error **err)
{
        _cleanup_json_ json_t *body = json_object();
        json_int_t t = json_integer_value(json_object_get(arg, "timeout_s"));
        if (t > 0)
                json_object_set_new(body, "timeout_s", json_integer(t));
        return simple_vm_op(c, op_id, arg, "stop", "stopping", "stopped", body, ret_result,
                            err);
}

int gv_ctl_op_vm_delete(struct gv_controller *c, const char *op_id, json_t *arg,
                        json_t **ret_result, struct gv_error **err)
{
        const char *name = json_string_value(json_object_get(arg, "name"));
        struct gv_store_obj v = { 0 };
        _cleanup_free_ char *kill = NULL, *del = NULL;
        const char *host;
        int r = gv_ctl_vm_get(c, name ? name : "?", &v, err);

        if (r < 0)
                return r == -ENOENT ? 0 : r; /* deleted already: a resumed delete is done */
        host = json_string_value(json_object_get(v.doc, "host"));
        kill = xasprintf("/v1/vms/%s/kill", name);
        del = xasprintf("/v1/vms/%s", name);
        (void)gv_ctl_vm_set_state(c, name, "deleting", NULL);
        GV_FAILPOINT("vm.delete.marked");
        if (host) {
                gv_ctl_op_progress(c, op_id, 30, "removing %s from %s", name, host);
                r = gv_ctl_agent_vm(c, op_id, "kill", host, "POST", kill, NULL, NULL, err);
                if (r == -ENOENT)
                        r = 0;
                if (r >= 0) {
                        GV_FAILPOINT("vm.delete.killed");
                        r = gv_ctl_agent_vm(c, op_id, "delete", host, "DELETE", del, NULL, NULL,
                                            err);
                        if (r == -ENOENT)
                                r = 0;
                }
                if (r >= 0)
                        GV_FAILPOINT("vm.delete.removed");
        }
        _cleanup_json_ json_t *pl = json_incref(json_object_get(v.doc, "placement"));
        _cleanup_free_ char *h = host ? xstrdup(host) : NULL;
        gv_store_obj_done(&v);
        if (r < 0) {
                (void)gv_ctl_vm_set_state(c, name, "failed", gv_error_msg(err ? *err : NULL, r));
                return r;
        }
        gv_ctl_op_progress(c, op_id, 80, "releasing %s's reservation", name);
        r = gv_ctl_vm_release(c, name, NULL, true);
        if (r >= 0)
                GV_FAILPOINT("vm.delete.released");
        if (r >= 0 && h) {
                gv_ctl_restore_modes(c, op_id, h, pl);
                gv_ctl_poll_soon(c);
        }
        if (r < 0 && r != -ENOENT)
                return gv_error_set(err, -r, "VM '%s' is gone from its host, but its "
                                    "reservation could not be released.", name);
        *ret_result = json_pack("{s:s, s:b}", "vm", name, "deleted", 1);
        return 0;
}

/* ---- after a restart ---- */

void gv_ctl_vms_resume(struct gv_controller *c, int64_t min_age_ms)
{
        int64_t now = gv_ctl_now_ms();
        struct gv_store_obj *v = NULL, *o = NULL;
        size_t n = 0, n_o = 0;

        if (gv_store_list(c->store, GV_STORE_VM, &v, &n, NULL) < 0)
                return;
        if (gv_store_list(c->store, GV_STORE_OPERATION, &o, &n_o, NULL) < 0) {
                gv_store_objs_free(v, n);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *st = json_string_value(json_object_get(v[i].doc, "state")) ?: "";
                _cleanup_free_ char *target = xasprintf("vm/%s", v[i].key);
                bool has_op = false;
                if (strcmp(st, "pending") != 0 || now - v[i].updated_at < min_age_ms)
                        continue;
                for (size_t k = 0; k < n_o && !has_op; k++)
                        has_op = !gv_controller_operation_done(o[k].doc) &&
                                 !strcmp(json_string_value(json_object_get(o[k].doc, "kind")) ?: "",
                                         "vm.create") &&
                                 !strcmp(json_string_value(json_object_get(o[k].doc,
                                                                           "target")) ?: "",
                                         target);
                /* Reserved, and the controller stopped before it recorded the operation that
                 * carries the create out: record it now. */
                if (!has_op)
                        (void)gv_ctl_op_start(c, "vm.create", target,
                                              json_pack("{s:s}", "name", v[i].key), NULL, NULL);
        }
        gv_store_objs_free(o, n_o);
        gv_store_objs_free(v, n);
}

/* ---- observing the agents ---- */

static const char *state_of_phase(const char *phase)
{
        static const char *const same[] = { "defined", "starting", "running", "stopping",
                                            "stopped", "crashed", NULL };
        return phase && strv_contains((char **)same, phase) ? phase : NULL;
}

void gv_ctl_vms_observe(struct gv_controller *c, const char *host, const json_t *agent_vms,
                        bool host_down, const struct gv_store_obj *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *h = json_string_value(json_object_get(v[i].doc, "host"));
                const char *cur = json_string_value(json_object_get(v[i].doc, "state")) ?: "";
                const char *want = NULL;
                size_t k;
                const json_t *a;
                if (!h || strcmp(h, host) != 0 || !json_is_object(json_object_get(v[i].doc,
                                                                                  "placement")))
                        continue;
                /* An operation in flight owns the state until it ends. */
                if (!strcmp(cur, "pending") || !strcmp(cur, "deleting") ||
                    !strcmp(cur, "starting") || !strcmp(cur, "stopping"))
                        continue;
                if (host_down) {
                        want = "unknown";
                } else {
                        json_array_foreach(agent_vms, k, a)
                                if (!strcmp(json_string_value(json_object_get(a, "name")) ?: "",
                                            v[i].key))
                                        want = state_of_phase(json_string_value(
                                                json_object_get(a, "phase")));
                }
                if (!want || !strcmp(want, cur))
                        continue;
                /* One compare-and-swap against the document read before the agent answered: if
                 * an operation wrote the VM since, its state is newer than this observation. */
                _cleanup_json_ json_t *doc = json_deep_copy(v[i].doc);
                struct state_arg sa = { want, NULL };
                set_state(doc, &sa);
                /* What it was before its host went silent: an evacuation (fence.c) starts
                 * elsewhere only the VMs that ran. */
                if (host_down)
                        json_object_set_new(doc, "last_known_state", json_string(cur));
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM,
                                            .key = v[i].key, .doc = doc,
                                            .generation = v[i].generation };
                _cleanup_free_ char *subj = xasprintf("vm/%s", v[i].key);
                (void)gv_ctl_write_event(c, &w, 1, "vm.state", subj,
                                         json_pack("{s:s, s:s, s:b}", "state", want, "host",
                                                   host, "observed", 1),
                                         NULL);
                gv_ctl_vms_changed(c);
        }
}

/* ---- views ---- */

/* The store's document (freshly parsed for this call, so ours to change: no copy). */
static json_t *vm_view(const struct gv_store_obj *v)
{
        json_t *j = json_incref(v->doc);
        json_object_set_new(j, "generation", json_integer(v->generation));
        return j;
}

json_t *gv_controller_vms(struct gv_controller *c)
{
        struct gv_store_obj *v = NULL;
        size_t n = 0;
        json_t *a = json_array();

        if (gv_store_list(c->store, GV_STORE_VM, &v, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, vm_view(&v[i]));
        gv_store_objs_free(v, n);
        return a;
}

char *gv_controller_vms_text(struct gv_controller *c)
{
        uint64_t v = __atomic_load_n(&c->vms_version, __ATOMIC_SEQ_CST);
        int64_t sv = -1;
        char *text = NULL;

        /* Other controllers write VMs too: the store's change counter, read before the list. A
         * store that cannot say (-1) never matches: no cache. */
        if (gv_store_version(c->store, &sv, NULL) < 0)
                sv = -1;
        pthread_mutex_lock(&c->vms_cache_mu);
        if (c->vms_cache && c->vms_cache_version == v && sv >= 0 &&
            c->vms_cache_store_version == sv)
                text = xstrdup(c->vms_cache);
        pthread_mutex_unlock(&c->vms_cache_mu);
        if (text)
                return text;
        _cleanup_json_ json_t *l = gv_controller_vms(c);
        _cleanup_free_ char *s = json_dumps(l, JSON_COMPACT | JSON_SORT_KEYS);
        text = xasprintf("%s\n", s ? s : "[]");
        /* Built from what the store held at version v or later: good for v. */
        pthread_mutex_lock(&c->vms_cache_mu);
        free(c->vms_cache);
        c->vms_cache = xstrdup(text);
        c->vms_cache_version = v;
        c->vms_cache_store_version = sv;
        pthread_mutex_unlock(&c->vms_cache_mu);
        return text;
}

int gv_controller_vm(struct gv_controller *c, const char *name, json_t **ret,
                     struct gv_error **err)
{
        struct gv_store_obj v = { 0 };
        int r = gv_ctl_vm_get(c, name, &v, err);

        if (r < 0)
                return r;
        *ret = vm_view(&v);
        gv_store_obj_done(&v);
        return 0;
}
