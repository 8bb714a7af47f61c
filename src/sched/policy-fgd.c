/* SPDX-License-Identifier: MIT */
/*
 * policy-fgd.c — `fgd`: Fragmentation Gradient Descent (Weng et al., USENIX ATC '23), as the
 * artefact implements it (../shared/reference/scheduling.md §3; hkust-adsl/
 * kubernetes-scheduler-simulator pkg/simulator/plugin/fgd_score.go, read for its rules only):
 *
 *   score(candidate) = int( sigmoid((F_before − F_after) / 1000) × 100 )
 *
 * where F is the host's typical-shape fragmentation (frag.h) before and after the tentative
 * placement. The artefact's scores are integers (kube-scheduler int64 node scores), so the
 * truncation is part of the rule: hosts whose fragmentation changes by nearly the same amount
 * tie, and the kube-scheduler picks uniformly among tied hosts (our request's tie_seed does the
 * same, reproducibly). Inside a host, a sharing request tries every GPU that fits and keeps the
 * first GPU with the highest score (strictly greater replaces, so the lowest index wins a tie):
 * we give that order to the engine as the secondary score −index. Whole-GPU requests take
 * empty GPUs; which ones does not change F (the measure is symmetric in the GPUs).
 *
 * Speed: F_before of every host is cached in a gv_frag_table, refreshed by host_changed(); the
 * after-value costs O(shapes) per candidate (frag.h). GPUs that a request of another mode holds
 * (vGPU, MIG, pass-through) count as having no free share.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched/frag-cluster.h"
#include "sched/sched.h"
#include "util/alloc.h"

struct fgd_state {
        struct gv_frag_table *table; /* NULL until shapes are known */
        bool installed;              /* shapes came from gv_sched_fgd_set_shapes() */
        /* learning (until shapes are installed) */
        struct gv_frag_shape seen[GV_FRAG_MAX_SHAPES];
        size_t n_seen;
        uint64_t n_reqs, next_rebuild;
};

static int fgd_attach(const struct gv_sched_cluster *c, void **ret_state, struct gv_error **err)
{
        struct fgd_state *st = xnew0(struct fgd_state, 1);

        (void)c;
        (void)err;
        st->next_rebuild = 1;
        *ret_state = st;
        return 0;
}

static void fgd_detach(void *state)
{
        struct fgd_state *st = state;

        if (!st)
                return;
        gv_frag_table_free(st->table);
        free(st);
}

static void fgd_host_changed(const struct gv_sched_cluster *c, void *state, uint32_t host)
{
        gv_frag_table_host_changed(c, &((struct fgd_state *)state)->table, host);
}

/* The share-world shape of a request, false when the measure does not speak about it. */
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

static void fgd_begin(const struct gv_sched_cluster *c, void *state,
                      const struct gv_sched_request *r)
{
        struct fgd_state *st = state;
        struct gv_frag_shape m;
        size_t i;

        if (st->installed || !request_shape(r, &m))
                return;
        for (i = 0; i < st->n_seen; i++)
                if (st->seen[i].cpu_milli == m.cpu_milli && st->seen[i].num_gpu == m.num_gpu &&
                    st->seen[i].gpu_milli == m.gpu_milli &&
                    st->seen[i].model_mask == m.model_mask)
                        break;
        if (i < st->n_seen)
                st->seen[i].weight += 1;
        else if (st->n_seen < GV_FRAG_MAX_SHAPES)
                st->seen[st->n_seen++] = m;
        st->n_reqs++;
        if (st->n_reqs >= st->next_rebuild) {
                _cleanup_free_ struct gv_frag_shape *typ = NULL;
                size_t n = 0;

                st->next_rebuild *= 2;
                if (gv_frag_typical_shapes(st->seen, st->n_seen, 95, &typ, &n, NULL) >= 0)
                        (void)gv_frag_table_rebuild(c, &st->table, typ, n, NULL);
        }
}

static double sigmoid(double x)
{
        return 1.0 / (1.0 + exp(-x));
}

static void fgd_score(const struct gv_sched_cluster *c, void *state,
                      const struct gv_sched_request *r, const struct gv_sched_placement *cand,
                      struct gv_sched_score *ret)
{
        struct fgd_state *st = state;
        const struct gv_sched_host *h = gv_sched_cluster_host(c, cand->host);
        uint32_t buf[GV_FRAG_MAX_GPUS], old[GV_SCHED_MAX_REQ_GPUS], new[GV_SCHED_MAX_REQ_GPUS];
        struct gv_frag_host v;
        double before, after;
        size_t n = 0;

        ret->primary = 0;
        ret->secondary = 0;
        if (!st->table || cand->host >= st->table->n_hosts)
                return;
        gv_frag_host_view(c, cand->host, buf, &v);
        for (uint32_t k = 0; k < cand->n_slots && k < GV_SCHED_MAX_REQ_GPUS; k++) {
                uint32_t local = cand->slots[k].gpu - h->first_gpu;
                uint32_t take = cand->slots[k].milli;

                if (local >= v.n_gpus)
                        continue;
                old[n] = buf[local];
                /* A vGPU or MIG slot takes the GPU out of the share world. */
                if (cand->slots[k].alloc != GV_SCHED_ALLOC_SHARE &&
                    cand->slots[k].alloc != GV_SCHED_ALLOC_WHOLE)
                        take = old[n];
                new[n] = old[n] >= take ? old[n] - take : 0;
                n++;
        }
        before = st->table->hosts[cand->host].frag;
        after = gv_frag_table_after(st->table, cand->host,
                                    (uint32_t)MIN(r->cpu_milli, (uint64_t)UINT32_MAX), old, new,
                                    n);
        /* int64(sigmoid(Δ/1000) × MaxNodeScore), MaxNodeScore = 100 (fgd_score.go). */
        ret->primary = (double)(int64_t)(sigmoid((before - after) / 1000.0) * 100.0);
        if (cand->n_slots > 0)
                ret->secondary = -(double)(cand->slots[0].gpu - h->first_gpu);
}

const struct gv_sched_policy gv_sched_policy_fgd = {
        .name = "fgd",
        .summary = "fragmentation gradient descent (ATC '23): least growth of typical-shape "
                   "fragmentation",
        .attach = fgd_attach,
        .detach = fgd_detach,
        .host_changed = fgd_host_changed,
        .begin = fgd_begin,
        .score = fgd_score,
};

int gv_sched_fgd_set_shapes(struct gv_sched_cluster *c, const struct gv_frag_shape *shapes,
                            size_t n_shapes, struct gv_error **err)
{
        struct fgd_state *st = gv_sched_policy_state(c, &gv_sched_policy_fgd);
        int r;

        if (!st)
                return gv_error_set(err, EINVAL,
                                    "The 'fgd' policy is not attached to this cluster; call "
                                    "gv_sched_policy_attach() first.");
        r = gv_frag_table_rebuild(c, &st->table, shapes, n_shapes, err);
        if (r < 0)
                return r;
        st->installed = true;
        return 0;
}
