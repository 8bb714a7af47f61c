/* SPDX-License-Identifier: MIT */
/*
 * tenants.c — tenants, their quotas and GPU pools (docs/security.md, "Tenants").
 *
 * A tenant is a store document (GV_STORE_TENANT): {"name", "description", "quota", "gpu_pools",
 * "created_at"}. A VM belongs to the tenant its spec names ("tenant"); member tokens reach only
 * their tenant's VMs (api.c checks every object). Like licence seats, usage is never booked and
 * returned: it follows from the VMs' documents every time it is asked, so nothing can leak.
 *
 *   quota       "vms", "vcpus", "memory_mib", "gpus" (whole GPUs passed through), "slices"
 *               (vGPUs and MIG instances), "seats" {EDITION: N} (vGPU licence seats by the
 *               type's preferred edition, catalog/licensing.h, held while the VM holds seats:
 *               license.c's states); absent = no limit;
 *   counted     every VM of the tenant counts for vms, vcpus, memory, gpus and slices, stopped
 *               or not (its reservation is held until it is deleted, as placement holds it);
 *               seats only while the VM is in a state that holds them;
 *   admission   under the controller's `mu` (vm create and start), with the VM written before
 *               `mu` is let go, so two creates cannot both take the last of a quota;
 *   gpu_pools   the pools (a host's "pool", default "default") the tenant's VMs may be placed
 *               in: hosts carry the label "pool=NAME" in the placement model, and a request
 *               gets the tenant's pools as "any of" labels (place, migrate, drain alike).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define QUOTA_MAX 100000000ull

static const char *const tenant_keys[] = { "description", "quota", "gpu_pools", NULL };

/* The quota's scalar dimensions, in the order messages and answers list them. */
static const char *const dims[] = { "vms", "vcpus", "memory_mib", "gpus", "slices", NULL };
enum { D_VMS, D_VCPUS, D_MEMORY, D_GPUS, D_SLICES, N_DIMS };

static const char *const dim_words[N_DIMS] = {
        [D_VMS] = "VMs", [D_VCPUS] = "vCPUs", [D_MEMORY] = "MiB of memory",
        [D_GPUS] = "whole GPUs", [D_SLICES] = "GPU slices (vGPUs and MIG instances)",
};

struct usage {
        uint64_t d[N_DIMS];
        uint64_t seats[_GV_LICENSE_EDITION_MAX];
};

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static const char *vm_tenant(const json_t *vm)
{
        return jstr(json_object_get(vm, "spec"), "tenant");
}

int gv_ctl_tenant_exists(struct gv_controller *c, const char *name, struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        int r = gv_store_get(c->store, GV_STORE_TENANT, name, &o, NULL);
        gv_store_obj_done(&o);
        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "No tenant '%s' (gpuvirt tenant list shows "
                                    "them; an admin makes one with gpuvirt tenant create).",
                                    name);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read tenant '%s' from the store.", name);
        return 0;
}

/* ---- what a VM uses ---- */

static enum gv_license_edition preferred_edition(const struct gv_catalog *cat, const char *type)
{
        for (size_t m = 0; cat && type && m < cat->n_models; m++) {
                const struct gv_vgpu_type *t = gv_gpu_model_find_vgpu_type(&cat->models[m], type);
                enum gv_license_edition eds[_GV_LICENSE_EDITION_MAX];
                if (t && gv_license_editions_for_series(t->series, eds) > 0)
                        return eds[0];
        }
        return _GV_LICENSE_EDITION_INVALID;
}

static void vm_usage(const struct gv_catalog *cat, const json_t *vm, bool seats,
                     struct usage *u)
{
        const json_t *spec = json_object_get(vm, "spec"), *s;
        const json_t *pl = json_object_get(vm, "placement");
        size_t i;

