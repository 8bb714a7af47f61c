/* SPDX-License-Identifier: MIT */
/*
 * The agent's reconcile loop (src/agent/reconcile.c) on simulated 8xH100 hosts with the kernel
 * mock preloaded. Orphans are made behind the agent's back through a second struct gv_host on
 * the same simulated root, and every check re-reads the hardware from there: first-start
 * adoption keeps what was on the host; orphans wait out the grace period, then go in order
 * (vGPU before its GPU instance) while the administrator's MIG layout and modes stay; a busy VM
 * stops removal; a VM's own hardware (real QEMU, TCG) is never touched; a VM marked running
 * without a QEMU is marked crashed and released; leftover hardware of a stopped VM is released;
 * an unreadable host.json stops everything; the supervisor runs passes on its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "agent/agent.h"
#include "sim-fixture.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"

/* dgx-h100: GPU index → PCI address */
#define GPU0 "0000:18:00.0"
#define GPU1 "0000:2a:00.0"
#define GPU2 "0000:3a:00.0"
#define GPU3 "0000:5d:00.0"
#define GPU4 "0000:9a:00.0"
#define VGPU_TYPE "H100XM-20C"    /* time-sliced */
#define MIG_VGPU_TYPE "H100XM-1-10C" /* MIG-backed, on a 1g.10gb instance */
#define HOUR_MS (3600 * 1000)

struct fx {
        char *root;
        char *state;
        char *nvml;
        struct gv_host *h; /* the host as someone else sees it */
};

static int fx_setup(void **state)
{
        struct fx *f = xnew0(struct fx, 1);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        assert_int_equal(sim_fixture_create("dgx-h100", &f->root), 0);
        f->state = gv_path_join(f->root, "agent-state");
        f->nvml = gv_path_join(f->root, "usr/lib/libnvidia-ml.so.1");
        struct gv_host_config hc = { .sysfs_root = f->root, .nvml_library = f->nvml };
        int r = gv_host_open(&hc, &f->h, &e);
        if (r < 0)
                fail_msg("gv_host_open: %s", gv_error_msg(e, r));
        *state = f;
        return 0;
}

static int fx_teardown(void **state)
{
        struct fx *f = *state;

        gv_host_free(f->h);
        free(f->state);
        free(f->nvml);
        sim_fixture_destroy(f->root);
        free(f);
        return 0;
}

static struct gv_agent *agent_open(struct fx *f, int grace_ms, int interval_ms)
{
        struct gv_agent_config cfg = { .state_dir = f->state, .sysfs_root = f->root,
                                       .nvml_library = f->nvml, .accel = "tcg",
                                       .stop_timeout_ms = 2000, .orphan_grace_ms = grace_ms,
                                       .reconcile_interval_ms = interval_ms,
                                       /* QEMU as root: test-confine.sh covers its user */
                                       .qemu_user = "root" };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_agent *a = NULL;
        int r = gv_agent_new(&cfg, &a, &e);

        if (r < 0)
                fail_msg("gv_agent_new: %s", gv_error_msg(e, r));
        return a;
}

/* The GPU as the second host sees it now. */
static struct gv_gpu *gpu(struct fx *f, const char *bdf)
{
        struct gv_gpu *g = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_host_find_gpu(f->h, bdf, &g, &e);

        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        r = gv_host_refresh_gpu(f->h, g, &e);
        if (r < 0)
                fail_msg("refresh %s: %s", bdf, gv_error_msg(e, r));
        return g;
}

static void set_mode(struct fx *f, const char *bdf, enum gv_gpu_mode m)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_gpu_set_mode(f->h, gpu(f, bdf), m, &e);

        if (r < 0)
                fail_msg("set %s to %s: %s", bdf, gv_gpu_mode_to_string(m), gv_error_msg(e, r));
}

static void mig_apply(struct fx *f, const char *bdf, const char *profiles)
{
        _cleanup_strv_free_ char **l = strv_split(profiles, " ");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_gpu_mig_apply(f->h, gpu(f, bdf), l, false, NULL, &e);

        if (r < 0)
                fail_msg("mig apply %s '%s': %s", bdf, profiles, gv_error_msg(e, r));
}

