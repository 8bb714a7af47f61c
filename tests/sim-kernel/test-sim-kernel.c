/* SPDX-License-Identifier: MIT */
/*
 * The generated sysfs tree of every profile and the kernel mock's reactions to writes
 * (bind/unbind/driver_override/drivers_probe/new_id, sriov_numvfs, mdev create/remove,
 * current_vgpu_type, injected failures, paths outside a simulated host). Runs re-executed with
 * the kernel mock preloaded.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/sim-profile.h"
#include "host/sim-state.h"
#include "sim-fixture.h"
#include "sysfs/sim-sysfs-tree.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

/* ---------------------------------------------------------------- helpers */

static char *dev_path(const char *root, const char *bdf, const char *attr)
{
        return xasprintf("%s/sys/bus/pci/devices/%s/%s", root, bdf, attr);
}

/* One write() as sysfs users do; 0 or -errno. */
static int wr(const char *path, const char *value)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, value, strlen(value));
        int r = n < 0 ? -errno : 0;
        close(fd);
        return r;
}

static int wr_dev(const char *root, const char *bdf, const char *attr, const char *value)
{
        _cleanup_free_ char *p = dev_path(root, bdf, attr);
        return wr(p, value);
}

static int wr_drv(const char *root, const char *drv, const char *file, const char *value)
{
        _cleanup_free_ char *p = xasprintf("%s/sys/bus/pci/drivers/%s/%s", root, drv, file);
        return wr(p, value);
}

static int wr_probe(const char *root, const char *bdf)
{
        _cleanup_free_ char *p = xasprintf("%s/sys/bus/pci/drivers_probe", root);
        return wr(p, bdf);
}

static char *rd(const char *path)
{
        char *v = NULL;
        if (gv_read_line(path, &v) < 0)
                return NULL;
        return v;
}

static char *rd_dev(const char *root, const char *bdf, const char *attr)
{
        _cleanup_free_ char *p = dev_path(root, bdf, attr);
        return rd(p);
}

static char *driver(const char *root, const char *bdf)
{
        char *d = NULL;
        assert_int_equal(sim_sysfs_driver_of(root, bdf, &d), 0);
        return d ? d : xstrdup("");
}

static void assert_driver(const char *root, const char *bdf, const char *want)
{
        _cleanup_free_ char *d = driver(root, bdf);
        assert_string_equal(d, want);
}

static uint32_t rd_u32(const char *root, const char *bdf, const char *attr)
{
        _cleanup_free_ char *v = rd_dev(root, bdf, attr);
        assert_non_null(v);
        uint32_t x;
        assert_int_equal(gv_parse_u32(v, 0, &x), 0);
        return x;
}

static bool exists(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0;
}

static struct sim_state *lock_ex(const char *root)
{
        struct sim_state *s = NULL;
        assert_int_equal(sim_state_lock(root, SIM_LOCK_EXCLUSIVE, &s, NULL), 0);
        return s;
}

static void commit_unlock(struct sim_state *s)
{
        assert_int_equal(sim_state_commit(s, NULL), 0);
        sim_state_unlock(s);
}

/* ---------------------------------------------------------------- generated trees */

