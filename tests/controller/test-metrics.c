/* SPDX-License-Identifier: MIT */
/*
 * test-metrics: the controller's metrics history (src/controller/metrics.c) and its Prometheus
 * exposition writer (metrics-prom.c), fed synthetic agent samples with chosen timestamps:
 * escaping, null → absent (never 0), the fine ring (gaps for nulls and silent hosts, wrap-around),
 * the per-minute min/avg/max, stale hosts, dropping series that disappeared, the series cap, a
 * migrating VM reported by two hosts, labels (profile from the placements, the GPU's UUID), and
 * strict parameters with errors that name the valid values.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/metrics.h"
#include "util/alloc.h"
#include "util/json.h"

#define T0 1718000040000LL /* a whole minute */

/* ---- the writer ---- */

static void test_prom_writer(void **state _unused_)
{
        struct gv_prom p = { 0 };
        gv_prom_family(&p, "x_total", "counter", "a \\ back\nslash");
        struct gv_prom_label l[] = { { "a", "q\"uo\\te\nnl" }, { "skip", NULL }, { "b", "" } };
        gv_prom_sample(&p, "x_total", l, 3, 3);
        gv_prom_sample(&p, "x_total", l, 1, NAN);          /* absent */
        gv_prom_sample(&p, "x_total", NULL, 0, 12.5);
        gv_prom_sample(&p, "x_total", NULL, 0, INFINITY);
        gv_prom_sample(&p, "x_total", NULL, 0, -0.1);
        gv_prom_sample(&p, "x_total", NULL, 0, 1e20);
        size_t len = 0;
        _cleanup_free_ char *s = gv_prom_steal(&p, &len);
        assert_string_equal(s, "# HELP x_total a \\\\ back\\nslash\n"
                               "# TYPE x_total counter\n"
                               "x_total{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"} 3\n"
                               "x_total 12.5\n"
                               "x_total +Inf\n"
                               "x_total -0.1\n"
                               "x_total 1e+20\n");
        assert_int_equal(len, strlen(s));
        assert_null(p.buf);
        gv_prom_done(&p);
}

/* ---- samples ---- */

/* An agent sample: one GPU (pci 0000:18:00.0) at util, one VM "web-1" holding a vGPU on it
 * (slice util vutil, NaN: null), and host CPU cpu. */
static json_t *sample(double cpu, double util, double vutil, const char *vm_phase)
{
        json_t *g = json_pack("{s:s, s:i, s:s, s:s, s:s, s:b, s:f, s:i, s:i, s:i, s:[], s:[]}",
                              "gpu", "0000:18:00.0", "index", 0, "uuid", "GPU-aaaa", "model",
                              "H100-SXM5-80GB", "mode", "vgpu", "visible", 1, "util_pct", util,
                              "memory_used_mib", 17084, "power_mw", 321000, "temperature_c", 61,
                              "vgpus", "mig");
        json_t *pt = json_pack("{s:s, s:i, s:n, s:s, s:b, s:n, s:n, s:n, s:n}", "gpu",
                               "0000:2a:00.0", "index", 1, "uuid", "mode", "passthrough",
                               "visible", 0, "util_pct", "memory_used_mib", "power_mw",
                               "temperature_c");
        json_t *slice = json_pack("{s:s, s:s, s:s, s:o, s:i}", "mode", "vgpu", "gpu",
                                  "0000:18:00.0", "id", "0000:18:00.4", "util_pct",
                                  isnan(vutil) ? json_null() : json_real(vutil),
                                  "memory_used_mib", 5000);
        json_t *vm = json_pack("{s:s, s:s, s:{s:f}, s:{s:i}, s:[o]}", "vm", "web-1", "phase",
                               vm_phase, "cpu", "util_pct", 37.5, "memory", "rss_mib", 3980,
                               "gpus", slice);
        return json_pack("{s:I, s:i, s:i, s:{s:{s:i, s:o}, s:{s:i}}, s:[o, o], s:[o]}",
                         "timestamp_ms", (json_int_t)T0, "interval_ms", 1000, "seq", 1, "host",
                         "cpu", "cpus", 16, "util_pct", isnan(cpu) ? json_null() : json_real(cpu),
                         "memory", "used_mib", 32000, "gpus", g, pt, "vms", vm);
}

