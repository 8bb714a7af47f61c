/* SPDX-License-Identifier: MIT */
/*
 * test-relayout: the MIG re-layout planner and the per-GPU MIG fragmentation measure
 * (src/sched/relayout.h) on the catalog's A100, H100 and A30 geometry
 * (../shared/reference/mig.md §4): the layouts the driver was seen to pick (§4 "Placements the
 * driver actually picked") give no moves, fragmented 1g/2g/3g layouts get a plan that frees a
 * 3g or 4g range naming the VM that moves, moves that need each other's slices are ordered with
 * one parked, and the cases where no arrangement can help say why.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "catalog/mig-layout.h"
#include "sched/relayout.h"
#include "util/alloc.h"

static struct gv_catalog *cat;

static int setup(void **state)
{
        struct gv_error *e = NULL;
        (void)state;
        int r = gv_catalog_load_default(&cat, &e);
        if (r < 0) {
                print_error("catalog: %s\n", gv_error_msg(e, r));
                gv_error_free(e);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        cat = gv_catalog_free(cat);
        return 0;
}

static void geometry(const char *model, struct gv_mig_geometry *g)
{
        const struct gv_gpu_model *m = gv_catalog_find(cat, model);
        assert_non_null(m);
        gv_mig_geometry_from_model(m, g);
        assert_int_equal(g->memory_slices, m->mig_memory_slices);
}

static struct gv_relayout_instance gi(const struct gv_mig_geometry *g, const char *profile,
                                      uint32_t start, const char *vm)
{
        const struct gv_mig_gi_profile *p = NULL;
        for (size_t i = 0; i < g->n_profiles; i++)
                if (strcmp(g->profiles[i].name, profile) == 0)
                        p = &g->profiles[i];
        assert_non_null(p);
        return (struct gv_relayout_instance){ .profile = p, .start = start, .owner = vm,
                                              .live = vm != NULL };
}

static void plan_ok(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                    size_t n, struct gv_relayout_plan *p)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_relayout_plan(g, inst, n, p, &e);
        if (r < 0)
                fail_msg("plan failed: %s", gv_error_msg(e, r));
}

static void assert_no_moves(const struct gv_relayout_plan *p,
                            const struct gv_relayout_instance *inst, size_t n)
{
        assert_int_equal(p->n_moves, 0);
        assert_int_equal(p->n_live, 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(p->to[i], inst[i].start);
        assert_ptr_equal(p->after.largest, p->before.largest);
}

static void assert_explains(const struct gv_mig_geometry *g, const struct gv_relayout_plan *p,
                            const char *needle)
{
        _cleanup_free_ char *t = gv_relayout_explain(g, p);
        if (!strstr(t, needle))
                fail_msg("'%s' does not say '%s'", t, needle);
}

/* The layouts NVIDIA's documents show the driver picking (mig.md §4) are already packed. */
static void test_observed_layouts(void **state)
{
        struct gv_mig_geometry a100, h100;
        struct gv_relayout_plan p;

        (void)state;
        geometry("A100-PCIe-40GB", &a100);
        geometry("H100-SXM5-80GB", &h100);

        /* MUG `-cgi 9,19,14,19`: 1g at 0 and 1, 2g at 2, 3g at 4: every slice taken. */
        struct gv_relayout_instance mug1[] = {
                gi(&a100, "3g.20gb", 4, "a"), gi(&a100, "1g.5gb", 0, "b"),
                gi(&a100, "2g.10gb", 2, "c"), gi(&a100, "1g.5gb", 1, "d"),
        };
        plan_ok(&a100, mug1, 4, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_FULL);
        assert_int_equal(p.before.free_slices, 0);
        assert_null(p.before.largest);
        assert_no_moves(&p, mug1, 4);
        assert_explains(&a100, &p, "every memory slice is taken");

        /* MUG `-cgi 19,14,5`: 1g at 6, 2g at 4, 4g at 0: slice 7 free, all 7 compute slices
         * used: nothing can be added wherever the instances are. */
        struct gv_relayout_instance mug2[] = {
                gi(&a100, "1g.5gb", 6, "a"), gi(&a100, "2g.10gb", 4, "b"),
                gi(&a100, "4g.20gb", 0, "c"),
        };
        plan_ok(&a100, mug2, 3, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_LIMITS);
        assert_int_equal(p.before.free_slices, 1);
        assert_int_equal(p.compute_used, 7);
        assert_no_moves(&p, mug2, 3);
        assert_explains(&a100, &p, "7 of the GPU's 7 compute slices");

        /* SCW H100 `-cgi 9,19,19,19`: 1g at 0, 1, 2 and 3g at 4: slice 3 takes a 1g, which
         * is all one free slice can hold. */
        struct gv_relayout_instance scw[] = {
                gi(&h100, "1g.10gb", 0, "a"), gi(&h100, "1g.10gb", 1, "b"),
                gi(&h100, "1g.10gb", 2, "c"), gi(&h100, "3g.40gb", 4, "d"),
        };
        plan_ok(&h100, scw, 4, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_COMPACT);
        assert_string_equal(p.before.largest->name, "1g.10gb");
        assert_int_equal(p.before.largest_run, 1);
        assert_no_moves(&p, scw, 4);
        assert_explains(&h100, &p, "already compact");

        /* No instances: nothing to move; 7g is placeable. */
        plan_ok(&h100, NULL, 0, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_EMPTY);
        assert_string_equal(p.before.largest->name, "7g.80gb");
        assert_int_equal(p.before.free_slices, 8);
        assert_int_equal(p.before.largest_run, 8);
}

