/* SPDX-License-Identifier: MIT */
/*
 * sched-fixture.h — shared helpers of the placement-engine tests: the catalog, clusters built
 * from a few lines, requests, and place-then-reserve in one call.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "sched/sched.h"
#include "util/alloc.h"

static struct gv_catalog *fx_catalog;

static inline int fx_setup(void **state)
{
        struct gv_error *e = NULL;
        (void)state;
        int r = gv_catalog_load_default(&fx_catalog, &e);
        if (r < 0) {
                print_error("catalog: %s\n", gv_error_msg(e, r));
                gv_error_free(e);
                return -1;
        }
        return 0;
}

static inline int fx_teardown(void **state)
{
        (void)state;
        fx_catalog = gv_catalog_free(fx_catalog);
        return 0;
}

/* Add a catalog model (by catalog name) and return its id. */
static inline uint32_t fx_model(struct gv_sched_cluster *c, const char *name)
{
        int id = gv_sched_cluster_find_model(c, name);
        if (id >= 0)
                return (uint32_t)id;
        const struct gv_gpu_model *m = gv_catalog_find(fx_catalog, name);
        assert_non_null(m);
        id = gv_sched_cluster_add_model(c, m, NULL);
        assert_true(id >= 0);
        return (uint32_t)id;
}

static inline uint32_t fx_share_model(struct gv_sched_cluster *c, const char *name,
                                      uint64_t mem)
{
        int id = gv_sched_cluster_find_model(c, name);
        if (id >= 0)
                return (uint32_t)id;
        id = gv_sched_cluster_add_share_model(c, name, mem, NULL);
        assert_true(id >= 0);
        return (uint32_t)id;
}

/* A host of n GPUs of one model, all in mode, cpu 96 cores, 512 GiB. Returns its id. */
static inline uint32_t fx_host(struct gv_sched_cluster *c, const char *name, uint32_t model,
                               size_t n, enum gv_sched_gpu_mode mode, bool mixed,
                               const char *const *labels, size_t n_labels)
{
        struct gv_sched_gpu_spec gpus[GV_SCHED_MAX_HOST_GPUS];
        struct gv_error *e = NULL;
        for (size_t i = 0; i < n; i++)
                gpus[i] = (struct gv_sched_gpu_spec){ .model = model, .mode = mode,
                                                      .mixed_size = mixed };
        struct gv_sched_host_spec spec = {
                .name = name,
                .cpu_milli = 96000,
                .memory_mib = 512 * 1024,
                .state = GV_SCHED_HOST_UP,
                .labels = labels,
                .n_labels = n_labels,
                .gpus = gpus,
                .n_gpus = n,
        };
        int id = gv_sched_cluster_add_host(c, &spec, &e);
        if (id < 0)
                fail_msg("add host %s: %s", name, gv_error_msg(e, id));
        return (uint32_t)id;
}

static inline struct gv_sched_request fx_req(enum gv_sched_kind kind)
{
        return (struct gv_sched_request){ .kind = kind, .cpu_milli = 1000, .memory_mib = 1024 };
}

static inline void fx_resolve(const struct gv_sched_cluster *c, struct gv_sched_request *r)
{
        struct gv_error *e = NULL;
        int q = gv_sched_request_resolve(c, r, &e);
        if (q < 0)
                fail_msg("resolve: %s", gv_error_msg(e, q));
}

/* Place and reserve; returns 0 or the place error (then *why and *msg, if given, are set). */
static inline int fx_take(struct gv_sched_cluster *c, const struct gv_sched_policy *p,
                          struct gv_sched_request *r, struct gv_sched_placement *pl,
                          struct gv_sched_explain *why, char **msg)
{
        struct gv_error *e = NULL;
        struct gv_sched_placement tmp;
        if (!pl)
                pl = &tmp;
        fx_resolve(c, r);
        /* Stateful policies (fgd, gpuvirt) must be attached; attaching again is a no-op. */
        if (gv_sched_policy_attach(c, p, &e) < 0)
                fail_msg("attach: %s", gv_error_msg(e, -EINVAL));
        int q = gv_sched_place(c, p, r, pl, why, &e);
        if (q < 0) {
                if (msg)
                        *msg = xstrdup(gv_error_msg(e, q));
                gv_error_free(e);
                return q;
        }
        q = gv_sched_reserve(c, r, pl, &e);
        if (q < 0)
                fail_msg("reserve after place: %s", gv_error_msg(e, q));
        q = gv_sched_cluster_check(c, &e);
        if (q < 0)
                fail_msg("check: %s", gv_error_msg(e, q));
        return 0;
}

static inline void fx_check(const struct gv_sched_cluster *c)
{
        struct gv_error *e = NULL;
        int q = gv_sched_cluster_check(c, &e);
        if (q < 0)
                fail_msg("check: %s", gv_error_msg(e, q));
}
