/* SPDX-License-Identifier: MIT */
/*
 * frag.c — FGD's typical-shape fragmentation measure (frag.h; scheduling.md §2–3).
 */
#include "sched/frag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static bool shape_same(const struct gv_frag_shape *a, const struct gv_frag_shape *b)
{
        return a->cpu_milli == b->cpu_milli && a->num_gpu == b->num_gpu &&
               a->gpu_milli == b->gpu_milli && a->model_mask == b->model_mask;
}

/* Most popular first; equal counts: the artefact sorts sort.Reverse(Less) where Less compares
 * (cpu, gpu_milli, num_gpu, type) ascending, so larger values come first. */
static int shape_cmp_popular(const void *x, const void *y)
{
        const struct gv_frag_shape *a = x, *b = y;

        if (a->weight != b->weight)
                return a->weight > b->weight ? -1 : 1;
        if (a->cpu_milli != b->cpu_milli)
                return a->cpu_milli > b->cpu_milli ? -1 : 1;
        if (a->gpu_milli != b->gpu_milli)
                return a->gpu_milli > b->gpu_milli ? -1 : 1;
        if (a->num_gpu != b->num_gpu)
                return a->num_gpu > b->num_gpu ? -1 : 1;
        if (a->model_mask != b->model_mask)
                return a->model_mask > b->model_mask ? -1 : 1;
        return 0;
}

static int shape_cmp_key(const void *x, const void *y)
{
        const struct gv_frag_shape *a = x, *b = y;

        if (a->cpu_milli != b->cpu_milli)
                return a->cpu_milli < b->cpu_milli ? -1 : 1;
        if (a->gpu_milli != b->gpu_milli)
                return a->gpu_milli < b->gpu_milli ? -1 : 1;
        if (a->num_gpu != b->num_gpu)
                return a->num_gpu < b->num_gpu ? -1 : 1;
        if (a->model_mask != b->model_mask)
                return a->model_mask < b->model_mask ? -1 : 1;
        return 0;
}

static int shape_check(const struct gv_frag_shape *m, size_t i, struct gv_error **err)
{
        if (m->num_gpu == 0 && m->gpu_milli != 0)
                return gv_error_set(err, EINVAL,
                                    "Request %zu asks for %u milli-GPU per GPU but no GPU; "
                                    "set gpu_milli to 0 for CPU-only requests.",
                                    i, m->gpu_milli);
        if (m->num_gpu > 0 && (m->gpu_milli == 0 || m->gpu_milli > GV_FRAG_MILLI))
                return gv_error_set(err, EINVAL,
                                    "Request %zu asks for %u milli-GPU per GPU; the share must be "
                                    "1..1000.",
                                    i, m->gpu_milli);
        if (!(m->weight >= 0))
                return gv_error_set(err, EINVAL, "Request %zu has a negative weight.", i);
        return 0;
}

int gv_frag_typical_shapes(const struct gv_frag_shape *reqs, size_t n_reqs, unsigned threshold_pct,
                           struct gv_frag_shape **ret, size_t *ret_n, struct gv_error **err)
{
        _cleanup_free_ struct gv_frag_shape *sorted = NULL;
        size_t n_uniq = 0, n_take = 0;
        double total = 0, cum = 0;
        int r;

        if (threshold_pct < 1 || threshold_pct > 100)
                return gv_error_set(err, EINVAL,
                                    "Popularity threshold %u%% is out of range; use 1..100.",
                                    threshold_pct);
        if (n_reqs == 0)
                return gv_error_set(err, EINVAL,
                                    "No requests to derive typical shapes from; give a non-empty "
                                    "request list.");

        sorted = xnew0(struct gv_frag_shape, n_reqs);
        for (size_t i = 0; i < n_reqs; i++) {
                r = shape_check(&reqs[i], i, err);
                if (r < 0)
                        return r;
                sorted[i] = reqs[i];
        }
        qsort(sorted, n_reqs, sizeof(*sorted), shape_cmp_key);
        for (size_t i = 0; i < n_reqs; i++) {
                if (n_uniq > 0 && shape_same(&sorted[n_uniq - 1], &sorted[i]))
                        sorted[n_uniq - 1].weight += sorted[i].weight;
                else
                        sorted[n_uniq++] = sorted[i];
                total += sorted[i].weight;
        }
        if (!(total > 0))
                return gv_error_set(err, EINVAL,
                                    "Requests have zero total weight; give each a positive count.");
        qsort(sorted, n_uniq, sizeof(*sorted), shape_cmp_popular);

        /* GetTypicalPods: add shapes one at a time while the covered count is below the
         * threshold (podIncreaseStep = 1). */
        while (n_take < n_uniq && cum < (double)threshold_pct * total / 100.0)
                cum += sorted[n_take++].weight;
        for (size_t i = 0; i < n_take; i++)
                sorted[i].weight /= cum;

        *ret = xreallocarray(TAKE_PTR(sorted), n_take, sizeof(**ret));
        *ret_n = n_take;
        return 0;
}

static bool model_allowed(const struct gv_frag_shape *m, unsigned model)
{
        return m->model_mask == 0 || (model < 64 && (m->model_mask >> model) & 1u);
}

double gv_frag_host_shape(const struct gv_frag_shape *m, const struct gv_frag_host *h)
{
        uint32_t total = 0, small = 0, fit = 0;

        for (unsigned g = 0; g < h->n_gpus; g++) {
                uint32_t f = h->gpu_free_milli[g];

                total += f;
                if (m->num_gpu > 0 && f < m->gpu_milli)
                        small += f;
                else
                        fit++;
        }
        if (m->num_gpu == 0 || !model_allowed(m, h->model) || fit < m->num_gpu ||
            h->cpu_free_milli < m->cpu_milli)
                return total;
        return small;
}

