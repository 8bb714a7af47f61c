/* SPDX-License-Identifier: MIT */
/*
 * migmode.c — the MIG/vGPU mode of bench-place: the mapping rule of openb pods onto H100 SXM5
 * MIG profiles and vGPU types, and the run on a cluster of N x 8 H100 hosts (migmode.h,
 * docs/placement-mig-mode.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "migmode.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/fileio.h"

static const char *const mode_table[_MIGMODE_MAX] = {
        [MIGMODE_MIG] = "mig",
        [MIGMODE_VGPU] = "vgpu",
        [MIGMODE_VGPU_MIXED_SIZE] = "vgpu-mixed-size",
        [MIGMODE_MIXED] = "mixed",
};
DEFINE_STRING_TABLE_LOOKUP(migmode_mode, enum migmode_mode, mode_table);

static const char *const qos_table[_MIGMODE_QOS_MAX] = {
        [MIGMODE_QOS_LS] = "LS",
        [MIGMODE_QOS_BE] = "BE",
        [MIGMODE_QOS_BURSTABLE] = "Burstable",
        [MIGMODE_QOS_GUARANTEED] = "Guaranteed",
};
DEFINE_STRING_TABLE_LOOKUP(migmode_qos, enum migmode_qos, qos_table);

#define AXIS 131 /* arrival 0..130 % */
#define N_CLASSES 96 /* 0..16: gpu:N; 32..47: MIG profile; 48..95: vGPU type */
#define CLASS_MIG 32
#define CLASS_VGPU 48

int migmode_host_shape(const char *name, uint64_t *ret_cpu_milli, uint64_t *ret_memory_mib,
                       struct gv_error **err)
{
        static const struct {
                const char *name;
                uint64_t cpu_milli, memory_mib;
        } shapes[] = { { "G2", 96000, 393216 }, { "G3", 128000, 786432 } };

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++)
                if (strcasecmp(shapes[i].name, name) == 0) {
                        *ret_cpu_milli = shapes[i].cpu_milli;
                        *ret_memory_mib = shapes[i].memory_mib;
                        return 0;
                }
        return gv_error_set(err, EINVAL, "Unknown host shape '%s'; valid: G2 (96 cores, 384 GiB), "
                            "G3 (128 cores, 768 GiB).", name);
}

/* ---- the rule ---- */

int migmode_mig_profile_for(const struct gv_gpu_model *m, uint32_t milli)
{
        int best = -ENOENT;

        if (!m || m->n_gi_profiles == 0 || m->mig_compute_slices == 0 ||
            m->mig_memory_slices == 0 || milli == 0 || milli > 1000)
                return -ENOENT;
        for (size_t i = 0; i < m->n_gi_profiles; i++) {
                const struct gv_mig_gi_profile *p = &m->gi_profiles[i];

                /* "+me" profiles are the same size with media engines a share does not ask
                 * for, and there is one per GPU (mig.md §3, §5): never chosen. */
                if (p->media_extensions || p->instances == 0 || p->n_placements == 0)
                        continue;
                /* Both fractions cover the share: g / compute_slices >= s and memory_slices /
                 * memory slices of the GPU >= s (mig.md §1: 1/7 of the SMs, 1/8 of the memory
                 * per slice). Integers: x / n >= milli / 1000. */
                if ((uint64_t)p->slices * 1000 < (uint64_t)milli * m->mig_compute_slices ||
                    (uint64_t)p->memory_slices * 1000 < (uint64_t)milli * m->mig_memory_slices)
                        continue;
                if (best < 0) {
                        best = (int)i;
                        continue;
                }
                const struct gv_mig_gi_profile *b = &m->gi_profiles[best];
                if (p->memory_slices < b->memory_slices ||
                    (p->memory_slices == b->memory_slices && p->slices < b->slices))
                        best = (int)i;
        }
        return best;
}

int migmode_vgpu_type_for(const struct gv_gpu_model *m, uint32_t milli, bool mixed_size)
{
        int best = -ENOENT;

        if (!m || m->memory_mib == 0 || milli == 0 || milli > 1000)
                return -ENOENT;
        for (size_t i = 0; i < m->n_vgpu_types; i++) {
                const struct gv_vgpu_type *t = &m->vgpu_types[i];

                /* Time-sliced compute types only (vgpu.md §7.1): MIG-backed types (a GI
                 * profile) belong to the mig rule; the share world is compute work. */
                if (t->gi_profile || t->series != GV_VGPU_SERIES_C || t->max_instances == 0 ||
                    (mixed_size && t->max_instances_mixed == 0))
                        continue;
                /* F / GPU memory >= s. */
                if (t->framebuffer_mib * 1000 < (uint64_t)milli * m->memory_mib)
                        continue;
                if (best < 0 || t->framebuffer_mib < m->vgpu_types[best].framebuffer_mib)
                        best = (int)i;
        }
        return best;
}

static double mig_demand(const struct gv_gpu_model *m, int idx)
{
        return 1000.0 * m->gi_profiles[idx].slices / m->mig_compute_slices;
}

static double vgpu_demand(const struct gv_gpu_model *m, int idx)
{
        double d = 1000.0 * (double)m->vgpu_types[idx].framebuffer_mib / (double)m->memory_mib;
        return d < 1000.0 ? d : 1000.0;
}

