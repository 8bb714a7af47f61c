/* SPDX-License-Identifier: MIT */
/*
 * test-sim-nvml — the NVML simulator (sim/nvml, libnvidia-ml.so.1) loaded with dlopen, against
 * simulated hosts made in temporary directories with sim_host_create(). Asserts NVML
 * semantics the hardware layer relies on (nvml-abi.md, mig.md, vgpu.md): exports, init
 * refcount, discovery by dladdr, device identity, vfio-pci GPUs invisible, profile index vs
 * id, placements, overlap, MIG off, GI destroy with CIs, the count protocol, the equal-size
 * rule, mixed-size mode, injection once/always, one state shared by two processes, the load
 * model.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/sim-state.h"
#include "hw/nvml/nvml-abi.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/fileio.h"

#ifndef SIM_NVML_LIB
#error "SIM_NVML_LIB must name the built libnvidia-ml.so.1"
#endif

/* Every function of nvml-abi.h, resolved from the library. */
#define NVML_FUNCS(X)                                                                          \
        X(nvmlInit_v2) X(nvmlShutdown) X(nvmlErrorString) X(nvmlSystemGetDriverVersion)        \
        X(nvmlSystemGetNVMLVersion) X(nvmlDeviceGetCount_v2) X(nvmlDeviceGetHandleByIndex_v2)  \
        X(nvmlDeviceGetHandleByPciBusId_v2) X(nvmlDeviceGetHandleByUUID) X(nvmlDeviceGetName)  \
        X(nvmlDeviceGetUUID) X(nvmlDeviceGetPciInfo_v3) X(nvmlDeviceGetMemoryInfo)             \
        X(nvmlDeviceGetMemoryInfo_v2) X(nvmlDeviceGetUtilizationRates)                         \
        X(nvmlDeviceGetTemperature) X(nvmlDeviceGetTemperatureV) X(nvmlDeviceGetPowerUsage)    \
        X(nvmlDeviceGetMigMode) X(nvmlDeviceSetMigMode) X(nvmlDeviceGetGpuInstanceProfileInfo) \
        X(nvmlDeviceGetGpuInstanceProfileInfoV)                                                \
        X(nvmlDeviceGetGpuInstancePossiblePlacements_v2)                                       \
        X(nvmlDeviceGetGpuInstanceRemainingCapacity) X(nvmlDeviceCreateGpuInstance)            \
        X(nvmlDeviceCreateGpuInstanceWithPlacement) X(nvmlGpuInstanceDestroy)                  \
        X(nvmlDeviceGetGpuInstances) X(nvmlDeviceGetGpuInstanceById) X(nvmlGpuInstanceGetInfo) \
        X(nvmlGpuInstanceGetComputeInstanceProfileInfo)                                        \
        X(nvmlGpuInstanceGetComputeInstanceProfileInfoV)                                       \
        X(nvmlGpuInstanceGetComputeInstanceRemainingCapacity)                                  \
        X(nvmlGpuInstanceGetComputeInstancePossiblePlacements)                                 \
        X(nvmlGpuInstanceCreateComputeInstance)                                                \
        X(nvmlGpuInstanceCreateComputeInstanceWithPlacement) X(nvmlComputeInstanceDestroy)     \
        X(nvmlGpuInstanceGetComputeInstances) X(nvmlGpuInstanceGetComputeInstanceById)         \
        X(nvmlComputeInstanceGetInfo_v2) X(nvmlDeviceIsMigDeviceHandle)                        \
        X(nvmlDeviceGetGpuInstanceId) X(nvmlDeviceGetComputeInstanceId)                        \
        X(nvmlDeviceGetMaxMigDeviceCount) X(nvmlDeviceGetMigDeviceHandleByIndex)               \
        X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle) X(nvmlDeviceGetVirtualizationMode)     \
        X(nvmlDeviceGetHostVgpuMode) X(nvmlDeviceGetSupportedVgpus)                            \
        X(nvmlDeviceGetCreatableVgpus) X(nvmlVgpuTypeGetName) X(nvmlVgpuTypeGetClass)          \
        X(nvmlVgpuTypeGetFramebufferSize) X(nvmlVgpuTypeGetMaxInstances)                       \
        X(nvmlVgpuTypeGetMaxInstancesPerVm) X(nvmlVgpuTypeGetGpuInstanceProfileId)             \
        X(nvmlVgpuTypeGetLicense) X(nvmlDeviceGetActiveVgpus) X(nvmlVgpuInstanceGetUUID)       \
        X(nvmlVgpuInstanceGetType) X(nvmlVgpuInstanceGetFbUsage) X(nvmlVgpuInstanceGetVmID)    \
        X(nvmlVgpuInstanceGetGpuInstanceId) X(nvmlDeviceGetVgpuUtilization)                    \
        X(nvmlDeviceGetVgpuSchedulerState) X(nvmlDeviceGetVgpuHeterogeneousMode)               \
        X(nvmlDeviceSetVgpuHeterogeneousMode) X(nvmlVgpuInstanceGetPlacementId)                \
        X(nvmlDeviceGetVgpuTypeSupportedPlacements)                                            \
        X(nvmlDeviceGetVgpuTypeCreatablePlacements) X(nvmlDeviceGetVgpuCapabilities)

static struct {
        void *dl;
#define X(f) __typeof__(f) *f;
        NVML_FUNCS(X)
#undef X
} n;

static const char *const nvml_names[] = {
#define X(f) #f,
        NVML_FUNCS(X)
#undef X
};

static void *open_lib(const char *path)
{
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl)
                fail_msg("dlopen('%s'): %s", path, dlerror());
