/* SPDX-License-Identifier: MIT */
/* Write paths on a plain tree, where no kernel reacts to writes: every change must be caught by
 * its verification step ("did not take effect") and undone, and refusals must come before any
 * write. The real reactions are covered by test-sim-* under the kernel mock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/driver.h"
#include "hw/mdev.h"
#include "hw/sriov.h"
#include "tree.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"

#define UUID1 "aa618089-8b16-4d01-a136-25a0f3c73123"
#define UUID2 "73269d0f-b2c9-438d-8f28-f9e4bc6c6995"

static struct tree *host(void)
{
        struct tree *t = tree_new();
        tree_pci(t, "0000:01:00.0", "0x10de\n", "0x2684\n", "0x030000\n", "nvidia", 12);
        tree_pci(t, "0000:01:00.1", "0x10de\n", "0x22ba\n", "0x040300\n", "snd_hda_intel", 12);
        tree_pci(t, "0000:3b:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "nvidia", 17);
        tree_pci(t, "0000:3c:00.0", "0x8086\n", "0x10fb\n", "0x020000\n", "ixgbe", 17);
        tree_pci(t, "0000:5e:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "vfio-pci", 20);

        tree_pci(t, "0000:41:00.0", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 40);
        tree_pci_attr(t, "0000:41:00.0", "sriov_totalvfs", "8\n");
        tree_pci_attr(t, "0000:41:00.0", "sriov_numvfs", "2\n");
        tree_pci(t, "0000:41:00.4", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 41);
        tree_pci(t, "0000:41:00.5", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 42);
        tree_vf(t, "0000:41:00.0", "0000:41:00.4", 0);
        tree_vf(t, "0000:41:00.0", "0000:41:00.5", 1);

        /* mdev: VF 41:00.4 is a parent with two types, one instance exists on 41:00.5 */
        const char *vf4 = "devices/pci0000:00/0000:41:00.4";
        tree_link(t, "class/mdev_bus/0000:41:00.4", "../../devices/pci0000:00/0000:41:00.4");
        tree_link(t, "class/mdev_bus/0000:41:00.5", "../../devices/pci0000:00/0000:41:00.5");
        _cleanup_free_ char *p = NULL;
        struct {
                const char *type, *name, *avail;
        } types[] = { { "nvidia-700", "GRID A100D-2-20C\n", "1\n" },
                      { "nvidia-699", "GRID A100D-1-10C\n", "0\n" } };
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                const char *attrs[][2] = { { "name", types[i].name },
                                           { "available_instances", types[i].avail },
                                           { "device_api", "vfio-pci\n" },
                                           { "create", "" } };
                for (size_t k = 0; k < ELEMENTSOF(attrs); k++) {
                        free(p);
                        p = xasprintf("%s/mdev_supported_types/%s/%s", vf4, types[i].type,
                                      attrs[k][0]);
                        tree_file(t, p, attrs[k][1]);
                }
        }
        const char *vf5 = "devices/pci0000:00/0000:41:00.5";
        free(p);
        p = xasprintf("%s/mdev_supported_types/nvidia-700/available_instances", vf5);
        tree_file(t, p, "0\n");
        free(p);
        p = xasprintf("%s/" UUID2 "/remove", vf5);
        tree_file(t, p, "");
        free(p);
        p = xasprintf("%s/" UUID2 "/mdev_type", vf5);
        tree_link(t, p, "../mdev_supported_types/nvidia-700");
        tree_link(t, "bus/mdev/devices/" UUID2, "../../../devices/pci0000:00/0000:41:00.5/" UUID2);
        return t;
}

static void test_bind_no_kernel(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vfio_binding *b = NULL;
        _cleanup_free_ char *vfio = tree_path(t, "bus/pci/drivers/vfio-pci");
        assert_int_equal(gv_rm_rf(vfio), 0); /* vfio-pci not loaded */

        assert_int_equal(gv_driver_bind_vfio(t->fs, "0000:01:00.0", &b, &e), -EIO);
        assert_null(b);
        /* the function and the step, the hint, and that nothing is left changed */
        assert_non_null(strstr(e->msg, "Binding 0000:01:00.0 to vfio-pci did not take effect"));
        assert_non_null(strstr(e->msg, "bound to 'nvidia'"));
        assert_non_null(strstr(e->msg, "modprobe vfio-pci")); /* no drivers/vfio-pci here */
        assert_non_null(strstr(e->msg, "IOMMU group 12 was not bound: nothing changed."));
        e = gv_error_free(e);

        /* The sequence was written (override, unbind from nvidia, drivers_probe) and the
         * override was cleared again with a newline. */
        _cleanup_free_ char *ub = tree_read(t, "bus/pci/drivers/nvidia/unbind");
        assert_string_equal(ub, "0000:01:00.0");
        _cleanup_free_ char *probe = tree_read(t, "bus/pci/drivers_probe");
        assert_string_equal(probe, "0000:01:00.0");
        _cleanup_free_ char *ov =
                tree_read(t, "devices/pci0000:00/0000:01:00.0/driver_override");
        assert_string_equal(ov, "\n");
        /* the audio function, after it in order, was never touched */
        _cleanup_free_ char *ov1 =
                tree_read(t, "devices/pci0000:00/0000:01:00.1/driver_override");
        assert_string_equal(ov1, "(null)\n");

        /* With vfio-pci loaded the hint points at the kernel log instead. */
        tree_dir(t, "bus/pci/drivers/vfio-pci");
        assert_int_equal(gv_driver_bind_vfio(t->fs, "0000:01:00.0", &b, &e), -EIO);
        assert_non_null(strstr(e->msg, "dmesg"));
        tree_free(t);
}