double gv_frag_host_amount(const struct gv_frag_shape *shapes, size_t n_shapes,
                           const struct gv_frag_host *h)
{
        double f = 0;

        for (size_t s = 0; s < n_shapes; s++)
                f += shapes[s].weight * gv_frag_host_shape(&shapes[s], h);
        return f;
}

int gv_frag_table_new(const struct gv_frag_shape *shapes, size_t n_shapes, size_t n_hosts,
                      struct gv_frag_table **ret, struct gv_error **err)
{
        struct gv_frag_table *t;

        if (n_shapes == 0 || n_shapes > GV_FRAG_MAX_SHAPES)
                return gv_error_set(err, EINVAL,
                                    "%zu typical shapes given; the fragmentation table takes "
                                    "1..%u.",
                                    n_shapes, GV_FRAG_MAX_SHAPES);
        for (size_t s = 0; s < n_shapes; s++) {
                int r = shape_check(&shapes[s], s, err);
                if (r < 0)
                        return r;
        }
        t = xnew0(struct gv_frag_table, 1);
        t->shapes = xnew0(struct gv_frag_shape, n_shapes);
        memcpy(t->shapes, shapes, n_shapes * sizeof(*shapes));
        t->n_shapes = n_shapes;
        t->n_hosts = n_hosts;
        t->hosts = xnew0(struct gv_frag_host_cache, n_hosts ? n_hosts : 1);
        t->fit_store = xnew0(uint8_t, (n_hosts ? n_hosts : 1) * n_shapes);
        t->small_store = xnew0(uint32_t, (n_hosts ? n_hosts : 1) * n_shapes);
        for (size_t i = 0; i < n_hosts; i++) {
                t->hosts[i].fit = t->fit_store + i * n_shapes;
                t->hosts[i].small = t->small_store + i * n_shapes;
        }
        *ret = t;
        return 0;
}

struct gv_frag_table *gv_frag_table_free(struct gv_frag_table *t)
{
        if (!t)
                return NULL;
        free(t->shapes);
        free(t->hosts);
        free(t->fit_store);
        free(t->small_store);
        free(t);
        return NULL;
}

/* frag(m) from the cached per-shape numbers. */
static inline uint32_t shape_frag(const struct gv_frag_shape *m, unsigned model, uint32_t cpu_free,
                                  uint32_t free_total, unsigned fit, uint32_t small)
{
        if (m->num_gpu == 0 || cpu_free < m->cpu_milli || !model_allowed(m, model) ||
            fit < m->num_gpu)
                return free_total;
        return small;
}

void gv_frag_table_update(struct gv_frag_table *t, size_t i, const struct gv_frag_host *h)
{
        struct gv_frag_host_cache *c = &t->hosts[i];
        uint32_t total = 0;
        double f = 0;

        for (unsigned g = 0; g < h->n_gpus; g++)
                total += h->gpu_free_milli[g];
        c->cpu_free_milli = h->cpu_free_milli;
        c->free_total = total;
        c->model = h->model;
        c->n_gpus = h->n_gpus;
        for (size_t s = 0; s < t->n_shapes; s++) {
                const struct gv_frag_shape *m = &t->shapes[s];
                unsigned fit = 0;
                uint32_t small = 0;

                for (unsigned g = 0; g < h->n_gpus; g++) {
                        uint32_t fr = h->gpu_free_milli[g];
                        if (m->num_gpu > 0 && fr < m->gpu_milli)
                                small += fr;
                        else
                                fit++;
                }
                c->fit[s] = (uint8_t)fit;
                c->small[s] = small;
                f += m->weight *
                     shape_frag(m, c->model, c->cpu_free_milli, total, fit, small);
        }
        c->frag = f;
}

double gv_frag_table_after(const struct gv_frag_table *t, size_t i, uint32_t cpu_take,
                           const uint32_t *gpu_old, const uint32_t *gpu_new, size_t n_changed)
{
        const struct gv_frag_host_cache *c = &t->hosts[i];
        uint32_t cpu = c->cpu_free_milli >= cpu_take ? c->cpu_free_milli - cpu_take : 0;
        int64_t total = c->free_total;
        double f = 0;

        for (size_t k = 0; k < n_changed; k++)
                total += (int64_t)gpu_new[k] - (int64_t)gpu_old[k];
        for (size_t s = 0; s < t->n_shapes; s++) {
                const struct gv_frag_shape *m = &t->shapes[s];
                int fit = c->fit[s];
                int64_t small = c->small[s];

                if (m->num_gpu > 0)
                        for (size_t k = 0; k < n_changed; k++) {
                                if (gpu_old[k] < m->gpu_milli)
                                        small -= gpu_old[k];
                                else
                                        fit--;
                                if (gpu_new[k] < m->gpu_milli)
                                        small += gpu_new[k];
                                else
                                        fit++;
                        }
                f += m->weight * shape_frag(m, c->model, cpu, (uint32_t)total, (unsigned)fit,
                                            (uint32_t)small);
        }
        return f;
}

double gv_frag_table_total(const struct gv_frag_table *t)
{
        double f = 0;

        for (size_t i = 0; i < t->n_hosts; i++)
                f += t->hosts[i].frag;
        return f;
}
