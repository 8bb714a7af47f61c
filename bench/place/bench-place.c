/* SPDX-License-Identifier: MIT */
/*
 * bench-place — the openb placement benchmark (issue 3; protocol and metrics:
 * ../shared/reference/scheduling.md §2–4 and §7 M1–M4).
 *
 *   bench-place [--trace default|NAME|PATH] [--nodes PATH] [--data DIR] [--seeds 42-51]
 *               [--policies first-fit,best-fit,fgd,gpuvirt] [--out DIR] [--tune 1.3]
 *               [--limit N] [--scale 5000,15000] [--prefill 0,50,90] [--latency-decisions N]
 *               [--ties run|decision|host-id] [--why N]   (explain the first N failures)
 *               [--mode share|mig|vgpu|vgpu-mixed-size|mixed] [--hosts N] [--host-shape G2|G3]
 *               [--ceiling[=96.5]]
 *
 * --ceiling runs the ceiling analysis instead of the policies: what the protocol leaves to any
 * policy on the trace, on a GPU pool without hosts (ceiling.h, docs/placement.md).
 *
 * --mode other than share (the default) runs the MIG/vGPU mode instead: the pods mapped to H100
 * MIG profiles and vGPU types on N x 8 H100 hosts (migmode.h, docs/placement-mig-mode.md).
 *
 * Quality: for each policy and seed, the workload is built as the FGD artefact does (openb.h),
 * every arrival is placed once with the engine (src/sched) and kept (no departures, no retries),
 * and after each arrival the harness samples (arrived GPU milli — counted before the attempt —,
 * used GPU milli, fragmentation amount, idle GPU milli). The samples are resampled onto the
 * arrival axis 0..130 % the way the artefact's merge scripts do (merge_alloc_discrete.py:
 * arrival rounded to an integer percent, mean of the samples at that percent, else of those
 * within ±1).
 * Speed: per-decision latency of gv_sched_place() (decision) and of place+reserve, p50/p99/p99.9
 * and decisions/s, on the openb cluster during the quality run, and on synthetic clusters of
 * --scale hosts (openb nodes repeated) pre-filled to --prefill % of GPU capacity, every policy
 * on the same pre-filled state.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "ceiling.h"
#include "migmode.h"
#include "openb.h"
#include "png.h"
#include "sched/frag.h"
#include "sched/sched.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/parse.h"

#define AXIS 131 /* arrival 0..130 % */
#define MAX_POLICIES 8
#define MAX_SEEDS 64
#define MAX_LIST 16

struct options {
        const char *trace;
        const char *nodes;
        const char *data;
        const char *out;
        const char *policies[MAX_POLICIES];
        size_t n_policies;
        uint64_t seeds[MAX_SEEDS];
        size_t n_seeds;
        double tune;
        size_t limit;
        uint32_t scales[MAX_LIST];
        size_t n_scales;
        uint32_t prefill[MAX_LIST];
        size_t n_prefill;
        size_t latency_decisions;
        unsigned threshold;
        int ties; /* enum tie_mode */
        size_t why; /* explain the first N failures of each run */
        int mode;   /* enum migmode_mode; -1: the openb share benchmark */
        uint32_t hosts; /* --mode: 8 x H100 hosts; 0 = MIGMODE_DEFAULT_HOSTS */
        const char *host_shape; /* --mode: CPU and memory per host (migmode_host_shape) */
        bool policies_given;
        double ceiling; /* --ceiling: target percent; 0 = not asked */
};

/* 777 x 8 = 6216 H100s: the openb cluster's 6212 GPUs, rounded up to whole 8-GPU hosts. */
#define MIGMODE_DEFAULT_HOSTS 777u

struct latency {
        double p50, p99, p999, per_s; /* µs, µs, µs, decisions per second */
        size_t n;
};

struct run_result {
        double alloc[AXIS];  /* NAN where no sample */
        double frag[AXIS];   /* fragmentation ratio % of idle */
        double first_fail;   /* arrival % of the first failed placement; NAN if none */
        double sustained;    /* arrival % where allocation first falls >= 1 point below arrival */
        size_t placed, failed;
        struct latency decide, decide_reserve;
};

static double now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
        double a = *(const double *)x, b = *(const double *)y;
        return a < b ? -1 : a > b;
}

static struct latency latency_of(double *ns, size_t n)
{
        struct latency l = { .n = n };
        double sum = 0;

        if (n == 0)
                return l;
        for (size_t i = 0; i < n; i++)
                sum += ns[i];
        qsort(ns, n, sizeof(*ns), cmp_double);
        l.p50 = ns[(size_t)((n - 1) * 0.50)] / 1e3;
        l.p99 = ns[(size_t)((n - 1) * 0.99)] / 1e3;
        l.p999 = ns[(size_t)((n - 1) * 0.999)] / 1e3;
        l.per_s = sum > 0 ? (double)n / (sum / 1e9) : 0;
        return l;
}

/* ---- the engine's view of an openb cluster ---- */

/* GPU memory per openb model as the artefact lists it (open-gpu-share/utils/const.go
 * MapGpuTypeMemoryMiB); G1/G2/G3 are undisclosed: 16384 is a placeholder share requests
 * never read. */
static uint64_t model_memory(const char *name)
{
        static const struct {
                const char *name;
                uint64_t mib;
        } known[] = { { "T4", 15109 },      { "V100M16", 16160 }, { "P100", 16280 },
                      { "A10", 22731 },     { "V100M32", 32510 }, { "A100", 81251 } };

        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (strcmp(known[i].name, name) == 0)
                        return known[i].mib;
        return 16384;
}

