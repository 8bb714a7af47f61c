/* SPDX-License-Identifier: MIT */
/*
 * nvidia-vfio.c — creatable_vgpu_types parser, current_vgpu_type, interface detection
 * (nvidia-vfio.h; vgpu.md §1, §4).
 */
#include "hw/nvidia-vfio.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/mdev.h"
#include "hw/pci.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/parse.h"
#include "util/strv.h"

static const char *const vgpu_interface_table[_GV_VGPU_INTERFACE_MAX] = {
        [GV_VGPU_INTERFACE_NONE] = "none",
        [GV_VGPU_INTERFACE_MDEV] = "mdev",
        [GV_VGPU_INTERFACE_VENDOR_VFIO] = "vendor-vfio",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vgpu_interface, enum gv_vgpu_interface, vgpu_interface_table);

struct gv_nvidia_vgpu_type_list *gv_nvidia_vgpu_type_list_free(struct gv_nvidia_vgpu_type_list *l)
{
        if (l) {
                for (size_t i = 0; i < l->n; i++)
                        free(l->types[i].name);
                free(l->types);
                free(l);
        }
        return NULL;
}

/* "ID", one or more spaces, ": vGPU Name" */
static bool is_header(const char *s, size_t n)
{
        size_t i = 0;
        if (n < 2 || memcmp(s, "ID", 2) != 0)
                return false;
        i = 2;
        if (i >= n || s[i] != ' ')
                return false;
        while (i < n && s[i] == ' ')
                i++;
        static const char rest[] = ": vGPU Name";
        return n - i == strlen(rest) && memcmp(s + i, rest, strlen(rest)) == 0;
}

/* "<digits><one or more spaces>: <name>"; name printable, not starting or ending in a space. */
static int parse_entry(const char *s, size_t n, uint32_t *ret_id, char **ret_name)
{
        size_t i = 0;
        while (i < n && isdigit((unsigned char)s[i]))
                i++;
        if (i == 0 || i > 10)
                return -EINVAL;
        char num[11];
        memcpy(num, s, i);
        num[i] = 0;
        uint32_t id;
        if (gv_parse_u32(num, 10, &id) < 0 || id == 0)
                return -EINVAL;
        if (i >= n || s[i] != ' ')
                return -EINVAL;
        while (i < n && s[i] == ' ')
                i++;
        if (n - i < 3 || s[i] != ':' || s[i + 1] != ' ')
                return -EINVAL;
        i += 2;
        const char *name = s + i;
        size_t len = n - i;
        if (len == 0 || name[0] == ' ' || name[len - 1] == ' ')
                return -EINVAL;
        for (size_t k = 0; k < len; k++)
                if (!isprint((unsigned char)name[k]))
                        return -EINVAL;
        *ret_id = id;
        *ret_name = xstrndup(name, len);
        return 0;
}

int gv_nvidia_parse_creatable_vgpu_types(const char *text, const char *origin,
                                         struct gv_nvidia_vgpu_type_list **ret,
                                         struct gv_error **err)
{
        _cleanup_(gv_nvidia_vgpu_type_list_freep) struct gv_nvidia_vgpu_type_list *l =
                xnew0(struct gv_nvidia_vgpu_type_list, 1);
        const char *p = text;
        unsigned line = 0;

        if (!origin)
                origin = "creatable_vgpu_types";
        if (!*text)
                return gv_error_set(err, EBADMSG,
                                    "'%s' is empty; it should start with the header 'ID    : "
                                    "vGPU Name': the file is truncated.",
                                    origin);

        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);
                line++;

                if (line == 1) {
                        if (!is_header(p, n)) {
                                _cleanup_free_ char *raw = xstrndup(p, n);
                                _cleanup_free_ char *e = gv_sysfs_escape(raw);
                                return gv_error_set(err, EBADMSG,
                                                    "'%s' line 1 is '%s', not the header 'ID    "
                                                    ": vGPU Name': the file is corrupt or not a "
                                                    "creatable_vgpu_types file.",
                                                    origin, e);
                        }
                } else {
                        uint32_t id;
                        char *name;
                        if (parse_entry(p, n, &id, &name) < 0) {
                                _cleanup_free_ char *raw = xstrndup(p, n);
                                _cleanup_free_ char *e = gv_sysfs_escape(raw);
                                return gv_error_set(err, EBADMSG,
                                                    "'%s' line %u is '%s', not '<type ID> : "
                                                    "<vGPU name>' (for example '1145  : NVIDIA "
                                                    "L40S-1B'): the file is corrupt or "
                                                    "truncated.",
                                                    origin, line, e);
                        }
                        for (size_t k = 0; k < l->n; k++)
                                if (l->types[k].id == id) {
                                        free(name);
                                        return gv_error_set(err, EBADMSG,
                                                            "'%s' line %u lists type ID %u a "
                                                            "second time.",
                                                            origin, line, id);
                                }
                        if (l->n >= GV_NVIDIA_VGPU_TYPES_MAX) {
                                free(name);
                                return gv_error_set(err, E2BIG,
                                                    "'%s' lists more than %u types: the file is "
                                                    "not a creatable_vgpu_types file.",
                                                    origin, GV_NVIDIA_VGPU_TYPES_MAX);
                        }
                        l->types = xreallocarray(l->types, l->n + 1, sizeof(*l->types));
                        l->types[l->n++] = (struct gv_nvidia_vgpu_type){ .id = id, .name = name };
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int gv_nvidia_read_creatable_vgpu_types(const struct gv_sysfs *fs, const char *vf_in,
                                        struct gv_nvidia_vgpu_type_list **ret,
                                        struct gv_error **err)
{
        char vf[GV_PCI_ADDR_STR_MAX];
        int r = gv_pci_canonical_bdf(vf_in, vf, err);
        if (r < 0)
                return r;
        /* bus/pci/devices/<vf>/nvidia/creatable_vgpu_types */
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, vf, "nvidia/creatable_vgpu_types");
        _cleanup_free_ char *text = NULL;
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &text, err);
        if (r < 0)
                return r;
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "%s has no vendor-VFIO vGPU files ('%s' does not exist): it is "
                                    "not an SR-IOV VF of a GPU with the NVIDIA vGPU manager "
                                    "loaded, or the GPU uses mdev.",
                                    vf, p);
        return gv_nvidia_parse_creatable_vgpu_types(text, p, ret, err);
}

