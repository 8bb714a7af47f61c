/* SPDX-License-Identifier: MIT */
/*
 * policy-gpuvirt.c — `gpuvirt`, ours and the default (docs/placement.md "gpuvirt (ours)").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/frag.h"
#include "sched/sched-internal.h"
#include "util/alloc.h"

#define BF_MAX_SPEC_CPU 128000.0
#define BF_MAX_SPEC_GPU 8000.0

/* A mode switch costs more than any GPU-choice preference (secondary scores stay below it). */
#define SWITCH_PENALTY 1e12

struct gpuvirt_state {
        struct gv_frag_table *table; /* NULL until shapes are known */
        struct gv_frag_shape seen[GV_FRAG_MAX_SHAPES];
        double count[GV_FRAG_MAX_SHAPES];
        size_t n_seen;
        uint64_t n_reqs, next_rebuild;
        /* dev knobs */
        int weighting;
        unsigned threshold;
        double beta;
        double alpha;
        double sum_cpu, sum_gpu; /* over GPU requests seen: CPU milli per GPU milli */
};

static double knob(const char *name, double def)
{
        const char *v = getenv(name);
        return v ? strtod(v, NULL) : def;
}

static uint32_t cand_gpu_milli(const struct gv_sched_placement *cand)
{
        uint32_t m = 0;
        for (uint32_t i = 0; i < cand->n_slots; i++)
                m += cand->slots[i].milli;
        return m;
}

static uint32_t cand_gpu_free(const struct gv_sched_cluster *c,
                              const struct gv_sched_placement *cand)
{
        if (cand->n_slots == 0)
                return 0;
        return gv_sched_cluster_free_milli(c)[cand->slots[0].gpu];
}

static double bf_leftover(const struct gv_sched_cluster *c, const struct gv_sched_request *r,
                          const struct gv_sched_placement *cand)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, cand->host);
        double cpu = ((double)h->cpu_free - (double)r->cpu_milli) / BF_MAX_SPEC_CPU;
        double gpu = ((double)h->n_gpus * GV_SCHED_MILLI - h->used_milli - cand_gpu_milli(cand)) /
                     BF_MAX_SPEC_GPU;
        return 0.5 * cpu + 0.5 * gpu;
}

/* ---- MIG / vGPU geometry ---- */

static double mig_future(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, s->gpu);
        const struct sched_model *m = &c->models[g->model];
        int p = s->alloc == GV_SCHED_ALLOC_MIG ? s->index : m->vgpu[s->index].gi;
        uint32_t occ = g->n_alloc ? g->mig_occupied : 0;
        double f = 0;

        for (uint32_t k = 0; k < m->mig[p].n_placements; k++)
                if (m->mig[p].starts[k] == s->start)
                        occ |= m->mig[p].masks[k];
        for (size_t q = 0; q < m->n_mig; q++) {
                const struct sched_mig_profile *mp = &m->mig[q];
                if (mp->media)
                        continue;
                uint32_t n = 0;
                for (uint32_t k = 0; k < mp->n_placements; k++)
                        if (!(mp->masks[k] & occ))
                                n++;
                f += (double)n * mp->memory_slices * mp->memory_slices;
        }
        return f;
}

static double vgpu_future(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, s->gpu);
        const struct sched_model *m = &c->models[g->model];
        uint64_t map[GV_SCHED_VGPU_UNITS / 64];
        double f = 0;

        if (!g->mixed_size)
                return 0;
        memcpy(map, g->vgpu_units, sizeof(map));
        if (g->n_alloc == 0)
                memset(map, 0, sizeof(map));
        sched_units_set(map, s->start, m->vgpu[s->index].size, true);
        for (size_t t = 0; t < m->n_vgpu; t++) {
                const struct sched_vgpu_type *vt = &m->vgpu[t];
                if (vt->gi >= 0 || vt->max_mixed == 0)
                        continue;
                uint32_t n = 0;
                for (uint32_t k = 0; k < vt->max_mixed; k++)
                        if (sched_units_free(map, k * vt->size, vt->size))
                                n++;
                f += (double)n * vt->size;
        }
        return f;
}

/* ---- the fragmentation cache ---- */

static void host_view(const struct gv_sched_cluster *c, uint32_t id, uint32_t *buf,
                      struct gv_frag_host *v)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, id);
        const uint32_t *free_milli = gv_sched_cluster_free_milli(c);
        unsigned n = MIN(h->n_gpus, GV_FRAG_MAX_GPUS);

        v->cpu_free_milli = (uint32_t)MIN(h->cpu_free, (uint64_t)UINT32_MAX);
        v->n_gpus = n;
        v->model = n ? gv_sched_cluster_gpu(c, h->first_gpu)->model : 0;
        for (unsigned g = 0; g < n; g++) {
                const struct gv_sched_gpu *gpu = gv_sched_cluster_gpu(c, h->first_gpu + g);
                buf[g] = (gpu->n_alloc == 0 || gpu->mode == GV_SCHED_MODE_SHARE)
                                 ? free_milli[h->first_gpu + g]
                                 : 0;
        }
        v->gpu_free_milli = buf;
}