int migmode_map_pod(const struct gv_gpu_model *m, enum migmode_mode mode,
                    const struct openb_pod *p, enum migmode_qos qos, struct migmode_map *ret,
                    struct gv_error **err)
{
        struct migmode_map x = { .kind = GV_SCHED_KIND_NONE, .index = -1 };
        bool mig;
        int idx;

        if (p->num_gpu == 0) {
                *ret = x;
                return 0;
        }
        if (p->gpu_milli == 0 || p->gpu_milli > 1000 ||
            (p->num_gpu > 1 && p->gpu_milli != 1000) || p->num_gpu > GV_SCHED_MAX_REQ_GPUS)
                return gv_error_set(err, EINVAL,
                                    "Pod '%s' asks for %u GPUs with %u milli each; the mapping "
                                    "takes 1..%u whole GPUs or one GPU's share of 1..1000.",
                                    p->name, p->num_gpu, p->gpu_milli, GV_SCHED_MAX_REQ_GPUS);
        if (p->gpu_milli == 1000) {
                /* Whole GPUs: pass-through in every mode (a VM that wants a whole GPU gets the
                 * device, passthrough.md). */
                x.kind = GV_SCHED_KIND_WHOLE;
                x.num_gpu = p->num_gpu;
                x.demand_milli = 1000.0 * p->num_gpu;
                *ret = x;
                return 0;
        }
        switch (mode) {
        case MIGMODE_MIG:
                mig = true;
                break;
        case MIGMODE_VGPU:
        case MIGMODE_VGPU_MIXED_SIZE:
                mig = false;
                break;
        case MIGMODE_MIXED:
                /* Latency-sensitive and guaranteed pods get hardware isolation (MIG: own SMs,
                 * memory slices, mig.md §1); best-effort and burstable ones a time-sliced vGPU
                 * (compute shared by the vGPU scheduler, vgpu.md §10). */
                if (qos < 0 || qos >= _MIGMODE_QOS_MAX)
                        return gv_error_set(err, EINVAL,
                                            "Pod '%s' has no QoS; the mixed mode needs the "
                                            "'qos' column (LS, BE, Burstable, Guaranteed).",
                                            p->name);
                mig = qos == MIGMODE_QOS_LS || qos == MIGMODE_QOS_GUARANTEED;
                break;
        default:
                return gv_error_set(err, EINVAL, "Unknown MIG/vGPU mode %d.", (int)mode);
        }
        if (mig) {
                idx = migmode_mig_profile_for(m, p->gpu_milli);
                if (idx < 0)
                        return gv_error_set(err, ENOENT,
                                            "Pod '%s': no MIG profile of '%s' covers a share of "
                                            "%u milli.", p->name, m->name, p->gpu_milli);
                x.kind = GV_SCHED_KIND_MIG;
                x.name = m->gi_profiles[idx].name;
                x.demand_milli = mig_demand(m, idx);
        } else {
                idx = migmode_vgpu_type_for(m, p->gpu_milli, mode == MIGMODE_VGPU_MIXED_SIZE);
                if (idx < 0)
                        return gv_error_set(err, ENOENT,
                                            "Pod '%s': no time-sliced vGPU type of '%s' covers a "
                                            "share of %u milli.", p->name, m->name,
                                            p->gpu_milli);
                x.kind = GV_SCHED_KIND_VGPU;
                x.name = m->vgpu_types[idx].name;
                x.demand_milli = vgpu_demand(m, idx);
        }
        x.num_gpu = 1;
        x.index = idx;
        *ret = x;
        return 0;
}

/* ---- the qos column ---- */

static char *next_line(char **cursor)
{
        char *s = *cursor, *nl;
        size_t n;

        if (!*s)
                return NULL;
        nl = strchr(s, '\n');
        if (nl) {
                *nl = 0;
                *cursor = nl + 1;
        } else
                *cursor = s + strlen(s);
        n = strlen(s);
        if (n && s[n - 1] == '\r')
                s[n - 1] = 0;
        return s;
}

/* Field `col` of a comma-separated line (in place); NULL when the line has fewer fields. */
static char *field_of(char *line, int col)
{
        char *s = line;

        for (int i = 0; i < col; i++) {
                s = strchr(s, ',');
                if (!s)
                        return NULL;
                s++;
        }
        s[strcspn(s, ",")] = 0;
        return s;
}

static int header_column(const char *hdr, const char *name)
{
        const char *s = hdr;
        size_t len = strlen(name);

        for (int i = 0; s; i++) {
                if (strncmp(s, name, len) == 0 && (s[len] == ',' || s[len] == 0))
                        return i;
                s = strchr(s, ',');
                if (s)
                        s++;
        }
        return -1;
}

int migmode_qos_parse(const char *file, char *text, const struct openb_pods *trace,
                      enum migmode_qos **ret, struct gv_error **err)
{
        _cleanup_free_ enum migmode_qos *q =
                xnew0(enum migmode_qos, trace->n_pods ? trace->n_pods : 1);
        char *cursor = text, *line;
        int c_name, c_qos;
        size_t row = 1, i = 0;

