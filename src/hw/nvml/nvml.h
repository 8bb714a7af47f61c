/* SPDX-License-Identifier: MIT */
/*
 * nvml.h — gpuvirt's binding to NVIDIA's NVML library, loaded at run time with dlopen.
 *
 * We never link libnvidia-ml: gv_nvml_open() dlopens it (libnvidia-ml.so.1, then
 * libnvidia-ml.so, or a path the caller passes — the CLI reads GPUVIRT_NVML_LIBRARY, this layer
 * reads no environment), resolves every entry point through one type-checked symbol table
 * (nvml-load.c) and calls nvmlInit_v2. On a simulated host the path is ROOT/usr/lib/
 * libnvidia-ml.so.1, the NVML simulator; the binding cannot tell the difference.
 *
 * No NVML type leaks out of src/hw/nvml: outputs are gpuvirt structs (the MIG profile structs
 * of catalog.h among them, so the hardware fills the same struct the catalog uses), and NVML
 * handles are opaque (struct gv_nvml_device, and `void *handle` inside GI/CI values).
 *
 * Errors (docs/nvml.md): every nvmlReturn_t maps to one errno (nvml-errors.c), and the message
 * names the NVML call, its arguments, NVML's symbolic code and NVML's own text, e.g.
 *   "nvmlDeviceCreateGpuInstanceWithPlacement(GPU 0000:18:00.0, profile id 9, placement 4:4):
 *    NVML_ERROR_INSUFFICIENT_RESOURCES (Insufficient Resources)"
 * A wrapper whose optional NVML symbol the library lacks returns -EOPNOTSUPP and says which
 * symbol and which NVML version added it.
 *
 * Conventions: int return >= 0 / -errno, `struct gv_error **err` last, ret_ written only on
 * success. Objects returned by pointer (devices) are owned by the gv_nvml and live until its
 * last unref; GI/CI values hold handles that NVML invalidates when the instance is destroyed or
 * the GPU reset (nvml-abi.md §7.5).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "util/error.h"
#include "util/parse.h"

/* Default sonames, in the order tried (nvml-abi.md §1, §11). */
#define GV_NVML_SONAME "libnvidia-ml.so.1"
#define GV_NVML_SONAME_DEV "libnvidia-ml.so"

/* Returned by gv_nvml_vgpu_type_gi_profile_id for a time-sliced (not MIG-backed) type. */
#define GV_NVML_NO_GI_PROFILE UINT32_MAX
/* A vGPU instance without a placement id (NVML_INVALID_VGPU_PLACEMENT_ID, 0xFFFF). */
#define GV_NVML_NO_PLACEMENT UINT32_MAX
/* A time-sliced vGPU instance's GI id (INVALID_GPU_INSTANCE_ID). */
#define GV_NVML_NO_GI UINT32_MAX

struct gv_nvml;
struct gv_nvml_device;

/* Optional parts of the ABI: a bit is set when every symbol it needs was found. */
enum gv_nvml_cap {
        GV_NVML_CAP_MEMORY_V2,         /* nvmlDeviceGetMemoryInfo_v2 */
        GV_NVML_CAP_TEMPERATURE,       /* nvmlDeviceGetTemperature (deprecated in 13.0) */
        GV_NVML_CAP_TEMPERATURE_V,     /* nvmlDeviceGetTemperatureV (13.x) */
        GV_NVML_CAP_MIG,               /* MIG mode, GPU/compute instances, MIG device handles */
        GV_NVML_CAP_MIG_PROFILE_V,     /* ...ProfileInfoV (v2 structs with names) */
        GV_NVML_CAP_VGPU,              /* vGPU types, instances, samples, scheduler */
        GV_NVML_CAP_VGPU_PLACEMENTS,   /* placements and instance placement ids (12.4+) */
        GV_NVML_CAP_VGPU_HETEROGENEOUS, /* heterogeneous (mixed-size) mode get/set (12.4+) */
        _GV_NVML_CAP_MAX,
        _GV_NVML_CAP_INVALID = -EINVAL,
};
const char *gv_nvml_cap_to_string(enum gv_nvml_cap c);
enum gv_nvml_cap gv_nvml_cap_from_string(const char *s);