/* A 1g at slice 1 and a 2g at 4 block both 3g placements and the 4g; moving the 1g to slice 6
 * frees slices 0-3 for a 4g. One move, of the VM using the 1g. */
static void test_frees_4g(void **state)
{
        struct gv_mig_geometry h100;
        struct gv_relayout_plan p;

        (void)state;
        geometry("H100-SXM5-80GB", &h100);
        struct gv_relayout_instance inst[] = {
                gi(&h100, "1g.10gb", 1, "vm-a"),
                gi(&h100, "2g.20gb", 4, "vm-b"),
        };
        plan_ok(&h100, inst, 2, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.before.largest->name, "2g.20gb");
        assert_string_equal(p.after.largest->name, "4g.40gb");
        assert_int_equal(p.before.free_slices, 5);
        assert_int_equal(p.after.free_slices, 5);
        assert_int_equal(p.after.largest_run, 4);
        assert_int_equal(p.n_moves, 1);
        assert_int_equal(p.n_live, 1);
        assert_int_equal(p.moves[0].index, 0);
        assert_int_equal(p.moves[0].from, 1);
        assert_int_equal(p.moves[0].to, 6);
        assert_int_equal(p.moves[0].step, 1);
        assert_true(p.moves[0].direct);
        assert_int_equal(p.to[1], 4); /* the 2g stays */
        assert_explains(&h100, &p, "makes room for 4g.40gb");

        /* The new layout is valid, and placing a 4g in it works (mig-layout's own planner). */
        struct gv_mig_instance after[2];
        for (size_t i = 0; i < 2; i++)
                after[i] = (struct gv_mig_instance){
                        .profile = inst[i].profile,
                        .placement = { .start = p.to[i], .size = inst[i].profile->memory_slices },
                };
        assert_int_equal(gv_mig_layout_check(&h100, after, 2, NULL), 0);
        const struct gv_mig_gi_profile *want[] = { p.after.largest };
        struct gv_mig_placement where;
        assert_int_equal(gv_mig_plan(&h100, after, 2, want, 1, &where, NULL), 0);
        assert_int_equal(where.start, 0);
        assert_int_equal(gv_mig_plan(&h100, (struct gv_mig_instance[]){
                                             { inst[0].profile, { 1, 1 } },
                                             { inst[1].profile, { 4, 2 } } },
                                     2, want, 1, &where, NULL),
                         -ENOSPC);
}

/* Three VMs made 1g, 2g, 1g side by side, the middle one deleted and a 1g left at 4: the
 * 2g and 1g placements leave no 4-slice range; with 4 compute slices used a 3g is what can be
 * added, and moving the 1g at 4 (one VM) frees 4-7. Also: a stopped VM's instance moves
 * without a live migration and is preferred over a running one. */
