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
#define SIM_MAX_PINS 64

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
        uint32_t gpu;           /* index of the sim_gpu it runs on (set by sim_vgpu_add) */
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

/* A pinned load (docs/simulator.md, "Load"): fixed values that replace the load model's for one
 * GPU, one vGPU instance or one GPU instance, so a test can assert exact figures through the
 * whole stack. Set with `gpuvirt-sim load`; kept until cleared (a pin on an instance that is
 * gone does nothing; GI ids are reused, so clear GI pins with the layout that made them). */
enum sim_pin_kind {
        SIM_PIN_GPU,  /* `gpu` */
        SIM_PIN_VGPU, /* `id`: the vGPU instance (nvmlVgpuInstance_t) */
        SIM_PIN_GI,   /* `gpu` and `id`: the GPU instance id */
        _SIM_PIN_KIND_MAX,
        _SIM_PIN_KIND_INVALID = -EINVAL,
};
const char *sim_pin_kind_to_string(enum sim_pin_kind k);
enum sim_pin_kind sim_pin_kind_from_string(const char *s);

enum {
        SIM_PIN_UTIL = 1 << 0,     /* util_pct: GPU utilization (gpu), SM utilization (vgpu) */
        SIM_PIN_MEM_USED = 1 << 1, /* mem_used_mib: memory (gpu, gi), framebuffer (vgpu) */
        SIM_PIN_POWER = 1 << 2,    /* power_mw (gpu) */
        SIM_PIN_TEMP = 1 << 3,     /* temperature_c (gpu) */
};

struct sim_pin {
        enum sim_pin_kind kind;
        uint32_t gpu;           /* host GPU index (gpu, gi kinds); the vGPU's GPU (vgpu) */
        uint32_t id;            /* vGPU instance or GI id; 0 for a GPU */
        unsigned fields;        /* SIM_PIN_* */
        uint32_t util_pct;
        uint64_t mem_used_mib;
        uint32_t power_mw;
        uint32_t temperature_c;
};

struct sim_state {
        char *root;                       /* ROOT, absolute */
        char *profile;                    /* "dgx-h100" */
        char driver_version[32];          /* "550.90.07" */
        char nvml_version[32];            /* "12.550.90.07" */
        enum sim_vgpu_interface vgpu_interface;
        char *catalog_dir;                /* the catalog directory the host was made from */
        struct gv_catalog *catalog;       /* loaded from catalog_dir (per-process cache) */
        struct sim_gpu gpus[SIM_MAX_GPUS];
        size_t n_gpus;
        struct sim_vgpu vgpus[SIM_MAX_VGPUS];
        size_t n_vgpus;
        uint32_t next_vgpu_instance;
        struct sim_inject inject[SIM_MAX_INJECT];
        size_t n_inject;
        struct sim_pin pins[SIM_MAX_PINS];
        size_t n_pins;
        /* private */
        int lock_fd;
        bool exclusive;
        bool catalog_cached;              /* catalog belongs to the process-wide cache */
};

enum sim_lock_mode { SIM_LOCK_SHARED, SIM_LOCK_EXCLUSIVE };

/* Find ROOT for a path inside a simulated host (walks up looking for gpuvirt-sim/state.json).
 * -ENOENT when the path is not inside one. */
int sim_root_of_path(const char *path, char **ret_root);

/* Free the per-process catalog cache (every state loaded since holds a borrowed catalog, so
 * only when none is left: a shared library's destructor, before it is unloaded). */
void sim_state_cache_free(void);

/* Lock and load. The returned state must be released with sim_state_unlock(). */
int sim_state_lock(const char *root, enum sim_lock_mode mode, struct sim_state **ret,
                   struct gv_error **err);
/* Does the calling thread hold a lock on root's state right now? flock() locks taken through
 * different open()s conflict even inside one process, so code that may run while its own
 * caller holds the lock (the kernel mock seeing sim_sysfs_sync's own writes) must check this
 * instead of locking again, which would deadlock. */
bool sim_state_held(const char *root);

/* Write state.json atomically and re-sync the dynamic sysfs files. Needs EXCLUSIVE. */
int sim_state_commit(struct sim_state *s, struct gv_error **err);
/* Release the lock and free. Accepts NULL. */
struct sim_state *sim_state_unlock(struct sim_state *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sim_state *, sim_state_unlock);

