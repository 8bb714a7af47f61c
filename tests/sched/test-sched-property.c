/* SPDX-License-Identifier: MIT */
/*
 * test-sched-property — random request streams (fixed seeds) on random mixed clusters
 * (H100 and A30 with MIG, L4 with mixed-size vGPU, openb share-only models; GPUs in every
 * mode; hosts in maintenance; labels and anti-affinity groups), under every built-in policy.
 * After every step the test recomputes the whole allocation state from the list of live
 * placements, independently of the engine, and checks:
 *   - nothing is over-committed (CPU, memory, milli, MIG slices, instance and compute limits,
 *     vGPU same-size rule, mixed-size placement units, anti-affinity);
 *   - the engine's per-GPU state and per-host aggregates equal the recomputation
 *     (and gv_sched_cluster_check agrees);
 *   - every placement obeys the request's constraints, and every policy sees the same set of
 *     feasible hosts (feasibility does not depend on the policy);
 * and at the end that releasing everything, in random order, restores the initial cluster.
 */
#include "sched-fixture.h"

#define STEPS 500
#define MAX_LIVE 400

static uint64_t rng_state;

static uint64_t rnd(void)
{
        /* splitmix64 */
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint32_t rndn(uint32_t n)
{
        return (uint32_t)(rnd() % n);
}

struct live {
        struct gv_sched_request r;
        struct gv_sched_placement pl;
};

static const char *const catalog_models[] = { "H100-SXM5-80GB", "A30", "L4" };

static struct gv_sched_cluster *random_cluster(void)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_error *e = NULL;
        uint32_t models[5];
        static const char *const labels[] = { "a", "b" };

        for (size_t i = 0; i < ELEMENTSOF(catalog_models); i++)
                models[i] = fx_model(c, catalog_models[i]);
        models[3] = fx_share_model(c, "G2", 32510);
        models[4] = fx_share_model(c, "T4", 15109);
        uint32_t n_hosts = 6 + rndn(8);
        for (uint32_t h = 0; h < n_hosts; h++) {
                struct gv_sched_gpu_spec gpus[8];
                uint32_t mi = rndn(5);
                const struct gv_sched_model *m = gv_sched_cluster_model(c, models[mi]);
                uint32_t n = 1 + rndn(8);
                for (uint32_t i = 0; i < n; i++) {
                        enum gv_sched_gpu_mode mode;
                        do
                                mode = (enum gv_sched_gpu_mode)rndn(_GV_SCHED_MODE_MAX);
                        while ((mode == GV_SCHED_MODE_MIG && !m->mig) ||
                               (mode == GV_SCHED_MODE_VGPU &&
                                !(m->catalog && m->catalog->n_vgpu_types)));
                        gpus[i] = (struct gv_sched_gpu_spec){
                                .model = models[mi],
                                .mode = mode,
                                .mixed_size = m->catalog && rndn(2),
                        };
                }
                char name[16];
                snprintf(name, sizeof(name), "host%u", h);
                struct gv_sched_host_spec spec = {
                        .name = name,
                        .cpu_milli = 8000 + 1000 * rndn(64),
                        .memory_mib = 16384 + 1024 * rndn(256),
                        .state = rndn(8) == 0 ? GV_SCHED_HOST_MAINTENANCE : GV_SCHED_HOST_UP,
                        .labels = labels + rndn(2),
                        .n_labels = rndn(2),
                        .gpus = gpus,
                        .n_gpus = n,
                };
                int q = gv_sched_cluster_add_host(c, &spec, &e);
                if (q < 0)
                        fail_msg("add host: %s", gv_error_msg(e, q));
        }
        assert_int_equal(gv_sched_cluster_group(c, "g1"), 1);
        assert_int_equal(gv_sched_cluster_group(c, "g2"), 2);
        return c;
}

static const uint32_t openb_milli[] = { 50, 110, 160, 220, 230, 320, 370, 460, 470, 550, 590,
                                        650, 810, 1000 };

