/* SPDX-License-Identifier: MIT */
/*
 * fuzz-sysfs — every sysfs text the hardware layer parses (src/hw), read from a small sysfs
 * tree whose files hold the input: one SR-IOV VF of an NVIDIA GPU (0000:41:00.4) that is both an
 * mdev parent and a vendor-VFIO VF, as the simulator lays them out (sim/sysfs).
 *
 * The input is split at the byte 0x1e (ASCII record separator) into fields; field i becomes
 * the file in files[i] (a field that is not there: the file is absent, which the optional
 * readers must take). The last field is also given, as a string, to the pure parsers (PCI
 * address, UUID, sizes, numbers) and to the vGPU type lookups. creatable_vgpu_types is also
 * parsed straight from memory (gv_nvidia_parse_creatable_vgpu_types).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "hw/mdev.h"
#include "hw/nvidia-vfio.h"
#include "hw/pci.h"
#include "hw/sriov.h"
#include "hw/sysfs.h"
#include "util/alloc.h"
#include "util/parse.h"
#include "util/strv.h"

#define BDF "0000:41:00.4"
#define MDEV_TYPE "nvidia-700"
#define SEP 0x1e

/* Relative to <root>/sys. A name starting with '@' is a symbolic link whose target ends in
 * the field ("../../../kernel/iommu_groups/<field>"). */
static const char *const files[] = {
        "bus/pci/devices/" BDF "/nvidia/creatable_vgpu_types",
        "bus/pci/devices/" BDF "/nvidia/current_vgpu_type",
        "class/mdev_bus/" BDF "/mdev_supported_types/" MDEV_TYPE "/name",
        "class/mdev_bus/" BDF "/mdev_supported_types/" MDEV_TYPE "/available_instances",
        "class/mdev_bus/" BDF "/mdev_supported_types/" MDEV_TYPE "/device_api",
        "class/mdev_bus/" BDF "/mdev_supported_types/" MDEV_TYPE "/description",
        "bus/pci/devices/" BDF "/vendor",
        "bus/pci/devices/" BDF "/device",
        "bus/pci/devices/" BDF "/class",
        "bus/pci/devices/" BDF "/numa_node",
        "bus/pci/devices/" BDF "/reset_method",
        "bus/pci/devices/" BDF "/sriov_totalvfs",
        "bus/pci/devices/" BDF "/sriov_numvfs",
        "bus/pci/devices/" BDF "/driver_override",
        "bus/pci/devices/" BDF "/subsystem_vendor",
        "@bus/pci/devices/" BDF "/iommu_group",
};
#define N_FILES ELEMENTSOF(files)

static struct gv_sysfs *fs;
static char *sys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        const char *root = fuzz_tmpdir("sysfs");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        static const char *const dirs[] = {
                "sys", "sys/bus", "sys/bus/pci", "sys/bus/pci/devices",
                "sys/bus/pci/devices/" BDF, "sys/bus/pci/devices/" BDF "/nvidia", "sys/class",
                "sys/class/mdev_bus", "sys/class/mdev_bus/" BDF,
                "sys/class/mdev_bus/" BDF "/mdev_supported_types",
                "sys/class/mdev_bus/" BDF "/mdev_supported_types/" MDEV_TYPE, "sys/bus/mdev",
                "sys/bus/mdev/devices", "sys/kernel", "sys/kernel/iommu_groups",
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *d = xasprintf("%s/%s", root, dirs[i]);
                if (mkdir(d, 0700) < 0)
                        fuzz_fail("mkdir '%s': %s", d, strerror(errno));
        }
        if (gv_sysfs_new(root, &fs, &e) < 0)
                fuzz_fail("gv_sysfs_new: %s", gv_error_msg(e, -EIO));
        sys = xasprintf("%s/sys", root);
        return 0;
}

static void put(size_t i, const uint8_t *data, size_t size, bool present)
{
        bool link = files[i][0] == '@';
        _cleanup_free_ char *p = xasprintf("%s/%s", sys, files[i] + (link ? 1 : 0));
        (void)unlink(p);
        if (!present)
                return;
        if (!link) {
                fuzz_write_file(sys, files[i], data, size);
                return;
        }
        /* A link target is a C string: cut at a NUL. */
        _cleanup_free_ char *f = fuzz_strndup(data, size);
        _cleanup_free_ char *target = xasprintf("../../../kernel/iommu_groups/%s", f);
        if (symlink(target, p) < 0 && errno != ENAMETOOLONG)
                fuzz_fail("symlink '%s': %s", p, strerror(errno));
}

