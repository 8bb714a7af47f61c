/* SPDX-License-Identifier: MIT */
/*
 * insights.c — utilization insights from the metrics history (issue 8; docs/insights.md):
 * idle pass-through GPUs and what converting them would free and cost, MIG fragmentation per
 * GPU with a re-layout plan (src/sched/relayout.h), and licence seats held by idle VMs.
 *
 * Honesty about evidence. A pass-through GPU is bound to vfio-pci: the host driver cannot see
 * it, so the history has no utilization for it (docs/agent.md "Metrics": null, never 0). Its
 * idleness is told from what is known: its VM is stopped or crashed while the placement keeps
 * the whole GPU reserved ("vm-stopped", certain), or its VM's QEMU used less CPU than the
 * threshold over the window ("vm-cpu", a proxy, marked as such). No GPU figure is made up.
 * Time-sliced vGPU slices report their utilization ("gpu-util"); MIG instances do not (the GPU
 * does not attribute it), so their VMs fall back to the CPU proxy too.
 *
 * Reads only: the VMs and GPUs from the store (gv_controller_vms/gpus), the history
 * (gv_controller_metrics_history, the metrics' own leaf lock), the licence usage
 * (gv_controller_licenses, gv_ctl_license_quotes); it takes no controller lock itself.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "catalog/licensing.h"
#include "catalog/mig-layout.h"
#include "controller/controller-internal.h"
#include "sched/relayout.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

static const char *const windows[] = { "5m", "15m", "1h", "6h", "24h" };
static const int64_t window_ms[] = { 5 * 60000, 15 * 60000, 60 * 60000, 6 * 3600000,
                                     24 * 3600000 };

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* A JSON string of a newly allocated text, which it frees. */
static json_t *string_take(char *s)
{
        json_t *j = json_string(s ? s : "");
        free(s);
        return j;
}

static bool streq(const char *a, const char *b)
{
        return a && b && strcmp(a, b) == 0;
}

/* A VM whose guest runs (so moving its GPU instance needs a live migration). */
static bool state_runs(const char *s)
{
        return streq(s, "running") || streq(s, "starting") || streq(s, "stopping");
}

static bool state_stopped(const char *s)
{
        return streq(s, "stopped") || streq(s, "crashed");
}

/* ---- the history ---- */

/* What a window of one VM's history says about some of its columns. */
struct stats {
        size_t samples;      /* timestamps with a value */
        double sum;          /* of every value (per-minute averages in 6h/24h) */
        size_t n_values;
        double peak;         /* the highest value (per-minute maxima in 6h/24h) */
        int64_t step_ms;
        int64_t last_ms;     /* the last timestamp with a value; -1: none */
        int64_t under_since; /* where the trailing run of points under the threshold began; -1 */
};

static bool column_is_gpu_util(const char *name)
{
        size_t n = name ? strlen(name) : 0, suffix = strlen("_util_pct");
        if (n <= 3 + suffix || strncmp(name, "gpu", 3) != 0 ||
            strcmp(name + n - suffix, "_util_pct") != 0)
                return false;
        for (size_t i = 3; i < n - suffix; i++)
                if (name[i] < '0' || name[i] > '9')
                        return false;
        return true;
}