/* A random request; false when it does not resolve (a legitimate refusal). */
static bool random_request(const struct gv_sched_cluster *c, struct gv_sched_request *r)
{
        *r = (struct gv_sched_request){
                .cpu_milli = 500 * rndn(16),
                .memory_mib = 512 * rndn(32),
        };
        switch (rndn(7)) {
        case 0:
                r->kind = GV_SCHED_KIND_NONE;
                break;
        case 1:
                r->kind = GV_SCHED_KIND_WHOLE;
                r->num_gpu = 1 + rndn(4);
                break;
        case 2:
        case 3:
                r->kind = GV_SCHED_KIND_SHARE;
                r->gpu_milli = openb_milli[rndn(ELEMENTSOF(openb_milli))];
                r->num_gpu = r->gpu_milli == 1000 ? 1 + rndn(4) : 1;
                break;
        case 4: {
                const struct gv_gpu_model *m = gv_sched_cluster_model(c, rndn(3))->catalog;
                r->kind = GV_SCHED_KIND_VGPU;
                r->type = m->vgpu_types[rndn((uint32_t)m->n_vgpu_types)].name;
                break;
        }
        case 5: {
                const struct gv_gpu_model *m = gv_sched_cluster_model(c, rndn(2))->catalog;
                r->kind = GV_SCHED_KIND_MIG;
                r->type = m->gi_profiles[rndn((uint32_t)m->n_gi_profiles)].name;
                break;
        }
        default:
                r->kind = GV_SCHED_KIND_NEED;
                r->need.gpu_memory_mib = 1024 + 1024 * rndn(40);
                r->need.isolation = (enum gv_sched_isolation)rndn(3);
                r->need.live_migration = rndn(2);
                break;
        }
        if (rndn(6) == 0)
                r->labels = UINT64_C(1) << rndn(2);
        if (rndn(6) == 0)
                r->group = 1 + rndn(2);
        if (rndn(5) == 0)
                r->model_mask = (rnd() & 0x1f) | 1;
        if (rndn(3) == 0)
                r->tie_seed = rnd() | 1;
        return gv_sched_request_resolve(c, r, NULL) == 0;
}

/* Expected per-GPU state, recomputed from the live placements. */
struct expect_gpu {
        uint32_t n_alloc, share_milli, mig_occupied, mig_compute, mig_instances, n_vgpus;
        uint32_t mig_count[GV_SCHED_MAX_MIG_PROFILES];
        uint64_t vgpu_fb;
        uint64_t units[GV_SCHED_VGPU_UNITS / 64];
        int vgpu_type;
        int mode;
};

static uint32_t size_of(const struct gv_vgpu_type *t)
{
        uint64_t s = (t->framebuffer_mib + 1023) / 1024;
        return (uint32_t)(s ? s : 1);
}

static int mode_of(uint8_t alloc)
{
        switch (alloc) {
        case GV_SCHED_ALLOC_WHOLE:
                return GV_SCHED_MODE_PASSTHROUGH;
        case GV_SCHED_ALLOC_SHARE:
                return GV_SCHED_MODE_SHARE;
        case GV_SCHED_ALLOC_VGPU:
                return GV_SCHED_MODE_VGPU;
        default:
                return GV_SCHED_MODE_MIG;
        }
}