static char *list_types(const struct gv_nvidia_vgpu_type_list *l)
{
        _cleanup_strv_free_ char **names = NULL;
        for (size_t i = 0; i < l->n; i++)
                strv_consume(&names, xasprintf("%u (%s)", l->types[i].id, l->types[i].name));
        return l->n ? strv_join(names, ", ") : xstrdup("none");
}

int gv_nvidia_vgpu_type_find(const struct gv_nvidia_vgpu_type_list *l, const char *vf,
                             const char *wanted, const struct gv_nvidia_vgpu_type **ret,
                             struct gv_error **err)
{
        uint32_t id;
        bool numeric = gv_parse_u32(wanted, 10, &id) >= 0;
        for (size_t i = 0; i < l->n; i++)
                if ((numeric && l->types[i].id == id) ||
                    (!numeric && gv_vgpu_name_matches(l->types[i].name, wanted))) {
                        *ret = &l->types[i];
                        return 0;
                }
        _cleanup_free_ char *list = list_types(l);
        _cleanup_free_ char *e = gv_sysfs_escape(wanted);
        return gv_error_set(err, ENOENT, "%s cannot create vGPU type '%s' now; creatable: %s.", vf,
                            e, list);
}

int gv_nvidia_current_vgpu_type(const struct gv_sysfs *fs, const char *vf_in, uint32_t *ret,
                                struct gv_error **err)
{
        char vf[GV_PCI_ADDR_STR_MAX];
        int r = gv_pci_canonical_bdf(vf_in, vf, err);
        if (r < 0)
                return r;
        /* bus/pci/devices/<vf>/nvidia/current_vgpu_type: "0" or the type ID */
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, vf, "nvidia/current_vgpu_type");
        uint32_t v;
        r = gv_sysfs_read_u32(p, GV_SYSFS_OPTIONAL, &v, err);
        if (r < 0)
                return r;
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "%s has no vendor-VFIO vGPU files ('%s' does not exist): it is "
                                    "not an SR-IOV VF of a GPU with the NVIDIA vGPU manager "
                                    "loaded, or the GPU uses mdev.",
                                    vf, p);
        *ret = v;
        return 0;
}

static int write_current(const struct gv_sysfs *fs, const char *vf, uint32_t id,
                         struct gv_error **err)
{
        char buf[DECIMAL_STR_MAX(uint32_t)];
        snprintf(buf, sizeof(buf), "%u", id);
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, vf, "nvidia/current_vgpu_type");
        return gv_sysfs_write(p, buf, err);
}

int gv_nvidia_set_vgpu_type(const struct gv_sysfs *fs, const char *vf_in, uint32_t type_id,
                            struct gv_error **err)
{
        char vf[GV_PCI_ADDR_STR_MAX];
        uint32_t cur;
        int r = gv_pci_canonical_bdf(vf_in, vf, err);
        if (r < 0)
                return r;
        if (type_id == 0)
                return gv_error_set(err, EINVAL,
                                    "vGPU type ID 0 means 'no type': clear the type of %s instead.",
                                    vf);

        r = gv_nvidia_current_vgpu_type(fs, vf, &cur, err);
        if (r < 0)
                return r;
        if (cur == type_id)
                return 0;
        if (cur != 0)
                return gv_error_set(err, EBUSY,
                                    "%s already holds vGPU type %u: a VF holds one vGPU; clear its "
                                    "type first (or pick another VF).",
                                    vf, cur);

