/* SPDX-License-Identifier: MIT */
/*
 * iommu.h — IOMMU groups and whether a device can be assigned to a VM (passthrough.md §3).
 *
 * The group, not the device, is the unit of isolation (K-VFIO). Assigning a device means
 * every other member of its group must be harmless for the VM to see:
 *   - part of the same assignment (the device and its other functions, e.g. the HDMI audio
 *     function of a GPU: Proxmox passes "All Functions", PVE-DOC), bound to vfio-pci by us;
 *   - already bound to vfio-pci (K-VFIO: each device must be bound to a VFIO driver);
 *   - bound to no driver at all (K-VFIO: "sufficient to only unbind the device from host
 *     drivers");
 *   - a PCI bridge with no driver or the pcieport driver (K-VFIO: "vfio-pci does not
 *     currently support PCI bridges"; PVE-DOC: the root port/bridge may share the group).
 * Anything else bound to a host driver blocks the assignment: the VM would get that device too
 * (VergeOS: a group cannot be split among guests).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"
#include "util/parse.h"

enum gv_iommu_role {
        GV_IOMMU_ROLE_ASSIGNED,   /* part of the assignment */
        GV_IOMMU_ROLE_VFIO,       /* another device, already on vfio-pci */
        GV_IOMMU_ROLE_UNBOUND,    /* another device, no driver */
        GV_IOMMU_ROLE_BRIDGE,     /* PCI bridge, no driver or pcieport */
        GV_IOMMU_ROLE_FOREIGN,    /* another device on a host driver: blocks */
        GV_IOMMU_ROLE_UNREADABLE, /* its sysfs files cannot be read: blocks */
        _GV_IOMMU_ROLE_MAX,
        _GV_IOMMU_ROLE_INVALID = -EINVAL,
};
const char *gv_iommu_role_to_string(enum gv_iommu_role v);
enum gv_iommu_role gv_iommu_role_from_string(const char *s);

struct gv_iommu_member {
        char bdf[GV_PCI_ADDR_STR_MAX];
        uint32_t class_code;
        char *driver;  /* NULL: none */
        enum gv_iommu_role role;
};

struct gv_iommu_verdict {
        uint32_t group;
        bool viable;
        struct gv_iommu_member *members; /* every function of the group, sorted */
        size_t n_members;
        char *reason;                    /* why not viable, naming each offender; NULL if viable */
};

struct gv_iommu_verdict *gv_iommu_verdict_free(struct gv_iommu_verdict *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_iommu_verdict *, gv_iommu_verdict_free);

/* The group number of a function. -ENODEV when it has no iommu_group link: the message says
 * to turn the IOMMU on (intel_iommu=on / amd_iommu=on). */
int gv_iommu_group_of(const struct gv_sysfs *fs, const char *bdf, uint32_t *ret,
                      struct gv_error **err);

/* Canonical addresses of every function in a group, sorted. */
int gv_iommu_group_members(const struct gv_sysfs *fs, uint32_t group, char ***ret,
                           struct gv_error **err);

/* The verdict for passing bdf through together with its companion functions
 * (gv_pci_companions). Returns 0 with a verdict (viable or not) when the group could be read,
 * -errno when not (no IOMMU, no such device). */
int gv_iommu_check_assignment(const struct gv_sysfs *fs, const char *bdf,
                              struct gv_iommu_verdict **ret, struct gv_error **err);