static void test_bind_refused(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vfio_binding *b = NULL;

        assert_int_equal(gv_driver_bind_vfio(t->fs, "0000:3b:00.0", &b, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "Refusing to bind 0000:3b:00.0 to vfio-pci: IOMMU group "
                                       "17 also holds 0000:3c:00.0 (Ethernet controller, driver "
                                       "ixgbe)"));
        _cleanup_free_ char *ov =
                tree_read(t, "devices/pci0000:00/0000:3b:00.0/driver_override");
        assert_string_equal(ov, "(null)\n"); /* nothing written */
        _cleanup_free_ char *ub = tree_read(t, "bus/pci/drivers/nvidia/unbind");
        assert_string_equal(ub, "");
        tree_free(t);
}

static void test_bind_already(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *b = NULL;
        char *drv = NULL;

        /* On vfio-pci already: nothing to move, nothing to give back. */
        assert_int_equal(gv_driver_bind_vfio(t->fs, "0000:5e:00.0", &b, &e), 0);
        assert_int_equal(b->group, 20);
        assert_int_equal(b->n_functions, 1);
        assert_false(b->functions[0].moved);
        assert_string_equal(b->functions[0].original_driver, "vfio-pci");
        assert_int_equal(gv_driver_restore(t->fs, b, &e), 0);
        assert_int_equal(gv_driver_current(t->fs, "0000:5e:00.0", &drv, &e), 1);
        assert_string_equal(drv, "vfio-pci");
        free(drv);
        assert_int_equal(gv_driver_current(t->fs, "0000:41:00.0", &drv, &e), 1);
        free(drv);
        tree_free(t);
}

static void test_sriov_no_kernel(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_sriov_info info = {};
        char **vfs = NULL, *pf = NULL;

        assert_int_equal(gv_sriov_read(t->fs, "0000:41:00.0", &info, &e), 0);
        assert_int_equal(info.total_vfs, 8);
        assert_int_equal(info.num_vfs, 2);
        assert_int_equal(gv_sriov_list_vfs(t->fs, "0000:41:00.0", &vfs, &e), 0);
        assert_int_equal(strv_length(vfs), 2);
        assert_string_equal(vfs[1], "0000:41:00.5");
        vfs = strv_free(vfs);
        assert_int_equal(gv_sriov_physfn(t->fs, "0000:41:00.5", &pf, &e), 1);
        assert_string_equal(pf, "0000:41:00.0");
        free(pf);
        pf = NULL;
        assert_int_equal(gv_sriov_physfn(t->fs, "0000:41:00.0", &pf, &e), 0);
        assert_null(pf);

        assert_int_equal(gv_sriov_set_numvfs(t->fs, "0000:41:00.0", 9, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "supports at most 8 VFs (sriov_totalvfs), not 9"));
        e = gv_error_free(e);
        assert_int_equal(gv_sriov_set_numvfs(t->fs, "0000:41:00.0", 2, &e), 0); /* no change */

        /* No kernel: the VFs do not appear; the count is put back. */
        assert_int_equal(gv_sriov_set_numvfs(t->fs, "0000:41:00.0", 4, &e), -EIO);
        assert_non_null(strstr(e->msg, "Setting 0000:41:00.0 to 4 VFs did not take effect"));
        assert_non_null(strstr(e->msg, "It is back at 2 VFs."));
        e = gv_error_free(e);
        _cleanup_free_ char *n = tree_read(t, "devices/pci0000:00/0000:41:00.0/sriov_numvfs");
        assert_string_equal(n, "2");

        assert_int_equal(gv_sriov_read(t->fs, "0000:01:00.0", &info, &e), -EOPNOTSUPP);
        assert_non_null(strstr(e->msg, "not an SR-IOV physical function"));
        e = gv_error_free(e);
        assert_int_equal(gv_sriov_read(t->fs, "0000:99:00.0", &info, &e), -ENODEV);
        tree_free(t);
}

