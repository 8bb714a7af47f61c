/* SPDX-License-Identifier: MIT */
/*
 * request.c — validating requests and resolving them against a cluster's models (names to
 * per-model indices, the by-need rule), and the words for requests and rejections.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched-internal.h"
#include "util/alloc.h"

static uint64_t all_models(const struct gv_sched_cluster *c)
{
        return c->n_models >= 64 ? UINT64_MAX : (UINT64_C(1) << c->n_models) - 1;
}

/* "H100-SXM5-80GB: H100XM-80C, ...; L4: ..." for every catalog model of the cluster. */
static char *names_per_model(const struct gv_sched_cluster *c, bool mig)
{
        char *out = xstrdup("");
        for (size_t i = 0; i < c->n_models; i++) {
                const struct gv_gpu_model *gm = c->models[i].pub.catalog;
                if (!gm || (mig ? gm->n_gi_profiles : gm->n_vgpu_types) == 0)
                        continue;
                _cleanup_free_ char *names = mig ? gv_gpu_model_gi_profile_names(gm)
                                                 : gv_gpu_model_vgpu_type_names(gm);
                char *n = xasprintf("%s%s%s: %s", out, *out ? "; " : "", gm->name, names);
                free(out);
                out = n;
        }
        if (!*out) {
                free(out);
                out = xstrdup(mig ? "(no model of the cluster has MIG)"
                                  : "(no model of the cluster has vGPU types)");
        }
        return out;
}

static char *mask_names(const struct gv_sched_cluster *c, uint64_t mask)
{
        char *out = xstrdup("");
        for (size_t i = 0; i < c->n_models; i++) {
                if (!(mask >> i & 1))
                        continue;
                char *n = xasprintf("%s%s%s", out, *out ? ", " : "", c->models[i].pub.name);
                free(out);
                out = n;
        }
        if (!*out) {
                free(out);
                out = xstrdup("(none)");
        }
        return out;
}

static int resolve_named(const struct gv_sched_cluster *c, struct gv_sched_request *r,
                         uint64_t allowed, bool mig, struct gv_error **err)
{
        const char *what = mig ? "MIG profile" : "vGPU type";
        uint64_t found = 0, anywhere = 0;

        if (!r->type || !*r->type)
                return gv_error_set(err, EINVAL, "A %s request needs a %s name.",
                                    mig ? "mig" : "vgpu", what);
        for (size_t i = 0; i < c->n_models; i++) {
                const struct gv_gpu_model *gm = c->models[i].pub.catalog;
                int idx = -1;
                if (gm && mig) {
                        const struct gv_mig_gi_profile *p = gv_gpu_model_find_gi_profile(gm,
                                                                                      r->type);
                        if (p)
                                idx = (int)(p - gm->gi_profiles);
                } else if (gm) {
                        const struct gv_vgpu_type *t = gv_gpu_model_find_vgpu_type(gm, r->type);
                        if (t)
                                idx = (int)(t - gm->vgpu_types);
                }
                if (idx < 0)
                        continue;
                anywhere |= UINT64_C(1) << i;
                if (allowed >> i & 1) {
                        r->resolved.index[i] = (int16_t)idx;
                        found |= UINT64_C(1) << i;
                }
        }
        if (!anywhere) {
                _cleanup_free_ char *names = names_per_model(c, mig);
                return gv_error_set(err, EINVAL, "Unknown %s '%s'; the cluster's models offer: "
                                    "%s.", what, r->type, names);
        }
        if (!found) {
                _cleanup_free_ char *have = mask_names(c, anywhere);
                _cleanup_free_ char *allow = mask_names(c, allowed);
                return gv_error_set(err, ENOENT, "%s '%s' is offered by %s, none of which the "
                                    "request allows (allowed models: %s).", what, r->type, have,
                                    allow);
        }
        r->resolved.model_mask = found;
        return 0;
}

struct need_opt {
        struct gv_sched_option o;
        uint64_t size; /* MiB it reserves: the preference order (smallest first) */
        int rank;      /* tie order: vGPU, MIG, whole, share */
};

static int cmp_opt(const void *a, const void *b)
{
        const struct need_opt *x = a, *y = b;
        if (x->size != y->size)
                return x->size < y->size ? -1 : 1;
        return x->rank - y->rank;
}

/* The by-need rule (docs/placement.md, "By need"): the options of one model, smallest first. */
static size_t need_options(const struct sched_model *m, const struct gv_sched_request *r,
                           struct gv_sched_option *out)
{
        uint64_t need = r->need.gpu_memory_mib;
        bool hw = r->need.isolation == GV_SCHED_ISOLATION_HARDWARE;
        bool whole_ok = !r->need.live_migration;
        struct need_opt opts[4];
        size_t n = 0;
        int best_ts = -1, best_mv = -1, best_mig = -1;

