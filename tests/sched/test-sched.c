/* SPDX-License-Identifier: MIT */
/*
 * test-sched — the placement engine's rules, one test each: MIG valid placements and overlap,
 * the vGPU same-size rule and mixed-size placement ids, MIG-backed vGPU, mode switching of empty
 * GPUs only, multi-GPU requests on one host, each constraint, the by-need choices, reserve and
 * release checks, the policies' choices, and the words of errors and rejections.
 */
#include "sched-fixture.h"

#define FF (&gv_sched_policy_first_fit)
#define BF (&gv_sched_policy_best_fit)
#define GV (&gv_sched_policy_gpuvirt)
#define SP (&gv_sched_policy_spread)

static struct gv_sched_request mig(const char *profile)
{
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_MIG);
        r.type = profile;
        return r;
}

static struct gv_sched_request vgpu(const char *type)
{
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_VGPU);
        r.type = type;
        return r;
}

static struct gv_sched_request share(uint32_t n, uint32_t milli)
{
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_SHARE);
        r.num_gpu = n;
        r.gpu_milli = milli;
        return r;
}

static struct gv_sched_request whole(uint32_t n)
{
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_WHOLE);
        r.num_gpu = n;
        return r;
}

static struct gv_sched_request need(uint64_t mib, enum gv_sched_isolation iso, bool migrate)
{
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_NEED);
        r.need.gpu_memory_mib = mib;
        r.need.isolation = iso;
        r.need.live_migration = migrate;
        return r;
}

/* One H100 SXM host with n GPUs in mode. */
static struct gv_sched_cluster *h100(size_t n, enum gv_sched_gpu_mode mode, bool mixed)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        fx_host(c, "h0", fx_model(c, "H100-SXM5-80GB"), n, mode, mixed, NULL, 0);
        return c;
}

static void test_policy_find(void **state)
{
        const struct gv_sched_policy *p = NULL;
        struct gv_error *e = NULL;
        (void)state;

        const char *names[] = { "first-fit", "spread", "best-fit", "gpuvirt" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                assert_int_equal(gv_sched_policy_find(names[i], &p, NULL), 0);
                assert_string_equal(p->name, names[i]);
        }
        assert_ptr_equal(gv_sched_policy_default(), GV);
        assert_int_equal(gv_sched_policy_find("worst-fit", &p, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'worst-fit'"));
        assert_non_null(strstr(e->msg, "first-fit, "));
        assert_non_null(strstr(e->msg, "best-fit"));
        gv_error_free(e);
        size_t n = 0;
        for (const struct gv_sched_policy *const *l = gv_sched_policies(); *l; l++)
                n++;
        assert_true(n >= 4);
}

/* MIG: only the profile's placements (mig.md §4), never two instances on one memory slice,
 * instance limits per profile. */
static void test_mig_placements(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_MIG, false);
        struct gv_sched_placement pl;
        struct gv_sched_explain why;
        _cleanup_free_ char *msg = NULL;
        (void)state;

        struct gv_sched_request r = mig("3g.40gb");
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG);
        assert_int_equal(pl.slots[0].start, 0);
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 4); /* 3g: (0,4) (4,4) only */
        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, 0);
        assert_int_equal(g->mig_occupied, 0xff);
        assert_int_equal(g->mig_instances, 2);
        assert_int_equal(g->mode, GV_SCHED_MODE_MIG);
        assert_int_equal(g->used_milli, 6 * 1000 / 7); /* compute-based M1 units */

        /* Full: a 1g has no free slice. */
        struct gv_sched_request one = mig("1g.10gb");
        assert_int_equal(fx_take(c, FF, &one, &pl, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_MIG_GEOMETRY], 1);
        assert_non_null(strstr(msg, "mig:1g.10gb"));
        assert_non_null(strstr(msg, "no free MIG placement"));

        /* A placement the profile does not have (3g at slice 2) or one overlapping another
         * instance is refused by reserve, and nothing changes. */
        struct gv_sched_placement bad = pl;
        r = mig("3g.40gb");
        fx_resolve(c, &r);
        bad.host = 0;
        bad.n_slots = 1;
        bad.slots[0] = (struct gv_sched_slot){ .gpu = 0, .alloc = GV_SCHED_ALLOC_MIG,
                                               .index = r.resolved.index[0], .start = 4 };
        struct gv_error *e = NULL;
        assert_int_equal(gv_sched_reserve(c, &r, &bad, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "cannot take"));
        e = gv_error_free(e);
        fx_check(c);
        assert_int_equal(g->mig_instances, 2);
        c = gv_sched_cluster_free(c);

        /* Seven 1g instances fill slices 0-6; the eighth is over the instance limit. */
        c = h100(1, GV_SCHED_MODE_MIG, false);
        uint32_t mask = 0;
        for (int i = 0; i < 7; i++) {
                one = mig("1g.10gb");
                assert_int_equal(fx_take(c, FF, &one, &pl, NULL, NULL), 0);
                uint32_t bit = 1u << pl.slots[0].start;
                assert_false(mask & bit);
                mask |= bit;
        }
        assert_int_equal(mask, 0x7f);
        one = mig("1g.10gb");
        assert_int_equal(fx_take(c, FF, &one, &pl, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_MIG_LIMIT], 1);

        /* Releasing one frees exactly its slice. */
        struct gv_sched_placement rel = pl;
        one = mig("1g.10gb");
        fx_resolve(c, &one);
        rel.host = 0;
        rel.n_slots = 1;
        rel.slots[0] = (struct gv_sched_slot){ .gpu = 0, .alloc = GV_SCHED_ALLOC_MIG,
                                               .index = one.resolved.index[0], .start = 3 };
        assert_int_equal(gv_sched_release(c, &one, &rel, NULL), 0);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->mig_occupied, 0x77);
        /* ... and releasing it twice is refused. */
        assert_int_equal(gv_sched_release(c, &one, &rel, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "does not hold"));
        gv_error_free(e);
        fx_check(c);
        gv_sched_cluster_free(c);
}