static void refresh_host(const struct gv_sched_cluster *c, struct gpuvirt_state *st, uint32_t id)
{
        uint32_t buf[GV_FRAG_MAX_GPUS];
        struct gv_frag_host v;

        host_view(c, id, buf, &v);
        gv_frag_table_update(st->table, id, &v);
}

static int rebuild(const struct gv_sched_cluster *c, struct gpuvirt_state *st,
                   const struct gv_frag_shape *shapes, size_t n_shapes, struct gv_error **err)
{
        struct gv_frag_table *t = NULL;
        size_t n_hosts = gv_sched_cluster_n_hosts(c);
        int r;

        r = gv_frag_table_new(shapes, n_shapes, MAX(n_hosts * 2, (size_t)16), &t, err);
        if (r < 0)
                return r;
        gv_frag_table_free(st->table);
        st->table = t;
        for (uint32_t i = 0; i < n_hosts; i++)
                refresh_host(c, st, i);
        return 0;
}

static int gpuvirt_attach(const struct gv_sched_cluster *c, void **ret_state,
                          struct gv_error **err)
{
        struct gpuvirt_state *st = xnew0(struct gpuvirt_state, 1);

        (void)c;
        (void)err;
        st->next_rebuild = 1;
        st->weighting = (int)knob("GV_W", 0);
        st->threshold = (unsigned)knob("GV_TH", 95);
        st->beta = knob("GV_B", 0.01);
        st->alpha = knob("GV_A", 1.0);
        *ret_state = st;
        return 0;
}

static void gpuvirt_detach(void *state)
{
        struct gpuvirt_state *st = state;

        if (!st)
                return;
        gv_frag_table_free(st->table);
        free(st);
}

static void gpuvirt_host_changed(const struct gv_sched_cluster *c, void *state, uint32_t host)
{
        struct gpuvirt_state *st = state;

        if (!st->table)
                return;
        if (host >= st->table->n_hosts) {
                _cleanup_free_ struct gv_frag_shape *shapes =
                        xnew0(struct gv_frag_shape, st->table->n_shapes);
                size_t n = st->table->n_shapes;

                memcpy(shapes, st->table->shapes, n * sizeof(*shapes));
                (void)rebuild(c, st, shapes, n, NULL);
                return;
        }
        refresh_host(c, st, host);
}

static bool request_shape(const struct gv_sched_request *r, struct gv_frag_shape *ret)
{
        struct gv_frag_shape m = {
                .cpu_milli = (uint32_t)MIN(r->cpu_milli, (uint64_t)UINT32_MAX),
                .model_mask = r->model_mask,
                .weight = 1,
        };

        switch (r->kind) {
        case GV_SCHED_KIND_NONE:
                m.model_mask = 0;
                break;
        case GV_SCHED_KIND_SHARE:
                m.num_gpu = r->num_gpu;
                m.gpu_milli = r->gpu_milli;
                break;
        case GV_SCHED_KIND_WHOLE:
                m.num_gpu = r->num_gpu;
                m.gpu_milli = GV_FRAG_MILLI;
                break;
        default:
                return false;
        }
        *ret = m;
        return true;
}

static void learn(const struct gv_sched_cluster *c, struct gpuvirt_state *st,
                  const struct gv_sched_request *r)
{
        struct gv_frag_shape m;
        size_t i;

        if (!request_shape(r, &m))
                return;
        if (m.num_gpu) {
                st->sum_cpu += m.cpu_milli;
                st->sum_gpu += (double)m.num_gpu * m.gpu_milli;
        }
        for (i = 0; i < st->n_seen; i++)
                if (st->seen[i].cpu_milli == m.cpu_milli && st->seen[i].num_gpu == m.num_gpu &&
                    st->seen[i].gpu_milli == m.gpu_milli &&
                    st->seen[i].model_mask == m.model_mask)
                        break;
        if (i < st->n_seen)
                st->count[i] += 1;
        else if (st->n_seen < GV_FRAG_MAX_SHAPES) {
                st->seen[st->n_seen] = m;
                st->count[st->n_seen++] = 1;
        }
        st->n_reqs++;
        if (st->n_reqs >= st->next_rebuild) {
                struct gv_frag_shape w[GV_FRAG_MAX_SHAPES];
                _cleanup_free_ struct gv_frag_shape *typ = NULL;
                size_t n = 0;

                st->next_rebuild *= 2;
                for (size_t k = 0; k < st->n_seen; k++) {
                        w[k] = st->seen[k];
                        w[k].weight = st->count[k];
                        if (st->weighting == 1)
                                w[k].weight *= (double)w[k].num_gpu * w[k].gpu_milli;
                        else if (st->weighting == 2)
                                w[k].weight *= (double)w[k].num_gpu * w[k].gpu_milli + 200.0;
                }
                if (gv_frag_typical_shapes(w, st->n_seen, st->threshold, &typ, &n, NULL) >= 0)
                        (void)rebuild(c, st, typ, n, NULL);
        }
}