static void check_function(const char *root, const char *bdf, const struct sim_state *s)
{
        _cleanup_free_ char *dir = NULL;
        assert_int_equal(sim_sysfs_device_dir(root, bdf, &dir), 0);
        uint32_t vendor = rd_u32(root, bdf, "vendor");
        uint32_t device = rd_u32(root, bdf, "device");
        uint32_t class_code = rd_u32(root, bdf, "class");
        assert_true(vendor > 0 && vendor < 0xffff);
        assert_true(device > 0 && device <= 0xffff);
        assert_true(class_code > 0 && class_code <= 0xffffff);
        _cleanup_free_ char *cls = rd_dev(root, bdf, "class");
        assert_int_equal(strlen(cls), 8); /* "0x030200" */
        assert_true(gv_startswith(cls, "0x"));

        /* config header agrees with the attribute files */
        _cleanup_free_ char *cfgp = gv_path_join(dir, "config");
        _cleanup_free_ char *cfg = NULL;
        size_t len = 0;
        assert_int_equal(gv_read_file(cfgp, 4096, &cfg, &len), 0);
        assert_int_equal(len, 256);
        const uint8_t *c = (const uint8_t *)cfg;
        assert_int_equal(c[0] | c[1] << 8, vendor);
        assert_int_equal(c[2] | c[3] << 8, device);
        assert_int_equal(c[9] | c[10] << 8 | c[11] << 16, class_code);
        assert_int_equal(c[0x2c] | c[0x2d] << 8, rd_u32(root, bdf, "subsystem_vendor"));

        _cleanup_free_ char *ovr = rd_dev(root, bdf, "driver_override");
        assert_string_equal(ovr, "(null)");

        /* iommu_group resolves and lists the function */
        _cleanup_free_ char *gl = gv_path_join(dir, "iommu_group");
        _cleanup_free_ char *group = NULL;
        assert_int_equal(gv_readlink_basename(gl, &group), 0);
        _cleanup_free_ char *back = xasprintf("%s/sys/kernel/iommu_groups/%s/devices/%s", root,
                                              group, bdf);
        char a[PATH_MAX], b[PATH_MAX];
        assert_non_null(realpath(back, a));
        assert_non_null(realpath(dir, b));
        assert_string_equal(a, b);

        /* driver link resolves to a driver directory that links back */
        _cleanup_free_ char *drv = driver(root, bdf);
        if (*drv) {
                _cleanup_free_ char *dl = xasprintf("%s/sys/bus/pci/drivers/%s/%s", root, drv,
                                                    bdf);
                assert_non_null(realpath(dl, a));
                assert_string_equal(a, b);
        }
        (void)s;
}

static void test_profiles_generate(void **state)
{
        (void)state;
        for (const struct sim_profile *const *p = sim_profile_all(); *p; p++) {
                char *root = NULL;
                assert_int_equal(sim_fixture_create((*p)->name, &root), 0);
                struct sim_state *s = NULL;
                assert_int_equal(sim_state_lock(root, SIM_LOCK_SHARED, &s, NULL), 0);

                /* every profile function and every enabled VF */
                size_t n_gpus = 0;
                for (size_t i = 0; i < (*p)->n_devices; i++) {
                        const struct sim_profile_device *d = &(*p)->devices[i];
                        check_function(root, d->bdf, s);
                        _cleanup_free_ char *drv = driver(root, d->bdf);
                        assert_string_equal(drv, d->driver);
                        if (d->gpu_model) {
                                n_gpus++;
                                const struct sim_gpu *g = sim_gpu_by_bdf(s, d->bdf);
                                assert_non_null(g);
                                assert_int_equal(rd_u32(root, d->bdf, "device"),
                                                 g->model->pci_device);
                                assert_int_equal(rd_u32(root, d->bdf, "numa_node"),
                                                 (uint32_t)d->numa_node);
                        }
                }
                assert_int_equal(s->n_gpus, n_gpus);

                /* bus/pci/devices: every entry resolves */
                _cleanup_free_ char *bus = gv_path_join(root, "sys/bus/pci/devices");
                DIR *dir = opendir(bus);
                assert_non_null(dir);
                struct dirent *de;
                size_t n = 0;
                while ((de = readdir(dir))) {
                        if (de->d_name[0] == '.')
                                continue;
                        check_function(root, de->d_name, s);
                        n++;
                }
                closedir(dir);
                size_t vfs = 0;
                for (size_t i = 0; i < s->n_gpus; i++)
                        vfs += s->vgpu_interface != SIM_VGPU_NONE ?
                                       s->gpus[i].model->sriov_total_vfs : 0;
                assert_int_equal(n, (*p)->n_devices + vfs);
                sim_state_unlock(s);
                sim_fixture_destroy(root);
        }
}

static bool group_has(const char *root, unsigned group, const char *bdf)
{
        _cleanup_free_ char *p = xasprintf("%s/sys/kernel/iommu_groups/%u/devices/%s", root,
                                           group, bdf);
        return exists(p);
}

static void test_mixed_groups(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("mixed", &root), 0);
        /* consumer GPU and its HDMI audio share group 60; the audio ids come from the catalog */
        assert_true(group_has(root, 60, "0000:65:00.0"));
        assert_true(group_has(root, 60, "0000:65:00.1"));
        assert_driver(root, "0000:65:00.1", "snd_hda_intel");
        assert_int_equal(rd_u32(root, "0000:65:00.1", "class"), 0x040300);
        assert_int_equal(rd_u32(root, "0000:65:00.1", "device"), 0x1aef);
        /* function 0 says multi-function in its header type */
        _cleanup_free_ char *cfgp = dev_path(root, "0000:65:00.0", "config");
        _cleanup_free_ char *cfg = NULL;
        size_t len;
        assert_int_equal(gv_read_file(cfgp, 4096, &cfg, &len), 0);
        assert_int_equal((uint8_t)cfg[0x0e], 0x80);
        /* the A30 behind the non-ACS switch shares group 70 with the NIC */
        assert_true(group_has(root, 70, "0000:b1:00.0"));
        assert_true(group_has(root, 70, "0000:b2:00.0"));
        assert_driver(root, "0000:b2:00.0", "ixgbe");
        assert_false(group_has(root, 70, "0000:4b:00.0"));
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- binding */