/* gpuvirt puts a small instance where it keeps large ranges open; first-fit takes slice 0. */
static void test_mig_geometry_choice(void **state)
{
        struct gv_sched_placement pl;
        (void)state;

        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_MIG, false);
        struct gv_sched_request r = mig("1g.10gb");
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 0);
        r = mig("4g.40gb"); /* only (0,4) */
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), -ENOSPC);
        gv_sched_cluster_free(c);

        c = h100(1, GV_SCHED_MODE_MIG, false);
        r = mig("1g.10gb");
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 6); /* docs/placement.md: keeps 4g, 2g, 1g.20gb open */
        /* A 3g at slice 2 is no placement of the profile (only 0 and 4): reserve refuses. */
        struct gv_sched_request r3 = mig("3g.40gb");
        fx_resolve(c, &r3);
        struct gv_sched_placement bad = { .host = 0, .n_slots = 1 };
        bad.slots[0] = (struct gv_sched_slot){ .gpu = 0, .alloc = GV_SCHED_ALLOC_MIG,
                                               .index = r3.resolved.index[0], .start = 2 };
        struct gv_error *e = NULL;
        assert_int_equal(gv_sched_reserve(c, &r3, &bad, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "no free MIG placement"));
        gv_error_free(e);
        r = mig("4g.40gb");
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 0);
        r = mig("2g.20gb"); /* 1g sits in 4-7: a 2g still fits in what is left */
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        fx_check(c);
        gv_sched_cluster_free(c);
}

/* Equal-size mode: only the type already running, up to max_instances (vgpu.md §7–8). */
static void test_vgpu_same_size(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_VGPU, false);
        struct gv_sched_placement pl[4];
        struct gv_sched_explain why;
        (void)state;

        struct gv_sched_request r = vgpu("H100XM-20C");
        for (int i = 0; i < 4; i++) {
                assert_int_equal(fx_take(c, FF, &r, &pl[i], NULL, NULL), 0);
                assert_int_equal(pl[i].slots[0].alloc, GV_SCHED_ALLOC_VGPU);
        }
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_VGPU_FULL], 1);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->used_milli, 1000); /* 4 × 20 GiB, capped */

        struct gv_sched_request small = vgpu("H100XM-10C");
        char *msg = NULL;
        /* Release one 20C: room, but the same-size rule still forbids a 10C. */
        assert_int_equal(gv_sched_release(c, &r, &pl[3], NULL), 0);
        assert_int_equal(fx_take(c, FF, &small, NULL, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_VGPU_SAME_SIZE], 1);
        assert_non_null(strstr(msg, "equal-size"));
        free(msg);
        for (int i = 0; i < 3; i++)
                assert_int_equal(gv_sched_release(c, &r, &pl[i], NULL), 0);
        /* Empty again: any type. */
        assert_int_equal(fx_take(c, FF, &small, &pl[0], NULL, NULL), 0);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->vgpu_type, small.resolved.index[0]);
        gv_sched_cluster_free(c);
}

