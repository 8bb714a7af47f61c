/* SPDX-License-Identifier: MIT */
/*
 * place.c — the decision (enumerate feasible candidates, let the policy score them, keep the
 * best) and reserve/release. No allocation, no I/O: everything lives in the cluster's arrays.
 *
 * Rules per GPU (sched.h cites the facts):
 *   - a GPU with nothing allocated may take any allocation and switch mode;
 *   - a GPU in use takes only allocations of its mode;
 *   - whole GPU: the GPU empty;
 *   - share: share mode (or empty), free milli >= the share;
 *   - time-sliced vGPU: equal-size mode: the running type only, up to max_instances;
 *     mixed-size mode: the type allowed there (max_instances_mixed > 0) and a placement id
 *     k·size, k < max_instances_mixed, whose units [id, id + size) are free (vgpu.md §8);
 *   - MIG / MIG-backed vGPU: per-profile instance count, the GPU's instance limit and compute
 *     slices (mig.md §5), and a placement of the profile whose memory slices are all free
 *     (mig.md §4). Every free placement is a candidate: the policy chooses the slice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched-internal.h"
#include "util/alloc.h"

#define FIT_OK (-1)

static enum gv_sched_gpu_mode mode_of_alloc(enum gv_sched_alloc a)
{
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                return GV_SCHED_MODE_PASSTHROUGH;
        case GV_SCHED_ALLOC_SHARE:
                return GV_SCHED_MODE_SHARE;
        case GV_SCHED_ALLOC_VGPU:
                return GV_SCHED_MODE_VGPU;
        default:
                return GV_SCHED_MODE_MIG;
        }
}

/* Mode admission: FIT_OK or a reject reason; *sw = the GPU switches mode. */
static int admit_mode(const struct gv_sched_gpu *g, enum gv_sched_gpu_mode want, bool *sw)
{
        if (g->n_alloc == 0) {
                *sw = g->mode != want && g->mode != GV_SCHED_MODE_UNASSIGNED;
                return FIT_OK;
        }
        *sw = false;
        return g->mode == want ? FIT_OK : GV_SCHED_REJECT_GPU_MODE;
}

/* The MIG profile index an allocation uses, or -1. */
static int mig_profile_of(const struct sched_model *m, enum gv_sched_alloc a, int index)
{
        if (a == GV_SCHED_ALLOC_MIG)
                return index >= 0 && (size_t)index < m->n_mig ? index : -1;
        if (a == GV_SCHED_ALLOC_MIG_VGPU)
                return index >= 0 && (size_t)index < m->n_vgpu ? m->vgpu[index].gi : -1;
        return -1;
}

static int mig_limits(const struct sched_model *m, const struct gv_sched_gpu *g, int p)
{
        const struct sched_mig_profile *mp = &m->mig[p];
        bool empty = g->n_alloc == 0;
        uint32_t count = empty ? 0 : g->mig_count[p];
        uint32_t inst = empty ? 0 : g->mig_instances;
        uint32_t compute = empty ? 0 : g->mig_compute_used;

        if (count + 1 > mp->instances || inst + 1 > m->pub.mig_max_instances ||
            compute + mp->slices > m->pub.mig_compute_slices)
                return GV_SCHED_REJECT_MIG_LIMIT;
        return FIT_OK;
}

/* used_milli a GPU would have with one more allocation (single-slot kinds). */
static uint32_t used_after(const struct sched_model *m, const struct gv_sched_gpu *g,
                           enum gv_sched_alloc a, int index, uint32_t milli)
{
        bool empty = g->n_alloc == 0;
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                return GV_SCHED_MILLI;
        case GV_SCHED_ALLOC_SHARE:
                return (empty ? 0 : g->share_milli) + milli;
        case GV_SCHED_ALLOC_VGPU: {
                uint64_t fb = (empty ? 0 : g->vgpu_fb_mib) + m->vgpu[index].fb_mib;
                uint64_t u = fb * GV_SCHED_MILLI / m->pub.memory_mib;
                return (uint32_t)MIN(u, (uint64_t)GV_SCHED_MILLI);
        }
        default: {
                int p = mig_profile_of(m, a, index);
                uint32_t cu = (empty ? 0 : g->mig_compute_used) + m->mig[p].slices;
                return cu * GV_SCHED_MILLI / m->pub.mig_compute_slices;
        }
        }
}

/* ---- the decision ---- */