#define X(f)                                                                          \
        n.f = (__typeof__(f) *)dlsym(dl, #f);                                         \
        if (!n.f)                                                                     \
                fail_msg("'%s' does not export '%s'", path, #f);
        NVML_FUNCS(X)
#undef X
        return dl;
}

static char *make_host(const char *profile)
{
        char tmpl[] = "/tmp/gv-sim-nvml-XXXXXX";
        char *dir = mkdtemp(tmpl);
        assert_non_null(dir);
        char *root = gv_path_join(dir, "host");
        struct gv_error *err = NULL;
        int r = sim_host_create(root, profile, SIM_NVML_LIB, &err);
        if (r < 0)
                fail_msg("sim_host_create(%s): %s", profile, gv_error_msg(err, r));
        return root;
}

static void drop_host(char *root)
{
        char *dir = xstrdup(root);
        *strrchr(dir, '/') = '\0';
        (void)gv_rm_rf(dir);
        free(dir);
        free(root);
}

/* Creating a host writes thousands of sysfs files, so each group makes one host and every
 * test starts from its initial state (state.json restored, the tree re-synced, the first GPU's
 * driver link put back). */
struct group {
        char *root;
        char *initial_state;
        char *driver_target; /* of the first GPU */
        char *first_bdf;
};
static struct group grp_h100, grp_mixed;

static int group_setup(struct group *gr, const char *profile)
{
        gr->root = make_host(profile);
        char *state = gv_path_join(gr->root, "gpuvirt-sim/state.json");
        assert_int_equal(gv_read_file(state, 1u << 22, &gr->initial_state, NULL), 0);
        free(state);
        struct sim_state *s = NULL;
        assert_int_equal(sim_state_lock(gr->root, SIM_LOCK_SHARED, &s, NULL), 0);
        gr->first_bdf = xstrdup(s->gpus[0].bdf);
        sim_state_unlock(s);
        char *link = gv_path_join(gr->root, "sys/bus/pci/devices", gr->first_bdf, "driver");
        assert_int_equal(gv_readlink(link, &gr->driver_target), 0);
        free(link);
        return 0;
}

static int group_teardown(struct group *gr)
{
        drop_host(gr->root);
        free(gr->initial_state);
        free(gr->driver_target);
        free(gr->first_bdf);
        return 0;
}

static int group_setup_h100(void **state)
{
        (void)state;
        return group_setup(&grp_h100, "dgx-h100");
}

static int group_teardown_h100(void **state)
{
        (void)state;
        return group_teardown(&grp_h100);
}

static int group_setup_mixed(void **state)
{
        (void)state;
        return group_setup(&grp_mixed, "mixed");
}

static int group_teardown_mixed(void **state)
{
        (void)state;
        return group_teardown(&grp_mixed);
}

static struct sim_state *lock_x(const char *root);
static void commit_unlock(struct sim_state *s);

static void restore(struct group *gr)
{
        char *link = gv_path_join(gr->root, "sys/bus/pci/devices", gr->first_bdf, "driver");
        (void)unlink(link);
        assert_int_equal(symlink(gr->driver_target, link), 0);
        free(link);

        struct sim_state *s = lock_x(gr->root);
        char *state = gv_path_join(gr->root, "gpuvirt-sim/state.json");
        assert_int_equal(gv_write_file(state, gr->initial_state,
                                       GV_WRITE_CREATE | GV_WRITE_ATOMIC),
                         0);
        free(state);
        sim_state_unlock(s);
        /* Re-sync the dynamic sysfs files from the restored state. */
        commit_unlock(lock_x(gr->root));
}

/* Each test: the group's host in its initial state, named by $GPUVIRT_SIM_ROOT, NVML
 * initialized. */
static int setup_host(void **state, struct group *gr)
{
        restore(gr);
        setenv("GPUVIRT_SIM_ROOT", gr->root, 1);
        n.dl = open_lib(SIM_NVML_LIB);
        assert_int_equal(n.nvmlInit_v2(), NVML_SUCCESS);
        *state = gr->root;
        return 0;
}

static int setup_h100(void **state)
{
        return setup_host(state, &grp_h100);
}

static int setup_mixed(void **state)
{
        return setup_host(state, &grp_mixed);
}

static int teardown_host(void **state)
{
        (void)state;
        assert_int_equal(n.nvmlShutdown(), NVML_SUCCESS);
        dlclose(n.dl);
        unsetenv("GPUVIRT_SIM_ROOT");
        return 0;
}

static struct sim_state *lock_x(const char *root)
{
        struct sim_state *s = NULL;
        struct gv_error *err = NULL;
        int r = sim_state_lock(root, SIM_LOCK_EXCLUSIVE, &s, &err);
        if (r < 0)
                fail_msg("sim_state_lock: %s", gv_error_msg(err, r));
        return s;
}

static void commit_unlock(struct sim_state *s)
{
        struct gv_error *err = NULL;
        int r = sim_state_commit(s, &err);
        if (r < 0)
                fail_msg("sim_state_commit: %s", gv_error_msg(err, r));
        sim_state_unlock(s);
}

static nvmlDevice_t dev(unsigned i)
{
        nvmlDevice_t d = NULL;
        assert_int_equal(n.nvmlDeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS);
        return d;
}

/* ---- exports and init ---------------------------------------------------------------------- */

static void test_exports(void **state)
{
        (void)state;
        void *dl = dlopen(SIM_NVML_LIB, RTLD_NOW | RTLD_LOCAL);
        assert_non_null(dl);
        for (size_t i = 0; i < ELEMENTSOF(nvml_names); i++)
                if (!dlsym(dl, nvml_names[i]))
                        fail_msg("missing export '%s'", nvml_names[i]);
        /* Unversioned aliases are not exported: the binding must ask for the versioned names
         * (nvml-abi.md §1), and nothing of the simulator's internals leaks. */
        static const char *const absent[] = {
                "nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex",
                "nvmlDeviceGetPciInfo", "nvmlDeviceGetHandleByPciBusId",
                "nvmlComputeInstanceGetInfo", "nvmlDeviceGetGpuInstancePossiblePlacements",
                "sim_state_lock", "gv_error_set", "nvsim_begin", "gv_catalog_load_dir",
        };
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                if (dlsym(dl, absent[i]))
                        fail_msg("'%s' must not be exported", absent[i]);
        dlclose(dl);
}

static void test_init_refcount(void **state)
{
        (void)state;
        restore(&grp_h100);
        setenv("GPUVIRT_SIM_ROOT", grp_h100.root, 1);
        n.dl = open_lib(SIM_NVML_LIB);
        unsigned count = 0;

        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(n.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(n.nvmlInit_v2(), NVML_SUCCESS);
        assert_int_equal(n.nvmlInit_v2(), NVML_SUCCESS);
        assert_int_equal(n.nvmlShutdown(), NVML_SUCCESS);
        /* Still initialized: one reference left. */
        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
        assert_int_equal(count, 8);
        assert_int_equal(n.nvmlShutdown(), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
        assert_int_equal(n.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);

        /* No host at all: the driver is "not loaded". */
        setenv("GPUVIRT_SIM_ROOT", "/nonexistent/gpuvirt-host", 1);
        assert_int_equal(n.nvmlInit_v2(), NVML_ERROR_DRIVER_NOT_LOADED);

        dlclose(n.dl);
        unsetenv("GPUVIRT_SIM_ROOT");
}

/* Without $GPUVIRT_SIM_ROOT the library finds the host from its own path (dladdr on
 * ROOT/usr/lib/libnvidia-ml.so.1). In a child, so the library is loaded fresh by that path. */
static void test_discovery_by_path(void **state)
{
        (void)state;
        restore(&grp_h100);
        char *link = gv_path_join(grp_h100.root, "usr/lib/libnvidia-ml.so.1");
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                unsetenv("GPUVIRT_SIM_ROOT");
                void *dl = dlopen(link, RTLD_NOW | RTLD_LOCAL);
                if (!dl)
                        _exit(10);
                __typeof__(nvmlInit_v2) *init = (__typeof__(nvmlInit_v2) *)dlsym(dl,
                                                                                  "nvmlInit_v2");
                __typeof__(nvmlDeviceGetCount_v2) *cnt =
                        (__typeof__(nvmlDeviceGetCount_v2) *)dlsym(dl, "nvmlDeviceGetCount_v2");
                unsigned c = 0;
                if (init() != NVML_SUCCESS)
                        _exit(11);
                if (cnt(&c) != NVML_SUCCESS)
                        _exit(12);
                _exit(c == 8 ? 0 : 13);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        free(link);
}

/* ---- devices --------------------------------------------------------------------------------- */

static void test_device_identity(void **state)
{
        (void)state;
        unsigned count = 0;
        char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
        nvmlPciInfo_t pci;
        nvmlDevice_t d0 = dev(0), d1 = dev(1), h = NULL;

        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
        assert_int_equal(count, 8);
        assert_int_equal(n.nvmlDeviceGetHandleByIndex_v2(8, &h), NVML_ERROR_INVALID_ARGUMENT);
        assert_ptr_not_equal(d0, d1);

        assert_int_equal(n.nvmlDeviceGetName(d0, buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "NVIDIA H100 80GB HBM3");
        assert_int_equal(n.nvmlDeviceGetName(d0, buf, 5), NVML_ERROR_INSUFFICIENT_SIZE);

        assert_int_equal(n.nvmlDeviceGetUUID(d0, uuid, sizeof(uuid)), NVML_SUCCESS);
        assert_true(strncmp(uuid, "GPU-", 4) == 0);
        assert_int_equal(strlen(uuid), 40);
        assert_int_equal(n.nvmlDeviceGetUUID(d0, buf, 10), NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(n.nvmlDeviceGetHandleByUUID(uuid, &h), NVML_SUCCESS);
        assert_ptr_equal(h, d0);
        assert_int_equal(n.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000",
                                                     &h),
                         NVML_ERROR_NOT_FOUND);

        /* PCI order: the first GPU of dgx-h100 is 0000:18:00.0. */
        assert_int_equal(n.nvmlDeviceGetPciInfo_v3(d0, &pci), NVML_SUCCESS);
        assert_string_equal(pci.busId, "00000000:18:00.0");
        assert_string_equal(pci.busIdLegacy, "0000:18:00.0");
        assert_int_equal(pci.bus, 0x18);
        assert_int_equal(pci.pciDeviceId & 0xffff, 0x10de);

        static const char *const forms[] = { "0000:18:00.0", "00000000:18:00.0", "18:00.0",
                                             "0000:18:00" };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                h = NULL;
                assert_int_equal(n.nvmlDeviceGetHandleByPciBusId_v2(forms[i], &h), NVML_SUCCESS);
                assert_ptr_equal(h, d0);
        }
        assert_int_equal(n.nvmlDeviceGetHandleByPciBusId_v2("0000:77:00.0", &h),
                         NVML_ERROR_NOT_FOUND);
        assert_int_equal(n.nvmlDeviceGetHandleByPciBusId_v2("garbage", &h),
                         NVML_ERROR_INVALID_ARGUMENT);

        /* A pointer that is no handle. */
        int bogus;
        assert_int_equal(n.nvmlDeviceGetName((nvmlDevice_t)(void *)&bogus, buf, sizeof(buf)),
                         NVML_ERROR_INVALID_ARGUMENT);

        char ver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        assert_int_equal(n.nvmlSystemGetDriverVersion(ver, sizeof(ver)), NVML_SUCCESS);
        assert_true(strlen(ver) > 0);
        assert_int_equal(n.nvmlSystemGetDriverVersion(ver, 2), NVML_ERROR_INSUFFICIENT_SIZE);
}

/* A GPU bound to vfio-pci is invisible to NVML, as on a real host. */
static void test_vfio_gpu_invisible(void **state)
{
        const char *root = *state;
        nvmlDevice_t d0 = dev(0), h;
        unsigned count = 0;
        char name[96];

        char *link = gv_path_join(root, "sys/bus/pci/devices/0000:18:00.0/driver");
        char *vfio = gv_path_join(root, "sys/bus/pci/drivers/vfio-pci");
        assert_int_equal(unlink(link), 0);
        assert_int_equal(symlink(vfio, link), 0);

        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
        assert_int_equal(count, 7);
        assert_int_equal(n.nvmlDeviceGetHandleByPciBusId_v2("0000:18:00.0", &h),
                         NVML_ERROR_NOT_FOUND);
        /* Index 0 is now the next GPU in PCI order. */
        nvmlPciInfo_t pci;
        assert_int_equal(n.nvmlDeviceGetPciInfo_v3(dev(0), &pci), NVML_SUCCESS);
        assert_string_equal(pci.busId, "00000000:2A:00.0");
        /* A handle taken before: the GPU is gone from NVML's view. */
        assert_int_equal(n.nvmlDeviceGetName(d0, name, sizeof(name)), NVML_ERROR_GPU_IS_LOST);
        free(link);
        free(vfio);
}

static void test_load_changes(void **state)
{
        const char *root = *state;
        struct sim_state *s = lock_x(root);
        struct sim_gpu *g = &s->gpus[0];
        struct sim_load idle, idle2, busy;

        sim_gpu_load(s, g, 1000.0, &idle);
        sim_gpu_load(s, g, 1100.0, &idle2);
        /* Idle: low but not zero, and it moves. */
        assert_true(idle.gpu_util >= 3 && idle.gpu_util <= 5);
        assert_true(idle.power_mw > 0 && idle.temperature_c > 20);
        assert_true(idle.mem_used_mib > 0 && idle.mem_used_mib < g->model->memory_mib / 50);
        bool moved = idle.power_mw != idle2.power_mw || idle.temperature_c != idle2.temperature_c;
        assert_true(moved);

        /* A GPU with a full-size vGPU is busy. */
        assert_int_equal(sim_vgpu_add(s, g, 9500, "11111111-2222-3333-4444-555555555555",
                                      "0000:18:00.4", NULL),
                         0);
        sim_gpu_load(s, g, 1000.0, &busy);
        uint64_t total = g->model->memory_mib * 1024ull * 1024ull;
        assert_true(busy.allocated > 0.99);
        assert_true(busy.gpu_util > 50);
        assert_true(busy.power_mw > idle.power_mw * 4);
        assert_true(busy.mem_used_mib <= g->model->memory_mib);
        sim_state_unlock(s);

        nvmlUtilization_t u;
        nvmlMemory_t m;
        nvmlMemory_v2_t m2 = { .version = nvmlMemory_v2 };
        unsigned power = 0, temp = 0;
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(dev(0), &u), NVML_SUCCESS);
        assert_true(u.gpu <= 100 && u.gpu > 0);
        assert_int_equal(n.nvmlDeviceGetMemoryInfo(dev(0), &m), NVML_SUCCESS);
        assert_true(m.total == total);
        assert_int_equal(m.free + m.used, m.total);
        assert_int_equal(n.nvmlDeviceGetMemoryInfo_v2(dev(0), &m2), NVML_SUCCESS);
        assert_int_equal(m2.free + m2.used + m2.reserved, m2.total);
        m2.version = 1;
        assert_int_equal(n.nvmlDeviceGetMemoryInfo_v2(dev(0), &m2),
                         NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        assert_int_equal(n.nvmlDeviceGetPowerUsage(dev(0), &power), NVML_SUCCESS);
        assert_true(power > 0);
        assert_int_equal(n.nvmlDeviceGetTemperature(dev(0), NVML_TEMPERATURE_GPU, &temp),
                         NVML_SUCCESS);
        assert_true(temp > 20 && temp < 100);
}

/* ---- MIG --------------------------------------------------------------------------------------- */

static void test_mig_off_fails(void **state)
{
        (void)state;
        nvmlDevice_t d = dev(0);
        nvmlGpuInstanceProfileInfo_t info;
        nvmlGpuInstance_t gi;
        unsigned cur = 9, pend = 9, count = 99;

        assert_int_equal(n.nvmlDeviceGetMigMode(d, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, NVML_DEVICE_MIG_DISABLE);
        assert_int_equal(pend, NVML_DEVICE_MIG_DISABLE);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfo(d, NVML_GPU_INSTANCE_PROFILE_1_SLICE,
                                                               &info),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi), NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceRemainingCapacity(d, 19, &count),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n.nvmlDeviceGetMaxMigDeviceCount(d, &count), NVML_SUCCESS);
        assert_int_equal(count, 0);
        /* Placements are answered regardless of the mode (mig.md §4). */
        assert_int_equal(n.nvmlDeviceGetGpuInstancePossiblePlacements_v2(d, 9, NULL, &count),
                         NVML_SUCCESS);
        assert_int_equal(count, 2);
}

static void enable_mig(nvmlDevice_t d)
{
        nvmlReturn_t act = NVML_ERROR_UNKNOWN;
        unsigned cur, pend;
        assert_int_equal(n.nvmlDeviceSetMigMode(d, NVML_DEVICE_MIG_ENABLE, &act), NVML_SUCCESS);
        /* Hopper: at once, no reset. */
        assert_int_equal(act, NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetMigMode(d, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, NVML_DEVICE_MIG_ENABLE);
        assert_int_equal(pend, NVML_DEVICE_MIG_ENABLE);
}

static void test_profile_index_vs_id(void **state)
{
        (void)state;
        nvmlDevice_t d = dev(0);
        nvmlGpuInstanceProfileInfo_t info;
        enable_mig(d);

        /* Index constants in, device-specific ids out (nvml-abi.md §7.3). */
        static const struct {
                unsigned index, id, slices;
        } want[] = {
                { NVML_GPU_INSTANCE_PROFILE_1_SLICE, 19, 1 },
                { NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, 1 },
                { NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, 1 },
                { NVML_GPU_INSTANCE_PROFILE_2_SLICE, 14, 2 },
                { NVML_GPU_INSTANCE_PROFILE_3_SLICE, 9, 3 },
                { NVML_GPU_INSTANCE_PROFILE_4_SLICE, 5, 4 },
                { NVML_GPU_INSTANCE_PROFILE_7_SLICE, 0, 7 },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfo(d, want[i].index, &info),
                                 NVML_SUCCESS);
                assert_int_equal(info.id, want[i].id);
                assert_int_equal(info.sliceCount, want[i].slices);
        }
        /* An index the GPU lacks vs. one past COUNT. */
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfo(d, NVML_GPU_INSTANCE_PROFILE_6_SLICE,
                                                               &info),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfo(d, NVML_GPU_INSTANCE_PROFILE_COUNT,
                                                               &info),
                         NVML_ERROR_INVALID_ARGUMENT);

        nvmlGpuInstanceProfileInfo_v2_t v2 = { .version = nvmlGpuInstanceProfileInfo_v2 };
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfoV(d, NVML_GPU_INSTANCE_PROFILE_3_SLICE,
                                                                &v2),
                         NVML_SUCCESS);
        assert_int_equal(v2.id, 9);
        assert_string_equal(v2.name, "MIG 3g.40gb");
        nvmlGpuInstanceProfileInfo_v3_t v3 = { .version = nvmlGpuInstanceProfileInfo_v3 };
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfoV(
                                 d, NVML_GPU_INSTANCE_PROFILE_3_SLICE,
                                 (nvmlGpuInstanceProfileInfo_v2_t *)&v3),
                         NVML_SUCCESS);
        assert_int_equal(v3.id, 9);
        assert_int_equal(v3.sliceCount, 3);
        assert_string_equal(v3.name, "MIG 3g.40gb");
        v2.version = 7;
        assert_int_equal(n.nvmlDeviceGetGpuInstanceProfileInfoV(d, 0, &v2),
                         NVML_ERROR_ARGUMENT_VERSION_MISMATCH);

        /* The classic mistake: passing the 1_SLICE index (0) where an id is expected creates
         * the 7g instance (id 0) that takes the whole GPU. */
        nvmlGpuInstance_t gi;
        nvmlGpuInstanceInfo_t gii;
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, NVML_GPU_INSTANCE_PROFILE_1_SLICE, &gi),
                         NVML_SUCCESS);
        assert_int_equal(n.nvmlGpuInstanceGetInfo(gi, &gii), NVML_SUCCESS);
        assert_int_equal(gii.profileId, 0);
        assert_int_equal(gii.placement.start, 0);
        assert_int_equal(gii.placement.size, 8);
        assert_ptr_equal(gii.device, d);
        unsigned left = 9;
        assert_int_equal(n.nvmlDeviceGetGpuInstanceRemainingCapacity(d, 19, &left), NVML_SUCCESS);
        assert_int_equal(left, 0);
        assert_int_equal(n.nvmlGpuInstanceDestroy(gi), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceRemainingCapacity(d, 19, &left), NVML_SUCCESS);
        assert_int_equal(left, 7);
        /* The handle of a destroyed GI is invalid. */
        assert_int_equal(n.nvmlGpuInstanceGetInfo(gi, &gii), NVML_ERROR_INVALID_ARGUMENT);
        /* An id the GPU does not have. */
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 77, &gi), NVML_ERROR_INVALID_ARGUMENT);
}