static void recompute_and_compare(const struct gv_sched_cluster *c, const struct live *lv,
                                  size_t n_live)
{
        size_t n_gpus = gv_sched_cluster_n_gpus(c), n_hosts = gv_sched_cluster_n_hosts(c);
        struct expect_gpu *x = xnew0(struct expect_gpu, n_gpus);
        uint64_t *cpu = xnew0(uint64_t, n_hosts), *mem = xnew0(uint64_t, n_hosts);
        uint32_t *placed = xnew0(uint32_t, n_hosts), *grp = xnew0(uint32_t, n_hosts * 3);

        for (size_t i = 0; i < n_gpus; i++) {
                x[i].vgpu_type = -1;
                x[i].mode = -1;
        }
        for (size_t k = 0; k < n_live; k++) {
                const struct gv_sched_placement *pl = &lv[k].pl;
                const struct gv_sched_request *r = &lv[k].r;
                cpu[pl->host] += r->cpu_milli;
                mem[pl->host] += r->memory_mib;
                placed[pl->host]++;
                if (r->group) {
                        grp[pl->host * 3 + r->group]++;
                        assert_true(grp[pl->host * 3 + r->group] <= 1); /* anti-affinity */
                }
                for (uint32_t s = 0; s < pl->n_slots; s++) {
                        const struct gv_sched_slot *sl = &pl->slots[s];
                        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, sl->gpu);
                        const struct gv_gpu_model *cm = gv_sched_cluster_model(c, g->model)->catalog;
                        struct expect_gpu *e = &x[sl->gpu];
                        /* One mode per GPU at a time. */
                        assert_true(e->mode == -1 || e->mode == mode_of(sl->alloc));
                        e->mode = mode_of(sl->alloc);
                        e->n_alloc++;
                        switch (sl->alloc) {
                        case GV_SCHED_ALLOC_WHOLE:
                                assert_int_equal(e->n_alloc, 1);
                                break;
                        case GV_SCHED_ALLOC_SHARE:
                                e->share_milli += sl->milli;
                                assert_true(e->share_milli <= 1000);
                                break;
                        case GV_SCHED_ALLOC_VGPU: {
                                const struct gv_vgpu_type *t = &cm->vgpu_types[sl->index];
                                assert_null(t->gi);
                                e->n_vgpus++;
                                e->vgpu_fb += t->framebuffer_mib;
                                if (!g->mixed_size) {
                                        /* same-size rule */
                                        assert_true(e->vgpu_type == -1 ||
                                                    e->vgpu_type == sl->index);
                                        e->vgpu_type = sl->index;
                                        assert_true(e->n_vgpus <= t->max_instances);
                                } else {
                                        uint32_t sz = size_of(t);
                                        assert_int_equal(sl->start % sz, 0);
                                        assert_true(sl->start / sz < t->max_instances_mixed);
                                        for (uint32_t u = sl->start; u < sl->start + sz; u++) {
                                                assert_false((e->units[u / 64] >> (u % 64)) & 1);
                                                e->units[u / 64] |= UINT64_C(1) << (u % 64);
                                        }
                                }
                                break;
                        }
                        default: {
                                const struct gv_mig_gi_profile *p;
                                if (sl->alloc == GV_SCHED_ALLOC_MIG)
                                        p = &cm->gi_profiles[sl->index];
                                else
                                        p = cm->vgpu_types[sl->index].gi;
                                assert_non_null(p);
                                size_t pi = (size_t)(p - cm->gi_profiles);
                                bool valid = false;
                                for (size_t q = 0; q < p->n_placements; q++)
                                        valid |= p->placements[q].start == sl->start;
                                assert_true(valid); /* a placement of the profile */
                                uint32_t mask = ((1u << p->memory_slices) - 1) << sl->start;
                                assert_false(e->mig_occupied & mask); /* no overlap */
                                assert_true(sl->start + p->memory_slices <= cm->mig_memory_slices);
                                e->mig_occupied |= mask;
                                e->mig_count[pi]++;
                                e->mig_instances++;
                                e->mig_compute += p->slices;
                                assert_true(e->mig_count[pi] <= p->instances);
                                assert_true(e->mig_instances <= cm->mig_max_instances);
                                assert_true(e->mig_compute <= cm->mig_compute_slices);
                                break;
                        }
                        }
                }
        }
        for (size_t h = 0; h < n_hosts; h++) {
                const struct gv_sched_host *hh = gv_sched_cluster_host(c, (uint32_t)h);
                assert_true(cpu[h] <= hh->cpu_milli);
                assert_true(mem[h] <= hh->memory_mib);
                assert_int_equal(hh->cpu_free, hh->cpu_milli - cpu[h]);
                assert_int_equal(hh->memory_free, hh->memory_mib - mem[h]);
                assert_int_equal(hh->n_placed, placed[h]);
                uint32_t free_gpus = 0, used = 0;
                for (uint32_t i = hh->first_gpu; i < hh->first_gpu + hh->n_gpus; i++) {
                        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, i);
                        const struct expect_gpu *e = &x[i];
                        assert_int_equal(g->n_alloc, e->n_alloc);
                        if (e->n_alloc == 0) {
                                free_gpus++;
                                assert_int_equal(g->mode, g->base_mode);
                                continue;
                        }
                        assert_int_equal(g->mode, e->mode);
                        used += g->used_milli;
                        switch (g->mode) {
                        case GV_SCHED_MODE_SHARE:
                                assert_int_equal(g->share_milli, e->share_milli);
                                assert_int_equal(g->used_milli, e->share_milli);
                                break;
                        case GV_SCHED_MODE_PASSTHROUGH:
                                assert_int_equal(g->used_milli, 1000);
                                break;
                        case GV_SCHED_MODE_VGPU:
                                assert_int_equal(g->n_vgpus, e->n_vgpus);
                                assert_int_equal(g->vgpu_fb_mib, e->vgpu_fb);
                                if (g->mixed_size)
                                        assert_memory_equal(g->vgpu_units, e->units,
                                                            sizeof(e->units));
                                else
                                        assert_int_equal(g->vgpu_type, e->vgpu_type);
                                break;
                        case GV_SCHED_MODE_MIG:
                                assert_int_equal(g->mig_occupied, e->mig_occupied);
                                assert_int_equal(g->mig_instances, e->mig_instances);
                                assert_int_equal(g->mig_compute_used, e->mig_compute);
                                for (size_t p = 0; p < GV_SCHED_MAX_MIG_PROFILES; p++)
                                        assert_int_equal(g->mig_count[p], e->mig_count[p]);
                                break;
                        default:
                                fail_msg("GPU %u in use without a mode", i);
                        }
                        assert_true(g->used_milli <= 1000);
                }
                assert_int_equal(hh->free_gpus, free_gpus);
                assert_int_equal(hh->used_milli, used);
        }
        fx_check(c);
        free(x);
        free(cpu);
        free(mem);
        free(placed);
        free(grp);
}