struct place_ctx {
        const struct gv_sched_cluster *c;
        const struct gv_sched_policy *p;
        void *state;
        const struct gv_sched_request *r;
        bool have;                        /* a candidate on the current host */
        struct gv_sched_placement best;   /* the current host's best */
        struct gv_sched_score score;
        uint32_t candidates;
};

static void offer(struct place_ctx *x, const struct gv_sched_placement *cand)
{
        struct gv_sched_score s = { 0, 0 };

        x->p->score(x->c, x->state, x->r, cand, &s);
        x->candidates++;
        /* Within a host: a candidate that keeps every GPU's mode beats one that switches a
         * mode (switching means a MIG or vGPU reconfiguration of an idle GPU), then the
         * policy's (primary, secondary). */
        if (!x->have || (x->best.switches_mode && !cand->switches_mode) ||
            (x->best.switches_mode == cand->switches_mode &&
             (s.primary > x->score.primary ||
              (s.primary == x->score.primary && s.secondary > x->score.secondary)))) {
                x->have = true;
                x->best = *cand;
                x->score = s;
        }
}

/* Offer every candidate of a single-slot allocation on GPU gi; FIT_OK when at least one was
 * offered, else the reason. */
static int offer_gpu(struct place_ctx *x, uint32_t host, uint32_t gi, enum gv_sched_alloc a,
                     int index, uint32_t milli)
{
        const struct gv_sched_cluster *c = x->c;
        const struct gv_sched_gpu *g = &c->gpus[gi];
        const struct sched_model *m = sched_model_of(c, g);
        struct gv_sched_placement cand;
        bool sw;
        int q;

        q = admit_mode(g, mode_of_alloc(a), &sw);
        if (q != FIT_OK)
                return q;

        cand.host = host;
        cand.n_slots = 1;
        cand.switches_mode = sw;
        cand.slots[0] = (struct gv_sched_slot){
                .gpu = gi,
                .alloc = (uint8_t)a,
                .prev_mode = (uint8_t)g->mode,
                .index = (int16_t)index,
                .start = 0,
                .milli = 0,
        };

        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                if (g->n_alloc)
                        return GV_SCHED_REJECT_GPU_COUNT;
                cand.slots[0].milli = GV_SCHED_MILLI;
                offer(x, &cand);
                return FIT_OK;
        case GV_SCHED_ALLOC_SHARE:
                if (c->free_milli[gi] < milli)
                        return GV_SCHED_REJECT_GPU_SHARE;
                cand.slots[0].milli = (uint16_t)milli;
                offer(x, &cand);
                return FIT_OK;
        case GV_SCHED_ALLOC_VGPU: {
                const struct sched_vgpu_type *t = &m->vgpu[index];
                cand.slots[0].milli = (uint16_t)(used_after(m, g, a, index, 0) -
                                                 (g->n_alloc ? g->used_milli : 0));
                if (!g->mixed_size) {
                        if (g->n_alloc && g->vgpu_type != index)
                                return GV_SCHED_REJECT_VGPU_SAME_SIZE;
                        if ((g->n_alloc ? g->n_vgpus : 0) + 1u > t->max_equal)
                                return GV_SCHED_REJECT_VGPU_FULL;
                        offer(x, &cand);
                        return FIT_OK;
                }
                if (t->max_mixed == 0)
                        return GV_SCHED_REJECT_VGPU_SAME_SIZE;
                q = GV_SCHED_REJECT_VGPU_FULL;
                for (uint32_t k = 0; k < t->max_mixed; k++) {
                        uint32_t id = k * t->size;
                        if (g->n_alloc && !sched_units_free(g->vgpu_units, id, t->size))
                                continue;
                        cand.slots[0].start = (uint16_t)id;
                        offer(x, &cand);
                        q = FIT_OK;
                }
                return q;
        }
        case GV_SCHED_ALLOC_MIG:
        case GV_SCHED_ALLOC_MIG_VGPU: {
                int p = mig_profile_of(m, a, index);
                if (p < 0 || !m->pub.mig)
                        return GV_SCHED_REJECT_MODEL;
                q = mig_limits(m, g, p);
                if (q != FIT_OK)
                        return q;
                const struct sched_mig_profile *mp = &m->mig[p];
                uint32_t occupied = g->n_alloc ? g->mig_occupied : 0;
                cand.slots[0].milli = (uint16_t)(used_after(m, g, a, index, 0) -
                                                 (g->n_alloc ? g->used_milli : 0));
                q = GV_SCHED_REJECT_MIG_GEOMETRY;
                for (uint32_t k = 0; k < mp->n_placements; k++) {
                        if (mp->masks[k] & occupied)
                                continue;
                        cand.slots[0].start = mp->starts[k];
                        offer(x, &cand);
                        q = FIT_OK;
                }
                return q;
        }
        default:
                return GV_SCHED_REJECT_MODEL;
        }
}

