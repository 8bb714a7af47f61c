/* SPDX-License-Identifier: MIT */
/*
 * sim-state.h — the state of one simulated GPU host, shared by every process that touches it.
 *
 * A simulated host is a directory ROOT:
 *   ROOT/sys/...                          the generated sysfs tree (sim/sysfs)
 *   ROOT/usr/lib/libnvidia-ml.so.1        symlink to the NVML simulator library (sim/nvml)
 *   ROOT/gpuvirt-sim/state.json           this state (JSON, written atomically)
 *   ROOT/gpuvirt-sim/state.lock           flock()ed: shared to read, exclusive to change
 *
 * The NVML simulator finds ROOT from its own path (dladdr: ROOT/usr/lib/...) or from
 * $GPUVIRT_SIM_ROOT; the kernel mock (sim/kmock, LD_PRELOAD) finds it by walking up from the
 * sysfs path being written until a directory holds gpuvirt-sim/state.json. So production code
 * is configured only with a sysfs root and an NVML library path, exactly as on a real host.
 *
 * Every mutation, from either side, is: sim_state_lock(EXCLUSIVE) → change → sim_state_commit()
 * (writes state.json and re-syncs the dynamic sysfs files: available_instances,
 * creatable_vgpu_types, current_vgpu_type, ...) → sim_state_unlock().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "util/error.h"

#define SIM_MAX_GPUS 16
#define SIM_MAX_GI 8
#define SIM_MAX_CI 8
#define SIM_MAX_VGPUS 64
#define SIM_MAX_INJECT 32

enum sim_vgpu_interface {
        SIM_VGPU_NONE,        /* no vGPU manager: GPUs can be passed through only */
        SIM_VGPU_MDEV,        /* mdev types on SR-IOV VFs (Ampere flow, kernels < 6.8) */
        SIM_VGPU_VENDOR_VFIO, /* nvidia/ directory on each VF (kernels >= 6.8) */
        _SIM_VGPU_INTERFACE_MAX,
        _SIM_VGPU_INTERFACE_INVALID = -EINVAL,
};
const char *sim_vgpu_interface_to_string(enum sim_vgpu_interface v);
enum sim_vgpu_interface sim_vgpu_interface_from_string(const char *s);

struct sim_ci {
        uint32_t id;
        uint32_t profile_id;
        uint32_t start, size; /* compute slices inside the GI */
};

struct sim_gi {
        uint32_t id;
        uint32_t profile_id;
        uint32_t start, size; /* memory slices */
        struct sim_ci cis[SIM_MAX_CI];
        size_t n_cis;
};

struct sim_vgpu {
        uint32_t instance;      /* nvmlVgpuInstance_t, unique per host, never 0 */
        uint32_t type_id;
        char uuid[37];          /* mdev UUID, or a generated one for vendor-VFIO */
        char parent_bdf[16];    /* VF (or PF for non-SR-IOV mdev) the vGPU lives on */
        char vm_id[64];         /* "" until a VM opens it */
        uint32_t placement_id;  /* NVML_INVALID_VGPU_PLACEMENT_ID when none */
        uint32_t gi_id;         /* INVALID_GPU_INSTANCE_ID when time-sliced */
};

struct sim_gpu {
        uint32_t index;
        const struct gv_gpu_model *model; /* borrowed from sim_state.catalog */
        char bdf[16];                     /* "0000:18:00.0" */
        char uuid[48];                    /* "GPU-xxxxxxxx-xxxx-..." */
        bool mig_capable;
        uint32_t mig_current, mig_pending;
        struct sim_gi gis[SIM_MAX_GI];
        size_t n_gis;
        bool vgpu_heterogeneous;          /* mixed-size mode */
        bool lost;                        /* fell off the bus: NVML calls return GPU_IS_LOST */
        uint32_t load_seed;               /* phase of the simulated utilization curve */
};

enum sim_inject_mode {
        SIM_INJECT_ONCE,
        SIM_INJECT_ALWAYS,
        _SIM_INJECT_MODE_MAX,
        _SIM_INJECT_MODE_INVALID = -EINVAL,
};

