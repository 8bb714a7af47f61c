/* SPDX-License-Identifier: MIT */
/*
 * nvml-internal.h — shared by the files of the NVML binding only: the resolved symbol slots,
 * the gv_nvml and device objects, and the error helpers. Nothing outside src/hw/nvml includes it
 * (tests do, to check the symbol table).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "hw/nvml/nvml-abi.h"
#include "hw/nvml/nvml.h"
#include "util/error.h"

/* A slot typed after the prototype in nvml-abi.h (systemd's DLSYM_PROTOTYPE). */
#define NVML_SLOT(fn) __typeof__(fn) *fn

/* Every NVML entry point the binding uses; filled by nvml-load.c from the table there. */
struct gv_nvml_syms {
        /* required */
        NVML_SLOT(nvmlInit_v2);
        NVML_SLOT(nvmlShutdown);
        NVML_SLOT(nvmlErrorString);
        NVML_SLOT(nvmlSystemGetDriverVersion);
        NVML_SLOT(nvmlSystemGetNVMLVersion);
        NVML_SLOT(nvmlDeviceGetCount_v2);
        NVML_SLOT(nvmlDeviceGetHandleByIndex_v2);
        NVML_SLOT(nvmlDeviceGetHandleByPciBusId_v2);
        NVML_SLOT(nvmlDeviceGetHandleByUUID);
        NVML_SLOT(nvmlDeviceGetName);
        NVML_SLOT(nvmlDeviceGetUUID);
        NVML_SLOT(nvmlDeviceGetPciInfo_v3);
        NVML_SLOT(nvmlDeviceGetMemoryInfo);
        NVML_SLOT(nvmlDeviceGetUtilizationRates);
        NVML_SLOT(nvmlDeviceGetPowerUsage);
        /* optional: memory v2, temperature */
        NVML_SLOT(nvmlDeviceGetMemoryInfo_v2);
        NVML_SLOT(nvmlDeviceGetTemperature);
        NVML_SLOT(nvmlDeviceGetTemperatureV);
        /* optional: MIG */
        NVML_SLOT(nvmlDeviceGetMigMode);
        NVML_SLOT(nvmlDeviceSetMigMode);
        NVML_SLOT(nvmlDeviceGetGpuInstanceProfileInfo);
        NVML_SLOT(nvmlDeviceGetGpuInstanceProfileInfoV);
        NVML_SLOT(nvmlDeviceGetGpuInstancePossiblePlacements_v2);
        NVML_SLOT(nvmlDeviceGetGpuInstanceRemainingCapacity);
        NVML_SLOT(nvmlDeviceCreateGpuInstance);
        NVML_SLOT(nvmlDeviceCreateGpuInstanceWithPlacement);
        NVML_SLOT(nvmlGpuInstanceDestroy);
        NVML_SLOT(nvmlDeviceGetGpuInstances);
        NVML_SLOT(nvmlDeviceGetGpuInstanceById);
        NVML_SLOT(nvmlGpuInstanceGetInfo);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstanceProfileInfo);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstanceProfileInfoV);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstanceRemainingCapacity);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstancePossiblePlacements);
        NVML_SLOT(nvmlGpuInstanceCreateComputeInstance);
        NVML_SLOT(nvmlGpuInstanceCreateComputeInstanceWithPlacement);
        NVML_SLOT(nvmlComputeInstanceDestroy);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstances);
        NVML_SLOT(nvmlGpuInstanceGetComputeInstanceById);
        NVML_SLOT(nvmlComputeInstanceGetInfo_v2);
        NVML_SLOT(nvmlDeviceIsMigDeviceHandle);
        NVML_SLOT(nvmlDeviceGetGpuInstanceId);
        NVML_SLOT(nvmlDeviceGetComputeInstanceId);
        NVML_SLOT(nvmlDeviceGetMaxMigDeviceCount);
        NVML_SLOT(nvmlDeviceGetMigDeviceHandleByIndex);
        NVML_SLOT(nvmlDeviceGetDeviceHandleFromMigDeviceHandle);
        /* optional: vGPU */
        NVML_SLOT(nvmlDeviceGetVirtualizationMode);
        NVML_SLOT(nvmlDeviceGetHostVgpuMode);
        NVML_SLOT(nvmlDeviceGetSupportedVgpus);
        NVML_SLOT(nvmlDeviceGetCreatableVgpus);
        NVML_SLOT(nvmlVgpuTypeGetName);
        NVML_SLOT(nvmlVgpuTypeGetClass);
        NVML_SLOT(nvmlVgpuTypeGetFramebufferSize);
        NVML_SLOT(nvmlVgpuTypeGetMaxInstances);
        NVML_SLOT(nvmlVgpuTypeGetMaxInstancesPerVm);
        NVML_SLOT(nvmlVgpuTypeGetGpuInstanceProfileId);
        NVML_SLOT(nvmlVgpuTypeGetLicense);
        NVML_SLOT(nvmlDeviceGetActiveVgpus);
        NVML_SLOT(nvmlVgpuInstanceGetUUID);
        NVML_SLOT(nvmlVgpuInstanceGetType);
        NVML_SLOT(nvmlVgpuInstanceGetFbUsage);
        NVML_SLOT(nvmlVgpuInstanceGetVmID);
        NVML_SLOT(nvmlVgpuInstanceGetGpuInstanceId);
        NVML_SLOT(nvmlDeviceGetVgpuUtilization);
        NVML_SLOT(nvmlDeviceGetVgpuSchedulerState);
        NVML_SLOT(nvmlDeviceGetVgpuCapabilities);
        /* optional: 12.4+ */
        NVML_SLOT(nvmlDeviceGetVgpuHeterogeneousMode);
        NVML_SLOT(nvmlDeviceSetVgpuHeterogeneousMode);
        NVML_SLOT(nvmlVgpuInstanceGetPlacementId);
        NVML_SLOT(nvmlDeviceGetVgpuTypeSupportedPlacements);
        NVML_SLOT(nvmlDeviceGetVgpuTypeCreatablePlacements);
};

