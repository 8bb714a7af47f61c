/* SPDX-License-Identifier: MIT */
/*
 * catalog.h — the GPU catalog: static facts about GPU models (data/gpus/<model>.json), with the
 * source of each fact and a flag where it is unconfirmed (../shared/reference/mig.md,
 * vgpu.md). Read by the simulator, the planner and the benchmarks. The agent on a real
 * host never trusts it over NVML: profiles and types come from NVML at run time.
 *
 * Ownership: a gv_catalog owns everything below it; lookups return borrowed const pointers
 * valid until gv_catalog_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct gv_mig_placement {
        uint32_t start; /* first memory slice */
        uint32_t size;  /* memory slices */
};

/* A fact's provenance: a key into the model's source table, and whether it is confirmed. */
struct gv_fact_source {
        char *source;     /* e.g. "MUG", "SCW", "NV-C"; a key of gv_gpu_model.sources */
        bool unconfirmed; /* true where the reference marks it inferred/not confirmed */
        char *note;       /* why it is unconfirmed or how it was derived; NULL when none */
};

/* A per-field override of an object's source: JSON "fact_sources": {"<field>": {...}}. The
 * object's own src covers every field that has no override (docs/catalog.md). */
struct gv_field_source {
        char *field;      /* a JSON key of the same object, e.g. "power_max_mw" */
        struct gv_fact_source src;
};

struct gv_mig_ci_profile {
        char *name;           /* "1c.3g.40gb", or "3g.40gb" when it spans the whole GI */
        uint32_t nvml_index;  /* NVML_COMPUTE_INSTANCE_PROFILE_* */
        uint32_t id;          /* profile id (equals the index on the GPUs observed) */
        uint32_t slices;      /* compute slices */
        uint32_t instances;   /* max per GI */
        uint32_t sms;         /* multiprocessors */
        struct gv_fact_source src;
        struct gv_field_source *field_sources;
        size_t n_field_sources;
};

struct gv_mig_gi_profile {
        char *name;           /* "3g.40gb", "1g.10gb+me" */
        uint32_t nvml_index;  /* NVML_GPU_INSTANCE_PROFILE_* index constant */
        uint32_t id;          /* device-specific profile id (nvidia-smi "ID") */
        uint32_t slices;      /* compute ("g") slices: sliceCount */
        uint32_t memory_slices; /* size of each placement */
        uint64_t memory_mib;  /* memorySizeMB */
        uint32_t instances;   /* instanceCount */
        uint32_t sms, copy_engines, decoders, encoders, jpegs, ofas;
        bool media_extensions; /* "+me" */
        struct gv_mig_placement *placements;
        size_t n_placements;
        struct gv_mig_ci_profile *ci_profiles;
        size_t n_ci_profiles;
        struct gv_fact_source src;
        struct gv_field_source *field_sources;
        size_t n_field_sources;
};

enum gv_vgpu_series {
        GV_VGPU_SERIES_A, /* vApps */
        GV_VGPU_SERIES_B, /* vPC */
        GV_VGPU_SERIES_C, /* compute: NVIDIA AI Enterprise / vCS */
        GV_VGPU_SERIES_Q, /* vWS */
        _GV_VGPU_SERIES_MAX,
        _GV_VGPU_SERIES_INVALID = -EINVAL,
};
const char *gv_vgpu_series_to_string(enum gv_vgpu_series s);
enum gv_vgpu_series gv_vgpu_series_from_string(const char *s);

struct gv_vgpu_type {
        char *name;              /* "H100XM-20C", "A100D-2-20C" (no "NVIDIA "/"GRID " prefix) */
        uint32_t type_id;        /* nvmlVgpuTypeId_t / mdev "nvidia-<id>" / creatable_vgpu_types id */
        enum gv_vgpu_series series;
        char *vgpu_class;        /* nvmlVgpuTypeGetClass: "Compute", "Quadro", "NVS", ... */
        uint64_t framebuffer_mib;
        uint32_t max_instances;       /* equal-size mode */
        uint32_t max_instances_mixed; /* mixed-size mode; 0 = not allowed in mixed mode */
        char *gi_profile;        /* MIG-backed: GI profile name; NULL for time-sliced */
        const struct gv_mig_gi_profile *gi; /* resolved gi_profile, or NULL */
        struct gv_fact_source src;
        struct gv_field_source *field_sources;
        size_t n_field_sources;
};

struct gv_source_ref {
        char *key; /* "MUG" */
        char *ref; /* URL or repository:path as the reference sheet cites it */
};

