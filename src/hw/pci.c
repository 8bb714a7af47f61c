/* SPDX-License-Identifier: MIT */
/*
 * pci.c — reading PCI functions (pci.h). File semantics from passthrough.md §1 (K-PCI):
 * vendor/device/subsystem_* print "0x%04x", class prints "0x%06x", driver and iommu_group
 * are links, driver_override reads "(null)" when unset, reset_method lists methods separated by
 * spaces (§4, K-RM), sriov_totalvfs/sriov_numvfs and the virtfnN/physfn links (§1).
 */
#include "hw/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/parse.h"
#include "util/strv.h"

struct gv_pci_device *gv_pci_device_free(struct gv_pci_device *d)
{
        if (d) {
                free(d->driver);
                free(d->driver_override);
                strv_free(d->reset_methods);
                strv_free(d->vfs);
                free(d->physfn);
                free(d);
        }
        return NULL;
}

int gv_pci_canonical_bdf(const char *s, char ret[GV_PCI_ADDR_STR_MAX], struct gv_error **err)
{
        struct gv_pci_addr a;
        if (gv_parse_pci_addr(s, &a) < 0) {
                _cleanup_free_ char *e = gv_sysfs_escape(s ? s : "");
                return gv_error_set(err, EINVAL,
                                    "'%s' is not a PCI address: write it as 'dddd:bb:ss.f' (for "
                                    "example '0000:3b:00.0').",
                                    e);
        }
        gv_pci_addr_format(&a, ret);
        return 0;
}

static const struct {
        uint32_t code; /* sub: base << 8 | subclass; else the base class alone */
        bool sub;
        const char *name;
} class_names[] = {
        /* PCI Code and ID Assignment Specification class codes */
        { 0x0100, true, "SCSI storage controller" },
        { 0x0106, true, "SATA controller" },
        { 0x0108, true, "Non-Volatile memory controller" },
        { 0x0200, true, "Ethernet controller" },
        { 0x0207, true, "Infiniband controller" },
        { 0x0300, true, "VGA compatible controller" },
        { 0x0301, true, "XGA compatible controller" },
        { 0x0302, true, "3D controller" },
        { 0x0401, true, "Multimedia audio controller" },
        { 0x0403, true, "Audio device" },
        { 0x0600, true, "Host bridge" },
        { 0x0601, true, "ISA bridge" },
        { 0x0604, true, "PCI bridge" },
        { 0x0c03, true, "USB controller" },
        { 0x0c05, true, "SMBus" },
        { 0x00, false, "Unclassified device" },
        { 0x01, false, "Mass storage controller" },
        { 0x02, false, "Network controller" },
        { 0x03, false, "Display controller" },
        { 0x04, false, "Multimedia controller" },
        { 0x05, false, "Memory controller" },
        { 0x06, false, "Bridge" },
        { 0x07, false, "Communication controller" },
        { 0x08, false, "Generic system peripheral" },
        { 0x0c, false, "Serial bus controller" },
        { 0x12, false, "Processing accelerators" },
};

const char *gv_pci_class_name(uint32_t class_code)
{
        uint32_t sub = (class_code >> 8) & 0xffff, base = (class_code >> 16) & 0xff;
        for (size_t i = 0; i < ELEMENTSOF(class_names); i++)
                if (class_names[i].sub && class_names[i].code == sub)
                        return class_names[i].name;
        for (size_t i = 0; i < ELEMENTSOF(class_names); i++)
                if (!class_names[i].sub && class_names[i].code == base)
                        return class_names[i].name;
        return "Unknown class";
}

static int read_id(const struct gv_sysfs *fs, const char *bdf, const char *attr, unsigned flags,
                   uint16_t *ret, struct gv_error **err)
{
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, bdf, attr);
        uint32_t v;
        int r = gv_sysfs_read_hex(p, 4, flags, &v, err);
        if (r > 0)
                *ret = (uint16_t)v;
        return r;
}

