/* SPDX-License-Identifier: MIT */
/*
 * model.c — the placement model (src/sched) of the cluster, rebuilt from the store: each host
 * that reported an inventory, with its GPUs (catalog models, configured modes), then every
 * VM's placement reserved again. Decisions are made on it under the controller's lock; the
 * store is what makes a reservation real (vms.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

void gv_ctl_model_dirty(struct gv_controller *c)
{
        pthread_mutex_lock(&c->mu);
        c->model_dirty = true;
        pthread_mutex_unlock(&c->mu);
}

/* ---- the guard against other writers ----
 *
 * Several controllers may reserve on one store. The model is built from the VM documents; each
 * host's allocation document changes in the same batch as any reservation on the host. So the
 * model records, per host, the generation of the allocation document it reflects (read BEFORE
 * the VMs: a write between the two reads makes the recorded generation older, never newer), and
 * a reservation writes that document only at that generation (gv_ctl_alloc_write): a host that
 * another controller reserved on since is refused with -ESTALE and the model rebuilt. */

int64_t gv_ctl_model_alloc_gen(struct gv_controller *c, const char *host)
{
        pthread_mutex_lock(&c->model_gen_mu);
        const json_t *g = json_object_get(c->model_alloc_gen, host);
        int64_t v = json_is_integer(g) ? (int64_t)json_integer_value(g) : -1;
        pthread_mutex_unlock(&c->model_gen_mu);
        return v;
}

void gv_ctl_model_alloc_moved(struct gv_controller *c, const char *host, int64_t from,
                              int64_t to)
{
        pthread_mutex_lock(&c->model_gen_mu);
        const json_t *g = json_object_get(c->model_alloc_gen, host);
        if (json_is_integer(g) && json_integer_value(g) == from)
                json_object_set_new(c->model_alloc_gen, host, json_integer(to));
        pthread_mutex_unlock(&c->model_gen_mu);
}

/* Rebuild when another process wrote the store since the model was built, at most every
 * MODEL_FRESH_MS (this controller's own writes move the counter too). */
#define MODEL_FRESH_MS 1000

static const struct gv_gpu_model *catalog_model(const struct gv_catalog *cat, const char *name)
{
        for (size_t i = 0; i < cat->n_models; i++)
                if (strcasecmp(cat->models[i].name, name) == 0)
                        return &cat->models[i];
        return NULL;
}

static enum gv_sched_gpu_mode mode_of(const char *agent_mode)
{
        enum gv_sched_gpu_mode m = agent_mode ? gv_sched_gpu_mode_from_string(agent_mode)
                                              : _GV_SCHED_MODE_INVALID;
        return (int)m < 0 || m == GV_SCHED_MODE_SHARE ? GV_SCHED_MODE_UNASSIGNED : m;
}

static enum gv_sched_host_state host_state_of(const char *s)
{
        enum gv_sched_host_state st = s ? gv_sched_host_state_from_string(s)
                                        : _GV_SCHED_HOST_STATE_INVALID;
        return (int)st < 0 ? GV_SCHED_HOST_DOWN : st;
}

