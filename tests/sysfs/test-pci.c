/* SPDX-License-Identifier: MIT */
/* pci.c: reading functions, enumeration with per-device problems, companions, GPU filter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/pci.h"
#include "tree.h"
#include "util/alloc.h"
#include "util/strv.h"

/* An A100 PF at 0000:41:00.0 with 12 VFs (0000:41:00.4 on); broken_vf < 12: that VF's virtfn
 * entry is a plain file instead of a link. */
static void a100_pf(struct tree *t, unsigned broken_vf)
{
        tree_pci(t, "0000:41:00.0", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 40);
        tree_pci_attr(t, "0000:41:00.0", "sriov_totalvfs", "20\n");
        tree_pci_attr(t, "0000:41:00.0", "sriov_numvfs", "12\n");
        for (unsigned i = 0; i < 12; i++) {
                char vf[32];
                snprintf(vf, sizeof(vf), "0000:41:%02x.%u", (4 + i) / 8, (4 + i) % 8);
                tree_pci(t, vf, "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 41 + (int)i);
                if (i == broken_vf) {
                        _cleanup_free_ char *l = xasprintf("devices/pci0000:00/0000:41:00.0/"
                                                           "virtfn%u", i);
                        tree_file(t, l, "not a link\n");
                } else {
                        tree_vf(t, "0000:41:00.0", vf, i);
                }
        }
}

/* A consumer GPU with its audio function, an A100 PF with 12 VFs, a NIC, two corrupt
 * functions. */
static struct tree *host(void)
{
        struct tree *t = tree_new();
        tree_pci(t, "0000:01:00.0", "0x10de\n", "0x2684\n", "0x030000\n", "nvidia", 12);
        tree_pci_attr(t, "0000:01:00.0", "reset_method", "flr bus\n");
        tree_pci_attr(t, "0000:01:00.0", "numa_node", "-1\n");
        tree_pci(t, "0000:01:00.1", "0x10de\n", "0x22ba\n", "0x040300\n", "snd_hda_intel", 12);

        a100_pf(t, 12);
        tree_pci_attr(t, "0000:41:00.0", "numa_node", "1\n");

        tree_pci(t, "0000:3c:00.0", "0x8086\n", "0x10fb\n", "0x020000\n", "ixgbe", 17);
        tree_pci_attr(t, "0000:3c:00.0", "driver_override", "vfio-pci\n");
        tree_pci(t, "0000:5e:00.0", "0x10\n", "0x2330\n", "0x030200\n", "nvidia", 50);
        tree_pci(t, "0000:5f:00.0", "zz\x01garbage\n", "0x2330\n", "0x030200\n", NULL, 51);
        return t;
}

static void test_read_device(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;

        /* Short form is accepted and canonicalized. */
        assert_int_equal(gv_pci_device_read(t->fs, "01:00.0", &d, &e), 0);
        assert_string_equal(d->bdf, "0000:01:00.0");
        assert_int_equal(d->vendor, 0x10de);
        assert_int_equal(d->device, 0x2684);
        assert_int_equal(d->subsystem_device, 0x1234);
        assert_int_equal(d->class_code, 0x030000);
        assert_string_equal(d->driver, "nvidia");
        assert_null(d->driver_override); /* "(null)" */
        assert_int_equal(d->numa_node, -1);
        assert_int_equal(d->iommu_group, 12);
        assert_true(d->reset_methods_known);
        assert_int_equal(strv_length(d->reset_methods), 2);
        assert_string_equal(d->reset_methods[0], "flr");
        assert_string_equal(d->reset_methods[1], "bus");
        assert_false(d->sriov_capable);
        assert_null(d->physfn);
        assert_true(gv_pci_device_is_nvidia_gpu(d));
        d = gv_pci_device_free(d);

        /* SR-IOV PF: VFs in index order (virtfn10 after virtfn9). */
        assert_int_equal(gv_pci_device_read(t->fs, "0000:41:00.0", &d, &e), 0);
        assert_true(d->sriov_capable);
        assert_int_equal(d->sriov_total_vfs, 20);
        assert_int_equal(d->sriov_num_vfs, 12);
        assert_int_equal(strv_length(d->vfs), 12);
        assert_string_equal(d->vfs[0], "0000:41:00.4");
        assert_string_equal(d->vfs[9], "0000:41:01.5");
        assert_string_equal(d->vfs[10], "0000:41:01.6");
        assert_false(d->reset_methods_known); /* no reset_method file: unknown */
        assert_null(d->reset_methods);
        d = gv_pci_device_free(d);

        assert_int_equal(gv_pci_device_read(t->fs, "0000:41:01.0", &d, &e), 0);
        assert_string_equal(d->physfn, "0000:41:00.0");
        d = gv_pci_device_free(d);

        assert_int_equal(gv_pci_device_read(t->fs, "0000:3c:00.0", &d, &e), 0);
        assert_string_equal(d->driver_override, "vfio-pci");
        assert_false(gv_pci_device_is_nvidia_gpu(d));
        d = gv_pci_device_free(d);

        /* Corrupt vendor: the error names the file and what it holds. */
        assert_int_equal(gv_pci_device_read(t->fs, "0000:5e:00.0", &d, &e), -EBADMSG);
        assert_null(d);
        assert_non_null(strstr(e->msg, "0000:5e:00.0/vendor"));
        assert_non_null(strstr(e->msg, "holds '0x10'"));
        e = gv_error_free(e);

        assert_int_equal(gv_pci_device_read(t->fs, "0000:99:00.0", &d, &e), -ENODEV);
        assert_non_null(strstr(e->msg, "There is no PCI function 0000:99:00.0"));
        e = gv_error_free(e);
        assert_int_equal(gv_pci_device_read(t->fs, "not-an-address", &d, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'not-an-address' is not a PCI address"));
        tree_free(t);
}

/* A VF link that cannot be read after later-numbered ones were (string order puts virtfn10
 * before virtfn2): the read fails naming it, and the VFs read so far are freed although the
 * list has holes (make test-asan's leak check fails this if they are not). */
static void test_read_vfs_broken_link(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;

        a100_pf(t, 2);
        assert_true(gv_pci_device_read(t->fs, "0000:41:00.0", &d, &e) < 0);
        assert_null(d);
        assert_non_null(e);
        assert_non_null(strstr(e->msg, "virtfn2"));
        tree_free(t);
}

static void test_enumerate(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_pci_inventory_freep) struct gv_pci_inventory *inv = NULL;

        assert_int_equal(gv_pci_enumerate(t->fs, 0, &inv, &e), 0);
        /* 2 + 1 + 12 + 1 healthy, 2 problems: the inventory goes on past them. */
        assert_int_equal(inv->n_devices, 16);
        assert_int_equal(inv->n_problems, 2);
        assert_string_equal(inv->problems[0].bdf, "0000:5e:00.0");
        assert_int_equal(inv->problems[0].code, EBADMSG);
        assert_non_null(strstr(inv->problems[0].msg, "0000:5e:00.0/vendor"));
        assert_non_null(strstr(inv->problems[0].msg, "'0x10'"));
        assert_string_equal(inv->problems[1].bdf, "0000:5f:00.0");
        assert_non_null(strstr(inv->problems[1].msg, "'zz\\x01garbage'"));

        /* sorted by address */
        assert_string_equal(inv->devices[0]->bdf, "0000:01:00.0");
        assert_string_equal(inv->devices[1]->bdf, "0000:01:00.1");
        assert_string_equal(inv->devices[2]->bdf, "0000:3c:00.0");
        assert_non_null(gv_pci_inventory_find(inv, "41:00.0"));
        assert_null(gv_pci_inventory_find(inv, "0000:5e:00.0"));

        const struct gv_pci_device **gpus = NULL;
        size_t n = 0;
        gv_pci_inventory_nvidia_gpus(inv, &gpus, &n);
        assert_int_equal(n, 14); /* GPU, PF, 12 VFs: not the audio function nor the NIC */
        for (size_t i = 0; i < n; i++)
                assert_true(strcmp(gpus[i]->bdf, "0000:01:00.1") != 0);
        free(gpus);

        /* Without the VFs: the same functions less the 12 VFs, the PF keeps its VF list. */
        _cleanup_(gv_pci_inventory_freep) struct gv_pci_inventory *pfs = NULL;
        assert_int_equal(gv_pci_enumerate(t->fs, GV_PCI_ENUM_SKIP_VFS, &pfs, &e), 0);
        assert_int_equal(pfs->n_devices, 4);
        assert_int_equal(pfs->n_problems, 2);
        for (size_t i = 0; i < pfs->n_devices; i++)
                assert_null(pfs->devices[i]->physfn);
        const struct gv_pci_device *pf = gv_pci_inventory_find(pfs, "0000:41:00.0");
        assert_non_null(pf);
        assert_int_equal(strv_length(pf->vfs), 12);
        tree_free(t);
}

static void test_enumerate_missing(void **state)
{
        (void)state;
        struct tree *t = tree_new();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_pci_inventory *inv = NULL;
        _cleanup_free_ char *dir = tree_path(t, "bus/pci/devices");
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(gv_pci_enumerate(t->fs, 0, &inv, &e), -ENOENT);
        assert_null(inv);
        assert_non_null(strstr(e->msg, "Cannot list the PCI functions"));
        tree_free(t);
}

static void test_companions(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char **l = NULL;

        assert_int_equal(gv_pci_companions(t->fs, "0000:01:00.0", &l, &e), 0);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], "0000:01:00.1");
        l = strv_free(l);
        assert_int_equal(gv_pci_companions(t->fs, "0000:01:00.1", &l, &e), 0);
        assert_int_equal(strv_length(l), 1);
        assert_string_equal(l[0], "0000:01:00.0");
        l = strv_free(l);

        /* VFs on the PF's slot are not multifunction companions. */
        assert_int_equal(gv_pci_companions(t->fs, "0000:41:00.0", &l, &e), 0);
        assert_int_equal(strv_length(l), 0);
        l = strv_free(l);
        assert_int_equal(gv_pci_companions(t->fs, "0000:41:00.5", &l, &e), 0);
        assert_int_equal(strv_length(l), 0);
        l = strv_free(l);
        tree_free(t);
}

static void test_class_names(void **state)
{
        (void)state;
        assert_string_equal(gv_pci_class_name(0x030000), "VGA compatible controller");
        assert_string_equal(gv_pci_class_name(0x030200), "3D controller");
        assert_string_equal(gv_pci_class_name(0x040300), "Audio device");
        assert_string_equal(gv_pci_class_name(0x020000), "Ethernet controller");
        assert_string_equal(gv_pci_class_name(0x060400), "PCI bridge");
        assert_string_equal(gv_pci_class_name(0x028000), "Network controller"); /* base only */
        assert_string_equal(gv_pci_class_name(0xfe0000), "Unknown class");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_device),
                cmocka_unit_test(test_read_vfs_broken_link), cmocka_unit_test(test_enumerate),
                cmocka_unit_test(test_enumerate_missing), cmocka_unit_test(test_companions),
                cmocka_unit_test(test_class_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
