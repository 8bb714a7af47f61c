/* SPDX-License-Identifier: MIT */
/*
 * test-gpuvirt: what sets the `gpuvirt` policy apart (src/sched/policy-gpuvirt.c,
 * docs/placement.md "gpuvirt (ours)"): it keeps a free 8-GPU host whole for the large requests
 * it has seen when a partly used host can take a share (demand-weighted fragmentation), it sends
 * CPU to hosts whose GPUs do not need it (CPU-stranded GPU), its learned shapes ask CPU in
 * 4-core classes, its score is a deterministic
 * function of the cluster and the requests seen, and it must be attached.
 */
#include "sched-fixture.h"

#define GV (&gv_sched_policy_gpuvirt)
#define BF (&gv_sched_policy_best_fit)

/* A host of n share-only GPUs of model with cpu cores. */
static uint32_t host(struct gv_sched_cluster *c, const char *name, uint32_t model, size_t n,
                     uint64_t cores)
{
        struct gv_sched_gpu_spec gpus[GV_SCHED_MAX_HOST_GPUS];
        struct gv_error *e = NULL;

        for (size_t i = 0; i < n; i++)
                gpus[i] = (struct gv_sched_gpu_spec){ .model = model };
        struct gv_sched_host_spec spec = {
                .name = name,
                .cpu_milli = cores * 1000,
                .memory_mib = 512 * 1024,
                .state = GV_SCHED_HOST_UP,
                .gpus = gpus,
                .n_gpus = n,
        };
        int id = gv_sched_cluster_add_host(c, &spec, &e);
        if (id < 0)
                fail_msg("add host %s: %s", name, gv_error_msg(e, id));
        return (uint32_t)id;
}

static struct gv_sched_request req(uint64_t cores, uint32_t n, uint32_t milli)
{
        struct gv_sched_request r = fx_req(n ? GV_SCHED_KIND_SHARE : GV_SCHED_KIND_NONE);
        r.cpu_milli = cores * 1000;
        r.memory_mib = 0;
        r.num_gpu = n;
        r.gpu_milli = n ? milli : 0;
        return r;
}

/* gpuvirt learns the workload from the requests it is asked to place: ask without reserving. */
static void teach(struct gv_sched_cluster *c, struct gv_sched_request r, int times)
{
        struct gv_sched_placement pl;

        fx_resolve(c, &r);
        for (int i = 0; i < times; i++)
                (void)gv_sched_place(c, GV, &r, &pl, NULL, NULL);
}

/* Reserve a share of milli on GPU gpu with cores of CPU (a hand-made placement). */
static void put(struct gv_sched_cluster *c, uint32_t h, uint32_t gpu, uint64_t cores,
                uint32_t milli)
{
        struct gv_sched_request r = req(cores, 1, milli);
        struct gv_sched_placement pl = { .host = h, .n_slots = 1 };
        struct gv_error *e = NULL;

        pl.slots[0] = (struct gv_sched_slot){ .gpu = gpu, .alloc = GV_SCHED_ALLOC_SHARE,
                                              .index = -1, .milli = (uint16_t)milli };
        fx_resolve(c, &r);
        int q = gv_sched_reserve(c, &r, &pl, &e);
        if (q < 0)
                fail_msg("reserve: %s", gv_error_msg(e, q));
}

/* A fully free 8-GPU host stays whole when a partly used host can take a small share, because
 * the 8-GPU requests seen weigh by their GPU demand: 2 of them against 126 half-GPU shares are
 * 1.6 % of the requests (out of FGD's count-based typical set) but 20 % of the GPU demand.
 * Best-fit (least leftover) takes the free host here, its CPU being tighter. */