/* gpu: the slices' utilization columns (gpuN_util_pct); else cpu_util_pct. */
static void stats_of(const json_t *hist, bool gpu, double threshold, struct stats *ret)
{
        const json_t *ts = json_object_get(hist, "timestamps_ms"), *col;
        struct stats s = { .last_ms = -1, .under_since = -1, .peak = -INFINITY };
        size_t n = json_array_size(ts), k;
        const json_t *cols[64];
        size_t n_cols = 0;

        s.step_ms = json_integer_value(json_object_get(hist, "step_ms"));
        json_array_foreach(json_object_get(hist, "columns"), k, col) {
                const char *name = jstr(col, "name");
                bool want = gpu ? column_is_gpu_util(name) : streq(name, "cpu_util_pct");
                if (want && n_cols < ELEMENTSOF(cols))
                        cols[n_cols++] = col;
        }
        for (size_t i = 0; i < n && n_cols; i++) {
                bool have = false;
                double point = -INFINITY;
                for (size_t c = 0; c < n_cols; c++) {
                        const json_t *v = json_array_get(json_object_get(cols[c], "values"), i);
                        const json_t *mx = json_array_get(json_object_get(cols[c], "max"), i);
                        if (!json_is_number(v))
                                continue;
                        have = true;
                        s.sum += json_number_value(v);
                        s.n_values++;
                        point = fmax(point, json_is_number(mx) ? json_number_value(mx)
                                                               : json_number_value(v));
                }
                if (!have)
                        continue; /* a gap: neither idle nor busy */
                s.samples++;
                s.last_ms = json_integer_value(json_array_get(ts, i));
                s.peak = fmax(s.peak, point);
                if (point < threshold) {
                        if (s.under_since < 0)
                                s.under_since = s.last_ms;
                } else {
                        s.under_since = -1;
                }
        }
        *ret = s;
}

static double stats_mean(const struct stats *s)
{
        return s->n_values ? s->sum / (double)s->n_values : NAN;
}

static double round2(double v)
{
        return round(v * 100) / 100;
}

/* The history of vm/NAME over the window; NULL when nothing of it is collected. */
static json_t *vm_history(struct gv_controller *c, const char *vm, const char *window)
{
        _cleanup_free_ char *series = xasprintf("vm/%s", vm);
        json_t *h = NULL;
        if (gv_controller_metrics_history(c, series, window, &h, NULL) < 0)
                return NULL;
        return h;
}

static json_t *ms_or_null(int64_t ms)
{
        return ms >= 0 ? json_integer(ms) : json_null();
}

/* The evidence members of an entry: "evidence", "proxy", "value", "peak", "samples",
 * "since". value and peak in %, rounded to 0.01. */
static void set_measured(json_t *o, const char *evidence, bool proxy, const struct stats *s,
                         int64_t since)
{
        json_object_set_new(o, "evidence", json_string(evidence));
        json_object_set_new(o, "proxy", json_boolean(proxy));
        json_object_set_new(o, "value", s && s->n_values ? json_real(round2(stats_mean(s)))
                                                         : json_null());
        json_object_set_new(o, "peak", s && s->samples ? json_real(round2(s->peak))
                                                       : json_null());
        json_object_set_new(o, "samples", json_integer(s ? (json_int_t)s->samples : 0));
        json_object_set_new(o, "since", ms_or_null(since));
}

/* ---- what a conversion would cost ---- */

/* The licence pools that count a placement kind ("passthrough", "mig") of an edition. */
static const json_t *pool_counting(const json_t *licenses, const char *what)
{
        const json_t *p;
        size_t i;
        json_array_foreach(json_object_get(licenses, "pools"), i, p)
                if (json_is_true(json_object_get(p, what)))
                        return p;
        return NULL;
}

/* Seats and yearly cost of `instances` VMs of an edition's licence, from the pools as they are
 * (gv_ctl_license_quotes); into o. A price is never invented: without a priced pool the cost
 * is null and cost_reason says why. */
