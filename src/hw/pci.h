/* SPDX-License-Identifier: MIT */
/*
 * pci.h — PCI functions as sysfs shows them (../shared/reference/passthrough.md §1, §4, §5):
 * IDs, class, bound driver, driver_override, NUMA node, IOMMU group, reset methods, SR-IOV.
 *
 * Enumeration reads every function under bus/pci/devices. A function whose files are corrupt
 * or truncated does not fail the inventory: it is reported in the inventory's problems list
 * (with the file and its content) and the other functions are still read.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"
#include "util/parse.h"

#define GV_PCI_VENDOR_NVIDIA 0x10de
#define GV_PCI_CLASS_DISPLAY 0x03       /* base class: VGA 0x0300, 3D 0x0302, ... */
#define GV_PCI_CLASS_BRIDGE_PCI 0x0604  /* base class + subclass: PCI-to-PCI bridge */

struct gv_pci_device {
        char bdf[GV_PCI_ADDR_STR_MAX];   /* canonical "0000:3b:00.0" */
        struct gv_pci_addr addr;
        uint16_t vendor, device;
        uint16_t subsystem_vendor, subsystem_device;
        uint32_t class_code;             /* 24 bits: base, subclass, prog-if (0x030000) */
        char *driver;                    /* bound driver ("nvidia", "vfio-pci"); NULL: none */
        char *driver_override;           /* NULL: none set (the kernel shows "(null)") */
        int numa_node;                   /* -1: none or unknown */
        int64_t iommu_group;             /* -1: no IOMMU group (IOMMU off) */
        bool reset_methods_known;        /* false: no reset_method file (older kernel) */
        char **reset_methods;            /* in kernel order, e.g. {"flr","bus"}; empty: none */
        bool sriov_capable;              /* sriov_totalvfs present (a PF) */
        uint32_t sriov_total_vfs, sriov_num_vfs;
        char **vfs;                      /* virtfnN targets ordered by N; NULL when none */
        char *physfn;                    /* a VF's PF ("0000:41:00.0"); NULL for PFs */
};

struct gv_pci_device *gv_pci_device_free(struct gv_pci_device *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_pci_device *, gv_pci_device_free);

/* Read one function. bdf may be any form gv_parse_pci_addr accepts. Errors name the file. */
int gv_pci_device_read(const struct gv_sysfs *fs, const char *bdf, struct gv_pci_device **ret,
                       struct gv_error **err);

/* One function that could not be read during enumeration. */
struct gv_pci_problem {
        char *bdf;
        int code;   /* positive errno */
        char *msg;  /* names the file and what it holds */
};

struct gv_pci_inventory {
        struct gv_pci_device **devices;  /* sorted by address */
        size_t n_devices;
        struct gv_pci_problem *problems;
        size_t n_problems;
};

struct gv_pci_inventory *gv_pci_inventory_free(struct gv_pci_inventory *inv);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_pci_inventory *, gv_pci_inventory_free);

enum {
        /* Leave SR-IOV virtual functions out (one lstat of their physfn link each instead of a
         * full read): a vGPU host has 16-32 per GPU and an inventory of GPUs needs none. */
        GV_PCI_ENUM_SKIP_VFS = 1 << 0,
};

/* Read every PCI function. Fails only when the device list itself cannot be read; per-function
 * failures become problems. flags: GV_PCI_ENUM_*. */
int gv_pci_enumerate(const struct gv_sysfs *fs, unsigned flags, struct gv_pci_inventory **ret,
                     struct gv_error **err);

/* Borrowed lookup in an inventory; NULL when absent. */
const struct gv_pci_device *gv_pci_inventory_find(const struct gv_pci_inventory *inv,
                                                  const char *bdf);

/* vendor 0x10de and display class 0x03xxxx (a GPU PF or VF). */
bool gv_pci_device_is_nvidia_gpu(const struct gv_pci_device *d);
/* Borrowed pointers to the NVIDIA GPUs of an inventory; *ret_n may be 0 (ret NULL then). */
void gv_pci_inventory_nvidia_gpus(const struct gv_pci_inventory *inv,
                                  const struct gv_pci_device ***ret, size_t *ret_n);

/* The other functions of the same physical device (same domain:bus:slot, not VFs), e.g. the
 * HDMI audio function 0000:01:00.1 of the GPU 0000:01:00.0 (passthrough.md §5). A VF has no
 * companions. Sorted; an empty list when there are none. */
int gv_pci_companions(const struct gv_sysfs *fs, const char *bdf, char ***ret,
                      struct gv_error **err);

/* "VGA compatible controller", "Audio device", "Ethernet controller", "PCI bridge", ... from
 * the class code (base class name when the subclass is not in our table). Never NULL. */
const char *gv_pci_class_name(uint32_t class_code);

/* Canonicalize an address string ("3b:00.0" -> "0000:3b:00.0"); error names the input. */
int gv_pci_canonical_bdf(const char *s, char ret[GV_PCI_ADDR_STR_MAX], struct gv_error **err);