static char *vgpu_create(struct fx *f, const char *bdf, const char *type)
{
        char id[GV_UUID_STR_LEN + 1];
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_gpu_vgpu_create(f->h, gpu(f, bdf), type, id, &e);

        if (r < 0)
                fail_msg("vGPU %s on %s: %s", type, bdf, gv_error_msg(e, r));
        return xstrdup(id);
}

static size_t n_vgpus(struct fx *f, const char *bdf)
{
        return gpu(f, bdf)->n_vgpus;
}

static size_t n_gis(struct fx *f, const char *bdf)
{
        return gpu(f, bdf)->n_gis;
}

static enum gv_gpu_mode mode(struct fx *f, const char *bdf)
{
        return gpu(f, bdf)->mode;
}

static json_t *pass(struct gv_agent *a)
{
        json_t *j = gv_agent_reconcile(a);

        assert_non_null(j);
        assert_true(json_is_array(json_object_get(j, "orphans")));
        assert_true(json_is_array(json_object_get(j, "crashed")));
        assert_true(json_is_array(json_object_get(j, "released")));
        return j;
}

/* A pass no VM's lock was busy for. The supervisor holds a VM's lock for an instant on each of
 * its turns (trylock), and a pass that meets it then skips that VM and removes nothing, as it
 * should: try again. */
static json_t *pass_settled(struct gv_agent *a)
{
        for (int i = 0;; i++) {
                json_t *j = pass(a);
                const char *why = json_string_value(json_object_get(j, "skipped"));
                if (!why || !strstr(why, "in the middle of an operation") || i == 20)
                        return j;
                json_decref(j);
                usleep(10 * 1000);
        }
}

static size_t n_orphans(const json_t *rep)
{
        return json_array_size(json_object_get(rep, "orphans"));
}

/* The orphans of `kind` on `gpu` with `action`. */
static size_t count(const json_t *rep, const char *kind, const char *bdf, const char *action)
{
        size_t i, n = 0;
        json_t *o;

        json_array_foreach(json_object_get(rep, "orphans"), i, o) {
                const char *k = json_string_value(json_object_get(o, "kind"));
                const char *g = json_string_value(json_object_get(o, "gpu"));
                const char *act = json_string_value(json_object_get(o, "action"));
                if (k && g && act && strcmp(k, kind) == 0 && strcmp(g, bdf) == 0 &&
                    strcmp(act, action) == 0)
                        n++;
        }
        return n;
}

static bool notes_match(const json_t *rep, const char *needle)
{
        size_t i;
        json_t *s;

        json_array_foreach(json_object_get(rep, "notes"), i, s)
                if (strstr(json_string_value(s), needle))
                        return true;
        return false;
}

static void dump_on_failure(const json_t *rep)
{
        _cleanup_free_ char *s = gv_json_dumps_pretty(rep);
        print_message("report: %s\n", s);
}

/* ---- first start ---- */

