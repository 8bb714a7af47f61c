/* SPDX-License-Identifier: MIT */
/*
 * tree.h — small sysfs trees for the read-path tests, built in a temporary directory with the
 * kernel's shapes: real directories under sys/devices/pci0000:00/, links to them from
 * sys/bus/pci/devices and sys/kernel/iommu_groups/<N>/devices, relative driver and
 * iommu_group links. No kernel reacts to writes here: files are plain files.
 */
#pragma once

#include <stdbool.h>

#include "hw/sysfs.h"

struct tree {
        char *root;
        struct gv_sysfs *fs;
};

/* mkdtemp + the base directories; aborts the test on failure. */
struct tree *tree_new(void);
void tree_free(struct tree *t);

/* root/sys/<rel> */
char *tree_path(const struct tree *t, const char *rel);
void tree_file(const struct tree *t, const char *rel, const char *content);
void tree_dir(const struct tree *t, const char *rel);
void tree_link(const struct tree *t, const char *rel, const char *target);
/* Content of root/sys/<rel> (newly allocated), NULL when absent. */
char *tree_read(const struct tree *t, const char *rel);

/* A PCI function: vendor/device/class strings as the files should hold them (so tests can
 * write corrupt ones), driver NULL for none, group < 0 for no IOMMU. Creates the driver
 * directory with bind/unbind files. */
void tree_pci(const struct tree *t, const char *bdf, const char *vendor, const char *device,
              const char *class_code, const char *driver, int group);
/* Set a function's attribute file: tree_pci_attr(t, bdf, "reset_method", "flr bus\n"). */
void tree_pci_attr(const struct tree *t, const char *bdf, const char *attr, const char *content);
/* Make vf a VF (index idx) of pf: virtfn<idx> and physfn links. */
void tree_vf(const struct tree *t, const char *pf, const char *vf, unsigned idx);