static void set_cost(const struct gv_ctl_license_quote *quotes, json_t *o,
                     const enum gv_license_edition *eds, size_t n_eds, uint32_t instances)
{
        enum gv_license_edition e = eds[0];
        for (size_t i = 0; i < n_eds; i++)
                if (quotes[eds[i]].pooled) {
                        e = eds[i];
                        break;
                }
        const struct gv_ctl_license_quote q = quotes[e];
        int64_t seats = q.counting == GV_LICENSE_COUNT_GPU ? 1 : (int64_t)instances;
        _cleanup_strv_free_ char **alts = NULL;
        for (size_t i = 0; i < n_eds; i++)
                if (eds[i] != e)
                        strv_extend(&alts, gv_license_edition_to_string(eds[i]));
        _cleanup_free_ char *alt = alts ? strv_join(alts, ", ") : NULL;

        json_object_set_new(o, "edition", json_string(gv_license_edition_to_string(e)));
        json_object_set_new(o, "edition_title", json_string(gv_license_edition_title(e)));
        json_object_set_new(o, "counting",
                            json_string(gv_license_counting_to_string(q.counting)));
        json_object_set_new(o, "seats", json_integer(seats));
        json_object_set_new(o, "seats_free", q.pooled ? json_integer(q.seats_free) : json_null());
        if (q.pooled && q.price_per_seat_year >= 0) {
                json_object_set_new(o, "cost_per_year",
                                    json_real(round2((double)seats * q.price_per_seat_year)));
                json_object_set_new(o, "currency", json_string(q.currency));
                json_object_set_new(o, "cost_reason", json_null());
        } else {
                json_object_set_new(o, "cost_per_year", json_null());
                json_object_set_new(o, "currency", json_null());
                json_object_set_new(
                        o, "cost_reason",
                        q.pooled ? json_sprintf("no licence pool of edition '%s' has a price "
                                                    "per seat (set price_per_seat_year)",
                                                    gv_license_edition_to_string(e))
                                 : json_sprintf("no licence pool of edition '%s'%s%s%s is "
                                                    "configured (PUT /api/v1/licenses/{pool})",
                                                    gv_license_edition_to_string(e),
                                                    alt ? " (or " : "", alt ? alt : "",
                                                    alt ? ")" : ""));
        }
}

/* MIG: the smallest profile without media extensions, as many instances as the GPU takes, laid
 * out by the planner of `gpuvirt mig apply` (mig-layout.h). */
static json_t *mig_option(const struct gv_gpu_model *m, const json_t *licenses,
                          const struct gv_ctl_license_quote *quotes)
{
        const struct gv_mig_gi_profile *p = NULL;
        struct gv_mig_geometry g;

        if (m->n_gi_profiles == 0)
                return NULL;
        for (size_t i = 0; i < m->n_gi_profiles; i++) {
                const struct gv_mig_gi_profile *q = &m->gi_profiles[i];
                if (q->media_extensions || q->slices == 0)
                        continue;
                if (!p || q->memory_slices < p->memory_slices ||
                    (q->memory_slices == p->memory_slices && q->slices < p->slices))
                        p = q;
        }
        if (!p)
                return NULL;
        gv_mig_geometry_from_model(m, &g);
        uint32_t count = MIN(MIN(p->instances, m->mig_max_instances), m->mig_compute_slices /
                                                                          p->slices);
        const struct gv_mig_gi_profile *wanted[GV_RELAYOUT_MAX_INSTANCES];
        struct gv_mig_placement pl[GV_RELAYOUT_MAX_INSTANCES];
        count = MIN(count, GV_RELAYOUT_MAX_INSTANCES);
        for (; count > 0; count--) {
                for (uint32_t i = 0; i < count; i++)
                        wanted[i] = p;
                if (gv_mig_plan(&g, NULL, 0, wanted, count, pl, NULL) >= 0)
                        break;
        }
        if (count == 0)
                return NULL;
        struct gv_mig_instance inst[GV_RELAYOUT_MAX_INSTANCES];
        for (uint32_t i = 0; i < count; i++)
                inst[i] = (struct gv_mig_instance){ .profile = p, .placement = pl[i] };
        _cleanup_free_ char *layout = gv_mig_layout_format(&g, inst, count);
        json_t *o = json_pack("{s:s, s:s, s:I, s:i, s:s}", "mode", "mig", "profile", p->name,
                              "memory_mib", (json_int_t)p->memory_mib, "instances", (int)count,
                              "layout", layout);
        /* Bare MIG instances hold a seat only where a pool says so (docs/licensing.md). */
        const json_t *pool = pool_counting(licenses, "mig");
        enum gv_license_edition e = pool ? gv_license_edition_from_string(jstr(pool, "edition"))
                                         : _GV_LICENSE_EDITION_INVALID;
        if ((int)e < 0) {
                json_object_set_new(o, "licence", json_string("none"));
                json_object_set_new(o, "cost_per_year", json_integer(0));
                json_object_set_new(o, "cost_reason",
                                    json_string("bare MIG instances need no vGPU licence unless "
                                                "a pool is marked \"mig\""));
        } else {
                json_object_set_new(o, "licence", json_string("pool"));
                set_cost(quotes, o, &e, 1, count);
        }
        return o;
}