static void test_first_start_adopts(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *pre = NULL, *later = NULL, *hostjson = gv_path_join(f->state,
                                                                                 "host.json");

        /* An administrator's host before the agent was installed. */
        set_mode(f, GPU0, GV_GPU_MODE_VGPU);
        pre = vgpu_create(f, GPU0, VGPU_TYPE);
        set_mode(f, GPU3, GV_GPU_MODE_MIG);
        mig_apply(f, GPU3, "3g.40gb 1g.10gb");
        set_mode(f, GPU1, GV_GPU_MODE_PASSTHROUGH);

        struct gv_agent *a = agent_open(f, -1, -1);
        json_t *last = gv_agent_reconcile_last(a);
        assert_null(last); /* no pass yet */
        json_t *rep = pass(a);
        if (n_orphans(rep) || !notes_match(rep, "First start"))
                dump_on_failure(rep);
        assert_int_equal(n_orphans(rep), 0);
        assert_true(notes_match(rep, "First start"));
        assert_true(json_is_null(json_object_get(rep, "skipped")));
        assert_int_equal(gv_file_exists(hostjson), 1);
        json_decref(rep);
        /* nothing that was there went away, grace period or not */
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_int_equal(n_gis(f, GPU3), 2);
        assert_int_equal(mode(f, GPU1), GV_GPU_MODE_PASSTHROUGH);

        /* The adoption is said once; the last report is the second pass's. */
        rep = pass(a);
        assert_false(notes_match(rep, "First start"));
        assert_int_equal(n_orphans(rep), 0);
        last = gv_agent_reconcile_last(a);
        assert_true(json_equal(last, rep));
        json_decref(last);
        json_decref(rep);

        /* A vGPU made after the first start is not the administrator's layout. */
        later = vgpu_create(f, GPU0, VGPU_TYPE);
        rep = pass(a);
        assert_int_equal(count(rep, "vgpu", GPU0, "removed"), 1);
        assert_int_equal(n_orphans(rep), 1);
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_string_equal(gpu(f, GPU0)->vgpus[0].parent_bdf, pre);
        gv_agent_free(a);

        /* A restart reads host.json: no adoption note, and still nothing removed. */
        a = agent_open(f, -1, -1);
        rep = pass(a);
        assert_false(notes_match(rep, "First start"));
        assert_int_equal(n_orphans(rep), 0);
        json_decref(rep);
        gv_agent_free(a);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_int_equal(n_gis(f, GPU3), 2);
        assert_int_equal(mode(f, GPU1), GV_GPU_MODE_PASSTHROUGH);
}

/* ---- grace, order, the administrator's configuration ---- */

static void test_grace_then_removal(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *v0 = NULL, *v3 = NULL;
        char *profiles[] = { (char *)"3g.40gb", NULL };
        enum gv_gpu_mode mode1 = mode(f, GPU1); /* a simulated H100 boots in mode vgpu */
        uint32_t kept_gi;
        json_t *rep;
        int r;

        assert_int_not_equal(mode1, GV_GPU_MODE_NONE);
        struct gv_agent *a = agent_open(f, HOUR_MS, -1);
        json_decref(pass(a)); /* the first start adopts a clean host */
        /* The administrator's configuration, through the agent. */
        r = gv_agent_gpu_set_mode(a, "3", "mig", &e);
        if (r >= 0)
                r = gv_agent_gpu_mig_apply(a, "3", profiles, NULL, &e);
        if (r >= 0)
                r = gv_agent_gpu_set_mode(a, "4", "none", &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_int_equal(n_gis(f, GPU3), 1);
        kept_gi = gpu(f, GPU3)->gis[0].id;

        /* Behind its back: a vGPU, two more instances with a MIG-backed vGPU on one, a GPU
         * bound to vfio-pci from its adopted mode, another one from the mode set through the
         * agent. */
        set_mode(f, GPU0, GV_GPU_MODE_VGPU);
        v0 = vgpu_create(f, GPU0, VGPU_TYPE);
        mig_apply(f, GPU3, "3g.40gb 1g.10gb 1g.10gb");
        v3 = vgpu_create(f, GPU3, MIG_VGPU_TYPE);
        set_mode(f, GPU1, GV_GPU_MODE_PASSTHROUGH);
        set_mode(f, GPU4, GV_GPU_MODE_PASSTHROUGH);

        rep = pass(a);
        if (n_orphans(rep) != 6)
                dump_on_failure(rep);
        assert_int_equal(n_orphans(rep), 6);
        assert_int_equal(count(rep, "vgpu", GPU0, "waiting"), 1);
        assert_int_equal(count(rep, "vgpu", GPU3, "waiting"), 1);
        assert_int_equal(count(rep, "mig-gi", GPU3, "waiting"), 2);
        assert_int_equal(count(rep, "vfio-binding", GPU1, "waiting"), 1);
        assert_int_equal(count(rep, "vfio-binding", GPU4, "waiting"), 1);
        json_decref(rep);
        gv_agent_free(a);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_int_equal(n_vgpus(f, GPU3), 1);
        assert_int_equal(n_gis(f, GPU3), 3);
        assert_int_equal(mode(f, GPU1), GV_GPU_MODE_PASSTHROUGH);

        /* The same state directory without a grace period: everything goes, in order (the
         * MIG-backed vGPU before its instance, or that removal fails). */
        a = agent_open(f, -1, -1);
        rep = pass(a);
        if (count(rep, "vgpu", GPU3, "removed") != 1 || count(rep, "mig-gi", GPU3, "removed") != 2)
                dump_on_failure(rep);
        assert_int_equal(n_orphans(rep), 6);
        assert_int_equal(count(rep, "vgpu", GPU0, "removed"), 1);
        assert_int_equal(count(rep, "vgpu", GPU3, "removed"), 1);
        assert_int_equal(count(rep, "mig-gi", GPU3, "removed"), 2);
        assert_int_equal(count(rep, "vfio-binding", GPU1, "removed"), 1);
        assert_int_equal(count(rep, "vfio-binding", GPU4, "removed"), 1);
        /* the report lists vGPUs, then instances, then bindings */
        const char *order[] = { "vgpu", "vgpu", "mig-gi", "mig-gi", "vfio-binding",
                                "vfio-binding" };
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                json_t *o = json_array_get(json_object_get(rep, "orphans"), i);
                assert_string_equal(json_string_value(json_object_get(o, "kind")), order[i]);
                assert_true(json_is_null(json_object_get(o, "error")));
        }
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 0);
        assert_int_equal(n_vgpus(f, GPU3), 0);
        /* the administrator's instance and modes stay */
        assert_int_equal(mode(f, GPU3), GV_GPU_MODE_MIG);
        assert_int_equal(n_gis(f, GPU3), 1);
        assert_int_equal(gpu(f, GPU3)->gis[0].id, kept_gi);
        assert_string_equal(gpu(f, GPU3)->gis[0].profile_name, "3g.40gb");
        assert_int_equal(mode(f, GPU1), mode1); /* as adopted */
        assert_int_equal(mode(f, GPU4), GV_GPU_MODE_NONE); /* as set through the agent */
        rep = pass(a);
        assert_int_equal(n_orphans(rep), 0);
        json_decref(rep);
        gv_agent_free(a);
}

