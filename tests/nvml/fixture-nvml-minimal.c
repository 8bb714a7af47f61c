/* SPDX-License-Identifier: MIT */
/*
 * TEST FIXTURE, not an NVML: exports the binding's required symbols only, some under their
 * older names (nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetPciInfo_v2) to exercise the fallback
 * names, and no MIG, vGPU, memory-v2 or temperature symbols: every optional capability must
 * come out cleared (test-nvml-load.c). One fake GPU whose answers are fixed below.
 */
#include <string.h>

#include "hw/nvml/nvml-abi.h"

/* The older names are not in nvml-abi.h (the binding never calls them by these names). */
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount);
nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci);

static int fake_gpu;
#define FAKE ((nvmlDevice_t)&fake_gpu)

static nvmlReturn_t put(const char *s, char *buf, unsigned int length)
{
        if (strlen(s) >= length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        strcpy(buf, s);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void)
{
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
        return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
        return result == NVML_ERROR_NOT_FOUND ? "Fixture Not Found" : "Fixture Error";
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
        return put("999.1.2", version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
        return put("12.999.1.2", version, length);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
        *deviceCount = 1;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
        if (index != 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        *device = FAKE;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
        if (strcmp(pciBusId, "0000:18:00.0") != 0 && strcmp(pciBusId, "00000000:18:00.0") != 0)
                return NVML_ERROR_NOT_FOUND;
        *device = FAKE;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
        (void)uuid;
        (void)device;
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
        (void)device;
        return put("Fixture GPU", name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
        (void)device;
        return put("GPU-00000000-0000-0000-0000-000000000001", uuid, length);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        (void)device;
        memset(pci, 0, sizeof(*pci));
        /* An older library: busId left empty, the numeric fields filled. */
        pci->domain = 0;
        pci->bus = 0x18;
        pci->device = 0;
        pci->pciDeviceId = 0x233010DE;
        pci->pciSubSystemId = 0x16C110DE;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
        (void)device;
        memory->total = 81559ull << 20;
        memory->used = 1ull << 30;
        memory->free = memory->total - memory->used;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
        (void)device;
        utilization->gpu = 42;
        utilization->memory = 7;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
        (void)device;
        *power = 123456;
        return NVML_SUCCESS;
}
