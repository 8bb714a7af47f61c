/* SPDX-License-Identifier: MIT */
/*
 * nvml-load.c — dlopen NVML, resolve its entry points through one type-checked table, init,
 * refcount, shutdown.
 *
 * The pattern (style.md lesson 3, nvml-abi.md §1 and §11): we never link libnvidia-ml; each slot
 * in struct gv_nvml_syms is typed after our own prototype in nvml-abi.h, and SYM() below
 * static-asserts that the slot's type is exactly a pointer to that prototype (systemd's
 * DLSYM_ARG). The first name dlsym()ed is the prototype's own name (the versioned export, §1);
 * older names follow only where NVML kept the same signature and struct (nvtop's fallbacks,
 * §11). A missing required symbol makes the library unusable; a missing optional one clears a
 * capability bit and its wrappers answer -EOPNOTSUPP.
 *
 * Thread safety: a gv_nvml is used by one thread at a time (the agent serializes hardware
 * access); NVML itself is thread-safe.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hw/nvml/nvml-internal.h"
#include "util/alloc.h"

/* Short names for the table only. */
#define R true
#define O false
#define N NULL
#define NOCAP (-1)
#define MEM_V2 GV_NVML_CAP_MEMORY_V2
#define TEMP GV_NVML_CAP_TEMPERATURE
#define TEMP_V GV_NVML_CAP_TEMPERATURE_V
#define MIG GV_NVML_CAP_MIG
#define MIG_V GV_NVML_CAP_MIG_PROFILE_V
#define VGPU GV_NVML_CAP_VGPU
#define VGPU_PL GV_NVML_CAP_VGPU_PLACEMENTS
#define VGPU_HET GV_NVML_CAP_VGPU_HETEROGENEOUS

/* X(prototype, required, capability, since, older name, older name). "since" cites nvml-abi.md
 * §1 (absent from HDR120 / HDR124); N where the reference does not say. Older names only where
 * NVML kept the signature (nvml-abi.md §11, nvtop's fallbacks). */