/* Mixed-size mode: sizes mix, each at a free placement id k·size (vgpu.md §8). */
static void test_vgpu_mixed_size(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_VGPU, true);
        struct gv_sched_placement pl;
        struct gv_sched_explain why;
        (void)state;

        struct gv_sched_request a = vgpu("H100XM-20C"); /* size 20: ids 0 20 40 60 */
        struct gv_sched_request b = vgpu("H100XM-40C"); /* size 40: ids 0 40 */
        assert_int_equal(fx_take(c, FF, &a, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 0);
        assert_int_equal(fx_take(c, FF, &b, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 40);
        assert_int_equal(fx_take(c, FF, &a, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].start, 20);
        /* 0-79 taken: no 40C id and no 20C id left. */
        assert_int_equal(fx_take(c, FF, &b, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_VGPU_FULL], 1);
        assert_int_equal(fx_take(c, FF, &a, NULL, NULL, NULL), -ENOSPC);
        gv_sched_cluster_free(c);

        /* gpuvirt picks the id that leaves the most placement ids of every type free: two
         * 20Cs share one 40-unit half, so a 40C still fits. */
        c = h100(1, GV_SCHED_MODE_VGPU, true);
        a = vgpu("H100XM-20C");
        assert_int_equal(fx_take(c, GV, &a, &pl, NULL, NULL), 0);
        uint32_t first = pl.slots[0].start;
        assert_int_equal(fx_take(c, GV, &a, &pl, NULL, NULL), 0);
        /* The second 20C goes beside the first, in the same 40-unit half. */
        assert_int_equal(pl.slots[0].start / 40, first / 40);
        b = vgpu("H100XM-40C");
        assert_int_equal(fx_take(c, GV, &b, &pl, NULL, NULL), 0);
        fx_check(c);
        gv_sched_cluster_free(c);
}

/* MIG-backed vGPU: one vGPU per GI of the type's profile; the GPU is in MIG mode. */
static void test_mig_backed_vgpu(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_UNASSIGNED, false);
        struct gv_sched_placement pl;
        (void)state;

        struct gv_sched_request r = vgpu("H100XM-3-40C");
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG_VGPU);
        assert_false(pl.switches_mode); /* unassigned -> MIG is no switch */
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->mode, GV_SCHED_MODE_MIG);
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(fx_take(c, FF, &r, NULL, NULL, NULL), -ENOSPC);
        /* Time-sliced types cannot join a MIG GPU. */
        struct gv_sched_request t = vgpu("H100XM-4C");
        struct gv_sched_explain why;
        assert_int_equal(fx_take(c, FF, &t, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_GPU_MODE], 1);
        gv_sched_cluster_free(c);
}

/* An empty GPU may switch mode; a GPU in use keeps its mode; an emptied GPU returns to its
 * configured mode. */
