/* SPDX-License-Identifier: MIT */
/*
 * nvml-sim.h — internals of the NVML simulator library (libnvidia-ml.so.1) shared by its
 * source files. Nothing here is exported: the version script (libnvidia-ml.map) exports only
 * the NVML names of src/hw/nvml/nvml-abi.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "host/sim-state.h"
#include "hw/nvml/nvml-abi.h"

/* Handle ids: GI ids and CI ids below these bounds have a handle (the state makes GI ids from
 * 1 and CI ids from 0, the lowest free, so they stay far below). */
#define NVSIM_GI_IDS 32
#define NVSIM_CI_IDS 16

enum nvsim_kind { NVSIM_DEV = 1, NVSIM_MIG_DEV };

struct nvmlDevice_st {
        enum nvsim_kind kind;
        uint32_t gpu; /* sim_gpu.index */
        uint32_t gi, ci;
};
struct nvmlGpuInstance_st {
        uint32_t gpu, gi;
};
struct nvmlComputeInstance_st {
        uint32_t gpu, gi, ci;
};

/* One call in progress: the state, locked for the call's duration. */
struct nvsim_call {
        struct sim_state *s;
        const char *name;
};
void nvsim_call_done(struct nvsim_call *c);
#define _cleanup_call_ _cleanup_(nvsim_call_done)

/* Begin a call: find the host, lock its state (exclusive when the call changes it), apply an
 * injected failure for (name, gpu), then check that NVML is initialized. */
nvmlReturn_t nvsim_begin(struct nvsim_call *c, const char *name, int gpu, bool exclusive);
/* Commit the state (exclusive calls that changed it). */
nvmlReturn_t nvsim_commit(struct nvsim_call *c);

/* Handles. */
nvmlDevice_t nvsim_dev_handle(uint32_t gpu);
nvmlDevice_t nvsim_mig_handle(uint32_t gpu, uint32_t gi, uint32_t ci);
nvmlGpuInstance_t nvsim_gi_handle(uint32_t gpu, uint32_t gi);
nvmlComputeInstance_t nvsim_ci_handle(uint32_t gpu, uint32_t gi, uint32_t ci);
/* Decode without the state: the host GPU index of a handle, or -1 for a pointer that is not
 * one of ours. */
int nvsim_dev_gpu(nvmlDevice_t d);
int nvsim_gi_gpu(nvmlGpuInstance_t gi);
int nvsim_ci_gpu(nvmlComputeInstance_t ci);

/* The GPUs NVML shows: those whose PF is bound to the nvidia driver in the sysfs tree, in
 * PCI order. */
bool nvsim_gpu_visible(const struct sim_state *s, const struct sim_gpu *g);
size_t nvsim_visible(struct sim_state *s, struct sim_gpu **out, size_t max);
/* MIG UUID "MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" of (gpu, gi, ci). */
void nvsim_mig_uuid(const struct sim_gpu *g, uint32_t gi, uint32_t ci, char *buf, size_t n);
/* Wall-clock seconds, for the load model. */
double nvsim_now(void);

/* Copy a string into an NVML buffer: INSUFFICIENT_SIZE when it does not fit. */
nvmlReturn_t nvsim_put_string(const char *src, char *dst, unsigned int length);

/* Begin a call on a device handle: GPU_IS_LOST when the GPU is gone from NVML's view (lost,
 * or no longer bound to nvidia), INVALID_ARGUMENT for a foreign pointer or a MIG handle whose
 * compute instance is gone, NOT_SUPPORTED for a MIG handle when !mig_ok. */
nvmlReturn_t nvsim_dev_begin(struct nvsim_call *c, const char *name, nvmlDevice_t d,
                             bool exclusive, bool mig_ok, struct sim_gpu **ret_g);
nvmlReturn_t nvsim_gi_begin(struct nvsim_call *c, const char *name, nvmlGpuInstance_t h,
                            bool exclusive, struct sim_gpu **ret_g, struct sim_gi **ret_gi);
nvmlReturn_t nvsim_ci_begin(struct nvsim_call *c, const char *name, nvmlComputeInstance_t h,
                            bool exclusive, struct sim_gpu **ret_g, struct sim_gi **ret_gi,
                            struct sim_ci **ret_ci);
/* The vGPU type typeId of any of the host's GPUs (type ids are global), or NULL. */
const struct gv_vgpu_type *nvsim_vgpu_type(const struct sim_state *s, uint32_t type_id);