static void test_placements_and_overlap(void **state)
{
        (void)state;
        nvmlDevice_t d = dev(0);
        nvmlGpuInstancePlacement_t pl[8];
        unsigned count = 0;
        enable_mig(d);

        /* 3g (id 9): (0,4) (4,4); the count protocol. */
        assert_int_equal(n.nvmlDeviceGetGpuInstancePossiblePlacements_v2(d, 9, NULL, &count),
                         NVML_SUCCESS);
        assert_int_equal(count, 2);
        count = 1;
        assert_int_equal(n.nvmlDeviceGetGpuInstancePossiblePlacements_v2(d, 9, pl, &count),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 2);
        count = 8;
        assert_int_equal(n.nvmlDeviceGetGpuInstancePossiblePlacements_v2(d, 9, pl, &count),
                         NVML_SUCCESS);
        assert_int_equal(count, 2);
        assert_int_equal(pl[0].start, 0);
        assert_int_equal(pl[0].size, 4);
        assert_int_equal(pl[1].start, 4);
        assert_int_equal(pl[1].size, 4);
        count = 8;
        assert_int_equal(n.nvmlDeviceGetGpuInstancePossiblePlacements_v2(d, 19, pl, &count),
                         NVML_SUCCESS);
        assert_int_equal(count, 7);

        nvmlGpuInstance_t g3, g1;
        nvmlGpuInstancePlacement_t at = { .start = 4, .size = 4 };
        assert_int_equal(n.nvmlDeviceCreateGpuInstanceWithPlacement(d, 9, &at, &g3),
                         NVML_SUCCESS);
        /* Not an NVML placement of 3g. */
        at = (nvmlGpuInstancePlacement_t){ .start = 2, .size = 4 };
        assert_int_equal(n.nvmlDeviceCreateGpuInstanceWithPlacement(d, 9, &at, &g1),
                         NVML_ERROR_INVALID_ARGUMENT);
        /* Overlap with the 3g at 4..7. */
        at = (nvmlGpuInstancePlacement_t){ .start = 5, .size = 1 };
        assert_int_equal(n.nvmlDeviceCreateGpuInstanceWithPlacement(d, 19, &at, &g1),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        at = (nvmlGpuInstancePlacement_t){ .start = 3, .size = 1 };
        assert_int_equal(n.nvmlDeviceCreateGpuInstanceWithPlacement(d, 19, &at, &g1),
                         NVML_SUCCESS);
        /* 4g (0,4) now overlaps the 1g at 3; 3g at (0,4) too. */
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 5, &g1),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        unsigned left = 9;
        assert_int_equal(n.nvmlDeviceGetGpuInstanceRemainingCapacity(d, 9, &left), NVML_SUCCESS);
        assert_int_equal(left, 0);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceRemainingCapacity(d, 19, &left), NVML_SUCCESS);
        assert_int_equal(left, 3);

        nvmlGpuInstance_t list[8];
        count = 0;
        assert_int_equal(n.nvmlDeviceGetGpuInstances(d, 19, list, &count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_ptr_equal(list[0], g1);
        assert_int_equal(n.nvmlDeviceGetGpuInstances(d, 9, list, &count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_ptr_equal(list[0], g3);
}

static void test_gi_destroy_with_ci(void **state)
{
        (void)state;
        nvmlDevice_t d = dev(0), mig = NULL, parent = NULL;
        nvmlGpuInstance_t gi;
        nvmlComputeInstance_t ci, ci2;
        nvmlComputeInstanceProfileInfo_t cinfo;
        nvmlComputeInstanceInfo_t ciinfo;
        unsigned count = 0, v = 9;
        enable_mig(d);

        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 9, &gi), NVML_SUCCESS);
        /* CI profile index 0 (1 slice) in a 3g GI: 3 instances at 0, 1, 2. */
        assert_int_equal(n.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE,
                                 NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cinfo),
                         NVML_SUCCESS);
        assert_int_equal(cinfo.instanceCount, 3);
        assert_int_equal(n.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE,
                                 NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cinfo),
                         NVML_ERROR_NOT_SUPPORTED);
        assert_int_equal(n.nvmlGpuInstanceGetComputeInstancePossiblePlacements(gi, 0, NULL,
                                                                               &count),
                         NVML_SUCCESS);
        assert_int_equal(count, 3);

        /* The whole-GI CI profile (3 slices, id 2). */
        assert_int_equal(n.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                                 gi, NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE,
                                 NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &cinfo),
                         NVML_SUCCESS);
        assert_int_equal(n.nvmlGpuInstanceCreateComputeInstance(gi, cinfo.id, &ci), NVML_SUCCESS);
        assert_int_equal(n.nvmlGpuInstanceCreateComputeInstance(gi, cinfo.id, &ci2),
                         NVML_ERROR_INSUFFICIENT_RESOURCES);
        assert_int_equal(n.nvmlComputeInstanceGetInfo_v2(ci, &ciinfo), NVML_SUCCESS);
        assert_ptr_equal(ciinfo.gpuInstance, gi);
        assert_int_equal(ciinfo.placement.size, 3);

        assert_int_equal(n.nvmlGpuInstanceDestroy(gi), NVML_ERROR_IN_USE);

        /* The CI is a MIG device. */
        assert_int_equal(n.nvmlDeviceGetMaxMigDeviceCount(d, &count), NVML_SUCCESS);
        assert_int_equal(count, 7);
        assert_int_equal(n.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &mig), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetMigDeviceHandleByIndex(d, 1, &parent),
                         NVML_ERROR_NOT_FOUND);
        assert_int_equal(n.nvmlDeviceIsMigDeviceHandle(mig, &v), NVML_SUCCESS);
        assert_int_equal(v, 1);
        assert_int_equal(n.nvmlDeviceIsMigDeviceHandle(d, &v), NVML_SUCCESS);
        assert_int_equal(v, 0);
        assert_int_equal(n.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig, &parent),
                         NVML_SUCCESS);
        assert_ptr_equal(parent, d);
        nvmlGpuInstanceInfo_t gii;
        assert_int_equal(n.nvmlGpuInstanceGetInfo(gi, &gii), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceId(mig, &v), NVML_SUCCESS);
        assert_int_equal(v, gii.id);
        assert_int_equal(n.nvmlDeviceGetComputeInstanceId(mig, &v), NVML_SUCCESS);
        assert_int_equal(v, ciinfo.id);
        assert_int_equal(n.nvmlDeviceGetGpuInstanceId(d, &v), NVML_ERROR_NOT_SUPPORTED);
        char uuid[96], name[96];
        nvmlDevice_t back = NULL;
        assert_int_equal(n.nvmlDeviceGetUUID(mig, uuid, sizeof(uuid)), NVML_SUCCESS);
        assert_true(strncmp(uuid, "MIG-", 4) == 0);
        assert_int_equal(n.nvmlDeviceGetHandleByUUID(uuid, &back), NVML_SUCCESS);
        assert_ptr_equal(back, mig);
        assert_int_equal(n.nvmlDeviceGetName(mig, name, sizeof(name)), NVML_SUCCESS);
        assert_string_equal(name, "NVIDIA H100 80GB HBM3 MIG 3g.40gb");

        assert_int_equal(n.nvmlComputeInstanceDestroy(ci), NVML_SUCCESS);
        /* The MIG device is gone with its CI. */
        assert_int_equal(n.nvmlDeviceGetUUID(mig, uuid, sizeof(uuid)),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n.nvmlGpuInstanceDestroy(gi), NVML_SUCCESS);

        /* MIG cannot be disabled while vGPUs exist... but can now. */
        nvmlReturn_t act;
        assert_int_equal(n.nvmlDeviceSetMigMode(d, NVML_DEVICE_MIG_DISABLE, &act), NVML_SUCCESS);
}