/* ---- loading (nvml-load.c) ---- */

/* Load NVML and initialize it. path NULL: the default sonames. Library absent: -ENOENT, with a
 * message that names it and says what still works; a required symbol missing: -ELIBBAD naming
 * the symbol and the path; nvmlInit_v2 failing: its mapped errno. Returns a reference. */
int gv_nvml_open(const char *path, struct gv_nvml **ret, struct gv_error **err);
struct gv_nvml *gv_nvml_ref(struct gv_nvml *n);
/* On the last reference: nvmlShutdown, dlclose, free. Accepts NULL; returns NULL. */
struct gv_nvml *gv_nvml_unref(struct gv_nvml *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_nvml *, gv_nvml_unref);

bool gv_nvml_has(const struct gv_nvml *n, enum gv_nvml_cap c);
/* How many NVML calls made by this thread answered NVML_ERROR_GPU_IS_LOST or
 * NVML_ERROR_RESET_REQUIRED (the GPU is gone or needs a reset), whether or not the caller asked
 * for the error; ret_last_code (optional): the latest such nvmlReturn_t. A caller compares the
 * count before and after its calls about one GPU (src/host marks the GPU unhealthy). */
unsigned gv_nvml_fatal_count(int *ret_last_code);
/* The path passed to dlopen (a soname when searched). */
const char *gv_nvml_library_path(const struct gv_nvml *n);

/* ---- errors (nvml-errors.c) ---- */

/* errno (positive) for an nvmlReturn_t value; EIO for values NVML does not define. */
int gv_nvml_return_to_errno(int nvml_return);
/* "NVML_ERROR_IN_USE"; NULL for values NVML does not define. */
const char *gv_nvml_return_to_string(int nvml_return);

/* ---- system and devices (nvml-device.c) ---- */

int gv_nvml_driver_version(struct gv_nvml *n, char **ret, struct gv_error **err);
int gv_nvml_nvml_version(struct gv_nvml *n, char **ret, struct gv_error **err);

int gv_nvml_device_count(struct gv_nvml *n, unsigned *ret, struct gv_error **err);
/* Device handles are owned by n (same handle → same object). */
int gv_nvml_device_by_index(struct gv_nvml *n, unsigned index, struct gv_nvml_device **ret,
                            struct gv_error **err);
/* pci: any form NVML accepts ("0000:18:00.0", "18:00.0"). */
int gv_nvml_device_by_pci(struct gv_nvml *n, const char *pci, struct gv_nvml_device **ret,
                          struct gv_error **err);
/* uuid: "GPU-...", "MIG-..." */
int gv_nvml_device_by_uuid(struct gv_nvml *n, const char *uuid, struct gv_nvml_device **ret,
                           struct gv_error **err);
/* How messages name the device: "GPU 0000:18:00.0", or "GPU 3" when its PCI address could not
 * be read, or "MIG device 2 of GPU 0000:18:00.0". Never NULL. */
const char *gv_nvml_device_label(const struct gv_nvml_device *d);
struct gv_nvml *gv_nvml_device_nvml(const struct gv_nvml_device *d);

int gv_nvml_device_name(struct gv_nvml_device *d, char **ret, struct gv_error **err);
int gv_nvml_device_uuid(struct gv_nvml_device *d, char **ret, struct gv_error **err);

struct gv_nvml_pci_info {
        struct gv_pci_addr addr;
        uint16_t vendor, device;                    /* from pciDeviceId: device << 16 | vendor */
        uint16_t subsystem_vendor, subsystem_device; /* from pciSubSystemId, same packing */
};
int gv_nvml_device_pci_info(struct gv_nvml_device *d, struct gv_nvml_pci_info *ret,
                            struct gv_error **err);

struct gv_nvml_memory {
        uint64_t total, free, used; /* bytes */
        uint64_t reserved;          /* bytes; 0 unless has_reserved */
        bool has_reserved;          /* read through nvmlDeviceGetMemoryInfo_v2 */
};
/* v2 when the library has it, else v1. */
int gv_nvml_device_memory(struct gv_nvml_device *d, struct gv_nvml_memory *ret,
                          struct gv_error **err);

