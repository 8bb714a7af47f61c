/* SPDX-License-Identifier: MIT */
/* nvidia-vfio.c: the creatable_vgpu_types parser (vgpu.md §4), current_vgpu_type on a plain
 * tree (a file with no kernel behind it), and interface detection (vgpu.md §1). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hw/mdev.h"
#include "hw/nvidia-vfio.h"
#include "tree.h"
#include "util/alloc.h"

/* L40S VF, from vgpu.md §4 (HARV), abridged. */
static const char l40s[] = "ID    : vGPU Name\n"
                           "1145  : NVIDIA L40S-1B\n"
                           "1146  : NVIDIA L40S-2B\n"
                           "1155  : NVIDIA L40S-24Q\n"
                           "2164  : NVIDIA L40S-3B\n";

static void test_parse_good(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_nvidia_vgpu_type_list *l = NULL;

        assert_int_equal(gv_nvidia_parse_creatable_vgpu_types(l40s, "f", &l, &e), 0);
        assert_int_equal(l->n, 4);
        assert_int_equal(l->types[0].id, 1145);
        assert_string_equal(l->types[0].name, "NVIDIA L40S-1B");
        assert_int_equal(l->types[3].id, 2164);
        assert_string_equal(l->types[3].name, "NVIDIA L40S-3B");

        const struct gv_nvidia_vgpu_type *ty = NULL;
        assert_int_equal(gv_nvidia_vgpu_type_find(l, "vf", "L40S-24Q", &ty, &e), 0);
        assert_int_equal(ty->id, 1155);
        assert_int_equal(gv_nvidia_vgpu_type_find(l, "vf", "GRID L40S-2B", &ty, &e), 0);
        assert_int_equal(ty->id, 1146);
        assert_int_equal(gv_nvidia_vgpu_type_find(l, "vf", "2164", &ty, &e), 0);
        assert_int_equal(ty->id, 2164);
        assert_int_equal(gv_nvidia_vgpu_type_find(l, "0000:3d:00.4", "L40S-48Q", &ty, &e),
                         -ENOENT);
        assert_non_null(strstr(e->msg, "0000:3d:00.4 cannot create vGPU type 'L40S-48Q' now"));
        assert_non_null(strstr(e->msg, "1145 (NVIDIA L40S-1B), 1146 (NVIDIA L40S-2B)"));
        e = gv_error_free(e);
        l = gv_nvidia_vgpu_type_list_free(l);

        /* The single-space variant (KVDP) and 5-digit IDs; no trailing newline. */
        assert_int_equal(gv_nvidia_parse_creatable_vgpu_types(
                                 "ID    : vGPU Name\n1428 : NVIDIA H200X-141C\n"
                                 "12345 : NVIDIA H200X-1-18C",
                                 "f", &l, &e),
                         0);
        assert_int_equal(l->n, 2);
        assert_int_equal(l->types[0].id, 1428);
        assert_string_equal(l->types[1].name, "NVIDIA H200X-1-18C");
        assert_int_equal(l->types[1].id, 12345);
        l = gv_nvidia_vgpu_type_list_free(l);

        /* A fully used card: only the header. */
        assert_int_equal(gv_nvidia_parse_creatable_vgpu_types("ID    : vGPU Name\n", "f", &l, &e),
                         0);
        assert_int_equal(l->n, 0);
        l = gv_nvidia_vgpu_type_list_free(l);
}