static void to_vfio(const char *root, const char *bdf)
{
        assert_int_equal(wr_dev(root, bdf, "driver_override", "vfio-pci\n"), 0);
        assert_int_equal(wr_dev(root, bdf, "driver/unbind", bdf), 0);
        assert_int_equal(wr_probe(root, bdf), 0);
        assert_driver(root, bdf, "vfio-pci");
}

static void to_host(const char *root, const char *bdf, const char *host_driver)
{
        assert_int_equal(wr_dev(root, bdf, "driver_override", "\n"), 0);
        _cleanup_free_ char *ovr = rd_dev(root, bdf, "driver_override");
        assert_string_equal(ovr, "(null)");
        assert_int_equal(wr_dev(root, bdf, "driver/unbind", bdf), 0);
        assert_driver(root, bdf, "");
        assert_int_equal(wr_probe(root, bdf), 0);
        assert_driver(root, bdf, host_driver);
}

static void test_bind_group(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("mixed", &root), 0);
        const char *gpu = "0000:65:00.0", *audio = "0000:65:00.1";

        /* the whole group to vfio-pci with the driver_override sequence, and back */
        to_vfio(root, gpu);
        to_vfio(root, audio);
        _cleanup_free_ char *ovr = rd_dev(root, gpu, "driver_override");
        assert_string_equal(ovr, "vfio-pci");
        to_host(root, gpu, "nvidia");
        to_host(root, audio, "snd_hda_intel");

        /* kernel errors */
        assert_int_equal(wr_drv(root, "nvidia", "bind", gpu), -EBUSY);
        assert_int_equal(wr_drv(root, "vfio-pci", "unbind", gpu), -ENODEV);
        assert_int_equal(wr_drv(root, "nvidia", "bind", "0000:66:00.0"), -ENODEV);
        assert_int_equal(wr_probe(root, "0000:66:00.0"), -ENODEV);
        assert_int_equal(wr_drv(root, "nvidia", "unbind", gpu), 0);
        /* vfio-pci has no id table: without an override it does not take the device */
        assert_int_equal(wr_drv(root, "vfio-pci", "bind", gpu), -ENODEV);
        /* an override naming another driver keeps nvidia from binding */
        assert_int_equal(wr_dev(root, gpu, "driver_override", "vfio-pci"), 0);
        assert_int_equal(wr_drv(root, "nvidia", "bind", gpu), -ENODEV);
        assert_int_equal(wr_drv(root, "vfio-pci", "bind", gpu), 0);
        assert_driver(root, gpu, "vfio-pci");
        assert_int_equal(wr_drv(root, "vfio-pci", "unbind", gpu), 0);
        /* "none" keeps the device unbound through drivers_probe */
        assert_int_equal(wr_dev(root, gpu, "driver_override", "none"), 0);
        assert_int_equal(wr_probe(root, gpu), 0);
        assert_driver(root, gpu, "");
        assert_int_equal(wr_dev(root, gpu, "driver_override", ""), 0);

        /* new_id: vfio-pci takes every unbound device with that id */
        assert_int_equal(wr_drv(root, "vfio-pci", "new_id", "10de 2204"), 0);
        assert_driver(root, gpu, "vfio-pci");
        assert_int_equal(wr_drv(root, "vfio-pci", "new_id", "10de 2204"), -EEXIST);
        assert_int_equal(wr_drv(root, "vfio-pci", "new_id", "zz"), -EINVAL);
        assert_int_equal(wr_drv(root, "vfio-pci", "remove_id", "10de 2204"), 0);
        assert_int_equal(wr_drv(root, "vfio-pci", "remove_id", "10de 2204"), -ENODEV);
        assert_int_equal(wr_drv(root, "vfio-pci", "unbind", gpu), 0);
        assert_int_equal(wr_probe(root, gpu), 0);
        assert_driver(root, gpu, "nvidia");

        /* a rejected write leaves the old value: driver_override is not truncated by open */
        assert_int_equal(wr_dev(root, gpu, "driver_override", "vfio-pci"), 0);
        _cleanup_free_ char *big = xmalloc(5000);
        memset(big, 'x', 4999);
        big[4999] = 0;
        assert_int_equal(wr_dev(root, gpu, "driver_override", big), -EINVAL);
        _cleanup_free_ char *ovr2 = rd_dev(root, gpu, "driver_override");
        assert_string_equal(ovr2, "vfio-pci");
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- SR-IOV */