static void test_frees_3g(void **state)
{
        struct gv_mig_geometry a100;
        struct gv_relayout_plan p;

        (void)state;
        geometry("A100-PCIe-40GB", &a100);
        struct gv_relayout_instance inst[] = {
                gi(&a100, "1g.5gb", 1, "vm-a"),
                gi(&a100, "2g.10gb", 2, "vm-b"),
                gi(&a100, "1g.5gb", 4, "vm-c"),
        };
        plan_ok(&a100, inst, 3, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.before.largest->name, "1g.10gb"); /* at 6, two slices */
        assert_string_equal(p.after.largest->name, "3g.20gb");
        assert_int_equal(p.n_moves, 1);
        assert_int_equal(p.moves[0].index, 2);
        assert_int_equal(p.moves[0].from, 4);
        assert_int_equal(p.moves[0].to, 0);
        assert_int_equal(p.after.largest_run, 4);

        /* vm-c stopped (its instance moves with no live migration): the same single move, and
         * it is not counted as live. */
        inst[2].live = false;
        plan_ok(&a100, inst, 3, &p);
        assert_int_equal(p.n_moves, 1);
        assert_int_equal(p.n_live, 0);

        /* A running 1g at 1, a stopped 1g at 2, a 2g at 4 (H100): a 3g fits only in 4-7,
         * so the 2g goes to 0 (moving the running 1g) or to 2 (moving the stopped one). Both
         * are two moves; the second needs one live migration, not two. */
        struct gv_mig_geometry h100;
        geometry("H100-SXM5-80GB", &h100);
        struct gv_relayout_instance two[] = {
                gi(&h100, "1g.10gb", 1, "running"),
                gi(&h100, "1g.10gb", 2, "stopped"),
                gi(&h100, "2g.20gb", 4, "vm-b"),
        };
        two[1].live = false;
        plan_ok(&h100, two, 3, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.before.largest->name, "1g.20gb");
        assert_string_equal(p.after.largest->name, "3g.40gb");
        assert_int_equal(p.n_moves, 2);
        assert_int_equal(p.n_live, 1);
        assert_int_equal(p.to[0], 1); /* the running 1g stays */
        assert_int_equal(p.to[2], 2);
        assert_true(p.to[1] == 0 || p.to[1] == 3);
}

/* 3g at 0 and 2g at 4 (H100): slices 6-7 hold only a 1g.20gb, while a 2g could be added (5 of
 * 7 compute slices used). The better layout swaps them: 3g to 4-7, 2g to 0. Each needs the
 * other's slices, so one VM is parked elsewhere first. */
static void test_swap_order(void **state)
{
        struct gv_mig_geometry h100;
        struct gv_relayout_plan p;

        (void)state;
        geometry("H100-SXM5-80GB", &h100);
        struct gv_relayout_instance inst[] = {
                gi(&h100, "3g.40gb", 0, "big"),
                gi(&h100, "2g.20gb", 4, "small"),
        };
        plan_ok(&h100, inst, 2, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.before.largest->name, "1g.20gb");
        assert_string_equal(p.after.largest->name, "2g.20gb");
        assert_int_equal(p.n_moves, 2);
        assert_int_equal(p.n_live, 2);
        assert_int_equal(p.to[0], 4);
        assert_true(p.to[1] == 0 || p.to[1] == 2);
        /* "big" is parked (not direct), "small" lands first, then "big". */
        assert_int_equal(p.moves[0].index, 1);
        assert_int_equal(p.moves[0].step, 1);
        assert_true(p.moves[0].direct);
        assert_int_equal(p.moves[1].index, 0);
        assert_int_equal(p.moves[1].step, 2);
        assert_false(p.moves[1].direct);
        assert_int_equal(p.moves[1].park_before, 1); /* "big" leaves before step 1 */

        /* A lone 3g at 0 keeps the 4g out: moving it to 4 frees 0-3 (3 + 4 = 7 compute). */
        plan_ok(&h100, inst, 1, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.before.largest->name, "3g.40gb");
        assert_string_equal(p.after.largest->name, "4g.40gb");
        assert_int_equal(p.to[0], 4);
        assert_true(p.moves[0].direct);
}