static int add_host(struct gv_controller *c, struct gv_sched_cluster *cl, char ***pci,
                    unsigned **index, const struct gv_store_obj *h, char ***problems)
{
        unsigned agent_index[GV_SCHED_MAX_HOST_GPUS];
        const json_t *inv = json_object_get(h->doc, "inventory"), *gpus;
        struct gv_sched_gpu_spec specs[GV_SCHED_MAX_HOST_GPUS];
        const char *pcis[GV_SCHED_MAX_HOST_GPUS];
        _cleanup_free_ char *label = xasprintf("host=%s", h->key);
        _cleanup_free_ char *pool = xasprintf("pool=%s", gv_ctl_host_pool(h->doc));
        const char *labels[] = { label, pool };
        size_t n = 0, i;
        json_t *g;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;

        if (!json_is_object(inv))
                return 0; /* registered, never reached: nothing to place on */
        gpus = json_object_get(inv, "gpus");
        json_array_foreach(gpus, i, g) {
                const char *model = json_string_value(json_object_get(g, "model"));
                const char *addr = json_string_value(json_object_get(g, "pci_address"));
                const struct gv_gpu_model *gm = model ? catalog_model(c->catalog, model) : NULL;
                if (!gm || !addr) {
                        strv_consume(problems, xasprintf("host %s: GPU %zu (%s) is not in the "
                                                         "catalog; it takes no placements.",
                                                         h->key, i, model ? model : "?"));
                        continue;
                }
                /* reliability.md F8: a GPU the agent reports unhealthy (lost, reset needed)
                 * takes no placements until it answers again; its VMs keep their records. */
                if (strcmp(json_string_value(json_object_get(g, "health")) ?: "ok", "ok") != 0) {
                        strv_consume(problems, xasprintf("host %s: GPU %s is unhealthy; it takes "
                                                         "no placements.", h->key, addr));
                        continue;
                }
                if (n == GV_SCHED_MAX_HOST_GPUS)
                        break;
                int m = gv_sched_cluster_find_model(cl, gm->name);
                if (m < 0)
                        m = gv_sched_cluster_add_model(cl, gm, &e);
                if (m < 0)
                        return m;
                json_t *vg = json_object_get(g, "vgpu");
                specs[n] = (struct gv_sched_gpu_spec){
                        .model = (uint32_t)m,
                        .mode = mode_of(json_string_value(json_object_get(g, "mode"))),
                        .mixed_size = gm->vgpu_heterogeneous_capable &&
                                      json_is_true(json_object_get(vg, "heterogeneous")),
                };
                agent_index[n] = (unsigned)i;
                pcis[n++] = addr;
        }
        for (i = 0; i < ELEMENTSOF(labels); i++) {
                r = gv_sched_cluster_label(cl, labels[i], &e);
                if (r < 0)
                        return r;
        }
        json_int_t cpus = json_integer_value(json_object_get(inv, "cpus"));
        json_int_t mem = json_integer_value(json_object_get(inv, "memory_mib"));
        struct gv_sched_host_spec spec = {
                .name = h->key,
                .cpu_milli = (uint64_t)(cpus > 0 ? cpus : 1) * 1000u,
                .memory_mib = (uint64_t)(mem > 0 ? mem : 1024),
                .state = host_state_of(json_string_value(json_object_get(h->doc, "state"))),
                .labels = labels,
                .n_labels = ELEMENTSOF(labels),
                .gpus = specs,
                .n_gpus = n,
        };
        r = gv_sched_cluster_add_host(cl, &spec, &e);
        if (r < 0) {
                strv_consume(problems, xasprintf("host %s: %s", h->key, gv_error_msg(e, r)));
                return 0;
        }
        size_t have = strv_length(*pci);
        *index = xreallocarray(*index, have + n + 1, sizeof(**index));
        for (i = 0; i < n; i++) {
                (*index)[have + i] = agent_index[i];
                strv_extend(pci, pcis[i]);
        }
        return 0;
}

int gv_ctl_model_ensure(struct gv_controller *c, struct gv_error **err)
{
        struct gv_sched_cluster *cl;
        struct gv_store_obj *hosts = NULL, *vms = NULL;
        size_t n_hosts = 0, n_vms = 0;
        struct gv_store_obj *allocs = NULL;
        size_t n_allocs = 0;
        char **pci = NULL, **problems = NULL;
        int64_t version = -1;
        int r;

        if (gv_store_version(c->store, &version, NULL) < 0)
                version = -1;
        if (!c->model_dirty && c->cluster &&
            (version == c->model_store_version ||
             gv_ctl_now_ms() - c->model_built_ms < MODEL_FRESH_MS))
                return 0;
        /* The allocation documents first (see above), then what the model is built from. */
        r = gv_store_list(c->store, GV_STORE_ALLOC, &allocs, &n_allocs, err);
        if (r < 0)
                return r;
        json_t *gens = json_object();
        for (size_t i = 0; i < n_allocs; i++)
                json_object_set_new(gens, allocs[i].key, json_integer(allocs[i].generation));
        gv_store_objs_free(allocs, n_allocs);
        r = gv_store_list(c->store, GV_STORE_HOST, &hosts, &n_hosts, err);
        if (r >= 0)
                r = gv_store_list(c->store, GV_STORE_VM, &vms, &n_vms, err);
        if (r < 0) {
                json_decref(gens);
                gv_store_objs_free(hosts, n_hosts);
                return r;
        }
        for (size_t i = 0; i < n_hosts; i++) /* a host without one has generation 0 */
                if (!json_object_get(gens, hosts[i].key))
                        json_object_set_new(gens, hosts[i].key, json_integer(0));
        cl = gv_sched_cluster_new();
        for (const struct gv_sched_policy *const *p = gv_sched_policies(); *p; p++)
                (void)gv_sched_policy_attach(cl, *p, NULL);
        pci = xnew0(char *, 1);
        unsigned *index = xnew0(unsigned, 1);
        for (size_t i = 0; i < n_hosts && r >= 0; i++)
                r = add_host(c, cl, &pci, &index, &hosts[i], &problems);
        /* The swap happens before the VMs are replayed: request_from_spec and placement_from_json
         * read c->cluster and c->gpu_pci. */
        if (r >= 0) {
                gv_sched_cluster_free(c->cluster);
                strv_free(c->gpu_pci);
                free(c->gpu_index);
                c->cluster = cl;
                c->gpu_pci = pci;
                c->gpu_index = index;
                cl = NULL;
                pci = NULL;
                index = NULL;
        }
        free(index);
        /* Every VM's placement, and the target's of a move under way (both are held). */
        for (size_t i = 0; i < n_vms * 2 && r >= 0; i++) {
                const json_t *vm = vms[i / 2].doc;
                const json_t *pl = i % 2 ? json_object_get(json_object_get(vm, "migration"),
                                                           "placement")
                                         : json_object_get(vm, "placement");
                struct gv_sched_request rq;
                struct gv_sched_placement p;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int k;
                if (!json_is_object(pl))
                        continue;
                k = gv_ctl_request_from_spec(c, json_object_get(vm, "spec"), &rq, &e);
                if (k >= 0)
                        k = gv_sched_request_resolve(c->cluster, &rq, &e);
                if (k >= 0)
                        k = gv_ctl_placement_from_json(c, pl, &p, &e);
                if (k >= 0)
                        k = gv_sched_reserve(c->cluster, &rq, &p, &e);
                if (k < 0)
                        strv_consume(&problems, xasprintf("VM %s: its %splacement is not in the "
                                                          "model: %s", vms[i / 2].key,
                                                          i % 2 ? "target's " : "",
                                                          gv_error_msg(e, k)));
        }
        gv_sched_cluster_free(cl);
        strv_free(pci);
        gv_store_objs_free(hosts, n_hosts);
        gv_store_objs_free(vms, n_vms);
        if (r < 0) {
                json_decref(gens);
                strv_free(problems);
                return r;
        }
        strv_free(c->model_problems);
        c->model_problems = problems;
        c->model_dirty = false;
        c->model_store_version = version;
        c->model_built_ms = gv_ctl_now_ms();
        pthread_mutex_lock(&c->model_gen_mu);
        json_decref(c->model_alloc_gen);
        c->model_alloc_gen = gens;
        pthread_mutex_unlock(&c->model_gen_mu);
        return 0;
}