        line = next_line(&cursor);
        if (!line)
                return gv_error_set(err, EINVAL, "%s: the file is empty; expected a header with "
                                    "columns 'name' and 'qos'.", file);
        c_name = header_column(line, "name");
        c_qos = header_column(line, "qos");
        if (c_name < 0 || c_qos < 0)
                return gv_error_set(err, EINVAL,
                                    "%s: no column '%s'; the mixed mode maps pods by their QoS "
                                    "(LS, BE, Burstable, Guaranteed): use a pod list with a "
                                    "'qos' column, or --mode mig or vgpu.",
                                    file, c_name < 0 ? "name" : "qos");
        while ((line = next_line(&cursor))) {
                _cleanup_free_ char *dup = NULL;
                char *name, *v;
                int x;

                row++;
                if (!*line)
                        continue;
                if (i >= trace->n_pods)
                        return gv_error_set(err, EINVAL, "%s: row %zu: more rows than the %zu "
                                            "pods read before.", file, row, trace->n_pods);
                dup = xstrdup(line);
                name = field_of(dup, c_name);
                v = field_of(line, c_qos);
                if (!name || !v)
                        return gv_error_set(err, EINVAL, "%s: row %zu has fewer fields than the "
                                            "header.", file, row);
                if (strcmp(name, trace->pods[i].name) != 0)
                        return gv_error_set(err, EINVAL, "%s: row %zu names pod '%s'; expected "
                                            "'%s' (the file changed since it was read?).", file,
                                            row, name, trace->pods[i].name);
                x = migmode_qos_from_string(v);
                if (x < 0)
                        return gv_error_set(err, EINVAL, "%s: row %zu, column 'qos': unknown "
                                            "value '%s'; valid: LS, BE, Burstable, Guaranteed.",
                                            file, row, v);
                q[i++] = (enum migmode_qos)x;
        }
        if (i != trace->n_pods)
                return gv_error_set(err, EINVAL, "%s: %zu rows; expected %zu pods.", file, i,
                                    trace->n_pods);
        *ret = TAKE_PTR(q);
        return 0;
}

int migmode_qos_load(const char *path, const struct openb_pods *trace, enum migmode_qos **ret,
                     struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = gv_read_file(path, (size_t)256 << 20, &text, NULL);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the pod list '%s': %s.", path,
                                    strerror(-r));
        return migmode_qos_parse(path, text, trace, ret, err);
}

int migmode_check_policy(const char *name, struct gv_error **err)
{
        const struct gv_sched_policy *p;
        int r;

        r = gv_sched_policy_find(name, &p, err);
        if (r < 0)
                return r;
        if (strcmp(p->name, "fgd") == 0)
                return gv_error_set(err, EINVAL,
                                    "Policy 'fgd' scores by the FGD fragmentation measure, which "
                                    "knows only CPU, whole GPUs and milli shares (a MIG or vGPU "
                                    "GPU counts as having no free share, docs/placement.md): its "
                                    "scores say nothing about MIG slices or vGPU types. Use "
                                    "first-fit, spread, best-fit or gpuvirt.");
        return 0;
}

/* ---- the run ---- */

struct frag_sample {
        double mig_free_slices;     /* free memory slices on MIG GPUs in use */
        double mig_stranded_slices; /* of which no wanted profile can use */
        double stranded_milli;      /* free milli on in-use GPUs no wanted request fits */
        double inuse_free_milli;    /* free milli on in-use GPUs */
        bool set;
};

struct run {
        double alloc[AXIS];
        double first_fail;              /* of a request an empty host could take */
        size_t impossible;              /* requests no empty host can take (CPU, memory) */
        size_t arrived, placed;         /* all requests */
        size_t gpu_arrived, gpu_placed; /* requests with a GPU part */
        double eq_arrived, eq_placed;   /* GPU-equivalents x 1000 */
        size_t arrived100, placed100;   /* requests arrived up to 100 % arrival */
        double eq_arrived100, eq_placed100;
        struct frag_sample f100, f130;
        size_t class_arrived[N_CLASSES], class_placed[N_CLASSES];
        size_t fail_reason[_GV_SCHED_REJECT_MAX + 1]; /* the most common host reason per failure */
        double p99_us;
};

struct ctx {
        const struct gv_gpu_model *model;
        const struct migmode_options *o;
        const struct openb_pods *trace;
        struct migmode_map *map;        /* per trace pod */
        bool wanted_mig[GV_SCHED_MAX_MIG_PROFILES];
        bool wanted_vgpu[GV_SCHED_MAX_VGPU_TYPES];
        bool wanted_whole;
        struct openb_pods mapped;       /* trace pods with gpu_milli = the mapped demand */
};

static uint64_t mix(uint64_t a, uint64_t b)
{
        uint64_t z = a * UINT64_C(0x9e3779b97f4a7c15) + b;
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return (z ^ (z >> 31)) | 1;
}

static uint64_t tie_seed(const struct migmode_options *o, uint64_t seed, size_t i)
{
        switch (o->ties) {
        case MIGMODE_TIES_DECISION:
                return mix(seed, i);
        case MIGMODE_TIES_HOST_ID:
                return 0;
        default:
                return mix(seed, 0);
        }
}

static int class_of(const struct migmode_map *x)
{
        switch (x->kind) {
        case GV_SCHED_KIND_WHOLE:
                return (int)x->num_gpu;
        case GV_SCHED_KIND_MIG:
                return CLASS_MIG + x->index;
        case GV_SCHED_KIND_VGPU:
                return CLASS_VGPU + x->index;
        default:
                return 0;
        }
}

static void class_name(const struct gv_gpu_model *m, int k, char *buf, size_t size)
{
        if (k == 0)
                snprintf(buf, size, "cpu");
        else if (k < CLASS_MIG)
                snprintf(buf, size, "gpu:%d", k);
        else if (k < CLASS_VGPU)
                snprintf(buf, size, "mig:%s", m->gi_profiles[k - CLASS_MIG].name);
        else
                snprintf(buf, size, "vgpu:%s", m->vgpu_types[k - CLASS_VGPU].name);
}