static void test_mode_switch(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_MIG, false);
        struct gv_sched_placement pl, pl2;
        struct gv_sched_explain why;
        (void)state;

        struct gv_sched_request w = whole(1);
        assert_int_equal(fx_take(c, FF, &w, &pl, NULL, NULL), 0);
        assert_true(pl.switches_mode);
        assert_int_equal(pl.slots[0].prev_mode, GV_SCHED_MODE_MIG);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->mode, GV_SCHED_MODE_PASSTHROUGH);
        struct gv_sched_request m = mig("1g.10gb");
        assert_int_equal(fx_take(c, FF, &m, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_GPU_MODE] +
                         why.rejected[GV_SCHED_REJECT_GPU_COUNT], 1);
        assert_int_equal(gv_sched_release(c, &w, &pl, NULL), 0);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->mode, GV_SCHED_MODE_MIG);

        /* In use as MIG: share, whole and time-sliced vGPU are refused. */
        assert_int_equal(fx_take(c, FF, &m, &pl, NULL, NULL), 0);
        struct gv_sched_request s = share(1, 300);
        assert_int_equal(fx_take(c, FF, &s, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(fx_take(c, FF, &w, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_GPU_COUNT], 1);
        struct gv_sched_request v = vgpu("H100XM-4C");
        assert_int_equal(fx_take(c, FF, &v, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_GPU_MODE], 1);
        gv_sched_cluster_free(c);

        /* Two GPUs, one already in use as MIG, one empty in vGPU mode: a MIG request prefers
         * the MIG GPU (no switch) under every policy. */
        c = h100(2, GV_SCHED_MODE_VGPU, false);
        struct gv_sched_request v2 = vgpu("H100XM-1-10C");
        assert_int_equal(fx_take(c, FF, &v2, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].gpu, 0);
        assert_true(pl.switches_mode);
        const struct gv_sched_policy *ps[] = { FF, SP, BF, GV };
        for (size_t i = 0; i < ELEMENTSOF(ps); i++) {
                m = mig("1g.10gb");
                assert_int_equal(fx_take(c, ps[i], &m, &pl2, NULL, NULL), 0);
                assert_int_equal(pl2.slots[0].gpu, 0);
                assert_false(pl2.switches_mode);
                assert_int_equal(gv_sched_release(c, &m, &pl2, NULL), 0);
        }
        gv_sched_cluster_free(c);
}

/* N whole GPUs on one host, and the openb whole-GPU shares. */
static void test_multi_gpu(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        struct gv_sched_explain why;
        char *msg = NULL;
        (void)state;

        uint32_t g2 = fx_share_model(c, "G2", 32510);
        fx_host(c, "a", g2, 8, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
        fx_host(c, "b", g2, 4, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);

        struct gv_sched_request w = whole(4);
        assert_int_equal(fx_take(c, FF, &w, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        assert_int_equal(pl.n_slots, 4);
        for (uint32_t i = 0; i < 4; i++)
                assert_int_equal(pl.slots[i].gpu, i); /* the first free ones */
        struct gv_sched_request s = share(4, 1000);
        assert_int_equal(fx_take(c, FF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_SHARE);
        assert_int_equal(gv_sched_cluster_host(c, 0)->free_gpus, 0);
        assert_int_equal(gv_sched_cluster_host(c, 0)->used_milli, 8000);
        /* 8 GPUs fit nowhere: host a is full, host b has 4. */
        struct gv_sched_request w8 = whole(8);
        assert_int_equal(fx_take(c, FF, &w8, NULL, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_GPU_COUNT], 2);
        assert_string_equal(msg, "No host can place gpu:8: 2 hosts too few empty GPUs.");
        free(msg);
        /* 4 fit on b; a sharer on b then blocks a further 4. */
        struct gv_sched_request one = share(1, 470);
        assert_int_equal(fx_take(c, FF, &one, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 1);
        assert_int_equal(fx_take(c, FF, &w, NULL, &why, NULL), -ENOSPC);
        gv_sched_cluster_free(c);
}

/* Shares: best-fit takes the fullest GPU that fits (the artefact's GPU choice), spread the
 * emptiest; every policy respects free milli. */
static void test_share_choice(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        (void)state;

        uint32_t t4 = fx_share_model(c, "T4", 15109);
        fx_host(c, "a", t4, 2, GV_SCHED_MODE_SHARE, false, NULL, 0);
        struct gv_sched_request s = share(1, 600);
        assert_int_equal(fx_take(c, BF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].gpu, 0);
        s = share(1, 300);
        assert_int_equal(fx_take(c, BF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].gpu, 0); /* 400 free on GPU 0: the fullest that fits */
        s = share(1, 200);
        assert_int_equal(fx_take(c, SP, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].gpu, 1); /* spread: the emptiest */
        s = share(1, 900);
        assert_int_equal(fx_take(c, GV, &s, NULL, NULL, NULL), -ENOSPC);
        s = share(1, 800);
        assert_int_equal(fx_take(c, GV, &s, &pl, NULL, NULL), 0);
        assert_int_equal(gv_sched_cluster_host(c, 0)->share_max_free_milli, 100);
        assert_int_equal(gv_sched_cluster_used_milli(c), 1900);
        gv_sched_cluster_free(c);
}

static void test_best_fit_score(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        (void)state;

        /* Host b is tighter in GPU (leftover 3 GPUs vs 7): best-fit picks it, spread not. */
        uint32_t g = fx_share_model(c, "G2", 32510);
        fx_host(c, "a", g, 8, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
        fx_host(c, "b", g, 4, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
        struct gv_sched_request s = share(1, 1000);
        fx_resolve(c, &s);
        assert_int_equal(gv_sched_place(c, BF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 1);
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);
        assert_int_equal(gv_sched_place(c, GV, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 1);
        assert_int_equal(gv_sched_place(c, SP, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        assert_int_equal(gv_sched_place(c, FF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        gv_sched_cluster_free(c);

        /* Equal integer scores tie; tie_seed spreads the choice over the tied hosts and is
         * reproducible. */
        c = gv_sched_cluster_new();
        g = fx_share_model(c, "G2", 32510);
        for (int i = 0; i < 8; i++) {
                char name[8];
                snprintf(name, sizeof(name), "h%d", i);
                fx_host(c, name, g, 8, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
        }
        s = share(1, 500);
        fx_resolve(c, &s);
        bool seen[8] = { false };
        for (uint64_t seed = 1; seed <= 64; seed++) {
                struct gv_sched_placement again;
                s.tie_seed = seed;
                assert_int_equal(gv_sched_place(c, BF, &s, &pl, NULL, NULL), 0);
                assert_int_equal(gv_sched_place(c, BF, &s, &again, NULL, NULL), 0);
                assert_int_equal(pl.host, again.host);
                seen[pl.host] = true;
        }
        int distinct = 0;
        for (int i = 0; i < 8; i++)
                distinct += seen[i];
        assert_true(distinct >= 4);
        s.tie_seed = 0;
        assert_int_equal(gv_sched_place(c, BF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        gv_sched_cluster_free(c);
}

/* Constraints: state, labels, models, anti-affinity, CPU, memory; each named in words. */
static void test_constraints(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl, pl2;
        struct gv_sched_explain why;
        struct gv_error *e = NULL;
        char *msg = NULL;
        (void)state;

        uint32_t t4 = fx_share_model(c, "T4", 15109);
        uint32_t g2 = fx_share_model(c, "G2", 32510);
        const char *ssd[] = { "ssd", "zone=a" };
        fx_host(c, "t4", t4, 2, GV_SCHED_MODE_UNASSIGNED, false, ssd, 2);
        fx_host(c, "g2", g2, 8, GV_SCHED_MODE_UNASSIGNED, false, ssd + 1, 1);

        /* Model mask, from openb's gpu_spec syntax. */
        struct gv_sched_request r = share(1, 500);
        assert_int_equal(gv_sched_cluster_model_mask(c, "T4", &r.model_mask, NULL), 0);
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, 0);
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);
        assert_int_equal(gv_sched_cluster_model_mask(c, "V100|T4", &r.model_mask, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'V100'"));
        assert_non_null(strstr(e->msg, "T4, G2"));
        e = gv_error_free(e);
        assert_int_equal(gv_sched_cluster_model_mask(c, "G2|T4", &r.model_mask, NULL), 0);
        assert_int_equal(r.model_mask, 3);

        /* Labels. */
        r = share(1, 500);
        assert_int_equal(gv_sched_cluster_label_mask(c, "ssd", &r.labels, NULL), 0);
        r.model_mask = UINT64_C(1) << g2;
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_LABELS], 1);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_MODEL], 1);
        assert_non_null(strstr(msg, "missing a required label"));
        msg = (free(msg), NULL);
        assert_int_equal(gv_sched_cluster_label_mask(c, "nvme", &r.labels, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "'nvme'"));
        assert_non_null(strstr(e->msg, "ssd, zone=a"));
        e = gv_error_free(e);

        /* Anti-affinity: two members never share a host. */
        int grp = gv_sched_cluster_group(c, "db");
        assert_true(grp >= 1);
        r = share(1, 100);
        r.group = (uint32_t)grp;
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(fx_take(c, FF, &r, &pl2, NULL, NULL), 0);
        assert_int_not_equal(pl.host, pl2.host);
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_ANTI_AFFINITY], 2);
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);

        /* State. */
        assert_int_equal(gv_sched_cluster_set_host_state(c, 0, GV_SCHED_HOST_MAINTENANCE), 0);
        assert_int_equal(gv_sched_cluster_set_host_state(c, 1, GV_SCHED_HOST_DOWN), 0);
        r = share(1, 100);
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_STATE], 2);
        assert_string_equal(msg, "No host can place share:100m: 2 hosts in maintenance or "
                                 "down.");
        msg = (free(msg), NULL);
        gv_sched_cluster_set_host_state(c, 0, GV_SCHED_HOST_UP);
        gv_sched_cluster_set_host_state(c, 1, GV_SCHED_HOST_UP);

        /* CPU and memory. */
        r = fx_req(GV_SCHED_KIND_NONE);
        r.cpu_milli = 97000;
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, NULL), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_CPU], 2);
        r.cpu_milli = 1000;
        r.memory_mib = 600 * 1024;
        assert_int_equal(fx_take(c, FF, &r, NULL, &why, &msg), -ENOSPC);
        assert_int_equal(why.rejected[GV_SCHED_REJECT_MEMORY], 2);
        assert_non_null(strstr(msg, "cpu: 2 hosts not enough free memory"));
        msg = (free(msg), NULL);
        r.memory_mib = 512 * 1024 - 1024; /* host 0 has 1 GiB taken by the group member */
        assert_int_equal(fx_take(c, FF, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.n_slots, 0);
        gv_sched_cluster_free(c);
}

/* By need: the rule of docs/placement.md. */
static void test_by_need(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_UNASSIGNED, false);
        const struct gv_gpu_model *gm = gv_catalog_find(fx_catalog, "H100-SXM5-80GB");
        struct gv_sched_placement pl;
        struct gv_error *e = NULL;
        (void)state;

        /* Hardware isolation: the smallest MIG profile with enough memory. */
        struct gv_sched_request r = need(15000, GV_SCHED_ISOLATION_HARDWARE, false);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG);
        assert_string_equal(gm->gi_profiles[pl.slots[0].index].name, "1g.20gb");
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);

        /* Hardware isolation and live migration: a MIG-backed vGPU. */
        r = need(15000, GV_SCHED_ISOLATION_HARDWARE, true);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG_VGPU);
        assert_string_equal(gm->vgpu_types[pl.slots[0].index].name, "H100XM-1-20C");
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);

        /* Software isolation with migration: the smallest time-sliced type. */
        r = need(6000, GV_SCHED_ISOLATION_SOFTWARE, true);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_VGPU);
        assert_string_equal(gm->vgpu_types[pl.slots[0].index].name, "H100XM-8C");
        /* The GPU is now in vGPU mode: a need MIG would fit better must not switch it
         * (it is in use) -> the vGPU option. */
        struct gv_sched_request r2 = need(9000, GV_SCHED_ISOLATION_NONE, false);
        struct gv_sched_placement pl2;
        assert_int_equal(fx_take(c, GV, &r2, &pl2, NULL, NULL), -ENOSPC); /* 8C running */
        r2 = need(7000, GV_SCHED_ISOLATION_NONE, false);
        assert_int_equal(fx_take(c, GV, &r2, &pl2, NULL, NULL), 0);
        assert_int_equal(pl2.slots[0].alloc, GV_SCHED_ALLOC_VGPU);
        assert_int_equal(pl2.slots[0].index, pl.slots[0].index);
        assert_int_equal(gv_sched_release(c, &r2, &pl2, NULL), 0);
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);

        /* Without migration a whole GPU is a candidate when nothing smaller fits. */
        r = need(70000, GV_SCHED_ISOLATION_NONE, false);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        /* 7g.80gb (81152 MiB) < whole GPU (81559) < H100XM-80C (81920): the smallest. */
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG);
        assert_string_equal(gm->gi_profiles[pl.slots[0].index].name, "7g.80gb");
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);
        /* With live migration: never a whole GPU; H100XM-80C and H100XM-7-80C are both
         * 81920 MiB: the time-sliced one first (software isolation asked). */
        r = need(70000, GV_SCHED_ISOLATION_SOFTWARE, true);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_VGPU);
        assert_string_equal(gm->vgpu_types[pl.slots[0].index].name, "H100XM-80C");
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);
        r = need(70000, GV_SCHED_ISOLATION_HARDWARE, true);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG_VGPU);
        assert_string_equal(gm->vgpu_types[pl.slots[0].index].name, "H100XM-7-80C");
        assert_int_equal(gv_sched_release(c, &r, &pl, NULL), 0);

        /* Nothing is big enough. */
        r = need(200000, GV_SCHED_ISOLATION_NONE, false);
        assert_int_equal(gv_sched_request_resolve(c, &r, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "need:200000MiB/none"));
        assert_non_null(strstr(e->msg, "H100-SXM5-80GB"));
        e = gv_error_free(e);
        gv_sched_cluster_free(c);

        /* Share-only (trace) models: no isolation, a share of the memory fraction. */
        c = gv_sched_cluster_new();
        fx_host(c, "t", fx_share_model(c, "T4", 15109), 1, GV_SCHED_MODE_UNASSIGNED, false,
                NULL, 0);
        r = need(4000, GV_SCHED_ISOLATION_NONE, false);
        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_SHARE);
        assert_int_equal(pl.slots[0].milli, (4000 * 1000 + 15108) / 15109);
        r = need(4000, GV_SCHED_ISOLATION_HARDWARE, false);
        assert_int_equal(gv_sched_request_resolve(c, &r, NULL), -ENOENT);
        gv_sched_cluster_free(c);
}

