/* SPDX-License-Identifier: MIT */
/* Write paths on simulated hosts, with the kernel mock (sim/kmock) preloaded: whole-group
 * vfio-pci binding and back on `mixed`, the refusal on its group with a foreign NIC, SR-IOV on
 * and off on `dgx-a100`, mdev create/remove on `dgx-a100`, vendor-VFIO set/clear on
 * `dgx-h100`; and every injected kernel failure gives an error naming the function and step and
 * leaves nothing half done. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "host/sim-state.h"
#include "hw/driver.h"
#include "hw/mdev.h"
#include "hw/nvidia-vfio.h"
#include "hw/pci.h"
#include "hw/sriov.h"
#include "sim-fixture.h"
#include "util/alloc.h"
#include "util/strv.h"

struct host {
        char *root;
        struct gv_sysfs *fs;
};

static struct host *host_new(const char *profile)
{
        struct host *h = xnew0(struct host, 1);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(sim_fixture_create(profile, &h->root), 0);
        if (gv_sysfs_new(h->root, &h->fs, &e) < 0)
                fail_msg("%s", e->msg);
        return h;
}

static void host_free(struct host *h)
{
        gv_sysfs_free(h->fs);
        sim_fixture_destroy(h->root);
        free(h);
}

/* One injected kernel failure: call "sysfs:<op>", errno code, target BDF/UUID. */
static void inject(const struct host *h, const char *op, int code, const char *target)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct sim_state *s = NULL;
        if (sim_state_lock(h->root, SIM_LOCK_EXCLUSIVE, &s, &e) < 0)
                fail_msg("%s", e->msg);
        assert_true(s->n_inject < SIM_MAX_INJECT);
        struct sim_inject *in = &s->inject[s->n_inject++];
        memset(in, 0, sizeof(*in));
        snprintf(in->call, sizeof(in->call), "sysfs:%s", op);
        in->code = code;
        in->gpu = -1;
        snprintf(in->target, sizeof(in->target), "%s", target ? target : "");
        in->mode = SIM_INJECT_ONCE;
        if (sim_state_commit(s, &e) < 0)
                fail_msg("%s", e->msg);
        sim_state_unlock(s);
}

static void assert_driver(const struct host *h, const char *bdf, const char *want)
{
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_pci_device_read(h->fs, bdf, &d, &e) < 0)
                fail_msg("%s", e->msg);
        if (!want ? d->driver != NULL : !d->driver || strcmp(d->driver, want) != 0)
                fail_msg("%s: driver %s, expected %s", bdf, d->driver ? d->driver : "none",
                         want ? want : "none");
}

static void assert_override(const struct host *h, const char *bdf, const char *want)
{
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (gv_pci_device_read(h->fs, bdf, &d, &e) < 0)
                fail_msg("%s", e->msg);
        if (!want ? d->driver_override != NULL
                  : !d->driver_override || strcmp(d->driver_override, want) != 0)
                fail_msg("%s: driver_override %s, expected %s", bdf,
                         d->driver_override ? d->driver_override : "none", want ? want : "none");
}

#define GEFORCE "0000:65:00.0"
#define GEFORCE_AUDIO "0000:65:00.1"
#define A30_WITH_NIC "0000:b1:00.0"
#define NIC "0000:b2:00.0"

static void assert_mixed_pristine(const struct host *h)
{
        assert_driver(h, GEFORCE, "nvidia");
        assert_driver(h, GEFORCE_AUDIO, "snd_hda_intel");
        assert_override(h, GEFORCE, NULL);
        assert_override(h, GEFORCE_AUDIO, NULL);
}