        u->d[D_VMS]++;
        u->d[D_VCPUS] += (uint64_t)(json_integer_value(json_object_get(spec, "vcpus")) ?: 1);
        u->d[D_MEMORY] += (uint64_t)(json_integer_value(json_object_get(spec, "memory_mib"))
                                     ?: 1024);
        json_array_foreach(json_object_get(pl, "gpus"), i, s) {
                const char *alloc = jstr(s, "alloc") ?: "";
                if (strcmp(alloc, "whole") == 0) {
                        u->d[D_GPUS]++;
                        continue;
                }
                u->d[D_SLICES]++;
                if (seats && (!strcmp(alloc, "vgpu") || !strcmp(alloc, "mig-vgpu"))) {
                        enum gv_license_edition e = preferred_edition(cat, jstr(s, "name"));
                        if ((int)e >= 0)
                                u->seats[e]++;
                }
        }
}

/* Everything the tenant's VMs use, leaving out the VM named `skip` (NULL: none). */
static int tenant_usage(struct gv_controller *c, const char *tenant, const char *skip,
                        struct usage *ret, struct gv_error **err)
{
        struct gv_store_obj *vms = NULL;
        size_t n = 0;
        struct usage u = { 0 };
        int r = gv_store_list(c->store, GV_STORE_VM, &vms, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const char *t = vm_tenant(vms[i].doc);
                if (!t || strcmp(t, tenant) != 0 || (skip && strcmp(vms[i].key, skip) == 0))
                        continue;
                vm_usage(c->catalog, vms[i].doc,
                         gv_ctl_license_state_holds(jstr(vms[i].doc, "state")), &u);
        }
        gv_store_objs_free(vms, n);
        *ret = u;
        return 0;
}

static json_t *usage_json(const struct usage *u)
{
        json_t *j = json_object(), *seats = json_object();
        for (size_t d = 0; d < N_DIMS; d++)
                json_object_set_new(j, dims[d], json_integer((json_int_t)u->d[d]));
        for (size_t e = 0; e < _GV_LICENSE_EDITION_MAX; e++)
                if (u->seats[e])
                        json_object_set_new(seats, gv_license_edition_to_string(e),
                                            json_integer((json_int_t)u->seats[e]));
        json_object_set_new(j, "seats", seats);
        return j;
}

/* ---- admission ---- */

static int over(struct gv_error **err, const char *tenant, const char *what, uint64_t used,
                uint64_t asked, uint64_t limit)
{
        return gv_error_set(err, EUSERS, "Tenant '%s' is over its quota of %s: %llu in use + "
                            "%llu asked > %llu. Delete or stop one of its VMs, or ask an admin "
                            "to raise the quota (gpuvirt tenant set %s ...).", tenant, what,
                            (unsigned long long)used, (unsigned long long)asked,
                            (unsigned long long)limit, tenant);
}

int gv_ctl_tenant_admit(struct gv_controller *c, const json_t *vm, bool create,
                        struct gv_error **err)
{
        const char *tenant = vm_tenant(vm);
        struct gv_store_obj t = { 0 };
        struct usage used, asked = { 0 };
        int r;

        if (!tenant)
                return 0;
        r = gv_store_get(c->store, GV_STORE_TENANT, tenant, &t, NULL);
        if (r < 0)
                return gv_ctl_tenant_exists(c, tenant, err);
        const json_t *q = json_object_get(t.doc, "quota");
        r = tenant_usage(c, tenant, jstr(vm, "name"), &used, err);
        if (r < 0)
                goto out;
        vm_usage(c->catalog, vm, true, &asked);
        for (size_t d = 0; create && d < N_DIMS; d++) {
                const json_t *lim = json_object_get(q, dims[d]);
                if (json_is_integer(lim) &&
                    used.d[d] + asked.d[d] > (uint64_t)json_integer_value(lim) && asked.d[d]) {
                        r = over(err, tenant, dim_words[d], used.d[d], asked.d[d],
                                 (uint64_t)json_integer_value(lim));
                        goto out;
                }
        }
        for (size_t e = 0; e < _GV_LICENSE_EDITION_MAX; e++) {
                const json_t *lim = json_object_get(json_object_get(q, "seats"),
                                                    gv_license_edition_to_string(e));
                if (json_is_integer(lim) && asked.seats[e] &&
                    used.seats[e] + asked.seats[e] > (uint64_t)json_integer_value(lim)) {
                        _cleanup_free_ char *w = xasprintf("%s licence seats",
                                                           gv_license_edition_to_string(e));
                        r = over(err, tenant, w, used.seats[e], asked.seats[e],
                                 (uint64_t)json_integer_value(lim));
                        goto out;
                }
        }
        r = 0;
out:
        gv_store_obj_done(&t);
        return r;
}