/* virtfnN links ordered by N (a string sort would put virtfn10 before virtfn2). */
static int read_vfs(const struct gv_sysfs *fs, const char *bdf, char ***ret,
                    struct gv_error **err)
{
        _cleanup_free_ char *dir = gv_sysfs_pci_device_dir(fs, bdf);
        _cleanup_strv_free_ char **names = NULL;
        int r = gv_sysfs_list(dir, "virtfn", 0, &names, err);
        if (r < 0)
                return r;

        size_t n = strv_length(names);
        /* Filled by index, so it has holes until the end: freed slot by slot on a failure (a
         * strv free stops at the first hole; make test-asan caught the leak when a VF link went
         * away under the sampler's read). */
        char **vfs = xnew0(char *, n + 1);
        for (size_t i = 0; i < n && r >= 0; i++) {
                uint32_t idx;
                if (gv_parse_u32(names[i] + strlen("virtfn"), 10, &idx) < 0 || idx >= n) {
                        r = gv_error_set(err, EBADMSG,
                                         "'%s/%s' is not a virtfnN link numbered 0 to %zu: the "
                                         "SR-IOV links of %s are inconsistent.",
                                         dir, names[i], n - 1, bdf);
                        break;
                }
                if (vfs[idx]) {
                        r = gv_error_set(err, EBADMSG, "'%s' lists VF %u twice.", dir, idx);
                        break;
                }
                _cleanup_free_ char *link = gv_sysfs_pci_device_attr(fs, bdf, names[i]);
                r = gv_sysfs_read_link(link, 0, &vfs[idx], err);
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(vfs[i]);
                free(vfs);
                return r;
        }
        *ret = vfs;
        return 0;
}

int gv_pci_device_read(const struct gv_sysfs *fs, const char *bdf_in, struct gv_pci_device **ret,
                       struct gv_error **err)
{
        char bdf[GV_PCI_ADDR_STR_MAX];
        int r = gv_pci_canonical_bdf(bdf_in, bdf, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *dir = gv_sysfs_pci_device_dir(fs, bdf);
        r = gv_sysfs_exists(dir);
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "There is no PCI function %s ('%s' does not exist): check the "
                                    "address with 'lspci -D'.",
                                    bdf, dir);
        if (r < 0)
                return gv_error_set(err, r, "Cannot access '%s': %s.", dir, strerror(-r));

        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = xnew0(struct gv_pci_device, 1);
        memcpy(d->bdf, bdf, sizeof(bdf));
        (void)gv_parse_pci_addr(bdf, &d->addr);
        d->numa_node = -1;
        d->iommu_group = -1;

        r = read_id(fs, bdf, "vendor", 0, &d->vendor, err);
        if (r < 0)
                return r;
        r = read_id(fs, bdf, "device", 0, &d->device, err);
        if (r < 0)
                return r;
        r = read_id(fs, bdf, "subsystem_vendor", GV_SYSFS_OPTIONAL, &d->subsystem_vendor, err);
        if (r < 0)
                return r;
        r = read_id(fs, bdf, "subsystem_device", GV_SYSFS_OPTIONAL, &d->subsystem_device, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, bdf, "class");
        r = gv_sysfs_read_hex(p, 6, 0, &d->class_code, err);
        if (r < 0)
                return r;