static void test_mdev_read(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char **parents = NULL;
        struct gv_mdev_type_list *types = NULL;
        struct gv_mdev_instance_list *insts = NULL;
        const struct gv_mdev_type *ty = NULL;

        assert_int_equal(gv_mdev_list_parents(t->fs, &parents, &e), 0);
        assert_int_equal(strv_length(parents), 2);
        assert_string_equal(parents[0], "0000:41:00.4");
        parents = strv_free(parents);

        assert_int_equal(gv_mdev_list_types(t->fs, "0000:41:00.4", &types, &e), 0);
        assert_int_equal(types->n, 2);
        assert_string_equal(types->types[0].id, "nvidia-699"); /* sorted by id */
        assert_string_equal(types->types[1].name, "GRID A100D-2-20C");
        assert_int_equal(types->types[1].available_instances, 1);
        assert_string_equal(types->types[1].device_api, "vfio-pci");
        assert_null(types->types[1].description);

        assert_int_equal(gv_mdev_type_find(types, "0000:41:00.4", "A100D-2-20C", &ty, &e), 0);
        assert_string_equal(ty->id, "nvidia-700");
        assert_int_equal(gv_mdev_type_find(types, "0000:41:00.4", "nvidia-699", &ty, &e), 0);
        assert_string_equal(ty->id, "nvidia-699");
        assert_int_equal(gv_mdev_type_find(types, "0000:41:00.4", "A100D-3-40C", &ty, &e),
                         -ENOENT);
        assert_non_null(strstr(e->msg, "0000:41:00.4 has no mdev type 'A100D-3-40C'; its types "
                                       "are: nvidia-699 (GRID A100D-1-10C), nvidia-700 (GRID "
                                       "A100D-2-20C)."));
        e = gv_error_free(e);
        types = gv_mdev_type_list_free(types);

        assert_int_equal(gv_mdev_list_types(t->fs, "0000:01:00.0", &types, &e), -ENODEV);
        assert_non_null(strstr(e->msg, "is not an mdev parent"));
        e = gv_error_free(e);

        assert_int_equal(gv_mdev_list_instances(t->fs, &insts, &e), 0);
        assert_int_equal(insts->n, 1);
        assert_string_equal(insts->instances[0].uuid, UUID2);
        assert_string_equal(insts->instances[0].parent, "0000:41:00.5");
        assert_string_equal(insts->instances[0].type_id, "nvidia-700");
        insts = gv_mdev_instance_list_free(insts);
        tree_free(t);
}

static void test_mdev_write_no_kernel(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char uuid[GV_UUID_STR_LEN + 1] = "";
        const char *create =
                "devices/pci0000:00/0000:41:00.4/mdev_supported_types/nvidia-700/create";

        assert_int_equal(gv_mdev_create(t->fs, "0000:41:00.4", "nvidia-700",
                                        "AA618089-8B16-4D01-A136-25A0F3C73123", uuid, &e),
                         -EIO);
        assert_non_null(strstr(e->msg, "Creating mediated device " UUID1
                                       " of type 'nvidia-700' on 0000:41:00.4 did not take "
                                       "effect"));
        e = gv_error_free(e);
        assert_string_equal(uuid, ""); /* not written on failure */
        _cleanup_free_ char *c = tree_read(t, create);
        assert_string_equal(c, UUID1); /* canonical lower case reached the kernel */

        assert_int_equal(gv_mdev_create(t->fs, "0000:41:00.4", "nvidia-699", NULL, uuid, &e),
                         -ENOSPC);
        assert_non_null(strstr(e->msg, "has no available instances"));
        e = gv_error_free(e);
        assert_int_equal(gv_mdev_create(t->fs, "0000:41:00.4", "nvidia-700", UUID2, uuid, &e),
                         -EEXIST);
        e = gv_error_free(e);
        assert_int_equal(gv_mdev_create(t->fs, "0000:41:00.4", "nvidia-700", "not-a-uuid", uuid,
                                        &e),
                         -EINVAL);
        e = gv_error_free(e);
        assert_int_equal(gv_mdev_create(t->fs, "0000:41:00.4", "nvidia-1", NULL, uuid, &e),
                         -ENOENT);
        assert_non_null(strstr(e->msg, "has no mdev type 'nvidia-1'"));
        e = gv_error_free(e);

        assert_int_equal(gv_mdev_remove(t->fs, UUID2, &e), -EIO);
        assert_non_null(strstr(e->msg, "did not take effect"));
        e = gv_error_free(e);
        _cleanup_free_ char *rm = tree_read(t, "devices/pci0000:00/0000:41:00.5/" UUID2 "/remove");
        assert_string_equal(rm, "1");
        assert_int_equal(gv_mdev_remove(t->fs, UUID1, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "There is no mediated device " UUID1));
        tree_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bind_no_kernel),  cmocka_unit_test(test_bind_refused),
                cmocka_unit_test(test_bind_already),    cmocka_unit_test(test_sriov_no_kernel),
                cmocka_unit_test(test_mdev_read),       cmocka_unit_test(test_mdev_write_no_kernel),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
