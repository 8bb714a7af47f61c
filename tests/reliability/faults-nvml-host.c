/* SPDX-License-Identifier: MIT */
/*
 * faults-nvml-host.c — reliability.md R6 at library level: every NVML return code injected at
 * every NVML symbol gpuvirt loads (nvml-load.c's table), during each operation of src/host
 * that uses NVML, against the NVML simulator on a simulated dgx-h100.
 *
 * For each operation: its state before and after a clean run are recorded from the simulator
 * (GPU instances, compute instances, vGPUs, MIG mode, VFs). Then, per symbol, one ONCE injection
 * tells whether the operation calls it at all (the injection is consumed or not); a symbol it
 * calls gets every return code. After each faulty run:
 *   - a failure carries a message (never a crash: ASan/UBSan run this too);
 *   - the simulated hardware is exactly the state before (rolled back) or after (the fault was
 *     tolerated): no GPU instance, compute instance or vGPU leaks;
 *   - GPU_IS_LOST and RESET_REQUIRED leave the GPU unhealthy (gv_gpu.unhealthy), and the
 *     next refresh, with the fault gone, finds it healthy again.
 * Prints one TAP line per operation; the figures (runs, symbols, time) on a comment line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/nvml/nvml-abi.h"
#include "hw/nvml/nvml-internal.h"
#include "hw/nvml/nvml.h"
#include "host/host.h"
#include "sim-fixture.h"
#include "sim/host/sim-state.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"

static const struct {
        int code;
        const char *name;
} codes[] = {
        { 1, "UNINITIALIZED" }, { 2, "INVALID_ARGUMENT" }, { 3, "NOT_SUPPORTED" },
        { 4, "NO_PERMISSION" }, { 5, "ALREADY_INITIALIZED" }, { 6, "NOT_FOUND" },
        { 7, "INSUFFICIENT_SIZE" }, { 8, "INSUFFICIENT_POWER" }, { 9, "DRIVER_NOT_LOADED" },
        { 10, "TIMEOUT" }, { 11, "IRQ_ISSUE" }, { 12, "LIBRARY_NOT_FOUND" },
        { 13, "FUNCTION_NOT_FOUND" }, { 14, "CORRUPTED_INFOROM" }, { 15, "GPU_IS_LOST" },
        { 16, "RESET_REQUIRED" }, { 17, "OPERATING_SYSTEM" }, { 18, "LIB_RM_VERSION_MISMATCH" },
        { 19, "IN_USE" }, { 20, "MEMORY" }, { 21, "NO_DATA" }, { 22, "VGPU_ECC_NOT_SUPPORTED" },
        { 23, "INSUFFICIENT_RESOURCES" }, { 24, "FREQ_NOT_SUPPORTED" },
        { 25, "ARGUMENT_VERSION_MISMATCH" }, { 26, "DEPRECATED" }, { 27, "NOT_READY" },
        { 28, "GPU_NOT_FOUND" }, { 29, "INVALID_STATE" }, { 30, "RESET_TYPE_NOT_SUPPORTED" },
        { 999, "UNKNOWN" },
};

static char *root;
static struct gv_host *host;
static int failures, tap_n;

#define MIG_GPU 0
#define VGPU_GPU 1
#define MODE_GPU 2

static void die(const char *what, int r, struct gv_error *e)
{
        printf("Bail out! %s: %s\n", what, gv_error_msg(e, r));
        exit(1);
}

/* ---- the simulator's side ---- */

static struct sim_state *lock(void)
{
        struct sim_state *s = NULL;
        struct gv_error *e = NULL;
        int r = sim_state_lock(root, SIM_LOCK_EXCLUSIVE, &s, &e);
        if (r < 0)
                die("sim_state_lock", r, e);
        return s;
}

static void commit(struct sim_state *s)
{
        struct gv_error *e = NULL;
        int r = sim_state_commit(s, &e);
        if (r < 0)
                die("sim_state_commit", r, e);
        sim_state_unlock(s);
}

static void inject(const char *const *names, int code, bool always)
{
        struct sim_state *s = lock();
        s->n_inject = 0;
        for (size_t i = 0; names && i < 3 && names[i]; i++)
                (void)sim_inject_add(s, names[i], code, -1, NULL,
                                     always ? SIM_INJECT_ALWAYS : SIM_INJECT_ONCE);
        commit(s);
}

/* How many injections are left (consumed ones are gone); clears them. */
static size_t inject_clear(void)
{
        struct sim_state *s = lock();
        size_t n = s->n_inject;
        if (n == 0) {
                sim_state_unlock(s);
                return 0;
        }
        s->n_inject = 0;
        commit(s);
        return n;
}