/* vGPU: the time-sliced type of the compute series (else Q, B, A) with the smallest framebuffer
 * of at least an eighth of the GPU's memory (a split comparable to MIG's smallest instance). */
static json_t *vgpu_option(const struct gv_gpu_model *m,
                           const struct gv_ctl_license_quote *quotes)
{
        static const enum gv_vgpu_series order[] = { GV_VGPU_SERIES_C, GV_VGPU_SERIES_Q,
                                                     GV_VGPU_SERIES_B, GV_VGPU_SERIES_A };
        const struct gv_vgpu_type *t = NULL;

        for (size_t k = 0; k < ELEMENTSOF(order) && !t; k++) {
                const struct gv_vgpu_type *smallest = NULL;
                for (size_t i = 0; i < m->n_vgpu_types; i++) {
                        const struct gv_vgpu_type *q = &m->vgpu_types[i];
                        if (q->gi_profile || q->series != order[k] || q->max_instances == 0)
                                continue;
                        if (!smallest || q->framebuffer_mib < smallest->framebuffer_mib)
                                smallest = q;
                        if (q->framebuffer_mib * 8 >= m->memory_mib &&
                            (!t || q->framebuffer_mib < t->framebuffer_mib))
                                t = q;
                }
                if (!t)
                        t = smallest;
        }
        if (!t)
                return NULL;
        enum gv_license_edition eds[_GV_LICENSE_EDITION_MAX];
        size_t n_eds = gv_license_editions_for_series(t->series, eds);
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i}", "mode", "vgpu", "type", t->name,
                              "series", gv_vgpu_series_to_string(t->series), "framebuffer_mib",
                              (json_int_t)t->framebuffer_mib, "instances",
                              (int)t->max_instances);
        if (n_eds)
                set_cost(quotes, o, eds, n_eds, t->max_instances);
        return o;
}

/* ---- the three lists ---- */

static const json_t *vm_by_name(const json_t *vms, const char *name)
{
        const json_t *v;
        size_t i;
        json_array_foreach(vms, i, v)
                if (streq(jstr(v, "name"), name))
                        return v;
        return NULL;
}