static uint64_t hash_name(const char *s)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

int gv_ctl_request_from_spec(struct gv_controller *c, const json_t *spec,
                             struct gv_sched_request *ret, struct gv_error **err)
{
        struct gv_sched_request r = { .kind = GV_SCHED_KIND_NONE };
        const json_t *gpus = json_object_get(spec, "gpus"), *g;
        const char *name = json_string_value(json_object_get(spec, "name"));
        const char *host = NULL, *kind = NULL;
        uint32_t vcpus = 1, count = 1;
        uint64_t mem = 1024;
        int k;

        k = gv_json_opt_u32(spec, "vcpus", &vcpus, err);
        if (k >= 0)
                k = gv_json_opt_u64(spec, "memory_mib", &mem, err);
        if (k >= 0)
                k = gv_json_opt_string(spec, "host", &host, err);
        if (k < 0)
                return k;
        r.cpu_milli = (uint64_t)vcpus * 1000u;
        r.memory_mib = mem;
        r.tie_seed = name ? hash_name(name) : 0;
        g = json_array_size(gpus) ? json_array_get(gpus, 0) : NULL;
        if (g) {
                k = gv_json_get_string(g, "kind", &kind, err);
                if (k < 0)
                        return gv_error_wrap(err, k, "gpus[0]");
                if (strcmp(kind, "passthrough") == 0) {
                        k = gv_json_opt_u32(g, "count", &count, err);
                        if (k >= 0 && (count < 1 || count > GV_SCHED_MAX_REQ_GPUS))
                                k = gv_error_set(err, EINVAL, "gpus[0].count: %u is not 1..%u.",
                                                 count, GV_SCHED_MAX_REQ_GPUS);
                        r.kind = GV_SCHED_KIND_WHOLE;
                        r.num_gpu = count;
                } else if (strcmp(kind, "vgpu") == 0) {
                        r.kind = GV_SCHED_KIND_VGPU;
                        k = gv_json_get_string(g, "type", &r.type, err);
                } else if (strcmp(kind, "mig") == 0) {
                        r.kind = GV_SCHED_KIND_MIG;
                        k = gv_json_get_string(g, "profile", &r.type, err);
                } else if (strcmp(kind, "need") == 0) {
                        const char *iso = "none";
                        bool mig = false;
                        r.kind = GV_SCHED_KIND_NEED;
                        k = gv_json_get_u64(g, "memory_mib", &r.need.gpu_memory_mib, err);
                        if (k >= 0)
                                k = gv_json_opt_string(g, "isolation", &iso, err);
                        if (k >= 0)
                                k = gv_json_opt_bool(g, "live_migration", &mig, err);
                        if (k >= 0) {
                                r.need.isolation = gv_sched_isolation_from_string(iso);
                                r.need.live_migration = mig;
                                if ((int)r.need.isolation < 0)
                                        k = gv_error_set(err, EINVAL, "gpus[0].isolation: '%s' "
                                                         "is not none, software or hardware.",
                                                         iso);
                        }
                } else {
                        k = gv_error_set(err, EINVAL, "gpus[0].kind: '%s' is not passthrough, "
                                         "vgpu, mig or need.", kind);
                }
                if (k < 0)
                        return gv_error_wrap(err, k, "gpus[0]");
        }
        if (host) {
                _cleanup_free_ char *l = xasprintf("host=%s", host);
                k = c->cluster ? gv_sched_cluster_label_mask(c->cluster, l, &r.labels, NULL)
                               : -ENOENT;
                if (k < 0)
                        return gv_error_set(err, ENOENT, "host: no host '%s' takes placements "
                                            "(unknown, or it never reported its inventory).",
                                            host);
        }
        *ret = r;
        return 0;
}