static void test_sriov_numvfs(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("l40s-4", &root), 0);
        const char *pf = "0000:3d:00.0";
        uint32_t total = rd_u32(root, pf, "sriov_totalvfs");
        assert_true(total >= 4);
        assert_int_equal(rd_u32(root, pf, "sriov_numvfs"), total);
        char vf0[16], vf3[16], vf4[16];
        assert_int_equal(sim_sysfs_vf_bdf(pf, 0, vf0), 0);
        assert_int_equal(sim_sysfs_vf_bdf(pf, 3, vf3), 0);
        assert_int_equal(sim_sysfs_vf_bdf(pf, 4, vf4), 0);
        assert_string_equal(vf0, "0000:3d:00.4");
        assert_string_equal(vf4, "0000:3d:01.0");

        /* N -> M with both nonzero is refused; above totalvfs is ERANGE; junk EINVAL */
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "2"), -EBUSY);
        _cleanup_free_ char *too_many = xasprintf("%u", total + 1);
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", too_many), -ERANGE);
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "abc"), -EINVAL);
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "0"), 0);
        assert_int_equal(rd_u32(root, pf, "sriov_numvfs"), 0);
        _cleanup_free_ char *vf0dev = xasprintf("%s/sys/bus/pci/devices/%s", root, vf0);
        _cleanup_free_ char *virtfn0 = dev_path(root, pf, "virtfn0");
        assert_false(exists(vf0dev));
        assert_false(exists(virtfn0));

        /* 0 -> 4: four VFs, each in its own group, bound to nvidia, linked both ways */
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "4\n"), 0);
        assert_true(exists(vf0dev));
        _cleanup_free_ char *vf4dev = xasprintf("%s/sys/bus/pci/devices/%s", root, vf4);
        assert_false(exists(vf4dev));
        assert_driver(root, vf3, "nvidia");
        _cleanup_free_ char *g0 = NULL, *g3 = NULL;
        _cleanup_free_ char *gl0 = dev_path(root, vf0, "iommu_group");
        _cleanup_free_ char *gl3 = dev_path(root, vf3, "iommu_group");
        assert_int_equal(gv_readlink_basename(gl0, &g0), 0);
        assert_int_equal(gv_readlink_basename(gl3, &g3), 0);
        assert_string_not_equal(g0, g3);
        _cleanup_free_ char *physfn = NULL;
        _cleanup_free_ char *pl = dev_path(root, vf3, "physfn");
        assert_int_equal(gv_readlink_basename(pl, &physfn), 0);
        assert_string_equal(physfn, pf);
        _cleanup_free_ char *vfn = NULL;
        _cleanup_free_ char *vl = dev_path(root, pf, "virtfn3");
        assert_int_equal(gv_readlink_basename(vl, &vfn), 0);
        assert_string_equal(vfn, vf3);
        _cleanup_free_ char *cvt = dev_path(root, vf0, "nvidia/current_vgpu_type");
        assert_true(exists(cvt));

        /* a vGPU on a VF keeps the VFs */
        struct sim_state *s = lock_ex(root);
        const struct sim_gpu *g = sim_gpu_by_bdf(s, pf);
        uint32_t type = g->model->vgpu_types[0].type_id;
        sim_state_unlock(s);
        _cleanup_free_ char *tstr = xasprintf("%u", type);
        assert_int_equal(wr(cvt, tstr), 0);
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "0"), -EBUSY);
        assert_int_equal(wr_drv(root, "nvidia", "unbind", pf), -EBUSY);
        assert_int_equal(wr(cvt, "0"), 0);

        /* sriov_drivers_autoprobe=0: new VFs come up without a driver */
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "0"), 0);
        _cleanup_free_ char *ap = dev_path(root, pf, "sriov_drivers_autoprobe");
        assert_int_equal(gv_write_file(ap, "0\n", 0), 0);
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "2"), 0);
        assert_driver(root, vf0, "");
        assert_false(exists(cvt)); /* no nvidia/ directory without the nvidia driver */
        assert_int_equal(wr_probe(root, vf0), 0);
        assert_driver(root, vf0, ""); /* drivers_probe does not autoprobe a VF either */
        assert_int_equal(wr_drv(root, "nvidia", "bind", vf0), -ENODEV);
        assert_int_equal(wr_dev(root, vf0, "driver_override", "nvidia"), 0);
        assert_int_equal(wr_probe(root, vf0), 0);
        assert_driver(root, vf0, "nvidia");
        assert_true(exists(cvt));

        /* unbinding the PF driver disables SR-IOV; no driver, no SR-IOV configuration */
        assert_int_equal(wr_drv(root, "nvidia", "unbind", pf), 0);
        assert_int_equal(rd_u32(root, pf, "sriov_numvfs"), 0);
        assert_false(exists(vf0dev));
        assert_int_equal(wr_dev(root, pf, "sriov_numvfs", "2"), -ENOENT);
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- mdev */