#define NVML_SYMBOLS(X)                                                                          \
        X(nvmlInit_v2, R, NOCAP, N, "nvmlInit", N)                                                \
        X(nvmlShutdown, R, NOCAP, N, N, N)                                                        \
        X(nvmlErrorString, R, NOCAP, N, N, N)                                                     \
        X(nvmlSystemGetDriverVersion, R, NOCAP, N, N, N)                                          \
        X(nvmlSystemGetNVMLVersion, R, NOCAP, N, N, N)                                            \
        X(nvmlDeviceGetCount_v2, R, NOCAP, N, "nvmlDeviceGetCount", N)                            \
        X(nvmlDeviceGetHandleByIndex_v2, R, NOCAP, N, "nvmlDeviceGetHandleByIndex", N)            \
        X(nvmlDeviceGetHandleByPciBusId_v2, R, NOCAP, N, "nvmlDeviceGetHandleByPciBusId", N)      \
        X(nvmlDeviceGetHandleByUUID, R, NOCAP, N, N, N)                                           \
        X(nvmlDeviceGetName, R, NOCAP, N, N, N)                                                   \
        X(nvmlDeviceGetUUID, R, NOCAP, N, N, N)                                                   \
        X(nvmlDeviceGetPciInfo_v3, R, NOCAP, N, "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo")\
        X(nvmlDeviceGetMemoryInfo, R, NOCAP, N, N, N)                                             \
        X(nvmlDeviceGetUtilizationRates, R, NOCAP, N, N, N)                                       \
        X(nvmlDeviceGetPowerUsage, R, NOCAP, N, N, N)                                             \
        X(nvmlDeviceGetMemoryInfo_v2, O, MEM_V2, N, N, N)                                         \
        X(nvmlDeviceGetTemperature, O, TEMP, N, N, N)                                             \
        X(nvmlDeviceGetTemperatureV, O, TEMP_V, "NVML 13", N, N)                                  \
        X(nvmlDeviceGetMigMode, O, MIG, N, N, N)                                                  \
        X(nvmlDeviceSetMigMode, O, MIG, N, N, N)                                                  \
        X(nvmlDeviceGetGpuInstanceProfileInfo, O, MIG, N, N, N)                                   \
        X(nvmlDeviceGetGpuInstanceProfileInfoV, O, MIG_V, N, N, N)                                \
        X(nvmlDeviceGetGpuInstancePossiblePlacements_v2, O, MIG, N, N, N)                         \
        X(nvmlDeviceGetGpuInstanceRemainingCapacity, O, MIG, N, N, N)                             \
        X(nvmlDeviceCreateGpuInstance, O, MIG, N, N, N)                                           \
        X(nvmlDeviceCreateGpuInstanceWithPlacement, O, MIG, N, N, N)                              \
        X(nvmlGpuInstanceDestroy, O, MIG, N, N, N)                                                \
        X(nvmlDeviceGetGpuInstances, O, MIG, N, N, N)                                             \
        X(nvmlDeviceGetGpuInstanceById, O, MIG, N, N, N)                                          \
        X(nvmlGpuInstanceGetInfo, O, MIG, N, N, N)                                                \
        X(nvmlGpuInstanceGetComputeInstanceProfileInfo, O, MIG, N, N, N)                          \
        X(nvmlGpuInstanceGetComputeInstanceProfileInfoV, O, MIG_V, N, N, N)                       \
        X(nvmlGpuInstanceGetComputeInstanceRemainingCapacity, O, MIG, N, N, N)                    \
        X(nvmlGpuInstanceGetComputeInstancePossiblePlacements, O, MIG, N, N, N)                   \
        X(nvmlGpuInstanceCreateComputeInstance, O, MIG, N, N, N)                                  \
        X(nvmlGpuInstanceCreateComputeInstanceWithPlacement, O, MIG, N, N, N)                     \
        X(nvmlComputeInstanceDestroy, O, MIG, N, N, N)                                            \
        X(nvmlGpuInstanceGetComputeInstances, O, MIG, N, N, N)                                    \
        X(nvmlGpuInstanceGetComputeInstanceById, O, MIG, N, N, N)                                 \
        X(nvmlComputeInstanceGetInfo_v2, O, MIG, N, N, N)                                         \
        X(nvmlDeviceIsMigDeviceHandle, O, MIG, N, N, N)                                           \
        X(nvmlDeviceGetGpuInstanceId, O, MIG, N, N, N)                                            \
        X(nvmlDeviceGetComputeInstanceId, O, MIG, N, N, N)                                        \
        X(nvmlDeviceGetMaxMigDeviceCount, O, MIG, N, N, N)                                        \
        X(nvmlDeviceGetMigDeviceHandleByIndex, O, MIG, N, N, N)                                   \
        X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, O, MIG, N, N, N)                          \
        X(nvmlDeviceGetVirtualizationMode, O, VGPU, N, N, N)                                      \
        X(nvmlDeviceGetHostVgpuMode, O, VGPU, N, N, N)                                            \
        X(nvmlDeviceGetSupportedVgpus, O, VGPU, N, N, N)                                          \
        X(nvmlDeviceGetCreatableVgpus, O, VGPU, N, N, N)                                          \
        X(nvmlVgpuTypeGetName, O, VGPU, N, N, N)                                                  \
        X(nvmlVgpuTypeGetClass, O, VGPU, N, N, N)                                                 \
        X(nvmlVgpuTypeGetFramebufferSize, O, VGPU, N, N, N)                                       \
        X(nvmlVgpuTypeGetMaxInstances, O, VGPU, N, N, N)                                          \
        X(nvmlVgpuTypeGetMaxInstancesPerVm, O, VGPU, N, N, N)                                     \
        X(nvmlVgpuTypeGetGpuInstanceProfileId, O, VGPU, N, N, N)                                  \
        X(nvmlVgpuTypeGetLicense, O, VGPU, N, N, N)                                               \
        X(nvmlDeviceGetActiveVgpus, O, VGPU, N, N, N)                                             \
        X(nvmlVgpuInstanceGetUUID, O, VGPU, N, N, N)                                              \
        X(nvmlVgpuInstanceGetType, O, VGPU, N, N, N)                                              \
        X(nvmlVgpuInstanceGetFbUsage, O, VGPU, N, N, N)                                           \
        X(nvmlVgpuInstanceGetVmID, O, VGPU, N, N, N)                                              \
        X(nvmlVgpuInstanceGetGpuInstanceId, O, VGPU, N, N, N)                                     \
        X(nvmlDeviceGetVgpuUtilization, O, VGPU, N, N, N)                                         \
        X(nvmlDeviceGetVgpuSchedulerState, O, VGPU, N, N, N)                                      \
        X(nvmlDeviceGetVgpuCapabilities, O, VGPU, N, N, N)                                        \
        X(nvmlDeviceGetVgpuHeterogeneousMode, O, VGPU_HET, "NVML 12.4", N, N)                     \
        X(nvmlDeviceSetVgpuHeterogeneousMode, O, VGPU_HET, "NVML 12.4", N, N)                     \
        X(nvmlVgpuInstanceGetPlacementId, O, VGPU_PL, "NVML 12.4", N, N)                          \
        X(nvmlDeviceGetVgpuTypeSupportedPlacements, O, VGPU_PL, "NVML 12.4", N, N)                \
        X(nvmlDeviceGetVgpuTypeCreatablePlacements, O, VGPU_PL, "NVML 12.4", N, N)                \