struct gv_gpu_model {
        char *name;              /* catalog key, "H100-SXM5-80GB" */
        char *nvml_name;         /* nvmlDeviceGetName, "NVIDIA H100 80GB HBM3" */
        char *architecture;      /* "ampere", "hopper", "ada" */
        uint16_t pci_vendor, pci_device, pci_subsystem_vendor, pci_subsystem_device;
        uint32_t pci_class;      /* 0x030200 (3D controller) or 0x030000 (VGA) */
        uint64_t memory_mib;     /* total framebuffer as NVML reports it */
        uint32_t power_max_mw;   /* board power limit, for the simulator's load model */
        uint32_t sriov_total_vfs; /* 0: no SR-IOV */
        bool has_audio_function; /* consumer cards: function 1 is HDMI audio */
        uint16_t audio_pci_device; /* device id of that audio function (vendor = pci_vendor) */
        /* MIG: n_gi_profiles == 0 means the GPU has no MIG. */
        uint32_t mig_memory_slices;
        uint32_t mig_compute_slices;
        uint32_t mig_max_instances;
        struct gv_mig_gi_profile *gi_profiles;
        size_t n_gi_profiles;
        /* vGPU */
        bool vgpu_heterogeneous_capable; /* mixed-size mode supported */
        struct gv_vgpu_type *vgpu_types;
        size_t n_vgpu_types;
        struct gv_source_ref *sources;
        size_t n_sources;
        struct gv_fact_source src; /* for the model-level facts (PCI ids, memory) */
        struct gv_field_source *field_sources; /* model-level overrides, e.g. power_max_mw */
        size_t n_field_sources;
};

struct gv_catalog {
        struct gv_gpu_model *models;
        size_t n_models;
};

/* Load every *.json file in dir. Strict: unknown keys, wrong types, impossible geometry
 * (placements outside the slice range, a MIG-backed type naming an unknown profile) are
 * errors naming file and key. */
int gv_catalog_load_dir(const char *dir, struct gv_catalog **ret, struct gv_error **err);
/* Load one model file (used by the tests on corrupt input). */
int gv_catalog_load_file(const char *path, struct gv_gpu_model *ret, struct gv_error **err);
/* The data directory: $GPUVIRT_DATA_DIR/gpus, else the source tree's data/gpus (for builds
 * run from the tree), else <datadir>/gpuvirt/gpus. */
int gv_catalog_load_default(struct gv_catalog **ret, struct gv_error **err);
struct gv_catalog *gv_catalog_free(struct gv_catalog *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_catalog *, gv_catalog_free);
void gv_gpu_model_done(struct gv_gpu_model *m);

/* Lookups: NULL when absent. Names compare case-insensitively. GI profile names may carry
 * nvidia-smi's "MIG " prefix; vGPU type names may carry the "NVIDIA " (vendor-VFIO
 * creatable_vgpu_types) or "GRID " (mdev name file) prefix. */
const struct gv_gpu_model *gv_catalog_find(const struct gv_catalog *c, const char *name);
const struct gv_gpu_model *gv_catalog_find_pci(const struct gv_catalog *c, uint16_t vendor,
                                               uint16_t device);
const struct gv_mig_gi_profile *gv_gpu_model_find_gi_profile(const struct gv_gpu_model *m,
                                                             const char *name);
const struct gv_mig_gi_profile *gv_gpu_model_find_gi_profile_id(const struct gv_gpu_model *m,
                                                                uint32_t id);
const struct gv_vgpu_type *gv_gpu_model_find_vgpu_type(const struct gv_gpu_model *m,
                                                       const char *name);
const struct gv_vgpu_type *gv_gpu_model_find_vgpu_type_id(const struct gv_gpu_model *m,
                                                          uint32_t type_id);
/* The source of one field of an object: its fact_sources override, else the object's src.
 * field is the JSON key ("power_max_mw", "memory_mib", ...). Never NULL. */
const struct gv_fact_source *gv_fact_source_lookup(const struct gv_fact_source *object_src,
                                                   const struct gv_field_source *overrides,
                                                   size_t n_overrides, const char *field);
#define gv_fact_source_of(obj, field) \
        gv_fact_source_lookup(&(obj)->src, (obj)->field_sources, (obj)->n_field_sources, (field))
/* The reference (URL or repository:path) of a source key of m; NULL when m has no such key. */
const char *gv_gpu_model_source_ref(const struct gv_gpu_model *m, const char *key);

/* "1g.10gb, 1g.10gb+me, ..." for error hints; newly allocated. */
char *gv_gpu_model_gi_profile_names(const struct gv_gpu_model *m);
char *gv_gpu_model_vgpu_type_names(const struct gv_gpu_model *m);
/* "A100-PCIe-40GB, A30, ..." for error hints; newly allocated. */
char *gv_catalog_model_names(const struct gv_catalog *c);