/* N whole GPUs (pass-through), or N whole shares (openb num_gpu > 1 or gpu_milli == 1000):
 * empty GPUs of one allowed model; GPUs already in the target mode first, then unassigned,
 * then the rest, each group in index order (the openb artefact takes the first free ones). */
static int offer_multi(struct place_ctx *x, uint32_t host, uint64_t models, enum gv_sched_alloc a,
                       uint32_t n)
{
        const struct gv_sched_cluster *c = x->c;
        const struct gv_sched_host *h = &c->hosts[host];
        enum gv_sched_gpu_mode want = mode_of_alloc(a);
        int q = GV_SCHED_REJECT_GPU_COUNT;

        if (h->free_gpus < n)
                return GV_SCHED_REJECT_GPU_COUNT;
        for (uint64_t mm = models & h->model_mask; mm; mm &= mm - 1) {
                uint32_t model = (uint32_t)__builtin_ctzll(mm);
                struct gv_sched_placement cand = { .host = host };
                for (int pass = 0; pass < 3 && cand.n_slots < n; pass++)
                        for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus &&
                                                        cand.n_slots < n; i++) {
                                const struct gv_sched_gpu *g = &c->gpus[i];
                                if (g->model != model || g->n_alloc)
                                        continue;
                                int cls = g->mode == want ? 0 :
                                          g->mode == GV_SCHED_MODE_UNASSIGNED ? 1 : 2;
                                if (cls != pass)
                                        continue;
                                if (cls == 2)
                                        cand.switches_mode = true;
                                cand.slots[cand.n_slots++] = (struct gv_sched_slot){
                                        .gpu = i,
                                        .alloc = (uint8_t)a,
                                        .prev_mode = (uint8_t)g->mode,
                                        .index = -1,
                                        .milli = GV_SCHED_MILLI,
                                };
                        }
                if (cand.n_slots == n) {
                        offer(x, &cand);
                        q = FIT_OK;
                }
        }
        return q;
}

/* Keep the deeper of two reasons (enum order = how far the checks got). */
static int deeper(int a, int b)
{
        return a > b ? a : b;
}