/* The placement obeys the request's constraints. */
static void check_constraints(const struct gv_sched_cluster *c, const struct gv_sched_request *r,
                              const struct gv_sched_placement *pl)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, pl->host);
        assert_int_equal(h->state, GV_SCHED_HOST_UP);
        assert_int_equal(h->labels & r->labels, r->labels);
        uint64_t allowed = r->model_mask ? r->model_mask : UINT64_MAX;
        for (uint32_t i = 0; i < pl->n_slots; i++) {
                const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, pl->slots[i].gpu);
                assert_int_equal(g->host, pl->host);
                assert_true(allowed >> g->model & 1);
                if (i > 0) /* multi-GPU: one model */
                        assert_int_equal(g->model,
                                         gv_sched_cluster_gpu(c, pl->slots[0].gpu)->model);
        }
        if (r->kind == GV_SCHED_KIND_NEED && r->need.live_migration)
                for (uint32_t i = 0; i < pl->n_slots; i++)
                        assert_true(pl->slots[i].alloc == GV_SCHED_ALLOC_VGPU ||
                                    pl->slots[i].alloc == GV_SCHED_ALLOC_MIG_VGPU);
        if (r->kind == GV_SCHED_KIND_NEED &&
            r->need.isolation == GV_SCHED_ISOLATION_HARDWARE)
                for (uint32_t i = 0; i < pl->n_slots; i++)
                        assert_true(pl->slots[i].alloc != GV_SCHED_ALLOC_VGPU &&
                                    pl->slots[i].alloc != GV_SCHED_ALLOC_SHARE);
}

struct snapshot {
        struct gv_sched_host *hosts;
        struct gv_sched_gpu *gpus;
        uint64_t used;
};

static void snap(const struct gv_sched_cluster *c, struct snapshot *s)
{
        size_t nh = gv_sched_cluster_n_hosts(c), ng = gv_sched_cluster_n_gpus(c);
        s->hosts = xnew0(struct gv_sched_host, nh);
        s->gpus = xnew0(struct gv_sched_gpu, ng);
        for (size_t i = 0; i < nh; i++)
                s->hosts[i] = *gv_sched_cluster_host(c, (uint32_t)i);
        for (size_t i = 0; i < ng; i++)
                s->gpus[i] = *gv_sched_cluster_gpu(c, (uint32_t)i);
        s->used = gv_sched_cluster_used_milli(c);
}