/* What the simulated hardware holds on the three GPUs the operations touch. */
static char *snapshot(void)
{
        struct sim_state *s = NULL;
        struct gv_error *e = NULL;
        char *out = xstrdup("");
        int r = sim_state_lock(root, SIM_LOCK_SHARED, &s, &e);
        if (r < 0)
                die("sim_state_lock", r, e);
        for (unsigned i = 0; i < 3; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                _cleanup_free_ char *p = gv_path_join(root, "sys/bus/pci/devices");
                _cleanup_free_ char *f = xasprintf("%s/%s/sriov_numvfs", p, g->bdf);
                _cleanup_free_ char *vfs = NULL;
                if (gv_read_file(f, GV_READ_MAX_DEFAULT, &vfs, NULL) < 0)
                        vfs = xstrdup("?");
                vfs[strcspn(vfs, "\n")] = 0;
                char *t = xasprintf("%s gpu%u mig=%u/%u vfs=%s gis=", out, i, g->mig_current,
                                    g->mig_pending, vfs);
                free(out);
                out = t;
                for (size_t k = 0; k < g->n_gis; k++) {
                        t = xasprintf("%s%u@%u+%u/%zu,", out, g->gis[k].profile_id,
                                      g->gis[k].start, g->gis[k].size, g->gis[k].n_cis);
                        free(out);
                        out = t;
                }
        }
        for (size_t i = 0; i < s->n_vgpus; i++) {
                char *t = xasprintf("%s vgpu:%u:%u:%s", out, s->vgpus[i].gpu, s->vgpus[i].type_id,
                                    s->vgpus[i].parent_bdf);
                free(out);
                out = t;
        }
        sim_state_unlock(s);
        return out;
}

/* ---- the operations ---- */

static int refresh(unsigned i, struct gv_error **err)
{
        return gv_host_refresh_gpu(host, &host->gpus[i], err);
}

static void must(int r, struct gv_error *e, const char *what)
{
        if (r < 0)
                die(what, r, e);
}

static int mig_layout(unsigned gpu, char *const *l, struct gv_error **err)
{
        int r = refresh(gpu, err);
        return r < 0 ? r : gv_gpu_mig_apply(host, &host->gpus[gpu], l, false, NULL, err);
}

static char *const empty_layout[] = { NULL };
static char *const two_layout[] = { (char *)"3g.40gb", (char *)"1g.10gb", NULL };
static char *const one_layout[] = { (char *)"3g.40gb", NULL };

static void base_empty_mig(void)
{
        struct gv_error *e = NULL;
        must(mig_layout(MIG_GPU, empty_layout, &e), e, "empty MIG layout");
}
static void base_one_gi(void)
{
        struct gv_error *e = NULL;
        must(mig_layout(MIG_GPU, one_layout, &e), e, "one-GI MIG layout");
}
static int op_mig_create(struct gv_error **err)
{
        return mig_layout(MIG_GPU, two_layout, err);
}
static int op_mig_destroy(struct gv_error **err)
{
        return mig_layout(MIG_GPU, empty_layout, err);
}
static int op_inventory(struct gv_error **err)
{
        return refresh(MIG_GPU, err);
}

static int set_mode(unsigned gpu, enum gv_gpu_mode m, struct gv_error **err)
{
        int r = refresh(gpu, err);
        return r < 0 ? r : gv_gpu_set_mode(host, &host->gpus[gpu], m, err);
}
static void base_mode_none(void)
{
        struct gv_error *e = NULL;
        must(set_mode(MODE_GPU, GV_GPU_MODE_NONE, &e), e, "mode none");
}
static int op_mode_mig(struct gv_error **err)
{
        return set_mode(MODE_GPU, GV_GPU_MODE_MIG, err);
}
static int op_mode_vgpu(struct gv_error **err)
{
        return set_mode(MODE_GPU, GV_GPU_MODE_VGPU, err);
}

static void vgpus_clear(void)
{
        struct gv_error *e = NULL;
        must(refresh(VGPU_GPU, &e), e, "refresh");
        struct gv_gpu *g = &host->gpus[VGPU_GPU];
        while (g->n_vgpus > 0) {
                char id[GV_PCI_ADDR_STR_MAX];
                snprintf(id, sizeof(id), "%s", g->vgpus[0].parent_bdf);
                must(gv_host_vgpu_destroy(host, id, &e), e, "vgpu destroy");
        }
}
static void base_no_vgpu(void)
{
        vgpus_clear();
}
static int op_vgpu_create(struct gv_error **err)
{
        char uuid[GV_UUID_STR_LEN + 1];
        int r = refresh(VGPU_GPU, err);
        return r < 0 ? r : gv_gpu_vgpu_create(host, &host->gpus[VGPU_GPU], "H100XM-20C", uuid,
                                              err);
}
static void base_one_vgpu(void)
{
        struct gv_error *e = NULL;
        vgpus_clear();
        must(op_vgpu_create(&e), e, "vgpu create");
}
static int op_vgpu_remove(struct gv_error **err)
{
        int r = refresh(VGPU_GPU, err);
        if (r < 0)
                return r;
        struct gv_gpu *g = &host->gpus[VGPU_GPU];
        if (g->n_vgpus == 0) /* a failed read hides it: the removal cannot be asked */
                return gv_error_set(err, ENOENT, "GPU %s lists no vGPU to remove", g->bdf);
        char id[GV_PCI_ADDR_STR_MAX];
        snprintf(id, sizeof(id), "%s", g->vgpus[0].parent_bdf);
        return gv_host_vgpu_destroy(host, id, err);
}
static int op_sample(struct gv_error **err)
{
        struct gv_gpu_metrics m;
        int r = gv_gpu_read_metrics(host, &host->gpus[VGPU_GPU], &m, err);
        if (r >= 0)
                gv_gpu_metrics_done(&m);
        return r;
}