static json_t *idle_passthrough(struct gv_controller *c, const json_t *gpus, const json_t *vms,
                                const json_t *licenses, const char *window, double threshold)
{
        json_t *out = json_array(), *g;
        size_t i;
        /* one count of the seats for every conversion costed below */
        struct gv_ctl_license_quote quotes[_GV_LICENSE_EDITION_MAX];
        gv_ctl_license_quotes(c, quotes);

        json_array_foreach(gpus, i, g) {
                const json_t *u;
                size_t k;
                json_array_foreach(json_object_get(g, "use"), k, u) {
                        const char *name = jstr(u, "vm");
                        const json_t *vm = vm_by_name(vms, name);
                        const char *state = jstr(vm, "state");
                        _cleanup_json_ json_t *hist = NULL;
                        struct stats s;
                        json_t *e;

                        if (!streq(jstr(u, "alloc"), "whole") || !vm)
                                continue;
                        hist = vm_history(c, name, window);
                        if (hist)
                                stats_of(hist, false, threshold, &s);
                        e = json_pack("{s:O, s:O, s:O, s:O, s:s, s:s?}", "host",
                                      json_object_get(g, "host"), "gpu", json_object_get(g, "pci"),
                                      "name", json_object_get(g, "name"), "model",
                                      json_object_get(g, "model"), "vm", name, "state", state);
                        if (state_stopped(state)) {
                                /* Certain: the GPU is reserved and nothing runs on it. Since the
                                 * VM's last sample with a CPU figure, if the window holds one. */
                                set_measured(e, "vm-stopped", false, NULL,
                                             hist && s.last_ms >= 0 ? s.last_ms + s.step_ms : -1);
                        } else if (streq(state, "running") && hist && s.samples > 0 &&
                                   stats_mean(&s) < threshold) {
                                set_measured(e, "vm-cpu", true, &s, s.under_since);
                        } else {
                                json_decref(e);
                                continue;
                        }
                        json_object_set_new(e, "gpu_util",
                                            json_string("not visible: a pass-through GPU is "
                                                        "bound to vfio-pci and the host driver "
                                                        "cannot read it"));
                        json_object_set_new(e, "frees",
                                            json_pack("{s:i, s:O}", "gpus", 1, "memory_mib",
                                                      json_object_get(g, "memory_mib")
                                                              ?: json_null()));
                        json_t *conv = json_array();
                        const struct gv_gpu_model *m =
                                jstr(g, "model") ? gv_catalog_find(c->catalog, jstr(g, "model"))
                                                 : NULL;
                        if (m) {
                                json_t *o = mig_option(m, licenses, quotes);
                                if (o)
                                        json_array_append_new(conv, o);
                                o = vgpu_option(m, quotes);
                                if (o)
                                        json_array_append_new(conv, o);
                        }
                        json_object_set_new(e, "convert", conv);
                        json_array_append_new(out, e);
                }
        }
        return out;
}

/* The GI profile a placement slot holds: "mig" names it, "mig-vgpu" names the vGPU type. */
static const struct gv_mig_gi_profile *slot_profile(const struct gv_gpu_model *m, const json_t *u)
{
        const char *alloc = jstr(u, "alloc"), *name = jstr(u, "name");
        if (!name)
                return NULL;
        if (streq(alloc, "mig"))
                return gv_gpu_model_find_gi_profile(m, name);
        if (streq(alloc, "mig-vgpu")) {
                const struct gv_vgpu_type *t = gv_gpu_model_find_vgpu_type(m, name);
                return t ? t->gi : NULL;
        }
        return NULL;
}

/* FGD's popularity: how many instances of each profile the cluster's GPUs of this model hold. */
static void profile_weights(const json_t *gpus, const struct gv_gpu_model *m, double *w)
{
        const json_t *g, *u;
        size_t i, k;
        for (size_t p = 0; p < m->n_gi_profiles; p++)
                w[p] = 0;
        json_array_foreach(gpus, i, g) {
                if (!streq(jstr(g, "model"), m->name))
                        continue;
                json_array_foreach(json_object_get(g, "use"), k, u) {
                        const struct gv_mig_gi_profile *p = slot_profile(m, u);
                        if (p)
                                w[p - m->gi_profiles] += 1;
                }
        }
}

static json_t *fragmentation(struct gv_controller *c, const json_t *gpus, const json_t *vms,
                             struct gv_error **err)
{
        json_t *out = json_array(), *g;
        size_t i;

