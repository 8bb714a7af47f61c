/* SPDX-License-Identifier: MIT */
/*
 * host.h — this host's GPUs as gpuvirt sees them, and the operations on them.
 *
 * The core (host.c) enumerates PCI functions through the sysfs layer and hands each GPU to
 * the vendor backend that claims it (struct gv_gpu_backend_ops, backend.h). Pass-through is
 * vendor-neutral (vfio-pci binding of the whole IOMMU group, src/hw/driver.h); MIG and vGPU
 * are the backend's. Core code names no vendor.
 *
 * Modes (what `gpuvirt gpu set-mode` sets, DESIGN.md's table):
 *   none         bound to the vendor's host driver, nothing carved out
 *   passthrough  the whole IOMMU group bound to vfio-pci, ready for one VM
 *   vgpu         time-sliced vGPU: SR-IOV VFs enabled (or mdev types on the PF), MIG off
 *   mig          MIG on; GPU instances are given to VMs as MIG-backed vGPU where the host has a
 *                vGPU manager (SR-IOV VFs enabled too)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "hw/nvidia-vfio.h"
#include "hw/sysfs.h"
#include "util/error.h"
#include "util/parse.h"

enum gv_gpu_mode {
        GV_GPU_MODE_NONE,
        GV_GPU_MODE_PASSTHROUGH,
        GV_GPU_MODE_VGPU,
        GV_GPU_MODE_MIG,
        GV_GPU_MODE_UNKNOWN, /* shown only: the vendor library that would tell is missing */
        _GV_GPU_MODE_MAX,
        _GV_GPU_MODE_INVALID = -EINVAL,
};
const char *gv_gpu_mode_to_string(enum gv_gpu_mode m);
enum gv_gpu_mode gv_gpu_mode_from_string(const char *s);
/* "none, passthrough, vgpu, mig": the modes a GPU can be set to */
char *gv_gpu_mode_names(void);

/* enum gv_vgpu_interface (none, mdev, vendor-vfio) comes from the hardware layer. */

struct gv_host_config {
        const char *sysfs_root;   /* "/" on a real host; a simulated host's directory */
        const char *nvml_library; /* NULL: the default soname */
};

/* A function that shares the GPU's IOMMU group (audio function, or a foreign device). */
struct gv_group_member {
        char bdf[GV_PCI_ADDR_STR_MAX];
        uint32_t class_code;
        char *driver;       /* NULL: none */
        bool same_device;   /* another function of the GPU's own slot (e.g. HDMI audio .1) */
};

struct gv_mig_ci_info {
        uint32_t id;
        uint32_t profile_id;
        char *profile_name;
        uint32_t start, size;
};

struct gv_mig_gi_info {
        uint32_t id;
        uint32_t profile_id;
        char *profile_name;  /* "3g.40gb" */
        struct gv_mig_placement placement;
        uint64_t memory_mib;
        struct gv_mig_ci_info *cis;
        size_t n_cis;
        char *vgpu_uuid;     /* MIG-backed vGPU on this GI, or NULL */
};

struct gv_vgpu_instance {
        char uuid[GV_UUID_STR_LEN + 1];
        uint32_t type_id;
        char *type_name;     /* "H100XM-20C" */
        char parent_bdf[GV_PCI_ADDR_STR_MAX]; /* VF or PF */
        char *vm_id;         /* NULL when no VM holds it */
        uint64_t framebuffer_mib;
        uint32_t gi_id;      /* MIG-backed: its GPU instance; UINT32_MAX otherwise */
};

struct gv_vgpu_type_info {
        uint32_t type_id;
        char *name;
        uint64_t framebuffer_mib;
        uint32_t max_instances;
        uint32_t creatable;  /* how many more can be created now */
        char *gi_profile;    /* MIG-backed: GI profile name; NULL otherwise */
        char *vgpu_class;
};

/* Validity flags for values that may be unknown (pass-through GPUs are invisible to the host
 * driver; NVML may be missing). JSON writes null for an invalid value. */
enum {
        GV_GPU_HAS_UUID = 1 << 0,
        GV_GPU_HAS_MEMORY = 1 << 1,
        GV_GPU_HAS_UTIL = 1 << 2,
        GV_GPU_HAS_POWER = 1 << 3,
        GV_GPU_HAS_TEMP = 1 << 4,
        GV_GPU_HAS_MIG = 1 << 5,
        GV_GPU_HAS_VGPU = 1 << 6,
};

