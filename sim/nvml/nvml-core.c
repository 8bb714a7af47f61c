/* SPDX-License-Identifier: MIT */
/*
 * nvml-core.c — what every simulated NVML call shares: finding the host, locking and reading
 * its state, error injection, the init refcount, handles and GPU visibility.
 *
 * ROOT is $GPUVIRT_SIM_ROOT when set, else found from the library's own path (dladdr): the
 * library is reached through ROOT/usr/lib/libnvidia-ml.so.1, so walking up from dli_fname
 * finds ROOT/gpuvirt-sim/state.json. The state is re-read under a shared flock on every call,
 * so every process sees one GPU; calls that change it take the exclusive lock and commit.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvml-sim.h"
#include "util/alloc.h"
#include "util/fileio.h"

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned init_count;
static char *init_root; /* ROOT as found by nvmlInit, until the last nvmlShutdown */

static struct nvmlDevice_st dev_h[SIM_MAX_GPUS];
static struct nvmlDevice_st mig_h[SIM_MAX_GPUS][NVSIM_GI_IDS][NVSIM_CI_IDS];
static struct nvmlGpuInstance_st gi_h[SIM_MAX_GPUS][NVSIM_GI_IDS];
static struct nvmlComputeInstance_st ci_h[SIM_MAX_GPUS][NVSIM_GI_IDS][NVSIM_CI_IDS];

__attribute__((constructor)) static void handles_init(void)
{
        for (uint32_t g = 0; g < SIM_MAX_GPUS; g++) {
                dev_h[g] = (struct nvmlDevice_st){ .kind = NVSIM_DEV, .gpu = g };
                for (uint32_t i = 0; i < NVSIM_GI_IDS; i++) {
                        gi_h[g][i] = (struct nvmlGpuInstance_st){ .gpu = g, .gi = i };
                        for (uint32_t c = 0; c < NVSIM_CI_IDS; c++) {
                                mig_h[g][i][c] = (struct nvmlDevice_st){
                                        .kind = NVSIM_MIG_DEV, .gpu = g, .gi = i, .ci = c
                                };
                                ci_h[g][i][c] = (struct nvmlComputeInstance_st){ .gpu = g,
                                                                                 .gi = i,
                                                                                 .ci = c };
                        }
                }
        }
}

/* The library may be dlclose()d: give back what the process-wide caches hold. */
__attribute__((destructor)) static void nvsim_fini(void)
{
        sim_state_cache_free();
        pthread_mutex_lock(&init_lock);
        init_root = (free(init_root), NULL);
        pthread_mutex_unlock(&init_lock);
}

static bool in_array(const void *p, const void *base, size_t bytes, size_t elem)
{
        uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
        return p && a >= b && a < b + bytes && (a - b) % elem == 0;
}

nvmlDevice_t nvsim_dev_handle(uint32_t gpu)
{
        return gpu < SIM_MAX_GPUS ? &dev_h[gpu] : NULL;
}

nvmlDevice_t nvsim_mig_handle(uint32_t gpu, uint32_t gi, uint32_t ci)
{
        return gpu < SIM_MAX_GPUS && gi < NVSIM_GI_IDS && ci < NVSIM_CI_IDS ? &mig_h[gpu][gi][ci]
                                                                            : NULL;
}

nvmlGpuInstance_t nvsim_gi_handle(uint32_t gpu, uint32_t gi)
{
        return gpu < SIM_MAX_GPUS && gi < NVSIM_GI_IDS ? &gi_h[gpu][gi] : NULL;
}

nvmlComputeInstance_t nvsim_ci_handle(uint32_t gpu, uint32_t gi, uint32_t ci)
{
        return gpu < SIM_MAX_GPUS && gi < NVSIM_GI_IDS && ci < NVSIM_CI_IDS ? &ci_h[gpu][gi][ci]
                                                                            : NULL;
}

int nvsim_dev_gpu(nvmlDevice_t d)
{
        if (in_array(d, dev_h, sizeof(dev_h), sizeof(dev_h[0])) ||
            in_array(d, mig_h, sizeof(mig_h), sizeof(struct nvmlDevice_st)))
                return (int)d->gpu;
        return -1;
}

int nvsim_gi_gpu(nvmlGpuInstance_t gi)
{
        if (in_array(gi, gi_h, sizeof(gi_h), sizeof(struct nvmlGpuInstance_st)))
                return (int)gi->gpu;
        return -1;
}

int nvsim_ci_gpu(nvmlComputeInstance_t ci)
{
        if (in_array(ci, ci_h, sizeof(ci_h), sizeof(struct nvmlComputeInstance_st)))
                return (int)ci->gpu;
        return -1;
}

/* ---- host discovery ------------------------------------------------------------------------ */