struct two_types {
        uint32_t a, b; /* time-sliced, different framebuffer, a with max_instances >= 2 */
};

static bool pick_types(const struct sim_state *s, const struct sim_gpu *g, struct two_types *t)
{
        const struct gv_gpu_model *m = g->model;
        const struct gv_vgpu_type *a = NULL, *b = NULL;
        for (size_t i = 0; i < m->n_vgpu_types; i++) {
                const struct gv_vgpu_type *ty = &m->vgpu_types[i];
                if (ty->gi_profile || sim_vgpu_creatable(s, g, ty->type_id) == 0)
                        continue;
                if (!a && ty->max_instances >= 2)
                        a = ty;
        }
        if (!a)
                return false;
        for (size_t i = 0; i < m->n_vgpu_types; i++) {
                const struct gv_vgpu_type *ty = &m->vgpu_types[i];
                if (!ty->gi_profile && ty->framebuffer_mib != a->framebuffer_mib &&
                    sim_vgpu_creatable(s, g, ty->type_id) > 0)
                        b = ty;
        }
        if (!b)
                return false;
        t->a = a->type_id;
        t->b = b->type_id;
        return true;
}

static char *type_file(const char *root, const char *parent, uint32_t type, const char *f)
{
        return xasprintf("%s/sys/bus/pci/devices/%s/mdev_supported_types/nvidia-%u/%s", root,
                         parent, type, f);
}

static uint32_t avail(const char *root, const char *parent, uint32_t type)
{
        _cleanup_free_ char *p = type_file(root, parent, type, "available_instances");
        _cleanup_free_ char *v = rd(p);
        assert_non_null(v);
        uint32_t n;
        assert_int_equal(gv_parse_u32(v, 10, &n), 0);
        return n;
}

static void set_vm(const char *root, const char *uuid, const char *vm)
{
        struct sim_state *s = lock_ex(root);
        struct sim_vgpu *v = sim_vgpu_by_uuid(s, uuid);
        assert_non_null(v);
        snprintf(v->vm_id, sizeof(v->vm_id), "%s", vm);
        commit_unlock(s);
}