/* Create a new host state (used by `gpuvirt-sim create`); does not write sysfs. It creates
 * ROOT/gpuvirt-sim/ and returns the state holding the EXCLUSIVE lock, exactly as
 * sim_state_lock(EXCLUSIVE) would: the caller writes the tree, then sim_state_commit() and
 * sim_state_unlock(). Nothing is written to state.json before the commit. The catalog is the
 * default one (gv_catalog_load_default's rules); its directory is recorded in the state so
 * every later process (the NVML library inside any program) loads the same catalog. */
struct sim_profile;
int sim_state_new(const char *root, const struct sim_profile *profile, struct sim_state **ret,
                  struct gv_error **err);
/* The same, from an explicit list of GPUs (tests, hand-made hosts): models[i] is a catalog
 * model name, bdfs[i] its PCI address. */
int sim_state_new_gpus(const char *root, const char *profile_name,
                       enum sim_vgpu_interface vgpu_interface, const char *const *models,
                       const char *const *bdfs, size_t n, struct sim_state **ret,
                       struct gv_error **err);

/* Injection: returns the code to fail with (nvmlReturn_t or errno), or 0. Consumes ONCE
 * entries (the caller must commit). gpu = -1 / target = NULL match any. An entry with gpu -1
 * (target "") matches every GPU (target); an entry for one GPU matches only calls about it.
 * `gpu` is the host GPU index (sim_gpu.index), not the NVML index, which skips GPUs that are
 * not bound to nvidia. */
int sim_inject_take(struct sim_state *s, const char *call, int gpu, const char *target);
/* Would sim_inject_take() fail this call, and with a ONCE entry? Does not consume. */
int sim_inject_peek(const struct sim_state *s, const char *call, int gpu, const char *target,
                    bool *ret_once);
/* Add an entry. -EINVAL for an empty/too long call or target, -ENOSPC when full. */
int sim_inject_add(struct sim_state *s, const char *call, int code, int gpu, const char *target,
                   enum sim_inject_mode mode);
const char *sim_inject_mode_to_string(enum sim_inject_mode m);
enum sim_inject_mode sim_inject_mode_from_string(const char *s);

/* Lookups */
struct sim_gpu *sim_gpu_by_bdf(struct sim_state *s, const char *bdf);
struct sim_gpu *sim_gpu_by_index(struct sim_state *s, uint32_t index);
struct sim_vgpu *sim_vgpu_by_instance(struct sim_state *s, uint32_t instance);
struct sim_vgpu *sim_vgpu_by_uuid(struct sim_state *s, const char *uuid);

/* vGPU rules shared by NVML and the kernel side (reference vgpu.md §4, §8):
 * how many more instances of type_id can be created on gpu now (0 when the same-size rule,
 * MIG state or capacity forbids it). The rules (docs/simulator-nvml.md, "vGPU rules"):
 *  - no vGPU interface on the host, or a type the GPU's model lacks: 0;
 *  - MIG-backed type: MIG enabled, one vGPU per GPU instance, a free GI of the type's GI
 *    profile; different MIG-backed types may be mixed (vgpu.md §5);
 *  - time-sliced type: not while MIG is enabled; equal-size (homogeneous) mode: only the type
 *    already running, up to max_instances; mixed-size (heterogeneous) mode: up to
 *    max_instances_mixed, at a placement id that overlaps no other vGPU (framebuffer fits). */
uint32_t sim_vgpu_creatable(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id);
/* Why sim_vgpu_creatable() says 0, as -errno with a message: -EINVAL (type unknown, no vGPU
 * interface), -EBUSY (state forbids: MIG mode, another type running in equal-size mode, type
 * not allowed in mixed-size mode), -ENOSPC (all instances, GIs or placements taken). 0 when
 * one more can be created. */
int sim_vgpu_check(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id,
                   struct gv_error **err);
/* Create / destroy a vGPU instance in the state (validates with sim_vgpu_check; -EBUSY,
 * -ENOSPC, -EINVAL, -EEXIST for a UUID in use). For MIG-backed types a free GI of the type's
 * profile is chosen; time-sliced vGPUs get the lowest free placement id. */