static int cluster_build(const struct ctx *x, struct gv_sched_cluster **ret,
                         struct gv_error **err)
{
        _cleanup_(gv_sched_cluster_freep) struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_gpu_spec gpus[MIGMODE_HOST_GPUS];
        enum gv_sched_gpu_mode mode;
        uint64_t cpu, mem;
        int model;

        model = migmode_host_shape(x->o->host_shape ? x->o->host_shape : "G2", &cpu, &mem, err);
        if (model < 0)
                return model;

        model = gv_sched_cluster_add_model(c, x->model, err);
        if (model < 0)
                return model;
        /* The configured mode is only a preference while a GPU is empty (docs/placement.md):
         * the mode the run mostly needs; mixed: none. */
        switch (x->o->mode) {
        case MIGMODE_MIG:
                mode = GV_SCHED_MODE_MIG;
                break;
        case MIGMODE_VGPU:
        case MIGMODE_VGPU_MIXED_SIZE:
                mode = GV_SCHED_MODE_VGPU;
                break;
        default:
                mode = GV_SCHED_MODE_UNASSIGNED;
        }
        for (unsigned g = 0; g < MIGMODE_HOST_GPUS; g++)
                gpus[g] = (struct gv_sched_gpu_spec){
                        .model = (uint32_t)model,
                        .mode = mode,
                        .mixed_size = x->o->mode == MIGMODE_VGPU_MIXED_SIZE,
                };
        for (uint32_t i = 0; i < x->o->hosts; i++) {
                char name[32];
                struct gv_sched_host_spec spec = {
                        .name = name,
                        .cpu_milli = cpu,
                        .memory_mib = mem,
                        .state = GV_SCHED_HOST_UP,
                        .gpus = gpus,
                        .n_gpus = MIGMODE_HOST_GPUS,
                };
                int r;

                snprintf(name, sizeof(name), "h100-%05" PRIu32, i);
                r = gv_sched_cluster_add_host(c, &spec, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* Can a wanted MIG profile still go onto GPU g (in MIG mode), and which free slices could it
 * use? The engine's rules (docs/placement.md, mig.md §4–5): a placement whose slices are all
 * free, per-profile instance count, the GPU's instance limit and its compute slices. */
static uint32_t mig_usable_slices(const struct ctx *x, const struct gv_sched_gpu *g)
{
        const struct gv_gpu_model *m = x->model;
        uint32_t usable = 0;

        for (size_t i = 0; i < m->n_gi_profiles && i < GV_SCHED_MAX_MIG_PROFILES; i++) {
                const struct gv_mig_gi_profile *p = &m->gi_profiles[i];

                if (!x->wanted_mig[i] || g->mig_count[i] >= p->instances ||
                    g->mig_instances >= m->mig_max_instances ||
                    g->mig_compute_used + p->slices > m->mig_compute_slices)
                        continue;
                for (size_t k = 0; k < p->n_placements; k++) {
                        uint32_t mask = (uint32_t)(((UINT64_C(1) << p->placements[k].size) - 1)
                                                   << p->placements[k].start);
                        if (!(g->mig_occupied & mask))
                                usable |= mask;
                }
        }
        return usable;
}

/* Can a wanted time-sliced type still go onto vGPU GPU g? The engine's rules (place.c,
 * vgpu.md §8): equal-size: the running type, below its max_instances; mixed-size: any wanted
 * type with a free placement id k·size, k < max_instances_mixed, whose units are all free. */
static bool vgpu_usable(const struct ctx *x, const struct gv_sched_gpu *g)
{
        const struct gv_gpu_model *m = x->model;

        if (!g->mixed_size)
                return g->vgpu_type >= 0 && (size_t)g->vgpu_type < m->n_vgpu_types &&
                       x->wanted_vgpu[g->vgpu_type] &&
                       g->n_vgpus < m->vgpu_types[g->vgpu_type].max_instances;
        for (size_t i = 0; i < m->n_vgpu_types && i < GV_SCHED_MAX_VGPU_TYPES; i++) {
                const struct gv_vgpu_type *t = &m->vgpu_types[i];
                uint64_t size = (t->framebuffer_mib + 1023) / 1024;

                if (!x->wanted_vgpu[i] || t->gi_profile || t->max_instances_mixed == 0)
                        continue;
                for (uint64_t k = 0; k < t->max_instances_mixed; k++) {
                        uint64_t id = k * size;
                        bool free = id + size <= GV_SCHED_VGPU_UNITS;

                        for (uint64_t u = id; free && u < id + size; u++)
                                if (g->vgpu_units[u / 64] & (UINT64_C(1) << (u % 64)))
                                        free = false;
                        if (free)
                                return true;
                }
        }
        return false;
}

static struct frag_sample frag_measure(const struct ctx *x, const struct gv_sched_cluster *c)
{
        struct frag_sample s = { .set = true };
        size_t n = gv_sched_cluster_n_gpus(c);
        const uint32_t *free_milli = gv_sched_cluster_free_milli(c);

        for (uint32_t i = 0; i < n; i++) {
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, i);
                bool usable;

                if (g->n_alloc == 0)
                        continue;
                s.inuse_free_milli += free_milli[i];
                switch (g->mode) {
                case GV_SCHED_MODE_MIG: {
                        uint32_t all = (uint32_t)((UINT64_C(1) << x->model->mig_memory_slices) - 1);
                        uint32_t fr = all & ~g->mig_occupied;
                        uint32_t use = mig_usable_slices(x, g);
                        s.mig_free_slices += __builtin_popcount(fr);
                        s.mig_stranded_slices += __builtin_popcount(fr & ~use);
                        usable = use != 0;
                        break;
                }
                case GV_SCHED_MODE_VGPU:
                        usable = vgpu_usable(x, g);
                        break;
                default:
                        usable = false; /* pass-through: nothing more fits */
                }
                if (!usable)
                        s.stranded_milli += free_milli[i];
        }
        return s;
}

static void resample(const double *arr, const double *val, size_t n, double *out)
{
        /* As bench-place (merge_alloc_discrete.py): arrival rounded to an integer percent,
         * mean of the samples there, else of those within ±1. */
        for (int k = 0; k < AXIS; k++) {
                double sum = 0, sum2 = 0;
                size_t cnt = 0, cnt2 = 0;

                for (size_t i = 0; i < n; i++) {
                        double a = nearbyint(arr[i]);
                        if (a == k) {
                                sum += val[i];
                                cnt++;
                        } else if (a >= k - 1 && a <= k + 1) {
                                sum2 += val[i];
                                cnt2++;
                        }
                }
                out[k] = cnt ? sum / cnt : cnt2 ? sum2 / cnt2 : NAN;
        }
}

static double now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static int run_one(const struct ctx *x, const struct gv_sched_policy *pol, uint64_t seed,
                   struct run *res, struct gv_error **err)
{
        _cleanup_(gv_sched_cluster_freep) struct gv_sched_cluster *c = NULL;
        _cleanup_free_ double *arr = NULL, *alloc = NULL, *t = NULL;
        struct openb_workload w = {};
        double cap, arrived = 0;
        size_t n, ns = 0, nt = 0;
        uint64_t host_cpu, host_mem;
        int r;

        memset(res, 0, sizeof(*res));
        r = migmode_host_shape(x->o->host_shape ? x->o->host_shape : "G2", &host_cpu, &host_mem,
                               err);
        if (r < 0)
                return r;
        res->first_fail = NAN;
        r = cluster_build(x, &c, err);
        if (r < 0)
                return r;
        cap = 1000.0 * (double)gv_sched_cluster_n_gpus(c);
        r = gv_sched_policy_attach(c, pol, err);
        if (r < 0)
                return r;
        r = openb_workload_build(&x->mapped, (uint64_t)cap, x->o->tune, seed, &w, err);
        if (r < 0)
                return r;
        n = x->o->limit && x->o->limit < w.n ? x->o->limit : w.n;
        arr = xnew0(double, n + 1);
        alloc = xnew0(double, n + 1);
        t = xnew0(double, n ? n : 1);
        arr[ns] = 0;
        alloc[ns++] = 0;

        for (size_t i = 0; i < n; i++) {
                size_t pi = (size_t)(w.seq[i] - x->mapped.pods);
                const struct openb_pod *p = &x->trace->pods[pi];
                const struct migmode_map *mp = &x->map[pi];
                struct gv_sched_request rq = {
                        .cpu_milli = p->cpu_milli,
                        .memory_mib = p->memory_mib,
                        .kind = mp->kind,
                        .num_gpu = mp->kind == GV_SCHED_KIND_WHOLE ? mp->num_gpu : 0,
                        .type = mp->name,
                        .tie_seed = tie_seed(x->o, seed, i),
                };
                struct gv_sched_placement pl;
                struct gv_sched_explain why;
                bool before100;
                int k = class_of(mp);
                double t0;

                arrived += mp->demand_milli; /* before the attempt */
                before100 = 100.0 * arrived / cap <= 100.0;
                res->arrived++;
                res->class_arrived[k]++;
                res->eq_arrived += mp->demand_milli;
                if (mp->kind != GV_SCHED_KIND_NONE)
                        res->gpu_arrived++;
                if (before100) {
                        res->arrived100++;
                        res->eq_arrived100 += mp->demand_milli;
                }
                r = gv_sched_request_resolve(c, &rq, err);
                if (r < 0) {
                        gv_error_wrap(err, r, "Pod '%s'", p->name);
                        goto out;
                }
                t0 = now_ns();
                r = gv_sched_place(c, pol, &rq, &pl, NULL, NULL);
                t[nt++] = now_ns() - t0;
                if (r == 0) {
                        r = gv_sched_reserve(c, &rq, &pl, err);
                        if (r < 0) {
                                gv_error_wrap(err, r, "Reserving the placement '%s' chose",
                                              pol->name);
                                goto out;
                        }
                        res->placed++;
                        res->class_placed[k]++;
                        res->eq_placed += mp->demand_milli;
                        if (mp->kind != GV_SCHED_KIND_NONE)
                                res->gpu_placed++;
                        if (before100) {
                                res->placed100++;
                                res->eq_placed100 += mp->demand_milli;
                        }
                } else if (r == -ENOSPC) {
                        unsigned best = _GV_SCHED_REJECT_MAX;
                        (void)gv_sched_place(c, pol, &rq, &pl, &why, NULL);
                        for (unsigned q = 0; q < _GV_SCHED_REJECT_MAX; q++)
                                if (why.rejected[q] &&
                                    (best == _GV_SCHED_REJECT_MAX ||
                                     why.rejected[q] > why.rejected[best]))
                                        best = q;
                        res->fail_reason[best]++;
                        /* A pod larger than a host (openb's 120-core 8-GPU pods fit only its G3
                         * nodes) fails at any fill: not a sign the cluster is full. */
                        if (p->cpu_milli > host_cpu || p->memory_mib > host_mem) {
                                res->impossible++;
                        } else if (isnan(res->first_fail) && mp->kind != GV_SCHED_KIND_NONE)
                                res->first_fail = 100.0 * arrived / cap;
                } else {
                        r = gv_error_set(err, -r, "Placing '%s' with '%s' failed: %s.", p->name,
                                         pol->name, strerror(-r));
                        goto out;
                }
                arr[ns] = 100.0 * arrived / cap;
                alloc[ns++] = 100.0 * (double)gv_sched_cluster_used_milli(c) / cap;
                if (!res->f100.set && arr[ns - 1] >= 100.0)
                        res->f100 = frag_measure(x, c);
        }
        res->f130 = frag_measure(x, c);
        r = gv_sched_cluster_check(c, err);
        if (r < 0)
                goto out;
        resample(arr, alloc, ns, res->alloc);
        qsort(t, nt, sizeof(*t), cmp_double);
        res->p99_us = nt ? t[(size_t)((nt - 1) * 0.99)] / 1e3 : 0;
        r = 0;
out:
        openb_workload_done(&w);
        return r;
}

static double pct(double a, double b)
{
        return b > 0 ? 100.0 * a / b : NAN;
}

static double mean_sd(const double *v, size_t n, double *sd)
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
        s /= (double)k;
        for (size_t i = 0; i < n; i++)
                if (!isnan(v[i]))
                        s2 += (v[i] - s) * (v[i] - s);
        *sd = sqrt(s2 / (double)k);
        return s;
}

/* Per-run figures, in the order of the CSV and the summary. */
enum {
        F_ACC, F_ACC_GPU_REQS, F_ACC_EQ, F_ACC100, F_ACC100_EQ, F_ALLOC100, F_ALLOC130,
        F_FIRST_FAIL, F_MIG_STRANDED100, F_MIG_STRANDED130, F_STRANDED100, F_STRANDED130,
        F_P99, F_IMPOSSIBLE, _F_MAX
};
static const char *const f_names[_F_MAX] = {
        "accept_pct", "accept_gpu_reqs_pct", "accept_gpu_eq_pct", "accept_to100_pct",
        "accept_to100_gpu_eq_pct", "alloc_100", "alloc_130", "first_fail_arrival",
        "mig_stranded_slices_pct_100", "mig_stranded_slices_pct_130", "stranded_gpu_pct_100",
        "stranded_gpu_pct_130", "decide_p99_us", "larger_than_a_host",
};

static void figures(const struct run *x, double cap, double *f)
{
        f[F_ACC] = pct((double)x->placed, (double)x->arrived);
        f[F_ACC_GPU_REQS] = pct((double)x->gpu_placed, (double)x->gpu_arrived);
        f[F_ACC_EQ] = pct(x->eq_placed, x->eq_arrived);
        f[F_ACC100] = pct((double)x->placed100, (double)x->arrived100);
        f[F_ACC100_EQ] = pct(x->eq_placed100, x->eq_arrived100);
        f[F_ALLOC100] = x->alloc[100];
        f[F_ALLOC130] = x->alloc[130];
        f[F_FIRST_FAIL] = x->first_fail;
        /* stranded MIG memory slices: % of the free slices on MIG GPUs in use */
        f[F_MIG_STRANDED100] = pct(x->f100.mig_stranded_slices, x->f100.mig_free_slices);
        f[F_MIG_STRANDED130] = pct(x->f130.mig_stranded_slices, x->f130.mig_free_slices);
        /* free capacity on in-use GPUs that no wanted request can use: % of all capacity */
        f[F_STRANDED100] = x->f100.set ? pct(x->f100.stranded_milli, cap) : NAN;
        f[F_STRANDED130] = pct(x->f130.stranded_milli, cap);
        f[F_P99] = x->p99_us;
        f[F_IMPOSSIBLE] = (double)x->impossible;
}

static int ctx_init(struct ctx *x, const struct gv_gpu_model *m, const struct openb_pods *trace,
                    const struct migmode_options *o, struct gv_error **err)
{
        _cleanup_free_ enum migmode_qos *qos = NULL;
        size_t counts[N_CLASSES] = {};
        double demand = 0, trace_demand = 0;
        uint64_t cpu, mem;
        int r;

        *x = (struct ctx){ .model = m, .o = o, .trace = trace };
        r = migmode_host_shape(o->host_shape ? o->host_shape : "G2", &cpu, &mem, err);
        if (r < 0)
                return r;
        if (o->mode == MIGMODE_MIXED) {
                r = migmode_qos_load(o->pods_path, trace, &qos, err);
                if (r < 0)
                        return r;
        }
        x->map = xnew0(struct migmode_map, trace->n_pods);
        x->mapped.n_pods = trace->n_pods;
        x->mapped.pods = xnew0(struct openb_pod, trace->n_pods);
        for (size_t i = 0; i < trace->n_pods; i++) {
                const struct openb_pod *p = &trace->pods[i];
                struct migmode_map *mp = &x->map[i];

                r = migmode_map_pod(m, o->mode, p, qos ? qos[i] : _MIGMODE_QOS_INVALID, mp, err);
                if (r < 0)
                        return r;
                /* The workload builder tunes on num_gpu x gpu_milli: give it the mapped
                 * request's demand per GPU (names are shared, not copied). */
                x->mapped.pods[i] = *p;
                if (mp->kind == GV_SCHED_KIND_MIG || mp->kind == GV_SCHED_KIND_VGPU)
                        x->mapped.pods[i].gpu_milli = (uint32_t)lround(mp->demand_milli);
                if (mp->kind == GV_SCHED_KIND_MIG)
                        x->wanted_mig[mp->index] = true;
                else if (mp->kind == GV_SCHED_KIND_VGPU)
                        x->wanted_vgpu[mp->index] = true;
                else if (mp->kind == GV_SCHED_KIND_WHOLE)
                        x->wanted_whole = true;
                counts[class_of(mp)]++;
                demand += mp->demand_milli;
                trace_demand += openb_pod_total_milli(p);
        }
        printf("bench-place MIG/vGPU mode '%s': %" PRIu32 " hosts x %u %s (%s: %" PRIu64 " cores, "
               "%" PRIu64 " MiB per host); trace %s: %zu pods, GPU demand %.1f GPUs as traced, "
               "%.1f GPU-equivalents mapped\n  mapped requests:",
               migmode_mode_to_string(o->mode), o->hosts, MIGMODE_HOST_GPUS, m->name,
               o->host_shape ? o->host_shape : "G2", cpu / 1000, mem, o->trace_name,
               trace->n_pods, trace_demand / 1000.0, demand / 1000.0);
        for (int k = 0; k < N_CLASSES; k++)
                if (counts[k]) {
                        char name[64];
                        class_name(m, k, name, sizeof(name));
                        printf(" %s %zu", name, counts[k]);
                }
        printf("\n");
        return 0;
}

static void ctx_done(struct ctx *x)
{
        free(x->map);
        free(x->mapped.pods); /* the names belong to the trace */
}

int migmode_run(const struct openb_pods *trace, const struct migmode_options *o,
                struct gv_error **err)
{
        _cleanup_(gv_catalog_freep) struct gv_catalog *cat = NULL;
        _cleanup_free_ struct run *runs = NULL;
        const struct gv_gpu_model *m;
        struct ctx x = {};
        FILE *f_runs = NULL, *f_sum = NULL, *f_cls = NULL, *f_curves = NULL;
        double cap = 1000.0 * MIGMODE_HOST_GPUS * o->hosts;
        int r;