static void test_mdev(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("dgx-a100", &root), 0);
        const char *pf = "0000:07:00.0";
        char vf0[16], vf1[16], vf2[16];
        assert_int_equal(sim_sysfs_vf_bdf(pf, 0, vf0), 0);
        assert_int_equal(sim_sysfs_vf_bdf(pf, 1, vf1), 0);
        assert_int_equal(sim_sysfs_vf_bdf(pf, 2, vf2), 0);

        struct sim_state *s = lock_ex(root);
        struct two_types t;
        bool have = pick_types(s, sim_gpu_by_bdf(s, pf), &t);
        sim_state_unlock(s);
        assert_true(have);

        _cleanup_free_ char *name = type_file(root, vf0, t.a, "name");
        _cleanup_free_ char *nm = rd(name);
        assert_true(gv_startswith(nm, "GRID "));
        _cleanup_free_ char *api_p = type_file(root, vf0, t.a, "device_api");
        _cleanup_free_ char *api = rd(api_p);
        assert_string_equal(api, "vfio-pci");
        _cleanup_free_ char *cls = xasprintf("%s/sys/class/mdev_bus/%s", root, vf0);
        assert_true(exists(cls));

        assert_int_equal(avail(root, vf0, t.a), 1);
        assert_int_equal(avail(root, vf1, t.b), 1);
        const char *u1 = "aa618089-8b16-4d01-a136-25a0f3c73123";
        _cleanup_free_ char *create0 = type_file(root, vf0, t.a, "create");
        assert_int_equal(wr(create0, u1), 0);

        _cleanup_free_ char *idir = xasprintf("%s/sys/bus/pci/devices/%s/%s", root, vf0, u1);
        _cleanup_free_ char *mtype = NULL;
        _cleanup_free_ char *mtl = gv_path_join(idir, "mdev_type");
        assert_int_equal(gv_readlink_basename(mtl, &mtype), 0);
        _cleanup_free_ char *want = xasprintf("nvidia-%u", t.a);
        assert_string_equal(mtype, want);
        _cleanup_free_ char *busl = xasprintf("%s/sys/bus/mdev/devices/%s", root, u1);
        char a[PATH_MAX], b[PATH_MAX];
        assert_non_null(realpath(busl, a));
        assert_non_null(realpath(idir, b));
        assert_string_equal(a, b);
        _cleanup_free_ char *devl = type_file(root, vf0, t.a, "devices/");
        _cleanup_free_ char *devlink = xasprintf("%s%s", devl, u1);
        assert_true(exists(devlink));

        /* one mdev per VF; the same type stays available on siblings, another size does not */
        assert_int_equal(avail(root, vf0, t.a), 0);
        assert_int_equal(avail(root, vf1, t.a), 1);
        assert_int_equal(avail(root, vf1, t.b), 0);
        _cleanup_free_ char *create1b = type_file(root, vf1, t.b, "create");
        int r = wr(create1b, "bb618089-8b16-4d01-a136-25a0f3c73123");
        assert_true(r == -EBUSY || r == -ENOSPC);
        _cleanup_free_ char *create1 = type_file(root, vf1, t.a, "create");
        assert_int_equal(wr(create1, u1), -EEXIST);
        assert_int_equal(wr(create1, "not-a-uuid"), -EINVAL);
        assert_int_equal(wr(create1, "zz618089-8b16-4d01-a136-25a0f3c73123"), -EINVAL);
        assert_int_equal(wr(create0, "cc618089-8b16-4d01-a136-25a0f3c73123\n"), -ENOSPC);

        /* remove: refused while a VM holds it */
        set_vm(root, u1, "vm-1");
        _cleanup_free_ char *rm = xasprintf("%s/sys/bus/mdev/devices/%s/remove", root, u1);
        assert_int_equal(wr(rm, "1"), -EBUSY);
        assert_true(exists(idir));
        set_vm(root, u1, "");
        assert_int_equal(wr(rm, "0"), 0);
        assert_true(exists(idir));
        assert_int_equal(wr(rm, "1\n"), 0);
        assert_false(exists(idir));
        assert_false(exists(busl));
        assert_int_equal(avail(root, vf0, t.a), 1);
        assert_int_equal(avail(root, vf1, t.b), 1);
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- vendor-VFIO */

static char *creatable(const char *root, const char *vf)
{
        _cleanup_free_ char *p = dev_path(root, vf, "nvidia/creatable_vgpu_types");
        char *v = NULL;
        assert_int_equal(gv_read_file(p, 1 << 20, &v, NULL), 0);
        return v;
}

