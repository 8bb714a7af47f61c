/* SPDX-License-Identifier: MIT */
/*
 * sim-profile.h — the simulated host profiles (`gpuvirt-sim create --profile NAME`):
 *   dgx-h100  8x H100-SXM5-80GB; vGPU through the SR-IOV vendor-VFIO nvidia/ files (kernel >= 6.8)
 *   dgx-a100  8x A100-SXM4-80GB; vGPU through mdev types on SR-IOV VFs (classic Ampere flow,
 *             MIG-backed types included)
 *   l40s-4    4x L40S; vendor-VFIO vGPU, no MIG
 *   mixed     2x A100-PCIe-40GB, 2x A30, a consumer card whose HDMI audio function shares its
 *             IOMMU group, and one IOMMU group holding a foreign (non-GPU) device next to a GPU
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim-state.h"

/* A PCI function of the host that is not one of the catalog GPUs' VFs. */
struct sim_profile_device {
        const char *bdf;          /* "0000:18:00.0" */
        const char *gpu_model;    /* catalog model name for an NVIDIA GPU PF, else NULL */
        uint16_t vendor, device;  /* used when gpu_model is NULL (audio, NIC, ...) */
        uint16_t subsystem_vendor, subsystem_device;
        uint32_t class_code;      /* e.g. 0x040300 audio, 0x020000 NIC */
        const char *driver;       /* bound driver at boot: "nvidia", "snd_hda_intel", "ixgbe" */
        int numa_node;
        unsigned iommu_group;
        const char *reset_method; /* "flr bus" etc., "" for none */
};

struct sim_profile {
        const char *name;
        const char *description;
        enum sim_vgpu_interface vgpu_interface;
        const char *driver_version; /* NVIDIA driver, e.g. "550.90.07" */
        const char *nvml_version;   /* e.g. "12.550.90.07" */
        const struct sim_profile_device *devices;
        size_t n_devices;
};

const struct sim_profile *sim_profile_find(const char *name);
/* NULL-terminated list of every profile, in a stable order. */
const struct sim_profile *const *sim_profile_all(void);
/* "dgx-h100, dgx-a100, l40s-4, mixed" for error hints; newly allocated. */
char *sim_profile_names(void);
