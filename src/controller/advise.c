/* SPDX-License-Identifier: MIT */
/*
 * advise.c — the mode advisor on the cluster (POST /api/v1/advise; docs/advisor.md). The
 * options come from the pure core (src/advise) given the cluster's GPU models and counts (the
 * placement model) and the licence prices (license.c's quotes); this file adds where each option
 * fits now.
 *
 * Where: every instance of an option is placed by the engine under the default policy, on the
 * option's model, and reserved in the model only (not the store), so the next instance sees the
 * first; then all are released again (reserve and release are exact inverses) and nothing is
 * left. The trial requests would teach the gpuvirt policy shapes nobody asked for, so the model
 * is marked dirty afterwards and rebuilt from the store at the next decision, as after an
 * inventory change. An option that does not fit now stays listed, below those that do, with the
 * engine's explanation. Each instance asks for 1 vCPU and 1 GiB of host memory (the VM create
 * defaults): the advisor weighs GPUs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "advise/advise.h"
#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

static enum gv_sched_gpu_mode mode_of_alloc(uint8_t a)
{
        switch (a) {
        case GV_SCHED_ALLOC_WHOLE:
                return GV_SCHED_MODE_PASSTHROUGH;
        case GV_SCHED_ALLOC_VGPU:
                return GV_SCHED_MODE_VGPU;
        case GV_SCHED_ALLOC_MIG:
        case GV_SCHED_ALLOC_MIG_VGPU:
                return GV_SCHED_MODE_MIG;
        default:
                return GV_SCHED_MODE_SHARE;
        }
}

struct gpu_use {
        uint32_t gpu;
        uint32_t instances;
        uint8_t prev_mode;
        bool mode_change;
};

/* "node-a GPU 3 (after mode change)", "node-a GPUs 1, 3 and node-b GPU 0" */
static char *where_text(struct gv_controller *c, const struct gpu_use *u, size_t n,
                        bool mode_change)
{
        _cleanup_strv_free_ char **parts = NULL;
        for (size_t i = 0; i < n;) {
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c->cluster, u[i].gpu);
                const char *host = gv_sched_cluster_host(c->cluster, g->host)->name;
                _cleanup_strv_free_ char **idx = NULL;
                size_t j = i;
                for (; j < n && gv_sched_cluster_gpu(c->cluster, u[j].gpu)->host == g->host; j++)
                        strv_consume(&idx, xasprintf("%u", gv_sched_cluster_gpu(c->cluster,
                                                                                u[j].gpu)->index));
                _cleanup_free_ char *l = strv_join(idx, ", ");
                strv_consume(&parts, xasprintf("%s GPU%s %s", host, j - i > 1 ? "s" : "", l));
                i = j;
        }
        _cleanup_free_ char *all = strv_join(parts, " and ");
        if (!mode_change)
                return TAKE_PTR(all);
        /* "from vgpu" when every GPU that changes comes from one mode */
        int from = -1;
        for (size_t i = 0; i < n; i++)
                if (u[i].mode_change)
                        from = from == -1 || from == u[i].prev_mode ? u[i].prev_mode : -2;
        if (from >= 0)
                return xasprintf("%s (after mode change from %s)", all,
                                 gv_sched_gpu_mode_to_string(from));
        return xasprintf("%s (after mode change)", all);
}

/* Where option o's instances go now (see the top of the file); *ret_fit. Under c->mu. */
static json_t *where_of(struct gv_controller *c, const struct gv_advise_option *o,
                        enum gv_advise_fit *ret_fit)
{
        const struct gv_sched_policy *policy = gv_sched_policy_default();
        struct gv_sched_request rq = { .cpu_milli = 1000, .memory_mib = 1024 };
        uint32_t n = gv_advise_requests(o), placed = 0;
        _cleanup_free_ struct gv_sched_placement *pl = xnew0(struct gv_sched_placement, n);
        _cleanup_free_ struct gpu_use *use = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *why = NULL;
        size_t n_use = 0;
        bool mode_change = false;
        int r;

        switch (o->mode) {
        case GV_ADVISE_PASSTHROUGH:
                rq.kind = GV_SCHED_KIND_WHOLE;
                rq.num_gpu = 1;
                break;
        case GV_ADVISE_VGPU:
                rq.kind = GV_SCHED_KIND_VGPU;
                rq.type = o->vgpu->name;
                break;
        default:
                rq.kind = GV_SCHED_KIND_MIG;
                rq.type = o->gi->name;
                break;
        }
        r = gv_sched_cluster_model_mask(c->cluster, o->model->name, &rq.model_mask, &e);
        if (r >= 0)
                r = gv_sched_request_resolve(c->cluster, &rq, &e);
        if (r < 0)
                why = xstrdup(gv_error_msg(e, r));
        for (; r >= 0 && placed < n; placed++) {
                struct gv_sched_explain ex;
                r = gv_sched_place(c->cluster, policy, &rq, &pl[placed], &ex, NULL);
                if (r == -ENOSPC) {
                        why = gv_sched_explain_format(&rq, &ex);
                        break;
                }
                if (r >= 0)
                        r = gv_sched_reserve(c->cluster, &rq, &pl[placed], &e);
                if (r < 0) {
                        why = why ? why : xstrdup(gv_error_msg(e, r));
                        break;
                }
                for (uint32_t s = 0; s < pl[placed].n_slots; s++) {
                        const struct gv_sched_slot *sl = &pl[placed].slots[s];
                        size_t k = 0;
                        while (k < n_use && use[k].gpu != sl->gpu)
                                k++;
                        if (k == n_use) {
                                use = xreallocarray(use, n_use + 1, sizeof(*use));
                                use[n_use++] = (struct gpu_use){
                                        .gpu = sl->gpu, .prev_mode = sl->prev_mode,
                                        .mode_change = pl[placed].switches_mode &&
                                                       sl->prev_mode != mode_of_alloc(sl->alloc),
                                };
                        }
                        use[k].instances++;
                        mode_change = mode_change || use[k].mode_change;
                }
        }
        /* undo, last first; a release that fails leaves the model to the rebuild */
        for (uint32_t i = placed; i-- > 0;)
                if (gv_sched_release(c->cluster, &rq, &pl[i], NULL) < 0)
                        c->model_dirty = true;
        if (placed)
                c->model_dirty = true;

