/* SPDX-License-Identifier: MIT */
/*
 * test-ratelimit: the controller's request limits (src/controller/ratelimit.c): the token bucket
 * per token (burst, refill, one token not slowing another) and the in-flight caps (R17: all
 * requests at most max, changes at most half of it), the latter raced from many threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"

static void test_bucket(void **state _unused_)
{
        struct gv_controller c = { .ratelimit = gv_ctl_ratelimit_new(10.0, 5, 0) };
        double retry = -1;

        for (int i = 0; i < 5; i++)
                assert_true(gv_controller_rate_take(&c, "tok-a", &retry));
        /* The burst is spent: refused, and told when the next request may come (1/10 s). */
        assert_false(gv_controller_rate_take(&c, "tok-a", &retry));
        assert_true(retry > 0 && retry <= 0.1 + 1e-9);
        /* Another token has its own bucket. */
        assert_true(gv_controller_rate_take(&c, "tok-b", &retry));
        /* Refilled at 10 a second: after 250 ms two requests at least, and no more than the
         * time really slept allows (a loaded machine oversleeps), never past the burst. */
        struct timespec t0, t1, ts = { 0, 250 * 1000000L };
        clock_gettime(CLOCK_MONOTONIC, &t0);
        nanosleep(&ts, NULL);
        int got = 0;
        while (gv_controller_rate_take(&c, "tok-a", &retry))
                got++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double slept = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        int most = (int)(slept * 10.0) + 1;
        assert_in_range(got, 2, most < 5 ? most : 5);
        assert_int_equal(gv_controller_rate_burst(&c), 5);
        gv_ctl_ratelimit_free(c.ratelimit);
}

static void test_inflight_caps(void **state _unused_)
{
        struct gv_controller c = { .ratelimit = gv_ctl_ratelimit_new(0, 0, 6) };
        unsigned max = 0;

        assert_int_equal(gv_controller_inflight_max(&c), 6);
        /* Changes take at most half the slots ... */
        for (int i = 0; i < 3; i++)
                assert_true(gv_controller_inflight_enter(&c, true, &max));
        assert_false(gv_controller_inflight_enter(&c, true, &max));
        assert_int_equal(max, 3);
        /* ... so reads still get the rest ... */
        for (int i = 0; i < 3; i++)
                assert_true(gv_controller_inflight_enter(&c, false, &max));
        /* ... and past the whole cap nothing does. */
        max = 0;
        assert_false(gv_controller_inflight_enter(&c, false, &max));
        assert_int_equal(max, 6);
        /* A change that ends frees a slot for either kind. */
        gv_controller_inflight_leave(&c, true);
        assert_true(gv_controller_inflight_enter(&c, true, &max));
        gv_controller_inflight_leave(&c, true);
        gv_controller_inflight_leave(&c, false);
        assert_true(gv_controller_inflight_enter(&c, false, &max));
        for (int i = 0; i < 3; i++)
                gv_controller_inflight_leave(&c, false);
        for (int i = 0; i < 2; i++)
                gv_controller_inflight_leave(&c, true);
        /* All gone: the full cap again. */
        for (int i = 0; i < 6; i++)
                assert_true(gv_controller_inflight_enter(&c, false, &max));
        gv_ctl_ratelimit_free(c.ratelimit);

        /* A cap below 2 cannot give changes a slot: the default (64) instead. */
        c.ratelimit = gv_ctl_ratelimit_new(0, 0, 1);
        assert_int_equal(gv_controller_inflight_max(&c), 64);
        gv_ctl_ratelimit_free(c.ratelimit);
}

/* Many threads entering and leaving at once: the number inside never passes the caps. */
#define RACE_THREADS 32
#define RACE_ROUNDS 2000
#define RACE_CAP 8

struct race {
        struct gv_controller *c;
        atomic_int inside, changes, peak, peak_changes, refused;
        int id;
};

static void peak_up(atomic_int *peak, int v)
{
        int p = atomic_load(peak);
        while (v > p && !atomic_compare_exchange_weak(peak, &p, v))
                ;
}

static void *racer(void *arg)
{
        struct race *r = arg;
        int me = __atomic_fetch_add(&r->id, 1, __ATOMIC_SEQ_CST);
        for (int i = 0; i < RACE_ROUNDS; i++) {
                bool change = (i + me) % 3 == 0;
                unsigned max;
                if (!gv_controller_inflight_enter(r->c, change, &max)) {
                        atomic_fetch_add(&r->refused, 1);
                        continue;
                }
                peak_up(&r->peak, atomic_fetch_add(&r->inside, 1) + 1);
                if (change)
                        peak_up(&r->peak_changes, atomic_fetch_add(&r->changes, 1) + 1);
                sched_yield();
                if (change)
                        atomic_fetch_sub(&r->changes, 1);
                atomic_fetch_sub(&r->inside, 1);
                gv_controller_inflight_leave(r->c, change);
        }
        return NULL;
}

static void test_inflight_race(void **state _unused_)
{
        struct gv_controller c = { .ratelimit = gv_ctl_ratelimit_new(0, 0, RACE_CAP) };
        struct race r = { .c = &c };
        pthread_t t[RACE_THREADS];

        for (int i = 0; i < RACE_THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, racer, &r), 0);
        for (int i = 0; i < RACE_THREADS; i++)
                pthread_join(t[i], NULL);
        assert_true(atomic_load(&r.peak) <= RACE_CAP);
        assert_true(atomic_load(&r.peak_changes) <= RACE_CAP / 2);
        /* 32 threads on 8 slots: some were refused (else the cap was never reached). */
        assert_true(atomic_load(&r.refused) > 0);
        /* Every slot given back: the whole cap can be taken again. */
        unsigned max;
        for (int i = 0; i < RACE_CAP; i++)
                assert_true(gv_controller_inflight_enter(&c, false, &max));
        assert_false(gv_controller_inflight_enter(&c, false, &max));
        gv_ctl_ratelimit_free(c.ratelimit);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bucket),
                cmocka_unit_test(test_inflight_caps),
                cmocka_unit_test(test_inflight_race),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