static void compare_snap(const struct gv_sched_cluster *c, const struct snapshot *s)
{
        for (size_t i = 0; i < gv_sched_cluster_n_hosts(c); i++) {
                const struct gv_sched_host *a = &s->hosts[i], *b = gv_sched_cluster_host(c, i);
                assert_int_equal(a->cpu_free, b->cpu_free);
                assert_int_equal(a->memory_free, b->memory_free);
                assert_int_equal(a->free_gpus, b->free_gpus);
                assert_int_equal(a->share_free_milli, b->share_free_milli);
                assert_int_equal(a->share_max_free_milli, b->share_max_free_milli);
                assert_int_equal(a->used_milli, b->used_milli);
                assert_int_equal(a->n_placed, b->n_placed);
                assert_int_equal(a->state, b->state);
        }
        for (size_t i = 0; i < gv_sched_cluster_n_gpus(c); i++) {
                const struct gv_sched_gpu *a = &s->gpus[i], *b = gv_sched_cluster_gpu(c, i);
                assert_int_equal(a->mode, b->mode);
                assert_int_equal(a->n_alloc, b->n_alloc);
                assert_int_equal(a->used_milli, b->used_milli);
                assert_int_equal(a->share_milli, b->share_milli);
                assert_int_equal(a->vgpu_type, b->vgpu_type);
                assert_int_equal(a->n_vgpus, b->n_vgpus);
                assert_int_equal(a->vgpu_fb_mib, b->vgpu_fb_mib);
                assert_memory_equal(a->vgpu_units, b->vgpu_units, sizeof(a->vgpu_units));
                assert_int_equal(a->mig_occupied, b->mig_occupied);
                assert_int_equal(a->mig_compute_used, b->mig_compute_used);
                assert_int_equal(a->mig_instances, b->mig_instances);
                assert_memory_equal(a->mig_count, b->mig_count, sizeof(a->mig_count));
        }
        assert_int_equal(s->used, gv_sched_cluster_used_milli(c));
}

static const struct gv_sched_policy *const policies[] = {
        &gv_sched_policy_first_fit,
        &gv_sched_policy_spread,
        &gv_sched_policy_best_fit,
        &gv_sched_policy_gpuvirt,
};

static void run_seed(uint64_t seed)
{
        struct gv_error *e = NULL;
        struct live *lv = xnew0(struct live, MAX_LIVE);
        size_t n_live = 0, placed = 0, refused = 0, released = 0;
        struct snapshot s0;

        rng_state = seed;
        struct gv_sched_cluster *c = random_cluster();
        for (size_t p = 0; p < ELEMENTSOF(policies); p++)
                assert_int_equal(gv_sched_policy_attach(c, policies[p], NULL), 0);
        snap(c, &s0);
        for (int step = 0; step < STEPS; step++) {
                if (n_live > 0 && (n_live == MAX_LIVE || rndn(10) < 3)) {
                        size_t k = rndn((uint32_t)n_live);
                        int q = gv_sched_release(c, &lv[k].r, &lv[k].pl, &e);
                        if (q < 0)
                                fail_msg("seed %" PRIu64 " step %d: release: %s", seed, step,
                                         gv_error_msg(e, q));
                        lv[k] = lv[--n_live];
                        released++;
                } else {
                        struct gv_sched_request r;
                        if (!random_request(c, &r))
                                continue;
                        struct gv_sched_placement pl[ELEMENTSOF(policies)];
                        struct gv_sched_explain why[ELEMENTSOF(policies)];
                        int res[ELEMENTSOF(policies)];
                        for (size_t p = 0; p < ELEMENTSOF(policies); p++) {
                                res[p] = gv_sched_place(c, policies[p], &r, &pl[p], &why[p],
                                                        NULL);
                                assert_true(res[p] == 0 || res[p] == -ENOSPC);
                                assert_int_equal(res[p], res[0]);
                                uint32_t sum = why[p].feasible;
                                for (int k = 0; k < _GV_SCHED_REJECT_MAX; k++)
                                        sum += why[p].rejected[k];
                                assert_int_equal(sum, why[p].hosts);
                                /* first-fit stops at its host; the others look at all */
                                if (policies[p]->first_host_wins) {
                                        assert_true(res[p] < 0 || why[p].feasible == 1);
                                        continue;
                                }
                                assert_int_equal(why[p].hosts, gv_sched_cluster_n_hosts(c));
                        }
                        /* feasibility does not depend on the policy */
                        for (size_t p = 1; p < ELEMENTSOF(policies); p++)
                                if (!policies[p]->first_host_wins)
                                        assert_int_equal(why[p].feasible, why[1].feasible);
                        if (res[0] < 0) {
                                assert_int_equal(why[1].feasible, 0);
                                refused++;
                                continue;
                        }
                        size_t p = (size_t)step % ELEMENTSOF(policies);
                        check_constraints(c, &r, &pl[p]);
                        int q = gv_sched_reserve(c, &r, &pl[p], &e);
                        if (q < 0)
                                fail_msg("seed %" PRIu64 " step %d: reserve: %s", seed, step,
                                         gv_error_msg(e, q));
                        lv[n_live].r = r;
                        lv[n_live++].pl = pl[p];
                        placed++;
                }
                recompute_and_compare(c, lv, n_live);
        }
        /* The stream must exercise both outcomes. */
        assert_true(placed > 50);
        assert_true(refused > 5);
        assert_true(released > 20);
        while (n_live > 0) {
                size_t k = rndn((uint32_t)n_live);
                assert_int_equal(gv_sched_release(c, &lv[k].r, &lv[k].pl, NULL), 0);
                lv[k] = lv[--n_live];
        }
        recompute_and_compare(c, lv, 0);
        compare_snap(c, &s0);
        free(s0.hosts);
        free(s0.gpus);
        free(lv);
        gv_sched_cluster_free(c);
}