        if (o->hosts == 0)
                return gv_error_set(err, EINVAL, "--hosts: the cluster needs at least one host.");
        for (size_t k = 0; k < o->n_policies; k++) {
                r = migmode_check_policy(o->policies[k], err);
                if (r < 0)
                        return r;
        }
        r = gv_catalog_load_default(&cat, err);
        if (r < 0)
                return r;
        m = gv_catalog_find(cat, MIGMODE_MODEL);
        if (!m)
                return gv_error_set(err, ENOENT, "The catalog has no model '%s'; the MIG/vGPU "
                                    "mode needs data/gpus/%s.json.", MIGMODE_MODEL,
                                    MIGMODE_MODEL);
        r = ctx_init(&x, m, trace, o, err);
        if (r < 0)
                goto out;

        if (o->out) {
                _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
                r = gv_mkdir_p(o->out, 0755);
                if (r < 0) {
                        gv_error_set(err, -r, "Cannot create '%s': %s.", o->out, strerror(-r));
                        goto out;
                }
                p1 = gv_path_join(o->out, "migmode-runs.csv");
                p2 = gv_path_join(o->out, "migmode-summary.csv");
                p3 = gv_path_join(o->out, "migmode-classes.csv");
                p4 = gv_path_join(o->out, "migmode-curves.csv");
                f_runs = fopen(p1, "we");
                f_sum = fopen(p2, "we");
                f_cls = fopen(p3, "we");
                f_curves = fopen(p4, "we");
                if (!f_runs || !f_sum || !f_cls || !f_curves) {
                        r = gv_error_set(err, errno, "Cannot write into '%s': %m.", o->out);
                        goto out;
                }
                fprintf(f_runs, "mode,trace,hosts,policy,seed,arrived,placed");
                fprintf(f_sum, "mode,trace,hosts,policy,seeds");
                for (int i = 0; i < _F_MAX; i++) {
                        fprintf(f_runs, ",%s", f_names[i]);
                        fprintf(f_sum, ",%s,%s_sd", f_names[i], f_names[i]);
                }
                fprintf(f_runs, "\n");
                fprintf(f_sum, "\n");
                fprintf(f_cls, "mode,trace,hosts,policy,class,arrived,placed,accept_pct\n");
                fprintf(f_curves, "mode,trace,hosts,policy,seed");
                for (int a = 0; a < AXIS; a++)
                        fprintf(f_curves, ",%d", a);
                fprintf(f_curves, "\n");
        }