/* One row of the symbol table (nvml-load.c). */
struct gv_nvml_symbol {
        const char *names[3]; /* newest first; names[0] is the prototype's own name */
        size_t offset;        /* of the slot in struct gv_nvml_syms */
        bool required;
        int cap;              /* enum gv_nvml_cap cleared when missing; -1 for none */
        const char *since;    /* "NVML 12.4" — for messages about a missing optional symbol */
};
extern const struct gv_nvml_symbol gv_nvml_symbol_table[];
extern const size_t gv_nvml_symbol_table_size;

struct gv_nvml_device {
        struct gv_nvml *nvml;
        nvmlDevice_t handle;
        bool is_mig;
        char label[96];
};

struct gv_nvml {
        unsigned n_ref;
        void *dl;
        char *path;
        unsigned caps; /* bit (1u << enum gv_nvml_cap) */
        struct gv_nvml_syms sym;
        struct gv_nvml_device **devices; /* every handle handed out, owned */
        size_t n_devices;
};

/* The error for an NVML call that returned rc: "call(args): NVML_ERROR_X (NVML's text). hint."
 * Returns the mapped -errno. */
int nvml_fail(const struct gv_nvml *n, nvmlReturn_t rc, struct gv_error **err, const char *call,
              const char *argfmt, ...) _printf_(5, 6);
/* -EOPNOTSUPP: the library does not export the optional symbol fn. */
int nvml_missing(const struct gv_nvml *n, const char *fn, struct gv_error **err);

#define NVML_NEED(n, fn, err)                                          \
        do {                                                           \
                if (!(n)->sym.fn)                                      \
                        return nvml_missing((n), #fn, (err));          \
        } while (0)

/* The device object for an NVML handle, made on first sight (owned by n). */
struct gv_nvml_device *nvml_device_get(struct gv_nvml *n, nvmlDevice_t h, bool is_mig,
                                       const char *label);

/* Bound for the calls that fill a caller-sized array without a count protocol
 * (nvmlDeviceGetGpuInstances, nvmlGpuInstanceGetComputeInstances): at most 7 GIs per GPU and
 * 8 CIs per GI exist (mig.md §1, §6); 32 leaves room. */
#define NVML_MAX_INSTANCES 32u
/* Retries of a count protocol whose count keeps growing (nvml-abi.md §7.1). */
#define NVML_COUNT_RETRIES 8