static void test_keeps_free_host(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        (void)state;

        uint32_t g2 = fx_share_model(c, "G2", 32510);
        uint32_t a = host(c, "free", g2, 8, 96);
        uint32_t b = host(c, "used", g2, 8, 128);
        const struct gv_sched_host *hb = gv_sched_cluster_host(c, b);
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);
        put(c, b, hb->first_gpu, 4, 500);

        teach(c, req(64, 8, 1000), 2);
        teach(c, req(4, 1, 500), 126); /* 128 requests: the typical set is rebuilt */

        struct gv_sched_request s = req(4, 1, 500);
        s.tie_seed = 7;
        fx_resolve(c, &s);
        assert_int_equal(gv_sched_place(c, BF, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, a);
        assert_int_equal(gv_sched_place(c, GV, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, b);
        assert_int_equal(pl.slots[0].gpu, hb->first_gpu); /* the half-used GPU: exact fit */

        /* The 8-GPU request still finds its host afterwards. */
        assert_int_equal(gv_sched_reserve(c, &s, &pl, NULL), 0);
        struct gv_sched_request big = req(64, 8, 1000);
        fx_resolve(c, &big);
        assert_int_equal(gv_sched_place(c, GV, &big, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, a);
        fx_check(c);
        gv_sched_cluster_free(c);
}

/* A CPU-only request goes where its CPU strands no GPU: the GPU requests seen ask 12 cores per
 * GPU, host "poor" has 2 free GPUs and 24 free cores (exactly enough), host "rich" 2 free GPUs
 * and 104 cores. Best-fit takes "poor" (less leftover); gpuvirt takes "rich". */
static void test_cpu_goes_where_gpus_do_not_need_it(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        (void)state;

        uint32_t g2 = fx_share_model(c, "G2", 32510);
        uint32_t t4 = fx_share_model(c, "T4", 15109);
        uint32_t poor = host(c, "poor", g2, 8, 96);
        uint32_t rich = host(c, "rich", t4, 2, 104);
        const struct gv_sched_host *hp = gv_sched_cluster_host(c, poor);
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);
        for (uint32_t g = 0; g < 6; g++)
                put(c, poor, hp->first_gpu + g, 12, 1000);
        assert_int_equal(hp->cpu_free, 24000);

        teach(c, req(12, 1, 1000), 20);

        struct gv_sched_request cpu = req(8, 0, 0);
        fx_resolve(c, &cpu);
        assert_int_equal(gv_sched_place(c, BF, &cpu, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, poor);
        assert_int_equal(gv_sched_place(c, GV, &cpu, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, rich);
        assert_int_equal(pl.n_slots, 0);
        gv_sched_cluster_free(c);
}

/* The learned shapes' CPU is rounded up to 4-core classes (policy-gpuvirt.c SHAPE_CPU_QUANTUM):
 * the 1-GPU requests seen ask 13 cores, so their class asks 16. A 2-core CPU-only request
 * chooses between "x" (2 free GPUs, 15 cores: the class does not fit before or after, but 2
 * cores there strand 154 milli of GPU at 13 cores per GPU) and "y" (1 free GPU, 17 cores: the
 * class fits before and not after, 1000 milli become fragment). With exact CPU (13) both
 * hosts keep fitting, only the stranding counts, and "y" would win. */
static void test_cpu_classes(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        (void)state;

        uint32_t t4 = fx_share_model(c, "T4", 15109);
        uint32_t x = host(c, "x", t4, 2, 15);
        uint32_t y = host(c, "y", t4, 1, 17);
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);

        teach(c, req(13, 1, 1000), 16); /* the typical set is rebuilt at 16 */

        struct gv_sched_request cpu = req(2, 0, 0);
        fx_resolve(c, &cpu);
        assert_int_equal(gv_sched_place(c, GV, &cpu, &pl, NULL, NULL), 0);
        assert_int_equal(pl.host, x);
        assert_int_not_equal(pl.host, y);
        gv_sched_cluster_free(c);
}

/* Build the same cluster and history twice. */
static struct gv_sched_cluster *history(void)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        uint32_t g2 = fx_share_model(c, "G2", 32510);
        uint32_t t4 = fx_share_model(c, "T4", 15109);
        static const uint32_t milli[] = { 810, 470, 1000, 650, 320, 230, 1000, 160 };

        for (int i = 0; i < 12; i++) {
                char name[16];
                snprintf(name, sizeof(name), "n%d", i);
                host(c, name, i % 3 ? g2 : t4, i % 3 ? 8 : 2, i % 3 ? 96 : 104);
        }
        assert_int_equal(gv_sched_policy_attach(c, GV, NULL), 0);
        for (int i = 0; i < 60; i++) {
                struct gv_sched_request r = req(2 + (uint64_t)(i % 5) * 3, 1, milli[i % 8]);
                if (i % 11 == 0)
                        r = req(8, 0, 0);
                if (i == 30)
                        r = req(32, 4, 1000);
                assert_int_equal(fx_take(c, GV, &r, NULL, NULL, NULL), 0);
        }
        return c;
}

/* The score is a function of the cluster and the requests seen: equal histories give equal
 * scores and decisions, scoring twice gives the same number, and with a unique best score the
 * tie seed does not matter. Scores are continuous: candidates on different hosts rarely tie. */
static void test_deterministic(void **state)
{
        struct gv_sched_cluster *c1 = history(), *c2 = history();
        struct gv_sched_placement p1, p2;
        (void)state;

        struct gv_sched_request r = req(6, 1, 470);
        fx_resolve(c1, &r);
        r.tie_seed = 1;
        assert_int_equal(gv_sched_place(c1, GV, &r, &p1, NULL, NULL), 0);
        r.tie_seed = 99;
        assert_int_equal(gv_sched_place(c2, GV, &r, &p2, NULL, NULL), 0);
        assert_int_equal(p1.host, p2.host);
        assert_int_equal(p1.slots[0].gpu, p2.slots[0].gpu);

        void *s1 = gv_sched_policy_state(c1, GV), *s2 = gv_sched_policy_state(c2, GV);
        assert_non_null(s1);
        struct gv_sched_score a, b, d;
        GV->score(c1, s1, &r, &p1, &a);
        GV->score(c1, s1, &r, &p1, &b);
        GV->score(c2, s2, &r, &p2, &d);
        assert_true(a.primary == b.primary && a.secondary == b.secondary);
        assert_true(a.primary == d.primary && a.secondary == d.secondary);

        /* Distinct scores over the hosts: not the broad integer ties of fgd. */
        double seen[16];
        size_t n_seen = 0, distinct = 0;
        for (uint32_t h = 0; h < gv_sched_cluster_n_hosts(c1); h++) {
                const struct gv_sched_host *hh = gv_sched_cluster_host(c1, h);
                const uint32_t *fm = gv_sched_cluster_free_milli(c1);
                struct gv_sched_placement cand = { .host = h, .n_slots = 1 };
                uint32_t best = UINT32_MAX;
                for (uint32_t g = hh->first_gpu; g < hh->first_gpu + hh->n_gpus; g++)
                        if (fm[g] >= r.gpu_milli && (best == UINT32_MAX || fm[g] < fm[best]))
                                best = g;
                if (best == UINT32_MAX || hh->cpu_free < r.cpu_milli)
                        continue;
                cand.slots[0] = (struct gv_sched_slot){ .gpu = best,
                                                        .alloc = GV_SCHED_ALLOC_SHARE,
                                                        .index = -1, .milli = 470 };
                GV->score(c1, s1, &r, &cand, &a);
                bool dup = false;
                for (size_t k = 0; k < n_seen; k++)
                        dup = dup || seen[k] == a.primary;
                distinct += !dup;
                seen[n_seen++] = a.primary;
        }
        assert_true(n_seen >= 6);
        assert_true(distinct * 2 > n_seen);
        gv_sched_cluster_free(c1);
        gv_sched_cluster_free(c2);
}

/* gpuvirt keeps per-cluster state: unattached it refuses and says what to do. Requests outside
 * the share world (MIG) still place with it, by best-fit and slice geometry. */
static void test_attach_and_other_kinds(void **state)
{
        struct gv_sched_cluster *c = gv_sched_cluster_new();
        struct gv_sched_placement pl;
        struct gv_error *e = NULL;
        (void)state;

        uint32_t h100 = fx_model(c, "H100-SXM5-80GB");
        fx_host(c, "h", h100, 2, GV_SCHED_MODE_MIG, false, NULL, 0);
        struct gv_sched_request r = fx_req(GV_SCHED_KIND_MIG);
        r.type = "1g.10gb";
        fx_resolve(c, &r);
        assert_int_equal(gv_sched_place(c, GV, &r, &pl, NULL, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "attach"));
        e = gv_error_free(e);

        assert_int_equal(fx_take(c, GV, &r, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].alloc, GV_SCHED_ALLOC_MIG);
        assert_int_not_equal(pl.slots[0].start, 0); /* not slice 0: keeps 4g/7g ranges open */
        struct gv_sched_request s = req(4, 1, 500);
        fx_resolve(c, &s);
        assert_int_equal(gv_sched_place(c, GV, &s, &pl, NULL, NULL), 0);
        assert_int_equal(pl.slots[0].gpu, 1); /* the GPU not in MIG use */
        gv_sched_cluster_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keeps_free_host),
                cmocka_unit_test(test_cpu_goes_where_gpus_do_not_need_it),
                cmocka_unit_test(test_cpu_classes),
                cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_attach_and_other_kinds),
        };
        return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
