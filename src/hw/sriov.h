/* SPDX-License-Identifier: MIT */
/*
 * sriov.h — SR-IOV virtual functions of a PF (passthrough.md §1, vgpu.md §2).
 *
 * sriov_totalvfs is the maximum, sriov_numvfs the enabled count; writing N while the count is
 * neither 0 nor N is an error in the kernel (K-PCI), so a change between two non-zero counts
 * writes 0 first. After a write the virtfnN links must match the count, or the change did not
 * take effect and is undone. (NVIDIA's own tool for its GPUs is sriov-manage, NV-AIE5 §2.8.2;
 * the proposed upstream driver uses sriov_numvfs, vgpu.md §2 RFC; the simulated kernel reacts to
 * sriov_numvfs.)
 */
#pragma once

#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"

struct gv_sriov_info {
        uint32_t total_vfs;
        uint32_t num_vfs;
};

/* -EOPNOTSUPP when pf has no sriov_totalvfs (not an SR-IOV PF). */
int gv_sriov_read(const struct gv_sysfs *fs, const char *pf, struct gv_sriov_info *ret,
                  struct gv_error **err);
/* The VFs' addresses ordered by VF index (virtfn0, virtfn1, ...); empty when none. */
int gv_sriov_list_vfs(const struct gv_sysfs *fs, const char *pf, char ***ret,
                      struct gv_error **err);
/* A VF's PF: 1 and *ret set, or 0 (not a VF, *ret untouched). */
int gv_sriov_physfn(const struct gv_sysfs *fs, const char *vf, char **ret, struct gv_error **err);
/* Enable n VFs (0 disables). Verifies the VFs appeared (or went); restores the previous count
 * on failure. */
int gv_sriov_set_numvfs(const struct gv_sysfs *fs, const char *pf, uint32_t n,
                        struct gv_error **err);