static void test_vendor_vfio(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("dgx-h100", &root), 0);
        const char *pf = "0000:18:00.0";
        char vf0[16], vf1[16];
        assert_int_equal(sim_sysfs_vf_bdf(pf, 0, vf0), 0);
        assert_int_equal(sim_sysfs_vf_bdf(pf, 1, vf1), 0);

        struct sim_state *s = lock_ex(root);
        struct two_types t;
        const struct sim_gpu *g = sim_gpu_by_bdf(s, pf);
        bool have = pick_types(s, g, &t);
        const struct gv_vgpu_type *ta = gv_gpu_model_find_vgpu_type_id(g->model, t.a);
        const struct gv_vgpu_type *tb = gv_gpu_model_find_vgpu_type_id(g->model, t.b);
        _cleanup_free_ char *line_a = xasprintf("%-5u : NVIDIA %s\n", t.a, ta->name);
        _cleanup_free_ char *line_b = xasprintf("%-5u : NVIDIA %s\n", t.b, tb->name);
        uint32_t max_a = ta->max_instances;
        sim_state_unlock(s);
        assert_true(have);

        _cleanup_free_ char *c0 = creatable(root, vf0);
        assert_true(gv_startswith(c0, "ID    : vGPU Name\n"));
        assert_non_null(strstr(c0, line_a));
        assert_non_null(strstr(c0, line_b));
        _cleanup_free_ char *cur0 = rd_dev(root, vf0, "nvidia/current_vgpu_type");
        assert_string_equal(cur0, "0");

        _cleanup_free_ char *sa = xasprintf("%u\n", t.a), *sb = xasprintf("%u", t.b);
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", sa), 0);
        _cleanup_free_ char *cur1 = rd_dev(root, vf0, "nvidia/current_vgpu_type");
        _cleanup_free_ char *sa_nl = xasprintf("%u", t.a);
        assert_string_equal(cur1, sa_nl);
        /* the VF in use lists nothing; siblings list only the type in use */
        _cleanup_free_ char *c0b = creatable(root, vf0);
        assert_string_equal(c0b, "ID    : vGPU Name\n");
        _cleanup_free_ char *c1 = creatable(root, vf1);
        assert_non_null(strstr(c1, line_a));
        assert_null(strstr(c1, line_b));
        assert_int_equal(wr_dev(root, vf1, "nvidia/current_vgpu_type", sb), -EINVAL);
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", sb), -EBUSY);
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", "x"), -EINVAL);

        /* fill the GPU: a full card lists only the header on every free VF */
        for (uint32_t i = 1; i < max_a; i++) {
                char vf[16];
                assert_int_equal(sim_sysfs_vf_bdf(pf, i, vf), 0);
                assert_int_equal(wr_dev(root, vf, "nvidia/current_vgpu_type", sa), 0);
        }
        char next[16];
        assert_int_equal(sim_sysfs_vf_bdf(pf, max_a, next), 0);
        _cleanup_free_ char *cn = creatable(root, next);
        assert_string_equal(cn, "ID    : vGPU Name\n");
        assert_int_equal(wr_dev(root, next, "nvidia/current_vgpu_type", sa), -EINVAL);

        /* release: refused while a VM holds the VF */
        s = lock_ex(root);
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (strcmp(s->vgpus[i].parent_bdf, vf0) == 0)
                        snprintf(s->vgpus[i].vm_id, sizeof(s->vgpus[i].vm_id), "vm-7");
        commit_unlock(s);
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", "0"), -EBUSY);
        s = lock_ex(root);
        for (size_t i = 0; i < s->n_vgpus; i++)
                s->vgpus[i].vm_id[0] = 0;
        commit_unlock(s);
        for (uint32_t i = 0; i < max_a; i++) {
                char vf[16];
                assert_int_equal(sim_sysfs_vf_bdf(pf, i, vf), 0);
                assert_int_equal(wr_dev(root, vf, "nvidia/current_vgpu_type", "0\n"), 0);
        }
        _cleanup_free_ char *c1b = creatable(root, vf1);
        assert_non_null(strstr(c1b, line_b));
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- injection */

static void inject(const char *root, const char *op, int code, const char *target)
{
        struct sim_state *s = lock_ex(root);
        _cleanup_free_ char *call = xasprintf("sysfs:%s", op);
        assert_int_equal(sim_inject_add(s, call, code, -1, target, SIM_INJECT_ONCE), 0);
        commit_unlock(s);
}