struct op {
        const char *name;
        unsigned gpu;
        void (*base)(void);
        int (*run)(struct gv_error **err);
};

static const struct op ops[] = {
        { "inventory (MIG GPU with one GI)", MIG_GPU, base_one_gi, op_inventory },
        { "MIG layout create (3g.40gb + 1g.10gb)", MIG_GPU, base_empty_mig, op_mig_create },
        { "MIG layout destroy (3g.40gb -> none)", MIG_GPU, base_one_gi, op_mig_destroy },
        { "mode change none -> mig", MODE_GPU, base_mode_none, op_mode_mig },
        { "mode change none -> vgpu", MODE_GPU, base_mode_none, op_mode_vgpu },
        { "vGPU create (H100XM-20C)", VGPU_GPU, base_no_vgpu, op_vgpu_create },
        { "vGPU remove", VGPU_GPU, base_one_vgpu, op_vgpu_remove },
        { "utilization sampling (GPU with a vGPU)", VGPU_GPU, base_one_vgpu, op_sample },
};

static size_t runs, sites_total, lost_changed;
static bool full;
static size_t site_seq;

static void fail(const struct op *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const struct op *o, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        printf("# %s: ", o->name);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        failures++;
}

/* One faulty run: the code injected into the symbol (each of its versioned names), once or
 * on every call. Returns whether the operation called the symbol. */
static bool run_one(const struct op *o, const char *const *names, size_t k, bool always,
                    const char *before, const char *after)
{
        struct gv_error *e = NULL;
        bool fatal = codes[k].code == NVML_ERROR_GPU_IS_LOST ||
                     codes[k].code == NVML_ERROR_RESET_REQUIRED;
        const char *how = always ? " (every call)" : "";

        inject(names, codes[k].code, always);
        int r = o->run(&e);
        size_t left = inject_clear();
        bool called = always ? true : left < (names[1] ? 2u : 1u);
        runs++;
        _cleanup_free_ char *now = snapshot();
        if (called) {
                const char *unhealthy = host->gpus[o->gpu].unhealthy;
                if (r < 0 && (!e || !e->msg[0]))
                        fail(o, "%s=%s%s: failed (%d) without a message", names[0],
                             codes[k].name, how, r);
                /* A failed operation that met the fault leaves the GPU unhealthy. A successful
                 * one read the GPU again at its end: healthy if it answered then. */
                if (fatal && r < 0 && !unhealthy)
                        fail(o, "%s=%s%s: failed (%s) but the GPU is not marked unhealthy",
                             names[0], codes[k].name, how, gv_error_msg(e, r));
                if (!fatal && unhealthy)
                        fail(o, "%s=%s%s: the GPU is marked unhealthy: %s", names[0],
                             codes[k].name, how, unhealthy);
                if (r < 0 && strcmp(now, before) != 0) {
                        if (fatal && always && unhealthy)
                                lost_changed++; /* a lost GPU cannot be rolled back */
                        else
                                fail(o, "%s=%s%s: failed (%s) and left the hardware changed:\n"
                                     "#   before:%s\n#   now:   %s", names[0], codes[k].name,
                                     how, gv_error_msg(e, r), before, now);
                }
                if (r >= 0 && strcmp(now, after) != 0)
                        fail(o, "%s=%s%s: succeeded but the hardware is not what a clean run "
                             "leaves:\n#   after: %s\n#   now:   %s", names[0], codes[k].name,
                             how, after, now);
                if (always && fatal) {
                        /* still lost: a refresh that meets the fault marks the GPU, one that
                         * does not call the failing symbol finds it healthy */
                        inject(names, codes[k].code, true);
                        unsigned c0 = gv_nvml_fatal_count(NULL);
                        (void)refresh(o->gpu, NULL);
                        bool met = gv_nvml_fatal_count(NULL) != c0;
                        inject_clear();
                        if (met != !!host->gpus[o->gpu].unhealthy)
                                fail(o, "%s=%s%s: a refresh that %s the fault left the GPU %s",
                                     names[0], codes[k].name, how, met ? "met" : "did not meet",
                                     met ? "healthy" : "unhealthy");
                }
                /* the fault is gone: the GPU answers, so it is healthy again */
                (void)refresh(o->gpu, NULL);
                if (host->gpus[o->gpu].unhealthy)
                        fail(o, "%s=%s%s: still unhealthy after the GPU answers again: %s",
                             names[0], codes[k].name, how, host->gpus[o->gpu].unhealthy);
        }
        gv_error_free(e);
        if (strcmp(now, before) != 0)
                o->base();
        return called;
}