        runs = xnew0(struct run, o->n_seeds);
        for (size_t k = 0; k < o->n_policies; k++) {
                const struct gv_sched_policy *pol;
                double fv[_F_MAX][64], mean[_F_MAX], sd[_F_MAX];
                size_t reasons[_GV_SCHED_REJECT_MAX + 1] = {};
                size_t cls_a[N_CLASSES] = {}, cls_p[N_CLASSES] = {};

                (void)gv_sched_policy_find(o->policies[k], &pol, NULL);
                for (size_t s = 0; s < o->n_seeds && s < 64; s++) {
                        struct run *rr = &runs[s];
                        double f[_F_MAX];

                        r = run_one(&x, pol, o->seeds[s], rr, err);
                        if (r < 0)
                                goto out;
                        figures(rr, cap, f);
                        for (int i = 0; i < _F_MAX; i++)
                                fv[i][s] = f[i];
                        for (int i = 0; i <= _GV_SCHED_REJECT_MAX; i++)
                                reasons[i] += rr->fail_reason[i];
                        for (int i = 0; i < N_CLASSES; i++) {
                                cls_a[i] += rr->class_arrived[i];
                                cls_p[i] += rr->class_placed[i];
                        }
                        printf("%-10s seed %3" PRIu64 ": accept %6.2f%% (GPU requests %6.2f%%, "
                               "GPU-eq %6.2f%%) alloc@100 %6.2f%% alloc@130 %6.2f%% first-fail "
                               "%6.2f%% | stranded MIG slices %5.1f%% GPU-eq %5.2f%% @130 | "
                               "p99 %.1f us\n",
                               pol->name, o->seeds[s], f[F_ACC], f[F_ACC_GPU_REQS], f[F_ACC_EQ],
                               f[F_ALLOC100], f[F_ALLOC130], f[F_FIRST_FAIL],
                               f[F_MIG_STRANDED130], f[F_STRANDED130], f[F_P99]);
                        if (f_runs) {
                                fprintf(f_runs, "%s,%s,%" PRIu32 ",%s,%" PRIu64 ",%zu,%zu",
                                        migmode_mode_to_string(o->mode), o->trace_name, o->hosts,
                                        pol->name, o->seeds[s], rr->arrived, rr->placed);
                                for (int i = 0; i < _F_MAX; i++)
                                        fprintf(f_runs, isnan(f[i]) ? "," : ",%.3f", f[i]);
                                fprintf(f_runs, "\n");
                                fprintf(f_curves, "%s,%s,%" PRIu32 ",%s,%" PRIu64,
                                        migmode_mode_to_string(o->mode), o->trace_name, o->hosts,
                                        pol->name, o->seeds[s]);
                                for (int a = 0; a < AXIS; a++)
                                        fprintf(f_curves, isnan(rr->alloc[a]) ? "," : ",%.2f",
                                                rr->alloc[a]);
                                fprintf(f_curves, "\n");
                        }
                }
                for (int i = 0; i < _F_MAX; i++)
                        mean[i] = mean_sd(fv[i], MIN(o->n_seeds, (size_t)64), &sd[i]);
                printf("%-10s MEAN of %zu: accept %6.2f%% (GPU requests %6.2f%%, GPU-eq %6.2f%%; "
                       "to 100%% arrival %6.2f%% / GPU-eq %6.2f%%) alloc@100 %6.2f%% (sd %.2f) "
                       "alloc@130 %6.2f%% (sd %.2f) first-fail %6.2f%% | stranded MIG slices "
                       "%.1f%%/%.1f%% GPU-eq %.2f%%/%.2f%% @100/130; %.1f pods larger than a "
                       "host\n",
                       pol->name, o->n_seeds, mean[F_ACC], mean[F_ACC_GPU_REQS], mean[F_ACC_EQ],
                       mean[F_ACC100], mean[F_ACC100_EQ], mean[F_ALLOC100], sd[F_ALLOC100],
                       mean[F_ALLOC130], sd[F_ALLOC130], mean[F_FIRST_FAIL],
                       mean[F_MIG_STRANDED100], mean[F_MIG_STRANDED130], mean[F_STRANDED100],
                       mean[F_STRANDED130], mean[F_IMPOSSIBLE]);
                printf("%-10s   failures by the most common host reason:", pol->name);
                for (int i = 0; i <= _GV_SCHED_REJECT_MAX; i++)
                        if (reasons[i])
                                printf(" %s %zu;",
                                       i < _GV_SCHED_REJECT_MAX
                                               ? gv_sched_reject_to_string((enum gv_sched_reject)i)
                                               : "(none)",
                                       reasons[i]);
                printf("\n%-10s   accepted per class:", pol->name);
                for (int i = 0; i < N_CLASSES; i++)
                        if (cls_a[i]) {
                                char name[64];
                                class_name(m, i, name, sizeof(name));
                                printf(" %s %.1f%%;", name,
                                       pct((double)cls_p[i], (double)cls_a[i]));
                                if (f_cls)
                                        fprintf(f_cls, "%s,%s,%" PRIu32 ",%s,%s,%zu,%zu,%.3f\n",
                                                migmode_mode_to_string(o->mode), o->trace_name,
                                                o->hosts, pol->name, name, cls_a[i], cls_p[i],
                                                pct((double)cls_p[i], (double)cls_a[i]));
                        }
                printf("\n");
                if (f_sum) {
                        fprintf(f_sum, "%s,%s,%" PRIu32 ",%s,%zu",
                                migmode_mode_to_string(o->mode), o->trace_name, o->hosts,
                                pol->name, o->n_seeds);
                        for (int i = 0; i < _F_MAX; i++)
                                fprintf(f_sum, isnan(mean[i]) ? ",," : ",%.3f,%.3f", mean[i],
                                        sd[i]);
                        fprintf(f_sum, "\n");
                }
        }
        r = 0;
out:
        if (f_runs)
                fclose(f_runs);
        if (f_sum)
                fclose(f_sum);
        if (f_cls)
                fclose(f_cls);
        if (f_curves)
                fclose(f_curves);
        ctx_done(&x);
        return r;
}