/* Hosts: the openb nodes, repeated until n_hosts (0 = once). */
static int cluster_build(const struct openb_cluster *oc, size_t n_hosts,
                         struct gv_sched_cluster **ret, struct gv_error **err)
{
        _cleanup_(gv_sched_cluster_freep) struct gv_sched_cluster *c = gv_sched_cluster_new();
        size_t total = n_hosts ? n_hosts : oc->n_nodes;
        int r;

        for (size_t m = 0; m < oc->n_models; m++) {
                r = gv_sched_cluster_add_share_model(c, oc->models[m],
                                                     model_memory(oc->models[m]), err);
                if (r < 0)
                        return r;
                if ((size_t)r != m)
                        return gv_error_set(err, EINVAL, "Model '%s' got id %d, expected %zu.",
                                            oc->models[m], r, m);
        }
        for (size_t i = 0; i < total; i++) {
                const struct openb_node *n = &oc->nodes[i % oc->n_nodes];
                struct gv_sched_gpu_spec gpus[OPENB_MAX_GPUS_PER_NODE];
                char name[64];
                struct gv_sched_host_spec spec = {
                        .name = name,
                        .cpu_milli = n->cpu_milli,
                        .memory_mib = n->memory_mib,
                        .state = GV_SCHED_HOST_UP,
                        .gpus = gpus,
                        .n_gpus = n->gpus,
                };

                for (uint32_t g = 0; g < n->gpus; g++)
                        gpus[g] = (struct gv_sched_gpu_spec){ .model = n->model,
                                                              .mode = GV_SCHED_MODE_SHARE };
                if (n_hosts)
                        snprintf(name, sizeof(name), "%s-%zu", n->name, i / oc->n_nodes);
                else
                        snprintf(name, sizeof(name), "%s", n->name);
                r = gv_sched_cluster_add_host(c, &spec, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static void request_of(const struct openb_pod *p, uint64_t tie_seed, struct gv_sched_request *r)
{
        *r = (struct gv_sched_request){
                .cpu_milli = p->cpu_milli,
                .memory_mib = p->memory_mib,
                .kind = p->num_gpu ? GV_SCHED_KIND_SHARE : GV_SCHED_KIND_NONE,
                .num_gpu = p->num_gpu,
                .gpu_milli = p->gpu_milli,
                .model_mask = p->model_mask,
                .tie_seed = tie_seed,
        };
}

static uint64_t mix(uint64_t a, uint64_t b)
{
        uint64_t z = a * UINT64_C(0x9e3779b97f4a7c15) + b;
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return (z ^ (z >> 31)) | 1; /* never 0: 0 means "lowest host id" */
}

/* Ties between hosts with the best score. The artefact gives every node a name prefix from
 * rand.Perm once per run (simulator.go, syncClusterResourceList) and, measured here, only a
 * fixed host order reproduces its FGD figures: a fresh uniform choice at every decision (the
 * kube-scheduler's reservoir sampling taken literally) scatters FGD's many equal-score choices
 * and costs it 5 points (BENCHMARKS.md). So by default one random host order per run ("run");
 * "decision" draws per decision, "host-id" takes the lowest host id. */
enum tie_mode { TIE_RUN, TIE_DECISION, TIE_HOST_ID };

static uint64_t mix(uint64_t a, uint64_t b);

static uint64_t tie_seed_of(const struct options *o, uint64_t seed, size_t i)
{
        switch (o->ties) {
        case TIE_DECISION:
                return mix(seed, i);
        case TIE_HOST_ID:
                return 0;
        default:
                return mix(seed, 0);
        }
}

/* Typical shapes of the trace (GetTypicalPods over the original pods, CPU-only included). */
static int typical_shapes(const struct openb_pods *trace, unsigned threshold,
                          struct gv_frag_shape **ret, size_t *ret_n, struct gv_error **err)
{
        _cleanup_free_ struct gv_frag_shape *all = xnew0(struct gv_frag_shape, trace->n_pods);

        for (size_t i = 0; i < trace->n_pods; i++) {
                const struct openb_pod *p = &trace->pods[i];
                all[i] = (struct gv_frag_shape){ .cpu_milli = p->cpu_milli,
                                                 .num_gpu = p->num_gpu,
                                                 .gpu_milli = p->gpu_milli,
                                                 .model_mask = p->model_mask,
                                                 .weight = 1 };
        }
        return gv_frag_typical_shapes(all, trace->n_pods, threshold, ret, ret_n, err);
}

static void frag_refresh(const struct gv_sched_cluster *c, struct gv_frag_table *t, uint32_t id)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, id);
        const uint32_t *free_milli = gv_sched_cluster_free_milli(c);
        struct gv_frag_host v = {
                .cpu_free_milli = (uint32_t)MIN(h->cpu_free, (uint64_t)UINT32_MAX),
                .n_gpus = h->n_gpus,
                .model = h->n_gpus ? gv_sched_cluster_gpu(c, h->first_gpu)->model : 0,
                .gpu_free_milli = free_milli + h->first_gpu,
        };
        gv_frag_table_update(t, id, &v);
}

/* Resample (arrival %, value) samples like merge_*_discrete.py. */
static void resample(const double *arr, const double *val, size_t n, double *out)
{
        for (int k = 0; k < AXIS; k++) {
                double sum = 0, sum2 = 0;
                size_t cnt = 0, cnt2 = 0;

                for (size_t i = 0; i < n; i++) {
                        double a = nearbyint(arr[i]); /* round half to even, as Python */
                        if (a == k) {
                                sum += val[i];
                                cnt++;
                        } else if (a >= k - 1 && a <= k + 1) {
                                sum2 += val[i];
                                cnt2++;
                        }
                }
                if (cnt)
                        out[k] = sum / cnt;
                else if (cnt2)
                        out[k] = sum2 / cnt2;
                else
                        out[k] = NAN;
        }
}

static int run_one(const struct openb_cluster *oc, const struct openb_pods *trace,
                   const struct gv_frag_shape *shapes, size_t n_shapes,
                   const struct gv_sched_policy *pol, uint64_t seed, const struct options *o,
                   struct run_result *res, struct gv_error **err)
{
        _cleanup_(gv_sched_cluster_freep) struct gv_sched_cluster *c = NULL;
        _cleanup_(gv_frag_table_freep) struct gv_frag_table *ft = NULL;
        struct openb_workload w = {};
        _cleanup_free_ double *arr = NULL, *alloc = NULL, *fr = NULL, *t_dec = NULL,
                              *t_all = NULL;
        double cap = (double)oc->total_gpus * 1000.0;
        uint64_t arrived = 0;
        size_t n, ns = 0, nt = 0;
        int r;