struct gv_gpu {
        unsigned index;                 /* gpuvirt's index: PCI order of the host's GPUs */
        struct gv_pci_addr addr;
        char bdf[GV_PCI_ADDR_STR_MAX];
        uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_device_id;
        uint32_t class_code;
        char *backend;                  /* backend name, "nvidia" */
        char *model;                    /* "H100-SXM5-80GB" (catalog) or the NVML name */
        char *product_name;             /* NVML name, e.g. "NVIDIA H100 80GB HBM3" */
        char *driver;                   /* bound driver, NULL if none */
        int numa_node;                  /* -1: none */
        int iommu_group;                /* -1: no IOMMU */
        char **reset_methods;
        enum gv_gpu_mode mode;
        char *mode_reason;              /* why the mode is unknown; NULL otherwise */
        unsigned valid;                 /* GV_GPU_HAS_* */
        char uuid[64];
        uint64_t memory_total_mib, memory_used_mib;
        uint32_t util_gpu_pct, util_mem_pct;
        uint32_t power_mw;
        int temperature_c;
        /* MIG */
        bool mig_capable;
        bool mig_enabled, mig_pending_enabled;
        char *mig_error;                /* why the MIG state could not be read; NULL when known */
        int mig_errno;                  /* its errno (positive) */
        uint32_t mig_memory_slices;
        struct gv_mig_gi_info *gis;
        size_t n_gis;
        /* vGPU */
        bool vgpu_capable;              /* the model offers vGPU types or SR-IOV VFs */
        enum gv_vgpu_interface vgpu_interface;
        uint32_t sriov_total_vfs, sriov_num_vfs;
        char **vfs;                     /* the VFs' addresses, in virtfn order; NULL when none */
        bool vgpu_heterogeneous;
        struct gv_vgpu_instance *vgpus;
        size_t n_vgpus;
        /* pass-through */
        struct gv_group_member *group;  /* the other functions in the IOMMU group */
        size_t n_group;
        char *passthrough_blocker;      /* NULL when the group can be assigned; else why not */
        char **problems;                /* per-GPU issues found while reading (corrupt files...) */
        /* Health: NULL while the GPU answers; else why it does not (the vendor library says it
         * is lost or needs a reset, reliability.md F8). Read again on every refresh, so a GPU
         * that answers again is healthy again. Placement skips an unhealthy GPU. */
        char *unhealthy;
};

struct gv_host {
        struct gv_host_config config;
        char *hostname;
        char *driver_version;           /* vendor driver, NULL when unknown */
        char *nvml_version;
        char *nvml_error;               /* why NVML is unavailable, NULL when it works */
        char *accel;                    /* "kvm" or "tcg (reason)" */
        struct gv_gpu *gpus;
        size_t n_gpus;
        char **problems;                /* PCI functions that could not be read, not GPUs' own */
        /* private */
        struct gv_sysfs *sysfs;
        struct gv_catalog *catalog;     /* names models; NULL when it cannot be loaded */
        void *backend_ctx;
        const struct gv_gpu_backend_ops *ops;
};

/* Open the host: enumerate PCI and read every GPU. NVML missing is not an error here: the
 * inventory comes from sysfs and host->nvml_error says what is missing. */
int gv_host_open(const struct gv_host_config *cfg, struct gv_host **ret, struct gv_error **err);
struct gv_host *gv_host_free(struct gv_host *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_host *, gv_host_free);
/* Re-read one GPU after an operation. */
int gv_host_refresh_gpu(struct gv_host *h, struct gv_gpu *g, struct gv_error **err);

/* Find a GPU by gpuvirt index ("3"), PCI address ("0000:18:00.0", "18:00.0") or UUID
 * ("GPU-..."). The error lists the GPUs there are. */
int gv_host_find_gpu(struct gv_host *h, const char *selector, struct gv_gpu **ret,
                     struct gv_error **err);

/* Operations. Each refuses with a clear error before changing anything when the change is
 * impossible (GPU in use naming what uses it, unknown profile listing the valid ones, ...). */
int gv_gpu_set_mode(struct gv_host *h, struct gv_gpu *g, enum gv_gpu_mode mode,
                    struct gv_error **err);
/* Declarative MIG layout: make the GPU hold exactly these GPU instances (profile names, a
 * NULL-terminated list), keeping existing instances the list still wants, destroying the others
 * (refused while a vGPU uses one) and creating the rest at placements chosen by gv_mig_plan().
 * Nothing changes when the layout is impossible; a failure half-way rolls back what this call
 * created. ret_layout (optional): the resulting layout as text ("0-3:4g.40gb 4-7:free").
 * dry_run: plan and report only. */
int gv_gpu_mig_apply(struct gv_host *h, struct gv_gpu *g, char *const *profiles, bool dry_run,
                     char **ret_layout, struct gv_error **err);
/* Can MIG be read and managed on this GPU now? -EOPNOTSUPP (no MIG), the MIG state's own error
 * (e.g. -ELIBACC without NVML, -ENODEV for a lost GPU), -EBUSY when passed through. */
int gv_gpu_mig_check(const struct gv_gpu *g, struct gv_error **err);
/* The GPU-instance profiles the GPU offers (from the vendor library), for listings. */
int gv_gpu_mig_profiles(struct gv_host *h, struct gv_gpu *g, struct gv_mig_gi_profile **ret,
                        size_t *ret_n, struct gv_error **err);
