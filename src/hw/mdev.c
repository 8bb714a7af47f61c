/* SPDX-License-Identifier: MIT */
/*
 * mdev.c — mediated device types and instances (mdev.h; vgpu.md §3).
 */
#include "hw/mdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/pci.h"
#include "util/alloc.h"
#include "util/strv.h"

static void type_done(struct gv_mdev_type *t)
{
        free(t->id);
        free(t->name);
        free(t->device_api);
        free(t->description);
}

struct gv_mdev_type_list *gv_mdev_type_list_free(struct gv_mdev_type_list *l)
{
        if (l) {
                for (size_t i = 0; i < l->n; i++)
                        type_done(&l->types[i]);
                free(l->types);
                free(l);
        }
        return NULL;
}

void gv_mdev_instance_done(struct gv_mdev_instance *i)
{
        if (i) {
                free(i->parent);
                free(i->type_id);
                i->parent = i->type_id = NULL;
        }
}

struct gv_mdev_instance_list *gv_mdev_instance_list_free(struct gv_mdev_instance_list *l)
{
        if (l) {
                for (size_t i = 0; i < l->n; i++)
                        gv_mdev_instance_done(&l->instances[i]);
                free(l->instances);
                free(l);
        }
        return NULL;
}

int gv_mdev_list_parents(const struct gv_sysfs *fs, char ***ret, struct gv_error **err)
{
        /* class/mdev_bus/<parent> -> ../../devices/.../<parent>; absent without mdev core */
        _cleanup_free_ char *dir = gv_sysfs_mdev_bus_dir(fs);
        char **l = NULL;
        int r = gv_sysfs_list(dir, NULL, GV_SYSFS_OPTIONAL, &l, err);
        if (r < 0)
                return r;
        *ret = l ? l : xnew0(char *, 1);
        return 0;
}

static int read_type(const struct gv_sysfs *fs, const char *parent, const char *id,
                     struct gv_mdev_type *t, struct gv_error **err)
{
        int r;
        t->id = xstrdup(id);

        _cleanup_free_ char *p = gv_sysfs_mdev_type_attr(fs, parent, id, "name");
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &t->name, err);
        if (r < 0)
                return r;
        free(p);
        p = gv_sysfs_mdev_type_attr(fs, parent, id, "available_instances");
        r = gv_sysfs_read_u32(p, 0, &t->available_instances, err);
        if (r < 0)
                return r;
        free(p);
        p = gv_sysfs_mdev_type_attr(fs, parent, id, "device_api");
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &t->device_api, err);
        if (r < 0)
                return r;
        free(p);
        p = gv_sysfs_mdev_type_attr(fs, parent, id, "description");
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &t->description, err);
        if (r < 0)
                return r;
        return 0;
}

int gv_mdev_list_types(const struct gv_sysfs *fs, const char *parent,
                       struct gv_mdev_type_list **ret, struct gv_error **err)
{
        /* class/mdev_bus/<parent>/mdev_supported_types/<type-id>/ */
        _cleanup_free_ char *dir = gv_sysfs_mdev_types_dir(fs, parent);
        _cleanup_strv_free_ char **ids = NULL;
        int r = gv_sysfs_list(dir, NULL, GV_SYSFS_OPTIONAL, &ids, err);
        if (r < 0)
                return r;
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "%s is not an mdev parent ('%s' does not exist): the vGPU "
                                    "manager is not loaded, SR-IOV VFs are not enabled, or the "
                                    "GPU uses the vendor-VFIO interface (nvidia/ files) instead.",
                                    parent, dir);

        _cleanup_(gv_mdev_type_list_freep) struct gv_mdev_type_list *l =
                xnew0(struct gv_mdev_type_list, 1);
        size_t n = strv_length(ids);
        l->types = xnew0(struct gv_mdev_type, n ? n : 1);
        for (size_t i = 0; i < n; i++) {
                r = read_type(fs, parent, ids[i], &l->types[l->n++], err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Cannot read mdev type '%s' of %s", ids[i],
                                             parent);
        }
        *ret = TAKE_PTR(l);
        return 0;
}

const char *gv_vgpu_name_short(const char *name)
{
        size_t n = strlen(name);
        while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
                n--;
        size_t i = n;
        while (i > 0 && name[i - 1] != ' ' && name[i - 1] != '\t')
                i--;
        return name + i;
}

static size_t token_len(const char *t)
{
        size_t n = 0;
        while (t[n] && t[n] != ' ' && t[n] != '\t')
                n++;
        return n;
}

bool gv_vgpu_name_matches(const char *type_name, const char *wanted)
{
        if (!type_name || !wanted)
                return false;
        const char *a = gv_vgpu_name_short(type_name), *b = gv_vgpu_name_short(wanted);
        size_t la = token_len(a), lb = token_len(b);
        return la > 0 && la == lb && memcmp(a, b, la) == 0;
}