        /* bus/pci/devices/<bdf>/driver -> ../../../bus/pci/drivers/<name>; absent: unbound */
        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "driver");
        r = gv_sysfs_read_link(p, GV_SYSFS_OPTIONAL, &d->driver, err);
        if (r < 0)
                return r;

        /* "(null)" when unset (K-DO); absent on kernels before 3.16 */
        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "driver_override");
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &d->driver_override, err);
        if (r < 0)
                return r;
        if (d->driver_override &&
            (d->driver_override[0] == 0 || strcmp(d->driver_override, "(null)") == 0)) {
                free(d->driver_override);
                d->driver_override = NULL;
        }

        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "numa_node");
        r = gv_sysfs_read_int(p, GV_SYSFS_OPTIONAL, &d->numa_node, err);
        if (r < 0)
                return r;
        if (d->numa_node < -1) {
                return gv_error_set(err, EBADMSG,
                                    "'%s' holds %d; a NUMA node is -1 (none) or a node number.",
                                    p, d->numa_node);
        }

        /* bus/pci/devices/<bdf>/iommu_group -> ../../../../kernel/iommu_groups/<N> */
        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "iommu_group");
        _cleanup_free_ char *group = NULL;
        r = gv_sysfs_read_link(p, GV_SYSFS_OPTIONAL, &group, err);
        if (r < 0)
                return r;
        if (group) {
                uint32_t g;
                if (gv_parse_u32(group, 10, &g) < 0) {
                        _cleanup_free_ char *e = gv_sysfs_escape(group);
                        return gv_error_set(err, EBADMSG,
                                            "The link '%s' ends in '%s', which is not an IOMMU "
                                            "group number.",
                                            p, e);
                }
                d->iommu_group = g;
        }

        /* "flr bus\n": space-separated, in the order the kernel tries them (K-RM) */
        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "reset_method");
        _cleanup_free_ char *rm = NULL;
        r = gv_sysfs_read(p, GV_SYSFS_OPTIONAL, &rm, err);
        if (r < 0)
                return r;
        if (rm) {
                d->reset_methods_known = true;
                d->reset_methods = strv_split(rm, " ");
        }

        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "sriov_totalvfs");
        r = gv_sysfs_read_u32(p, GV_SYSFS_OPTIONAL, &d->sriov_total_vfs, err);
        if (r < 0)
                return r;
        if (r > 0) {
                d->sriov_capable = true;
                free(p);
                p = gv_sysfs_pci_device_attr(fs, bdf, "sriov_numvfs");
                r = gv_sysfs_read_u32(p, 0, &d->sriov_num_vfs, err);
                if (r < 0)
                        return r;
                r = read_vfs(fs, bdf, &d->vfs, err);
                if (r < 0)
                        return r;
        }

        /* a VF: physfn -> ../0000:41:00.0 */
        free(p);
        p = gv_sysfs_pci_device_attr(fs, bdf, "physfn");
        r = gv_sysfs_read_link(p, GV_SYSFS_OPTIONAL, &d->physfn, err);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

struct gv_pci_inventory *gv_pci_inventory_free(struct gv_pci_inventory *inv)
{
        if (inv) {
                for (size_t i = 0; i < inv->n_devices; i++)
                        gv_pci_device_free(inv->devices[i]);
                free(inv->devices);
                for (size_t i = 0; i < inv->n_problems; i++) {
                        free(inv->problems[i].bdf);
                        free(inv->problems[i].msg);
                }
                free(inv->problems);
                free(inv);
        }
        return NULL;
}

static int cmp_device(const void *a, const void *b)
{
        const struct gv_pci_device *x = *(const struct gv_pci_device *const *)a;
        const struct gv_pci_device *y = *(const struct gv_pci_device *const *)b;
        return gv_pci_addr_compare(&x->addr, &y->addr);
}

int gv_pci_enumerate(const struct gv_sysfs *fs, unsigned flags, struct gv_pci_inventory **ret,
                     struct gv_error **err)
{
        _cleanup_free_ char *dir = gv_sysfs_pci_devices_dir(fs);
        _cleanup_strv_free_ char **names = NULL;
        int r = gv_sysfs_list(dir, NULL, 0, &names, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot list the PCI functions");

        _cleanup_(gv_pci_inventory_freep) struct gv_pci_inventory *inv =
                xnew0(struct gv_pci_inventory, 1);
        size_t n = strv_length(names);
        inv->devices = xnew0(struct gv_pci_device *, n ? n : 1);
        inv->problems = xnew0(struct gv_pci_problem, n ? n : 1);

        STRV_FOREACH(name, names) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                struct gv_pci_device *d = NULL;
                if (flags & GV_PCI_ENUM_SKIP_VFS) {
                        /* <root>/sys/bus/pci/devices/<vf>/physfn -> ../<pf> */
                        _cleanup_free_ char *physfn = gv_sysfs_pci_device_attr(fs, *name, "physfn");
                        if (gv_sysfs_exists(physfn) > 0)
                                continue;
                }
                r = gv_pci_device_read(fs, *name, &d, &e);
                if (r < 0) {
                        struct gv_pci_problem *pb = &inv->problems[inv->n_problems++];
                        pb->bdf = gv_sysfs_escape(*name);
                        pb->code = -r;
                        pb->msg = xasprintf("PCI function %s was skipped: %s", pb->bdf,
                                            gv_error_msg(e, r));
                        continue;
                }
                inv->devices[inv->n_devices++] = d;
        }
        qsort(inv->devices, inv->n_devices, sizeof(*inv->devices), cmp_device);
        *ret = TAKE_PTR(inv);
        return 0;
}