int gv_ctl_tenant_restrict(struct gv_controller *c, const json_t *spec,
                           struct gv_sched_request *rq, struct gv_error **err)
{
        const char *tenant = jstr(spec, "tenant");
        struct gv_store_obj t = { 0 };
        const json_t *pools, *p;
        uint64_t mask = 0;
        size_t i;

        rq->any_labels = 0;
        if (!tenant)
                return 0;
        int r = gv_store_get(c->store, GV_STORE_TENANT, tenant, &t, NULL);
        if (r < 0)
                return gv_ctl_tenant_exists(c, tenant, err);
        pools = json_object_get(t.doc, "gpu_pools");
        json_array_foreach(pools, i, p) {
                _cleanup_free_ char *l = xasprintf("pool=%s", json_string_value(p));
                uint64_t m = 0;
                /* A pool no host is in adds nothing; the request then fits nowhere there. */
                if (gv_sched_cluster_label_mask(c->cluster, l, &m, NULL) >= 0)
                        mask |= m;
        }
        if (json_is_array(pools) && !mask) {
                _cleanup_strv_free_ char **l = NULL;
                json_array_foreach(pools, i, p)
                        strv_extend(&l, json_string_value(p));
                _cleanup_free_ char *names = l ? strv_join(l, "', '") : NULL;
                r = gv_error_set(err, ENOSPC, "Tenant '%s' may use the GPU pools %s%s%s and "
                                 "no host is in any of them (gpuvirt host list shows each "
                                 "host's pool; an admin sets one with gpuvirt host pool).",
                                 tenant, names ? "'" : "", names ? names : "(none)",
                                 names ? "'" : "");
        } else {
                rq->any_labels = mask;
        }
        gv_store_obj_done(&t);
        return r;
}

/* ---- the documents ---- */

static int check_u64(const json_t *v, const char *what, struct gv_error **err)
{
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > QUOTA_MAX)
                return gv_error_set(err, EINVAL, "quota.%s: a whole number from 0 to %llu "
                                    "(leave it out for no limit).", what, QUOTA_MAX);
        return 0;
}

