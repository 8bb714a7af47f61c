/* SPDX-License-Identifier: MIT */
/*
 * sim-sysfs-tree.h — tree mechanics shared by the generator (sim-sysfs.c) and the kernel mock
 * (sim/kmock): where a function's directory is, and the links a driver binding consists of.
 * The kernel-side facts that NVML does not know (bound driver, driver_override, sriov_numvfs)
 * live only in the tree itself, as they do on a real host; these helpers read and change them.
 * All paths are absolute; root is the simulated host's ROOT (the tree is ROOT/sys).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "host/sim-state.h"
#include "util/error.h"

/* VF i of a PF: first VF offset 4, stride 1 (vgpu.md §2: 0000:41:00.0 -> 0000:41:00.4 ...
 * virtfn31 -> 0000:41:04.3). buf holds 16 bytes. -ERANGE past the end of the bus range. */
int sim_sysfs_vf_bdf(const char *pf_bdf, unsigned i, char buf[static 16]);

/* ROOT/sys/devices/.../<bdf> for an existing function (follows bus/pci/devices/<bdf>);
 * -ENODEV when the function does not exist. */
int sim_sysfs_device_dir(const char *root, const char *bdf, char **ret);

/* Name of the driver bound to bdf; 0 and *ret = NULL when none; -ENODEV when no such device. */
int sim_sysfs_driver_of(const char *root, const char *bdf, char **ret);

/* Is there a driver directory ROOT/sys/bus/pci/drivers/<driver>? */
bool sim_sysfs_driver_exists(const char *root, const char *driver);

/* Bind/unbind the links only (driver, drivers/<drv>/<bdf>); no kernel rules checked. */
int sim_sysfs_link_driver(const char *root, const char *bdf, const char *driver);
int sim_sysfs_unlink_driver(const char *root, const char *bdf);

/* Read a small decimal/hex attribute of a device ("sriov_numvfs", ...). */
int sim_sysfs_read_u32(const char *root, const char *bdf, const char *attr, uint32_t *ret);
/* Write an attribute file of a device with one trailing newline (regular file in the tree). */
int sim_sysfs_write_attr(const char *root, const char *bdf, const char *attr, const char *value);
/* driver_override: NULL when unset ("(null)"). */
int sim_sysfs_get_override(const char *root, const char *bdf, char **ret);

/* Driver ids: does driver's id table (static, or dynamic ids recorded by new_id) match the
 * device? nvidia: NVIDIA display controllers; snd_hda_intel: class 0x0403; vfio-pci: none;
 * other drivers: the devices the profile bound to them at boot. */
int sim_sysfs_driver_matches(const struct sim_state *s, const char *driver, const char *bdf);

/* Record a new_id / remove_id line for driver (ROOT/gpuvirt-sim/dynids). */
int sim_sysfs_dynid(const char *root, const char *driver, uint16_t vendor, uint16_t device,
                    bool add);

/* The default driver of a function (the profile's, or nvidia for VFs); NULL if none. */
const char *sim_sysfs_default_driver(const struct sim_state *s, const char *bdf);