        json_array_foreach(gpus, i, g) {
                const struct gv_gpu_model *m =
                        jstr(g, "model") ? gv_catalog_find(c->catalog, jstr(g, "model")) : NULL;
                struct gv_relayout_instance inst[GV_RELAYOUT_MAX_INSTANCES];
                const char *kind[GV_RELAYOUT_MAX_INSTANCES];
                struct gv_mig_geometry geo;
                struct gv_relayout_plan plan;
                double w[GV_RELAYOUT_MAX_PROFILES];
                uint32_t occupied = 0;
                size_t n = 0, k;
                const json_t *u;
                int r;

                if (!m || m->n_gi_profiles == 0 || m->n_gi_profiles > GV_RELAYOUT_MAX_PROFILES)
                        continue;
                gv_mig_geometry_from_model(m, &geo);
                /* What the controller placed on the GPU ... */
                json_array_foreach(json_object_get(g, "use"), k, u) {
                        const struct gv_mig_gi_profile *p = slot_profile(m, u);
                        const json_t *vm = vm_by_name(vms, jstr(u, "vm"));
                        json_int_t start = json_integer_value(json_object_get(u, "start"));
                        if (!p || n == GV_RELAYOUT_MAX_INSTANCES || start < 0 || start >= 32)
                                continue;
                        inst[n] = (struct gv_relayout_instance){
                                .profile = p, .start = (uint32_t)start, .owner = jstr(u, "vm"),
                                .live = state_runs(jstr(vm, "state")),
                        };
                        kind[n++] = "vm";
                        occupied |= gv_mig_placement_mask(
                                &(struct gv_mig_placement){ (uint32_t)start, p->memory_slices });
                }
                /* ... and GPU instances the agent reports that no placement holds (made by
                 * `gpuvirt gpu mig` or by hand): they take slices too, and move with no VM. */
                json_array_foreach(json_object_get(json_object_get(g, "mig"), "gpu_instances"), k,
                                   u) {
                        const char *pn = jstr(u, "profile");
                        const struct gv_mig_gi_profile *p =
                                pn ? gv_gpu_model_find_gi_profile(m, pn) : NULL;
                        json_int_t start = json_integer_value(json_object_get(u, "start"));
                        if (!p || n == GV_RELAYOUT_MAX_INSTANCES || start < 0 || start >= 32)
                                continue;
                        uint32_t mask = gv_mig_placement_mask(
                                &(struct gv_mig_placement){ (uint32_t)start, p->memory_slices });
                        if (!mask || (mask & occupied))
                                continue; /* a placement's own instance, or a conflict */
                        inst[n] = (struct gv_relayout_instance){ .profile = p,
                                                                 .start = (uint32_t)start };
                        kind[n++] = "unowned";
                        occupied |= mask;
                }
                if (n == 0)
                        continue; /* an empty GPU: nothing fragmented, nothing to move */

                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_relayout_plan(&geo, inst, n, &plan, &e);
                json_t *entry = json_pack("{s:O, s:O, s:O, s:O}", "host",
                                          json_object_get(g, "host"), "gpu",
                                          json_object_get(g, "pci"), "name",
                                          json_object_get(g, "name"), "model",
                                          json_object_get(g, "model"));
                json_t *list = json_array();
                for (size_t j = 0; j < n; j++)
                        json_array_append_new(list, json_pack("{s:s?, s:s, s:i, s:s}", "vm",
                                                              inst[j].owner, "profile",
                                                              inst[j].profile->name, "start",
                                                              (int)inst[j].start, "held_by",
                                                              kind[j]));
                json_object_set_new(entry, "instances", list);
                struct gv_mig_instance cur[GV_RELAYOUT_MAX_INSTANCES];
                for (size_t j = 0; j < n; j++)
                        cur[j] = (struct gv_mig_instance){
                                .profile = inst[j].profile,
                                .placement = { inst[j].start, inst[j].profile->memory_slices },
                        };
                json_object_set_new(entry, "layout",
                                    string_take(gv_mig_layout_format(&geo, cur, n)));
                if (r < 0) {
                        /* The placements disagree with the geometry: say so, plan nothing. */
                        json_object_set_new(entry, "measure", json_null());
                        json_object_set_new(entry, "measure_demand", json_null());
                        json_object_set_new(entry, "verdict", json_string("invalid"));
                        json_object_set_new(entry, "why", json_string(gv_error_msg(e, r)));
                        json_object_set_new(entry, "plan", json_null());
                        json_array_append_new(out, entry);
                        continue;
                }
                profile_weights(gpus, m, w);
                _cleanup_free_ char *why = gv_relayout_explain(&geo, &plan);
                /* Equal weights over the profiles (any shape may come), and FGD's own
                 * popularity weights (the shapes the cluster's VMs use). */
                json_object_set_new(entry, "measure",
                                    json_real(round(gv_relayout_frag(&geo, inst, n, NULL) * 1000) /
                                              1000));
                json_object_set_new(entry, "measure_demand",
                                    json_real(round(gv_relayout_frag(&geo, inst, n, w) * 1000) /
                                              1000));
                json_object_set_new(entry, "free_slices", json_integer(plan.before.free_slices));
                json_object_set_new(entry, "largest_free_run",
                                    json_integer(plan.before.largest_run));
                json_object_set_new(entry, "largest_free_profile",
                                    plan.before.largest ? json_string(plan.before.largest->name)
                                                        : json_null());
                json_object_set_new(entry, "verdict",
                                    json_string(gv_relayout_verdict_to_string(plan.verdict)));
                json_object_set_new(entry, "why", json_string(why));
                if (plan.verdict != GV_RELAYOUT_PLAN) {
                        json_object_set_new(entry, "plan", json_null());
                        json_array_append_new(out, entry);
                        continue;
                }
                json_t *moves = json_array();
                for (uint32_t j = 0; j < plan.n_moves; j++) {
                        const struct gv_relayout_move *mv = &plan.moves[j];
                        const struct gv_relayout_instance *in = &inst[mv->index];
                        char from[24], to[24];
                        struct gv_mig_placement pf = { mv->from, in->profile->memory_slices };
                        struct gv_mig_placement pt = { mv->to, in->profile->memory_slices };
                        json_array_append_new(
                                moves,
                                json_pack("{s:s?, s:s, s:i, s:i, s:s, s:s, s:i, s:b, s:o, s:b}",
                                          "vm", in->owner, "profile", in->profile->name, "from",
                                          (int)mv->from, "to", (int)mv->to, "from_slices",
                                          gv_mig_placement_format(&pf, from, sizeof from),
                                          "to_slices",
                                          gv_mig_placement_format(&pt, to, sizeof to), "step",
                                          (int)mv->step, "direct", mv->direct, "park_before",
                                          mv->park_before ? json_integer(mv->park_before)
                                                          : json_null(),
                                          "needs_live_migration", in->live));
                        cur[mv->index].placement.start = mv->to;
                }
                for (size_t j = 0; j < n; j++)
                        cur[j].placement.start = plan.to[j];
                json_object_set_new(
                        entry, "plan",
                        json_pack("{s:o, s:s, s:i, s:i, s:o}", "moves", moves, "frees_profile",
                                  plan.after.largest->name, "largest_free_run",
                                  (int)plan.after.largest_run, "live_migrations",
                                  (int)plan.n_live, "layout",
                                  string_take(gv_mig_layout_format(&geo, cur, n))));
                json_array_append_new(out, entry);
        }
        (void)err;
        return out;
}