        json_t *gpus = json_array();
        for (size_t i = 0; i < n_use; i++) {
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c->cluster, use[i].gpu);
                const char *host = gv_sched_cluster_host(c->cluster, g->host)->name;
                _cleanup_free_ char *gname = xasprintf("%s/%u", host, g->index);
                json_array_append_new(
                        gpus, json_pack("{s:s, s:s, s:i, s:s?, s:i, s:s, s:b}", "host", host,
                                        "gpu", gname, "index", g->index, "pci",
                                        c->gpu_pci ? c->gpu_pci[use[i].gpu] : NULL, "instances",
                                        (int)use[i].instances, "mode",
                                        gv_sched_gpu_mode_to_string(use[i].prev_mode),
                                        "mode_change", use[i].mode_change));
        }
        bool fits = placed == n;
        _cleanup_free_ char *text = NULL;
        if (fits)
                text = where_text(c, use, n_use, mode_change);
        else if (placed)
                text = xasprintf("only %u of %u fit now: %s", placed, n, why ? why : "?");
        else
                text = xasprintf("nowhere now: %s", why ? why : "?");
        *ret_fit = fits ? GV_ADVISE_FIT_NOW : GV_ADVISE_FIT_NO_ROOM;
        return json_pack("{s:b, s:i, s:i, s:o, s:b, s:s, s:s?, s:b}", "fits", fits, "placed",
                         (int)placed, "instances", (int)n, "gpus", gpus, "mode_change",
                         mode_change, "text", text, "reason", fits ? NULL : why, "reserved", 0);
}

int gv_controller_advise(struct gv_controller *c, const json_t *traits, json_t **ret,
                         struct gv_error **err)
{
        struct gv_advise_traits t;
        struct gv_advise_price prices[_GV_LICENSE_EDITION_MAX];
        struct gv_advise_gpus gpus[GV_SCHED_MAX_MODELS];
        size_t n_models = 0;
        _cleanup_(gv_advise_result_freep) struct gv_advise_result *res = NULL;
        int r = gv_advise_traits_from_json(traits, &t, err);

        if (r < 0)
                return r;
        /* the quotes read the store; taken before the model's lock */
        struct gv_ctl_license_quote quotes[_GV_LICENSE_EDITION_MAX];
        gv_ctl_license_quotes(c, quotes);
        for (int e = 0; e < _GV_LICENSE_EDITION_MAX; e++) {
                const struct gv_ctl_license_quote q = quotes[e];
                prices[e] = (struct gv_advise_price){
                        .pooled = q.pooled,
                        .seats_free = q.seats_free,
                        .price_per_seat_year = q.price_per_seat_year,
                        .counting = q.counting,
                };
                snprintf(prices[e].currency, sizeof(prices[e].currency), "%s", q.currency);
        }

        pthread_mutex_lock(&c->mu);
        r = gv_ctl_model_ensure(c, err);
        if (r >= 0) {
                size_t nm = gv_sched_cluster_n_models(c->cluster);
                for (size_t m = 0; m < nm && n_models < ELEMENTSOF(gpus); m++) {
                        const struct gv_sched_model *sm = gv_sched_cluster_model(c->cluster,
                                                                                 (uint32_t)m);
                        uint32_t count = 0;
                        if (!sm->catalog)
                                continue;
                        for (size_t g = 0; g < gv_sched_cluster_n_gpus(c->cluster); g++)
                                count += gv_sched_cluster_gpu(c->cluster, (uint32_t)g)->model == m;
                        gpus[n_models++] = (struct gv_advise_gpus){ sm->catalog, count };
                }
                struct gv_advise_input in = { .traits = &t, .gpus = gpus, .n_gpus = n_models,
                                              .prices = prices, .catalog = c->catalog };
                r = gv_advise(&in, &res, err);
        }
        for (size_t i = 0; r >= 0 && i < res->n_options; i++)
                res->options[i].where = where_of(c, &res->options[i], &res->options[i].fit);
        pthread_mutex_unlock(&c->mu);
        if (r >= 0) {
                gv_advise_sort(res);
                *ret = gv_advise_result_to_json(res, &t);
        }
        gv_advise_traits_done(&t);
        return r;
}