/* Cases where moving cannot help, each saying why. */
static void test_impossible(void **state)
{
        struct gv_mig_geometry h100, a30;
        struct gv_relayout_plan p;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        (void)state;
        geometry("H100-SXM5-80GB", &h100);
        geometry("A30", &a30);

        /* Seven 1g instances: slice 7 is free, the GPU's 7 instances are all there. */
        struct gv_relayout_instance seven[7];
        for (uint32_t i = 0; i < 7; i++)
                seven[i] = gi(&h100, "1g.10gb", i, "v");
        plan_ok(&h100, seven, 7, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_LIMITS);
        assert_no_moves(&p, seven, 7);
        assert_explains(&h100, &p, "maximum of 7 instances");

        /* A30: a 2g at 0 and a 1g at 3 leave slice 2: a 1g, and one slice holds nothing
         * bigger; compact. */
        struct gv_relayout_instance a[] = { gi(&a30, "2g.12gb", 0, "x"),
                                            gi(&a30, "1g.6gb", 3, "y") };
        plan_ok(&a30, a, 2, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_COMPACT);
        assert_string_equal(p.before.largest->name, "1g.6gb");
        assert_no_moves(&p, a, 2);
        /* A30: 1g at 1 and 1g at 2: a 2g is possible at 0 or 2 only after a move. */
        struct gv_relayout_instance b[] = { gi(&a30, "1g.6gb", 1, "x"),
                                            gi(&a30, "1g.6gb", 2, "y") };
        plan_ok(&a30, b, 2, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_PLAN);
        assert_string_equal(p.after.largest->name, "2g.12gb");
        assert_int_equal(p.n_moves, 1);

        /* Hand-made geometry: a 1-slice profile that only fits at slice 1 and a 3-slice one
         * only at 0-2: with the 1s at 1, three slices are free and the limits allow the 3s,
         * but no arrangement frees 0-2. */
        struct gv_mig_placement p1[] = { { 1, 1 } }, p2[] = { { 0, 2 }, { 2, 2 } },
                                p3[] = { { 0, 3 } };
        struct gv_mig_gi_profile prof[] = {
                { .name = "1s", .id = 1, .slices = 1, .memory_slices = 1, .instances = 1,
                  .placements = p1, .n_placements = 1 },
                { .name = "2s", .id = 2, .slices = 2, .memory_slices = 2, .instances = 2,
                  .placements = p2, .n_placements = 2 },
                { .name = "3s", .id = 3, .slices = 3, .memory_slices = 3, .instances = 1,
                  .placements = p3, .n_placements = 1 },
        };
        struct gv_mig_geometry toy = { .memory_slices = 4, .compute_slices = 4,
                                       .max_instances = 4, .profiles = prof, .n_profiles = 3 };
        struct gv_relayout_instance one = { .profile = &prof[0], .start = 1, .owner = "v",
                                            .live = true };
        plan_ok(&toy, &one, 1, &p);
        assert_int_equal(p.verdict, GV_RELAYOUT_GEOMETRY);
        assert_string_equal(p.wanted->name, "3s");
        assert_string_equal(p.before.largest->name, "2s");
        assert_no_moves(&p, &one, 1);
        assert_explains(&toy, &p, "no arrangement of these instances frees one of its placements");

        /* Invalid layouts are refused, naming the instances. */
        struct gv_relayout_instance overlap[] = { gi(&h100, "3g.40gb", 0, "a"),
                                                  gi(&h100, "1g.10gb", 2, "b") };
        assert_int_equal(gv_relayout_plan(&h100, overlap, 2, &p, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "overlaps"));
        e = gv_error_free(e);
        struct gv_relayout_instance bad_start[] = { gi(&h100, "2g.20gb", 1, "a") };
        assert_int_equal(gv_relayout_plan(&h100, bad_start, 1, &p, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "not one of the profile's placements"));
        e = gv_error_free(e);
        struct gv_relayout_instance foreign = { .profile = &prof[2], .start = 0 };
        assert_int_equal(gv_relayout_plan(&h100, &foreign, 1, &p, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "not one of the GPU's"));
}

/* Every plan over random valid layouts: the new layout is valid, keeps every profile, moves
 * exactly the instances whose start changed, is no worse, and its step order never puts an
 * instance on slices held at that moment (a parked instance holds none). */