static void feed(struct gv_metrics *m, int64_t t, const char *host, json_t *s /* stolen */,
                 const json_t *profiles)
{
        gv_metrics_round_begin(m, t);
        if (s)
                assert_int_equal(gv_metrics_host_sample(m, host, s, profiles, NULL), 0);
        else
                gv_metrics_host_failed(m, host, "agent at unix:/x: Connection refused");
        gv_metrics_round_end(m);
        json_decref(s);
}

static json_t *history(struct gv_metrics *m, const char *series, const char *range)
{
        json_t *h = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_metrics_history(m, series, range, &h, &e);
        if (r < 0)
                fail_msg("history %s %s: %s", series, range, gv_error_msg(e, r));
        return h;
}

static const json_t *column(const json_t *h, const char *name)
{
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(h, "columns"), i, c)
                if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
                        return c;
        fail_msg("no column '%s'", name);
        return NULL;
}

/* The value at index i of a column's member (NaN for null). */
static double at(const json_t *c, const char *member, size_t i)
{
        const json_t *v = json_array_get(json_object_get(c, member), i);
        assert_non_null(v);
        return json_is_null(v) ? NAN : json_number_value(v);
}

/* ---- the fine ring ---- */

static void test_fine_history(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        feed(m, T0, "node-a", sample(10, 50, 70, "running"), NULL);
        feed(m, T0 + 1000, "node-a", sample(NAN, 51, NAN, "running"), NULL); /* nulls */
        feed(m, T0 + 2000, "node-a", NULL, NULL);                            /* silent */
        feed(m, T0 + 3000, "node-a", sample(13, 53, 73, "running"), NULL);

        _cleanup_json_ json_t *h = history(m, "host/node-a", "5m");
        assert_string_equal(json_string_value(json_object_get(h, "aggregate")), "none");
        assert_int_equal(json_integer_value(json_object_get(h, "step_ms")), 1000);
        json_t *ts = json_object_get(h, "timestamps_ms");
        assert_int_equal(json_array_size(ts), 4);
        assert_int_equal(json_integer_value(json_array_get(ts, 0)), T0);
        assert_int_equal(json_integer_value(json_array_get(ts, 3)), T0 + 3000);
        const json_t *cpu = column(h, "cpu_util_pct");
        assert_true(at(cpu, "values", 0) == 10);
        assert_true(isnan(at(cpu, "values", 1)));   /* the agent's null: a gap, not 0 */
        assert_true(isnan(at(cpu, "values", 2)));   /* the host did not answer: a gap */
        assert_true(at(cpu, "values", 3) == 13);
        assert_true(at(column(h, "memory_used_mib"), "values", 2) != 0);

        _cleanup_json_ json_t *v = history(m, "vm/web-1", NULL);
        assert_string_equal(json_string_value(json_object_get(v, "range")), "1h");
        assert_true(at(column(v, "cpu_util_pct"), "values", 0) == 37.5);
        const json_t *gu = column(v, "gpu0_util_pct");
        assert_int_equal(json_integer_value(json_object_get(gu, "slot")), 0);
        assert_true(at(gu, "values", 0) == 70);
        assert_true(isnan(at(gu, "values", 1)));
        assert_true(at(gu, "values", 3) == 73);
        assert_true(at(column(v, "gpu0_memory_used_mib"), "values", 0) == 5000);
        json_t *g0 = json_array_get(json_object_get(v, "gpus"), 0);
        assert_string_equal(json_string_value(json_object_get(g0, "gpu_uuid")), "GPU-aaaa");
        assert_string_equal(json_string_value(json_object_get(g0, "mode")), "vgpu");

        _cleanup_json_ json_t *g = history(m, "gpu/node-a/0000:18:00.0", "15m");
        assert_true(at(column(g, "power_w"), "values", 0) == 321);
        assert_true(at(column(g, "util_pct"), "values", 3) == 53);
        /* The pass-through GPU: known, every value null. */
        _cleanup_json_ json_t *pt = history(m, "gpu/node-a/0000:2a:00.0", "5m");
        for (size_t i = 0; i < 4; i++)
                assert_true(isnan(at(column(pt, "util_pct"), "values", i)));
}

