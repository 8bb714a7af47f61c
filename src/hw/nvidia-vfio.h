/* SPDX-License-Identifier: MIT */
/*
 * nvidia-vfio.h — NVIDIA's vendor-specific VFIO interface on SR-IOV VFs (vgpu.md §4): each VF
 * has nvidia/creatable_vgpu_types, nvidia/current_vgpu_type and nvidia/vgpu_params; a vGPU is
 * made by writing a type ID to current_vgpu_type and released by writing 0. And which of the
 * two vGPU interfaces a GPU uses (vgpu.md §1).
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"

enum gv_vgpu_interface {
        GV_VGPU_INTERFACE_NONE,        /* neither: no vGPU manager, or VFs not enabled */
        GV_VGPU_INTERFACE_MDEV,        /* mdev_supported_types/ on the PF or its VFs */
        GV_VGPU_INTERFACE_VENDOR_VFIO, /* nvidia/creatable_vgpu_types on the VFs */
        _GV_VGPU_INTERFACE_MAX,
        _GV_VGPU_INTERFACE_INVALID = -EINVAL,
};
const char *gv_vgpu_interface_to_string(enum gv_vgpu_interface v);
enum gv_vgpu_interface gv_vgpu_interface_from_string(const char *s);

struct gv_nvidia_vgpu_type {
        uint32_t id;  /* 1145 */
        char *name;   /* as printed: "NVIDIA L40S-1B" */
};

struct gv_nvidia_vgpu_type_list {
        struct gv_nvidia_vgpu_type *types; /* in file order */
        size_t n;                          /* 0: only the header (nothing creatable now) */
};
struct gv_nvidia_vgpu_type_list *gv_nvidia_vgpu_type_list_free(struct gv_nvidia_vgpu_type_list *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_nvidia_vgpu_type_list *, gv_nvidia_vgpu_type_list_free);

/* Most lines a creatable_vgpu_types file may have (a few dozen in practice). */
#define GV_NVIDIA_VGPU_TYPES_MAX 1024

/* Parse the text of creatable_vgpu_types: the header "ID    : vGPU Name", then one
 * "%-5d : NVIDIA <name>" line per type (RFC creatable_homogeneous_vgpu_types_show); a single
 * space after the ID is accepted too (KVDP). A malformed line is refused with its number.
 * origin names the text in errors (the file path). */
int gv_nvidia_parse_creatable_vgpu_types(const char *text, const char *origin,
                                         struct gv_nvidia_vgpu_type_list **ret,
                                         struct gv_error **err);
/* Read and parse bus/pci/devices/<vf>/nvidia/creatable_vgpu_types. */
int gv_nvidia_read_creatable_vgpu_types(const struct gv_sysfs *fs, const char *vf,
                                        struct gv_nvidia_vgpu_type_list **ret,
                                        struct gv_error **err);
/* Find by ID ("1145") or name, compared on the last token ("L40S-1B" finds "NVIDIA L40S-1B").
 * Borrowed. -ENOENT with an error listing what is creatable. */
int gv_nvidia_vgpu_type_find(const struct gv_nvidia_vgpu_type_list *l, const char *vf,
                             const char *wanted, const struct gv_nvidia_vgpu_type **ret,
                             struct gv_error **err);

/* current_vgpu_type: 0 when none. */
int gv_nvidia_current_vgpu_type(const struct gv_sysfs *fs, const char *vf, uint32_t *ret,
                                struct gv_error **err);
/* Select a type on a VF. Idempotent when it is set already; -EBUSY when another type is set
 * (clear it first: a VF holds one vGPU); -ENOSPC / -EINVAL when the type is not creatable now.
 * Verifies current_vgpu_type reads the ID afterwards. */
int gv_nvidia_set_vgpu_type(const struct gv_sysfs *fs, const char *vf, uint32_t type_id,
                            struct gv_error **err);
/* Write 0; verifies it reads 0 afterwards. -EBUSY from the kernel while the VM holds the VF
 * ("the VFIO device must be closed", RFC). */
int gv_nvidia_clear_vgpu_type(const struct gv_sysfs *fs, const char *vf, struct gv_error **err);

/* Which interface a GPU (PF) or one of its VFs uses, by vgpu.md §1: a VF with
 * nvidia/creatable_vgpu_types uses the vendor-specific framework; a parent with
 * mdev_supported_types/ uses mdev; NONE otherwise (including an SR-IOV GPU whose VFs are not
 * enabled yet). */
int gv_nvidia_vgpu_interface(const struct gv_sysfs *fs, const char *bdf,
                             enum gv_vgpu_interface *ret, struct gv_error **err);
/* The same for a function already read: bdf canonical, vfs its VFs (may be NULL). */
int gv_nvidia_vgpu_interface_of(const struct gv_sysfs *fs, const char *bdf, char *const *vfs,
                                enum gv_vgpu_interface *ret, struct gv_error **err);