int sim_vgpu_add(struct sim_state *s, struct sim_gpu *g, uint32_t type_id, const char *uuid,
                 const char *parent_bdf, struct sim_vgpu **ret);
/* The same with an explicit GI (MIG-backed; INVALID_GPU_INSTANCE_ID = choose) and placement
 * id (time-sliced; NVML_INVALID_VGPU_PLACEMENT_ID = choose). A GI or placement that is not
 * free is -EBUSY, one that does not exist or does not fit the type -EINVAL. */
int sim_vgpu_add_at(struct sim_state *s, struct sim_gpu *g, uint32_t type_id, const char *uuid,
                    const char *parent_bdf, uint32_t gi_id, uint32_t placement_id,
                    struct sim_vgpu **ret, struct gv_error **err);
int sim_vgpu_remove(struct sim_state *s, uint32_t instance);
/* Number of vGPUs on g. */
size_t sim_gpu_n_vgpus(const struct sim_state *s, const struct sim_gpu *g);
/* The vGPU type type_id of g's model, or NULL. */
const struct gv_vgpu_type *sim_gpu_vgpu_type(const struct sim_gpu *g, uint32_t type_id);
/* Placement ids (vgpu.md §8): a time-sliced type of F MiB framebuffer has placement size
 * ceil(F/1024) and placement ids k*size for k < max_instances_mixed (heterogeneous) or
 * k < max_instances (homogeneous); "supported" lists them all, "creatable" only those free
 * now and only when the type is creatable. Returns the number written (at most max) and the
 * placement size in *ret_size. MIG-backed types have none (0). */
size_t sim_vgpu_placements(const struct sim_state *s, const struct sim_gpu *g,
                           const struct gv_vgpu_type *t, bool heterogeneous, bool creatable_only,
                           uint32_t *ids, size_t max, uint32_t *ret_size);
/* Mixed-size mode on/off: -EOPNOTSUPP when the model is not capable or the host has no vGPU,
 * -EBUSY while vGPUs exist on g. */
int sim_vgpu_set_heterogeneous(struct sim_state *s, struct sim_gpu *g, bool on,
                               struct gv_error **err);

/* MIG (mig.md). Profiles are looked up by device-specific profile ID. */
const struct gv_mig_gi_profile *sim_gi_profile(const struct sim_gpu *g, uint32_t profile_id);
struct sim_gi *sim_gi_by_id(struct sim_gpu *g, uint32_t gi_id);
/* Set the MIG mode. Hopper and later apply at once (returns 0); Ampere sets the pending mode
 * only (returns 1) until sim_gpu_reset(), which the kernel mock is to call when the GPU is
 * unbound from / bound to a driver, and gpuvirt-sim on request (docs/simulator-nvml.md). -EOPNOTSUPP: no MIG; -EBUSY: vGPUs exist on the GPU. */
/* reset_fails: on Ampere the driver's reset attempt fails (the mode stays pending, returns 1). */
int sim_mig_set_mode(struct sim_state *s, struct sim_gpu *g, bool enable, bool reset_fails,
                     struct gv_error **err);
/* A GPU reset: the pending MIG mode becomes current, GPU and compute instances are gone and
 * mixed-size mode reverts to equal-size (mig.md §8, vgpu.md §8). -EBUSY while vGPUs exist. */
int sim_gpu_reset(struct sim_state *s, struct sim_gpu *g, struct gv_error **err);
/* GPU instances. placement NULL: the driver's choice (the free placement with the highest
 * start, which reproduces MUG's `-cgi 19,14,5` example). -EOPNOTSUPP (no MIG, MIG disabled),
 * -EINVAL (unknown profile, placement not valid for it), -ENOSPC (overlap, instance limits). */
int sim_gi_create(struct sim_state *s, struct sim_gpu *g, uint32_t profile_id,
                  const struct gv_mig_placement *placement, struct sim_gi **ret,
                  struct gv_error **err);
/* How many more GIs of the profile fit now. */
uint32_t sim_gi_remaining(const struct sim_gpu *g, uint32_t profile_id);
/* Is this placement free now (no overlap, limits not reached)? */
bool sim_gi_placement_free(const struct sim_gpu *g, const struct gv_mig_gi_profile *p,
                           const struct gv_mig_placement *pl);