static void test_fine_wraps(void **state _unused_)
{
        /* 60 s interval: the fine ring holds 60 rounds. */
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(60000, 0);
        for (int i = 0; i < 150; i++)
                feed(m, T0 + (int64_t)i * 60000, "node-a", sample(i % 100, 50, 50, "running"),
                     NULL);
        _cleanup_json_ json_t *h = history(m, "host/node-a", "1h");
        json_t *ts = json_object_get(h, "timestamps_ms");
        assert_int_equal(json_array_size(ts), 60);
        assert_int_equal(json_integer_value(json_array_get(ts, 59)), T0 + 149 * 60000LL);
        assert_int_equal(json_integer_value(json_array_get(ts, 0)), T0 + 90 * 60000LL);
        const json_t *cpu = column(h, "cpu_util_pct");
        for (size_t i = 0; i < 60; i++)
                assert_true(at(cpu, "values", i) == (double)((90 + i) % 100));
}

/* ---- the coarse ring ---- */

static void test_minutes(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        /* Minute 0: 10, 20, null, 30 (avg 20); minute 1: silent; minute 2: 5 (in progress). */
        feed(m, T0, "node-a", sample(10, 1, 1, "running"), NULL);
        feed(m, T0 + 15000, "node-a", sample(20, 1, 1, "running"), NULL);
        feed(m, T0 + 30000, "node-a", sample(NAN, 1, 1, "running"), NULL);
        feed(m, T0 + 45000, "node-a", sample(30, 1, 1, "running"), NULL);
        feed(m, T0 + 70000, "node-a", NULL, NULL);
        feed(m, T0 + 125000, "node-a", sample(5, 1, 1, "running"), NULL);
        _cleanup_json_ json_t *h = history(m, "host/node-a", "6h");
        assert_string_equal(json_string_value(json_object_get(h, "aggregate")), "minute");
        json_t *ts = json_object_get(h, "timestamps_ms");
        size_t n = json_array_size(ts);
        assert_int_equal(n, 360);
        assert_int_equal(json_integer_value(json_array_get(ts, n - 1)), T0 + 120000);
        const json_t *c = column(h, "cpu_util_pct");
        assert_true(at(c, "min", n - 3) == 10);
        assert_true(at(c, "values", n - 3) == 20);
        assert_true(at(c, "max", n - 3) == 30);
        assert_true(isnan(at(c, "values", n - 2))); /* a minute without an answer */
        assert_true(at(c, "values", n - 1) == 5);   /* the current minute, so far */
        assert_true(isnan(at(c, "values", 0)));     /* before the first round */
        _cleanup_json_ json_t *d = history(m, "host/node-a", "24h");
        assert_int_equal(json_array_size(json_object_get(d, "timestamps_ms")), 1440);
}

/* ---- the latest values and the exposition ---- */

