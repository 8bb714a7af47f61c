/* SPDX-License-Identifier: MIT */
/*
 * backend.h — the vendor seam. One const ops struct per GPU vendor; the core (host.c) keeps an
 * explicit table of them (no constructors, deterministic order) and never names a vendor.
 * A NULL slot means "not supported": the core answers -EOPNOTSUPP with a message.
 */
#pragma once

#include "host/host.h"

struct gv_pci_function; /* src/hw/pci.h */

struct gv_gpu_backend_ops {
        const char *name;          /* "nvidia" */
        const char *host_driver;   /* the vendor's host kernel driver, "nvidia" */
        uint16_t pci_vendor;       /* functions of this vendor with a display class are ours */

        /* Load vendor libraries. Failure is not fatal: *ret_ctx is still set and
         * ret_unavailable says what is missing (e.g. NVML), sysfs inventory goes on. */
        int (*open)(const struct gv_host_config *cfg, void **ret_ctx, char **ret_unavailable);
        void (*close)(void *ctx);
        /* Driver/library versions for the host header. */
        void (*host_info)(void *ctx, struct gv_host *h);
        /* Fill the vendor parts of g (model, UUID, memory, MIG, vGPU, mode hints). The core has
         * already filled PCI facts, driver and IOMMU group. */
        int (*inspect)(void *ctx, struct gv_host *h, struct gv_gpu *g, struct gv_error **err);

        /* Mode transitions between none, vgpu and mig (pass-through is the core's). */
        int (*set_mode)(void *ctx, struct gv_host *h, struct gv_gpu *g, enum gv_gpu_mode mode,
                        struct gv_error **err);
        /* The GPU-instance profiles this GPU offers (from the vendor library at run time). */
        int (*mig_profiles)(void *ctx, struct gv_gpu *g, struct gv_mig_gi_profile **ret,
                            size_t *ret_n, struct gv_error **err);
        int (*mig_create)(void *ctx, struct gv_gpu *g, uint32_t profile_id,
                          const struct gv_mig_placement *placement, uint32_t *ret_gi_id,
                          struct gv_error **err);
        int (*mig_destroy)(void *ctx, struct gv_gpu *g, uint32_t gi_id, struct gv_error **err);
        int (*vgpu_types)(void *ctx, struct gv_host *h, struct gv_gpu *g,
                          struct gv_vgpu_type_info **ret, size_t *ret_n, struct gv_error **err);
        int (*vgpu_create)(void *ctx, struct gv_host *h, struct gv_gpu *g,
                           const struct gv_vgpu_type_info *type,
                           char ret_uuid[GV_UUID_STR_LEN + 1], struct gv_error **err);
        int (*vgpu_destroy)(void *ctx, struct gv_host *h, struct gv_gpu *g,
                            const struct gv_vgpu_instance *v, struct gv_error **err);
        /* Live values of a GPU the vendor driver sees (gv_gpu_read_metrics: the core has
         * filled ret->bdf and left everything else empty). */
        int (*read_metrics)(void *ctx, struct gv_host *h, struct gv_gpu *g,
                            struct gv_gpu_metrics *ret, struct gv_error **err);
};

extern const struct gv_gpu_backend_ops gv_nvidia_backend_ops;