static int host_candidates(struct place_ctx *x, uint32_t host)
{
        const struct gv_sched_cluster *c = x->c;
        const struct gv_sched_request *r = x->r;
        const struct gv_sched_host *h = &c->hosts[host];
        uint64_t models = r->resolved.model_mask;
        int why = GV_SCHED_REJECT_MODEL;

        switch (r->kind) {
        case GV_SCHED_KIND_NONE: {
                struct gv_sched_placement cand = { .host = host };
                offer(x, &cand);
                return FIT_OK;
        }
        case GV_SCHED_KIND_WHOLE:
                return offer_multi(x, host, models, GV_SCHED_ALLOC_WHOLE, r->num_gpu);
        case GV_SCHED_KIND_SHARE: {
                if (r->gpu_milli == GV_SCHED_MILLI)
                        return offer_multi(x, host, models, GV_SCHED_ALLOC_SHARE, r->num_gpu);
                if (h->share_max_free_milli < r->gpu_milli)
                        return deeper(GV_SCHED_REJECT_GPU_SHARE, GV_SCHED_REJECT_GPU_MODE);
                /* One candidate per distinct (model, free milli, mode) GPU: equal GPUs give
                 * equal outcomes, and the lowest index of each comes first. */
                uint32_t seen[GV_SCHED_MAX_HOST_GPUS];
                size_t n_seen = 0;
                for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus; i++) {
                        const struct gv_sched_gpu *g = &c->gpus[i];
                        if (!(models >> g->model & 1))
                                continue;
                        uint32_t key = c->free_milli[i] | (uint32_t)g->model << 11 |
                                       (uint32_t)g->mode << 18 | (g->n_alloc ? 1u : 0u) << 22;
                        bool dup = false;
                        for (size_t k = 0; k < n_seen && !dup; k++)
                                dup = seen[k] == key;
                        if (dup)
                                continue; /* its twin was offered or rejected already */
                        seen[n_seen++] = key;
                        int q = offer_gpu(x, host, i, GV_SCHED_ALLOC_SHARE, -1, r->gpu_milli);
                        if (q != FIT_OK)
                                why = deeper(why, q);
                }
                return x->have ? FIT_OK : why;
        }
        case GV_SCHED_KIND_VGPU:
        case GV_SCHED_KIND_MIG:
                for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus; i++) {
                        const struct gv_sched_gpu *g = &c->gpus[i];
                        if (!(models >> g->model & 1))
                                continue;
                        int index = r->resolved.index[g->model];
                        enum gv_sched_alloc a;
                        if (r->kind == GV_SCHED_KIND_MIG)
                                a = GV_SCHED_ALLOC_MIG;
                        else if (c->models[g->model].vgpu[index].gi >= 0)
                                a = GV_SCHED_ALLOC_MIG_VGPU;
                        else
                                a = GV_SCHED_ALLOC_VGPU;
                        int q = offer_gpu(x, host, i, a, index, 0);
                        if (q != FIT_OK)
                                why = deeper(why, q);
                }
                return x->have ? FIT_OK : why;
        case GV_SCHED_KIND_NEED:
                for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus; i++) {
                        const struct gv_sched_gpu *g = &c->gpus[i];
                        if (!(models >> g->model & 1))
                                continue;
                        const struct gv_sched_option *opt = r->resolved.options[g->model];
                        size_t n = r->resolved.n_options[g->model];
                        int q = GV_SCHED_REJECT_MODEL;
                        /* Smallest option that fits without switching the GPU's mode; an
                         * empty GPU in another mode takes the smallest option that fits. */
                        for (int pass = 0; pass < 2 && q != FIT_OK; pass++)
                                for (size_t k = 0; k < n && q != FIT_OK; k++) {
                                        bool sw = g->n_alloc == 0 &&
                                                  g->mode != GV_SCHED_MODE_UNASSIGNED &&
                                                  g->mode != mode_of_alloc(opt[k].alloc);
                                        if (sw != (pass == 1))
                                                continue;
                                        int e = offer_gpu(x, host, i, opt[k].alloc, opt[k].index,
                                                          opt[k].milli);
                                        if (e == FIT_OK)
                                                q = FIT_OK;
                                        else
                                                why = deeper(why, e);
                                }
                }
                return x->have ? FIT_OK : why;
        default:
                return GV_SCHED_REJECT_MODEL;
        }
}