        _cleanup_(gv_nvidia_vgpu_type_list_freep) struct gv_nvidia_vgpu_type_list *l = NULL;
        r = gv_nvidia_read_creatable_vgpu_types(fs, vf, &l, err);
        if (r < 0)
                return r;
        if (l->n == 0)
                return gv_error_set(err, ENOSPC,
                                    "%s cannot create any vGPU type now (creatable_vgpu_types "
                                    "lists none): the GPU is full, or holds vGPUs of another "
                                    "type. Pick another GPU.",
                                    vf);
        bool found = false;
        for (size_t i = 0; i < l->n; i++)
                found = found || l->types[i].id == type_id;
        if (!found) {
                _cleanup_free_ char *list = list_types(l);
                return gv_error_set(err, EINVAL,
                                    "%s cannot create vGPU type %u now; creatable: %s.", vf,
                                    type_id, list);
        }

        r = write_current(fs, vf, type_id, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Selecting vGPU type %u on %s failed", type_id, vf);

        r = gv_nvidia_current_vgpu_type(fs, vf, &cur, err);
        if (r < 0)
                return r;
        if (cur != type_id) {
                /* Leave nothing half-done: a different type that appeared is released. */
                if (cur != 0)
                        (void)write_current(fs, vf, 0, NULL);
                return gv_error_set(err, EIO,
                                    "Selecting vGPU type %u on %s did not take effect: "
                                    "current_vgpu_type reads %u. Check the kernel log (dmesg) and "
                                    "the vGPU manager (nvidia-vgpu-mgr).",
                                    type_id, vf, cur);
        }
        return 0;
}

int gv_nvidia_clear_vgpu_type(const struct gv_sysfs *fs, const char *vf_in,
                              struct gv_error **err)
{
        char vf[GV_PCI_ADDR_STR_MAX];
        uint32_t cur;
        int r = gv_pci_canonical_bdf(vf_in, vf, err);
        if (r < 0)
                return r;
        r = gv_nvidia_current_vgpu_type(fs, vf, &cur, err);
        if (r < 0)
                return r;
        if (cur == 0)
                return 0;

        r = write_current(fs, vf, 0, err);
        if (r == -EBUSY)
                return gv_error_wrap(err, r,
                                     "Releasing vGPU type %u on %s failed: the VF is still open; "
                                     "stop the VM that uses it first",
                                     cur, vf);
        if (r < 0)
                return gv_error_wrap(err, r, "Releasing vGPU type %u on %s failed", cur, vf);

        uint32_t after;
        r = gv_nvidia_current_vgpu_type(fs, vf, &after, err);
        if (r < 0)
                return r;
        if (after != 0)
                return gv_error_set(err, EIO,
                                    "Releasing the vGPU type of %s did not take effect: "
                                    "current_vgpu_type still reads %u.",
                                    vf, after);
        return 0;
}

/* 1: vendor-VFIO, 2: mdev, 0: neither, for one function. */
static int function_interface(const struct gv_sysfs *fs, const char *bdf, struct gv_error **err)
{
        _cleanup_free_ char *v = gv_sysfs_pci_device_attr(fs, bdf, "nvidia/creatable_vgpu_types");
        int r = gv_sysfs_exists(v);
        if (r < 0)
                return gv_error_set(err, r, "Cannot access '%s': %s.", v, strerror(-r));
        if (r > 0)
                return 1;
        _cleanup_free_ char *m = gv_sysfs_pci_device_attr(fs, bdf, "mdev_supported_types");
        r = gv_sysfs_exists(m);
        if (r < 0)
                return gv_error_set(err, r, "Cannot access '%s': %s.", m, strerror(-r));
        return r > 0 ? 2 : 0;
}

int gv_nvidia_vgpu_interface(const struct gv_sysfs *fs, const char *bdf,
                             enum gv_vgpu_interface *ret, struct gv_error **err)
{
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
        int r = gv_pci_device_read(fs, bdf, &d, err);
        if (r < 0)
                return r;
        return gv_nvidia_vgpu_interface_of(fs, d->bdf, d->vfs, ret, err);
}

int gv_nvidia_vgpu_interface_of(const struct gv_sysfs *fs, const char *bdf, char *const *vfs,
                                enum gv_vgpu_interface *ret, struct gv_error **err)
{
        int r = function_interface(fs, bdf, err);
        STRV_FOREACH(vf, vfs) {
                if (r != 0)
                        break;
                r = function_interface(fs, *vf, err);
        }
        if (r < 0)
                return r;
        *ret = r == 1 ? GV_VGPU_INTERFACE_VENDOR_VFIO
             : r == 2 ? GV_VGPU_INTERFACE_MDEV
                      : GV_VGPU_INTERFACE_NONE;
        return 0;
}