struct gv_nvml_utilization {
        uint32_t gpu_pct, memory_pct;
};
int gv_nvml_device_utilization(struct gv_nvml_device *d, struct gv_nvml_utilization *ret,
                               struct gv_error **err);
/* Degrees Celsius of the GPU sensor; nvmlDeviceGetTemperatureV when present, else the
 * deprecated nvmlDeviceGetTemperature. */
int gv_nvml_device_temperature(struct gv_nvml_device *d, int *ret_celsius, struct gv_error **err);
int gv_nvml_device_power(struct gv_nvml_device *d, uint32_t *ret_mw, struct gv_error **err);

/* ---- MIG (nvml-mig.c) ---- */

int gv_nvml_mig_mode(struct gv_nvml_device *d, bool *ret_current, bool *ret_pending,
                     struct gv_error **err);
/* Set the pending mode. ret_activation (may be NULL): 0 when the mode is active now, else the
 * mapped -errno of NVML's activationStatus (-ENOTRECOVERABLE: reset or VM reboot needed,
 * -EBUSY: the GPU was not idle). ret_activation_msg (may be NULL): a sentence for that case. */
int gv_nvml_mig_mode_set(struct gv_nvml_device *d, bool enable, int *ret_activation,
                         char **ret_activation_msg, struct gv_error **err);

/* One GPU-instance profile by NVML_GPU_INSTANCE_PROFILE_* index (v2 struct when the library has
 * ...ProfileInfoV, else v1). Fills every field NVML gives, the derived name (mig.md §7) and
 * nvml_index; ret->id is the device-specific profile id to pass to every other call
 * (nvml-abi.md §7.3). Placements and CI profiles are left empty. Free with
 * gv_nvml_gi_profile_done(). */
int gv_nvml_gi_profile_info(struct gv_nvml_device *d, uint32_t index,
                            struct gv_mig_gi_profile *ret, struct gv_error **err);
/* Every GI profile of the device: indices from 0, skipping NOT_SUPPORTED and stopping at
 * INVALID_ARGUMENT (nvml-abi.md §7.2); each with its possible placements and memory_slices. */
int gv_nvml_gi_profiles(struct gv_nvml_device *d, struct gv_mig_gi_profile **ret,
                        size_t *ret_n, struct gv_error **err);
void gv_nvml_gi_profile_done(struct gv_mig_gi_profile *p);
void gv_nvml_ci_profile_done(struct gv_mig_ci_profile *p);
void gv_nvml_gi_profiles_free(struct gv_mig_gi_profile *p, size_t n);

int gv_nvml_gi_possible_placements(struct gv_nvml_device *d, uint32_t profile_id,
                                   struct gv_mig_placement **ret, size_t *ret_n,
                                   struct gv_error **err);
int gv_nvml_gi_remaining_capacity(struct gv_nvml_device *d, uint32_t profile_id,
                                  uint32_t *ret, struct gv_error **err);

/* A GPU instance: a value; handle is NVML's, valid until the GI is destroyed. */
struct gv_nvml_gi {
        struct gv_nvml_device *device;
        void *handle;
        uint32_t id, profile_id;
        struct gv_mig_placement placement; /* memory slices */
};

/* placement NULL: the driver picks (nvmlDeviceCreateGpuInstance). */
int gv_nvml_gi_create(struct gv_nvml_device *d, uint32_t profile_id,
                      const struct gv_mig_placement *placement, struct gv_nvml_gi *ret,
                      struct gv_error **err);
int gv_nvml_gi_destroy(const struct gv_nvml_gi *gi, struct gv_error **err);
int gv_nvml_gi_by_id(struct gv_nvml_device *d, uint32_t id, struct gv_nvml_gi *ret,
                     struct gv_error **err);