static uint64_t mix64(uint64_t z)
{
        z += UINT64_C(0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

int gv_sched_place(const struct gv_sched_cluster *c, const struct gv_sched_policy *p,
                   const struct gv_sched_request *r, struct gv_sched_placement *ret,
                   struct gv_sched_explain *why, struct gv_error **err)
{
        struct gv_sched_explain ex = { 0 };
        struct place_ctx x = { .c = c, .p = p, .r = r };
        struct gv_sched_placement best;
        struct gv_sched_score best_score = { 0, 0 };
        uint64_t best_tie = 0;
        bool have = false;

        if (!r->resolved.ok)
                return gv_error_set(err, EINVAL, "The request was not resolved against the "
                                    "cluster (call gv_sched_request_resolve() first).");
        if (!p || !p->score)
                return gv_error_set(err, EINVAL, "No placement policy given.");
        if (p->attach) {
                x.state = gv_sched_policy_state(c, p);
                if (!x.state)
                        return gv_error_set(err, EINVAL, "Policy '%s' keeps per-cluster state: "
                                            "attach it to the cluster first "
                                            "(gv_sched_policy_attach).", p->name);
        }
        if (p->begin)
                p->begin(c, x.state, r);

        uint64_t models = r->resolved.model_mask;
        bool gpu = r->kind != GV_SCHED_KIND_NONE;
        for (uint32_t hi = 0; hi < c->n_hosts; hi++) {
                const struct gv_sched_host *h = &c->hosts[hi];
                int q;
                ex.hosts++;
                if (h->state != GV_SCHED_HOST_UP)
                        q = GV_SCHED_REJECT_STATE;
                else if ((h->labels & r->labels) != r->labels ||
                         (r->any_labels && !(h->labels & r->any_labels)))
                        q = GV_SCHED_REJECT_LABELS;
                else if (gpu && !(h->model_mask & models))
                        q = GV_SCHED_REJECT_MODEL;
                else if (r->group && sched_group_has(c, r->group, hi))
                        q = GV_SCHED_REJECT_ANTI_AFFINITY;
                else if (h->cpu_free < r->cpu_milli)
                        q = GV_SCHED_REJECT_CPU;
                else if (h->memory_free < r->memory_mib)
                        q = GV_SCHED_REJECT_MEMORY;
                else {
                        x.have = false;
                        q = host_candidates(&x, hi);
                        if (x.have)
                                q = FIT_OK;
                }
                if (q != FIT_OK) {
                        ex.rejected[q]++;
                        continue;
                }
                ex.feasible++;
                uint64_t tie = r->tie_seed ? mix64(r->tie_seed ^ mix64(hi)) : 0;
                if (!have || x.score.primary > best_score.primary ||
                    (x.score.primary == best_score.primary && r->tie_seed && tie < best_tie)) {
                        have = true;
                        best = x.best;
                        best_score = x.score;
                        best_tie = tie;
                }
                if (p->first_host_wins)
                        break;
        }
        ex.candidates = x.candidates;
        if (why)
                *why = ex;
        if (!have) {
                if (err) {
                        _cleanup_free_ char *msg = gv_sched_explain_format(r, &ex);
                        gv_error_set(err, ENOSPC, "%c%s.", msg[0] - 'a' + 'A', msg + 1);
                }
                return -ENOSPC;
        }
        *ret = best;
        return 0;
}

/* ---- reserve / release ---- */

/* Would slot s fit GPU g now (the same rules as the decision, for one given choice)? */
static int slot_fits(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = &c->gpus[s->gpu];
        const struct sched_model *m = sched_model_of(c, g);
        enum gv_sched_alloc a = s->alloc;
        bool sw;
        int q = admit_mode(g, mode_of_alloc(a), &sw);

        if (q != FIT_OK)
                return q;
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                return g->n_alloc ? GV_SCHED_REJECT_GPU_COUNT : FIT_OK;
        case GV_SCHED_ALLOC_SHARE:
                return s->milli >= 1 && c->free_milli[s->gpu] >= s->milli
                               ? FIT_OK : GV_SCHED_REJECT_GPU_SHARE;
        case GV_SCHED_ALLOC_VGPU: {
                if (s->index < 0 || (size_t)s->index >= m->n_vgpu || m->vgpu[s->index].gi >= 0)
                        return GV_SCHED_REJECT_MODEL;
                const struct sched_vgpu_type *t = &m->vgpu[s->index];
                if (!g->mixed_size) {
                        if (g->n_alloc && g->vgpu_type != s->index)
                                return GV_SCHED_REJECT_VGPU_SAME_SIZE;
                        return (g->n_alloc ? g->n_vgpus : 0) + 1u > t->max_equal
                                       ? GV_SCHED_REJECT_VGPU_FULL : FIT_OK;
                }
                if (t->max_mixed == 0)
                        return GV_SCHED_REJECT_VGPU_SAME_SIZE;
                if (s->start % t->size || s->start / t->size >= t->max_mixed)
                        return GV_SCHED_REJECT_VGPU_FULL;
                return sched_units_free(g->vgpu_units, s->start, t->size)
                               ? FIT_OK : GV_SCHED_REJECT_VGPU_FULL;
        }
        case GV_SCHED_ALLOC_MIG:
        case GV_SCHED_ALLOC_MIG_VGPU: {
                int p = mig_profile_of(m, a, s->index);
                if (p < 0)
                        return GV_SCHED_REJECT_MODEL;
                q = mig_limits(m, g, p);
                if (q != FIT_OK)
                        return q;
                const struct sched_mig_profile *mp = &m->mig[p];
                for (uint32_t k = 0; k < mp->n_placements; k++)
                        if (mp->starts[k] == s->start)
                                return mp->masks[k] & g->mig_occupied
                                               ? GV_SCHED_REJECT_MIG_GEOMETRY : FIT_OK;
                return GV_SCHED_REJECT_MIG_GEOMETRY;
        }
        default:
                return GV_SCHED_REJECT_MODEL;
        }
}

static uint32_t mig_mask_of(const struct sched_model *m, int p, uint32_t start)
{
        const struct sched_mig_profile *mp = &m->mig[p];
        for (uint32_t k = 0; k < mp->n_placements; k++)
                if (mp->starts[k] == start)
                        return mp->masks[k];
        return 0;
}

static void slot_apply(struct gv_sched_cluster *c, const struct gv_sched_slot *s, bool on)
{
        struct gv_sched_gpu *g = &c->gpus[s->gpu];
        const struct sched_model *m = sched_model_of(c, g);
        enum gv_sched_alloc a = s->alloc;

        if (on) {
                g->mode = mode_of_alloc(a);
                g->n_alloc++;
        } else {
                g->n_alloc--;
        }
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                break;
        case GV_SCHED_ALLOC_SHARE:
                g->share_milli = on ? g->share_milli + s->milli : g->share_milli - s->milli;
                break;
        case GV_SCHED_ALLOC_VGPU: {
                const struct sched_vgpu_type *t = &m->vgpu[s->index];
                if (on) {
                        g->n_vgpus++;
                        g->vgpu_fb_mib += t->fb_mib;
                        if (!g->mixed_size)
                                g->vgpu_type = s->index;
                } else {
                        g->n_vgpus--;
                        g->vgpu_fb_mib -= t->fb_mib;
                }
                if (g->mixed_size)
                        sched_units_set(g->vgpu_units, s->start, t->size, on);
                break;
        }
        default: {
                int p = mig_profile_of(m, a, s->index);
                uint32_t mask = mig_mask_of(m, p, s->start);
                if (on) {
                        g->mig_count[p]++;
                        g->mig_instances++;
                        g->mig_compute_used += m->mig[p].slices;
                        g->mig_occupied |= mask;
                } else {
                        g->mig_count[p]--;
                        g->mig_instances--;
                        g->mig_compute_used -= m->mig[p].slices;
                        g->mig_occupied &= ~mask;
                }
                break;
        }
        }
        if (g->n_alloc == 0) {
                g->mode = g->base_mode;
                g->vgpu_type = -1;
        }
}