static void test_request_errors(void **state)
{
        struct gv_sched_cluster *c = h100(1, GV_SCHED_MODE_UNASSIGNED, false);
        struct gv_error *e = NULL;
        (void)state;

        struct gv_sched_request r = vgpu("H100XM-99C");
        assert_int_equal(gv_sched_request_resolve(c, &r, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'H100XM-99C'"));
        assert_non_null(strstr(e->msg, "H100XM-20C"));
        e = gv_error_free(e);

        r = mig("9g.99gb");
        assert_int_equal(gv_sched_request_resolve(c, &r, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "3g.40gb"));
        e = gv_error_free(e);

        r = share(2, 500);
        assert_int_equal(gv_sched_request_resolve(c, &r, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "whole"));
        e = gv_error_free(e);
        r = share(1, 0);
        assert_int_equal(gv_sched_request_resolve(c, &r, NULL), -EINVAL);
        r = whole(9);
        assert_int_equal(gv_sched_request_resolve(c, &r, NULL), -EINVAL);
        r = fx_req(GV_SCHED_KIND_NONE);
        r.model_mask = 2; /* model id 1 does not exist */
        assert_int_equal(gv_sched_request_resolve(c, &r, NULL), -EINVAL);

        /* A type the allowed models lack. */
        uint32_t l4 = fx_model(c, "L4");
        fx_host(c, "l4", l4, 1, GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
        r = mig("3g.40gb");
        r.model_mask = UINT64_C(1) << l4;
        assert_int_equal(gv_sched_request_resolve(c, &r, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "H100-SXM5-80GB"));
        assert_non_null(strstr(e->msg, "allowed models: L4"));
        e = gv_error_free(e);

        /* Unresolved request, unattached stateful policy. */
        r = whole(1);
        struct gv_sched_placement pl;
        assert_int_equal(gv_sched_place(c, FF, &r, &pl, NULL, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "resolve"));
        e = gv_error_free(e);

        /* Cluster building errors. */
        assert_int_equal(gv_sched_cluster_add_share_model(c, "L4", 1, NULL), -EEXIST);
        assert_int_equal(gv_sched_cluster_add_share_model(c, "a|b", 1, NULL), -EINVAL);
        assert_int_equal(gv_sched_cluster_add_share_model(c, "X", 0, NULL), -EINVAL);
        struct gv_sched_gpu_spec gs = { .model = 7 };
        struct gv_sched_host_spec hs = { .name = "bad", .gpus = &gs, .n_gpus = 1 };
        assert_int_equal(gv_sched_cluster_add_host(c, &hs, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "model id 7"));
        e = gv_error_free(e);
        gs = (struct gv_sched_gpu_spec){ .model = l4, .mode = GV_SCHED_MODE_MIG };
        assert_int_equal(gv_sched_cluster_add_host(c, &hs, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "has no MIG"));
        e = gv_error_free(e);
        hs.name = "h0";
        gs.mode = GV_SCHED_MODE_UNASSIGNED;
        assert_int_equal(gv_sched_cluster_add_host(c, &hs, NULL), -EEXIST);
        gv_sched_cluster_free(c);
}

/* Reserve re-checks (a stale decision is refused and changes nothing); release checks the
 * placement is held. */
static void test_reserve_release_checks(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement a, b;
        struct gv_error *e = NULL;
        (void)state;

        fx_host(c, "h", fx_share_model(c, "P100", 16280), 1, GV_SCHED_MODE_UNASSIGNED, false,
                NULL, 0);
        struct gv_sched_request r = share(1, 600);
        fx_resolve(c, &r);
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);
        assert_int_equal(gv_sched_place(c, GV, &r, &a, NULL, NULL), 0);
        assert_int_equal(gv_sched_place(c, GV, &r, &b, NULL, NULL), 0);
        assert_int_equal(gv_sched_reserve(c, &r, &a, NULL), 0);
        assert_int_equal(gv_sched_reserve(c, &r, &b, &e), -EBUSY);
        assert_non_null(strstr(e->msg, "place the request again"));
        e = gv_error_free(e);
        fx_check(c);
        assert_int_equal(gv_sched_cluster_gpu(c, 0)->share_milli, 600);
        assert_int_equal(gv_sched_release(c, &r, &a, NULL), 0);
        assert_int_equal(gv_sched_release(c, &r, &a, &e), -EINVAL);
        e = gv_error_free(e);
        /* A placement naming a GPU of another host. */
        a.slots[0].gpu = 5;
        assert_int_equal(gv_sched_reserve(c, &r, &a, &e), -EINVAL);
        e = gv_error_free(e);
        fx_check(c);
        assert_int_equal(gv_sched_cluster_host(c, 0)->n_placed, 0);
        gv_sched_cluster_free(c);
}

static void test_strings(void **state)
{
        char buf[64];
        (void)state;
        assert_int_equal(gv_sched_gpu_mode_from_string("mig"), GV_SCHED_MODE_MIG);
        assert_int_equal(gv_sched_gpu_mode_from_string("MIG"), -EINVAL);
        assert_int_equal(gv_sched_host_state_from_string("maintenance"),
                         GV_SCHED_HOST_MAINTENANCE);
        assert_int_equal(gv_sched_kind_from_string("need"), GV_SCHED_KIND_NEED);
        assert_int_equal(gv_sched_isolation_from_string("hardware"), GV_SCHED_ISOLATION_HARDWARE);
        for (int i = 0; i < _GV_SCHED_REJECT_MAX; i++)
                assert_non_null(gv_sched_reject_to_string(i));
        struct gv_sched_request r = share(4, 1000);
        assert_string_equal(gv_sched_request_format(&r, buf, sizeof(buf)), "share:4x1000m");
        r = need(2048, GV_SCHED_ISOLATION_SOFTWARE, true);
        assert_string_equal(gv_sched_request_format(&r, buf, sizeof(buf)),
                            "need:2048MiB/software/migrate");
        struct gv_sched_explain ex = { 0 };
        _cleanup_free_ char *m = gv_sched_explain_format(&r, &ex);
        assert_string_equal(m, "no host can place need:2048MiB/software/migrate: the cluster "
                               "has no hosts");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_find),
                cmocka_unit_test(test_mig_placements),
                cmocka_unit_test(test_mig_geometry_choice),
                cmocka_unit_test(test_vgpu_same_size),
                cmocka_unit_test(test_vgpu_mixed_size),
                cmocka_unit_test(test_mig_backed_vgpu),
                cmocka_unit_test(test_mode_switch),
                cmocka_unit_test(test_multi_gpu),
                cmocka_unit_test(test_share_choice),
                cmocka_unit_test(test_best_fit_score),
                cmocka_unit_test(test_constraints),
                cmocka_unit_test(test_by_need),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_reserve_release_checks),
                cmocka_unit_test(test_strings),
        };
        return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