/* Re-read id, profile and placement from NVML. */
int gv_nvml_gi_info(const struct gv_nvml_gi *gi, struct gv_nvml_gi *ret, struct gv_error **err);
/* GIs of one profile id. */
int gv_nvml_gi_list_profile(struct gv_nvml_device *d, uint32_t profile_id,
                            struct gv_nvml_gi **ret, size_t *ret_n, struct gv_error **err);
/* GIs of every profile, ordered by id. */
int gv_nvml_gi_list(struct gv_nvml_device *d, struct gv_nvml_gi **ret, size_t *ret_n,
                    struct gv_error **err);

/* CI profile by NVML_COMPUTE_INSTANCE_PROFILE_* index inside gi. gi_profile (may be NULL): the
 * GI's profile, to derive the name ("1c.3g.40gb"); without it the name is NVML's (v2) or NULL. */
int gv_nvml_ci_profile_info(const struct gv_nvml_gi *gi, uint32_t index,
                            const struct gv_mig_gi_profile *gi_profile,
                            struct gv_mig_ci_profile *ret, struct gv_error **err);
int gv_nvml_ci_possible_placements(const struct gv_nvml_gi *gi, uint32_t profile_id,
                                   struct gv_mig_placement **ret, size_t *ret_n,
                                   struct gv_error **err);
int gv_nvml_ci_remaining_capacity(const struct gv_nvml_gi *gi, uint32_t profile_id,
                                  uint32_t *ret, struct gv_error **err);

struct gv_nvml_ci {
        struct gv_nvml_device *device;
        void *gi_handle;
        uint32_t gi_id;
        void *handle;
        uint32_t id, profile_id;
        struct gv_mig_placement placement; /* compute slices inside the GI */
};
int gv_nvml_ci_create(const struct gv_nvml_gi *gi, uint32_t profile_id,
                      const struct gv_mig_placement *placement, struct gv_nvml_ci *ret,
                      struct gv_error **err);
int gv_nvml_ci_destroy(const struct gv_nvml_ci *ci, struct gv_error **err);
int gv_nvml_ci_by_id(const struct gv_nvml_gi *gi, uint32_t id, struct gv_nvml_ci *ret,
                     struct gv_error **err);
int gv_nvml_ci_info(const struct gv_nvml_ci *ci, struct gv_nvml_ci *ret, struct gv_error **err);
/* CIs of every CI profile inside gi, ordered by id. */
int gv_nvml_ci_list(const struct gv_nvml_gi *gi, struct gv_nvml_ci **ret, size_t *ret_n,
                    struct gv_error **err);

/* MIG device handles (one per CI). */
int gv_nvml_mig_device_max_count(struct gv_nvml_device *d, unsigned *ret, struct gv_error **err);
/* -ENOENT when no MIG device is at index. */
int gv_nvml_mig_device_by_index(struct gv_nvml_device *d, unsigned index,
                                struct gv_nvml_device **ret, struct gv_error **err);
int gv_nvml_device_is_mig(struct gv_nvml_device *d, bool *ret, struct gv_error **err);
int gv_nvml_mig_device_gi_id(struct gv_nvml_device *mig, uint32_t *ret, struct gv_error **err);
int gv_nvml_mig_device_ci_id(struct gv_nvml_device *mig, uint32_t *ret, struct gv_error **err);
int gv_nvml_mig_device_parent(struct gv_nvml_device *mig, struct gv_nvml_device **ret,
                              struct gv_error **err);

/* ---- vGPU (nvml-vgpu.c) ---- */

enum gv_nvml_virt_mode {
        GV_NVML_VIRT_NONE,        /* bare metal */
        GV_NVML_VIRT_PASSTHROUGH, /* the GPU is passed through to this VM */
        GV_NVML_VIRT_VGPU,        /* this is a vGPU inside a VM */
        GV_NVML_VIRT_HOST_VGPU,   /* host with the vGPU manager */
        GV_NVML_VIRT_HOST_VSGA,
        _GV_NVML_VIRT_MAX,
        _GV_NVML_VIRT_INVALID = -EINVAL,
};
const char *gv_nvml_virt_mode_to_string(enum gv_nvml_virt_mode m);
enum gv_nvml_virt_mode gv_nvml_virt_mode_from_string(const char *s);