/* Ampere: SetMigMode goes pending until a GPU reset. */
static void test_ampere_pending(void **state)
{
        const char *root = *state;
        nvmlReturn_t act = NVML_SUCCESS;
        unsigned cur, pend;
        nvmlDevice_t d = NULL;

        struct sim_state *s = lock_x(root);
        struct sim_gpu *g = NULL;
        for (size_t i = 0; i < s->n_gpus && !g; i++)
                if (strcmp(s->gpus[i].model->architecture, "ampere") == 0 && s->gpus[i].mig_capable)
                        g = &s->gpus[i];
        assert_non_null(g);
        char bdf[16];
        uint32_t index = g->index;
        snprintf(bdf, sizeof(bdf), "%s", g->bdf);
        /* the driver's reset attempt fails, as in a pass-through VM (nvml-abi.md §9) */
        assert_int_equal(sim_inject_add(s, "nvmlDeviceSetMigMode:activation",
                                        NVML_ERROR_RESET_REQUIRED, (int)index, NULL,
                                        SIM_INJECT_ONCE), 0);
        commit_unlock(s);
        assert_int_equal(n.nvmlDeviceGetHandleByPciBusId_v2(bdf, &d), NVML_SUCCESS);

        assert_int_equal(n.nvmlDeviceSetMigMode(d, NVML_DEVICE_MIG_ENABLE, &act), NVML_SUCCESS);
        assert_int_equal(act, NVML_ERROR_RESET_REQUIRED);
        assert_int_equal(n.nvmlDeviceGetMigMode(d, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, NVML_DEVICE_MIG_DISABLE);
        assert_int_equal(pend, NVML_DEVICE_MIG_ENABLE);
        nvmlGpuInstance_t gi;
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi), NVML_ERROR_NOT_SUPPORTED);

        s = lock_x(root);
        assert_int_equal(sim_gpu_reset(s, sim_gpu_by_index(s, index), NULL), 0);
        commit_unlock(s);
        assert_int_equal(n.nvmlDeviceGetMigMode(d, &cur, &pend), NVML_SUCCESS);
        assert_int_equal(cur, NVML_DEVICE_MIG_ENABLE);
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceSetMigMode(d, 7, &act), NVML_ERROR_INVALID_ARGUMENT);
}

