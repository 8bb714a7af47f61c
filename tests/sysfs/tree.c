/* SPDX-License-Identifier: MIT */
#include "tree.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/fileio.h"

char *tree_path(const struct tree *t, const char *rel)
{
        return gv_path_join(t->root, "sys", rel);
}

void tree_dir(const struct tree *t, const char *rel)
{
        _cleanup_free_ char *p = tree_path(t, rel);
        assert_int_equal(gv_mkdir_p(p, 0755), 0);
}

void tree_file(const struct tree *t, const char *rel, const char *content)
{
        _cleanup_free_ char *p = tree_path(t, rel);
        _cleanup_free_ char *dir = xstrdup(p);
        *strrchr(dir, '/') = 0;
        assert_int_equal(gv_mkdir_p(dir, 0755), 0);
        assert_int_equal(gv_write_file(p, content, GV_WRITE_CREATE), 0);
}

void tree_link(const struct tree *t, const char *rel, const char *target)
{
        _cleanup_free_ char *p = tree_path(t, rel);
        _cleanup_free_ char *dir = xstrdup(p);
        *strrchr(dir, '/') = 0;
        assert_int_equal(gv_mkdir_p(dir, 0755), 0);
        (void)unlink(p);
        assert_int_equal(symlink(target, p), 0);
}

char *tree_read(const struct tree *t, const char *rel)
{
        _cleanup_free_ char *p = tree_path(t, rel);
        char *s = NULL;
        if (gv_read_file(p, 1 << 20, &s, NULL) < 0)
                return NULL;
        return s;
}

struct tree *tree_new(void)
{
        struct tree *t = xnew0(struct tree, 1);
        const char *tmp = getenv("TMPDIR");
        t->root = xasprintf("%s/gv-sysfs-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(t->root));
        tree_dir(t, "devices/pci0000:00");
        tree_dir(t, "bus/pci/devices");
        tree_dir(t, "bus/pci/drivers");
        tree_dir(t, "kernel/iommu_groups");
        tree_file(t, "bus/pci/drivers_probe", "");
        struct gv_error *e = NULL;
        assert_int_equal(gv_sysfs_new(t->root, &t->fs, &e), 0);
        return t;
}

void tree_free(struct tree *t)
{
        if (!t)
                return;
        if (!getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(t->root);
        gv_sysfs_free(t->fs);
        free(t->root);
        free(t);
}

void tree_pci_attr(const struct tree *t, const char *bdf, const char *attr, const char *content)
{
        _cleanup_free_ char *rel = xasprintf("devices/pci0000:00/%s/%s", bdf, attr);
        tree_file(t, rel, content);
}

void tree_pci(const struct tree *t, const char *bdf, const char *vendor, const char *device,
              const char *class_code, const char *driver, int group)
{
        _cleanup_free_ char *dev = xasprintf("devices/pci0000:00/%s", bdf);
        tree_dir(t, dev);
        _cleanup_free_ char *bus = xasprintf("bus/pci/devices/%s", bdf);
        _cleanup_free_ char *bus_target = xasprintf("../../../devices/pci0000:00/%s", bdf);
        tree_link(t, bus, bus_target);

        if (vendor)
                tree_pci_attr(t, bdf, "vendor", vendor);
        if (device)
                tree_pci_attr(t, bdf, "device", device);
        if (class_code)
                tree_pci_attr(t, bdf, "class", class_code);
        tree_pci_attr(t, bdf, "subsystem_vendor", "0x10de\n");
        tree_pci_attr(t, bdf, "subsystem_device", "0x1234\n");
        tree_pci_attr(t, bdf, "driver_override", "(null)\n");
        tree_pci_attr(t, bdf, "numa_node", "0\n");

        if (driver) {
                _cleanup_free_ char *d = xasprintf("bus/pci/drivers/%s", driver);
                _cleanup_free_ char *ub = xasprintf("bus/pci/drivers/%s/unbind", driver);
                _cleanup_free_ char *b = xasprintf("bus/pci/drivers/%s/bind", driver);
                tree_file(t, ub, "");
                tree_file(t, b, "");
                _cleanup_free_ char *l = xasprintf("%s/driver", dev);
                _cleanup_free_ char *target = xasprintf("../../../bus/pci/drivers/%s", driver);
                tree_link(t, l, target);
        }
        if (group >= 0) {
                _cleanup_free_ char *l = xasprintf("%s/iommu_group", dev);
                _cleanup_free_ char *target = xasprintf("../../../kernel/iommu_groups/%d", group);
                tree_link(t, l, target);
                _cleanup_free_ char *gl = xasprintf("kernel/iommu_groups/%d/devices/%s", group,
                                                    bdf);
                _cleanup_free_ char *gt = xasprintf("../../../../devices/pci0000:00/%s", bdf);
                tree_link(t, gl, gt);
        }
}

void tree_vf(const struct tree *t, const char *pf, const char *vf, unsigned idx)
{
        _cleanup_free_ char *l = xasprintf("devices/pci0000:00/%s/virtfn%u", pf, idx);
        _cleanup_free_ char *target = xasprintf("../%s", vf);
        tree_link(t, l, target);
        _cleanup_free_ char *pl = xasprintf("devices/pci0000:00/%s/physfn", vf);
        _cleanup_free_ char *pt = xasprintf("../%s", pf);
        tree_link(t, pl, pt);
}
