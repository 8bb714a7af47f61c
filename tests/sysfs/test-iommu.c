/* SPDX-License-Identifier: MIT */
/* iommu.c: group membership and the assignment verdict (passthrough.md §3). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/iommu.h"
#include "tree.h"
#include "util/strv.h"

static struct tree *host(void)
{
        struct tree *t = tree_new();
        /* group 12: GPU + its HDMI audio + a pcieport bridge: viable */
        tree_pci(t, "0000:01:00.0", "0x10de\n", "0x2684\n", "0x030000\n", "nvidia", 12);
        tree_pci(t, "0000:01:00.1", "0x10de\n", "0x22ba\n", "0x040300\n", "snd_hda_intel", 12);
        tree_pci(t, "0000:00:01.0", "0x8086\n", "0x1901\n", "0x060400\n", "pcieport", 12);
        /* group 17: a GPU next to a NIC on a host driver: not viable */
        tree_pci(t, "0000:3b:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "nvidia", 17);
        tree_pci(t, "0000:3c:00.0", "0x8086\n", "0x10fb\n", "0x020000\n", "ixgbe", 17);
        /* group 20: a GPU with a NIC on vfio-pci and an unbound USB controller: viable */
        tree_pci(t, "0000:5e:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "nvidia", 20);
        tree_pci(t, "0000:5f:00.0", "0x8086\n", "0x10fb\n", "0x020000\n", "vfio-pci", 20);
        tree_pci(t, "0000:60:00.0", "0x8086\n", "0x1234\n", "0x0c0330\n", NULL, 20);
        /* group 21: a GPU with two foreign devices */
        tree_pci(t, "0000:70:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "nvidia", 21);
        tree_pci(t, "0000:71:00.0", "0x8086\n", "0x10fb\n", "0x020000\n", "ixgbe", 21);
        tree_pci(t, "0000:72:00.0", "0x1af4\n", "0x1001\n", "0x010000\n", "virtio-pci", 21);
        /* no IOMMU */
        tree_pci(t, "0000:80:00.0", "0x10de\n", "0x20f1\n", "0x030200\n", "nvidia", -1);
        return t;
}

static void test_group_of(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        uint32_t g = 99;
        char **l = NULL;

        assert_int_equal(gv_iommu_group_of(t->fs, "0000:3b:00.0", &g, &e), 0);
        assert_int_equal(g, 17);
        assert_int_equal(gv_iommu_group_members(t->fs, 12, &l, &e), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "0000:00:01.0");
        assert_string_equal(l[2], "0000:01:00.1");
        l = strv_free(l);

        g = 99;
        assert_int_equal(gv_iommu_group_of(t->fs, "0000:80:00.0", &g, &e), -ENODEV);
        assert_int_equal(g, 99);
        assert_non_null(strstr(e->msg, "0000:80:00.0 has no IOMMU group"));
        assert_non_null(strstr(e->msg, "intel_iommu=on"));
        assert_non_null(strstr(e->msg, "amd_iommu=on"));
        e = gv_error_free(e);

        assert_int_equal(gv_iommu_group_of(t->fs, "0000:99:00.0", &g, &e), -ENODEV);
        assert_non_null(strstr(e->msg, "There is no PCI function"));
        tree_free(t);
}

static void test_verdict_viable(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_iommu_verdict *v = NULL;

        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:01:00.0", &v, &e), 0);
        assert_true(v->viable);
        assert_null(v->reason);
        assert_int_equal(v->group, 12);
        assert_int_equal(v->n_members, 3);
        assert_int_equal(v->members[0].role, GV_IOMMU_ROLE_BRIDGE);
        assert_int_equal(v->members[1].role, GV_IOMMU_ROLE_ASSIGNED);
        assert_int_equal(v->members[2].role, GV_IOMMU_ROLE_ASSIGNED); /* the audio function */
        assert_string_equal(v->members[2].driver, "snd_hda_intel");
        v = gv_iommu_verdict_free(v);

        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:5e:00.0", &v, &e), 0);
        assert_true(v->viable);
        assert_int_equal(v->members[1].role, GV_IOMMU_ROLE_VFIO);
        assert_int_equal(v->members[2].role, GV_IOMMU_ROLE_UNBOUND);
        assert_string_equal(gv_iommu_role_to_string(v->members[2].role), "unbound");
        v = gv_iommu_verdict_free(v);
        tree_free(t);
}

static void test_verdict_foreign(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_iommu_verdict *v = NULL;

        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:3b:00.0", &v, &e), 0);
        assert_false(v->viable);
        assert_int_equal(v->members[1].role, GV_IOMMU_ROLE_FOREIGN);
        assert_string_equal(v->reason,
                            "IOMMU group 17 also holds 0000:3c:00.0 (Ethernet controller, driver "
                            "ixgbe), which is not part of this GPU (0000:3b:00.0): pass-through "
                            "would give the VM that device too; move the GPU to another slot or "
                            "enable ACS.");
        v = gv_iommu_verdict_free(v);

        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:70:00.0", &v, &e), 0);
        assert_false(v->viable);
        assert_non_null(strstr(v->reason, "0000:71:00.0 (Ethernet controller, driver ixgbe) and "
                                          "0000:72:00.0 (SCSI storage controller, driver "
                                          "virtio-pci), which are not part"));
        v = gv_iommu_verdict_free(v);

        /* A member whose files are corrupt blocks too, and is named. */
        tree_pci_attr(t, "0000:3c:00.0", "class", "0x02\n");
        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:3b:00.0", &v, &e), 0);
        assert_false(v->viable);
        assert_int_equal(v->members[1].role, GV_IOMMU_ROLE_UNREADABLE);
        assert_non_null(strstr(v->reason, "0000:3c:00.0 (its sysfs files cannot be read"));
        v = gv_iommu_verdict_free(v);

        /* no IOMMU: an error, not a verdict */
        assert_int_equal(gv_iommu_check_assignment(t->fs, "0000:80:00.0", &v, &e), -ENODEV);
        assert_null(v);
        assert_non_null(strstr(e->msg, "intel_iommu=on"));
        tree_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_group_of),
                cmocka_unit_test(test_verdict_viable),
                cmocka_unit_test(test_verdict_foreign),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