        if (!m->pub.catalog) {
                /* Share-only (trace) model: a share has no isolation and no migration. */
                if (r->need.isolation == GV_SCHED_ISOLATION_NONE && !r->need.live_migration &&
                    need <= m->pub.memory_mib) {
                        uint64_t milli = (need * GV_SCHED_MILLI + m->pub.memory_mib - 1) /
                                         m->pub.memory_mib;
                        out[0] = (struct gv_sched_option){ .alloc = GV_SCHED_ALLOC_SHARE,
                                                           .index = -1,
                                                           .milli = (uint16_t)MAX(milli, 1u) };
                        return 1;
                }
                return 0;
        }

        for (size_t i = 0; i < m->n_vgpu; i++) {
                const struct sched_vgpu_type *t = &m->vgpu[i];
                if (t->fb_mib < need)
                        continue;
                if (t->gi >= 0) {
                        if (m->mig[t->gi].media)
                                continue;
                        if (best_mv < 0 || t->fb_mib < m->vgpu[best_mv].fb_mib ||
                            (t->fb_mib == m->vgpu[best_mv].fb_mib &&
                             m->mig[t->gi].slices < m->mig[m->vgpu[best_mv].gi].slices))
                                best_mv = (int)i;
                } else if (!hw) {
                        if (best_ts < 0 || t->fb_mib < m->vgpu[best_ts].fb_mib ||
                            (t->fb_mib == m->vgpu[best_ts].fb_mib &&
                             t->t->series == GV_VGPU_SERIES_C))
                                best_ts = (int)i;
                }
        }
        if (!r->need.live_migration)
                for (size_t p = 0; p < m->n_mig; p++) {
                        const struct gv_mig_gi_profile *gp = m->mig[p].gi;
                        if (m->mig[p].media || gp->memory_mib < need)
                                continue;
                        if (best_mig < 0 || gp->memory_mib < m->mig[best_mig].gi->memory_mib ||
                            (gp->memory_mib == m->mig[best_mig].gi->memory_mib &&
                             gp->slices < m->mig[best_mig].gi->slices))
                                best_mig = (int)p;
                }
        if (r->need.live_migration) {
                if (best_mv >= 0)
                        opts[n++] = (struct need_opt){ { GV_SCHED_ALLOC_MIG_VGPU, (int16_t)best_mv,
                                                         0 }, m->vgpu[best_mv].fb_mib, 1 };
                if (best_ts >= 0) /* none under hardware isolation (software isolation) */
                        opts[n++] = (struct need_opt){ { GV_SCHED_ALLOC_VGPU, (int16_t)best_ts,
                                                         0 }, m->vgpu[best_ts].fb_mib, 0 };
        } else {
                if (!hw && best_ts >= 0)
                        opts[n++] = (struct need_opt){ { GV_SCHED_ALLOC_VGPU, (int16_t)best_ts,
                                                         0 }, m->vgpu[best_ts].fb_mib, 0 };
                if (best_mig >= 0)
                        opts[n++] = (struct need_opt){ { GV_SCHED_ALLOC_MIG, (int16_t)best_mig,
                                                         0 }, m->mig[best_mig].gi->memory_mib,
                                                       1 };
                if (whole_ok && m->pub.memory_mib >= need)
                        opts[n++] = (struct need_opt){ { GV_SCHED_ALLOC_WHOLE, -1, 0 },
                                                       m->pub.memory_mib, 2 };
        }
        qsort(opts, n, sizeof(opts[0]), cmp_opt);
        for (size_t i = 0; i < n; i++)
                out[i] = opts[i].o;
        return n;
}

int gv_sched_request_resolve(const struct gv_sched_cluster *c, struct gv_sched_request *r,
                             struct gv_error **err)
{
        uint64_t all = all_models(c);
        uint64_t allowed;
        int q;

        memset(&r->resolved, 0, sizeof(r->resolved));
        for (size_t i = 0; i < GV_SCHED_MAX_MODELS; i++)
                r->resolved.index[i] = -1;
        if (r->model_mask & ~all)
                return gv_error_set(err, EINVAL, "The request allows GPU model ids the cluster "
                                    "does not have (mask %#" PRIx64 ", the cluster has %zu "
                                    "models).", r->model_mask, c->n_models);
        if (c->n_labels < 64 && (r->labels >> c->n_labels))
                return gv_error_set(err, EINVAL, "The request requires label ids the cluster "
                                    "does not have (mask %#" PRIx64 ").", r->labels);
        if (r->group > c->n_groups)
                return gv_error_set(err, EINVAL, "Unknown anti-affinity group id %u.", r->group);
        allowed = r->model_mask ? r->model_mask : all;