int gv_mdev_type_find(const struct gv_mdev_type_list *l, const char *parent, const char *wanted,
                      const struct gv_mdev_type **ret, struct gv_error **err)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->types[i].id, wanted) == 0) {
                        *ret = &l->types[i];
                        return 0;
                }
        for (size_t i = 0; i < l->n; i++)
                if (gv_vgpu_name_matches(l->types[i].name, wanted)) {
                        *ret = &l->types[i];
                        return 0;
                }

        _cleanup_strv_free_ char **names = NULL;
        for (size_t i = 0; i < l->n; i++)
                strv_consume(&names, xasprintf("%s (%s)", l->types[i].id,
                                               l->types[i].name ? l->types[i].name : "no name"));
        _cleanup_free_ char *list = strv_join(names, ", ");
        _cleanup_free_ char *e = gv_sysfs_escape(wanted);
        return gv_error_set(err, ENOENT, "%s has no mdev type '%s'; its types are: %s.", parent, e,
                            l->n ? list : "none");
}

/* The parent is the directory the instance lives in: bus/mdev/devices/<uuid> ->
 * ../../../devices/pci0000:40/0000:40:01.1/0000:41:00.4/<uuid>. */
static char *parent_of_target(const char *target)
{
        const char *end = strrchr(target, '/');
        if (!end || end == target)
                return NULL;
        const char *start = end;
        while (start > target && start[-1] != '/')
                start--;
        if (start == end)
                return NULL;
        return xstrndup(start, (size_t)(end - start));
}

int gv_mdev_instance_read(const struct gv_sysfs *fs, const char *uuid_in,
                          struct gv_mdev_instance *ret, struct gv_error **err)
{
        struct gv_uuid u;
        char uuid[GV_UUID_STR_LEN + 1];
        if (gv_parse_uuid(uuid_in, &u) < 0) {
                _cleanup_free_ char *e = gv_sysfs_escape(uuid_in);
                return gv_error_set(err, EINVAL,
                                    "'%s' is not a UUID: write it as 8-4-4-4-12 hex digits.", e);
        }
        gv_uuid_format(&u, uuid);

        _cleanup_free_ char *link = gv_sysfs_mdev_device_attr(fs, uuid, NULL);
        _cleanup_free_ char *target = NULL;
        int r = gv_sysfs_read_link_target(link, GV_SYSFS_OPTIONAL, &target, err);
        if (r < 0)
                return r;
        if (r == 0)
                return gv_error_set(err, ENOENT,
                                    "There is no mediated device %s ('%s' does not exist).", uuid,
                                    link);

        struct gv_mdev_instance i = {};
        memcpy(i.uuid, uuid, sizeof(uuid));
        i.parent = parent_of_target(target);
        if (!i.parent)
                return gv_error_set(err, EBADMSG,
                                    "The link '%s' points at '%s', which names no parent device.",
                                    link, target);

        /* bus/mdev/devices/<uuid>/mdev_type -> ../mdev_supported_types/<type-id> */
        _cleanup_free_ char *tl = gv_sysfs_mdev_device_attr(fs, uuid, "mdev_type");
        r = gv_sysfs_read_link(tl, 0, &i.type_id, err);
        if (r < 0) {
                gv_mdev_instance_done(&i);
                return r;
        }
        *ret = i;
        return 0;
}

static int cmp_instance(const void *a, const void *b)
{
        return strcmp(((const struct gv_mdev_instance *)a)->uuid,
                      ((const struct gv_mdev_instance *)b)->uuid);
}

int gv_mdev_list_instances(const struct gv_sysfs *fs, struct gv_mdev_instance_list **ret,
                           struct gv_error **err)
{
        _cleanup_free_ char *dir = gv_sysfs_mdev_devices_dir(fs);
        _cleanup_strv_free_ char **uuids = NULL;
        int r = gv_sysfs_list(dir, NULL, GV_SYSFS_OPTIONAL, &uuids, err);
        if (r < 0)
                return r;