static void test_streams(void **state)
{
        (void)state;
        for (uint64_t seed = 1; seed <= 12; seed++)
                run_seed(seed);
}

/* Trace-like stream on an openb-shaped cluster until it is full: allocation never exceeds
 * capacity and the aggregates stay exact, under every policy. */
static void test_fill_to_full(void **state)
{
        (void)state;
        for (size_t p = 0; p < ELEMENTSOF(policies); p++) {
                struct gv_sched_cluster *c = gv_sched_cluster_new();
                uint32_t g2 = fx_share_model(c, "G2", 32510);
                uint32_t t4 = fx_share_model(c, "T4", 15109);
                for (int h = 0; h < 40; h++) {
                        char name[16];
                        snprintf(name, sizeof(name), "n%d", h);
                        fx_host(c, name, h % 3 ? g2 : t4, h % 3 ? 8 : 2,
                                GV_SCHED_MODE_UNASSIGNED, false, NULL, 0);
                }
                assert_int_equal(gv_sched_policy_attach(c, policies[p], NULL), 0);
                rng_state = 42 + p;
                uint32_t fails = 0;
                uint64_t placed_milli = 0;
                while (fails < 200) {
                        struct gv_sched_request r = fx_req(GV_SCHED_KIND_SHARE);
                        r.cpu_milli = 0;
                        r.memory_mib = 0;
                        r.gpu_milli = openb_milli[rndn(ELEMENTSOF(openb_milli))];
                        r.num_gpu = r.gpu_milli == 1000 ? 1 + rndn(2) : 1;
                        r.tie_seed = rnd();
                        fx_resolve(c, &r);
                        struct gv_sched_placement pl;
                        if (gv_sched_place(c, policies[p], &r, &pl, NULL, NULL) < 0) {
                                fails++;
                                continue;
                        }
                        assert_int_equal(gv_sched_reserve(c, &r, &pl, NULL), 0);
                        placed_milli += (uint64_t)r.num_gpu * r.gpu_milli;
                }
                fx_check(c);
                assert_int_equal(gv_sched_cluster_used_milli(c), placed_milli);
                assert_true(placed_milli <= gv_sched_cluster_n_gpus(c) * 1000);
                /* Nearly full: every policy packs above 80 % on this mix. */
                assert_true(placed_milli * 100 > gv_sched_cluster_n_gpus(c) * 1000 * 80);
                gv_sched_cluster_free(c);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_streams),
                cmocka_unit_test(test_fill_to_full),
        };
        return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
