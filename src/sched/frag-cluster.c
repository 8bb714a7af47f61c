/* SPDX-License-Identifier: MIT */
#include "sched/frag-cluster.h"

#include <string.h>

#include "util/alloc.h"

uint32_t gv_frag_share_free(const struct gv_sched_cluster *c, uint32_t g)
{
        const struct gv_sched_gpu *gpu = gv_sched_cluster_gpu(c, g);

        return gpu->n_alloc == 0 || gpu->mode == GV_SCHED_MODE_SHARE
                       ? gv_sched_cluster_free_milli(c)[g]
                       : 0;
}

void gv_frag_host_view(const struct gv_sched_cluster *c, uint32_t id, uint32_t *buf,
                       struct gv_frag_host *ret)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, id);
        unsigned n = MIN(h->n_gpus, GV_FRAG_MAX_GPUS);

        ret->cpu_free_milli = (uint32_t)MIN(h->cpu_free, (uint64_t)UINT32_MAX);
        ret->n_gpus = n;
        ret->model = n ? gv_sched_cluster_gpu(c, h->first_gpu)->model : 0;
        for (unsigned g = 0; g < n; g++)
                buf[g] = gv_frag_share_free(c, h->first_gpu + g);
        ret->gpu_free_milli = buf;
}

static void refresh_host(const struct gv_sched_cluster *c, struct gv_frag_table *t, uint32_t id)
{
        uint32_t buf[GV_FRAG_MAX_GPUS];
        struct gv_frag_host v;

        gv_frag_host_view(c, id, buf, &v);
        gv_frag_table_update(t, id, &v);
}

int gv_frag_table_rebuild(const struct gv_sched_cluster *c, struct gv_frag_table **table,
                          const struct gv_frag_shape *shapes, size_t n_shapes,
                          struct gv_error **err)
{
        struct gv_frag_table *t = NULL;
        size_t n_hosts = gv_sched_cluster_n_hosts(c);
        int r = gv_frag_table_new(shapes, n_shapes, MAX(n_hosts * 2, (size_t)16), &t, err);

        if (r < 0)
                return r;
        gv_frag_table_free(*table);
        *table = t;
        for (uint32_t i = 0; i < n_hosts; i++)
                refresh_host(c, t, i);
        return 0;
}

void gv_frag_table_host_changed(const struct gv_sched_cluster *c, struct gv_frag_table **table,
                                uint32_t host)
{
        struct gv_frag_table *t = *table;

        if (!t)
                return;
        if (host >= t->n_hosts) {
                /* A host was added past the table's room: grow (amortised, not per decision). */
                size_t n = t->n_shapes;
                _cleanup_free_ struct gv_frag_shape *shapes = xnew0(struct gv_frag_shape, n);

                memcpy(shapes, t->shapes, n * sizeof(*shapes));
                (void)gv_frag_table_rebuild(c, table, shapes, n, NULL); /* shapes were valid */
                return;
        }
        refresh_host(c, t, host);
}