static void test_exposition(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        _cleanup_json_ json_t *prof = json_pack("{s:[{s:s, s:s}]}", "web-1", "gpu",
                                                "0000:18:00.0", "profile", "H100XM-20C");
        feed(m, T0, "node-a", sample(10, 55, NAN, "running"), prof);
        _cleanup_free_ char *t = gv_metrics_exposition(m, NULL);
        assert_non_null(strstr(t, "# TYPE gpuvirt_gpu_util gauge\n"));
        assert_non_null(strstr(t, "gpuvirt_host_up{host=\"node-a\"} 1\n"));
        assert_non_null(strstr(t, "gpuvirt_host_cpu_util{host=\"node-a\"} 10\n"));
        assert_non_null(strstr(t, "gpuvirt_gpu_util{host=\"node-a\",gpu=\"0000:18:00.0\","
                                  "gpu_uuid=\"GPU-aaaa\",model=\"H100-SXM5-80GB\","
                                  "mode=\"vgpu\"} 55\n"));
        assert_non_null(strstr(t, "gpuvirt_gpu_power_usage{host=\"node-a\","
                                  "gpu=\"0000:18:00.0\""));
        assert_non_null(strstr(t, "} 321\n"));
        assert_non_null(strstr(t, "gpuvirt_vm_cpu_util{host=\"node-a\",vm=\"web-1\"} 37.5\n"));
        assert_non_null(strstr(t, "gpuvirt_vm_gpu_info{host=\"node-a\",vm=\"web-1\",slot=\"0\","
                                  "gpu=\"0000:18:00.0\",gpu_uuid=\"GPU-aaaa\",mode=\"vgpu\","
                                  "profile=\"H100XM-20C\"} 1\n"));
        assert_non_null(strstr(t, "gpuvirt_vm_gpu_fb_used{host=\"node-a\",vm=\"web-1\","
                                  "slot=\"0\",gpu=\"0000:18:00.0\",gpu_uuid=\"GPU-aaaa\","
                                  "mode=\"vgpu\",profile=\"H100XM-20C\"} 5000\n"));
        /* Null is absent, never 0: the slice's utilization, the pass-through GPU's values. */
        assert_null(strstr(t, "gpuvirt_vm_gpu_util{"));
        assert_null(strstr(t, "0000:2a:00.0"));
        /* Families appear once each (a second TYPE line would be refused by parsers). */
        const char *f = strstr(t, "# TYPE gpuvirt_gpu_util ");
        assert_null(strstr(f + 1, "# TYPE gpuvirt_gpu_util "));

        _cleanup_json_ json_t *l = gv_metrics_latest(m);
        json_t *h0 = json_array_get(json_object_get(l, "hosts"), 0);
        assert_string_equal(json_string_value(json_object_get(h0, "host")), "node-a");
        assert_true(json_is_null(json_object_get(h0, "error")));
        assert_int_equal(json_array_size(json_object_get(h0, "gpus")), 2);
        json_t *v0 = json_array_get(json_object_get(l, "vms"), 0);
        assert_string_equal(json_string_value(json_object_get(v0, "host")), "node-a");
        json_t *s0 = json_array_get(json_object_get(v0, "gpus"), 0);
        assert_string_equal(json_string_value(json_object_get(s0, "profile")), "H100XM-20C");
        assert_string_equal(json_string_value(json_object_get(s0, "gpu_uuid")), "GPU-aaaa");
        assert_true(json_is_null(json_object_get(s0, "util_pct")));

        /* 11 s of silence: no current values, host_up 0, the latest says why. */
        feed(m, T0 + 11000, "node-a", NULL, NULL);
        _cleanup_free_ char *t2 = gv_metrics_exposition(m, NULL);
        assert_non_null(strstr(t2, "gpuvirt_host_up{host=\"node-a\"} 0\n"));
        assert_null(strstr(t2, "gpuvirt_host_cpu_util{"));
        assert_null(strstr(t2, "gpuvirt_vm_gpu_info{"));
        _cleanup_json_ json_t *l2 = gv_metrics_latest(m);
        h0 = json_array_get(json_object_get(l2, "hosts"), 0);
        assert_non_null(strstr(json_string_value(json_object_get(h0, "error")),
                               "Connection refused"));
        assert_int_equal(json_array_size(json_object_get(l2, "vms")), 0);
}

/* A live migration: both hosts report the VM; the running copy wins, whichever comes first. */
static void test_migrating_vm(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        gv_metrics_round_begin(m, T0);
        json_t *a = sample(10, 1, 1, "running"), *b = sample(20, 2, 2, "incoming");
        json_object_set_new(json_object_get(json_array_get(json_object_get(b, "vms"), 0), "cpu"),
                            "util_pct", json_real(99));
        assert_int_equal(gv_metrics_host_sample(m, "node-b", b, NULL, NULL), 0);
        assert_int_equal(gv_metrics_host_sample(m, "node-a", a, NULL, NULL), 0);
        gv_metrics_round_end(m);
        gv_metrics_round_begin(m, T0 + 1000);
        assert_int_equal(gv_metrics_host_sample(m, "node-a", a, NULL, NULL), 0);
        assert_int_equal(gv_metrics_host_sample(m, "node-b", b, NULL, NULL), 0);
        gv_metrics_round_end(m);
        json_decref(a);
        json_decref(b);
        _cleanup_json_ json_t *v = history(m, "vm/web-1", "5m");
        assert_true(at(column(v, "cpu_util_pct"), "values", 0) == 37.5);
        assert_true(at(column(v, "cpu_util_pct"), "values", 1) == 37.5);
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "labels"),
                                                              "host")), "node-a");
        _cleanup_json_ json_t *l = gv_metrics_latest(m);
        assert_int_equal(json_array_size(json_object_get(l, "vms")), 1);
        json_t *v0 = json_array_get(json_object_get(l, "vms"), 0);
        assert_string_equal(json_string_value(json_object_get(v0, "host")), "node-a");
}