static bool run_op(const struct op *o, const char *before, const char *after)
{
        int f0 = failures;
        size_t sites = 0;

        o->base();
        for (size_t i = 0; i < gv_nvml_symbol_table_size; i++) {
                const char *const *names = gv_nvml_symbol_table[i].names;
                if (strcmp(names[0], "nvmlShutdown") == 0 || strcmp(names[0], "nvmlInit_v2") == 0)
                        continue; /* called at open and close only */
                /* the first code also tells whether the operation calls the symbol at all */
                if (!run_one(o, names, 0, false, before, after))
                        continue;
                site_seq++;
                sites++;
                for (size_t k = 1; k < ELEMENTSOF(codes) && failures - f0 <= 20; k++) {
                        /* The default run gives each site the two fatal codes and one other in
                         * rotation (each code meets four or five sites); GPUVIRT_FAULTS_FULL=1
                         * gives every site every code. */
                        bool fatal_k = codes[k].code == NVML_ERROR_GPU_IS_LOST ||
                                       codes[k].code == NVML_ERROR_RESET_REQUIRED;
                        if (!full && !fatal_k && (k + site_seq) % (ELEMENTSOF(codes) - 2) != 0)
                                continue;
                        run_one(o, names, k, false, before, after);
                        if (codes[k].code == NVML_ERROR_GPU_IS_LOST ||
                            codes[k].code == NVML_ERROR_RESET_REQUIRED)
                                run_one(o, names, k, true, before, after);
                }
                if (failures - f0 > 20) {
                        printf("# %s: too many failures, stopping this operation\n", o->name);
                        return false;
                }
        }
        sites_total += sites;
        site_seq += sites;
        printf("# %s: %zu NVML symbols on its path\n", o->name, sites);
        return failures == f0 && sites > 0;
}

int main(int argc, char **argv)
{
        struct gv_error *e = NULL;
        struct timespec t0, t1;
        int r;

        sim_fixture_reexec_with_kmock(argc, argv);
        full = getenv("GPUVIRT_FAULTS_FULL") && strcmp(getenv("GPUVIRT_FAULTS_FULL"), "1") == 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        printf("1..%zu\n", ELEMENTSOF(ops));
        if (sim_fixture_create("dgx-h100", &root) < 0) {
                printf("Bail out! cannot create a simulated dgx-h100\n");
                return 1;
        }
        _cleanup_free_ char *nvml = gv_path_join(root, "usr/lib/libnvidia-ml.so.1");
        struct gv_host_config cfg = { .sysfs_root = root, .nvml_library = nvml };
        r = gv_host_open(&cfg, &host, &e);
        if (r < 0)
                die("gv_host_open", r, e);
        struct gv_error *e2 = NULL;
        must(set_mode(MIG_GPU, GV_GPU_MODE_MIG, &e2), e2, "GPU 0 to mig");
        must(set_mode(VGPU_GPU, GV_GPU_MODE_VGPU, &e2), e2, "GPU 1 to vgpu");

        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                const struct op *o = &ops[i];
                o->base();
                _cleanup_free_ char *before = snapshot();
                int rr = o->run(&e2);
                if (rr < 0)
                        die(o->name, rr, e2);
                _cleanup_free_ char *after = snapshot();
                bool ok = run_op(o, before, after);
                printf("%s %d - %s: every NVML code at every symbol it calls gives an error or a "
                       "tolerated result, no leaked GI/CI/vGPU, unhealthy on GPU_IS_LOST and "
                       "RESET_REQUIRED until the GPU answers\n", ok ? "ok" : "not ok", ++tap_n,
                       o->name);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("# %s: %zu runs, %zu (operation, symbol) sites, %zu codes, %zu failed runs on a "
               "GPU lost for good left changed hardware (not rolled back: it does not answer), "
               "%.1f s\n", full ? "full matrix" : "default (GPUVIRT_FAULTS_FULL=1: every code at "
               "every site)", runs, sites_total, ELEMENTSOF(codes), lost_changed,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        gv_host_free(host);
        sim_fixture_destroy(root);
        return failures ? 1 : 0;
}