/* An injected failure. NVML: `call` is the exported symbol name ("nvmlDeviceGetMigMode"),
 * `code` an nvmlReturn_t, `gpu` an index or -1 for any. Kernel: `call` is "sysfs:<op>" with op
 * one of bind, unbind, driver_override, drivers_probe, mdev_create, mdev_remove,
 * current_vgpu_type, sriov_numvfs; `code` a positive errno; `target` a BDF/UUID or "" for any. */
struct sim_inject {
        char call[96];
        int code;
        int gpu;
        char target[40];
        enum sim_inject_mode mode;
};

struct sim_state {
        char *root;                       /* ROOT, absolute */
        char *profile;                    /* "dgx-h100" */
        char driver_version[32];          /* "550.90.07" */
        char nvml_version[32];            /* "12.550.90.07" */
        enum sim_vgpu_interface vgpu_interface;
        struct gv_catalog *catalog;       /* owned; loaded from the catalog the host was made from */
        struct sim_gpu gpus[SIM_MAX_GPUS];
        size_t n_gpus;
        struct sim_vgpu vgpus[SIM_MAX_VGPUS];
        size_t n_vgpus;
        uint32_t next_vgpu_instance;
        struct sim_inject inject[SIM_MAX_INJECT];
        size_t n_inject;
        /* private */
        int lock_fd;
        bool exclusive;
};

enum sim_lock_mode { SIM_LOCK_SHARED, SIM_LOCK_EXCLUSIVE };

/* Find ROOT for a path inside a simulated host (walks up looking for gpuvirt-sim/state.json).
 * -ENOENT when the path is not inside one. */
int sim_root_of_path(const char *path, char **ret_root);

/* Lock and load. The returned state must be released with sim_state_unlock(). */
int sim_state_lock(const char *root, enum sim_lock_mode mode, struct sim_state **ret,
                   struct gv_error **err);
/* Write state.json atomically and re-sync the dynamic sysfs files. Needs EXCLUSIVE. */
int sim_state_commit(struct sim_state *s, struct gv_error **err);
/* Release the lock and free. Accepts NULL. */
struct sim_state *sim_state_unlock(struct sim_state *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sim_state *, sim_state_unlock);

/* Create a new host state (used by `gpuvirt-sim create`); does not write sysfs. */
struct sim_profile;
int sim_state_new(const char *root, const struct sim_profile *profile, struct sim_state **ret,
                  struct gv_error **err);

/* Injection: returns the code to fail with (nvmlReturn_t or errno), or 0. Consumes ONCE
 * entries (the caller must commit). gpu = -1 / target = NULL match any. */
int sim_inject_take(struct sim_state *s, const char *call, int gpu, const char *target);

/* Lookups */
struct sim_gpu *sim_gpu_by_bdf(struct sim_state *s, const char *bdf);
struct sim_vgpu *sim_vgpu_by_instance(struct sim_state *s, uint32_t instance);
struct sim_vgpu *sim_vgpu_by_uuid(struct sim_state *s, const char *uuid);

/* vGPU rules shared by NVML and the kernel side (reference vgpu.md §4, §8):
 * how many more instances of type_id can be created on gpu now (0 when the same-size rule,
 * MIG state or capacity forbids it). */
uint32_t sim_vgpu_creatable(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id);
/* Create / destroy a vGPU instance in the state (validates with sim_vgpu_creatable; -EBUSY,
 * -ENOSPC, -EINVAL). gi_id for MIG-backed types: a free GI of the type's profile is chosen
 * when INVALID_GPU_INSTANCE_ID is passed. */
int sim_vgpu_add(struct sim_state *s, struct sim_gpu *g, uint32_t type_id, const char *uuid,
                 const char *parent_bdf, struct sim_vgpu **ret);
int sim_vgpu_remove(struct sim_state *s, uint32_t instance);
/* The GPU a VF or PF BDF belongs to (the PF itself, or the VF's physfn). */
struct sim_gpu *sim_gpu_of_function(struct sim_state *s, const char *bdf);