int gv_nvml_virtualization_mode(struct gv_nvml_device *d, enum gv_nvml_virt_mode *ret,
                                struct gv_error **err);
/* true: SR-IOV host vGPU mode. */
int gv_nvml_host_vgpu_sriov(struct gv_nvml_device *d, bool *ret, struct gv_error **err);

/* Type and instance id lists, through the count protocol (nvml-abi.md §7.1). */
int gv_nvml_vgpu_supported_types(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                 struct gv_error **err);
int gv_nvml_vgpu_creatable_types(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                 struct gv_error **err);
int gv_nvml_vgpu_active_instances(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                  struct gv_error **err);

/* Per-type queries. The device is needed for messages and max instances. */
int gv_nvml_vgpu_type_name(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                           struct gv_error **err);
int gv_nvml_vgpu_type_class(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                            struct gv_error **err);
int gv_nvml_vgpu_type_framebuffer(struct gv_nvml_device *d, uint32_t type_id,
                                  uint64_t *ret_bytes, struct gv_error **err);
int gv_nvml_vgpu_type_max_instances(struct gv_nvml_device *d, uint32_t type_id, uint32_t *ret,
                                    struct gv_error **err);
int gv_nvml_vgpu_type_max_instances_per_vm(struct gv_nvml_device *d, uint32_t type_id,
                                           uint32_t *ret, struct gv_error **err);
/* GV_NVML_NO_GI_PROFILE for a time-sliced type. */
int gv_nvml_vgpu_type_gi_profile_id(struct gv_nvml_device *d, uint32_t type_id, uint32_t *ret,
                                    struct gv_error **err);
int gv_nvml_vgpu_type_license(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                              struct gv_error **err);

struct gv_nvml_vgpu_type {
        uint32_t type_id;
        char *name;      /* as NVML gives it, e.g. "NVIDIA H100XM-20C" */
        char *vgpu_class;
        char *license;
        uint64_t framebuffer_bytes;
        uint32_t max_instances, max_instances_per_vm;
        uint32_t gi_profile_id; /* GV_NVML_NO_GI_PROFILE when time-sliced */
};
int gv_nvml_vgpu_type_info(struct gv_nvml_device *d, uint32_t type_id,
                           struct gv_nvml_vgpu_type *ret, struct gv_error **err);
void gv_nvml_vgpu_type_done(struct gv_nvml_vgpu_type *t);

/* Per-instance queries. */
int gv_nvml_vgpu_instance_uuid(struct gv_nvml_device *d, uint32_t instance, char **ret,
                               struct gv_error **err);
int gv_nvml_vgpu_instance_type(struct gv_nvml_device *d, uint32_t instance, uint32_t *ret,
                               struct gv_error **err);
int gv_nvml_vgpu_instance_fb_usage(struct gv_nvml_device *d, uint32_t instance,
                                   uint64_t *ret_bytes, struct gv_error **err);
/* ret_is_uuid (may be NULL): the id is a VM UUID rather than a domain id. */
int gv_nvml_vgpu_instance_vm_id(struct gv_nvml_device *d, uint32_t instance, char **ret,
                                bool *ret_is_uuid, struct gv_error **err);
/* GV_NVML_NO_GI when time-sliced. */
int gv_nvml_vgpu_instance_gi_id(struct gv_nvml_device *d, uint32_t instance, uint32_t *ret,
                                struct gv_error **err);
/* GV_NVML_NO_PLACEMENT when none. */
int gv_nvml_vgpu_instance_placement_id(struct gv_nvml_device *d, uint32_t instance,
                                       uint32_t *ret, struct gv_error **err);

struct gv_nvml_vgpu_sample {
        uint32_t instance;
        uint64_t timestamp_us;
        uint32_t sm_pct, mem_pct, enc_pct, dec_pct;
};
/* Samples newer than last_seen_us (0: every buffered sample). */
int gv_nvml_vgpu_utilization(struct gv_nvml_device *d, uint64_t last_seen_us,
                             struct gv_nvml_vgpu_sample **ret, size_t *ret_n,
                             struct gv_error **err);