        *res = (struct run_result){ .first_fail = NAN, .sustained = NAN };
        r = cluster_build(oc, 0, &c, err);
        if (r < 0)
                return r;
        r = gv_sched_policy_attach(c, pol, err);
        if (r < 0)
                return r;
        if (pol == &gv_sched_policy_fgd) {
                r = gv_sched_fgd_set_shapes(c, shapes, n_shapes, err);
                if (r < 0)
                        return r;
        }
        r = gv_frag_table_new(shapes, n_shapes, gv_sched_cluster_n_hosts(c), &ft, err);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < gv_sched_cluster_n_hosts(c); i++)
                frag_refresh(c, ft, i);

        r = openb_workload_build(trace, oc->total_gpus * 1000, o->tune, seed, &w, err);
        if (r < 0)
                return r;
        n = o->limit && o->limit < w.n ? o->limit : w.n;
        arr = xnew0(double, n + 1);
        alloc = xnew0(double, n + 1);
        fr = xnew0(double, n + 1);
        t_dec = xnew0(double, n);
        t_all = xnew0(double, n);
        /* The artefact reports once before the first pod. */
        arr[ns] = 0;
        alloc[ns] = 0;
        fr[ns++] = 0;

        for (size_t i = 0; i < n; i++) {
                const struct openb_pod *p = w.seq[i];
                struct gv_sched_request rq;
                struct gv_sched_placement pl;
                double t0, t1, t2, idle;

                arrived += openb_pod_total_milli(p); /* before the attempt */
                request_of(p, tie_seed_of(o, seed, i), &rq);
                r = gv_sched_request_resolve(c, &rq, err);
                if (r < 0)
                        goto out;
                t0 = now_ns();
                r = gv_sched_place(c, pol, &rq, &pl, NULL, NULL);
                t1 = now_ns();
                if (r == 0) {
                        r = gv_sched_reserve(c, &rq, &pl, err);
                        t2 = now_ns();
                        if (r < 0) {
                                gv_error_wrap(err, r, "Reserving the placement '%s' chose",
                                              pol->name);
                                goto out;
                        }
                        t_dec[nt] = t1 - t0;
                        t_all[nt++] = t2 - t0;
                        frag_refresh(c, ft, pl.host);
                        res->placed++;
                } else if (r == -ENOSPC) {
                        t_dec[nt] = t1 - t0;
                        t_all[nt++] = t1 - t0;
                        res->failed++;
                        if (res->failed <= o->why) {
                                struct gv_sched_explain why;
                                _cleanup_free_ char *m = NULL;
                                (void)gv_sched_place(c, pol, &rq, &pl, &why, NULL);
                                m = gv_sched_explain_format(&rq, &why);
                                printf("  failed at arrival %.2f%%: %s (cpu %u, memory %lu MiB, gpu %ux%u): %s\n",
                                        100.0 * (double)arrived / cap, p->name, p->cpu_milli,
                                        (unsigned long)p->memory_mib, p->num_gpu, p->gpu_milli, m);
                        }
                        if (isnan(res->first_fail) && p->num_gpu > 0)
                                res->first_fail = 100.0 * (double)arrived / cap;
                } else {
                        r = gv_error_set(err, -r, "Placing '%s' with '%s' failed: %s.", p->name,
                                         pol->name, strerror(-r));
                        goto out;
                }
                idle = cap - (double)gv_sched_cluster_used_milli(c);
                arr[ns] = 100.0 * (double)arrived / cap;
                alloc[ns] = 100.0 * (double)gv_sched_cluster_used_milli(c) / cap;
                fr[ns++] = idle > 0 ? 100.0 * gv_frag_table_total(ft) / idle : 0;
                if (isnan(res->sustained) && arr[ns - 1] - alloc[ns - 1] >= 1.0)
                        res->sustained = arr[ns - 1];
        }
        r = gv_sched_cluster_check(c, err);
        if (r < 0)
                goto out;
        resample(arr, alloc, ns, res->alloc);
        resample(arr, fr, ns, res->frag);
        res->decide = latency_of(t_dec, nt);
        res->decide_reserve = latency_of(t_all, nt);
        r = 0;
out:
        openb_workload_done(&w);
        return r;
}

/* ---- synthetic scale: latency on a pre-filled cluster ---- */