/* ---- vGPU ------------------------------------------------------------------------------------- */

#define H100XM_80C 9500
#define H100XM_40C 9501
#define H100XM_20C 9502
#define H100XM_1_10C 9515

static void add_vgpu(const char *root, unsigned gpu, unsigned type, const char *uuid,
                     const char *parent, int expect)
{
        struct sim_state *s = lock_x(root);
        struct sim_gpu *g = sim_gpu_by_index(s, gpu);
        struct gv_error *err = NULL;
        int r = sim_vgpu_add_at(s, g, type, uuid, parent, INVALID_GPU_INSTANCE_ID,
                                NVML_INVALID_VGPU_PLACEMENT_ID, NULL, &err);
        if (r != expect)
                fail_msg("sim_vgpu_add(%u) = %d, expected %d: %s", type, r, expect,
                         gv_error_msg(err, r));
        gv_error_free(err);
        if (r >= 0)
                commit_unlock(s);
        else
                sim_state_unlock(s);
}

/* ---- the load model: bounds, the frozen clock, pins (docs/simulator.md, "Load") ------------- */

/* Bounds and determinism over an hour of simulated time, one GPU busy (a vGPU) and one idle;
 * then the frozen clock and pins through NVML. */
static void test_load_bounds_clock_pins(void **state)
{
        const char *root = *state;
        add_vgpu(root, 0, H100XM_20C, "dddddddd-0000-0000-0000-000000000001", "0000:18:00.4", 0);
        struct sim_state *s = lock_x(root);
        struct sim_gpu *g0 = sim_gpu_by_index(s, 0), *g1 = sim_gpu_by_index(s, 1);
        uint32_t pmax = sim_gpu_power_max_mw(g0);
        bool differ = false;

        assert_int_equal(pmax, g0->model->power_max_mw);
        for (double t = 0; t < 4000; t += 7.3) {
                struct sim_load a, b, again;
                struct sim_vgpu_load v;
                sim_gpu_load(s, g0, t, &a);
                sim_gpu_load(s, g1, t, &b);
                sim_gpu_load(s, g0, t, &again);
                sim_vgpu_load(s, &s->vgpus[0], t, &v);
                /* Deterministic in (seed, t). */
                assert_memory_equal(&a, &again, sizeof(a));
                differ = differ || a.temperature_c != b.temperature_c || a.power_mw != b.power_mw;
                for (int k = 0; k < 2; k++) {
                        const struct sim_load *l = k ? &b : &a;
                        assert_in_range(l->gpu_util, 0, 100);
                        assert_true(l->mem_used_mib <= g0->model->memory_mib);
                        assert_true(l->power_mw > 0 && l->power_mw <= pmax);
                        assert_in_range(l->temperature_c, 30, 85);
                }
                assert_in_range(v.sm, 10, 95);
                assert_true(v.fb_used_mib <= 20480 && v.fb_used_mib >= 20480 / 5 - 1);
        }
        /* Each GPU has its own phase. */
        assert_true(differ);
        sim_state_unlock(s);

        nvmlUtilization_t u;
        unsigned power = 0, temp = 0;
        struct sim_load l;

        setenv("GPUVIRT_SIM_TIME", "123456", 1);
        assert_true(sim_now() == 123456.0);
        s = lock_x(root);
        sim_gpu_load(s, sim_gpu_by_index(s, 0), 123456.0, &l);
        sim_state_unlock(s);
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(dev(0), &u), NVML_SUCCESS);
        assert_int_equal(u.gpu, l.gpu_util);
        assert_int_equal(n.nvmlDeviceGetPowerUsage(dev(0), &power), NVML_SUCCESS);
        assert_int_equal(power, l.power_mw);
        assert_int_equal(n.nvmlDeviceGetTemperature(dev(0), NVML_TEMPERATURE_GPU, &temp),
                         NVML_SUCCESS);
        assert_int_equal(temp, l.temperature_c);

        /* Pinned: exact values through NVML, kept in state.json. */
        s = lock_x(root);
        struct sim_pin *p = sim_pin_get(s, SIM_PIN_GPU, 0, 0);
        assert_non_null(p);
        p->fields = SIM_PIN_UTIL | SIM_PIN_POWER | SIM_PIN_TEMP | SIM_PIN_MEM_USED;
        p->util_pct = 73;
        p->power_mw = 123000;
        p->temperature_c = 61;
        p->mem_used_mib = 1u << 30; /* beyond the GPU's memory: kept to the total */
        commit_unlock(s);
        nvmlMemory_t m;
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(dev(0), &u), NVML_SUCCESS);
        assert_int_equal(u.gpu, 73);
        assert_int_equal(u.memory, 44);
        assert_int_equal(n.nvmlDeviceGetPowerUsage(dev(0), &power), NVML_SUCCESS);
        assert_int_equal(power, 123000);
        assert_int_equal(n.nvmlDeviceGetTemperature(dev(0), NVML_TEMPERATURE_GPU, &temp),
                         NVML_SUCCESS);
        assert_int_equal(temp, 61);
        assert_int_equal(n.nvmlDeviceGetMemoryInfo(dev(0), &m), NVML_SUCCESS);
        assert_true(m.used == m.total && m.free == 0);
        /* Another GPU is not pinned. */
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(dev(1), &u), NVML_SUCCESS);
        assert_true(u.gpu < 10);

        s = lock_x(root);
        assert_int_equal(s->n_pins, 1);
        assert_int_equal(sim_pins_clear(s, SIM_PIN_VGPU, -1), 0);
        assert_int_equal(sim_pins_clear(s, -1, 0), 1);
        commit_unlock(s);
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(dev(0), &u), NVML_SUCCESS);
        assert_int_equal(u.gpu, l.gpu_util);
        unsetenv("GPUVIRT_SIM_TIME");
}