const struct gv_pci_device *gv_pci_inventory_find(const struct gv_pci_inventory *inv,
                                                  const char *bdf)
{
        struct gv_pci_addr a;
        if (gv_parse_pci_addr(bdf, &a) < 0)
                return NULL;
        for (size_t i = 0; i < inv->n_devices; i++)
                if (gv_pci_addr_equal(&inv->devices[i]->addr, &a))
                        return inv->devices[i];
        return NULL;
}

bool gv_pci_device_is_nvidia_gpu(const struct gv_pci_device *d)
{
        return d->vendor == GV_PCI_VENDOR_NVIDIA && (d->class_code >> 16) == GV_PCI_CLASS_DISPLAY;
}

void gv_pci_inventory_nvidia_gpus(const struct gv_pci_inventory *inv,
                                  const struct gv_pci_device ***ret, size_t *ret_n)
{
        const struct gv_pci_device **l = NULL;
        size_t n = 0;
        for (size_t i = 0; i < inv->n_devices; i++)
                if (gv_pci_device_is_nvidia_gpu(inv->devices[i])) {
                        l = xreallocarray(l, n + 1, sizeof(*l));
                        l[n++] = inv->devices[i];
                }
        *ret = l;
        *ret_n = n;
}

int gv_pci_companions(const struct gv_sysfs *fs, const char *bdf_in, char ***ret,
                      struct gv_error **err)
{
        char bdf[GV_PCI_ADDR_STR_MAX];
        struct gv_pci_addr self;
        int r = gv_pci_canonical_bdf(bdf_in, bdf, err);
        if (r < 0)
                return r;
        (void)gv_parse_pci_addr(bdf, &self);

        _cleanup_strv_free_ char **out = xnew0(char *, 1);

        /* A VF is never a multifunction companion, nor has any. */
        _cleanup_free_ char *physfn = gv_sysfs_pci_device_attr(fs, bdf, "physfn");
        r = gv_sysfs_exists(physfn);
        if (r < 0)
                return gv_error_set(err, r, "Cannot access '%s': %s.", physfn, strerror(-r));
        if (r > 0) {
                *ret = TAKE_PTR(out);
                return 0;
        }

        _cleanup_free_ char *dir = gv_sysfs_pci_devices_dir(fs);
        _cleanup_strv_free_ char **names = NULL;
        r = gv_sysfs_list(dir, NULL, 0, &names, err);
        if (r < 0)
                return r;
        STRV_FOREACH(name, names) {
                struct gv_pci_addr a;
                if (gv_parse_pci_addr(*name, &a) < 0)
                        continue;
                if (a.domain != self.domain || a.bus != self.bus || a.slot != self.slot ||
                    a.function == self.function)
                        continue;
                _cleanup_free_ char *pf = gv_sysfs_pci_device_attr(fs, *name, "physfn");
                r = gv_sysfs_exists(pf);
                if (r < 0)
                        return gv_error_set(err, r, "Cannot access '%s': %s.", pf, strerror(-r));
                if (r > 0)
                        continue;
                char c[GV_PCI_ADDR_STR_MAX];
                strv_extend(&out, gv_pci_addr_format(&a, c));
        }
        strv_sort(out);
        *ret = TAKE_PTR(out);
        return 0;
}
