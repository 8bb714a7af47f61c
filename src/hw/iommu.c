/* SPDX-License-Identifier: MIT */
/*
 * iommu.c — IOMMU group membership and the assignment verdict (iommu.h; passthrough.md §3).
 */
#include "hw/iommu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/pci.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/strv.h"

static const char *const iommu_role_table[_GV_IOMMU_ROLE_MAX] = {
        [GV_IOMMU_ROLE_ASSIGNED] = "assigned",
        [GV_IOMMU_ROLE_VFIO] = "vfio",
        [GV_IOMMU_ROLE_UNBOUND] = "unbound",
        [GV_IOMMU_ROLE_BRIDGE] = "bridge",
        [GV_IOMMU_ROLE_FOREIGN] = "foreign",
        [GV_IOMMU_ROLE_UNREADABLE] = "unreadable",
};
DEFINE_STRING_TABLE_LOOKUP(gv_iommu_role, enum gv_iommu_role, iommu_role_table);

struct gv_iommu_verdict *gv_iommu_verdict_free(struct gv_iommu_verdict *v)
{
        if (v) {
                for (size_t i = 0; i < v->n_members; i++)
                        free(v->members[i].driver);
                free(v->members);
                free(v->reason);
                free(v);
        }
        return NULL;
}

int gv_iommu_group_of(const struct gv_sysfs *fs, const char *bdf_in, uint32_t *ret,
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

        /* bus/pci/devices/<bdf>/iommu_group -> ../../../../kernel/iommu_groups/<N> */
        _cleanup_free_ char *link = gv_sysfs_pci_device_attr(fs, bdf, "iommu_group");
        _cleanup_free_ char *name = NULL;
        r = gv_sysfs_read_link(link, GV_SYSFS_OPTIONAL, &name, err);
        if (r < 0)
                return r;
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "%s has no IOMMU group ('%s' does not exist): the IOMMU is "
                                    "off. Turn on VT-d / AMD-Vi in the firmware and add "
                                    "'intel_iommu=on' (Intel) or 'amd_iommu=on' (AMD) to the "
                                    "kernel command line, then reboot.",
                                    bdf, link);
        uint32_t g;
        if (gv_parse_u32(name, 10, &g) < 0) {
                _cleanup_free_ char *e = gv_sysfs_escape(name);
                return gv_error_set(err, EBADMSG,
                                    "The link '%s' ends in '%s', which is not an IOMMU group "
                                    "number: the sysfs tree is damaged.",
                                    link, e);
        }
        *ret = g;
        return 0;
}

int gv_iommu_group_members(const struct gv_sysfs *fs, uint32_t group, char ***ret,
                           struct gv_error **err)
{
        /* kernel/iommu_groups/<N>/devices/<bdf> -> ../../../../devices/pci.../<bdf> */
        _cleanup_free_ char *dir = gv_sysfs_iommu_group_devices_dir(fs, group);
        _cleanup_strv_free_ char **names = NULL;
        int r = gv_sysfs_list(dir, NULL, 0, &names, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot read the members of IOMMU group %u", group);

        _cleanup_strv_free_ char **out = xnew0(char *, 1);
        STRV_FOREACH(n, names) {
                char bdf[GV_PCI_ADDR_STR_MAX];
                r = gv_pci_canonical_bdf(*n, bdf, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "IOMMU group %u lists an entry '%s' in '%s'",
                                             group, *n, dir);
                strv_extend(&out, bdf);
        }
        strv_sort(out);
        *ret = TAKE_PTR(out);
        return 0;
}

/* "0000:3c:00.0 (Ethernet controller, driver ixgbe)" */
static void describe(const struct gv_iommu_member *m, char ***l)
{
        strv_consume(l, xasprintf("%s (%s, driver %s)", m->bdf, gv_pci_class_name(m->class_code),
                                  m->driver ? m->driver : "none"));
}

int gv_iommu_check_assignment(const struct gv_sysfs *fs, const char *bdf_in,
                              struct gv_iommu_verdict **ret, struct gv_error **err)
{
        char bdf[GV_PCI_ADDR_STR_MAX];
        int r = gv_pci_canonical_bdf(bdf_in, bdf, err);
        if (r < 0)
                return r;

        uint32_t group;
        r = gv_iommu_group_of(fs, bdf, &group, err);
        if (r < 0)
                return r;

        _cleanup_strv_free_ char **assigned = NULL;
        r = gv_pci_companions(fs, bdf, &assigned, err);
        if (r < 0)
                return r;
        strv_extend(&assigned, bdf);

        _cleanup_strv_free_ char **members = NULL;
        r = gv_iommu_group_members(fs, group, &members, err);
        if (r < 0)
                return r;

        size_t n = strv_length(members);
        _cleanup_(gv_iommu_verdict_freep) struct gv_iommu_verdict *v =
                xnew0(struct gv_iommu_verdict, 1);
        v->group = group;
        v->members = xnew0(struct gv_iommu_member, n ? n : 1);
        v->n_members = n;
        v->viable = true;

        bool self_display = false;
        _cleanup_strv_free_ char **offenders = NULL;
        for (size_t i = 0; i < n; i++) {
                struct gv_iommu_member *m = &v->members[i];
                _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;

                memcpy(m->bdf, members[i], strlen(members[i]) + 1);
                r = gv_pci_device_read(fs, m->bdf, &d, &e);
                if (r < 0) {
                        m->role = GV_IOMMU_ROLE_UNREADABLE;
                        v->viable = false;
                        char *s = xasprintf("%s (its sysfs files cannot be read: %s)", m->bdf,
                                            gv_error_msg(e, r));
                        strv_consume(&offenders, s);
                        continue;
                }
                m->class_code = d->class_code;
                m->driver = d->driver ? xstrdup(d->driver) : NULL;

                if (strv_contains(assigned, m->bdf)) {
                        m->role = GV_IOMMU_ROLE_ASSIGNED;
                        if (strcmp(m->bdf, bdf) == 0)
                                self_display = (d->class_code >> 16) == GV_PCI_CLASS_DISPLAY;
                } else if ((d->class_code >> 8) == GV_PCI_CLASS_BRIDGE_PCI &&
                           (!d->driver || strcmp(d->driver, "pcieport") == 0))
                        m->role = GV_IOMMU_ROLE_BRIDGE;
                else if (!d->driver)
                        m->role = GV_IOMMU_ROLE_UNBOUND;
                else if (strcmp(d->driver, "vfio-pci") == 0)
                        m->role = GV_IOMMU_ROLE_VFIO;
                else {
                        m->role = GV_IOMMU_ROLE_FOREIGN;
                        v->viable = false;
                        describe(m, &offenders);
                }
        }

        if (!strv_contains(members, bdf))
                return gv_error_set(err, EBADMSG,
                                    "%s links to IOMMU group %u, but the group does not list it: "
                                    "the sysfs tree is inconsistent.",
                                    bdf, group);

        if (!v->viable) {
                size_t k = strv_length(offenders);
                _cleanup_free_ char *list = strv_join(offenders, " and ");
                v->reason = xasprintf("IOMMU group %u also holds %s, which %s not part of this "
                                      "%s (%s): pass-through would give the VM %s too; move the "
                                      "%s to another slot or enable ACS.",
                                      group, list, k > 1 ? "are" : "is",
                                      self_display ? "GPU" : "device", bdf,
                                      k > 1 ? "those devices" : "that device",
                                      self_display ? "GPU" : "device");
        }
        *ret = TAKE_PTR(v);
        return 0;
}