static char *root_find(void)
{
        const char *e = getenv("GPUVIRT_SIM_ROOT");
        if (e && *e)
                return xstrdup(e);

        Dl_info info;
        if (dladdr((void *)&handles_init, &info) == 0 || !info.dli_fname)
                return NULL;
        char *root = NULL;
        if (sim_root_of_path(info.dli_fname, &root) < 0)
                return NULL;
        return root;
}

/* The root for this call: the one nvmlInit found while initialized, else a fresh look. */
static char *root_current(bool *ret_initialized)
{
        char *root = NULL;
        pthread_mutex_lock(&init_lock);
        *ret_initialized = init_count > 0;
        if (init_root)
                root = xstrdup(init_root);
        pthread_mutex_unlock(&init_lock);
        return root ? root : root_find();
}

void nvsim_call_done(struct nvsim_call *c)
{
        c->s = sim_state_unlock(c->s);
}

static nvmlReturn_t inject(struct nvsim_call *c, const char *root, int gpu)
{
        bool once = false;
        int code = sim_inject_peek(c->s, c->name, gpu, NULL, &once);
        if (!code)
                return NVML_SUCCESS;
        if (once) {
                /* Consume it under the exclusive lock; another process may have taken it
                 * meanwhile, then the call goes on normally. */
                if (!c->s->exclusive) {
                        c->s = sim_state_unlock(c->s);
                        if (sim_state_lock(root, SIM_LOCK_EXCLUSIVE, &c->s, NULL) < 0)
                                return NVML_ERROR_UNKNOWN;
                }
                code = sim_inject_take(c->s, c->name, gpu, NULL);
                if (code && sim_state_commit(c->s, NULL) < 0)
                        return NVML_ERROR_UNKNOWN;
        }
        return (nvmlReturn_t)code;
}

static nvmlReturn_t begin_common(struct nvsim_call *c, const char *name, int gpu, bool exclusive,
                                 bool is_init)
{
        bool initialized;
        _cleanup_free_ char *root = root_current(&initialized);

        c->name = name;
        c->s = NULL;
        if (!root)
                return is_init ? NVML_ERROR_DRIVER_NOT_LOADED : NVML_ERROR_UNINITIALIZED;
        if (sim_state_lock(root, exclusive ? SIM_LOCK_EXCLUSIVE : SIM_LOCK_SHARED, &c->s, NULL) <
            0) {
                if (is_init)
                        return NVML_ERROR_DRIVER_NOT_LOADED;
                return initialized ? NVML_ERROR_UNKNOWN : NVML_ERROR_UNINITIALIZED;
        }
        nvmlReturn_t r = inject(c, root, gpu);
        if (r != NVML_SUCCESS)
                return r;
        if (!is_init && !initialized)
                return NVML_ERROR_UNINITIALIZED;
        return NVML_SUCCESS;
}

nvmlReturn_t nvsim_begin(struct nvsim_call *c, const char *name, int gpu, bool exclusive)
{
        return begin_common(c, name, gpu, exclusive, false);
}

nvmlReturn_t nvsim_commit(struct nvsim_call *c)
{
        return sim_state_commit(c->s, NULL) < 0 ? NVML_ERROR_UNKNOWN : NVML_SUCCESS;
}

/* ---- visibility ------------------------------------------------------------------------------ */

bool nvsim_gpu_visible(const struct sim_state *s, const struct sim_gpu *g)
{
        _cleanup_free_ char *link = gv_path_join(s->root, "sys/bus/pci/devices", g->bdf, "driver");
        _cleanup_free_ char *drv = NULL;
        return gv_readlink_basename(link, &drv) >= 0 && strcmp(drv, "nvidia") == 0;
}

size_t nvsim_visible(struct sim_state *s, struct sim_gpu **out, size_t max)
{
        size_t n = 0;
        /* s->gpus is in PCI order (sim_state_new sorts it; index follows). */
        for (size_t i = 0; i < s->n_gpus; i++)
                if (nvsim_gpu_visible(s, &s->gpus[i])) {
                        if (n < max)
                                out[n] = &s->gpus[i];
                        n++;
                }
        return n;
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

void nvsim_mig_uuid(const struct sim_gpu *g, uint32_t gi, uint32_t ci, char *buf, size_t n)
{
        char key[96];
        snprintf(key, sizeof(key), "%s/%u/%u", g->uuid, gi, ci);
        uint64_t a = fnv1a(key, 0xcbf29ce484222325ULL);
        uint64_t b = fnv1a(key, 0x6c62272e07bb0142ULL);
        snprintf(buf, n, "MIG-%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
                 (unsigned long long)(b & 0xffffffffffffULL));
}

double nvsim_now(void)
{
        return sim_now();
}

nvmlReturn_t nvsim_put_string(const char *src, char *dst, unsigned int length)
{
        size_t l = strlen(src);
        if (!dst)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (l + 1 > length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(dst, src, l + 1);
        return NVML_SUCCESS;
}

/* ---- init ------------------------------------------------------------------------------------ */

nvmlReturn_t nvmlInit_v2(void)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = begin_common(&c, __func__, -1, false, true);
        if (r != NVML_SUCCESS)
                return r;

        pthread_mutex_lock(&init_lock);
        if (init_count++ == 0) {
                free(init_root);
                init_root = xstrdup(c.s->root);
        }
        pthread_mutex_unlock(&init_lock);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS && r != NVML_ERROR_UNKNOWN)
                return r;

        pthread_mutex_lock(&init_lock);
        if (init_count == 0)
                r = NVML_ERROR_UNINITIALIZED;
        else {
                r = NVML_SUCCESS;
                if (--init_count == 0)
                        init_root = (free(init_root), NULL);
        }
        pthread_mutex_unlock(&init_lock);
        return r;
}