/* ---- a VM's own hardware; a busy VM ---- */

static void test_vm_hardware_is_owned(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *def = NULL, *st = NULL;
        _cleanup_free_ char *orphan = NULL;
        struct gv_agent_vm *vm = NULL;
        json_t *rep;
        int r;

        struct gv_agent *a = agent_open(f, -1, -1);
        if (a->qemu_error) {
                print_message("skipped: no VM can start here: %s\n", a->qemu_error);
                gv_agent_free(a);
                skip();
        }
        json_decref(pass(a));
        /* A MIG-backed vGPU needs its GPU in mode mig (the others boot in mode vgpu). */
        r = gv_agent_gpu_set_mode(a, "3", "mig", &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        r = gv_json_loads("{\"name\":\"rv\",\"memory_mib\":64,\"gpus\":["
                          "{\"mode\":\"vgpu\",\"type\":\"" VGPU_TYPE "\",\"gpu\":\"0\"},"
                          "{\"mode\":\"passthrough\",\"gpu\":\"1\"},"
                          "{\"mode\":\"mig-vgpu\",\"type\":\"" MIG_VGPU_TYPE "\",\"gpu\":\"3\"}]}",
                          &def, &e);
        if (r >= 0)
                r = gv_agent_vm_define(a, def, &st, &e);
        if (r >= 0)
                r = gv_agent_vm_start(a, "rv", &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));

        rep = pass_settled(a);
        if (n_orphans(rep))
                dump_on_failure(rep);
        assert_int_equal(n_orphans(rep), 0);
        assert_int_equal(json_array_size(json_object_get(rep, "crashed")), 0);
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_int_equal(mode(f, GPU1), GV_GPU_MODE_PASSTHROUGH);
        assert_int_equal(n_gis(f, GPU3), 1);
        assert_int_equal(n_vgpus(f, GPU3), 1);

        /* While the VM's lock is held (an operation on it), orphans wait. */
        set_mode(f, GPU2, GV_GPU_MODE_VGPU);
        orphan = vgpu_create(f, GPU2, VGPU_TYPE);
        r = gv_agent_vm_get(a, "rv", &vm, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        rep = pass(a);
        pthread_mutex_unlock(&vm->lock);
        assert_true(json_is_string(json_object_get(rep, "skipped")));
        assert_non_null(strstr(json_string_value(json_object_get(rep, "skipped")), "'rv'"));
        assert_int_equal(count(rep, "vgpu", GPU2, "waiting"), 1);
        assert_int_equal(n_orphans(rep), 1);
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU2), 1);
        rep = pass_settled(a);
        assert_int_equal(count(rep, "vgpu", GPU2, "removed"), 1);
        assert_int_equal(n_orphans(rep), 1);
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU2), 0);
        assert_int_equal(n_vgpus(f, GPU0), 1); /* still the VM's */

        r = gv_agent_vm_kill(a, "rv", &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_int_equal(n_vgpus(f, GPU0), 0);
        assert_int_equal(mode(f, GPU1), GV_GPU_MODE_NONE);
        assert_int_equal(n_gis(f, GPU3), 0);
        gv_agent_free(a);
}