#define ROW(fn, req, capbit, since_, older1, older2)                                             \
        { .names = { #fn, older1, older2 }, .offset = offsetof(struct gv_nvml_syms, fn),          \
          .required = (req), .cap = (capbit), .since = (since_) },
const struct gv_nvml_symbol gv_nvml_symbol_table[] = { NVML_SYMBOLS(ROW) };
const size_t gv_nvml_symbol_table_size = ELEMENTSOF(gv_nvml_symbol_table);
#undef ROW

/* The type check: each slot is exactly a pointer to its prototype in nvml-abi.h. */
#define CHECK(fn, ...)                                                                           \
        _Static_assert(__builtin_types_compatible_p(__typeof__(((struct gv_nvml_syms *)0)->fn),   \
                                                    __typeof__(&fn)),                             \
                       "slot " #fn " does not have the type of its prototype in nvml-abi.h");
NVML_SYMBOLS(CHECK)
#undef CHECK

/* Every slot has a row (a slot without one would stay NULL forever). */
#define COUNT(...) +1
_Static_assert(sizeof(struct gv_nvml_syms) == (0 NVML_SYMBOLS(COUNT)) * sizeof(void *),
               "struct gv_nvml_syms and the symbol table differ");
#undef COUNT

static void *resolve(void *dl, const struct gv_nvml_symbol *s)
{
        for (size_t i = 0; i < ELEMENTSOF(s->names) && s->names[i]; i++) {
                void *p = dlsym(dl, s->names[i]);
                if (p)
                        return p;
        }
        return NULL;
}

/* Fill the slots; clear the capability bits of missing optional symbols. -ELIBBAD naming the
 * first missing required symbol. */
static int resolve_all(struct gv_nvml *n, struct gv_error **err)
{
        const char *first_missing = NULL;
        size_t n_missing = 0;

        n->caps = (1u << _GV_NVML_CAP_MAX) - 1;
        for (size_t i = 0; i < gv_nvml_symbol_table_size; i++) {
                const struct gv_nvml_symbol *s = &gv_nvml_symbol_table[i];
                void *p = resolve(n->dl, s);

                memcpy((char *)&n->sym + s->offset, &p, sizeof(p));
                if (p)
                        continue;
                if (s->required) {
                        if (!first_missing)
                                first_missing = s->names[0];
                        n_missing++;
                } else if (s->cap >= 0)
                        n->caps &= ~(1u << s->cap);
        }

        if (first_missing) {
                if (n_missing > 1)
                        return gv_error_set(err, ELIBBAD,
                                            "NVML library '%s' does not export the required "
                                            "symbol '%s' (and %zu more): it is not a usable "
                                            "NVML; install the NVIDIA driver's libnvidia-ml or "
                                            "point the NVML library setting at it.",
                                            n->path, first_missing, n_missing - 1);
                return gv_error_set(err, ELIBBAD,
                                    "NVML library '%s' does not export the required symbol "
                                    "'%s': it is not a usable NVML; install the NVIDIA driver's "
                                    "libnvidia-ml or point the NVML library setting at it.",
                                    n->path, first_missing);
        }
        return 0;
}

static int load(const char *path, void **ret_dl, struct gv_error **err)
{
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                const char *e = dlerror();
                bool is_path = strchr(path, '/') != NULL;

                if (is_path && access(path, F_OK) >= 0)
                        return gv_error_set(err, ELIBACC,
                                            "NVML library '%s' exists but could not be loaded "
                                            "(%s): it is damaged or built for another "
                                            "architecture; GPU inventory from sysfs still works, "
                                            "MIG and vGPU management need NVML.",
                                            path, e ? e : "unknown dlopen error");
                return gv_error_set(err, ENOENT,
                                    "NVML library '%s' not found (%s): NVIDIA driver not "
                                    "installed or not in the library path; GPU inventory from "
                                    "sysfs still works, MIG and vGPU management need NVML.",
                                    path, e ? e : "unknown dlopen error");
        }
        *ret_dl = dl;
        return 0;
}

static void nvml_free(struct gv_nvml *n)
{
        for (size_t i = 0; i < n->n_devices; i++)
                free(n->devices[i]);
        free(n->devices);
        if (n->dl)
                (void)dlclose(n->dl);
        free(n->path);
        free(n);
}

int gv_nvml_open(const char *path, struct gv_nvml **ret, struct gv_error **err)
{
        static const char *const defaults[] = { GV_NVML_SONAME, GV_NVML_SONAME_DEV };
        struct gv_nvml *n = xnew0(struct gv_nvml, 1);
        nvmlReturn_t rc;
        int r;

        n->n_ref = 1;
        if (path) {
                r = load(path, &n->dl, err);
                if (r < 0)
                        goto fail;
                n->path = xstrdup(path);
        } else {
                /* Report the first (the soname the driver installs), as that is what is missing. */
                _cleanup_(gv_error_freep) struct gv_error *first = NULL;

                r = -ENOENT;
                for (size_t i = 0; i < ELEMENTSOF(defaults) && !n->dl; i++) {
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

                        r = load(defaults[i], &n->dl, &e);
                        if (r >= 0)
                                n->path = xstrdup(defaults[i]);
                        else if (!first)
                                first = TAKE_PTR(e);
                }
                if (!n->dl) {
                        r = -first->code;
                        gv_error_propagate(err, TAKE_PTR(first));
                        goto fail;
                }
        }

        r = resolve_all(n, err);
        if (r < 0)
                goto fail;

        rc = n->sym.nvmlInit_v2();
        if (rc != NVML_SUCCESS) {
                r = nvml_fail(n, rc, err, "nvmlInit_v2", "%s", "");
                r = gv_error_wrap(err, r, "NVML library '%s' failed to initialize", n->path);
                goto fail;
        }

        *ret = n;
        return 0;
fail:
        nvml_free(n);
        return r;
}

struct gv_nvml *gv_nvml_ref(struct gv_nvml *n)
{
        if (n)
                n->n_ref++;
        return n;
}

struct gv_nvml *gv_nvml_unref(struct gv_nvml *n)
{
        if (!n)
                return NULL;
        if (--n->n_ref > 0)
                return NULL;
        /* Nothing to do with a failing shutdown: the library is about to be unloaded. */
        (void)n->sym.nvmlShutdown();
        nvml_free(n);
        return NULL;
}

bool gv_nvml_has(const struct gv_nvml *n, enum gv_nvml_cap c)
{
        if (!n || (int)c < 0 || c >= _GV_NVML_CAP_MAX)
                return false;
        return n->caps & (1u << c);
}

const char *gv_nvml_library_path(const struct gv_nvml *n)
{
        return n->path;
}

struct gv_nvml_device *nvml_device_get(struct gv_nvml *n, nvmlDevice_t h, bool is_mig,
                                       const char *label)
{
        for (size_t i = 0; i < n->n_devices; i++)
                if (n->devices[i]->handle == h)
                        return n->devices[i];

        struct gv_nvml_device *d = xnew0(struct gv_nvml_device, 1);
        d->nvml = n;
        d->handle = h;
        d->is_mig = is_mig;
        (void)snprintf(d->label, sizeof(d->label), "%s", label);

        n->devices = xreallocarray(n->devices, n->n_devices + 1, sizeof(*n->devices));
        n->devices[n->n_devices++] = d;
        return d;
}