static void test_load_vgpu_and_mig(void **state)
{
        const char *root = *state;
        nvmlDevice_t d = dev(0), mig = NULL;
        nvmlGpuInstance_t gi, gi2;
        nvmlComputeInstance_t ci;
        nvmlMemory_t m;
        nvmlValueType_t vt;
        unsigned count;

        setenv("GPUVIRT_SIM_TIME", "5000", 1);
        enable_mig(d);
        /* A GI with a compute instance: its MIG device's memory follows the GI's wave. */
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi), NVML_SUCCESS);
        assert_int_equal(n.nvmlGpuInstanceCreateComputeInstance(gi, 0, &ci), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &mig), NVML_SUCCESS);
        assert_int_equal(n.nvmlDeviceGetMemoryInfo(mig, &m), NVML_SUCCESS);
        struct sim_state *s = lock_x(root);
        struct sim_gpu *g = sim_gpu_by_index(s, 0);
        struct sim_gi_load gl;
        sim_gi_load(s, g, &g->gis[0], 5000.0, &gl);
        const uint32_t gi_id = g->gis[0].id;
        sim_state_unlock(s);
        assert_int_equal(m.total, gl.mem_total_mib << 20);
        assert_int_equal(m.used, gl.mem_used_mib << 20);
        assert_true(gl.mem_used_mib > gl.mem_total_mib / 100); /* in use, not idle */
        /* Utilization is not attributed to MIG devices. */
        nvmlUtilization_t u;
        assert_int_equal(n.nvmlDeviceGetUtilizationRates(mig, &u), NVML_ERROR_NOT_SUPPORTED);

        /* A MIG-backed vGPU on a second GI: its framebuffer use is the GI's memory, and it has
         * no utilization sample. */
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi2), NVML_SUCCESS);
        add_vgpu(root, 0, H100XM_1_10C, "eeeeeeee-0000-0000-0000-000000000001", "0000:18:00.4",
                 0);
        nvmlVgpuInstance_t inst;
        unsigned long long fb = 0;
        count = 1;
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, &inst), NVML_SUCCESS);
        s = lock_x(root);
        g = sim_gpu_by_index(s, 0);
        struct sim_vgpu *v = sim_vgpu_by_instance(s, inst);
        assert_non_null(v);
        sim_gi_load(s, g, sim_gi_by_id(g, v->gi_id), 5000.0, &gl);
        sim_state_unlock(s);
        assert_int_equal(n.nvmlVgpuInstanceGetFbUsage(inst, &fb), NVML_SUCCESS);
        assert_int_equal(fb, gl.mem_used_mib << 20);
        /* Pin the memory of the GI with the compute instance. */
        s = lock_x(root);
        struct sim_pin *p = sim_pin_get(s, SIM_PIN_GI, 0, gi_id);
        p->fields = SIM_PIN_MEM_USED;
        p->mem_used_mib = 1234;
        commit_unlock(s);
        count = 0;
        assert_int_equal(n.nvmlDeviceGetVgpuUtilization(d, 0, &vt, &count, NULL), NVML_SUCCESS);
        assert_int_equal(count, 0);
        assert_int_equal(n.nvmlDeviceGetMemoryInfo(mig, &m), NVML_SUCCESS);
        assert_int_equal(m.used, 1234ull << 20);

        /* A vGPU pin on the MIG-backed vGPU moves its GI's memory too (a GI pin wins). */
        s = lock_x(root);
        (void)sim_pins_clear(s, SIM_PIN_GI, -1);
        p = sim_pin_get(s, SIM_PIN_VGPU, 0, inst);
        p->fields = SIM_PIN_MEM_USED;
        p->mem_used_mib = 4321;
        commit_unlock(s);
        assert_int_equal(n.nvmlVgpuInstanceGetFbUsage(inst, &fb), NVML_SUCCESS);
        assert_int_equal(fb, 4321ull << 20);
        unsetenv("GPUVIRT_SIM_TIME");
}

static void test_load_vgpu_pin(void **state)
{
        const char *root = *state;
        nvmlVgpuInstanceUtilizationSample_t smp[4];
        nvmlValueType_t vt;
        nvmlVgpuInstance_t inst;
        unsigned long long fb = 0;
        unsigned count = 1;

        add_vgpu(root, 0, H100XM_20C, "ffffffff-0000-0000-0000-000000000001", "0000:18:00.4", 0);
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(dev(0), &count, &inst), NVML_SUCCESS);
        struct sim_state *s = lock_x(root);
        struct sim_pin *p = sim_pin_get(s, SIM_PIN_VGPU, 0, inst);
        p->fields = SIM_PIN_UTIL | SIM_PIN_MEM_USED;
        p->util_pct = 88;
        p->mem_used_mib = 999999; /* beyond the framebuffer: kept to it */
        commit_unlock(s);
        count = 4;
        assert_int_equal(n.nvmlDeviceGetVgpuUtilization(dev(0), 0, &vt, &count, smp),
                         NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(smp[0].vgpuInstance, inst);
        assert_int_equal(smp[0].smUtil.uiVal, 88);
        assert_int_equal(smp[0].memUtil.uiVal, 53);
        /* Only samples newer than the one named. */
        count = 4;
        assert_int_equal(n.nvmlDeviceGetVgpuUtilization(dev(0), smp[0].timeStamp, &vt, &count,
                                                        smp),
                         NVML_SUCCESS);
        assert_int_equal(count, 0);
        assert_int_equal(n.nvmlVgpuInstanceGetFbUsage(inst, &fb), NVML_SUCCESS);
        assert_int_equal(fb, 20480ull << 20);
}

