/* SPDX-License-Identifier: MIT */
/*
 * sim-profile.c — the simulated host profiles (see sim-profile.h).
 *
 * GPUs name a catalog model (data/gpus/); their PCI ids, class, SR-IOV VF count, vGPU types and
 * MIG geometry come from the catalog, not from here. What a profile adds is the host around
 * them: bus addresses, NUMA nodes, IOMMU groups, the driver bound at boot, reset methods and
 * the non-GPU functions (HDMI audio, NICs).
 *
 * Facts and where they come from (../shared/reference/):
 *   - driver 550.54.16 is the vGPU 17 driver of the NVIDIA AI Enterprise 5.0 guide (vgpu.md,
 *     NV-AIE5); it satisfies the MIG minimums A100 R450, A30 R460, H100 R525 (mig.md §1 [D]).
 *     nvml_version is "<CUDA major>.<driver>" as nvmlSystemGetNVMLVersion prints it.
 *   - vendor-VFIO vGPU (nvidia/ directory on each VF) on kernels >= 6.8 / Ubuntu 24.04; mdev
 *     types on SR-IOV VFs for the classic Ampere flow (vgpu.md §1-§3).
 *   - reset methods use the names of pci_reset_fn_methods[] (passthrough.md §4); consumer
 *     cards commonly lack FLR, data-center GPUs advertise it.
 *   - a GPU with its HDMI audio function in one IOMMU group, and a foreign device sharing a
 *     group behind a non-ACS bridge, are the two group shapes passthrough.md §3 discusses.
 * Bus addresses and NUMA nodes are modelled on the layout of the named systems; they are
 * illustrative (not from the reference sheets) and nothing depends on their exact values. The
 * non-NVIDIA PCI ids (NICs) are the public ids of the named parts, also illustrative.
 */
#include "host/sim-profile.h"

#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/macro.h"

#define GPU(bdf_, model_, numa_, group_, reset_)                                               \
        {                                                                                      \
                .bdf = (bdf_), .gpu_model = (model_), .driver = "nvidia", .numa_node = (numa_), \
                .iommu_group = (group_), .reset_method = (reset_),                             \
        }

/* Mellanox ConnectX-7 (15b3:1021) and ConnectX-6 (15b3:101b), driver mlx5_core. */
#define CX7(bdf_, numa_, group_)                                                               \
        {                                                                                      \
                .bdf = (bdf_), .vendor = 0x15b3, .device = 0x1021, .subsystem_vendor = 0x15b3, \
                .subsystem_device = 0x0041, .class_code = 0x020700, .driver = "mlx5_core",     \
                .numa_node = (numa_), .iommu_group = (group_), .reset_method = "flr bus",      \
        }
#define CX6(bdf_, numa_, group_)                                                               \
        {                                                                                      \
                .bdf = (bdf_), .vendor = 0x15b3, .device = 0x101b, .subsystem_vendor = 0x15b3, \
                .subsystem_device = 0x0007, .class_code = 0x020700, .driver = "mlx5_core",     \
                .numa_node = (numa_), .iommu_group = (group_), .reset_method = "flr bus",      \
        }

/* DGX H100: eight H100 SXM5 80GB, each behind its own switch port, one IOMMU group each. */
static const struct sim_profile_device dgx_h100_devices[] = {
        GPU("0000:18:00.0", "H100-SXM5-80GB", 0, 30, "flr bus"),
        GPU("0000:2a:00.0", "H100-SXM5-80GB", 0, 42, "flr bus"),
        GPU("0000:3a:00.0", "H100-SXM5-80GB", 0, 50, "flr bus"),
        GPU("0000:5d:00.0", "H100-SXM5-80GB", 0, 64, "flr bus"),
        GPU("0000:9a:00.0", "H100-SXM5-80GB", 1, 96, "flr bus"),
        GPU("0000:ab:00.0", "H100-SXM5-80GB", 1, 110, "flr bus"),
        GPU("0000:ba:00.0", "H100-SXM5-80GB", 1, 120, "flr bus"),
        GPU("0000:db:00.0", "H100-SXM5-80GB", 1, 140, "flr bus"),
        CX7("0000:1a:00.0", 0, 32),
        CX7("0000:9c:00.0", 1, 98),
};

/* DGX A100: eight A100 SXM4 80GB, mdev vGPU on SR-IOV VFs. */
static const struct sim_profile_device dgx_a100_devices[] = {
        GPU("0000:07:00.0", "A100-SXM4-80GB", 0, 12, "flr bus"),
        GPU("0000:0f:00.0", "A100-SXM4-80GB", 0, 18, "flr bus"),
        GPU("0000:47:00.0", "A100-SXM4-80GB", 0, 44, "flr bus"),
        GPU("0000:4e:00.0", "A100-SXM4-80GB", 0, 50, "flr bus"),
        GPU("0000:87:00.0", "A100-SXM4-80GB", 1, 82, "flr bus"),
        GPU("0000:90:00.0", "A100-SXM4-80GB", 1, 88, "flr bus"),
        GPU("0000:b7:00.0", "A100-SXM4-80GB", 1, 112, "flr bus"),
        GPU("0000:bd:00.0", "A100-SXM4-80GB", 1, 118, "flr bus"),
        CX6("0000:0c:00.0", 0, 15),
        CX6("0000:8d:00.0", 1, 85),
};