/* Is slot s held on its GPU (release's check)? */
static bool slot_held(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = &c->gpus[s->gpu];
        const struct sched_model *m = sched_model_of(c, g);
        enum gv_sched_alloc a = s->alloc;

        if (g->n_alloc == 0 || g->mode != mode_of_alloc(a))
                return false;
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                return true;
        case GV_SCHED_ALLOC_SHARE:
                return s->milli >= 1 && g->share_milli >= s->milli &&
                       (g->n_alloc > 1 || g->share_milli == s->milli);
        case GV_SCHED_ALLOC_VGPU: {
                if (s->index < 0 || (size_t)s->index >= m->n_vgpu || m->vgpu[s->index].gi >= 0)
                        return false;
                const struct sched_vgpu_type *t = &m->vgpu[s->index];
                if (!g->mixed_size)
                        return g->vgpu_type == s->index;
                for (uint32_t u = s->start; u < (uint32_t)s->start + t->size; u++)
                        if (u >= GV_SCHED_VGPU_UNITS || !((g->vgpu_units[u / 64] >> (u % 64)) & 1))
                                return false;
                return g->vgpu_fb_mib >= t->fb_mib;
        }
        default: {
                int p = mig_profile_of(m, a, s->index);
                if (p < 0 || g->mig_count[p] == 0)
                        return false;
                uint32_t mask = mig_mask_of(m, p, s->start);
                return mask && (g->mig_occupied & mask) == mask;
        }
        }
}

static int check_slots(const struct gv_sched_cluster *c, const struct gv_sched_request *r,
                       const struct gv_sched_placement *pl, struct gv_error **err)
{
        if (!pl || pl->host >= c->n_hosts)
                return gv_error_set(err, EINVAL, "The placement names no host of the cluster.");
        const struct gv_sched_host *h = &c->hosts[pl->host];
        uint32_t want = r->kind == GV_SCHED_KIND_NONE ? 0 :
                        (r->kind == GV_SCHED_KIND_WHOLE || r->kind == GV_SCHED_KIND_SHARE)
                                ? r->num_gpu : 1;
        if (pl->n_slots != want)
                return gv_error_set(err, EINVAL, "The placement has %u GPU slots; the request "
                                    "needs %u.", pl->n_slots, want);
        for (uint32_t i = 0; i < pl->n_slots; i++) {
                const struct gv_sched_slot *s = &pl->slots[i];
                if (s->gpu < h->first_gpu || s->gpu >= h->first_gpu + h->n_gpus)
                        return gv_error_set(err, EINVAL, "Slot %u of the placement names GPU "
                                            "%u, which is not on host '%s'.", i, s->gpu,
                                            h->name);
                if (s->alloc >= _GV_SCHED_ALLOC_MAX)
                        return gv_error_set(err, EINVAL, "Slot %u has an invalid allocation.",
                                            i);
                for (uint32_t k = 0; k < i; k++)
                        if (pl->slots[k].gpu == s->gpu)
                                return gv_error_set(err, EINVAL, "The placement names GPU %u "
                                                    "twice.", s->gpu);
        }
        return 0;
}