json_t *gv_ctl_placement_to_json(struct gv_controller *c, const struct gv_sched_placement *pl,
                                 const char *policy)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c->cluster, pl->host);
        json_t *gpus = json_array();

        for (uint32_t i = 0; i < pl->n_slots; i++) {
                const struct gv_sched_slot *s = &pl->slots[i];
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c->cluster, s->gpu);
                const struct gv_gpu_model *gm = gv_sched_cluster_model(c->cluster,
                                                                       g->model)->catalog;
                const char *name = NULL;
                if (gm && s->index >= 0 &&
                    (s->alloc == GV_SCHED_ALLOC_MIG) && (size_t)s->index < gm->n_gi_profiles)
                        name = gm->gi_profiles[s->index].name;
                else if (gm && s->index >= 0 && (s->alloc == GV_SCHED_ALLOC_VGPU ||
                                                 s->alloc == GV_SCHED_ALLOC_MIG_VGPU) &&
                         (size_t)s->index < gm->n_vgpu_types)
                        name = gm->vgpu_types[s->index].name;
                /* the agent's index: the model leaves unhealthy GPUs out, so its own differs */
                unsigned idx = c->gpu_index ? c->gpu_index[s->gpu] : g->index;
                _cleanup_free_ char *gname = xasprintf("%s/%u", h->name, idx);
                json_array_append_new(gpus, json_pack("{s:s, s:i, s:s, s:s, s:i, s:s?, s:i, s:i}",
                                                      "gpu", gname, "index", (int)idx, "pci",
                                                      c->gpu_pci[s->gpu], "alloc",
                                                      gv_sched_alloc_to_string(s->alloc),
                                                      "type_index", s->index, "name", name,
                                                      "start", s->start, "milli", s->milli));
        }
        return json_pack("{s:s, s:s, s:o}", "host", h->name, "policy", policy, "gpus", gpus);
}

int gv_ctl_placement_from_json(struct gv_controller *c, const json_t *j,
                               struct gv_sched_placement *ret, struct gv_error **err)
{
        struct gv_sched_placement p = { 0 };
        const char *host = json_string_value(json_object_get(j, "host"));
        const json_t *gpus = json_object_get(j, "gpus"), *s;
        size_t i;
        int h = host ? gv_sched_cluster_find_host(c->cluster, host) : -ENOENT;

        if (h < 0)
                return gv_error_set(err, ENOENT, "host '%s' is not in the model.",
                                    host ? host : "?");
        p.host = (uint32_t)h;
        if (json_array_size(gpus) > GV_SCHED_MAX_REQ_GPUS)
                return gv_error_set(err, EINVAL, "too many GPUs in the placement.");
        json_array_foreach(gpus, i, s) {
                const char *pci = json_string_value(json_object_get(s, "pci"));
                const char *alloc = json_string_value(json_object_get(s, "alloc"));
                struct gv_sched_slot *sl = &p.slots[p.n_slots];
                int id = -1, a = -1;
                for (size_t k = 0; pci && c->gpu_pci && c->gpu_pci[k]; k++)
                        if (strcmp(c->gpu_pci[k], pci) == 0 &&
                            gv_sched_cluster_gpu(c->cluster, (uint32_t)k)->host == p.host)
                                id = (int)k;
                for (int k = 0; alloc && k < _GV_SCHED_ALLOC_MAX; k++)
                        if (strcmp(gv_sched_alloc_to_string(k), alloc) == 0)
                                a = k;
                if (id < 0 || a < 0)
                        return gv_error_set(err, ENOENT, "GPU %s (%s) of host %s is not in the "
                                            "model.", pci ? pci : "?", alloc ? alloc : "?", host);
                sl->gpu = (uint32_t)id;
                sl->alloc = (uint8_t)a;
                sl->index = (int16_t)json_integer_value(json_object_get(s, "type_index"));
                sl->start = (uint16_t)json_integer_value(json_object_get(s, "start"));
                sl->milli = (uint16_t)json_integer_value(json_object_get(s, "milli"));
                p.n_slots++;
        }
        *ret = p;
        return 0;
}