static void gpuvirt_begin(const struct gv_sched_cluster *c, void *state,
                          const struct gv_sched_request *r)
{
        learn(c, state, r);
}

/* F_after − F_before of the candidate (milli), 0 without a table. */
static double frag_delta(const struct gv_sched_cluster *c, const struct gpuvirt_state *st,
                         const struct gv_sched_request *r, const struct gv_sched_placement *cand)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, cand->host);
        uint32_t buf[GV_FRAG_MAX_GPUS], old[GV_SCHED_MAX_REQ_GPUS], new[GV_SCHED_MAX_REQ_GPUS];
        struct gv_frag_host v;
        size_t n = 0;

        if (!st->table || cand->host >= st->table->n_hosts)
                return 0;
        host_view(c, cand->host, buf, &v);
        for (uint32_t k = 0; k < cand->n_slots && k < GV_SCHED_MAX_REQ_GPUS; k++) {
                uint32_t local = cand->slots[k].gpu - h->first_gpu;
                uint32_t take = cand->slots[k].milli;

                if (local >= v.n_gpus)
                        continue;
                old[n] = buf[local];
                if (cand->slots[k].alloc != GV_SCHED_ALLOC_SHARE &&
                    cand->slots[k].alloc != GV_SCHED_ALLOC_WHOLE)
                        take = old[n];
                new[n] = old[n] >= take ? old[n] - take : 0;
                n++;
        }
        return gv_frag_table_after(st->table, cand->host,
                                   (uint32_t)MIN(r->cpu_milli, (uint64_t)UINT32_MAX), old, new,
                                   n) -
               st->table->hosts[cand->host].frag;
}

static void gpuvirt_score(const struct gv_sched_cluster *c, void *state,
                          const struct gv_sched_request *r, const struct gv_sched_placement *cand,
                          struct gv_sched_score *ret)
{
        struct gpuvirt_state *st = state;
        double geometry = 0, bf = 1.0 - bf_leftover(c, r, cand);
        bool share_world = r->kind == GV_SCHED_KIND_NONE || r->kind == GV_SCHED_KIND_SHARE ||
                           r->kind == GV_SCHED_KIND_WHOLE;

        if (share_world && st->table) {
                ret->primary = -frag_delta(c, st, r, cand) / 1000.0 + st->beta * bf;
                if (st->sum_cpu > 0) {
                        const struct gv_frag_host_cache *hc = &st->table->hosts[cand->host];
                        double rho = st->sum_cpu / st->sum_gpu;
                        double g0 = hc->free_total, c0 = hc->cpu_free_milli;
                        double g1 = g0 - cand_gpu_milli(cand), c1 = c0 - (double)r->cpu_milli;
                        double s0 = fmax(0, g0 - c0 / rho), s1 = fmax(0, g1 - c1 / rho);
                        ret->primary -= st->alpha * (s1 - s0) / 1000.0;
                }
        }
        else
                ret->primary = bf;
        if (cand->n_slots == 1) {
                const struct gv_sched_slot *s = &cand->slots[0];
                if (s->alloc == GV_SCHED_ALLOC_MIG || s->alloc == GV_SCHED_ALLOC_MIG_VGPU)
                        geometry = mig_future(c, s);
                else if (s->alloc == GV_SCHED_ALLOC_VGPU)
                        geometry = vgpu_future(c, s);
        }
        ret->secondary = -(cand->switches_mode ? SWITCH_PENALTY : 0) +
                         (double)(GV_SCHED_MILLI - cand_gpu_free(c, cand)) * 1e6 + geometry;
}

const struct gv_sched_policy gv_sched_policy_gpuvirt = {
        .name = "gpuvirt",
        .summary = "least growth of demand-weighted fragmentation, continuous scores, "
                   "geometry-aware MIG and vGPU slice choice",
        .attach = gpuvirt_attach,
        .detach = gpuvirt_detach,
        .host_changed = gpuvirt_host_changed,
        .begin = gpuvirt_begin,
        .score = gpuvirt_score,
};