/* A 2U server with four L40S, vendor-VFIO vGPU (Ada: no MIG). */
static const struct sim_profile_device l40s_4_devices[] = {
        GPU("0000:3d:00.0", "L40S", 0, 40, "flr bus"),
        GPU("0000:3e:00.0", "L40S", 0, 41, "flr bus"),
        GPU("0000:ca:00.0", "L40S", 1, 90, "flr bus"),
        GPU("0000:cb:00.0", "L40S", 1, 91, "flr bus"),
        CX6("0000:17:00.0", 0, 20),
};

/* The consumer card of the mixed profile and its HDMI audio function (function 1, class
 * 0x040300, driver snd_hda_intel), both in IOMMU group 60 as on a GPU whose functions sit
 * behind one root port (passthrough.md §3, §5). The audio function's ids are left 0 here: the
 * generator takes them from the GPU's catalog model (audio_pci_device, subsystem ids). */
#define MIXED_CONSUMER_MODEL "GeForce-RTX-3090"

static const struct sim_profile_device mixed_devices[] = {
        GPU("0000:17:00.0", "A100-PCIe-40GB", 0, 20, "flr bus"),
        GPU("0000:31:00.0", "A100-PCIe-40GB", 0, 33, "flr bus"),
        GPU("0000:4b:00.0", "A30", 0, 50, "flr bus"),
        /* The second A30 and an Intel 82599 10GbE NIC (8086:10fb, ixgbe) sit behind one PCIe
         * switch without ACS, so the IOMMU puts them in one group (70): passing the A30
         * through would hand the NIC to the guest too, and must be refused naming it. */
        GPU("0000:b1:00.0", "A30", 1, 70, "flr bus"),
        {
                .bdf = "0000:b2:00.0", .vendor = 0x8086, .device = 0x10fb,
                .subsystem_vendor = 0x8086, .subsystem_device = 0x000c, .class_code = 0x020000,
                .driver = "ixgbe", .numa_node = 1, .iommu_group = 70, .reset_method = "flr bus",
        },
        GPU("0000:65:00.0", MIXED_CONSUMER_MODEL, 0, 60, "bus"),
        {
                .bdf = "0000:65:00.1", .vendor = 0x10de, .device = 0,
                .class_code = 0x040300,
                .driver = "snd_hda_intel", .numa_node = 0, .iommu_group = 60,
                .reset_method = "bus",
        },
};

#define DRIVER_VERSION "550.54.16"
#define NVML_VERSION "12.550.54.16"

static const struct sim_profile profile_dgx_h100 = {
        .name = "dgx-h100",
        .description = "8x H100-SXM5-80GB, vGPU through SR-IOV vendor-VFIO (kernel >= 6.8)",
        .vgpu_interface = SIM_VGPU_VENDOR_VFIO,
        .driver_version = DRIVER_VERSION,
        .nvml_version = NVML_VERSION,
        .devices = dgx_h100_devices,
        .n_devices = ELEMENTSOF(dgx_h100_devices),
};

static const struct sim_profile profile_dgx_a100 = {
        .name = "dgx-a100",
        .description = "8x A100-SXM4-80GB, vGPU through mdev types on SR-IOV VFs, MIG-backed types",
        .vgpu_interface = SIM_VGPU_MDEV,
        .driver_version = DRIVER_VERSION,
        .nvml_version = NVML_VERSION,
        .devices = dgx_a100_devices,
        .n_devices = ELEMENTSOF(dgx_a100_devices),
};

static const struct sim_profile profile_l40s_4 = {
        .name = "l40s-4",
        .description = "4x L40S, vGPU through SR-IOV vendor-VFIO, no MIG",
        .vgpu_interface = SIM_VGPU_VENDOR_VFIO,
        .driver_version = DRIVER_VERSION,
        .nvml_version = NVML_VERSION,
        .devices = l40s_4_devices,
        .n_devices = ELEMENTSOF(l40s_4_devices),
};

static const struct sim_profile profile_mixed = {
        .name = "mixed",
        .description = "2x A100-PCIe-40GB, 2x A30, a consumer GPU with HDMI audio, "
                       "an A30 sharing its IOMMU group with a NIC; mdev vGPU",
        .vgpu_interface = SIM_VGPU_MDEV,
        .driver_version = DRIVER_VERSION,
        .nvml_version = NVML_VERSION,
        .devices = mixed_devices,
        .n_devices = ELEMENTSOF(mixed_devices),
};

static const struct sim_profile *const all_profiles[] = {
        &profile_dgx_h100,
        &profile_dgx_a100,
        &profile_l40s_4,
        &profile_mixed,
        NULL,
};

const struct sim_profile *sim_profile_find(const char *name)
{
        if (!name)
                return NULL;
        for (size_t i = 0; all_profiles[i]; i++)
                if (strcmp(all_profiles[i]->name, name) == 0)
                        return all_profiles[i];
        return NULL;
}

const struct sim_profile *const *sim_profile_all(void)
{
        return all_profiles;
}

char *sim_profile_names(void)
{
        const char *names[ELEMENTSOF(all_profiles)];
        size_t n = 0;
        for (size_t i = 0; all_profiles[i]; i++)
                names[n++] = all_profiles[i]->name;
        return gv_string_table_join(names, n, ", ");
}