void gv_mig_gi_profiles_free(struct gv_mig_gi_profile *p, size_t n);
int gv_gpu_mig_destroy(struct gv_host *h, struct gv_gpu *g, uint32_t gi_id,
                       struct gv_error **err);
int gv_gpu_vgpu_types(struct gv_host *h, struct gv_gpu *g, struct gv_vgpu_type_info **ret,
                      size_t *ret_n, struct gv_error **err);
void gv_vgpu_type_info_free_array(struct gv_vgpu_type_info *t, size_t n);
int gv_gpu_vgpu_create(struct gv_host *h, struct gv_gpu *g, const char *type_name,
                       char ret_uuid[GV_UUID_STR_LEN + 1], struct gv_error **err);
/* id: an mdev UUID, or the VF address of a vendor-VFIO vGPU. */
int gv_host_vgpu_destroy(struct gv_host *h, const char *id, struct gv_error **err);

/* ---- live metrics (host-metrics.c; docs/agent.md, "Metrics") ---- */

/* Validity of a metrics value: only what the hardware answered is set; the rest is unknown
 * (JSON null), never zero. */
enum {
        GV_METRIC_UTIL = 1 << 0,     /* util_pct (a vGPU: SM utilization) */
        GV_METRIC_MEM_UTIL = 1 << 1, /* mem_util_pct: memory controller utilization */
        GV_METRIC_MEMORY = 1 << 2,   /* memory_used_mib, memory_total_mib */
        GV_METRIC_POWER = 1 << 3,    /* power_mw */
        GV_METRIC_TEMP = 1 << 4,     /* temperature_c */
        GV_METRIC_CODEC = 1 << 5,    /* a vGPU's enc_pct, dec_pct */
};

/* One vGPU instance's load, as the vendor library reports it. */
struct gv_vgpu_metrics {
        char uuid[GV_UUID_STR_LEN + 1];       /* the vendor library's instance UUID */
        char parent_bdf[GV_PCI_ADDR_STR_MAX]; /* VF or PF it lives on (inventory); "" unknown */
        uint32_t gi_id;                       /* MIG-backed: its GPU instance; UINT32_MAX */
        unsigned valid;                       /* GV_METRIC_* */
        uint32_t util_pct, mem_util_pct, enc_pct, dec_pct;
        uint64_t sample_us;                   /* when the utilization was sampled (µs, epoch) */
        uint64_t memory_used_mib, memory_total_mib; /* framebuffer */
};

/* One GPU instance (MIG). Utilization is never set: it is not attributed to MIG devices
 * (nvml-abi.md §7.4), and util_unavailable says so. */
struct gv_mig_metrics {
        uint32_t gi_id;
        unsigned valid;                 /* GV_METRIC_MEMORY when known */
        uint64_t memory_used_mib, memory_total_mib;
        const char *memory_source;      /* static: "mig-device" (memory info on the MIG device
                                         * handle of one of its compute instances) or
                                         * "vgpu-framebuffer" (the MIG-backed vGPU on it) */
        const char *util_unavailable;   /* static: "not reported by this GPU" */
};

struct gv_gpu_metrics {
        char bdf[GV_PCI_ADDR_STR_MAX];
        unsigned valid;                 /* GV_METRIC_* */
        uint32_t util_pct, mem_util_pct;
        uint64_t memory_used_mib, memory_total_mib;
        uint32_t power_mw;              /* milliwatts */
        int temperature_c;
        char *hidden;                   /* NULL when the host driver sees the GPU; else why it
                                         * does not ("passthrough: not visible to the host
                                         * driver"): every value is then unknown */
        char *error;                    /* the first read that failed, or NULL */
        struct gv_vgpu_metrics *vgpus;
        size_t n_vgpus;
        struct gv_mig_metrics *migs;    /* one per GPU instance of the inventory */
        size_t n_migs;
};
void gv_gpu_metrics_done(struct gv_gpu_metrics *m);

#define GV_MIG_UTIL_UNAVAILABLE "not reported by this GPU"
#define GV_GPU_HIDDEN_PASSTHROUGH "passthrough: not visible to the host driver"

/* Read GPU g's live values now (g as the inventory last read it: its vGPUs and GPU instances
 * say what to ask for; g is read again first when its driver binding moved since). A GPU the host driver cannot see is not an error: ret->hidden
 * says why. Partial answers are not errors either: what failed is left invalid and ret->error
 * holds the first failure. -errno only when nothing could be asked (e.g. no vendor library:
 * -ELIBACC). Not thread-safe on one host: give a sampling thread its own gv_host. */
int gv_gpu_read_metrics(struct gv_host *h, struct gv_gpu *g, struct gv_gpu_metrics *ret,
                        struct gv_error **err);
