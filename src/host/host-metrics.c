/* SPDX-License-Identifier: MIT */
/*
 * host-metrics.c — a GPU's live values through its vendor backend (host.h, "live metrics").
 * Vendor-neutral: whether the host driver can see the GPU at all is decided here from its
 * driver binding (a GPU passed through, or bound to another driver, is invisible to it, and the
 * data says so rather than showing zeros; a binding that moved since the inventory was read has
 * the GPU read again); the values come from the backend's read_metrics slot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/backend.h"
#include "hw/driver.h"
#include "util/alloc.h"

void gv_gpu_metrics_done(struct gv_gpu_metrics *m)
{
        if (!m)
                return;
        free(m->hidden);
        free(m->error);
        free(m->vgpus);
        free(m->migs);
        *m = (struct gv_gpu_metrics){ 0 };
}

int gv_gpu_read_metrics(struct gv_host *h, struct gv_gpu *g, struct gv_gpu_metrics *ret,
                        struct gv_error **err)
{
        struct gv_gpu_metrics m = { 0 };
        const struct gv_gpu_backend_ops *ops = h->ops;

        snprintf(m.bdf, sizeof(m.bdf), "%s", g->bdf);
        /* The binding decides what the host driver sees: when it moved since the inventory was
         * read (a VM took the GPU or gave it back), read the GPU again first. */
        _cleanup_free_ char *drv = NULL;
        if (gv_driver_current(h->sysfs, g->bdf, &drv, NULL) >= 0 &&
            (!drv != !g->driver || (drv && strcmp(drv, g->driver) != 0)))
                (void)gv_host_refresh_gpu(h, g, NULL);
        if (g->mode == GV_GPU_MODE_PASSTHROUGH) {
                m.hidden = xstrdup(GV_GPU_HIDDEN_PASSTHROUGH);
        } else if (!ops || !g->driver || strcmp(g->driver, ops->host_driver) != 0) {
                m.hidden = xasprintf("bound to '%s', not to the host driver '%s': not visible "
                                     "to it", g->driver ? g->driver : "no driver",
                                     ops ? ops->host_driver : "?");
        } else if (!ops->read_metrics) {
                return gv_error_set(err, EOPNOTSUPP, "The '%s' backend cannot read the live "
                                    "values of GPU %s.", ops->name, g->bdf);
        } else {
                int r = ops->read_metrics(h->backend_ctx, h, g, &m, err);
                if (r < 0) {
                        gv_gpu_metrics_done(&m);
                        return r;
                }
        }
        *ret = m;
        return 0;
}
