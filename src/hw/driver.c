/* SPDX-License-Identifier: MIT */
/*
 * driver.c — whole-group vfio-pci binding through driver_override (driver.h). The sequence is
 * passthrough.md §2 (K-DO): override, unbind, drivers_probe; and back: clear override, unbind,
 * drivers_probe. driver_override is cleared with a newline: the kernel ignores a 0-byte write,
 * and "echo > driver_override" writes "\n" (K-PCI).
 */
#include "hw/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/iommu.h"
#include "hw/pci.h"
#include "util/alloc.h"
#include "util/strv.h"

struct gv_vfio_binding *gv_vfio_binding_free(struct gv_vfio_binding *b)
{
        if (b) {
                for (size_t i = 0; i < b->n_functions; i++) {
                        free(b->functions[i].original_driver);
                        free(b->functions[i].original_override);
                }
                free(b->functions);
                free(b);
        }
        return NULL;
}

int gv_driver_current(const struct gv_sysfs *fs, const char *bdf, char **ret,
                      struct gv_error **err)
{
        /* bus/pci/devices/<bdf>/driver -> ../../../bus/pci/drivers/<name> */
        _cleanup_free_ char *link = gv_sysfs_pci_device_attr(fs, bdf, "driver");
        char *drv = NULL;
        int r = gv_sysfs_read_link(link, GV_SYSFS_OPTIONAL, &drv, err);
        if (r < 0)
                return r;
        *ret = drv;
        return r;
}

static int read_override(const struct gv_sysfs *fs, const char *bdf, char **ret,
                         struct gv_error **err)
{
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, bdf, "driver_override");
        char *s = NULL;
        int r = gv_sysfs_read(p, 0, &s, err);
        if (r == -ENOENT)
                return gv_error_wrap(err, r,
                                     "%s has no driver_override file (kernel older than 3.16?): "
                                     "gpuvirt binds through driver_override",
                                     bdf);
        if (r < 0)
                return r;
        if (s[0] == 0 || strcmp(s, "(null)") == 0) {
                free(s);
                s = NULL;
        }
        *ret = s;
        return 0;
}

static int write_override(const struct gv_sysfs *fs, const char *bdf, const char *value,
                          struct gv_error **err)
{
        _cleanup_free_ char *p = gv_sysfs_pci_device_attr(fs, bdf, "driver_override");
        return gv_sysfs_write(p, value ? value : "\n", err);
}

static int unbind(const struct gv_sysfs *fs, const char *bdf, const char *driver,
                  struct gv_error **err)
{
        /* bus/pci/drivers/<driver>/unbind */
        _cleanup_free_ char *p = gv_sysfs_pci_driver_attr(fs, driver, "unbind");
        return gv_sysfs_write(p, bdf, err);
}

static int probe(const struct gv_sysfs *fs, const char *bdf, struct gv_error **err)
{
        /* bus/pci/drivers_probe */
        _cleanup_free_ char *p = gv_sysfs_pci_drivers_probe(fs);
        return gv_sysfs_write(p, bdf, err);
}