static int scale_run(const struct openb_cluster *oc, const struct openb_pods *trace,
                     const struct gv_frag_shape *shapes, size_t n_shapes, uint32_t hosts,
                     uint32_t prefill, const struct options *o, FILE *csv, struct gv_error **err)
{
        _cleanup_(gv_sched_cluster_freep) struct gv_sched_cluster *c = NULL;
        struct openb_workload w = {};
        _cleanup_free_ double *t_dec = NULL, *t_all = NULL;
        _cleanup_free_ struct gv_sched_placement *pls = NULL;
        _cleanup_free_ struct gv_sched_request *rqs = NULL;
        double cap;
        size_t i = 0, nt;
        int r;

        r = cluster_build(oc, hosts, &c, err);
        if (r < 0)
                return r;
        cap = (double)gv_sched_cluster_n_gpus(c) * 1000.0;
        r = gv_sched_policy_attach(c, &gv_sched_policy_first_fit, err);
        if (r < 0)
                return r;
        /* A workload long enough for the fill and the measured decisions. */
        r = openb_workload_build(trace, (uint64_t)cap, 1.3, 42, &w, err);
        if (r < 0)
                return r;
        /* Pre-fill with first-fit (the same state for every policy measured). */
        while (i < w.n && 100.0 * (double)gv_sched_cluster_used_milli(c) / cap < prefill) {
                struct gv_sched_request rq;
                struct gv_sched_placement pl;

                request_of(w.seq[i], 0, &rq);
                i++;
                if (gv_sched_request_resolve(c, &rq, NULL) < 0)
                        continue;
                if (gv_sched_place(c, &gv_sched_policy_first_fit, &rq, &pl, NULL, NULL) == 0)
                        (void)gv_sched_reserve(c, &rq, &pl, NULL);
        }
        nt = MIN(o->latency_decisions, w.n - i);
        t_dec = xnew0(double, nt ? nt : 1);
        t_all = xnew0(double, nt ? nt : 1);
        pls = xnew0(struct gv_sched_placement, nt ? nt : 1);
        rqs = xnew0(struct gv_sched_request, nt ? nt : 1);

        for (size_t k = 0; k < o->n_policies; k++) {
                const struct gv_sched_policy *pol;
                size_t placed = 0;

                r = gv_sched_policy_find(o->policies[k], &pol, err);
                if (r < 0)
                        goto out;
                r = gv_sched_policy_attach(c, pol, err);
                if (r < 0)
                        goto out;
                if (pol == &gv_sched_policy_fgd) {
                        r = gv_sched_fgd_set_shapes(c, shapes, n_shapes, err);
                        if (r < 0)
                                goto out;
                }
                /* Place nt requests (kept, so the state moves as in a real stream), then
                 * release them all: the next policy starts from the same pre-filled state. */
                for (size_t d = 0; d < nt; d++) {
                        double t0, t1, t2;

                        request_of(w.seq[i + d], mix(hosts, d), &rqs[d]);
                        r = gv_sched_request_resolve(c, &rqs[d], err);
                        if (r < 0)
                                goto out;
                        t0 = now_ns();
                        r = gv_sched_place(c, pol, &rqs[d], &pls[placed], NULL, NULL);
                        t1 = now_ns();
                        if (r == 0) {
                                r = gv_sched_reserve(c, &rqs[d], &pls[placed], err);
                                if (r < 0)
                                        goto out;
                                rqs[placed] = rqs[d];
                                placed++;
                        }
                        t2 = now_ns();
                        t_dec[d] = t1 - t0;
                        t_all[d] = t2 - t0;
                }
                for (size_t d = placed; d > 0; d--) {
                        r = gv_sched_release(c, &rqs[d - 1], &pls[d - 1], err);
                        if (r < 0)
                                goto out;
                }
                {
                        struct latency a = latency_of(t_dec, nt), b = latency_of(t_all, nt);
                        printf("  %6u hosts %3u%% %-10s decide p50 %7.2f p99 %7.2f p99.9 %7.2f "
                               "us %9.0f /s | +reserve p99 %7.2f us %9.0f /s\n",
                               hosts, prefill, pol->name, a.p50, a.p99, a.p999, a.per_s, b.p99,
                               b.per_s);
                        fprintf(csv, "%u,%u,%s,%zu,%.3f,%.3f,%.3f,%.0f,%.3f,%.3f,%.3f,%.0f\n",
                                hosts, prefill, pol->name, nt, a.p50, a.p99, a.p999, a.per_s,
                                b.p50, b.p99, b.p999, b.per_s);
                }
        }
        r = 0;
out:
        openb_workload_done(&w);
        return r;
}

/* ---- output ---- */

static const uint32_t palette[] = { 0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b,
                                    0xe377c2, 0x7f7f7f };

static int write_plot(const char *path, const char *title, const struct options *o,
                      double mean[MAX_POLICIES][AXIS], int x0, int y0, int step)
{
        struct canvas cv;
        const int W = 1200, H = 800, L = 110, R = 40, T = 90, B = 90;
        const int x1 = 130, y1 = 100;
        int r;

#define PX(x) (L + ((double)(x) - x0) / (double)(x1 - x0) * (W - L - R))
#define PY(y) (H - B - ((double)(y) - y0) / (double)(y1 - y0) * (H - T - B))
        canvas_init(&cv, W, H);
        for (int v = x0; v <= x1; v += step) {
                char lab[16];
                canvas_line(&cv, PX(v), PY(y0), PX(v), PY(y1), 1, 0xe0e0e0);
                snprintf(lab, sizeof(lab), "%d", v);
                canvas_text(&cv, (int)PX(v) - canvas_text_width(lab, 2) / 2, (int)PY(y0) + 10,
                            2, lab, 0x000000);
        }
        for (int v = y0; v <= y1; v += step / 2 ? step / 2 : 1) {
                char lab[16];
                canvas_line(&cv, PX(x0), PY(v), PX(x1), PY(v), 1, 0xe0e0e0);
                snprintf(lab, sizeof(lab), "%d", v);
                canvas_text(&cv, L - 12 - canvas_text_width(lab, 2), (int)PY(v) - 7, 2, lab,
                            0x000000);
        }
        canvas_line(&cv, PX(x0), PY(y0), PX(x1), PY(y0), 2, 0x000000);
        canvas_line(&cv, PX(x0), PY(y0), PX(x0), PY(y1), 2, 0x000000);
        /* the arrival line: everything that arrived is allocated */
        canvas_line(&cv, PX(MAX(x0, y0)), PY(MAX(x0, y0)), PX(100), PY(100), 1, 0x909090);
        canvas_line(&cv, PX(100), PY(100), PX(130), PY(100), 1, 0x909090);
        canvas_text(&cv, W / 2 - canvas_text_width("arrived GPU demand, % of capacity", 2) / 2,
                    H - 40, 2, "arrived GPU demand, % of capacity", 0x000000);
        canvas_text(&cv, 10, 60, 2, "GPU allocation %", 0x000000);
        canvas_text(&cv, W / 2 - canvas_text_width(title, 3) / 2, 15, 3, title, 0x000000);

        for (size_t k = 0; k < o->n_policies; k++) {
                uint32_t col = palette[k % ELEMENTSOF(palette)];
                double px = NAN, py = NAN;
                char lab[96];

                for (int a = x0; a < AXIS; a++) {
                        if (isnan(mean[k][a]) || mean[k][a] < y0)
                                continue;
                        if (!isnan(px))
                                canvas_line(&cv, px, py, PX(a), PY(mean[k][a]), 3, col);
                        px = PX(a);
                        py = PY(mean[k][a]);
                }
                snprintf(lab, sizeof(lab), "%s  %.2f%% AT 130", o->policies[k],
                         mean[k][130]);
                canvas_rect(&cv, L + 30, T + 20 + (int)k * 30, L + 60, T + 34 + (int)k * 30,
                            col);
                canvas_text(&cv, L + 72, T + 20 + (int)k * 30, 2, lab, 0x000000);
        }
#undef PX
#undef PY
        r = canvas_write_png(&cv, path);
        canvas_done(&cv);
        return r;
}