static void test_count_protocol_and_same_size(void **state)
{
        const char *root = *state;
        nvmlDevice_t d = dev(0);
        unsigned count = 0;
        nvmlVgpuTypeId_t ids[64];
        nvmlVgpuInstance_t inst[8];
        nvmlGpuVirtualizationMode_t vm;
        nvmlHostVgpuMode_t hm;

        assert_int_equal(n.nvmlDeviceGetVirtualizationMode(d, &vm), NVML_SUCCESS);
        assert_int_equal(vm, NVML_GPU_VIRTUALIZATION_MODE_HOST_VGPU);
        assert_int_equal(n.nvmlDeviceGetHostVgpuMode(d, &hm), NVML_SUCCESS);
        assert_int_equal(hm, NVML_HOST_VGPU_MODE_SRIOV);

        /* vgpuCount = 0 → INSUFFICIENT_SIZE with the count. */
        assert_int_equal(n.nvmlDeviceGetSupportedVgpus(d, &count, NULL),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 15);
        assert_int_equal(n.nvmlDeviceGetSupportedVgpus(d, &count, ids), NVML_SUCCESS);
        assert_int_equal(count, 15);
        /* Creatable with MIG off: the 8 time-sliced types, none of the MIG-backed. */
        count = 0;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(d, &count, NULL),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 8);
        /* No vGPUs yet: SUCCESS with 0. */
        count = 0;
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, NULL), NVML_SUCCESS);
        assert_int_equal(count, 0);

        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000001", "0000:18:00.4", 0);
        /* Equal-size mode: only the running type, and another type is refused. */
        count = 64;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(d, &count, ids), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(ids[0], H100XM_20C);
        add_vgpu(root, 0, H100XM_40C, "aaaaaaaa-0000-0000-0000-000000000002", "0000:18:00.5",
                 -EBUSY);
        /* ...and the VF holds one vGPU. */
        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000003", "0000:18:00.4",
                 -EBUSY);
        /* Other GPUs are unaffected. */
        count = 64;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(dev(1), &count, ids), NVML_SUCCESS);
        assert_int_equal(count, 8);

        count = 0;
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, NULL),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 1);
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, inst), NVML_SUCCESS);
        nvmlVgpuTypeId_t t = 0;
        assert_int_equal(n.nvmlVgpuInstanceGetType(inst[0], &t), NVML_SUCCESS);
        assert_int_equal(t, H100XM_20C);
        char buf[64];
        assert_int_equal(n.nvmlVgpuInstanceGetUUID(inst[0], buf, sizeof(buf)), NVML_SUCCESS);
        assert_string_equal(buf, "aaaaaaaa-0000-0000-0000-000000000001");
        assert_int_equal(n.nvmlVgpuInstanceGetUUID(inst[0], buf, 8),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(n.nvmlVgpuInstanceGetUUID(0, buf, sizeof(buf)),
                         NVML_ERROR_INVALID_ARGUMENT);
        assert_int_equal(n.nvmlVgpuInstanceGetUUID(inst[0] + 100, buf, sizeof(buf)),
                         NVML_ERROR_NOT_FOUND);
        unsigned gid = 0;
        assert_int_equal(n.nvmlVgpuInstanceGetGpuInstanceId(inst[0], &gid), NVML_SUCCESS);
        assert_int_equal(gid, INVALID_GPU_INSTANCE_ID);
        nvmlVgpuPlacementId_t pid = { .version = nvmlVgpuPlacementId_v1 };
        assert_int_equal(n.nvmlVgpuInstanceGetPlacementId(inst[0], &pid), NVML_SUCCESS);
        assert_int_equal(pid.placementId, 0);

        /* Type queries. */
        unsigned sz = 4, pgid = 0;
        unsigned long long fb = 0;
        assert_int_equal(n.nvmlVgpuTypeGetName(H100XM_20C, buf, &sz),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(sz, strlen("NVIDIA H100XM-20C") + 1);
        assert_int_equal(n.nvmlVgpuTypeGetName(H100XM_20C, buf, &sz), NVML_SUCCESS);
        assert_string_equal(buf, "NVIDIA H100XM-20C");
        assert_int_equal(n.nvmlVgpuTypeGetFramebufferSize(H100XM_20C, &fb), NVML_SUCCESS);
        assert_int_equal(fb, 20480ull * 1024 * 1024);
        assert_int_equal(n.nvmlVgpuTypeGetGpuInstanceProfileId(H100XM_20C, &pgid), NVML_SUCCESS);
        assert_int_equal(pgid, INVALID_GPU_INSTANCE_PROFILE_ID);
        assert_int_equal(n.nvmlVgpuTypeGetGpuInstanceProfileId(H100XM_1_10C, &pgid),
                         NVML_SUCCESS);
        assert_int_equal(pgid, 19);
        assert_int_equal(n.nvmlVgpuTypeGetMaxInstances(d, H100XM_20C, &sz), NVML_SUCCESS);
        assert_int_equal(sz, 4);
        assert_int_equal(n.nvmlVgpuTypeGetName(12345, buf, &sz), NVML_ERROR_INVALID_ARGUMENT);

        /* Fill the GPU: four 20C, then none creatable → SUCCESS with 0. */
        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000004", "0000:18:00.5", 0);
        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000005", "0000:18:00.6", 0);
        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000006", "0000:18:00.7", 0);
        add_vgpu(root, 0, H100XM_20C, "aaaaaaaa-0000-0000-0000-000000000007", "0000:18:01.0",
                 -ENOSPC);
        count = 0;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(d, &count, NULL), NVML_SUCCESS);
        assert_int_equal(count, 0);

        /* MIG cannot be switched while vGPUs exist. */
        nvmlReturn_t act;
        assert_int_equal(n.nvmlDeviceSetMigMode(d, NVML_DEVICE_MIG_ENABLE, &act),
                         NVML_ERROR_IN_USE);

        /* Utilization samples: one per vGPU, count protocol. */
        nvmlValueType_t vt;
        nvmlVgpuInstanceUtilizationSample_t smp[8];
        count = 0;
        assert_int_equal(n.nvmlDeviceGetVgpuUtilization(d, 0, &vt, &count, NULL),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(count, 4);
        count = 8;
        assert_int_equal(n.nvmlDeviceGetVgpuUtilization(d, 0, &vt, &count, smp), NVML_SUCCESS);
        assert_int_equal(count, 4);
        assert_int_equal(vt, NVML_VALUE_TYPE_UNSIGNED_INT);
        assert_true(smp[0].timeStamp > 0);
}

static void test_heterogeneous_mode(void **state)
{
        const char *root = *state;
        nvmlDevice_t d = dev(0);
        nvmlVgpuHeterogeneousMode_t mode = { .version = nvmlVgpuHeterogeneousMode_v1 };
        unsigned cap = 9, ids[32];

        assert_int_equal(n.nvmlDeviceGetVgpuCapabilities(
                                 d, NVML_DEVICE_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES, &cap),
                         NVML_SUCCESS);
        assert_int_equal(cap, 1);
        assert_int_equal(n.nvmlDeviceGetVgpuHeterogeneousMode(d, &mode), NVML_SUCCESS);
        assert_int_equal(mode.mode, NVML_VGPU_PGPU_HOMOGENEOUS_MODE);

        /* Refused while a vGPU exists. */
        add_vgpu(root, 0, H100XM_40C, "bbbbbbbb-0000-0000-0000-000000000001", "0000:18:00.4", 0);
        mode.mode = NVML_VGPU_PGPU_HETEROGENEOUS_MODE;
        assert_int_equal(n.nvmlDeviceSetVgpuHeterogeneousMode(d, &mode), NVML_ERROR_IN_USE);
        struct sim_state *s = lock_x(root);
        assert_int_equal(sim_vgpu_remove(s, s->vgpus[0].instance), 0);
        commit_unlock(s);
        assert_int_equal(n.nvmlDeviceSetVgpuHeterogeneousMode(d, &mode), NVML_SUCCESS);
        mode.mode = 99;
        assert_int_equal(n.nvmlDeviceGetVgpuHeterogeneousMode(d, &mode), NVML_SUCCESS);
        assert_int_equal(mode.mode, NVML_VGPU_PGPU_HETEROGENEOUS_MODE);

        /* Supported placements of 40C in mixed-size mode: size 40, ids 0 and 40. */
        nvmlVgpuPlacementList_v2_t pl = { .version = nvmlVgpuPlacementList_v2,
                                          .mode = NVML_VGPU_PGPU_HETEROGENEOUS_MODE };
        assert_int_equal(n.nvmlDeviceGetVgpuTypeSupportedPlacements(d, H100XM_40C, &pl),
                         NVML_ERROR_INSUFFICIENT_SIZE);
        assert_int_equal(pl.count, 2);
        assert_int_equal(pl.placementSize, 40);
        pl.placementIds = ids;
        assert_int_equal(n.nvmlDeviceGetVgpuTypeSupportedPlacements(d, H100XM_40C, &pl),
                         NVML_SUCCESS);
        assert_int_equal(ids[0], 0);
        assert_int_equal(ids[1], 40);

        /* Mixed sizes now: a 40C and two 20C fit; a third 20C does not. */
        add_vgpu(root, 0, H100XM_40C, "bbbbbbbb-0000-0000-0000-000000000002", "0000:18:00.4", 0);
        add_vgpu(root, 0, H100XM_20C, "bbbbbbbb-0000-0000-0000-000000000003", "0000:18:00.5", 0);
        add_vgpu(root, 0, H100XM_20C, "bbbbbbbb-0000-0000-0000-000000000004", "0000:18:00.6", 0);
        add_vgpu(root, 0, H100XM_20C, "bbbbbbbb-0000-0000-0000-000000000005", "0000:18:00.7",
                 -ENOSPC);
        /* 80C cannot fit either; creatable placements of 20C: none. */
        pl = (nvmlVgpuPlacementList_v2_t){ .version = nvmlVgpuPlacementList_v2,
                                           .mode = NVML_VGPU_PGPU_HETEROGENEOUS_MODE,
                                           .placementIds = ids, .count = 32 };
        assert_int_equal(n.nvmlDeviceGetVgpuTypeCreatablePlacements(d, H100XM_20C, &pl),
                         NVML_SUCCESS);
        assert_int_equal(pl.count, 0);
        unsigned count = 32;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(d, &count, ids), NVML_SUCCESS);
        for (unsigned i = 0; i < count; i++)
                assert_true(ids[i] != H100XM_80C && ids[i] != H100XM_20C && ids[i] != H100XM_40C);

        /* The placement ids the two 20C got: 40 and 60 (the 40C took 0..39). */
        nvmlVgpuInstance_t inst[8];
        count = 8;
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, inst), NVML_SUCCESS);
        assert_int_equal(count, 3);
        nvmlVgpuPlacementId_t pid = { .version = nvmlVgpuPlacementId_v1 };
        assert_int_equal(n.nvmlVgpuInstanceGetPlacementId(inst[2], &pid), NVML_SUCCESS);
        assert_int_equal(pid.placementId, 60);
        pid.version = 0;
        assert_int_equal(n.nvmlVgpuInstanceGetPlacementId(inst[2], &pid),
                         NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
}