/* ---- bounds ---- */

static void test_drop_and_cap(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        feed(m, T0, "node-a", sample(1, 1, 1, "running"), NULL);
        /* host 2 + GPUs 2 x 4 + VM 2 + slice 2 */
        assert_int_equal(gv_metrics_series_count(m), 14);
        /* The VM is deleted: its series stay for GV_METRICS_DROP_AFTER_MS, then go. */
        json_t *s = sample(1, 1, 1, "running");
        json_array_clear(json_object_get(s, "vms"));
        feed(m, T0 + 1000, "node-a", json_incref(s), NULL);
        assert_int_equal(gv_metrics_series_count(m), 14);
        feed(m, T0 + 1000 + GV_METRICS_DROP_AFTER_MS + 1000, "node-a", s, NULL);
        assert_int_equal(gv_metrics_series_count(m), 10);
        json_t *h = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_metrics_history(m, "vm/web-1", "5m", &h, &e), -ENOENT);
        assert_non_null(strstr(gv_error_msg(e, -ENOENT), "'vm/web-1'"));

        /* A cap of 12 series: the slice (2 more) is refused and counted. */
        _cleanup_(gv_metrics_freep) struct gv_metrics *c = gv_metrics_new(1000, 12);
        feed(c, T0, "node-a", sample(1, 1, 1, "running"), NULL);
        assert_int_equal(gv_metrics_series_count(c), 12);
        _cleanup_json_ json_t *l = gv_metrics_latest(c);
        assert_int_equal(json_integer_value(json_object_get(l, "series_refused")), 2);
        _cleanup_free_ char *t = gv_metrics_exposition(c, NULL);
        assert_non_null(strstr(t, "gpuvirt_metrics_series_refused_total 2\n"));

        /* 3600 floats fine + 3 x 1440 coarse at 1 s: about 31.7 KiB per series. */
        size_t b = gv_metrics_series_bytes(1000);
        assert_true(b >= (3600 + 3 * 1440) * 4 && b < 33 * 1024);
        assert_true(gv_metrics_series_bytes(60000) < b);
}

static void test_bad_input(void **state _unused_)
{
        _cleanup_(gv_metrics_freep) struct gv_metrics *m = gv_metrics_new(1000, 0);
        feed(m, T0, "node-a", sample(1, 1, 1, "running"), NULL);
        static const char *const bad_series[] = { "vm", "vm/", "host/a/b", "gpu/node-a",
                                                  "gpu/node-a/", "disk/x", "vm/a//b", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad_series); i++) {
                json_t *h = NULL;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_metrics_history(m, bad_series[i], "1h", &h, &e), -EINVAL);
                assert_non_null(strstr(gv_error_msg(e, -EINVAL), "gpu/HOST/PCI"));
                assert_null(h);
        }
        json_t *h = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_metrics_history(m, "host/node-a", "2h", &h, &e), -EINVAL);
        assert_non_null(strstr(gv_error_msg(e, -EINVAL), "5m, 15m, 1h"));
        _cleanup_(gv_error_freep) struct gv_error *e2 = NULL;
        _cleanup_json_ json_t *notsample = json_pack("{s:i}", "host", 1);
        assert_int_equal(gv_metrics_host_sample(m, "node-a", notsample, NULL, &e2), -EINVAL);
        assert_non_null(strstr(gv_error_msg(e2, -EINVAL), "'node-a'"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_prom_writer),  cmocka_unit_test(test_fine_history),
                cmocka_unit_test(test_fine_wraps),   cmocka_unit_test(test_minutes),
                cmocka_unit_test(test_exposition),   cmocka_unit_test(test_migrating_vm),
                cmocka_unit_test(test_drop_and_cap), cmocka_unit_test(test_bad_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