static void test_inject(void **state)
{
        (void)state;
        char *root = NULL;
        assert_int_equal(sim_fixture_create("dgx-a100", &root), 0);
        const char *pf = "0000:07:00.0", *pf2 = "0000:0f:00.0";
        char vf0[16];
        assert_int_equal(sim_sysfs_vf_bdf(pf, 0, vf0), 0);

        /* a target that does not match leaves the write alone; the matching one fails once */
        inject(root, "driver_override", EPERM, pf2);
        assert_int_equal(wr_dev(root, pf, "driver_override", "vfio-pci"), 0);
        assert_int_equal(wr_dev(root, pf2, "driver_override", "vfio-pci"), -EPERM);
        _cleanup_free_ char *o2 = rd_dev(root, pf2, "driver_override");
        assert_string_equal(o2, "(null)");
        assert_int_equal(wr_dev(root, pf2, "driver_override", "vfio-pci"), 0);

        /* sriov_numvfs 0 first (so the PF can change drivers), then each op */
        inject(root, "sriov_numvfs", EIO, "");
        assert_int_equal(wr_dev(root, pf2, "sriov_numvfs", "0"), -EIO);
        assert_int_equal(wr_dev(root, pf2, "sriov_numvfs", "0"), 0);

        inject(root, "unbind", EBUSY, pf2);
        assert_int_equal(wr_drv(root, "nvidia", "unbind", pf2), -EBUSY);
        assert_driver(root, pf2, "nvidia");
        assert_int_equal(wr_drv(root, "nvidia", "unbind", pf2), 0);

        inject(root, "drivers_probe", ENOMEM, "");
        assert_int_equal(wr_probe(root, pf2), -ENOMEM);
        assert_driver(root, pf2, "");
        inject(root, "bind", EINVAL, pf2);
        assert_int_equal(wr_drv(root, "vfio-pci", "bind", pf2), -EINVAL);
        assert_int_equal(wr_drv(root, "vfio-pci", "bind", pf2), 0);
        assert_driver(root, pf2, "vfio-pci");

        struct sim_state *s = lock_ex(root);
        struct two_types t;
        bool have = pick_types(s, sim_gpu_by_bdf(s, pf), &t);
        sim_state_unlock(s);
        assert_true(have);
        const char *u = "dd618089-8b16-4d01-a136-25a0f3c73123";
        _cleanup_free_ char *create = type_file(root, vf0, t.a, "create");
        inject(root, "mdev_create", EDQUOT, vf0);
        assert_int_equal(wr(create, u), -EDQUOT);
        assert_int_equal(avail(root, vf0, t.a), 1);
        assert_int_equal(wr(create, u), 0);
        _cleanup_free_ char *rm = xasprintf("%s/sys/bus/mdev/devices/%s/remove", root, u);
        inject(root, "mdev_remove", EAGAIN, u);
        assert_int_equal(wr(rm, "1"), -EAGAIN);
        assert_true(exists(rm));
        assert_int_equal(wr(rm, "1"), 0);
        sim_fixture_destroy(root);

        /* current_vgpu_type on a vendor-VFIO host */
        assert_int_equal(sim_fixture_create("l40s-4", &root), 0);
        assert_int_equal(sim_sysfs_vf_bdf("0000:3d:00.0", 0, vf0), 0);
        s = lock_ex(root);
        uint32_t type = sim_gpu_by_bdf(s, "0000:3d:00.0")->model->vgpu_types[0].type_id;
        sim_state_unlock(s);
        _cleanup_free_ char *ts = xasprintf("%u", type);
        inject(root, "current_vgpu_type", ENOSPC, vf0);
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", ts), -ENOSPC);
        _cleanup_free_ char *cur = rd_dev(root, vf0, "nvidia/current_vgpu_type");
        assert_string_equal(cur, "0");
        assert_int_equal(wr_dev(root, vf0, "nvidia/current_vgpu_type", ts), 0);
        sim_fixture_destroy(root);
}

/* ---------------------------------------------------------------- outside a host */

static void test_outside_root(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-kmock-outside-XXXXXX";
        assert_non_null(mkdtemp(dir));
        /* control-file names outside a simulated host are plain files */
        static const char *const names[] = { "bind", "unbind", "driver_override",
                                             "sriov_numvfs", "current_vgpu_type", "create" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = gv_path_join(dir, names[i]);
                assert_int_equal(gv_write_file(p, "old", GV_WRITE_CREATE), 0);
                assert_int_equal(gv_write_file(p, "0000:99:00.0\n", GV_WRITE_CREATE), 0);
                _cleanup_free_ char *v = rd(p);
                assert_string_equal(v, "0000:99:00.0");
        }
        assert_int_equal(gv_rm_rf(dir), 0);

        /* inside a host, a non-control file is written as a plain file too */
        char *root = NULL;
        assert_int_equal(sim_fixture_create("l40s-4", &root), 0);
        _cleanup_free_ char *p = dev_path(root, "0000:3d:00.0", "reset_method");
        assert_int_equal(gv_write_file(p, "bus\n", GV_WRITE_CREATE), 0);
        _cleanup_free_ char *v = rd(p);
        assert_string_equal(v, "bus");
        sim_fixture_destroy(root);
}

int main(int argc, char **argv)
{
        sim_fixture_reexec_with_kmock(argc, argv);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_profiles_generate),
                cmocka_unit_test(test_mixed_groups),
                cmocka_unit_test(test_bind_group),
                cmocka_unit_test(test_sriov_numvfs),
                cmocka_unit_test(test_mdev),
                cmocka_unit_test(test_vendor_vfio),
                cmocka_unit_test(test_inject),
                cmocka_unit_test(test_outside_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