static void test_mig_backed_vgpu(void **state)
{
        const char *root = *state;
        nvmlDevice_t d = dev(0);
        nvmlGpuInstance_t gi;
        unsigned count = 0;
        nvmlVgpuTypeId_t ids[32];

        /* MIG off: the MIG-backed type is refused. */
        add_vgpu(root, 0, H100XM_1_10C, "cccccccc-0000-0000-0000-000000000001", "0000:18:00.4",
                 -EBUSY);
        enable_mig(d);
        /* MIG on without a GI of the profile: no room. Time-sliced: refused. */
        add_vgpu(root, 0, H100XM_1_10C, "cccccccc-0000-0000-0000-000000000001", "0000:18:00.4",
                 -ENOSPC);
        add_vgpu(root, 0, H100XM_20C, "cccccccc-0000-0000-0000-000000000001", "0000:18:00.4",
                 -EBUSY);
        assert_int_equal(n.nvmlDeviceCreateGpuInstance(d, 19, &gi), NVML_SUCCESS);
        count = 32;
        assert_int_equal(n.nvmlDeviceGetCreatableVgpus(d, &count, ids), NVML_SUCCESS);
        assert_int_equal(count, 1);
        assert_int_equal(ids[0], H100XM_1_10C);
        add_vgpu(root, 0, H100XM_1_10C, "cccccccc-0000-0000-0000-000000000001", "0000:18:00.4",
                 0);
        /* One vGPU per GI. */
        add_vgpu(root, 0, H100XM_1_10C, "cccccccc-0000-0000-0000-000000000002", "0000:18:00.5",
                 -ENOSPC);
        nvmlVgpuInstance_t inst;
        count = 1;
        assert_int_equal(n.nvmlDeviceGetActiveVgpus(d, &count, &inst), NVML_SUCCESS);
        nvmlGpuInstanceInfo_t gii;
        unsigned gid = 0;
        assert_int_equal(n.nvmlGpuInstanceGetInfo(gi, &gii), NVML_SUCCESS);
        assert_int_equal(n.nvmlVgpuInstanceGetGpuInstanceId(inst, &gid), NVML_SUCCESS);
        assert_int_equal(gid, gii.id);
        /* The GI holds a vGPU. */
        assert_int_equal(n.nvmlGpuInstanceDestroy(gi), NVML_ERROR_IN_USE);
        nvmlVgpuSchedulerGetState_t st;
        assert_int_equal(n.nvmlDeviceGetVgpuSchedulerState(d, &st), NVML_ERROR_NOT_SUPPORTED);
}

static void test_no_vgpu_host(void **state)
{
        const char *root = *state;
        struct sim_state *s = lock_x(root);
        s->vgpu_interface = SIM_VGPU_NONE;
        commit_unlock(s);

        nvmlGpuVirtualizationMode_t vm = 9;
        unsigned count = 0;
        assert_int_equal(n.nvmlDeviceGetVirtualizationMode(dev(0), &vm), NVML_SUCCESS);
        assert_int_equal(vm, NVML_GPU_VIRTUALIZATION_MODE_NONE);
        assert_int_equal(n.nvmlDeviceGetSupportedVgpus(dev(0), &count, NULL),
                         NVML_ERROR_NOT_SUPPORTED);
}

/* ---- injection and sharing -------------------------------------------------------------------- */

static void test_injection(void **state)
{
        const char *root = *state;
        struct sim_state *s = lock_x(root);
        assert_int_equal(sim_inject_add(s, "nvmlDeviceGetCount_v2", NVML_ERROR_UNKNOWN, -1, NULL,
                                        SIM_INJECT_ONCE),
                         0);
        assert_int_equal(sim_inject_add(s, "nvmlDeviceGetName", NVML_ERROR_GPU_IS_LOST, 1, NULL,
                                        SIM_INJECT_ALWAYS),
                         0);
        assert_int_equal(sim_inject_add(s, "nvmlShutdown", NVML_ERROR_TIMEOUT, -1, NULL,
                                        SIM_INJECT_ONCE),
                         0);
        commit_unlock(s);

        unsigned count = 0;
        char name[96];
        /* ONCE: fails the first time only, and is gone from the state. */
        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNKNOWN);
        assert_int_equal(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
        assert_int_equal(count, 8);
        /* ALWAYS, for GPU 1 only. */
        for (int i = 0; i < 3; i++)
                assert_int_equal(n.nvmlDeviceGetName(dev(1), name, sizeof(name)),
                                 NVML_ERROR_GPU_IS_LOST);
        assert_int_equal(n.nvmlDeviceGetName(dev(0), name, sizeof(name)), NVML_SUCCESS);

        s = lock_x(root);
        assert_int_equal(s->n_inject, 2);
        assert_string_equal(s->inject[0].call, "nvmlDeviceGetName");
        sim_state_unlock(s);

        /* Injection comes before the init check: shutdown fails once, then works. */
        assert_int_equal(n.nvmlShutdown(), NVML_ERROR_TIMEOUT);
}

/* Two processes, one GPU view: a child creates a GI, the parent sees it. */
static void test_shared_by_processes(void **state)
{
        (void)state;
        nvmlDevice_t d = dev(2);
        unsigned count = 9;
        enable_mig(d);
        assert_int_equal(n.nvmlDeviceGetGpuInstances(d, 14, NULL, &count), NVML_SUCCESS);
        assert_int_equal(count, 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* A separate process: its own init. */
                nvmlGpuInstance_t gi;
                if (n.nvmlInit_v2() != NVML_SUCCESS)
                        _exit(10);
                nvmlDevice_t cd = NULL;
                if (n.nvmlDeviceGetHandleByIndex_v2(2, &cd) != NVML_SUCCESS)
                        _exit(11);
                if (n.nvmlDeviceCreateGpuInstance(cd, 14, &gi) != NVML_SUCCESS)
                        _exit(12);
                _exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);

        nvmlGpuInstance_t list[4];
        assert_int_equal(n.nvmlDeviceGetGpuInstances(d, 14, list, &count), NVML_SUCCESS);
        assert_int_equal(count, 1);
        nvmlGpuInstanceInfo_t gii;
        assert_int_equal(n.nvmlGpuInstanceGetInfo(list[0], &gii), NVML_SUCCESS);
        assert_int_equal(gii.profileId, 14);
        /* The driver's choice without a placement: the highest free one, (4,2). */
        assert_int_equal(gii.placement.start, 4);
        assert_int_equal(gii.placement.size, 2);
}

static void test_error_strings(void **state)
{
        (void)state;
        for (int c = 0; c <= NVML_ERROR_RESET_TYPE_NOT_SUPPORTED; c++) {
                const char *m = n.nvmlErrorString((nvmlReturn_t)c);
                assert_non_null(m);
                assert_true(strlen(m) > 0);
                if (strcmp(m, "Unknown Error") == 0)
                        fail_msg("code %d has no message of its own", c);
        }
        assert_string_equal(n.nvmlErrorString(NVML_ERROR_UNKNOWN), "Unknown Error");
        assert_string_equal(n.nvmlErrorString((nvmlReturn_t)12345), "Unknown Error");
        assert_string_equal(n.nvmlErrorString(NVML_ERROR_IN_USE), "In use by another client");
}

static int setup_lib(void **state)
{
        (void)state;
        n.dl = open_lib(SIM_NVML_LIB);
        return 0;
}

static int teardown_lib(void **state)
{
        (void)state;
        dlclose(n.dl);
        return 0;
}

int main(void)
{
        const struct CMUnitTest plain[] = {
                cmocka_unit_test(test_exports),
                cmocka_unit_test_setup_teardown(test_error_strings, setup_lib, teardown_lib),
        };
        const struct CMUnitTest h100[] = {
                cmocka_unit_test(test_init_refcount),
                cmocka_unit_test(test_discovery_by_path),
                cmocka_unit_test_setup_teardown(test_device_identity, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_vfio_gpu_invisible, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_load_changes, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_mig_off_fails, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_profile_index_vs_id, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_placements_and_overlap, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_gi_destroy_with_ci, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_count_protocol_and_same_size, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_heterogeneous_mode, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_mig_backed_vgpu, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_load_bounds_clock_pins, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_load_vgpu_and_mig, setup_h100,
                                                teardown_host),
                cmocka_unit_test_setup_teardown(test_load_vgpu_pin, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_no_vgpu_host, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_injection, setup_h100, teardown_host),
                cmocka_unit_test_setup_teardown(test_shared_by_processes, setup_h100,
                                                teardown_host),
        };
        const struct CMUnitTest mixed[] = {
                cmocka_unit_test_setup_teardown(test_ampere_pending, setup_mixed, teardown_host),
        };
        int failed = cmocka_run_group_tests_name("plain", plain, NULL, NULL);
        failed += cmocka_run_group_tests_name("dgx-h100", h100, group_setup_h100,
                                              group_teardown_h100);
        failed += cmocka_run_group_tests_name("mixed", mixed, group_setup_mixed,
                                              group_teardown_mixed);
        return failed ? 1 : 0;
}