static void test_bind_group_and_back(void **state)
{
        (void)state;
        struct host *h = host_new("mixed");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *b = NULL;

        assert_mixed_pristine(h);
        if (gv_driver_bind_vfio(h->fs, GEFORCE, &b, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(b->group, 60);
        assert_int_equal(b->n_functions, 2);
        assert_string_equal(b->functions[0].bdf, GEFORCE);
        assert_string_equal(b->functions[0].original_driver, "nvidia");
        assert_true(b->functions[0].moved);
        assert_string_equal(b->functions[1].bdf, GEFORCE_AUDIO);
        assert_string_equal(b->functions[1].original_driver, "snd_hda_intel");
        assert_true(b->functions[1].moved);
        assert_driver(h, GEFORCE, "vfio-pci");
        assert_driver(h, GEFORCE_AUDIO, "vfio-pci");
        assert_override(h, GEFORCE, "vfio-pci");

        /* Binding again is a no-op: everything is on vfio-pci. */
        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *again = NULL;
        if (gv_driver_bind_vfio(h->fs, GEFORCE, &again, &e) < 0)
                fail_msg("%s", e->msg);
        assert_false(again->functions[0].moved);
        assert_false(again->functions[1].moved);

        if (gv_driver_restore(h->fs, b, &e) < 0)
                fail_msg("%s", e->msg);
        assert_mixed_pristine(h);
        host_free(h);
}

static void test_bind_refused_foreign(void **state)
{
        (void)state;
        struct host *h = host_new("mixed");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vfio_binding *b = NULL;

        assert_int_equal(gv_driver_bind_vfio(h->fs, A30_WITH_NIC, &b, &e), -EBUSY);
        assert_null(b);
        assert_non_null(strstr(e->msg, "IOMMU group 70 also holds " NIC
                                       " (Ethernet controller, driver ixgbe), which is not part "
                                       "of this GPU (" A30_WITH_NIC ")"));
        assert_driver(h, A30_WITH_NIC, "nvidia");
        assert_driver(h, NIC, "ixgbe");
        assert_override(h, A30_WITH_NIC, NULL);
        host_free(h);
}

static void test_bind_injected(void **state)
{
        (void)state;
        static const struct {
                const char *op, *target, *step;
                int code;
        } cases[] = {
                /* the second function fails: the first one is rolled back */
                { "drivers_probe", GEFORCE_AUDIO, "failed at step 'drivers_probe'", EIO },
                { "unbind", GEFORCE_AUDIO, "failed at step 'unbind from snd_hda_intel'", EBUSY },
                { "driver_override", GEFORCE_AUDIO, "failed at step 'write driver_override'",
                  EINVAL },
                /* the first function fails: nothing moved */
                { "unbind", GEFORCE, "failed at step 'unbind from nvidia'", EBUSY },
                { "drivers_probe", GEFORCE, "failed at step 'drivers_probe'", ENODEV },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct host *h = host_new("mixed");
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                struct gv_vfio_binding *b = NULL;

                inject(h, cases[i].op, cases[i].code, cases[i].target);
                int r = gv_driver_bind_vfio(h->fs, GEFORCE, &b, &e);
                if (r != -cases[i].code)
                        fail_msg("case %zu: r=%d %s", i, r, e ? e->msg : "");
                assert_null(b);
                _cleanup_free_ char *who = xasprintf("Binding %s to vfio-pci %s", cases[i].target,
                                                     cases[i].step);
                if (!strstr(e->msg, who))
                        fail_msg("case %zu: '%s' not in: %s", i, who, e->msg);
                if (strcmp(cases[i].target, GEFORCE_AUDIO) == 0)
                        assert_non_null(strstr(e->msg, GEFORCE " went back to its original "
                                                       "driver"));
                else
                        assert_non_null(strstr(e->msg, "nothing changed"));
                assert_mixed_pristine(h);
                host_free(h);
        }
}

static void test_restore_injected(void **state)
{
        (void)state;
        struct host *h = host_new("mixed");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *b = NULL;

        if (gv_driver_bind_vfio(h->fs, GEFORCE, &b, &e) < 0)
                fail_msg("%s", e->msg);
        /* the audio function cannot leave vfio-pci now; the GPU still goes back */
        inject(h, "unbind", EBUSY, GEFORCE_AUDIO);
        assert_int_equal(gv_driver_restore(h->fs, b, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "Giving " GEFORCE_AUDIO " back to snd_hda_intel failed at "
                                       "step 'unbind from vfio-pci'"));
        e = gv_error_free(e);
        assert_driver(h, GEFORCE, "nvidia");
        assert_driver(h, GEFORCE_AUDIO, "vfio-pci");
        /* retrying finishes the job (the GPU is back already and is skipped) */
        if (gv_driver_restore(h->fs, b, &e) < 0)
                fail_msg("%s", e->msg);
        assert_mixed_pristine(h);
        host_free(h);
}

static void test_sriov(void **state)
{
        (void)state;
        struct host *h = host_new("dgx-a100");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        const char *pf = "0000:07:00.0";
        struct gv_sriov_info info;
        char **vfs = NULL;

        if (gv_sriov_read(h->fs, pf, &info, &e) < 0)
                fail_msg("%s", e->msg);
        assert_true(info.total_vfs >= 8);
        assert_int_equal(info.num_vfs, info.total_vfs); /* vGPU hosts enable every VF */
        uint32_t total = info.total_vfs;

        if (gv_sriov_set_numvfs(h->fs, pf, 0, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_sriov_list_vfs(h->fs, pf, &vfs, &e), 0);
        assert_int_equal(strv_length(vfs), 0);
        vfs = strv_free(vfs);

        if (gv_sriov_set_numvfs(h->fs, pf, 4, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_sriov_list_vfs(h->fs, pf, &vfs, &e), 0);
        assert_int_equal(strv_length(vfs), 4);
        _cleanup_free_ char *physfn = NULL;
        assert_int_equal(gv_sriov_physfn(h->fs, vfs[3], &physfn, &e), 1);
        assert_string_equal(physfn, pf);
        vfs = strv_free(vfs);

        /* 4 -> 2 goes through 0 (the kernel refuses N -> M) */
        if (gv_sriov_set_numvfs(h->fs, pf, 2, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_sriov_read(h->fs, pf, &info, &e), 0);
        assert_int_equal(info.num_vfs, 2);

        assert_int_equal(gv_sriov_set_numvfs(h->fs, pf, total + 1, &e), -EINVAL);
        e = gv_error_free(e);

        /* injected: the first write (0) fails, nothing changed */
        inject(h, "sriov_numvfs", ENOMEM, pf);
        assert_int_equal(gv_sriov_set_numvfs(h->fs, pf, 6, &e), -ENOMEM);
        assert_non_null(strstr(e->msg, "Changing " "0000:07:00.0" " from 2 to 6 VFs failed at "
                                       "step 'disable VFs' (nothing changed)"));
        e = gv_error_free(e);
        assert_int_equal(gv_sriov_read(h->fs, pf, &info, &e), 0);
        assert_int_equal(info.num_vfs, 2);

        /* from 0, enabling fails: still 0 */
        if (gv_sriov_set_numvfs(h->fs, pf, 0, &e) < 0)
                fail_msg("%s", e->msg);
        inject(h, "sriov_numvfs", EIO, pf);
        assert_int_equal(gv_sriov_set_numvfs(h->fs, pf, 3, &e), -EIO);
        assert_non_null(strstr(e->msg, "It is back at 0 VFs."));
        e = gv_error_free(e);
        assert_int_equal(gv_sriov_list_vfs(h->fs, pf, &vfs, &e), 0);
        assert_int_equal(strv_length(vfs), 0);
        vfs = strv_free(vfs);
        host_free(h);
}

/* First parent with a type that has room; borrowed from *ret_types. */
static const struct gv_mdev_type *pick_type(const struct host *h, char **ret_parent,
                                            struct gv_mdev_type_list **ret_types)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_strv_free_ char **parents = NULL;
        assert_int_equal(gv_mdev_list_parents(h->fs, &parents, &e), 0);
        assert_true(strv_length(parents) > 0);
        STRV_FOREACH(p, parents) {
                struct gv_mdev_type_list *l = NULL;
                if (gv_mdev_list_types(h->fs, *p, &l, &e) < 0)
                        fail_msg("%s", e->msg);
                for (size_t i = 0; i < l->n; i++)
                        if (l->types[i].available_instances > 0) {
                                *ret_parent = xstrdup(*p);
                                *ret_types = l;
                                return &l->types[i];
                        }
                gv_mdev_type_list_free(l);
        }
        fail_msg("no mdev type with room");
        return NULL;
}

static void test_mdev(void **state)
{
        (void)state;
        struct host *h = host_new("dgx-a100");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *parent = NULL;
        _cleanup_(gv_mdev_type_list_freep) struct gv_mdev_type_list *types = NULL;
        const struct gv_mdev_type *ty = pick_type(h, &parent, &types);
        char uuid[GV_UUID_STR_LEN + 1];

        /* found again by its name's last token */
        const struct gv_mdev_type *again = NULL;
        assert_non_null(ty->name);
        assert_int_equal(gv_mdev_type_find(types, parent, gv_vgpu_name_short(ty->name), &again,
                                           &e),
                         0);
        assert_ptr_equal(again, ty);

        if (gv_mdev_create(h->fs, parent, ty->id, NULL, uuid, &e) < 0)
                fail_msg("%s", e->msg);
        struct gv_mdev_instance_list *insts = NULL;
        assert_int_equal(gv_mdev_list_instances(h->fs, &insts, &e), 0);
        assert_int_equal(insts->n, 1);
        assert_string_equal(insts->instances[0].uuid, uuid);
        assert_string_equal(insts->instances[0].parent, parent);
        assert_string_equal(insts->instances[0].type_id, ty->id);
        insts = gv_mdev_instance_list_free(insts);

        /* one mdev per VF (vgpu.md §2): the same type on the same VF has no room now */
        char uuid2[GV_UUID_STR_LEN + 1];
        assert_int_equal(gv_mdev_create(h->fs, parent, ty->id, NULL, uuid2, &e), -ENOSPC);
        e = gv_error_free(e);

        /* injected remove failure: the mdev stays, the error says it is in use */
        inject(h, "mdev_remove", EBUSY, uuid);
        assert_int_equal(gv_mdev_remove(h->fs, uuid, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "it is in use"));
        e = gv_error_free(e);
        assert_int_equal(gv_mdev_list_instances(h->fs, &insts, &e), 0);
        assert_int_equal(insts->n, 1);
        insts = gv_mdev_instance_list_free(insts);

        if (gv_mdev_remove(h->fs, uuid, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_mdev_list_instances(h->fs, &insts, &e), 0);
        assert_int_equal(insts->n, 0);
        insts = gv_mdev_instance_list_free(insts);

        /* injected create failure: no device left behind */
        inject(h, "mdev_create", EIO, parent);
        assert_int_equal(gv_mdev_create(h->fs, parent, ty->id, NULL, uuid, &e), -EIO);
        assert_non_null(strstr(e->msg, "Creating mediated device"));
        e = gv_error_free(e);
        assert_int_equal(gv_mdev_list_instances(h->fs, &insts, &e), 0);
        assert_int_equal(insts->n, 0);
        insts = gv_mdev_instance_list_free(insts);

        enum gv_vgpu_interface vi;
        assert_int_equal(gv_nvidia_vgpu_interface(h->fs, "0000:07:00.0", &vi, &e), 0);
        assert_int_equal(vi, GV_VGPU_INTERFACE_MDEV);
        host_free(h);
}

static void test_vendor_vfio(void **state)
{
        (void)state;
        struct host *h = host_new("dgx-h100");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_strv_free_ char **vfs = NULL;
        enum gv_vgpu_interface vi;
        uint32_t cur = 99;

        assert_int_equal(gv_nvidia_vgpu_interface(h->fs, "0000:18:00.0", &vi, &e), 0);
        assert_int_equal(vi, GV_VGPU_INTERFACE_VENDOR_VFIO);
        assert_int_equal(gv_sriov_list_vfs(h->fs, "0000:18:00.0", &vfs, &e), 0);
        assert_true(strv_length(vfs) >= 2);
        const char *vf = vfs[0];

        _cleanup_(gv_nvidia_vgpu_type_list_freep) struct gv_nvidia_vgpu_type_list *l = NULL;
        if (gv_nvidia_read_creatable_vgpu_types(h->fs, vf, &l, &e) < 0)
                fail_msg("%s", e->msg);
        assert_true(l->n > 0);
        uint32_t id = l->types[0].id;
        assert_int_equal(gv_nvidia_current_vgpu_type(h->fs, vf, &cur, &e), 0);
        assert_int_equal(cur, 0);

        /* injected failure: nothing selected */
        inject(h, "current_vgpu_type", EIO, vf);
        assert_int_equal(gv_nvidia_set_vgpu_type(h->fs, vf, id, &e), -EIO);
        assert_non_null(strstr(e->msg, "Selecting vGPU type"));
        e = gv_error_free(e);
        assert_int_equal(gv_nvidia_current_vgpu_type(h->fs, vf, &cur, &e), 0);
        assert_int_equal(cur, 0);

        if (gv_nvidia_set_vgpu_type(h->fs, vf, id, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_nvidia_current_vgpu_type(h->fs, vf, &cur, &e), 0);
        assert_int_equal(cur, id);

        /* injected clear failure: the type stays, the error says so */
        inject(h, "current_vgpu_type", EBUSY, vf);
        assert_int_equal(gv_nvidia_clear_vgpu_type(h->fs, vf, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "stop the VM that uses it first"));
        e = gv_error_free(e);
        assert_int_equal(gv_nvidia_current_vgpu_type(h->fs, vf, &cur, &e), 0);
        assert_int_equal(cur, id);

        if (gv_nvidia_clear_vgpu_type(h->fs, vf, &e) < 0)
                fail_msg("%s", e->msg);
        assert_int_equal(gv_nvidia_current_vgpu_type(h->fs, vf, &cur, &e), 0);
        assert_int_equal(cur, 0);
        host_free(h);
}

int main(int argc, char **argv)
{
        sim_fixture_reexec_with_kmock(argc, argv);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bind_group_and_back),
                cmocka_unit_test(test_bind_refused_foreign),
                cmocka_unit_test(test_bind_injected),
                cmocka_unit_test(test_restore_injected),
                cmocka_unit_test(test_sriov),
                cmocka_unit_test(test_mdev),
                cmocka_unit_test(test_vendor_vfio),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]); /* run one test: test-sim-writes test_mdev */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