static json_t *idle_seats(struct gv_controller *c, const json_t *licenses, const char *window,
                          double threshold)
{
        json_t *out = json_array();
        const json_t *p, *h;
        size_t i, k;

        json_array_foreach(json_object_get(licenses, "pools"), i, p) {
                json_array_foreach(json_object_get(p, "holders"), k, h) {
                        const char *vm = jstr(h, "vm"), *state = jstr(h, "state");
                        _cleanup_json_ json_t *hist = NULL;
                        struct stats gs, cs;
                        json_t *e = json_pack("{s:O, s:O, s:s?, s:O, s:s?, s:O, s:O}", "pool",
                                              json_object_get(p, "name") ?: json_null(),
                                              "edition",
                                              json_object_get(p, "edition") ?: json_null(), "vm",
                                              vm, "host",
                                              json_object_get(h, "host") ?: json_null(), "state",
                                              state, "seats",
                                              json_object_get(h, "seats") ?: json_null(),
                                              "cost_per_month",
                                              json_object_get(h, "cost_per_month")
                                                      ?: json_null());
                        if (!vm) {
                                json_decref(e);
                                continue;
                        }
                        if (state_stopped(state)) {
                                set_measured(e, "vm-stopped", false, NULL, -1);
                        } else if (streq(state, "unknown")) {
                                /* Its host is down or a move is unresolved: the seat is held
                                 * while nobody can tell whether the guest runs. */
                                set_measured(e, "vm-unknown", false, NULL, -1);
                        } else if (streq(state, "running") &&
                                   (hist = vm_history(c, vm, window)) != NULL) {
                                stats_of(hist, true, threshold, &gs);
                                stats_of(hist, false, threshold, &cs);
                                if (gs.samples > 0 && stats_mean(&gs) < threshold) {
                                        set_measured(e, "gpu-util", false, &gs, gs.under_since);
                                } else if (gs.samples == 0 && cs.samples > 0 &&
                                           stats_mean(&cs) < threshold) {
                                        /* MIG slices (and pass-through) report no utilization:
                                         * the VM's own CPU stands in for it. */
                                        set_measured(e, "vm-cpu", true, &cs, cs.under_since);
                                } else {
                                        json_decref(e);
                                        continue;
                                }
                        } else {
                                json_decref(e);
                                continue;
                        }
                        json_array_append_new(out, e);
                }
        }
        return out;
}