        switch (r->kind) {
        case GV_SCHED_KIND_NONE:
                r->resolved.model_mask = all;
                break;
        case GV_SCHED_KIND_WHOLE:
                if (r->num_gpu < 1 || r->num_gpu > GV_SCHED_MAX_REQ_GPUS)
                        return gv_error_set(err, EINVAL, "A request for whole GPUs needs 1 to %u "
                                            "GPUs, not %u.", GV_SCHED_MAX_REQ_GPUS, r->num_gpu);
                r->resolved.model_mask = allowed;
                break;
        case GV_SCHED_KIND_SHARE:
                if (r->num_gpu < 1 || r->num_gpu > GV_SCHED_MAX_REQ_GPUS)
                        return gv_error_set(err, EINVAL, "A share request needs 1 to %u GPUs, "
                                            "not %u.", GV_SCHED_MAX_REQ_GPUS, r->num_gpu);
                if (r->gpu_milli < 1 || r->gpu_milli > GV_SCHED_MILLI)
                        return gv_error_set(err, EINVAL, "A share request needs 1 to %u milli "
                                            "per GPU, not %u.", GV_SCHED_MILLI, r->gpu_milli);
                if (r->num_gpu > 1 && r->gpu_milli != GV_SCHED_MILLI)
                        return gv_error_set(err, EINVAL, "A share request for %u GPUs must take "
                                            "them whole (gpu_milli 1000, not %u): only a "
                                            "single GPU is shared.", r->num_gpu, r->gpu_milli);
                r->resolved.model_mask = allowed;
                break;
        case GV_SCHED_KIND_VGPU:
        case GV_SCHED_KIND_MIG:
                q = resolve_named(c, r, allowed, r->kind == GV_SCHED_KIND_MIG, err);
                if (q < 0)
                        return q;
                break;
        case GV_SCHED_KIND_NEED: {
                uint64_t found = 0;
                if (r->need.gpu_memory_mib == 0)
                        return gv_error_set(err, EINVAL, "A by-need request needs its GPU "
                                            "memory in MiB (more than 0).");
                if ((int)r->need.isolation < 0 || r->need.isolation >= _GV_SCHED_ISOLATION_MAX)
                        return gv_error_set(err, EINVAL, "Invalid isolation %d: use none, "
                                            "software or hardware.", (int)r->need.isolation);
                for (size_t i = 0; i < c->n_models; i++) {
                        if (!(allowed >> i & 1))
                                continue;
                        size_t n = need_options(&c->models[i], r, r->resolved.options[i]);
                        r->resolved.n_options[i] = (uint8_t)n;
                        if (n)
                                found |= UINT64_C(1) << i;
                }
                if (!found) {
                        char buf[96];
                        _cleanup_free_ char *allow = mask_names(c, allowed);
                        return gv_error_set(err, ENOENT, "No GPU model can serve %s (looked "
                                            "at: %s): hardware isolation needs MIG or a whole "
                                            "GPU, live migration needs vGPU or MIG-backed "
                                            "vGPU, and the GPU memory must fit.",
                                            gv_sched_request_format(r, buf, sizeof(buf)),
                                            allow);
                }
                r->resolved.model_mask = found;
                break;
        }
        default:
                return gv_error_set(err, EINVAL, "Invalid request kind %d: use none, gpu, vgpu, "
                                    "mig, share or need.", (int)r->kind);
        }
        r->resolved.ok = true;
        return 0;
}

char *gv_sched_request_format(const struct gv_sched_request *r, char *buf, size_t size)
{
        switch (r->kind) {
        case GV_SCHED_KIND_NONE:
                snprintf(buf, size, "cpu");
                break;
        case GV_SCHED_KIND_WHOLE:
                snprintf(buf, size, "gpu:%u", r->num_gpu);
                break;
        case GV_SCHED_KIND_SHARE:
                if (r->num_gpu == 1)
                        snprintf(buf, size, "share:%um", r->gpu_milli);
                else
                        snprintf(buf, size, "share:%ux%um", r->num_gpu, r->gpu_milli);
                break;
        case GV_SCHED_KIND_VGPU:
                snprintf(buf, size, "vgpu:%s", r->type ? r->type : "?");
                break;
        case GV_SCHED_KIND_MIG:
                snprintf(buf, size, "mig:%s", r->type ? r->type : "?");
                break;
        case GV_SCHED_KIND_NEED:
                snprintf(buf, size, "need:%" PRIu64 "MiB/%s%s", r->need.gpu_memory_mib,
                         gv_sched_isolation_to_string(r->need.isolation) ?: "?",
                         r->need.live_migration ? "/migrate" : "");
                break;
        default:
                snprintf(buf, size, "invalid");
        }
        return buf;
}

char *gv_sched_explain_format(const struct gv_sched_request *r, const struct gv_sched_explain *why)
{
        char rb[96];
        bool done[_GV_SCHED_REJECT_MAX] = { false };
        char *out;

        gv_sched_request_format(r, rb, sizeof(rb));
        if (why->hosts == 0)
                return xasprintf("no host can place %s: the cluster has no hosts", rb);
        out = xasprintf("no host can place %s:", rb);
        for (;;) {
                int best = -1;
                for (int i = 0; i < _GV_SCHED_REJECT_MAX; i++)
                        if (!done[i] && why->rejected[i] &&
                            (best < 0 || why->rejected[i] > why->rejected[best]))
                                best = i;
                if (best < 0)
                        break;
                done[best] = true;
                char *n = xasprintf("%s%s %u host%s %s", out, out[strlen(out) - 1] == ':' ? "" :
                                    ",", why->rejected[best], why->rejected[best] == 1 ? "" : "s",
                                    gv_sched_reject_to_string(best));
                free(out);
                out = n;
        }
        return out;
}