/* ---- dead QEMUs, leftover hardware ---- */

/* Define a VM and give it a vGPU on `bdf` as gpu-attach.c would, in phase `phase`, without
 * a QEMU. Returns the vGPU's id. */
static char *vm_with_vgpu(struct gv_agent *a, const char *name, const char *bdf,
                          enum gv_vm_phase phase)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *def = json_pack("{ss si}", "name", name, "memory_mib", 64);
        _cleanup_json_ json_t *st = NULL;
        struct gv_agent_vm *vm = NULL;
        struct gv_hw hw = { .kind = GV_HW_VGPU };
        struct gv_gpu *g = NULL;
        char id[GV_UUID_STR_LEN + 1];
        int r;

        r = gv_agent_vm_define(a, def, &st, &e);
        if (r >= 0)
                r = gv_agent_vm_get(a, name, &vm, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        pthread_mutex_lock(&a->host_lock);
        r = gv_host_find_gpu(a->host, bdf, &g, &e);
        if (r >= 0 && g->mode != GV_GPU_MODE_VGPU)
                r = gv_gpu_set_mode(a->host, g, GV_GPU_MODE_VGPU, &e);
        if (r >= 0)
                r = gv_gpu_vgpu_create(a->host, g, VGPU_TYPE, id, &e);
        if (r >= 0) {
                snprintf(hw.gpu, sizeof(hw.gpu), "%s", g->bdf);
                snprintf(hw.id, sizeof(hw.id), "%s", id);
                vm->hw = xreallocarray(vm->hw, vm->n_hw + 1, sizeof(*vm->hw));
                vm->hw[vm->n_hw++] = hw;
                vm->phase = phase;
                vm->want_running = phase == GV_VM_RUNNING;
        }
        pthread_mutex_unlock(&a->host_lock);
        if (r >= 0)
                r = gv_agent_vm_save(a, vm, &e);
        pthread_mutex_unlock(&vm->lock);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        return xstrdup(id);
}

static void test_dead_qemu_and_leftovers(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *v1 = NULL, *v2 = NULL;
        _cleanup_json_ json_t *st = NULL;
        json_t *rep;
        int r;

        struct gv_agent *a = agent_open(f, HOUR_MS, -1);
        json_decref(pass(a));
        v1 = vm_with_vgpu(a, "dead", GPU0, GV_VM_RUNNING);
        v2 = vm_with_vgpu(a, "left", GPU2, GV_VM_STOPPED);
        /* Both vGPUs are the VMs' own, with or without a QEMU. */
        assert_int_equal(n_vgpus(f, GPU0), 1);
        assert_int_equal(n_vgpus(f, GPU2), 1);

        rep = pass_settled(a);
        if (json_array_size(json_object_get(rep, "crashed")) != 1)
                dump_on_failure(rep);
        assert_int_equal(json_array_size(json_object_get(rep, "crashed")), 1);
        assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "crashed"), 0)),
                            "dead");
        assert_int_equal(json_array_size(json_object_get(rep, "released")), 1);
        assert_string_equal(json_string_value(json_array_get(json_object_get(rep, "released"),
                                                             0)), "left");
        assert_int_equal(n_orphans(rep), 0); /* released before the hardware is looked at */
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 0);
        assert_int_equal(n_vgpus(f, GPU2), 0);

        r = gv_agent_vm_status(a, "dead", &st, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_string_equal(json_string_value(json_object_get(st, "phase")), "crashed");
        assert_int_equal(json_array_size(json_object_get(st, "hw")), 0);
        assert_non_null(strstr(json_string_value(json_object_get(st, "last_error")),
                               "QEMU is gone"));

        /* Said once: the next pass has nothing to do. */
        rep = pass_settled(a);
        assert_int_equal(json_array_size(json_object_get(rep, "crashed")), 0);
        assert_int_equal(json_array_size(json_object_get(rep, "released")), 0);
        json_decref(rep);
        gv_agent_free(a);
}