static void pure_parsers(const char *s)
{
        union {
                uint64_t u64;
                uint32_t u32;
                uint16_t u16;
                uint8_t u8;
                int64_t i64;
                int i;
                bool b;
        } v;
        struct gv_uuid u;
        struct gv_pci_addr a;
        char buf[64];
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        for (unsigned base = 0; base <= 16; base += 8) {
                (void)gv_parse_u64(s, base, &v.u64);
                (void)gv_parse_u32(s, base, &v.u32);
                (void)gv_parse_u16(s, base, &v.u16);
                (void)gv_parse_u8(s, base, &v.u8);
        }
        (void)gv_parse_i64(s, &v.i64);
        (void)gv_parse_int(s, &v.i);
        (void)gv_parse_bool(s, &v.b);
        (void)gv_parse_size(s, &v.u64);
        (void)gv_name_is_valid(s);
        if (gv_parse_uuid(s, &u) >= 0) {
                struct gv_uuid u2;
                gv_uuid_format(&u, buf);
                if (gv_parse_uuid(buf, &u2) < 0 || memcmp(&u, &u2, sizeof(u)) != 0)
                        fuzz_fail("UUID '%s' formatted as '%s' does not parse back", s, buf);
        }
        if (gv_parse_pci_addr(s, &a) >= 0) {
                struct gv_pci_addr a2;
                _Static_assert(sizeof(buf) >= GV_PCI_ADDR_STR_MAX, "buffer");
                gv_pci_addr_format(&a, buf);
                if (gv_parse_pci_addr(buf, &a2) < 0 || !gv_pci_addr_equal(&a, &a2))
                        fuzz_fail("PCI address '%s' formatted as '%s' does not parse back", s,
                                  buf);
        }
        char bdf[GV_PCI_ADDR_STR_MAX];
        (void)gv_pci_canonical_bdf(s, bdf, &e);
        e = gv_error_free(e);
        free(gv_sysfs_escape(s));
        (void)gv_vgpu_name_short(s);
        (void)gv_vgpu_name_matches("NVIDIA L40S-1B", s);
        (void)gv_vgpu_name_matches(s, "L40S-1B");
}

static void readers(const char *wanted)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        struct gv_nvidia_vgpu_type_list *vl = NULL;
        if (gv_nvidia_read_creatable_vgpu_types(fs, BDF, &vl, &e) >= 0) {
                const struct gv_nvidia_vgpu_type *t;
                _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
                (void)gv_nvidia_vgpu_type_find(vl, BDF, wanted, &t, &e2);
                gv_nvidia_vgpu_type_list_free(vl);
        }
        e = gv_error_free(e);

        uint32_t cur;
        (void)gv_nvidia_current_vgpu_type(fs, BDF, &cur, &e);
        e = gv_error_free(e);

        struct gv_mdev_type_list *ml = NULL;
        if (gv_mdev_list_types(fs, BDF, &ml, &e) >= 0) {
                const struct gv_mdev_type *t;
                _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
                (void)gv_mdev_type_find(ml, BDF, wanted, &t, &e2);
                gv_mdev_type_list_free(ml);
        }
        e = gv_error_free(e);

        struct gv_pci_device *d = NULL;
        if (gv_pci_device_read(fs, BDF, &d, &e) >= 0) {
                (void)gv_pci_device_is_nvidia_gpu(d);
                (void)gv_pci_class_name(d->class_code);
                gv_pci_device_free(d);
        }
        e = gv_error_free(e);

        struct gv_pci_inventory *inv = NULL;
        if (gv_pci_enumerate(fs, 0, &inv, &e) >= 0)
                gv_pci_inventory_free(inv);
        e = gv_error_free(e);

        struct gv_sriov_info si;
        (void)gv_sriov_read(fs, BDF, &si, &e);
        e = gv_error_free(e);

        enum gv_vgpu_interface vi;
        (void)gv_nvidia_vgpu_interface(fs, BDF, &vi, &e);
        e = gv_error_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *field[N_FILES + 1];
        size_t len[N_FILES + 1], n = 0;
        const uint8_t *p = data, *end = data + size;

        /* Fields 0..N_FILES-1 are files; what follows the last separator is the string for
         * the pure parsers. */
        while (n < N_FILES + 1) {
                const uint8_t *sep = n < N_FILES ? memchr(p, SEP, (size_t)(end - p)) : NULL;
                field[n] = p;
                len[n] = sep ? (size_t)(sep - p) : (size_t)(end - p);
                n++;
                if (!sep)
                        break;
                p = sep + 1;
        }
        for (size_t i = 0; i < N_FILES; i++)
                put(i, i < n ? field[i] : NULL, i < n ? len[i] : 0, i < n);

        /* The first field straight from memory too (the reader stops at a NUL). */
        _cleanup_free_ char *text = fuzz_strndup(field[0], len[0]);
        struct gv_nvidia_vgpu_type_list *l = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_nvidia_parse_creatable_vgpu_types(text, NULL, &l, &e) >= 0) {
                for (size_t i = 0; i < l->n; i++)
                        if (l->types[i].id == 0 || !l->types[i].name)
                                fuzz_fail("creatable_vgpu_types gave type %zu without an ID or "
                                          "name", i);
                gv_nvidia_vgpu_type_list_free(l);
        }

        _cleanup_free_ char *last = n == N_FILES + 1 ? fuzz_strndup(field[N_FILES], len[N_FILES])
                                                     : xstrdup("L40S-1B");
        pure_parsers(last);
        readers(last);
        return 0;
}