/* -ENOENT unknown GI, -EBUSY while compute instances or a vGPU use it. */
int sim_gi_destroy(struct sim_state *s, struct sim_gpu *g, uint32_t gi_id, struct gv_error **err);
/* Compute instances. CI placements are in compute slices: k*slices for k*slices+slices <=
 * the GI's compute slices, at most the profile's instance count ([I], docs). */
const struct gv_mig_ci_profile *sim_ci_profile(const struct sim_gpu *g, const struct sim_gi *gi,
                                               uint32_t ci_profile_id);
size_t sim_ci_placements(const struct sim_gpu *g, const struct sim_gi *gi,
                         const struct gv_mig_ci_profile *cp, struct gv_mig_placement *out,
                         size_t max);
uint32_t sim_ci_remaining(const struct sim_gpu *g, const struct sim_gi *gi, uint32_t profile_id);
int sim_ci_create(struct sim_gpu *g, struct sim_gi *gi, uint32_t profile_id,
                  const struct gv_mig_placement *placement, struct sim_ci **ret,
                  struct gv_error **err);
int sim_ci_destroy(struct sim_gi *gi, uint32_t ci_id);
struct sim_ci *sim_ci_by_id(struct sim_gi *gi, uint32_t ci_id);

/* Simulated load (docs/simulator.md, "Load"; docs/simulator-nvml.md, "Simulated load"): a
 * deterministic function of the time t (seconds; sim_now()) and the GPU's load_seed, scaled by
 * how much of the GPU is allocated (vGPU framebuffer or MIG memory slices), each instance with
 * its own phase; pinned values (struct sim_pin) replace the model's. Bounds: utilization
 * 0-100 %, memory used <= total, power <= the catalog's power_max_mw, temperature 30-85 C. */
struct sim_load {
        double allocated;        /* 0..1 */
        unsigned gpu_util;       /* percent */
        unsigned mem_util;       /* percent */
        uint64_t mem_used_mib;   /* including the driver's reserved part */
        uint64_t mem_reserved_mib;
        unsigned power_mw;
        unsigned temperature_c;
};
void sim_gpu_load(const struct sim_state *s, const struct sim_gpu *g, double t,
                  struct sim_load *ret);
struct sim_vgpu_load {
        unsigned sm, mem, enc, dec; /* percent */
        uint64_t fb_used_mib;
};
void sim_vgpu_load(const struct sim_state *s, const struct sim_vgpu *v, double t,
                   struct sim_vgpu_load *ret);
/* A GPU instance's memory: its profile's memory, and the part in use (what NVML's memory info
 * on a MIG device handle of the GI says, and the framebuffer use of a MIG-backed vGPU on it). */
struct sim_gi_load {
        uint64_t mem_total_mib, mem_used_mib;
};
void sim_gi_load(const struct sim_state *s, const struct sim_gpu *g, const struct sim_gi *gi,
                 double t, struct sim_gi_load *ret);
/* The clock of the load model: $GPUVIRT_SIM_TIME (seconds, a decimal number) when set, so a test
 * can freeze it; otherwise CLOCK_REALTIME. */
double sim_now(void);

/* Pins. sim_pin_get: the pin of (kind, gpu, id), made empty when absent (NULL when the table is
 * full). sim_pin_find: the pin or NULL. sim_pins_clear: drop pins of a kind on a GPU (kind or
 * gpu negative: any); returns how many went. */
struct sim_pin *sim_pin_get(struct sim_state *s, enum sim_pin_kind kind, uint32_t gpu,
                            uint32_t id);
const struct sim_pin *sim_pin_find(const struct sim_state *s, enum sim_pin_kind kind,
                                   uint32_t gpu, uint32_t id);
size_t sim_pins_clear(struct sim_state *s, int kind, int gpu);
/* The upper bound of a GPU's power: the catalog's power_max_mw, 300 W when it has none. */
uint32_t sim_gpu_power_max_mw(const struct sim_gpu *g);

/* The GPU a VF or PF BDF belongs to (the PF itself, or the VF's physfn). */
struct sim_gpu *sim_gpu_of_function(struct sim_state *s, const char *bdf);