static void test_random_layouts(void **state)
{
        struct gv_mig_geometry g;
        unsigned seed = 12345;
        unsigned plans = 0;

        (void)state;
        geometry("H100-SXM5-80GB", &g);
        for (int round = 0; round < 3000; round++) {
                struct gv_mig_instance mi[8];
                struct gv_relayout_instance inst[8];
                size_t n = 0;
                int want = (int)(rand_r(&seed) % 7) + 1;
                for (int t = 0; t < 40 && (int)n < want; t++) {
                        const struct gv_mig_gi_profile *pr =
                                &g.profiles[rand_r(&seed) % g.n_profiles];
                        const struct gv_mig_placement *pl =
                                &pr->placements[rand_r(&seed) % pr->n_placements];
                        mi[n] = (struct gv_mig_instance){ .profile = pr, .placement = *pl };
                        if (gv_mig_layout_check(&g, mi, n + 1, NULL) < 0)
                                continue;
                        inst[n] = (struct gv_relayout_instance){ .profile = pr,
                                                                 .start = pl->start,
                                                                 .owner = "v",
                                                                 .live = rand_r(&seed) % 2 };
                        n++;
                }
                struct gv_relayout_plan p;
                plan_ok(&g, inst, n, &p);
                struct gv_mig_instance after[8];
                uint32_t moved = 0;
                for (size_t i = 0; i < n; i++) {
                        after[i] = (struct gv_mig_instance){
                                .profile = inst[i].profile,
                                .placement = { p.to[i], inst[i].profile->memory_slices },
                        };
                        moved += p.to[i] != inst[i].start;
                }
                assert_int_equal(gv_mig_layout_check(&g, after, n, NULL), 0);
                assert_int_equal(moved, p.n_moves);
                if (p.verdict != GV_RELAYOUT_PLAN) {
                        assert_int_equal(p.n_moves, 0);
                        continue;
                }
                plans++;
                assert_true(p.n_moves > 0);
                assert_true(p.after.largest != NULL);
                assert_true(p.before.largest == NULL ||
                            p.after.largest->memory_slices > p.before.largest->memory_slices ||
                            p.after.largest->slices > p.before.largest->slices);
                /* replay the steps */
                uint32_t occ = 0;
                for (uint32_t k = 0; k < p.n_moves; k++) {
                        const struct gv_relayout_move *m = &p.moves[k];
                        uint32_t sz = inst[m->index].profile->memory_slices;
                        uint32_t tgt =
                                gv_mig_placement_mask(&(struct gv_mig_placement){ m->to, sz });
                        assert_int_equal(m->step, k + 1);
                        assert_true(m->direct == (m->park_before == 0));
                        /* parked instances leave before the step named */
                        for (uint32_t j = 0; j < p.n_moves; j++) {
                                const struct gv_relayout_move *q = &p.moves[j];
                                if (q->park_before == k + 1)
                                        occ &= ~gv_mig_placement_mask(&(struct gv_mig_placement){
                                                q->from, inst[q->index].profile->memory_slices });
                        }
                        uint32_t own = m->direct ? gv_mig_placement_mask(&(struct gv_mig_placement){
                                                           m->from, sz })
                                                 : 0;
                        if (!m->direct)
                                assert_true(m->park_before <= m->step);
                        assert_int_equal(tgt & (occ & ~own), 0);
                        occ = (occ & ~own) | tgt;
                }
        }
        assert_true(plans > 100); /* the random layouts do produce plans */
}

static void test_frag_measure(void **state)
{
        struct gv_mig_geometry h100;
        (void)state;
        geometry("H100-SXM5-80GB", &h100);

        /* Empty and full GPUs: no fragment. */
        assert_true(gv_relayout_frag(&h100, NULL, 0, NULL) == 0);
        struct gv_relayout_instance full[] = { gi(&h100, "4g.40gb", 0, "a"),
                                               gi(&h100, "3g.40gb", 4, "b") };
        assert_true(gv_relayout_frag(&h100, full, 2, NULL) == 0);

        /* A lone 3g at 0: 4 free slices; of the six profiles without +me, 4g and 7g cannot be
         * placed: (4 + 4) / 6 / 8. At 4 (after the re-layout): only 7g: 4 / 6 / 8. */
        struct gv_relayout_instance lone = gi(&h100, "3g.40gb", 0, "a");
        double before = gv_relayout_frag(&h100, &lone, 1, NULL);
        assert_true(before > 8.0 / 48 - 1e-9 && before < 8.0 / 48 + 1e-9);
        lone.start = 4;
        double after = gv_relayout_frag(&h100, &lone, 1, NULL);
        assert_true(after > 4.0 / 48 - 1e-9 && after < 4.0 / 48 + 1e-9);

        /* Weights: only 1g.10gb is in demand, and it fits: no fragment. Only 4g: all 4 free
         * slices (half the GPU). */
        double w[16] = { 0 };
        lone.start = 0;
        for (size_t i = 0; i < h100.n_profiles; i++)
                if (strcmp(h100.profiles[i].name, "1g.10gb") == 0)
                        w[i] = 5;
        assert_true(gv_relayout_frag(&h100, &lone, 1, w) == 0);
        memset(w, 0, sizeof w);
        for (size_t i = 0; i < h100.n_profiles; i++)
                if (strcmp(h100.profiles[i].name, "4g.40gb") == 0)
                        w[i] = 1;
        assert_true(gv_relayout_frag(&h100, &lone, 1, w) == 0.5);
}

static void test_verdict_strings(void **state)
{
        (void)state;
        assert_string_equal(gv_relayout_verdict_to_string(GV_RELAYOUT_GEOMETRY), "geometry");
        assert_int_equal(gv_relayout_verdict_from_string("plan"), GV_RELAYOUT_PLAN);
        assert_int_equal(gv_relayout_verdict_from_string("nope"), -EINVAL);
        assert_null(gv_relayout_verdict_to_string(_GV_RELAYOUT_VERDICT_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_observed_layouts), cmocka_unit_test(test_frees_4g),
                cmocka_unit_test(test_frees_3g),         cmocka_unit_test(test_swap_order),
                cmocka_unit_test(test_impossible),       cmocka_unit_test(test_random_layouts),
                cmocka_unit_test(test_frag_measure),     cmocka_unit_test(test_verdict_strings),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
