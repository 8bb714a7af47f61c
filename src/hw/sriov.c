/* SPDX-License-Identifier: MIT */
/*
 * sriov.c — reading and changing the VF count of a PF (sriov.h; passthrough.md §1).
 */
#include "hw/sriov.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/pci.h"
#include "util/alloc.h"
#include "util/parse.h"
#include "util/strv.h"

int gv_sriov_read(const struct gv_sysfs *fs, const char *pf_in, struct gv_sriov_info *ret,
                  struct gv_error **err)
{
        char pf[GV_PCI_ADDR_STR_MAX];
        struct gv_sriov_info info;
        int r = gv_pci_canonical_bdf(pf_in, pf, err);
        if (r < 0)
                return r;

        /* bus/pci/devices/<pf>/sriov_totalvfs */
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, pf, "sriov_totalvfs");
        r = gv_sysfs_read_u32(p, GV_SYSFS_OPTIONAL, &info.total_vfs, err);
        if (r < 0)
                return r;
        if (r == 0) {
                _cleanup_free_ char *dir = gv_sysfs_pci_device_dir(fs, pf);
                if (gv_sysfs_exists(dir) <= 0)
                        return gv_error_set(err, ENODEV,
                                            "There is no PCI function %s ('%s' does not exist).",
                                            pf, dir);
                return gv_error_set(err, EOPNOTSUPP,
                                    "%s is not an SR-IOV physical function (it has no "
                                    "sriov_totalvfs).",
                                    pf);
        }
        free(p);
        p = gv_sysfs_pci_device_attr(fs, pf, "sriov_numvfs");
        r = gv_sysfs_read_u32(p, 0, &info.num_vfs, err);
        if (r < 0)
                return r;
        *ret = info;
        return 0;
}

int gv_sriov_list_vfs(const struct gv_sysfs *fs, const char *pf_in, char ***ret,
                      struct gv_error **err)
{
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
        int r = gv_pci_device_read(fs, pf_in, &d, err);
        if (r < 0)
                return r;
        if (!d->sriov_capable)
                return gv_error_set(err, EOPNOTSUPP,
                                    "%s is not an SR-IOV physical function (it has no "
                                    "sriov_totalvfs).",
                                    d->bdf);
        *ret = d->vfs ? TAKE_PTR(d->vfs) : xnew0(char *, 1);
        return 0;
}

int gv_sriov_physfn(const struct gv_sysfs *fs, const char *vf_in, char **ret,
                    struct gv_error **err)
{
        char vf[GV_PCI_ADDR_STR_MAX];
        int r = gv_pci_canonical_bdf(vf_in, vf, err);
        if (r < 0)
                return r;
        /* bus/pci/devices/<vf>/physfn -> ../0000:41:00.0 */
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, vf, "physfn");
        return gv_sysfs_read_link(p, GV_SYSFS_OPTIONAL, ret, err);
}

static int write_numvfs(const struct gv_sysfs *fs, const char *pf, uint32_t n,
                        struct gv_error **err)
{
        char buf[DECIMAL_STR_MAX(uint32_t)];
        snprintf(buf, sizeof(buf), "%u", n);
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, pf, "sriov_numvfs");
        return gv_sysfs_write(p, buf, err);
}

/* The count and the links agree with n. */
static int check_vfs(const struct gv_sysfs *fs, const char *pf, uint32_t n,
                     struct gv_error **err)
{
        struct gv_sriov_info info;
        _cleanup_strv_free_ char **vfs = NULL;
        int r = gv_sriov_read(fs, pf, &info, err);
        if (r < 0)
                return r;
        r = gv_sriov_list_vfs(fs, pf, &vfs, err);
        if (r < 0)
                return r;
        if (info.num_vfs != n || strv_length(vfs) != n)
                return gv_error_set(err, EIO,
                                    "Setting %s to %u VFs did not take effect: sriov_numvfs reads "
                                    "%u and %zu VF links (virtfnN) exist. Check the kernel log "
                                    "(dmesg) and that the PF driver supports SR-IOV.",
                                    pf, n, info.num_vfs, strv_length(vfs));
        return 0;
}

int gv_sriov_set_numvfs(const struct gv_sysfs *fs, const char *pf_in, uint32_t n,
                        struct gv_error **err)
{
        char pf[GV_PCI_ADDR_STR_MAX];
        struct gv_sriov_info info;
        int r = gv_pci_canonical_bdf(pf_in, pf, err);
        if (r < 0)
                return r;
        r = gv_sriov_read(fs, pf, &info, err);
        if (r < 0)
                return r;
        if (n > info.total_vfs)
                return gv_error_set(err, EINVAL,
                                    "%s supports at most %u VFs (sriov_totalvfs), not %u: ask "
                                    "for %u or fewer.",
                                    pf, info.total_vfs, n, info.total_vfs);
        if (info.num_vfs == n)
                return check_vfs(fs, pf, n, err);

        /* K-PCI: N while neither 0 nor N is an error, so go through 0. */
        if (info.num_vfs != 0 && n != 0) {
                r = write_numvfs(fs, pf, 0, err);
                if (r < 0)
                        return gv_error_wrap(err, r,
                                             "Changing %s from %u to %u VFs failed at step "
                                             "'disable VFs' (nothing changed)",
                                             pf, info.num_vfs, n);
        }

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = write_numvfs(fs, pf, n, &e);
        if (r >= 0)
                r = check_vfs(fs, pf, n, &e);
        if (r >= 0)
                return 0;

        /* Undo: back to the previous count (through 0). */
        _cleanup_(gv_error_freep) struct gv_error *ue = NULL;
        int q = write_numvfs(fs, pf, 0, &ue);
        if (q >= 0 && info.num_vfs != 0)
                q = write_numvfs(fs, pf, info.num_vfs, &ue);
        if (q >= 0)
                q = check_vfs(fs, pf, info.num_vfs, &ue);
        if (q < 0)
                return gv_error_set(err, r,
                                    "Setting %s to %u VFs failed: %s Restoring %u VFs failed too "
                                    "(%s); check sriov_numvfs by hand.",
                                    pf, n, gv_error_msg(e, r), info.num_vfs, gv_error_msg(ue, q));
        return gv_error_set(err, r, "Setting %s to %u VFs failed: %s It is back at %u VFs.", pf,
                            n, gv_error_msg(e, r), info.num_vfs);
}