static bool same_driver(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int gv_driver_restore_function(const struct gv_sysfs *fs, const char *bdf,
                               const char *original_driver, const char *original_override,
                               struct gv_error **err)
{
        _cleanup_free_ char *cur = NULL;
        int r;

        r = write_override(fs, bdf, original_override, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Giving %s back to %s failed at step '%s'", bdf,
                                     original_driver ? original_driver : "no driver",
                                     original_override ? "restore driver_override"
                                                       : "clear driver_override");

        r = gv_driver_current(fs, bdf, &cur, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Giving %s back failed at step 'read driver'", bdf);
        if (same_driver(cur, original_driver))
                return 0;

        if (cur) {
                r = unbind(fs, bdf, cur, err);
                if (r < 0)
                        return gv_error_wrap(err, r,
                                             "Giving %s back to %s failed at step 'unbind from "
                                             "%s'",
                                             bdf, original_driver ? original_driver : "no driver",
                                             cur);
        }
        if (original_driver) {
                r = probe(fs, bdf, err);
                if (r < 0)
                        return gv_error_wrap(err, r,
                                             "Giving %s back to %s failed at step "
                                             "'drivers_probe'",
                                             bdf, original_driver);
        }

        free(cur);
        cur = NULL;
        r = gv_driver_current(fs, bdf, &cur, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Giving %s back failed at step 'verify'", bdf);
        if (!same_driver(cur, original_driver))
                return gv_error_set(err, EIO,
                                    "Giving %s back to %s did not take effect: after "
                                    "drivers_probe it is bound to %s%s%s. Load the driver "
                                    "('modprobe %s') and retry.",
                                    bdf, original_driver ? original_driver : "no driver",
                                    cur ? "'" : "", cur ? cur : "no driver", cur ? "'" : "",
                                    original_driver ? original_driver : "<driver>");
        return 0;
}

/* Move one function to vfio-pci; f->original_* are filled in first. On failure the caller
 * restores it with gv_driver_restore_function (every step here is undone by that). */
static int bind_function(const struct gv_sysfs *fs, struct gv_driver_function *f,
                         struct gv_error **err)
{
        const char *bdf = f->bdf;
        _cleanup_free_ char *cur = NULL;
        int r;

        r = write_override(fs, bdf, GV_DRIVER_VFIO_PCI, err);
        if (r < 0)
                return gv_error_wrap(err, r,
                                     "Binding %s to vfio-pci failed at step 'write "
                                     "driver_override'",
                                     bdf);
        if (f->original_driver) {
                r = unbind(fs, bdf, f->original_driver, err);
                if (r < 0)
                        return gv_error_wrap(err, r,
                                             "Binding %s to vfio-pci failed at step 'unbind from "
                                             "%s'",
                                             bdf, f->original_driver);
        }
        r = probe(fs, bdf, err);
        if (r < 0)
                return gv_error_wrap(err, r,
                                     "Binding %s to vfio-pci failed at step 'drivers_probe'", bdf);

        r = gv_driver_current(fs, bdf, &cur, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Binding %s to vfio-pci failed at step 'verify'",
                                     bdf);
        if (!cur || strcmp(cur, GV_DRIVER_VFIO_PCI) != 0) {
                _cleanup_free_ char *vdir = gv_sysfs_pci_driver_dir(fs, GV_DRIVER_VFIO_PCI);
                bool loaded = gv_sysfs_exists(vdir) > 0;
                return gv_error_set(err, EIO,
                                    "Binding %s to vfio-pci did not take effect: after "
                                    "drivers_probe it is bound to %s%s%s. %s",
                                    bdf, cur ? "'" : "", cur ? cur : "no driver", cur ? "'" : "",
                                    loaded ? "The kernel did not attach vfio-pci; see the kernel "
                                             "log (dmesg) for the reason."
                                           : "The vfio-pci driver is not loaded: run 'modprobe "
                                             "vfio-pci' and retry.");
        }
        f->moved = true;
        return 0;
}

int gv_driver_bind_vfio(const struct gv_sysfs *fs, const char *bdf, struct gv_vfio_binding **ret,
                        struct gv_error **err)
{
        _cleanup_(gv_iommu_verdict_freep) struct gv_iommu_verdict *v = NULL;
        int r = gv_iommu_check_assignment(fs, bdf, &v, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot pass %s through", bdf);
        if (!v->viable)
                return gv_error_set(err, EBUSY, "Refusing to bind %s to vfio-pci: %s", bdf,
                                    v->reason);

        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *b =
                xnew0(struct gv_vfio_binding, 1);
        b->group = v->group;
        b->functions = xnew0(struct gv_driver_function, v->n_members ? v->n_members : 1);

        /* Record the starting point of every assigned function before changing anything. */
        for (size_t i = 0; i < v->n_members; i++) {
                if (v->members[i].role != GV_IOMMU_ROLE_ASSIGNED)
                        continue;
                struct gv_driver_function *f = &b->functions[b->n_functions++];
                memcpy(f->bdf, v->members[i].bdf, sizeof(f->bdf));
                r = gv_driver_current(fs, f->bdf, &f->original_driver, err);
                if (r < 0)
                        return r;
                r = read_override(fs, f->bdf, &f->original_override, err);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < b->n_functions; i++) {
                struct gv_driver_function *f = &b->functions[i];
                if (f->original_driver && strcmp(f->original_driver, GV_DRIVER_VFIO_PCI) == 0)
                        continue;

                _cleanup_(gv_error_freep) struct gv_error *be = NULL;
                r = bind_function(fs, f, &be);
                if (r >= 0)
                        continue;

                /* Roll back this function and the ones moved before it, newest first. */
                _cleanup_strv_free_ char **undone = NULL, **stuck = NULL;
                for (size_t j = i + 1; j-- > 0;) {
                        struct gv_driver_function *g = &b->functions[j];
                        if (j != i && !g->moved)
                                continue;
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                        int q = gv_driver_restore_function(fs, g->bdf, g->original_driver,
                                                           g->original_override, &e);
                        if (q < 0)
                                strv_consume(&stuck, xstrdup(gv_error_msg(e, q)));
                        else if (j != i)
                                strv_extend(&undone, g->bdf);
                }
                const char *msg = gv_error_msg(be, r);
                if (stuck) {
                        _cleanup_free_ char *s = strv_join(stuck, "; ");
                        return gv_error_set(err, r,
                                            "%s IOMMU group %u is half bound: rolling back failed "
                                            "too (%s); fix it by hand.",
                                            msg, b->group, s);
                }
                if (undone) {
                        _cleanup_free_ char *s = strv_join(undone, ", ");
                        return gv_error_set(err, r,
                                            "%s IOMMU group %u was not bound: %s went back to %s "
                                            "original driver.",
                                            msg, b->group, s,
                                            strv_length(undone) > 1 ? "their" : "its");
                }
                return gv_error_set(err, r, "%s IOMMU group %u was not bound: nothing changed.",
                                    msg, b->group);
        }

        *ret = TAKE_PTR(b);
        return 0;
}

int gv_driver_restore(const struct gv_sysfs *fs, const struct gv_vfio_binding *b,
                      struct gv_error **err)
{
        _cleanup_strv_free_ char **failed = NULL;
        int first = 0;

        for (size_t j = b->n_functions; j-- > 0;) {
                const struct gv_driver_function *f = &b->functions[j];
                if (!f->moved)
                        continue;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = gv_driver_restore_function(fs, f->bdf, f->original_driver,
                                                   f->original_override, &e);
                if (r < 0) {
                        if (first == 0)
                                first = r;
                        strv_consume(&failed, xstrdup(gv_error_msg(e, r)));
                }
        }
        if (failed) {
                _cleanup_free_ char *s = strv_join(failed, "; ");
                return gv_error_set(err, first, "Giving IOMMU group %u back to the host failed: %s",
                                    b->group, s);
        }
        return 0;
}
