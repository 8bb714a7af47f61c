/* SPDX-License-Identifier: MIT */
#include "nvml-sim-host.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "host/sim-state.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/fileio.h"

static void check(int r, struct gv_error *err, const char *what)
{
        if (r < 0)
                fail_msg("%s: %s", what, gv_error_msg(err, r));
}

void simhost_make(const char *profile, struct simhost *ret)
{
        char dir[] = "/tmp/gv-nvml-sim-XXXXXX";
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        assert_non_null(mkdtemp(dir));
        check(sim_host_create(dir, profile, SIM_NVML_LIB, &err), err, "sim_host_create");
        ret->root = xstrdup(dir);
        ret->nvml_path = gv_path_join(dir, "usr/lib/libnvidia-ml.so.1");
}

void simhost_done(struct simhost *h)
{
        if (h->root && !getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(h->root);
        free(h->root);
        free(h->nvml_path);
        *h = (struct simhost){ 0 };
}

static struct sim_state *lock(const struct simhost *h)
{
        struct sim_state *s = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        check(sim_state_lock(h->root, SIM_LOCK_EXCLUSIVE, &s, &err), err, "sim_state_lock");
        return s;
}

static void commit(struct sim_state *s)
{
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        check(sim_state_commit(s, &err), err, "sim_state_commit");
        sim_state_unlock(s);
}

static void inject(const struct simhost *h, const char *call, int code,
                   enum sim_inject_mode mode)
{
        struct sim_state *s = lock(h);

        s->n_inject = 0;
        assert_int_equal(sim_inject_add(s, call, code, -1, NULL, mode), 0);
        commit(s);
}

void simhost_inject(const struct simhost *h, const char *call, int code)
{
        inject(h, call, code, SIM_INJECT_ALWAYS);
}

void simhost_inject_many(const struct simhost *h, const char *const *calls, size_t n, int code)
{
        struct sim_state *s = lock(h);

        s->n_inject = 0;
        for (size_t i = 0; i < n; i++)
                assert_int_equal(sim_inject_add(s, calls[i], code, -1, NULL, SIM_INJECT_ALWAYS),
                                 0);
        commit(s);
}

void simhost_inject_once(const struct simhost *h, const char *call, int code)
{
        inject(h, call, code, SIM_INJECT_ONCE);
}

void simhost_inject_clear(const struct simhost *h)
{
        struct sim_state *s = lock(h);

        s->n_inject = 0;
        commit(s);
}

unsigned simhost_add_vgpu(const struct simhost *h, unsigned gpu, unsigned type_id,
                          const char *uuid)
{
        struct sim_state *s = lock(h);
        struct sim_vgpu *v = NULL;

        assert_true(gpu < s->n_gpus);
        struct sim_gpu *g = &s->gpus[gpu];
        int r = sim_vgpu_add(s, g, type_id, uuid, g->bdf, &v);
        if (r < 0)
                fail_msg("sim_vgpu_add(type %u on %s): %s", type_id, g->bdf, strerror(-r));
        unsigned instance = v->instance;
        commit(s);
        return instance;
}

void simhost_set_lost(const struct simhost *h, unsigned gpu, bool lost)
{
        struct sim_state *s = lock(h);

        assert_true(gpu < s->n_gpus);
        s->gpus[gpu].lost = lost;
        commit(s);
}

void simhost_reset_gpu(const struct simhost *h, const char *bdf)
{
        struct sim_state *s = lock(h);
        struct sim_gpu *g = sim_gpu_by_bdf(s, bdf);
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        assert_non_null(g);
        check(sim_gpu_reset(s, g, &err), err, "sim_gpu_reset");
        commit(s);
}