static void test_parse_bad(void **state)
{
        (void)state;
        static const struct {
                const char *text;
                const char *want; /* in the message */
        } cases[] = {
                { "", "is empty" },
                { "1145  : NVIDIA L40S-1B\n", "line 1 is '1145  : NVIDIA L40S-1B'" },
                { "ID : vGPU Names\n", "line 1" },
                { "ID    : vGPU Name\n1145  : NVIDIA L40S-1B\n1146 NVIDIA L40S-2B\n",
                  "line 3 is '1146 NVIDIA L40S-2B'" },
                { "ID    : vGPU Name\n1145  :\n", "line 2" },
                { "ID    : vGPU Name\n1145  : \n", "line 2" },
                { "ID    : vGPU Name\n0     : NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n-1    : NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n11x5  : NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n1145:NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n 1145 : NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n1145  : NVIDIA X\x01\n", "line 2 is '1145  : NVIDIA X\\x01'" },
                { "ID    : vGPU Name\n1145  : NVIDIA X\n\n1146  : NVIDIA Y\n", "line 3 is ''" },
                { "ID    : vGPU Name\n99999999999 : NVIDIA X\n", "line 2" },
                { "ID    : vGPU Name\n1145  : NVIDIA X\n1145  : NVIDIA Y\n",
                  "line 3 lists type ID 1145 a second time" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                struct gv_nvidia_vgpu_type_list *l = NULL;
                int r = gv_nvidia_parse_creatable_vgpu_types(cases[i].text, "/x/types", &l, &e);
                if (r != -EBADMSG || !strstr(e->msg, cases[i].want) || l)
                        fail_msg("case %zu: r=%d msg=%s", i, r, e ? e->msg : "(none)");
                assert_non_null(strstr(e->msg, "'/x/types'"));
        }
}

static struct tree *host(void)
{
        struct tree *t = tree_new();
        tree_pci(t, "0000:3d:00.0", "0x10de\n", "0x26b9\n", "0x030200\n", "nvidia", 30);
        tree_pci_attr(t, "0000:3d:00.0", "sriov_totalvfs", "32\n");
        tree_pci_attr(t, "0000:3d:00.0", "sriov_numvfs", "2\n");
        tree_pci(t, "0000:3d:00.4", "0x10de\n", "0x26b9\n", "0x030200\n", "nvidia", 31);
        tree_pci(t, "0000:3d:00.5", "0x10de\n", "0x26b9\n", "0x030200\n", "nvidia", 32);
        tree_vf(t, "0000:3d:00.0", "0000:3d:00.4", 0);
        tree_vf(t, "0000:3d:00.0", "0000:3d:00.5", 1);
        tree_pci_attr(t, "0000:3d:00.4", "nvidia/creatable_vgpu_types", l40s);
        tree_pci_attr(t, "0000:3d:00.4", "nvidia/current_vgpu_type", "0\n");
        tree_pci_attr(t, "0000:3d:00.5", "nvidia/creatable_vgpu_types", "ID    : vGPU Name\n");
        tree_pci_attr(t, "0000:3d:00.5", "nvidia/current_vgpu_type", "0\n");

        /* an mdev GPU (PF with VFs carrying mdev types) and a plain one */
        tree_pci(t, "0000:41:00.0", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 40);
        tree_pci_attr(t, "0000:41:00.0", "sriov_totalvfs", "16\n");
        tree_pci_attr(t, "0000:41:00.0", "sriov_numvfs", "1\n");
        tree_pci(t, "0000:41:00.4", "0x10de\n", "0x20b5\n", "0x030200\n", "nvidia", 41);
        tree_vf(t, "0000:41:00.0", "0000:41:00.4", 0);
        tree_pci_attr(t, "0000:41:00.4", "mdev_supported_types/nvidia-700/name",
                      "GRID A100D-2-20C\n");
        tree_pci(t, "0000:01:00.0", "0x10de\n", "0x2684\n", "0x030000\n", "nvidia", 12);
        return t;
}

static void test_current_type(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        const char *cur = "devices/pci0000:00/0000:3d:00.4/nvidia/current_vgpu_type";
        uint32_t v = 99;

        assert_int_equal(gv_nvidia_current_vgpu_type(t->fs, "0000:3d:00.4", &v, &e), 0);
        assert_int_equal(v, 0);

        /* not creatable now: refused before anything is written, with the creatable list */
        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.4", 1156, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "cannot create vGPU type 1156 now; creatable: 1145"));
        e = gv_error_free(e);
        _cleanup_free_ char *s = tree_read(t, cur);
        assert_string_equal(s, "0\n");

        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.4", 1155, &e), 0);
        free(s);
        s = tree_read(t, cur);
        assert_string_equal(s, "1155");
        assert_int_equal(gv_nvidia_current_vgpu_type(t->fs, "0000:3d:00.4", &v, &e), 0);
        assert_int_equal(v, 1155);
        /* idempotent; another type is refused: one vGPU per VF */
        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.4", 1155, &e), 0);
        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.4", 1145, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "already holds vGPU type 1155"));
        e = gv_error_free(e);

        assert_int_equal(gv_nvidia_clear_vgpu_type(t->fs, "0000:3d:00.4", &e), 0);
        free(s);
        s = tree_read(t, cur);
        assert_string_equal(s, "0");
        assert_int_equal(gv_nvidia_clear_vgpu_type(t->fs, "0000:3d:00.4", &e), 0);

        /* full card */
        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.5", 1145, &e), -ENOSPC);
        assert_non_null(strstr(e->msg, "lists none"));
        e = gv_error_free(e);
        assert_int_equal(gv_nvidia_set_vgpu_type(t->fs, "0000:3d:00.5", 0, &e), -EINVAL);
        e = gv_error_free(e);

        /* not a vendor-VFIO VF */
        assert_int_equal(gv_nvidia_current_vgpu_type(t->fs, "0000:01:00.0", &v, &e), -ENODEV);
        assert_non_null(strstr(e->msg, "has no vendor-VFIO vGPU files"));
        e = gv_error_free(e);

        /* corrupt current_vgpu_type */
        tree_pci_attr(t, "0000:3d:00.4", "nvidia/current_vgpu_type", "11x\n");
        assert_int_equal(gv_nvidia_current_vgpu_type(t->fs, "0000:3d:00.4", &v, &e), -EBADMSG);
        assert_non_null(strstr(e->msg, "holds '11x'"));
        tree_free(t);
}

static void test_interface(void **state)
{
        (void)state;
        struct tree *t = host();
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        enum gv_vgpu_interface i = _GV_VGPU_INTERFACE_INVALID;

        assert_int_equal(gv_nvidia_vgpu_interface(t->fs, "0000:3d:00.0", &i, &e), 0);
        assert_int_equal(i, GV_VGPU_INTERFACE_VENDOR_VFIO);
        assert_int_equal(gv_nvidia_vgpu_interface(t->fs, "0000:3d:00.5", &i, &e), 0);
        assert_int_equal(i, GV_VGPU_INTERFACE_VENDOR_VFIO);
        assert_int_equal(gv_nvidia_vgpu_interface(t->fs, "0000:41:00.0", &i, &e), 0);
        assert_int_equal(i, GV_VGPU_INTERFACE_MDEV);
        assert_int_equal(gv_nvidia_vgpu_interface(t->fs, "0000:01:00.0", &i, &e), 0);
        assert_int_equal(i, GV_VGPU_INTERFACE_NONE);
        assert_string_equal(gv_vgpu_interface_to_string(GV_VGPU_INTERFACE_VENDOR_VFIO),
                            "vendor-vfio");
        assert_int_equal(gv_vgpu_interface_from_string("mdev"), GV_VGPU_INTERFACE_MDEV);
        assert_int_equal(gv_vgpu_interface_from_string("vfio"), -EINVAL);
        tree_free(t);
}

static void test_name_match(void **state)
{
        (void)state;
        assert_true(gv_vgpu_name_matches("GRID A100D-2-20C", "A100D-2-20C"));
        assert_true(gv_vgpu_name_matches("NVIDIA A100D-2-20C", "GRID A100D-2-20C"));
        assert_false(gv_vgpu_name_matches("GRID A100D-2-20C", "A100D-2-20"));
        assert_false(gv_vgpu_name_matches("GRID A100D-2-20C", "A100D-2-20CME"));
        assert_false(gv_vgpu_name_matches("", ""));
        assert_false(gv_vgpu_name_matches(NULL, "x"));
        assert_string_equal(gv_vgpu_name_short("NVIDIA L40S-1B"), "L40S-1B");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_current_type), cmocka_unit_test(test_interface),
                cmocka_unit_test(test_name_match),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
