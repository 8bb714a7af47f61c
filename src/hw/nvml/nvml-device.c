/* SPDX-License-Identifier: MIT */
/*
 * nvml-device.c — system versions and per-device inventory: handles (by index, PCI address,
 * UUID), name, UUID, PCI info, memory, utilization, temperature, power.
 * Buffer sizes, struct layouts and units from nvml-abi.md §3, §4, §7.4.
 */
#include <stdio.h>
#include <string.h>

#include "hw/nvml/nvml-internal.h"
#include "util/alloc.h"

int gv_nvml_driver_version(struct gv_nvml *n, char **ret, struct gv_error **err)
{
        char buf[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc = n->sym.nvmlSystemGetDriverVersion(buf, sizeof(buf));

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlSystemGetDriverVersion", "%s", "");
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_nvml_version(struct gv_nvml *n, char **ret, struct gv_error **err)
{
        char buf[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc = n->sym.nvmlSystemGetNVMLVersion(buf, sizeof(buf));

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlSystemGetNVMLVersion", "%s", "");
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_device_count(struct gv_nvml *n, unsigned *ret, struct gv_error **err)
{
        unsigned count = 0;
        nvmlReturn_t rc = n->sym.nvmlDeviceGetCount_v2(&count);

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetCount_v2", "%s", "");
        *ret = count;
        return 0;
}

static int pci_from_nvml(const nvmlPciInfo_t *p, struct gv_nvml_pci_info *ret)
{
        struct gv_nvml_pci_info info = { 0 };
        char bus_id[sizeof(p->busId) + 1];

        /* busId is "%08X:%02X:%02X.0" (nvml-abi.md §4); an older library may leave it empty,
         * then the numeric fields say the same (function 0: NVML reports the PF). */
        memcpy(bus_id, p->busId, sizeof(p->busId));
        bus_id[sizeof(p->busId)] = '\0';
        if (bus_id[0]) {
                int r = gv_parse_pci_addr(bus_id, &info.addr);
                if (r < 0)
                        return r;
        } else {
                if (p->bus > 0xff || p->device > 0x1f)
                        return -EINVAL;
                info.addr.domain = p->domain;
                info.addr.bus = (uint8_t)p->bus;
                info.addr.slot = (uint8_t)p->device;
        }
        info.vendor = (uint16_t)(p->pciDeviceId & 0xffff);
        info.device = (uint16_t)(p->pciDeviceId >> 16);
        info.subsystem_vendor = (uint16_t)(p->pciSubSystemId & 0xffff);
        info.subsystem_device = (uint16_t)(p->pciSubSystemId >> 16);
        *ret = info;
        return 0;
}

/* Label a device for messages: "GPU 0000:18:00.0" when NVML tells its address, else fallback.
 * Best effort on purpose: a failing PCI query must not make the handle unusable. */
static struct gv_nvml_device *device_labelled(struct gv_nvml *n, nvmlDevice_t h,
                                              const char *fallback)
{
        nvmlPciInfo_t p = { 0 };
        struct gv_nvml_pci_info info;
        char label[96], bdf[GV_PCI_ADDR_STR_MAX];

        for (size_t i = 0; i < n->n_devices; i++)
                if (n->devices[i]->handle == h)
                        return n->devices[i];

        if (n->sym.nvmlDeviceGetPciInfo_v3(h, &p) == NVML_SUCCESS && pci_from_nvml(&p, &info) >= 0)
                (void)snprintf(label, sizeof(label), "GPU %s", gv_pci_addr_format(&info.addr, bdf));
        else
                (void)snprintf(label, sizeof(label), "GPU %s", fallback);
        return nvml_device_get(n, h, false, label);
}

int gv_nvml_device_by_index(struct gv_nvml *n, unsigned index, struct gv_nvml_device **ret,
                            struct gv_error **err)
{
        nvmlDevice_t h = NULL;
        nvmlReturn_t rc = n->sym.nvmlDeviceGetHandleByIndex_v2(index, &h);
        char fallback[DECIMAL_STR_MAX(unsigned)];

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetHandleByIndex_v2", "index %u", index);
        (void)snprintf(fallback, sizeof(fallback), "%u", index);
        *ret = device_labelled(n, h, fallback);
        return 0;
}

int gv_nvml_device_by_pci(struct gv_nvml *n, const char *pci, struct gv_nvml_device **ret,
                          struct gv_error **err)
{
        nvmlDevice_t h = NULL;
        nvmlReturn_t rc = n->sym.nvmlDeviceGetHandleByPciBusId_v2(pci, &h);

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetHandleByPciBusId_v2", "'%s'", pci);
        *ret = device_labelled(n, h, pci);
        return 0;
}

int gv_nvml_device_by_uuid(struct gv_nvml *n, const char *uuid, struct gv_nvml_device **ret,
                           struct gv_error **err)
{
        nvmlDevice_t h = NULL;
        nvmlReturn_t rc = n->sym.nvmlDeviceGetHandleByUUID(uuid, &h);

        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetHandleByUUID", "'%s'", uuid);
        *ret = device_labelled(n, h, uuid);
        return 0;
}

const char *gv_nvml_device_label(const struct gv_nvml_device *d)
{
        return d->label;
}

struct gv_nvml *gv_nvml_device_nvml(const struct gv_nvml_device *d)
{
        return d->nvml;
}

int gv_nvml_device_name(struct gv_nvml_device *d, char **ret, struct gv_error **err)
{
        char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc = d->nvml->sym.nvmlDeviceGetName(d->handle, buf, sizeof(buf));

        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetName", "%s", d->label);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_device_uuid(struct gv_nvml_device *d, char **ret, struct gv_error **err)
{
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc = d->nvml->sym.nvmlDeviceGetUUID(d->handle, buf, sizeof(buf));

        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetUUID", "%s", d->label);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_device_pci_info(struct gv_nvml_device *d, struct gv_nvml_pci_info *ret,
                            struct gv_error **err)
{
        nvmlPciInfo_t p = { 0 };
        nvmlReturn_t rc = d->nvml->sym.nvmlDeviceGetPciInfo_v3(d->handle, &p);
        int r;

        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetPciInfo_v3", "%s", d->label);
        r = pci_from_nvml(&p, ret);
        if (r < 0)
                return gv_error_set(err, EPROTO,
                                    "nvmlDeviceGetPciInfo_v3(%s) returned the bus id '%.*s' "
                                    "(domain %u, bus %u, device %u), which is not a PCI address; "
                                    "the NVML library is broken.",
                                    d->label, (int)sizeof(p.busId), p.busId, p.domain, p.bus,
                                    p.device);
        return 0;
}

int gv_nvml_device_memory(struct gv_nvml_device *d, struct gv_nvml_memory *ret,
                          struct gv_error **err)
{
        struct gv_nvml *n = d->nvml;
        nvmlReturn_t rc;

        if (n->sym.nvmlDeviceGetMemoryInfo_v2) {
                nvmlMemory_v2_t m = { .version = nvmlMemory_v2 };

                rc = n->sym.nvmlDeviceGetMemoryInfo_v2(d->handle, &m);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlDeviceGetMemoryInfo_v2", "%s",
                                         d->label);
                *ret = (struct gv_nvml_memory){ .total = m.total, .free = m.free, .used = m.used,
                                                .reserved = m.reserved, .has_reserved = true };
                return 0;
        }

        nvmlMemory_t m = { 0 };
        rc = n->sym.nvmlDeviceGetMemoryInfo(d->handle, &m);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetMemoryInfo", "%s", d->label);
        *ret = (struct gv_nvml_memory){ .total = m.total, .free = m.free, .used = m.used };
        return 0;
}

int gv_nvml_device_utilization(struct gv_nvml_device *d, struct gv_nvml_utilization *ret,
                               struct gv_error **err)
{
        nvmlUtilization_t u = { 0 };
        nvmlReturn_t rc = d->nvml->sym.nvmlDeviceGetUtilizationRates(d->handle, &u);

        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetUtilizationRates", "%s",
                                 d->label);
        *ret = (struct gv_nvml_utilization){ .gpu_pct = u.gpu, .memory_pct = u.memory };
        return 0;
}

int gv_nvml_device_temperature(struct gv_nvml_device *d, int *ret_celsius, struct gv_error **err)
{
        struct gv_nvml *n = d->nvml;
        nvmlReturn_t rc;

        if (n->sym.nvmlDeviceGetTemperatureV) {
                nvmlTemperature_t t = { .version = nvmlTemperature_v1,
                                        .sensorType = NVML_TEMPERATURE_GPU };

                rc = n->sym.nvmlDeviceGetTemperatureV(d->handle, &t);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlDeviceGetTemperatureV",
                                         "%s, sensor GPU", d->label);
                *ret_celsius = t.temperature;
                return 0;
        }

        NVML_NEED(n, nvmlDeviceGetTemperature, err);
        unsigned t = 0;
        rc = n->sym.nvmlDeviceGetTemperature(d->handle, NVML_TEMPERATURE_GPU, &t);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlDeviceGetTemperature", "%s, sensor GPU",
                                 d->label);
        *ret_celsius = (int)t;
        return 0;
}

int gv_nvml_device_power(struct gv_nvml_device *d, uint32_t *ret_mw, struct gv_error **err)
{
        unsigned mw = 0;
        nvmlReturn_t rc = d->nvml->sym.nvmlDeviceGetPowerUsage(d->handle, &mw);

        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetPowerUsage", "%s", d->label);
        *ret_mw = mw;
        return 0;
}
