/* SPDX-License-Identifier: MIT */
/*
 * mdev.h — mediated devices (vgpu.md §3, K-MDEV):
 *
 *   class/mdev_bus/<parent>                      one link per parent device
 *   <parent>/mdev_supported_types/<type-id>/     name, available_instances, device_api,
 *                                                description, create, devices/
 *   bus/mdev/devices/<uuid>                      -> .../<parent>/<uuid>; mdev_type -> type dir
 *
 * Create writes a UUID to the type's create file and checks the device appeared with that
 * type; remove writes 1 to the device's remove file and checks it went.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/sysfs.h"
#include "util/error.h"
#include "util/parse.h"

struct gv_mdev_type {
        char *id;                     /* "nvidia-700" */
        char *name;                   /* "GRID A100D-2-20C"; NULL when the file is absent */
        uint32_t available_instances;
        char *device_api;             /* "vfio-pci" */
        char *description;            /* NULL when absent (newer drivers drop it) */
};

struct gv_mdev_type_list {
        struct gv_mdev_type *types;
        size_t n;
};
struct gv_mdev_type_list *gv_mdev_type_list_free(struct gv_mdev_type_list *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_mdev_type_list *, gv_mdev_type_list_free);

struct gv_mdev_instance {
        char uuid[GV_UUID_STR_LEN + 1];
        char *parent;  /* "0000:41:00.4" */
        char *type_id; /* "nvidia-700" */
};

struct gv_mdev_instance_list {
        struct gv_mdev_instance *instances;
        size_t n;
};
struct gv_mdev_instance_list *gv_mdev_instance_list_free(struct gv_mdev_instance_list *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_mdev_instance_list *, gv_mdev_instance_list_free);

/* Parents registered with mdev core, sorted; empty when none (or no mdev module). */
int gv_mdev_list_parents(const struct gv_sysfs *fs, char ***ret, struct gv_error **err);
/* Types of one parent, sorted by id. -ENODEV when parent is not an mdev parent. */
int gv_mdev_list_types(const struct gv_sysfs *fs, const char *parent,
                       struct gv_mdev_type_list **ret, struct gv_error **err);

/* NVIDIA type names carry a prefix that changed over releases ("GRID A100D-2-20C", "NVIDIA
 * L40S-1B"); tools compare on the last token (vgpu.md §3, VDM shortName()). True when the last
 * whitespace-separated tokens of both names are equal. */
bool gv_vgpu_name_matches(const char *type_name, const char *wanted);
/* The last token of a type name ("GRID A100D-2-20C" -> "A100D-2-20C"); points into name. */
const char *gv_vgpu_name_short(const char *name);

/* Find a type by id ("nvidia-700") or by name (last-token match). Borrowed; -ENOENT with an
 * error listing the parent's types when absent. */
int gv_mdev_type_find(const struct gv_mdev_type_list *l, const char *parent, const char *wanted,
                      const struct gv_mdev_type **ret, struct gv_error **err);

/* Create an mdev of type_id on parent. uuid NULL: a random one. ret_uuid (may be NULL) gets
 * the canonical UUID. -ENOSPC when the type has no available instances. */
int gv_mdev_create(const struct gv_sysfs *fs, const char *parent, const char *type_id,
                   const char *uuid, char ret_uuid[GV_UUID_STR_LEN + 1], struct gv_error **err);
/* Remove an mdev; -ENOENT when it does not exist. */
int gv_mdev_remove(const struct gv_sysfs *fs, const char *uuid, struct gv_error **err);
/* Every mdev with its parent and type, sorted by UUID. */
int gv_mdev_list_instances(const struct gv_sysfs *fs, struct gv_mdev_instance_list **ret,
                           struct gv_error **err);
/* One mdev; -ENOENT when absent. */
int gv_mdev_instance_read(const struct gv_sysfs *fs, const char *uuid,
                          struct gv_mdev_instance *ret, struct gv_error **err);
void gv_mdev_instance_done(struct gv_mdev_instance *i);