enum gv_nvml_sched_policy {
        GV_NVML_SCHED_UNKNOWN,
        GV_NVML_SCHED_BEST_EFFORT,
        GV_NVML_SCHED_EQUAL_SHARE,
        GV_NVML_SCHED_FIXED_SHARE,
        _GV_NVML_SCHED_MAX,
        _GV_NVML_SCHED_INVALID = -EINVAL,
};
const char *gv_nvml_sched_policy_to_string(enum gv_nvml_sched_policy p);
enum gv_nvml_sched_policy gv_nvml_sched_policy_from_string(const char *s);

struct gv_nvml_sched_state {
        enum gv_nvml_sched_policy policy;
        bool arr;               /* adaptive round-robin enabled */
        uint32_t avg_factor;    /* with ARR */
        uint32_t timeslice_ns;  /* nanoseconds (vgpu.md §10) */
};
int gv_nvml_vgpu_scheduler_state(struct gv_nvml_device *d, struct gv_nvml_sched_state *ret,
                                 struct gv_error **err);

/* Heterogeneous (mixed-size) mode; true = heterogeneous. */
int gv_nvml_vgpu_heterogeneous_mode(struct gv_nvml_device *d, bool *ret, struct gv_error **err);
int gv_nvml_vgpu_set_heterogeneous_mode(struct gv_nvml_device *d, bool heterogeneous,
                                        struct gv_error **err);

struct gv_nvml_vgpu_placements {
        uint32_t placement_size; /* slots one instance occupies */
        uint32_t *ids;
        size_t n_ids;
};
/* heterogeneous: the mode the placements are asked for (the v2 struct's `mode`; a 12.4 library
 * knows only the v1 struct and answers for its current mode). Free with ..._done. */
int gv_nvml_vgpu_supported_placements(struct gv_nvml_device *d, uint32_t type_id,
                                      bool heterogeneous, struct gv_nvml_vgpu_placements *ret,
                                      struct gv_error **err);
int gv_nvml_vgpu_creatable_placements(struct gv_nvml_device *d, uint32_t type_id,
                                      bool heterogeneous, struct gv_nvml_vgpu_placements *ret,
                                      struct gv_error **err);
void gv_nvml_vgpu_placements_done(struct gv_nvml_vgpu_placements *p);

/* nvmlDeviceVgpuCapability_t, mirrored (nvml-abi.md §3.2). */
enum gv_nvml_vgpu_dev_cap {
        GV_NVML_VGPU_CAP_FRACTIONAL_MULTI_VGPU,
        GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_PROFILES,
        GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES,
        GV_NVML_VGPU_CAP_READ_DEVICE_BUFFER_BW,
        GV_NVML_VGPU_CAP_WRITE_DEVICE_BUFFER_BW,
        GV_NVML_VGPU_CAP_DEVICE_STREAMING,
        GV_NVML_VGPU_CAP_MINI_QUARTER_GPU,
        GV_NVML_VGPU_CAP_COMPUTE_MEDIA_ENGINE_GPU,
        GV_NVML_VGPU_CAP_WARM_UPDATE,
        GV_NVML_VGPU_CAP_HOMOGENEOUS_PLACEMENTS,
        GV_NVML_VGPU_CAP_MIG_TIMESLICING_SUPPORTED,
        GV_NVML_VGPU_CAP_MIG_TIMESLICING_ENABLED,
        _GV_NVML_VGPU_CAP_MAX,
        _GV_NVML_VGPU_CAP_INVALID = -EINVAL,
};
const char *gv_nvml_vgpu_dev_cap_to_string(enum gv_nvml_vgpu_dev_cap c);
enum gv_nvml_vgpu_dev_cap gv_nvml_vgpu_dev_cap_from_string(const char *s);

int gv_nvml_vgpu_device_capability(struct gv_nvml_device *d, enum gv_nvml_vgpu_dev_cap cap,
                                   uint32_t *ret, struct gv_error **err);