static double mean_of(const double *v, size_t n, double *sd)
{
        double s = 0, s2 = 0;
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (!isnan(v[i])) {
                        s += v[i];
                        k++;
                }
        if (!k) {
                *sd = NAN;
                return NAN;
        }
        s /= k;
        for (size_t i = 0; i < n; i++)
                if (!isnan(v[i]))
                        s2 += (v[i] - s) * (v[i] - s);
        *sd = sqrt(s2 / k);
        return s;
}

/* ---- options ---- */

static int parse_seeds(const char *s, struct options *o, struct gv_error **err)
{
        _cleanup_free_ char *dup = xstrdup(s);
        char *save = NULL;

        o->n_seeds = 0;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *dash = strchr(tok, '-');
                uint64_t a, b;

                if (dash)
                        *dash = 0;
                if (gv_parse_u64(tok, 10, &a) < 0 || (dash && gv_parse_u64(dash + 1, 10, &b) < 0))
                        return gv_error_set(err, EINVAL,
                                            "--seeds: '%s' is not a seed or a range; use e.g. "
                                            "'42-51' or '42,43'.",
                                            s);
                if (!dash)
                        b = a;
                if (b < a || b - a >= MAX_SEEDS || o->n_seeds + (b - a + 1) > MAX_SEEDS)
                        return gv_error_set(err, EINVAL, "--seeds: '%s' names more than %d seeds "
                                            "or an empty range.", s, MAX_SEEDS);
                for (uint64_t v = a; v <= b; v++)
                        o->seeds[o->n_seeds++] = v;
        }
        if (!o->n_seeds)
                return gv_error_set(err, EINVAL, "--seeds: no seed given.");
        return 0;
}

static int parse_u32_list(const char *opt, const char *s, uint32_t *out, size_t *n,
                          struct gv_error **err)
{
        _cleanup_free_ char *dup = xstrdup(s);
        char *save = NULL;

        *n = 0;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (*n >= MAX_LIST || gv_parse_u32(tok, 10, &out[*n]) < 0)
                        return gv_error_set(err, EINVAL,
                                            "%s: '%s' is not a list of at most %d numbers.", opt,
                                            s, MAX_LIST);
                (*n)++;
        }
        return 0;
}

static void usage(void)
{
        printf("bench-place [--trace default|NAME|PATH] [--nodes PATH] [--data DIR]\n"
               "            [--seeds 42-51] [--policies first-fit,best-fit,fgd,gpuvirt]\n"
               "            [--out DIR] [--tune 1.3] [--limit N] [--threshold 95]\n"
               "            [--scale 5000,15000] [--prefill 0,50,90] [--latency-decisions N]\n"
               "            [--ties run|decision|host-id] [--why N]\n"
               "            [--mode share|mig|vgpu|vgpu-mixed-size|mixed] [--hosts N]\n"
               "            [--host-shape G2|G3] [--ceiling[=96.5]]\n");
}

