/* SPDX-License-Identifier: MIT */
/*
 * sysfs.h — the one place that builds sysfs paths, and the bounded readers and writers every
 * other file in src/hw goes through (style.md lesson 5: one path builder, configurable root).
 *
 * The tree lives at <root>/sys: root is "/" on a real host, or the directory of a simulated
 * host (sim/host/sim-state.h), whose tree the generator writes at ROOT/sys and whose kernel
 * reactions the LD_PRELOAD mock (sim/kmock) applies to the writes made here. Nothing else in
 * src/hw names a sysfs path: it asks one of the builders below.
 *
 * Reads strip one trailing newline (sysfs values end with one) and refuse files larger than
 * GV_SYSFS_READ_MAX. Errors name the path and, for values that do not parse, the content
 * (escaped and shortened), so a corrupt or truncated file is obvious from the message.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/macro.h"

/* sysfs attributes are one page at most; creatable_vgpu_types and friends fit easily. */
#define GV_SYSFS_READ_MAX (64u * 1024u)

struct gv_sysfs {
        char *root; /* as given, without trailing '/' (empty for "/") */
        char *sys;  /* "<root>/sys" */
};

/* root must be an existing directory holding sys/ (a real host: "/"). Errors say what to set. */
int gv_sysfs_new(const char *root, struct gv_sysfs **ret, struct gv_error **err);
struct gv_sysfs *gv_sysfs_free(struct gv_sysfs *fs);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_sysfs *, gv_sysfs_free);

/* ---- paths (newly allocated) ---------------------------------------------------------- */

/* The cgroup hierarchy's mount point on this host's real kernel: "/sys/fs/cgroup" (cgroup v2's
 * unified hierarchy, or v1's directory of per-controller mounts). Not under a simulated root:
 * only GPUs are simulated, the processes and their cgroups are the real kernel's. The agent's
 * cgroup-root option replaces it (src/vmm/confine.h). */
char *gv_sysfs_cgroup_root(void);

/* <root>/sys/<fmt...>: the one builder; the named ones below are shorthands for it. */
char *gv_sysfs_path(const struct gv_sysfs *fs, const char *fmt, ...) _printf_(2, 3);

/* <root>/sys/bus/pci/devices */
char *gv_sysfs_pci_devices_dir(const struct gv_sysfs *fs);
/* <root>/sys/bus/pci/devices/dddd:bb:ss.f  (a link into <root>/sys/devices/pci.../) */
char *gv_sysfs_pci_device_dir(const struct gv_sysfs *fs, const char *bdf);
/* <root>/sys/bus/pci/devices/dddd:bb:ss.f/<attr>, e.g.
 *   .../vendor                "0x10de"
 *   .../driver                -> ../../../bus/pci/drivers/vfio-pci
 *   .../iommu_group           -> ../../../../kernel/iommu_groups/26
 *   .../virtfn0               -> ../0000:41:00.4      (PF)
 *   .../physfn                -> ../0000:41:00.0      (VF)
 *   .../nvidia/current_vgpu_type                       (vendor-VFIO VF) */
char *gv_sysfs_pci_device_attr(const struct gv_sysfs *fs, const char *bdf, const char *attr);
/* <root>/sys/bus/pci/drivers/<driver> */
char *gv_sysfs_pci_driver_dir(const struct gv_sysfs *fs, const char *driver);
/* <root>/sys/bus/pci/drivers/<driver>/<attr>   (bind, unbind, new_id, ...) */
char *gv_sysfs_pci_driver_attr(const struct gv_sysfs *fs, const char *driver, const char *attr);
/* <root>/sys/bus/pci/drivers_probe */
char *gv_sysfs_pci_drivers_probe(const struct gv_sysfs *fs);
/* <root>/sys/kernel/iommu_groups/<group>/devices   (links named dddd:bb:ss.f) */
char *gv_sysfs_iommu_group_devices_dir(const struct gv_sysfs *fs, uint32_t group);
/* <root>/sys/class/mdev_bus   (links named after each mdev parent device) */
char *gv_sysfs_mdev_bus_dir(const struct gv_sysfs *fs);
/* <root>/sys/class/mdev_bus/<parent>/mdev_supported_types */
char *gv_sysfs_mdev_types_dir(const struct gv_sysfs *fs, const char *parent);
/* <root>/sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/<attr>
 *   (create, name, available_instances, device_api, description, devices/) */
char *gv_sysfs_mdev_type_attr(const struct gv_sysfs *fs, const char *parent, const char *type,
                              const char *attr);
/* <root>/sys/bus/mdev/devices   (links named <uuid> -> ../../../devices/.../<parent>/<uuid>) */
char *gv_sysfs_mdev_devices_dir(const struct gv_sysfs *fs);
/* <root>/sys/bus/mdev/devices/<uuid>/<attr>   (remove, mdev_type -> type dir); attr NULL or
 * "" gives the device link itself. */
char *gv_sysfs_mdev_device_attr(const struct gv_sysfs *fs, const char *uuid, const char *attr);

/* ---- access ---------------------------------------------------------------------------- */

enum {
        /* A missing file/link/directory is not an error: return 0 and leave ret untouched.
         * Without this flag a missing path is -ENOENT with an error naming it. */
        GV_SYSFS_OPTIONAL = 1 << 0,
};

/* Read an attribute, one trailing newline stripped. Returns 1 when read, 0 when absent and
 * GV_SYSFS_OPTIONAL was given, -errno on failure. */
int gv_sysfs_read(const char *path, unsigned flags, char **ret, struct gv_error **err);
/* Unsigned decimal ("16", "-1" is refused). */
int gv_sysfs_read_u32(const char *path, unsigned flags, uint32_t *ret, struct gv_error **err);
/* Signed decimal ("-1" for numa_node on non-NUMA machines). */
int gv_sysfs_read_int(const char *path, unsigned flags, int *ret, struct gv_error **err);
/* Hexadecimal as the kernel prints PCI IDs: "0x" and exactly `digits` hex digits
 * ("0x10de" with digits=4, "0x030200" with digits=6). "0x10" for a 4-digit field is refused
 * as truncated. */
int gv_sysfs_read_hex(const char *path, unsigned digits, unsigned flags, uint32_t *ret,
                      struct gv_error **err);
/* The last component of a symlink's target (driver -> ".../vfio-pci" gives "vfio-pci").
 * Same return convention as gv_sysfs_read. */
int gv_sysfs_read_link(const char *path, unsigned flags, char **ret, struct gv_error **err);
/* The whole target of a symlink, as readlink() gives it. Same return convention. */
int gv_sysfs_read_link_target(const char *path, unsigned flags, char **ret,
                              struct gv_error **err);
/* Sorted entry names of a directory (no "." and ".."); prefix NULL or a required prefix
 * ("virtfn"). Same return convention as gv_sysfs_read (absent + OPTIONAL: 0, ret untouched). */
int gv_sysfs_list(const char *dir, const char *prefix, unsigned flags, char ***ret,
                  struct gv_error **err);
/* 1 exists (following links), 0 not, <0 other error. */
int gv_sysfs_exists(const char *path);

/* Write value in ONE write() (the kernel acts per write). The errno the kernel returns is kept
 * (-EBUSY, -EINVAL, ...); the error names the path and the value. */
int gv_sysfs_write(const char *path, const char *value, struct gv_error **err);

/* A value from a file made safe for an error message: non-printable bytes as \xNN, cut after
 * 64 characters with "...". Newly allocated. */
char *gv_sysfs_escape(const char *s);
