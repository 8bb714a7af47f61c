/* SPDX-License-Identifier: MIT */
/*
 * driver.h — moving a whole IOMMU group to vfio-pci for pass-through, and back
 * (passthrough.md §2, the driver_override method of K-DO/K-DOP):
 *
 *   bind:    write "vfio-pci" to driver_override, write the address to the current driver's
 *            unbind, write the address to drivers_probe, then check the driver link now points
 *            at vfio-pci (a bind the kernel did not carry out is an error, not a success);
 *   restore: clear driver_override (a "\n" write), unbind from vfio-pci, drivers_probe, then
 *            check the original driver is back.
 *
 * The group must first pass gv_iommu_check_assignment(): its other members are left as they
 * are, and the refusal names them. A failure part-way restores every function already moved
 * (and the one that failed), so the host is never left half bound; errors name the function
 * and the step. The binding records each function's previous driver and driver_override so the
 * caller can persist it and restore later, possibly from another process.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"
#include "util/parse.h"

#define GV_DRIVER_VFIO_PCI "vfio-pci"

struct gv_driver_function {
        char bdf[GV_PCI_ADDR_STR_MAX];
        char *original_driver;   /* NULL: it had no driver */
        char *original_override; /* NULL: driver_override was unset */
        bool moved;              /* false: it was on vfio-pci already and is left alone */
};

struct gv_vfio_binding {
        uint32_t group;
        struct gv_driver_function *functions; /* the assigned functions, sorted */
        size_t n_functions;
};

struct gv_vfio_binding *gv_vfio_binding_free(struct gv_vfio_binding *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_vfio_binding *, gv_vfio_binding_free);

/* The bound driver of a function: 1 and *ret set, or 0 and *ret = NULL when unbound. */
int gv_driver_current(const struct gv_sysfs *fs, const char *bdf, char **ret,
                      struct gv_error **err);

/* Bind bdf and its companion functions (the assignment of gv_iommu_check_assignment) to
 * vfio-pci. -EBUSY with the verdict's reason when the group holds a foreign device. */
int gv_driver_bind_vfio(const struct gv_sysfs *fs, const char *bdf, struct gv_vfio_binding **ret,
                        struct gv_error **err);

/* Give every moved function of a binding back to its original driver. Tries them all; the
 * error names each function that failed. */
int gv_driver_restore(const struct gv_sysfs *fs, const struct gv_vfio_binding *b,
                      struct gv_error **err);

/* Give one function back: original_driver NULL means it stays unbound. Usable without a
 * binding object (the agent restarted and read the original driver from its store). */
int gv_driver_restore_function(const struct gv_sysfs *fs, const char *bdf,
                               const char *original_driver, const char *original_override,
                               struct gv_error **err);