        _cleanup_(gv_mdev_instance_list_freep) struct gv_mdev_instance_list *l =
                xnew0(struct gv_mdev_instance_list, 1);
        size_t n = strv_length(uuids);
        l->instances = xnew0(struct gv_mdev_instance, n ? n : 1);
        for (size_t i = 0; i < n; i++) {
                r = gv_mdev_instance_read(fs, uuids[i], &l->instances[l->n], err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Cannot read mediated device '%s'", uuids[i]);
                l->n++;
        }
        qsort(l->instances, l->n, sizeof(*l->instances), cmp_instance);
        *ret = TAKE_PTR(l);
        return 0;
}

int gv_mdev_create(const struct gv_sysfs *fs, const char *parent, const char *type_id,
                   const char *uuid_in, char ret_uuid[GV_UUID_STR_LEN + 1], struct gv_error **err)
{
        struct gv_uuid u;
        char uuid[GV_UUID_STR_LEN + 1];
        int r;

        if (uuid_in) {
                if (gv_parse_uuid(uuid_in, &u) < 0) {
                        _cleanup_free_ char *e = gv_sysfs_escape(uuid_in);
                        return gv_error_set(err, EINVAL,
                                            "'%s' is not a UUID: write it as 8-4-4-4-12 hex "
                                            "digits.",
                                            e);
                }
        } else if ((r = gv_uuid_random(&u)) < 0)
                return gv_error_set(err, r, "Cannot generate a UUID: %s.", strerror(-r));
        gv_uuid_format(&u, uuid);

        /* The type must exist and have room (NV-AIE5 §2.8.3.1: 0 means another type already
         * exists on the GPU or the maximum is reached). */
        _cleanup_free_ char *avail = gv_sysfs_mdev_type_attr(fs, parent, type_id,
                                                             "available_instances");
        uint32_t n;
        r = gv_sysfs_read_u32(avail, GV_SYSFS_OPTIONAL, &n, err);
        if (r < 0)
                return r;
        if (r == 0) {
                _cleanup_(gv_mdev_type_list_freep) struct gv_mdev_type_list *l = NULL;
                const struct gv_mdev_type *t;
                r = gv_mdev_list_types(fs, parent, &l, err);
                if (r < 0)
                        return r;
                r = gv_mdev_type_find(l, parent, type_id, &t, err);
                if (r < 0)
                        return r;
                return gv_error_set(err, ENOENT,
                                    "mdev type '%s' of %s has no available_instances file: the "
                                    "sysfs tree is damaged.",
                                    type_id, parent);
        }
        if (n == 0)
                return gv_error_set(err, ENOSPC,
                                    "mdev type '%s' on %s has no available instances: a vGPU of "
                                    "another type already exists on this GPU, or the maximum "
                                    "number of this type is reached. Pick another parent or "
                                    "type, or remove a vGPU first.",
                                    type_id, parent);

        _cleanup_free_ char *dev = gv_sysfs_mdev_device_attr(fs, uuid, NULL);
        r = gv_sysfs_exists(dev);
        if (r > 0)
                return gv_error_set(err, EEXIST,
                                    "A mediated device %s already exists: pick another UUID.",
                                    uuid);

        /* class/mdev_bus/<parent>/mdev_supported_types/<type>/create */
        _cleanup_free_ char *create = gv_sysfs_mdev_type_attr(fs, parent, type_id, "create");
        r = gv_sysfs_write(create, uuid, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Creating mediated device %s of type '%s' on %s "
                                     "failed", uuid, type_id, parent);

        struct gv_mdev_instance inst = {};
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_mdev_instance_read(fs, uuid, &inst, &e);
        if (r == -ENOENT)
                return gv_error_set(err, EIO,
                                    "Creating mediated device %s of type '%s' on %s did not take "
                                    "effect: '%s' did not appear. Check the kernel log (dmesg) "
                                    "and the vGPU manager (nvidia-vgpu-mgr).",
                                    uuid, type_id, parent, dev);
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return r;
        }
        bool ok = strcmp(inst.type_id, type_id) == 0 && strcmp(inst.parent, parent) == 0;
        if (!ok) {
                _cleanup_free_ char *msg = xasprintf(
                        "Mediated device %s appeared as type '%s' on %s, not '%s' on %s",
                        uuid, inst.type_id, inst.parent, type_id, parent);
                gv_mdev_instance_done(&inst);
                _cleanup_(gv_error_freep) struct gv_error *re = NULL;
                int q = gv_mdev_remove(fs, uuid, &re);
                if (q < 0)
                        return gv_error_set(err, EIO, "%s, and removing it failed: %s", msg,
                                            gv_error_msg(re, q));
                return gv_error_set(err, EIO, "%s; it was removed again.", msg);
        }
        gv_mdev_instance_done(&inst);
        if (ret_uuid)
                memcpy(ret_uuid, uuid, sizeof(uuid));
        return 0;
}

int gv_mdev_remove(const struct gv_sysfs *fs, const char *uuid_in, struct gv_error **err)
{
        struct gv_mdev_instance inst = {};
        int r = gv_mdev_instance_read(fs, uuid_in, &inst, err);
        if (r < 0)
                return r;
        gv_mdev_instance_done(&inst);

        /* bus/mdev/devices/<uuid>/remove: write 1 (K-MDEV) */
        _cleanup_free_ char *p = gv_sysfs_mdev_device_attr(fs, inst.uuid, "remove");
        r = gv_sysfs_write(p, "1", err);
        if (r == -EBUSY)
                return gv_error_wrap(err, r,
                                     "Removing mediated device %s failed: it is in use; stop the "
                                     "VM that uses it first",
                                     inst.uuid);
        if (r < 0)
                return gv_error_wrap(err, r, "Removing mediated device %s failed", inst.uuid);

        _cleanup_free_ char *dev = gv_sysfs_mdev_device_attr(fs, inst.uuid, NULL);
        if (gv_sysfs_exists(dev) > 0)
                return gv_error_set(err, EIO,
                                    "Removing mediated device %s did not take effect: '%s' still "
                                    "exists. Check the kernel log (dmesg).",
                                    inst.uuid, dev);
        return 0;
}