/* ---- host.json unreadable ---- */

static void test_unreadable_config(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *path = gv_path_join(f->state, "host.json"), *v = NULL;
        json_t *rep;
        int r;

        assert_int_equal(gv_mkdir_p(f->state, 0700), 0);
        assert_int_equal(gv_write_file(path, "{\"gpus\": [", GV_WRITE_CREATE), 0);
        set_mode(f, GPU0, GV_GPU_MODE_VGPU);
        v = vgpu_create(f, GPU0, VGPU_TYPE);

        struct gv_agent *a = agent_open(f, -1, -1);
        rep = pass(a);
        assert_int_equal(n_orphans(rep), 0);
        assert_true(json_is_string(json_object_get(rep, "skipped")));
        assert_non_null(strstr(json_string_value(json_object_get(rep, "skipped")), path));
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        /* a change through the agent is refused before anything changes */
        assert_int_equal(mode(f, GPU2), GV_GPU_MODE_VGPU);
        r = gv_agent_gpu_set_mode(a, "2", "none", &e);
        assert_true(r < 0);
        assert_non_null(strstr(gv_error_msg(e, r), "host.json"));
        assert_int_equal(mode(f, GPU2), GV_GPU_MODE_VGPU);

        /* Removed: the host is adopted as it is, the vGPU with it. */
        assert_int_equal(unlink(path), 0);
        rep = pass(a);
        assert_true(json_is_null(json_object_get(rep, "skipped")));
        assert_true(notes_match(rep, "First start"));
        assert_int_equal(n_orphans(rep), 0);
        json_decref(rep);
        assert_int_equal(n_vgpus(f, GPU0), 1);
        gv_agent_free(a);
}

/* ---- the supervisor runs passes ---- */

static void test_periodic(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *v = NULL;
        json_t *last = NULL;

        /* No grace: passes every 100 ms. */
        struct gv_agent *a = agent_open(f, -1, 0);
        /* The first pass (which adopts the host) has run before anything is made. */
        for (int i = 0; i < 100 && !(last = gv_agent_reconcile_last(a)); i++)
                usleep(50 * 1000);
        assert_non_null(last);
        json_decref(last);
        set_mode(f, GPU0, GV_GPU_MODE_VGPU);
        v = vgpu_create(f, GPU0, VGPU_TYPE);
        for (int i = 0; i < 100 && n_vgpus(f, GPU0); i++)
                usleep(50 * 1000);
        assert_int_equal(n_vgpus(f, GPU0), 0);
        gv_agent_free(a);
}

int main(int argc, char **argv)
{
        sim_fixture_reexec_with_kmock(argc, argv);
        if (!*sim_fixture_nvml_lib()) {
                printf("1..0 # SKIP the simulated NVML library was not built\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_first_start_adopts, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_grace_then_removal, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_vm_hardware_is_owned, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_dead_qemu_and_leftovers, fx_setup,
                                                fx_teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_config, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_periodic, fx_setup, fx_teardown),
        };
        const char *only = getenv("GPUVIRT_TEST_FILTER"); /* e.g. "test_periodic" */
        if (only && *only)
                cmocka_set_test_filter(only);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