static int check_quota(const json_t *q, struct gv_error **err)
{
        const char *k;
        json_t *v;
        if (!json_is_object(q))
                return gv_error_set(err, EINVAL, "quota: an object such as {\"vcpus\": 64, "
                                    "\"gpus\": 2, \"seats\": {\"nvaie\": 8}}.");
        json_object_foreach((json_t *)q, k, v) {
                if (strcmp(k, "seats") == 0) {
                        const char *e;
                        json_t *n;
                        if (!json_is_object(v))
                                return gv_error_set(err, EINVAL, "quota.seats: an object of "
                                                    "edition → seats, e.g. {\"nvaie\": 8}.");
                        json_object_foreach(v, e, n) {
                                if ((int)gv_license_edition_from_string(e) < 0) {
                                        _cleanup_free_ char *valid = gv_license_edition_names();
                                        return gv_error_set(err, EINVAL, "quota.seats: '%s' is "
                                                            "not a licence edition; valid: "
                                                            "%s.", e, valid);
                                }
                                _cleanup_free_ char *w = xasprintf("seats.%s", e);
                                int r = check_u64(n, w, err);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (!strv_contains((char **)dims, k))
                        return gv_error_set(err, EINVAL, "quota: unknown member '%s'; valid: "
                                            "vms, vcpus, memory_mib, gpus, slices, seats.", k);
                int r = check_u64(v, k, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_tenant(const char *name, const json_t *body, struct gv_error **err)
{
        const char *k;
        json_t *v;
        size_t i;
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "Tenant name '%s' is not valid: use 1-63 of "
                                    "a-z 0-9 . _ - starting with a letter or digit.", name);
        if (!json_is_object(body))
                return gv_error_set(err, EINVAL, "A tenant is a JSON object (docs/api.md, "
                                    "tenant).");
        json_object_foreach((json_t *)body, k, v)
                if (!strv_contains((char **)tenant_keys, k))
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; a tenant takes "
                                            "description, quota, gpu_pools.", k);
        v = json_object_get(body, "description");
        if (v && (!json_is_string(v) || strlen(json_string_value(v)) > 256))
                return gv_error_set(err, EINVAL, "description: a string of at most 256 bytes.");
        v = json_object_get(body, "quota");
        if (v) {
                int r = check_quota(v, err);
                if (r < 0)
                        return r;
        }
        v = json_object_get(body, "gpu_pools");
        if (v && !json_is_array(v))
                return gv_error_set(err, EINVAL, "gpu_pools: a list of pool names (leave it out "
                                    "for every pool).");
        json_t *p;
        json_array_foreach(v, i, p)
                if (!gv_name_is_valid(json_string_value(p)))
                        return gv_error_set(err, EINVAL, "gpu_pools[%zu]: a pool name (1-63 of "
                                            "a-z 0-9 . _ -).", i);
        return 0;
}

static json_t *tenant_view(struct gv_controller *c, const struct gv_store_obj *o)
{
        struct usage u;
        json_t *j = json_deep_copy(o->doc);
        if (tenant_usage(c, o->key, NULL, &u, NULL) >= 0)
                json_object_set_new(j, "usage", usage_json(&u));
        if (!json_object_get(j, "quota"))
                json_object_set_new(j, "quota", json_object());
        if (!json_object_get(j, "gpu_pools"))
                json_object_set_new(j, "gpu_pools", json_null());
        return j;
}

json_t *gv_controller_tenants(struct gv_controller *c, const char *only)
{
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        json_t *a = json_array();
        if (gv_store_list(c->store, GV_STORE_TENANT, &objs, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++)
                if (!only || strcmp(objs[i].key, only) == 0)
                        json_array_append_new(a, tenant_view(c, &objs[i]));
        gv_store_objs_free(objs, n);
        return a;
}

int gv_controller_tenant(struct gv_controller *c, const char *name, json_t **ret,
                         struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        int r = gv_store_get(c->store, GV_STORE_TENANT, name, &o, NULL);
        if (r < 0)
                return gv_ctl_tenant_exists(c, name, err);
        *ret = tenant_view(c, &o);
        gv_store_obj_done(&o);
        return 0;
}

int gv_controller_tenant_put(struct gv_controller *c, const char *name, const json_t *body,
                             json_t **ret, struct gv_error **err)
{
        int r = check_tenant(name, body, err);
        if (r < 0)
                return r;
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj o = { 0 };
                _cleanup_json_ json_t *doc = json_deep_copy(body);
                r = gv_store_get(c->store, GV_STORE_TENANT, name, &o, NULL);
                if (r < 0 && r != -ENOENT)
                        return gv_error_set(err, -r, "Cannot read tenant '%s'.", name);
                json_object_set_new(doc, "name", json_string(name));
                json_t *born = r >= 0 ? json_object_get(o.doc, "created_at") : NULL;
                json_object_set_new(doc, "created_at",
                                    born ? json_incref(born)
                                         : json_integer(gv_ctl_now_ms() / 1000));
                struct gv_store_write w = { .op = r >= 0 ? GV_STORE_UPDATE : GV_STORE_CREATE,
                                            .kind = GV_STORE_TENANT, .key = name, .doc = doc,
                                            .generation = o.generation };
                gv_store_obj_done(&o);
                _cleanup_free_ char *subj = xasprintf("tenant/%s", name);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_write_event(c, &w, 1, "tenant.changed", subj, NULL, &e);
                if (r == -ESTALE || r == -EEXIST)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                /* the pools decide where its VMs may go from now on */
                pthread_mutex_lock(&c->mu);
                c->model_dirty = true;
                pthread_mutex_unlock(&c->mu);
                return gv_controller_tenant(c, name, ret, err);
        }
        return gv_error_set(err, ESTALE, "Tenant '%s' changed under every retry.", name);
}

int gv_controller_tenant_delete(struct gv_controller *c, const char *name, struct gv_error **err)
{
        struct gv_store_obj o = { 0 };
        struct gv_store_obj *toks = NULL;
        size_t n = 0;
        struct usage u;
        int r = gv_store_get(c->store, GV_STORE_TENANT, name, &o, NULL);
        if (r < 0)
                return gv_ctl_tenant_exists(c, name, err);
        r = tenant_usage(c, name, NULL, &u, err);
        if (r >= 0 && u.d[D_VMS])
                r = gv_error_set(err, EBUSY, "Tenant '%s' still has %llu VM%s; delete them "
                                 "first (gpuvirt vm list shows each VM's tenant).", name,
                                 (unsigned long long)u.d[D_VMS], u.d[D_VMS] > 1 ? "s" : "");
        if (r >= 0)
                r = gv_store_list(c->store, GV_STORE_TOKEN, &toks, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *t = jstr(toks[i].doc, "tenant");
                if (t && strcmp(t, name) == 0)
                        r = gv_error_set(err, EBUSY, "Token '%s' (id %s) is a member of tenant "
                                         "'%s'; delete it first (gpuvirt token delete %s).",
                                         jstr(toks[i].doc, "name") ?: "?", toks[i].key, name,
                                         toks[i].key);
        }
        gv_store_objs_free(toks, n);
        if (r >= 0) {
                struct gv_store_write w = { .op = GV_STORE_DELETE, .kind = GV_STORE_TENANT,
                                            .key = name, .generation = o.generation };
                _cleanup_free_ char *subj = xasprintf("tenant/%s", name);
                r = gv_ctl_write_event(c, &w, 1, "tenant.deleted", subj, NULL, err);
        }
        gv_store_obj_done(&o);
        return r;
}

/* ---- GPU pools of hosts ---- */

int gv_controller_host_set_pool(struct gv_controller *c, const char *host, const char *pool,
                                json_t **ret, struct gv_error **err)
{
        if (!gv_name_is_valid(pool))
                return gv_error_set(err, EINVAL, "pool: '%s' is not a pool name (1-63 of a-z "
                                    "0-9 . _ - starting with a letter or digit).", pool);
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj o = { 0 };
                int r = gv_store_get(c->store, GV_STORE_HOST, host, &o, NULL);
                if (r == -ENOENT)
                        return gv_error_set(err, ENOENT, "No host '%s' (gpuvirt host list "
                                            "shows them).", host);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot read host '%s'.", host);
                _cleanup_json_ json_t *doc = json_deep_copy(o.doc);
                json_object_set_new(doc, "pool", json_string(pool));
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_HOST,
                                            .key = host, .doc = doc,
                                            .generation = o.generation };
                gv_store_obj_done(&o);
                _cleanup_free_ char *subj = xasprintf("host/%s", host);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_write_event(c, &w, 1, "host.pool", subj,
                                       json_pack("{s:s}", "pool", pool), &e);
                if (r == -ESTALE)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                pthread_mutex_lock(&c->mu);
                c->model_dirty = true;
                pthread_mutex_unlock(&c->mu);
                *ret = json_pack("{s:s, s:s}", "host", host, "pool", pool);
                return 0;
        }
        return gv_error_set(err, ESTALE, "Host '%s' changed under every retry.", host);
}

const char *gv_ctl_host_pool(const json_t *host_doc)
{
        return jstr(host_doc, "pool") ?: "default";
}