int main(int argc, char **argv)
{
        static char policy_buf[512];
        static const struct option longopts[] = {
                { "trace", required_argument, NULL, 't' },
                { "nodes", required_argument, NULL, 'n' },
                { "data", required_argument, NULL, 'd' },
                { "seeds", required_argument, NULL, 's' },
                { "policies", required_argument, NULL, 'p' },
                { "out", required_argument, NULL, 'o' },
                { "tune", required_argument, NULL, 'u' },
                { "limit", required_argument, NULL, 'l' },
                { "threshold", required_argument, NULL, 'h' },
                { "scale", required_argument, NULL, 'S' },
                { "prefill", required_argument, NULL, 'P' },
                { "latency-decisions", required_argument, NULL, 'L' },
                { "ties", required_argument, NULL, 'T' },
                { "why", required_argument, NULL, 'W' },
                { "mode", required_argument, NULL, 'M' },
                { "hosts", required_argument, NULL, 'H' },
                { "host-shape", required_argument, NULL, 'G' },
                { "ceiling", optional_argument, NULL, 'C' },
                { "help", no_argument, NULL, '?' },
                {},
        };
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        struct options o = { .trace = "default", .tune = 1.3, .threshold = 95,
                             .latency_decisions = 2000, .mode = -1 };
        struct openb_cluster oc = {};
        struct openb_pods trace = {};
        _cleanup_free_ struct gv_frag_shape *shapes = NULL;
        _cleanup_free_ char *nodes_path = NULL, *pods_path = NULL, *data_dir = NULL;
        _cleanup_free_ struct run_result *res = NULL;
        static double mean_alloc[MAX_POLICIES][AXIS], mean_frag[MAX_POLICIES][AXIS];
        size_t n_shapes = 0;
        FILE *runs = NULL, *curves = NULL, *summary = NULL, *scale = NULL;
        int c, r, rc = 1;

        snprintf(policy_buf, sizeof(policy_buf), "first-fit,best-fit,fgd,gpuvirt");
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case 't': o.trace = optarg; break;
                case 'n': o.nodes = optarg; break;
                case 'd': o.data = optarg; break;
                case 'o': o.out = optarg; break;
                case 'C': {
                        char *end = NULL;
                        o.ceiling = optarg ? strtod(optarg, &end) : 96.5;
                        if ((end && (end == optarg || *end)) ||
                            !(o.ceiling > 0 && o.ceiling <= 100)) {
                                gv_error_set(&err, EINVAL, "--ceiling: '%s' is not a percent "
                                             "in (0, 100].", optarg);
                                goto fail;
                        }
                        break;
                }
                case 's':
                        if (parse_seeds(optarg, &o, &err) < 0)
                                goto fail;
                        break;
                case 'p':
                        snprintf(policy_buf, sizeof(policy_buf), "%s", optarg);
                        o.policies_given = true;
                        break;
                case 'M':
                        if (strcmp(optarg, "share") == 0)
                                o.mode = -1;
                        else if ((o.mode = migmode_mode_from_string(optarg)) < 0) {
                                gv_error_set(&err, EINVAL, "--mode: unknown mode '%s'; use share, "
                                             "mig, vgpu, vgpu-mixed-size or mixed.", optarg);
                                goto fail;
                        }
                        break;
                case 'G': {
                        uint64_t cpu, mem;
                        if (migmode_host_shape(optarg, &cpu, &mem, &err) < 0) {
                                gv_error_wrap(&err, -EINVAL, "--host-shape");
                                goto fail;
                        }
                        o.host_shape = optarg;
                        break;
                }
                case 'H':
                        if (gv_parse_u32(optarg, 10, &o.hosts) < 0 || o.hosts == 0) {
                                gv_error_set(&err, EINVAL, "--hosts: '%s' is not a positive "
                                             "count.", optarg);
                                goto fail;
                        }
                        break;
                case 'u': {
                        char *end;
                        o.tune = strtod(optarg, &end);
                        if (*end || !(o.tune > 0)) {
                                gv_error_set(&err, EINVAL, "--tune: '%s' is not a positive "
                                             "number.", optarg);
                                goto fail;
                        }
                        break;
                }
                case 'l': {
                        uint64_t v;
                        if (gv_parse_u64(optarg, 10, &v) < 0) {
                                gv_error_set(&err, EINVAL, "--limit: '%s' is not a count.",
                                             optarg);
                                goto fail;
                        }
                        o.limit = v;
                        break;
                }
                case 'h':
                        if (gv_parse_u32(optarg, 10, &o.threshold) < 0 || o.threshold < 1 ||
                            o.threshold > 100) {
                                gv_error_set(&err, EINVAL, "--threshold: '%s' is not a percent "
                                             "1..100.", optarg);
                                goto fail;
                        }
                        break;
                case 'S':
                        if (parse_u32_list("--scale", optarg, o.scales, &o.n_scales, &err) < 0)
                                goto fail;
                        break;
                case 'P':
                        if (parse_u32_list("--prefill", optarg, o.prefill, &o.n_prefill, &err) < 0)
                                goto fail;
                        break;
                case 'L': {
                        uint64_t v;
                        if (gv_parse_u64(optarg, 10, &v) < 0 || v == 0) {
                                gv_error_set(&err, EINVAL, "--latency-decisions: '%s' is not a "
                                             "positive count.", optarg);
                                goto fail;
                        }
                        o.latency_decisions = v;
                        break;
                }
                case 'W': {
                        uint64_t v;
                        if (gv_parse_u64(optarg, 10, &v) < 0) {
                                gv_error_set(&err, EINVAL, "--why: '%s' is not a count.", optarg);
                                goto fail;
                        }
                        o.why = v;
                        break;
                }
                case 'T':
                        if (strcmp(optarg, "run") == 0)
                                o.ties = TIE_RUN;
                        else if (strcmp(optarg, "decision") == 0)
                                o.ties = TIE_DECISION;
                        else if (strcmp(optarg, "host-id") == 0)
                                o.ties = TIE_HOST_ID;
                        else {
                                gv_error_set(&err, EINVAL, "--ties: unknown mode '%s'; use run, "
                                             "decision or host-id.", optarg);
                                goto fail;
                        }
                        break;
                default:
                        usage();
                        return c == '?' && optind > 0 && strcmp(argv[optind - 1], "--help") == 0
                                       ? 0
                                       : 2;
                }
        }
        if (!o.n_seeds)
                (void)parse_seeds("42-51", &o, NULL);
        if (o.mode < 0 && (o.hosts || o.host_shape)) {
                gv_error_set(&err, EINVAL, "--hosts, --host-shape: only the MIG/vGPU mode builds "
                             "its own cluster; add --mode mig, vgpu, vgpu-mixed-size or mixed.");
                goto fail;
        }
        if (o.mode >= 0 && !o.policies_given)
                /* fgd scores only share requests (migmode_check_policy()). */
                snprintf(policy_buf, sizeof(policy_buf), "first-fit,spread,best-fit,gpuvirt");
        if (!o.n_prefill) {
                o.prefill[0] = 0;
                o.prefill[1] = 50;
                o.prefill[2] = 90;
                o.n_prefill = 3;
        }
        {
                char *save = NULL;
                for (char *tok = strtok_r(policy_buf, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save)) {
                        const struct gv_sched_policy *p;
                        if (o.n_policies >= MAX_POLICIES) {
                                gv_error_set(&err, EINVAL, "--policies: at most %d.",
                                             MAX_POLICIES);
                                goto fail;
                        }
                        if (gv_sched_policy_find(tok, &p, &err) < 0)
                                goto fail;
                        o.policies[o.n_policies++] = p->name;
                }
        }

        data_dir = xstrdup(o.data ? o.data : GPUVIRT_SOURCE_ROOT "/../shared/data/openb");
        nodes_path = o.nodes ? xstrdup(o.nodes)
                             : gv_path_join(data_dir, "openb_node_list_gpu_node.csv");
        if (strchr(o.trace, '/') || strstr(o.trace, ".csv"))
                pods_path = xstrdup(o.trace);
        else
                pods_path = xasprintf("%s/openb_pod_list_%s.csv", data_dir, o.trace);

        if (openb_cluster_load(nodes_path, &oc, &err) < 0 ||
            openb_pods_load(pods_path, &oc, &trace, &err) < 0)
                goto fail;
        if (o.ceiling > 0) {
                struct ceiling_options co = {
                        .trace_name = o.trace,
                        .seeds = o.seeds,
                        .n_seeds = o.n_seeds,
                        .tune = o.tune,
                        .target = o.ceiling,
                };
                if (o.mode >= 0) {
                        gv_error_set(&err, EINVAL, "--ceiling: the analysis is of the openb share "
                                     "trace; leave out --mode.");
                        goto fail;
                }
                if (ceiling_run(&trace, &oc, &co, &err) < 0)
                        goto fail;
                rc = 0;
                goto fail;
        }
        if (o.mode >= 0) {
                struct migmode_options mo = {
                        .mode = (enum migmode_mode)o.mode,
                        .hosts = o.hosts ? o.hosts : MIGMODE_DEFAULT_HOSTS,
                        .host_shape = o.host_shape,
                        .trace_name = o.trace,
                        .pods_path = pods_path,
                        .policies = o.policies,
                        .n_policies = o.n_policies,
                        .seeds = o.seeds,
                        .n_seeds = o.n_seeds,
                        .tune = o.tune,
                        .limit = o.limit,
                        .ties = o.ties == TIE_DECISION  ? MIGMODE_TIES_DECISION
                                : o.ties == TIE_HOST_ID ? MIGMODE_TIES_HOST_ID
                                                        : MIGMODE_TIES_RUN,
                        .out = o.out,
                };
                if (migmode_run(&trace, &mo, &err) < 0)
                        goto fail;
                rc = 0;
                goto fail;
        }
        if (typical_shapes(&trace, o.threshold, &shapes, &n_shapes, &err) < 0)
                goto fail;
        printf("bench-place: %zu hosts, %" PRIu64 " GPUs; trace %s: %zu pods; %zu typical shapes "
               "(>= %u%% of pods); tune %.2f; seeds %" PRIu64 "..%" PRIu64 "%s\n",
               oc.n_nodes, oc.total_gpus, o.trace, trace.n_pods, n_shapes, o.threshold, o.tune,
               o.seeds[0], o.seeds[o.n_seeds - 1], o.limit ? " (limited)" : "");

        if (o.out) {
                _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL;
                r = gv_mkdir_p(o.out, 0755);
                if (r < 0) {
                        gv_error_set(&err, -r, "Cannot create '%s': %s.", o.out, strerror(-r));
                        goto fail;
                }
                p1 = gv_path_join(o.out, "runs.csv");
                p2 = gv_path_join(o.out, "curves.csv");
                p3 = gv_path_join(o.out, "summary.csv");
                runs = fopen(p1, "we");
                curves = fopen(p2, "we");
                summary = fopen(p3, "we");
                if (!runs || !curves || !summary) {
                        gv_error_set(&err, errno, "Cannot write into '%s': %m.", o.out);
                        goto fail;
                }
                fprintf(runs, "trace,policy,seed,alloc_100,alloc_130,first_fail_arrival,"
                              "sustained_fail_arrival,placed,failed,decide_p50_us,decide_p99_us,"
                              "decide_p999_us,decide_per_s,reserve_p50_us,reserve_p99_us,"
                              "reserve_p999_us,reserve_per_s\n");
                fprintf(curves, "trace,policy,seed,metric");
                for (int a = 0; a < AXIS; a++)
                        fprintf(curves, ",%d", a);
                fprintf(curves, "\n");
                fprintf(summary, "trace,policy,seeds,alloc_100,alloc_100_sd,alloc_130,"
                                 "alloc_130_sd,first_fail_arrival,sustained_fail_arrival,"
                                 "frag_ratio_30,frag_ratio_50,frag_ratio_70,frag_ratio_80,"
                                 "frag_ratio_90,decide_p99_us\n");
        }

        res = xnew0(struct run_result, o.n_seeds);
        for (size_t k = 0; k < o.n_policies; k++) {
                const struct gv_sched_policy *pol;
                double a100[MAX_SEEDS], a130[MAX_SEEDS], ff[MAX_SEEDS], sf[MAX_SEEDS],
                        p99[MAX_SEEDS], sd100, sd130, sd;

                (void)gv_sched_policy_find(o.policies[k], &pol, NULL);
                for (size_t s = 0; s < o.n_seeds; s++) {
                        struct run_result *x = &res[s];

                        if (run_one(&oc, &trace, shapes, n_shapes, pol, o.seeds[s], &o, x,
                                    &err) < 0)
                                goto fail;
                        a100[s] = x->alloc[100];
                        a130[s] = x->alloc[130];
                        ff[s] = x->first_fail;
                        sf[s] = x->sustained;
                        p99[s] = x->decide.p99;
                        printf("%-10s seed %3" PRIu64 ": alloc@100 %6.2f%% alloc@130 %6.2f%% "
                               "first-fail %6.2f%% sustained %6.2f%% | decide p50 %6.2f p99 "
                               "%6.2f p99.9 %7.2f us, %7.0f/s\n",
                               pol->name, o.seeds[s], x->alloc[100], x->alloc[130],
                               x->first_fail, x->sustained, x->decide.p50, x->decide.p99,
                               x->decide.p999, x->decide.per_s);
                        if (runs)
                                fprintf(runs,
                                        "%s,%s,%" PRIu64 ",%.2f,%.2f,%.2f,%.2f,%zu,%zu,%.3f,%.3f,"
                                        "%.3f,%.0f,%.3f,%.3f,%.3f,%.0f\n",
                                        o.trace, pol->name, o.seeds[s], x->alloc[100],
                                        x->alloc[130], x->first_fail, x->sustained, x->placed,
                                        x->failed, x->decide.p50, x->decide.p99, x->decide.p999,
                                        x->decide.per_s, x->decide_reserve.p50,
                                        x->decide_reserve.p99, x->decide_reserve.p999,
                                        x->decide_reserve.per_s);
                        if (curves)
                                for (int m = 0; m < 2; m++) {
                                        const double *v = m ? x->frag : x->alloc;
                                        fprintf(curves, "%s,%s,%" PRIu64 ",%s", o.trace,
                                                pol->name, o.seeds[s],
                                                m ? "frag_ratio" : "alloc");
                                        for (int a = 0; a < AXIS; a++)
                                                fprintf(curves, isnan(v[a]) ? "," : ",%.2f",
                                                        v[a]);
                                        fprintf(curves, "\n");
                                }
                }
                for (int a = 0; a < AXIS; a++) {
                        double va[MAX_SEEDS], vf[MAX_SEEDS];
                        for (size_t s = 0; s < o.n_seeds; s++) {
                                va[s] = res[s].alloc[a];
                                vf[s] = res[s].frag[a];
                        }
                        mean_alloc[k][a] = mean_of(va, o.n_seeds, &sd);
                        mean_frag[k][a] = mean_of(vf, o.n_seeds, &sd);
                }
                {
                        double m100 = mean_of(a100, o.n_seeds, &sd100);
                        double m130 = mean_of(a130, o.n_seeds, &sd130);
                        double mff = mean_of(ff, o.n_seeds, &sd);
                        double msf = mean_of(sf, o.n_seeds, &sd);
                        double mp99 = mean_of(p99, o.n_seeds, &sd);

                        printf("%-10s MEAN of %zu: alloc@100 %6.2f%% (sd %.2f) alloc@130 %6.2f%% "
                               "(sd %.2f) first-fail %6.2f%% sustained %6.2f%% frag-ratio "
                               "30/50/70/80/90: %.1f/%.1f/%.1f/%.1f/%.1f\n",
                               pol->name, o.n_seeds, m100, sd100, m130, sd130, mff, msf,
                               mean_frag[k][30], mean_frag[k][50], mean_frag[k][70],
                               mean_frag[k][80], mean_frag[k][90]);
                        if (summary)
                                fprintf(summary,
                                        "%s,%s,%zu,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.1f,%.1f,%.1f,"
                                        "%.1f,%.1f,%.3f\n",
                                        o.trace, pol->name, o.n_seeds, m100, sd100, m130, sd130,
                                        mff, msf, mean_frag[k][30], mean_frag[k][50],
                                        mean_frag[k][70], mean_frag[k][80], mean_frag[k][90],
                                        mp99);
                }
        }
        if (o.out) {
                _cleanup_free_ char *png = gv_path_join(o.out, "alloc.png");
                char title[160];

                snprintf(title, sizeof(title), "openb %s: allocation vs arrival, mean of %zu seeds",
                         o.trace, o.n_seeds);
                r = write_plot(png, title, &o, mean_alloc, 0, 0, 10);
                if (r >= 0) {
                        _cleanup_free_ char *zoom = gv_path_join(o.out, "alloc-zoom.png");
                        free(png);
                        png = TAKE_PTR(zoom);
                        r = write_plot(png, title, &o, mean_alloc, 80, 80, 5);
                }
                if (r < 0) {
                        gv_error_set(&err, -r, "Cannot write '%s': %s.", png, strerror(-r));
                        goto fail;
                }
        }

        if (o.n_scales) {
                _cleanup_free_ char *p = o.out ? gv_path_join(o.out, "latency.csv") : NULL;

                scale = p ? fopen(p, "we") : fopen("/dev/null", "we");
                if (!scale) {
                        gv_error_set(&err, errno, "Cannot write the latency CSV: %m.");
                        goto fail;
                }
                fprintf(scale, "hosts,prefill_pct,policy,decisions,decide_p50_us,decide_p99_us,"
                               "decide_p999_us,decide_per_s,reserve_p50_us,reserve_p99_us,"
                               "reserve_p999_us,reserve_per_s\n");
                printf("latency on synthetic clusters (openb nodes repeated), %zu decisions each:\n",
                       o.latency_decisions);
                for (size_t i = 0; i < o.n_scales; i++)
                        for (size_t j = 0; j < o.n_prefill; j++)
                                if (scale_run(&oc, &trace, shapes, n_shapes, o.scales[i],
                                              o.prefill[j], &o, scale, &err) < 0)
                                        goto fail;
        }
        rc = 0;
fail:
        if (rc)
                fprintf(stderr, "bench-place: %s\n", gv_error_msg(err, -EINVAL));
        if (runs)
                fclose(runs);
        if (curves)
                fclose(curves);
        if (summary)
                fclose(summary);
        if (scale)
                fclose(scale);
        openb_pods_done(&trace);
        openb_cluster_done(&oc);
        return rc;
}