int gv_sched_reserve(struct gv_sched_cluster *c, const struct gv_sched_request *r,
                     const struct gv_sched_placement *pl, struct gv_error **err)
{
        int q = check_slots(c, r, pl, err);
        if (q < 0)
                return q;
        struct gv_sched_host *h = &c->hosts[pl->host];
        if (h->cpu_free < r->cpu_milli || h->memory_free < r->memory_mib)
                return gv_error_set(err, EBUSY, "Host '%s' no longer has %" PRIu64 " milli CPU "
                                    "and %" PRIu64 " MiB free; place the request again.",
                                    h->name, r->cpu_milli, r->memory_mib);
        if (r->group > c->n_groups)
                return gv_error_set(err, EINVAL, "Unknown anti-affinity group id %u.", r->group);
        if (r->group && sched_group_has(c, r->group, pl->host))
                return gv_error_set(err, EBUSY, "Host '%s' already holds a member of "
                                    "anti-affinity group '%s'; place the request again.",
                                    h->name, c->groups[r->group - 1]);
        for (uint32_t i = 0; i < pl->n_slots; i++) {
                q = slot_fits(c, &pl->slots[i]);
                if (q != FIT_OK)
                        return gv_error_set(err, EBUSY, "GPU %u of host '%s' cannot take the "
                                            "placement any more (%s); place the request "
                                            "again.", c->gpus[pl->slots[i].gpu].index, h->name,
                                            gv_sched_reject_to_string(q));
        }
        for (uint32_t i = 0; i < pl->n_slots; i++)
                slot_apply(c, &pl->slots[i], true);
        h->cpu_free -= r->cpu_milli;
        h->memory_free -= r->memory_mib;
        h->n_placed++;
        if (r->group)
                c->group_hosts[r->group - 1][pl->host / 64] |= UINT64_C(1) << (pl->host % 64);
        sched_host_refresh(c, pl->host);
        sched_notify(c, pl->host);
        return 0;
}

int gv_sched_release(struct gv_sched_cluster *c, const struct gv_sched_request *r,
                     const struct gv_sched_placement *pl, struct gv_error **err)
{
        int q = check_slots(c, r, pl, err);
        if (q < 0)
                return q;
        struct gv_sched_host *h = &c->hosts[pl->host];
        if (h->n_placed == 0 || h->cpu_milli - h->cpu_free < r->cpu_milli ||
            h->memory_mib - h->memory_free < r->memory_mib)
                return gv_error_set(err, EINVAL, "Host '%s' does not hold this placement (its "
                                    "CPU or memory is not taken).", h->name);
        if (r->group > c->n_groups || (r->group && !sched_group_has(c, r->group, pl->host)))
                return gv_error_set(err, EINVAL, "Host '%s' holds no member of the request's "
                                    "anti-affinity group.", h->name);
        for (uint32_t i = 0; i < pl->n_slots; i++)
                if (!slot_held(c, &pl->slots[i]))
                        return gv_error_set(err, EINVAL, "GPU %u of host '%s' does not hold "
                                            "slot %u of this placement.",
                                            c->gpus[pl->slots[i].gpu].index, h->name, i);
        for (uint32_t i = 0; i < pl->n_slots; i++)
                slot_apply(c, &pl->slots[i], false);
        h->cpu_free += r->cpu_milli;
        h->memory_free += r->memory_mib;
        h->n_placed--;
        if (r->group)
                c->group_hosts[r->group - 1][pl->host / 64] &= ~(UINT64_C(1) << (pl->host % 64));
        sched_host_refresh(c, pl->host);
        sched_notify(c, pl->host);
        return 0;
}