/* ---- handle-based call prologues ------------------------------------------------------------- */

static nvmlReturn_t gpu_check(struct nvsim_call *c, int gpu, struct sim_gpu **ret_g)
{
        struct sim_gpu *g = gpu >= 0 ? sim_gpu_by_index(c->s, (uint32_t)gpu) : NULL;
        if (!g)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* Unbound from nvidia (e.g. now on vfio-pci) or fallen off the bus. */
        if (g->lost || !nvsim_gpu_visible(c->s, g))
                return NVML_ERROR_GPU_IS_LOST;
        *ret_g = g;
        return NVML_SUCCESS;
}

nvmlReturn_t nvsim_dev_begin(struct nvsim_call *c, const char *name, nvmlDevice_t d,
                             bool exclusive, bool mig_ok, struct sim_gpu **ret_g)
{
        int gpu = nvsim_dev_gpu(d);
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_begin(c, name, gpu, exclusive);
        if (r != NVML_SUCCESS)
                return r;
        if ((r = gpu_check(c, gpu, &g)) != NVML_SUCCESS)
                return r;
        if (d->kind == NVSIM_MIG_DEV) {
                if (!mig_ok)
                        return NVML_ERROR_NOT_SUPPORTED;
                struct sim_gi *gi = g->mig_current == NVML_DEVICE_MIG_ENABLE
                                            ? sim_gi_by_id(g, d->gi)
                                            : NULL;
                if (!gi || !sim_ci_by_id(gi, d->ci))
                        return NVML_ERROR_INVALID_ARGUMENT;
        }
        *ret_g = g;
        return NVML_SUCCESS;
}

nvmlReturn_t nvsim_gi_begin(struct nvsim_call *c, const char *name, nvmlGpuInstance_t h,
                            bool exclusive, struct sim_gpu **ret_g, struct sim_gi **ret_gi)
{
        int gpu = nvsim_gi_gpu(h);
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_begin(c, name, gpu, exclusive);
        if (r != NVML_SUCCESS)
                return r;
        if ((r = gpu_check(c, gpu, &g)) != NVML_SUCCESS)
                return r;
        /* "If the parent device is unbound, reset or the GPU instance is destroyed
         * explicitly, the GPU instance handle would become invalid" (nvml-abi.md §7.5). */
        struct sim_gi *gi = g->mig_current == NVML_DEVICE_MIG_ENABLE ? sim_gi_by_id(g, h->gi)
                                                                     : NULL;
        if (!gi)
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret_g = g;
        *ret_gi = gi;
        return NVML_SUCCESS;
}

nvmlReturn_t nvsim_ci_begin(struct nvsim_call *c, const char *name, nvmlComputeInstance_t h,
                            bool exclusive, struct sim_gpu **ret_g, struct sim_gi **ret_gi,
                            struct sim_ci **ret_ci)
{
        int gpu = nvsim_ci_gpu(h);
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_begin(c, name, gpu, exclusive);
        if (r != NVML_SUCCESS)
                return r;
        if ((r = gpu_check(c, gpu, &g)) != NVML_SUCCESS)
                return r;
        struct sim_gi *gi = g->mig_current == NVML_DEVICE_MIG_ENABLE ? sim_gi_by_id(g, h->gi)
                                                                     : NULL;
        struct sim_ci *ci = gi ? sim_ci_by_id(gi, h->ci) : NULL;
        if (!ci)
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret_g = g;
        *ret_gi = gi;
        *ret_ci = ci;
        return NVML_SUCCESS;
}

const struct gv_vgpu_type *nvsim_vgpu_type(const struct sim_state *s, uint32_t type_id)
{
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct gv_vgpu_type *t = sim_gpu_vgpu_type(&s->gpus[i], type_id);
                if (t)
                        return t;
        }
        return NULL;
}
