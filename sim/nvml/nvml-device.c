/* SPDX-License-Identifier: MIT */
/*
 * nvml-device.c — system, device identification and the simulated load (memory, utilization,
 * temperature, power). Formats from nvml-abi.md §4 and §7.4.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nvml-sim.h"
#include "util/parse.h"

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        return nvsim_put_string(c.s->driver_version, version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        return nvsim_put_string(c.s->nvml_version, version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        if (!deviceCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        *deviceCount = (unsigned)nvsim_visible(c.s, NULL, 0);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *vis[SIM_MAX_GPUS];
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        size_t n = nvsim_visible(c.s, vis, SIM_MAX_GPUS);
        if (!device || index >= n)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (vis[index]->lost)
                return NVML_ERROR_GPU_IS_LOST;
        *device = nvsim_dev_handle(vis[index]->index);
        return NVML_SUCCESS;
}

/* "%x:%x:%x.%x", "%x:%x:%x" or "%x:%x.%x" (nvml-abi.md §7.4). */
static int parse_bus_id(const char *s, struct gv_pci_addr *ret)
{
        char buf[64];
        size_t colons = 0;
        if (strlen(s) >= sizeof(buf) - 3)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                colons += *p == ':';
        if (colons == 2 && !strchr(s, '.'))
                snprintf(buf, sizeof(buf), "%s.0", s);
        else
                snprintf(buf, sizeof(buf), "%s", s);
        return gv_parse_pci_addr(buf, ret);
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct gv_pci_addr want, have;
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        if (!pciBusId || !device || parse_bus_id(pciBusId, &want) < 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (size_t i = 0; i < c.s->n_gpus; i++) {
                struct sim_gpu *g = &c.s->gpus[i];
                if (gv_parse_pci_addr(g->bdf, &have) < 0 || !gv_pci_addr_equal(&want, &have))
                        continue;
                if (!nvsim_gpu_visible(c.s, g))
                        return NVML_ERROR_NOT_FOUND;
                if (g->lost)
                        return NVML_ERROR_GPU_IS_LOST;
                *device = nvsim_dev_handle(g->index);
                return NVML_SUCCESS;
        }
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        nvmlReturn_t r = nvsim_begin(&c, __func__, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        if (!uuid || !device)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (size_t i = 0; i < c.s->n_gpus; i++) {
                struct sim_gpu *g = &c.s->gpus[i];
                if (!nvsim_gpu_visible(c.s, g))
                        continue;
                if (strcasecmp(uuid, g->uuid) == 0) {
                        if (g->lost)
                                return NVML_ERROR_GPU_IS_LOST;
                        *device = nvsim_dev_handle(g->index);
                        return NVML_SUCCESS;
                }
                if (g->mig_current != NVML_DEVICE_MIG_ENABLE)
                        continue;
                for (size_t j = 0; j < g->n_gis; j++)
                        for (size_t k = 0; k < g->gis[j].n_cis; k++) {
                                uint32_t gi = g->gis[j].id, ci = g->gis[j].cis[k].id;
                                char mig[64], legacy[96];
                                nvsim_mig_uuid(g, gi, ci, mig, sizeof(mig));
                                /* Also the legacy "MIG-GPU-<uuid>/<gi>/<ci>" form. */
                                snprintf(legacy, sizeof(legacy), "MIG-%s/%u/%u", g->uuid, gi, ci);
                                if ((strcasecmp(uuid, mig) == 0 ||
                                     strcasecmp(uuid, legacy) == 0) &&
                                    nvsim_mig_handle(g->index, gi, ci)) {
                                        *device = nvsim_mig_handle(g->index, gi, ci);
                                        return NVML_SUCCESS;
                                }
                        }
        }
        return NVML_ERROR_NOT_FOUND;
}

static const struct sim_ci *mig_ci(struct sim_gpu *g, nvmlDevice_t d, struct sim_gi **ret_gi)
{
        struct sim_gi *gi = sim_gi_by_id(g, d->gi);
        *ret_gi = gi;
        return gi ? sim_ci_by_id(gi, d->ci) : NULL;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (device->kind == NVSIM_MIG_DEV) {
                /* "<GPU name> MIG <CI profile name>", the name nvidia-smi -L shows. */
                struct sim_gi *gi;
                const struct sim_ci *ci = mig_ci(g, device, &gi);
                const struct gv_mig_ci_profile *cp = sim_ci_profile(g, gi, ci->profile_id);
                char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
                snprintf(buf, sizeof(buf), "%s MIG %s", g->model->nvml_name,
                         cp ? cp->name : "?");
                return nvsim_put_string(buf, name, length);
        }
        return nvsim_put_string(g->model->nvml_name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (device->kind == NVSIM_MIG_DEV) {
                char buf[64];
                nvsim_mig_uuid(g, device->gi, device->ci, buf, sizeof(buf));
                return nvsim_put_string(buf, uuid, length);
        }
        return nvsim_put_string(g->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct gv_pci_addr a;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pci || gv_parse_pci_addr(g->bdf, &a) < 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        memset(pci, 0, sizeof(*pci));
        pci->domain = a.domain;
        pci->bus = a.bus;
        pci->device = a.slot;
        pci->pciDeviceId = ((unsigned)g->model->pci_device << 16) | g->model->pci_vendor;
        pci->pciSubSystemId =
                ((unsigned)g->model->pci_subsystem_device << 16) | g->model->pci_subsystem_vendor;
        snprintf(pci->busId, sizeof(pci->busId), "%08X:%02X:%02X.0", a.domain, a.bus, a.slot);
        snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.0",
                 a.domain & 0xffff, a.bus, a.slot);
        return NVML_SUCCESS;
}

/* Memory of a MIG device: its GPU instance's (sim_gi_load: the profile's memory, the part in
 * use following the load model or a pin). */
static void mig_memory(struct sim_state *s, struct sim_gpu *g, nvmlDevice_t d, uint64_t *total,
                       uint64_t *used)
{
        struct sim_gi *gi;
        struct sim_gi_load l = { 0 };
        mig_ci(g, d, &gi);
        if (gi)
                sim_gi_load(s, g, gi, nvsim_now(), &l);
        *total = l.mem_total_mib * 1024ull * 1024ull;
        *used = l.mem_used_mib * 1024ull * 1024ull;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        uint64_t total, used;
        if (device->kind == NVSIM_MIG_DEV)
                mig_memory(c.s, g, device, &total, &used);
        else {
                struct sim_load l;
                sim_gpu_load(c.s, g, nvsim_now(), &l);
                total = g->model->memory_mib * 1024ull * 1024ull;
                used = l.mem_used_mib * 1024ull * 1024ull;
        }
        memory->total = total;
        memory->used = used;
        memory->free = total - used;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!memory)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (memory->version != nvmlMemory_v2)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        uint64_t total, used, reserved = 0;
        if (device->kind == NVSIM_MIG_DEV)
                mig_memory(c.s, g, device, &total, &used);
        else {
                struct sim_load l;
                sim_gpu_load(c.s, g, nvsim_now(), &l);
                total = g->model->memory_mib * 1024ull * 1024ull;
                reserved = l.mem_reserved_mib * 1024ull * 1024ull;
                used = (l.mem_used_mib - l.mem_reserved_mib) * 1024ull * 1024ull;
        }
        memory->total = total;
        memory->reserved = reserved;
        memory->used = used;
        memory->free = total - reserved - used;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        /* Not attributed to MIG devices (nvml-abi.md §7.4): NOT_SUPPORTED for them. */
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!utilization)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_load l;
        sim_gpu_load(c.s, g, nvsim_now(), &l);
        utilization->gpu = l.gpu_util;
        utilization->memory = l.mem_util;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                      unsigned int *temp)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!temp || sensorType != NVML_TEMPERATURE_GPU)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_load l;
        sim_gpu_load(c.s, g, nvsim_now(), &l);
        *temp = l.temperature_c;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_t *temperature)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!temperature)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (temperature->version != nvmlTemperature_v1)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        if (temperature->sensorType != NVML_TEMPERATURE_GPU)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_load l;
        sim_gpu_load(c.s, g, nvsim_now(), &l);
        temperature->temperature = (int)l.temperature_c;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!power)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_load l;
        sim_gpu_load(c.s, g, nvsim_now(), &l);
        *power = l.power_mw;
        return NVML_SUCCESS;
}