/* ---- the call ---- */

int gv_controller_insights(struct gv_controller *c, const char *window, double threshold_pct,
                           json_t **ret, struct gv_error **err)
{
        size_t w;

        if (!window)
                window = "1h";
        for (w = 0; w < ELEMENTSOF(windows); w++)
                if (strcmp(windows[w], window) == 0)
                        break;
        if (w == ELEMENTSOF(windows))
                return gv_error_set(err, EINVAL,
                                    "window: '%s' is not one of 5m, 15m, 1h, 6h, 24h (the spans "
                                    "of the metrics history).",
                                    window);
        if (!(threshold_pct >= 0 && threshold_pct <= 100))
                return gv_error_set(err, EINVAL,
                                    "threshold: %g is not a percentage from 0 to 100.",
                                    threshold_pct);

        _cleanup_json_ json_t *vms = gv_controller_vms(c);
        _cleanup_json_ json_t *gpus = gv_controller_gpus(c);
        _cleanup_json_ json_t *licenses = gv_controller_licenses(c);
        json_t *frag = fragmentation(c, gpus, vms, err);

        *ret = json_pack(
                "{s:s, s:I, s:f, s:I, s:o, s:o, s:o, s:{s:s, s:s, s:s, s:s, s:s}}", "window",
                window, "window_ms", (json_int_t)window_ms[w], "threshold", threshold_pct,
                "generated_ms", (json_int_t)gv_ctl_now_ms(), "idle_passthrough",
                idle_passthrough(c, gpus, vms, licenses, window, threshold_pct),
                "fragmentation", frag, "idle_seats",
                idle_seats(c, licenses, window, threshold_pct), "evidence", "vm-stopped",
                "the VM is stopped or crashed while its placement keeps the GPU (or seat): "
                "certain",
                "vm-cpu",
                "the VM's QEMU used less CPU (% of one core) than the threshold on average over "
                "the window: a proxy, the GPU's own utilization is not visible",
                "gpu-util",
                "the VM's GPU slices (time-sliced vGPU) were used less than the threshold on "
                "average over the window",
                "vm-unknown",
                "the VM's host is down or its move unresolved: its seat is held while nobody can "
                "tell whether it runs",
                "passthrough",
                "a pass-through GPU is bound to vfio-pci: the host driver cannot read its "
                "utilization, so none is shown or invented");
        return 0;
}
