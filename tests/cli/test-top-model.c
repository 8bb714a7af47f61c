/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt top`'s rows (src/cli/top-model.c) against a fixed GET /api/v1/metrics answer in the
 * shape of docs/api.md "Metrics" (and docs/agent.md's sample), the host list and the VM list:
 * values merged per host, GPU and VM; unknown values kept unknown with their reason (a
 * pass-through GPU not visible to the host driver, a MIG slice whose utilization the GPU does
 * not report, a host whose agent is down, a VM before its first CPU sample) and never shown as
 * 0; every sort key; the rendered lines and their bars; malformed answers; the interval parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/top-model.h"
#include "util/alloc.h"
#include "util/json.h"

static const char metrics_json[] =
        "{\"timestamp_ms\": 1718000000123, \"interval_ms\": 1000, \"series\": 40,"
        " \"series_refused\": 0,"
        " \"hosts\": ["
        "  {\"host\": \"node-a\", \"timestamp_ms\": 1718000000123, \"age_ms\": 0, \"error\": null,"
        "   \"cpu\": {\"cpus\": 16, \"util_pct\": 12.5},"
        "   \"memory\": {\"total_mib\": 128000, \"available_mib\": 96000, \"used_mib\": 32000},"
        "   \"gpus\": ["
        "    {\"gpu\": \"0000:18:00.0\", \"index\": 0, \"uuid\": \"GPU-a\","
        "     \"model\": \"H100-SXM5-80GB\", \"mode\": \"vgpu\", \"visible\": true,"
        "     \"visibility\": \"host driver\", \"util_pct\": 55, \"memory_util_pct\": 33,"
        "     \"memory_used_mib\": 17084, \"memory_total_mib\": 81559, \"power_mw\": 321000,"
        "     \"temperature_c\": 61,"
        "     \"vgpus\": [{\"uuid\": \"2cb3\", \"parent\": \"0000:18:00.4\", \"gi\": null,"
        "                \"vm\": \"web-1\", \"util_pct\": 73, \"memory_used_mib\": 5000,"
        "                \"memory_total_mib\": 20480}], \"mig\": []},"
        "    {\"gpu\": \"0000:2a:00.0\", \"index\": 1, \"uuid\": null,"
        "     \"model\": \"H100-SXM5-80GB\", \"mode\": \"passthrough\", \"visible\": false,"
        "     \"visibility\": \"passthrough: not visible to the host driver\","
        "     \"util_pct\": null, \"memory_util_pct\": null, \"memory_used_mib\": null,"
        "     \"memory_total_mib\": null, \"power_mw\": null, \"temperature_c\": null,"
        "     \"vgpus\": [], \"mig\": []},"
        "    {\"gpu\": \"0000:5d:00.0\", \"index\": 3, \"uuid\": \"GPU-c\","
        "     \"model\": \"H100-SXM5-80GB\", \"mode\": \"mig\", \"visible\": true,"
        "     \"util_pct\": 20, \"memory_used_mib\": 2000, \"memory_total_mib\": 81559,"
        "     \"power_mw\": 150500, \"temperature_c\": 40,"
        "     \"vgpus\": [{\"uuid\": \"1def\", \"parent\": \"0000:5d:00.4\", \"gi\": 1,"
        "                \"vm\": \"train-2\", \"util_pct\": null, \"memory_used_mib\": 1234,"
        "                \"memory_total_mib\": 10240}],"
        "     \"mig\": [{\"gi\": 1, \"profile\": \"1g.10gb\", \"vm\": \"train-2\","
        "              \"memory_used_mib\": 1234, \"memory_total_mib\": 9984,"
        "              \"util_pct\": null, \"util\": \"not reported by this GPU\"}]}"
        "   ]},"
        "  {\"host\": \"node-b\", \"timestamp_ms\": 1717999990000, \"age_ms\": 10123,"
        "   \"error\": \"host is down\", \"cpu\": null, \"memory\": null, \"gpus\": []}"
        " ],"
        " \"vms\": ["
        "  {\"vm\": \"web-1\", \"host\": \"node-a\", \"phase\": \"running\", \"pid\": 20253,"
        "   \"cpu\": {\"util_pct\": 37.5, \"vcpu_util_pct\": 35.0, \"vcpus\": 2},"
        "   \"memory\": {\"configured_mib\": 4096, \"rss_mib\": 3980},"
        "   \"gpus\": [{\"mode\": \"vgpu\", \"gpu\": \"0000:18:00.0\", \"gpu_uuid\": \"GPU-a\","
        "              \"profile\": \"H100XM-20C\", \"util_pct\": 73, \"memory_used_mib\": 5000,"
        "              \"memory_total_mib\": 20480}]},"
        "  {\"vm\": \"web-1\", \"host\": \"node-b\", \"phase\": \"incoming\","
        "   \"cpu\": {\"util_pct\": 99}, \"memory\": {\"rss_mib\": 1}, \"gpus\": []},"
        "  {\"vm\": \"train-2\", \"host\": \"node-a\", \"phase\": \"running\","
        "   \"cpu\": {\"util_pct\": 80, \"vcpus\": 1},"
        "   \"memory\": {\"configured_mib\": 2048, \"rss_mib\": 1000},"
        "   \"gpus\": [{\"mode\": \"mig-vgpu\", \"gpu\": \"0000:5d:00.0\", \"gi\": 1,"
        "              \"profile\": \"H100XM-1-10C\", \"memory_used_mib\": 1234,"
        "              \"memory_total_mib\": 9984, \"util_pct\": null,"
        "              \"util\": \"not reported by this GPU\"}]},"
        "  {\"vm\": \"cad-3\", \"host\": \"node-a\", \"phase\": \"running\","
        "   \"cpu\": {\"util_pct\": 5, \"vcpus\": 4},"
        "   \"memory\": {\"configured_mib\": 8192, \"rss_mib\": 2000},"
        "   \"gpus\": [{\"mode\": \"passthrough\", \"gpu\": \"0000:2a:00.0\", \"profile\": null,"
        "              \"visibility\": \"passthrough: not visible to the host driver\","
        "              \"util_pct\": null, \"memory_used_mib\": null,"
        "              \"memory_total_mib\": null}]},"
        "  {\"vm\": \"idle-4\", \"host\": \"node-a\", \"phase\": \"running\","
        "   \"cpu\": {\"util_pct\": null, \"vcpus\": 1},"
        "   \"memory\": {\"configured_mib\": 1024, \"rss_mib\": 100}, \"gpus\": []}"
        " ]}";

static const char hosts_json[] =
        "[{\"name\": \"node-a\", \"state\": \"up\", \"cpus\": 64},"
        " {\"name\": \"node-b\", \"state\": \"down\", \"cpus\": 64},"
        " {\"name\": \"node-c\", \"state\": \"up\", \"cpus\": 32}]";

static const char vms_json[] =
        "[{\"name\": \"web-1\", \"state\": \"running\", \"host\": \"node-a\"},"
        " {\"name\": \"train-2\", \"state\": \"running\", \"host\": \"node-a\"},"
        " {\"name\": \"cad-3\", \"state\": \"running\", \"host\": \"node-a\"},"
        " {\"name\": \"idle-4\", \"state\": \"running\", \"host\": \"node-a\"},"
        " {\"name\": \"stopped-5\", \"state\": \"stopped\", \"host\": \"node-a\","
        "  \"spec\": {\"vcpus\": 1, \"memory_mib\": 1024},"
        "  \"placement\": {\"gpus\": [{\"alloc\": \"vgpu\", \"name\": \"H100XM-10C\"}]}}]";

static struct gv_top_model *build(void)
{
        _cleanup_json_ json_t *m = json_loads(metrics_json, 0, NULL);
        _cleanup_json_ json_t *h = json_loads(hosts_json, 0, NULL);
        _cleanup_json_ json_t *v = json_loads(vms_json, 0, NULL);
        struct gv_top_model *model = NULL;
        assert_non_null(m);
        assert_non_null(h);
        assert_non_null(v);
        assert_int_equal(gv_top_model_build(m, h, v, &model, NULL), 0);
        assert_non_null(model);
        return model;
}

static const struct gv_top_vm *vm(const struct gv_top_model *m, const char *name)
{
        for (size_t i = 0; i < m->n_vms; i++)
                if (strcmp(m->vms[i].name, name) == 0)
                        return &m->vms[i];
        fail_msg("no VM row '%s'", name);
        return NULL;
}

static const struct gv_top_gpu *gpu(const struct gv_top_model *m, const char *pci)
{
        for (size_t i = 0; i < m->n_gpus; i++)
                if (strcmp(m->gpus[i].pci, pci) == 0)
                        return &m->gpus[i];
        fail_msg("no GPU row '%s'", pci);
        return NULL;
}

static const struct gv_top_host *host(const struct gv_top_model *m, const char *name)
{
        for (size_t i = 0; i < m->n_hosts; i++)
                if (strcmp(m->hosts[i].name, name) == 0)
                        return &m->hosts[i];
        fail_msg("no host row '%s'", name);
        return NULL;
}

static void test_rows(void **state)
{
        (void)state;
        _cleanup_(gv_top_model_freep) struct gv_top_model *m = build();

        assert_int_equal(m->n_hosts, 3);
        assert_int_equal(m->n_gpus, 3);
        assert_int_equal(m->n_vms, 5); /* web-1 once (the running copy), stopped-5 added */
        assert_int_equal(m->timestamp_ms, 1718000000123);
        assert_int_equal(m->interval_ms, 1000);

        const struct gv_top_host *a = host(m, "node-a"), *b = host(m, "node-b"),
                                 *c = host(m, "node-c");
        assert_string_equal(a->state, "up");
        assert_null(a->error);
        assert_true(a->cpu.known);
        assert_true(a->cpu.v == 12.5);
        assert_true(a->mem_used_mib.known && a->mem_used_mib.v == 32000);
        assert_int_equal(a->n_gpus, 3);
        assert_int_equal(a->n_gpus_known, 2);
        assert_true(a->gpu.known && a->gpu.v == (55.0 + 20.0) / 2);
        assert_int_equal(a->n_vms, 5);
        assert_string_equal(b->state, "down");
        assert_string_equal(b->error, "host is down");
        assert_false(b->cpu.known);
        assert_false(b->mem_used_mib.known);
        assert_false(b->gpu.known);
        assert_string_equal(c->error, "no metrics from this host yet");
        assert_true(c->cpus.known && c->cpus.v == 32);
        assert_false(c->cpu.known);
        assert_int_equal(m->hosts_up, 2);
        assert_int_equal(m->vms_running, 4);
        assert_int_equal(m->gpus_known, 2);
        assert_true(m->cpu.known && m->cpu.v == 12.5); /* the down hosts weigh nothing */

        /* the vGPU GPU: values, power in W, who uses it */
        const struct gv_top_gpu *g0 = gpu(m, "0000:18:00.0");
        assert_true(g0->util.known && g0->util.v == 55);
        assert_true(g0->power_w.known && g0->power_w.v == 321);
        assert_int_equal(g0->index, 0);
        assert_string_equal(g0->users, "web-1");
        /* the pass-through GPU: nothing known, every value says why; used by cad-3 */
        const struct gv_top_gpu *pt = gpu(m, "0000:2a:00.0");
        assert_false(pt->util.known);
        assert_false(pt->mem_used_mib.known);
        assert_false(pt->power_w.known);
        assert_false(pt->temperature_c.known);
        assert_string_equal(pt->util.why, "n/a: passthrough");
        assert_string_equal(pt->mem_used_mib.why, "n/a: passthrough");
        assert_string_equal(pt->users, "cad-3");
        /* the MIG GPU reports its own utilization; its instance's VM uses it */
        const struct gv_top_gpu *mg = gpu(m, "0000:5d:00.0");
        assert_true(mg->util.known && mg->util.v == 20);
        assert_string_equal(mg->users, "train-2");

        const struct gv_top_vm *w = vm(m, "web-1");
        assert_string_equal(w->host, "node-a");
        assert_string_equal(w->state, "running");
        assert_string_equal(w->mode, "vgpu H100XM-20C");
        assert_true(w->cpu.known && w->cpu.v == 37.5);
        assert_true(w->gpu_util.known && w->gpu_util.v == 73);
        assert_true(w->gpu_mem_used_mib.known && w->gpu_mem_used_mib.v == 5000);
        assert_true(w->gpu_mem_total_mib.known && w->gpu_mem_total_mib.v == 20480);

        /* MIG: utilization not reported (unknown, "n/a: MIG"), memory reported */
        const struct gv_top_vm *t = vm(m, "train-2");
        assert_string_equal(t->mode, "mig-vgpu H100XM-1-10C");
        assert_false(t->gpu_util.known);
        assert_string_equal(t->gpu_util.why, "n/a: MIG");
        assert_true(t->gpu_mem_used_mib.known && t->gpu_mem_used_mib.v == 1234);

        /* pass-through: not visible, neither utilization nor memory */
        const struct gv_top_vm *p = vm(m, "cad-3");
        assert_string_equal(p->mode, "passthrough");
        assert_false(p->gpu_util.known);
        assert_false(p->gpu_mem_used_mib.known);
        assert_string_equal(p->gpu_util.why, "n/a: passthrough");
        assert_string_equal(p->gpu_mem_used_mib.why, "n/a: passthrough");

        /* before its first CPU sample, and without a GPU: unknown, no reason ("-") */
        const struct gv_top_vm *i = vm(m, "idle-4");
        assert_false(i->cpu.known);
        assert_null(i->cpu.why);
        assert_null(i->mode);
        assert_int_equal(i->n_gpus, 0);
        assert_false(i->gpu_util.known);
        assert_null(i->gpu_util.why);

        /* stopped: from the VM list only */
        const struct gv_top_vm *s = vm(m, "stopped-5");
        assert_string_equal(s->state, "stopped");
        assert_string_equal(s->mode, "vgpu H100XM-10C");
        assert_false(s->cpu.known);
        assert_false(s->mem_rss_mib.known);
        assert_true(s->mem_total_mib.known && s->mem_total_mib.v == 1024);
}

static void assert_vm_order(const struct gv_top_model *m, const char *const *names)
{
        for (size_t i = 0; names[i]; i++) {
                assert_true(i < m->n_vms);
                assert_string_equal(m->vms[i].name, names[i]);
        }
}

static void test_sort(void **state)
{
        (void)state;
        _cleanup_(gv_top_model_freep) struct gv_top_model *m = build();

        /* built sorted by name */
        assert_vm_order(m, (const char *const[]){ "cad-3", "idle-4", "stopped-5", "train-2",
                                                  "web-1", NULL });
        gv_top_model_sort(m, GV_TOP_SORT_GPU);
        /* known utilization first; then the MIG VM, whose memory is known; the rest by name */
        assert_vm_order(m, (const char *const[]){ "web-1", "train-2", "cad-3", "idle-4",
                                                  "stopped-5", NULL });
        assert_string_equal(m->gpus[0].pci, "0000:18:00.0");
        assert_string_equal(m->gpus[1].pci, "0000:5d:00.0");
        assert_string_equal(m->gpus[2].pci, "0000:2a:00.0"); /* unknown last, never as 0 */
        assert_string_equal(m->hosts[0].name, "node-a");

        gv_top_model_sort(m, GV_TOP_SORT_CPU);
        assert_vm_order(m, (const char *const[]){ "train-2", "web-1", "cad-3", "idle-4",
                                                  "stopped-5", NULL });
        assert_string_equal(m->hosts[0].name, "node-a");
        assert_string_equal(m->hosts[1].name, "node-b");
        assert_string_equal(m->hosts[2].name, "node-c");
        /* GPUs have no CPU: host and index */
        assert_string_equal(m->gpus[0].pci, "0000:18:00.0");
        assert_string_equal(m->gpus[1].pci, "0000:2a:00.0");
        assert_string_equal(m->gpus[2].pci, "0000:5d:00.0");

        gv_top_model_sort(m, GV_TOP_SORT_MEMORY);
        assert_vm_order(m, (const char *const[]){ "web-1", "cad-3", "train-2", "idle-4",
                                                  "stopped-5", NULL });
        assert_string_equal(m->gpus[0].pci, "0000:18:00.0"); /* 17084 MiB */
        assert_string_equal(m->gpus[1].pci, "0000:5d:00.0"); /* 2000 MiB */

        gv_top_model_sort(m, GV_TOP_SORT_NAME);
        assert_vm_order(m, (const char *const[]){ "cad-3", "idle-4", "stopped-5", "train-2",
                                                  "web-1", NULL });

        assert_int_equal(gv_top_sort_from_string("gpu"), GV_TOP_SORT_GPU);
        assert_int_equal(gv_top_sort_from_string("memory"), GV_TOP_SORT_MEMORY);
        assert_int_equal(gv_top_sort_from_string("util"), -EINVAL);
        assert_int_equal(gv_top_sort_from_string(NULL), -EINVAL);
        _cleanup_free_ char *list = gv_top_sort_list();
        assert_string_equal(list, "cpu, memory, gpu, name");
}

static const struct gv_top_line *row_of(const struct gv_top_frame *f, int section,
                                        const char *first)
{
        for (size_t i = 0; i < f->n_lines; i++)
                if (f->lines[i].kind == GV_TOP_LINE_ROW && f->lines[i].section == section &&
                    strncmp(f->lines[i].text, first, strlen(first)) == 0)
                        return &f->lines[i];
        fail_msg("no row starting '%s' in section %d", first, section);
        return NULL;
}

static size_t count_marks(const struct gv_top_line *l)
{
        size_t n = 0;
        for (const char *p = l->marks; *p; p++)
                n += *p == 'b';
        return n;
}

static void test_render(void **state)
{
        (void)state;
        _cleanup_(gv_top_model_freep) struct gv_top_model *m = build();
        struct gv_top_frame f = {};

        gv_top_model_sort(m, GV_TOP_SORT_GPU);
        assert_int_equal(gv_top_render(m, GV_TOP_SORT_GPU, 132, "12:00:01", &f, NULL), 0);
        for (size_t i = 0; i < f.n_lines; i++) {
                assert_true(strlen(f.lines[i].text) <= 132);
                assert_int_equal(strlen(f.lines[i].marks), strlen(f.lines[i].text));
        }
        assert_int_equal(f.lines[0].kind, GV_TOP_LINE_HEADER);
        assert_non_null(strstr(f.lines[0].text, "12:00:01"));
        assert_non_null(strstr(f.lines[0].text, "hosts 2/3 up"));
        assert_non_null(strstr(f.lines[0].text, "VMs 4/5 running"));
        assert_non_null(strstr(f.lines[0].text, "(2 of 3 GPUs report)"));

        /* the VM rows in gpu order, each value in its column */
        const char *order[] = { "web-1", "train-2", "cad-3", "idle-4", "stopped-5" };
        size_t k = 0;
        for (size_t i = 0; i < f.n_lines; i++)
                if (f.lines[i].kind == GV_TOP_LINE_ROW && f.lines[i].section == GV_TOP_VMS) {
                        assert_true(k < ELEMENTSOF(order));
                        assert_true(strncmp(f.lines[i].text, order[k], strlen(order[k])) == 0);
                        k++;
                }
        assert_int_equal(k, ELEMENTSOF(order));

        const struct gv_top_line *w = row_of(&f, GV_TOP_VMS, "web-1 ");
        assert_non_null(strstr(w->text, "73%]"));
        assert_non_null(strstr(w->text, "4.9G/20.0G"));
        assert_non_null(strstr(w->text, "3.9G/4.0G"));
        assert_non_null(strstr(w->text, "vgpu H100XM-20C"));
        assert_true(count_marks(w) > 0);

        const struct gv_top_line *t = row_of(&f, GV_TOP_VMS, "train-2 ");
        assert_non_null(strstr(t->text, "[n/a: MIG"));
        assert_non_null(strstr(t->text, "1.2G/9.8G"));

        const struct gv_top_line *p = row_of(&f, GV_TOP_VMS, "cad-3 ");
        assert_non_null(strstr(p->text, "[n/a: passthrough"));
        /* the GPU memory column too, and never a 0 for the unknown GPU */
        assert_non_null(strstr(strstr(p->text, "[n/a: passthrough") + 1, "n/a: passthrough"));
        assert_null(strstr(p->text, " 0%"));
        assert_null(strstr(p->text, "0M/"));

        const struct gv_top_line *i = row_of(&f, GV_TOP_VMS, "idle-4 ");
        assert_non_null(strstr(i->text, "[-"));
        assert_null(strstr(i->text, " 0%"));

        const struct gv_top_line *s = row_of(&f, GV_TOP_VMS, "stopped-5 ");
        assert_non_null(strstr(s->text, "stopped"));
        assert_non_null(strstr(s->text, "vgpu H100XM-10C"));

        /* bars: the filled cells follow the value (full at 100 %) */
        const struct gv_top_line *g = row_of(&f, GV_TOP_GPUS, "node-a ");
        assert_non_null(strstr(g->text, "55%]"));
        assert_non_null(strstr(g->text, "321W"));
        assert_non_null(strstr(g->text, "61C"));
        assert_non_null(strstr(g->text, "web-1"));
        for (size_t j = 0; j < f.n_lines; j++) {
                const struct gv_top_line *l = &f.lines[j];
                if (l->kind == GV_TOP_LINE_ROW && l->section == GV_TOP_GPUS &&
                    strstr(l->text, "passthrough")) {
                        assert_non_null(strstr(l->text, "[n/a: passthrough"));
                        assert_non_null(strstr(l->text, "cad-3"));
                        assert_int_equal(count_marks(l), 0);
                        assert_null(strstr(l->text, "0W"));
                }
        }

        const struct gv_top_line *down = row_of(&f, GV_TOP_HOSTS, "node-b ");
        assert_non_null(strstr(down->text, "down"));
        assert_non_null(strstr(down->text, "host is down"));
        assert_int_equal(count_marks(down), 0);
        assert_null(strstr(down->text, "0%"));
        const struct gv_top_line *up = row_of(&f, GV_TOP_HOSTS, "node-a ");
        assert_non_null(strstr(up->text, "12%]")); /* 12.5: whole percent from 10 up */
        assert_non_null(strstr(up->text, "31.2G/125G"));

        bool titled = false;
        for (size_t j = 0; j < f.n_lines; j++)
                if (f.lines[j].kind == GV_TOP_LINE_TITLE && f.lines[j].section == GV_TOP_VMS) {
                        assert_string_equal(f.lines[j].text, "VMS 5 (4 running), sorted by gpu");
                        titled = true;
                }
        assert_true(titled);
        gv_top_frame_done(&f);

        /* the narrowest width still has every column, the marks inside their bars */
        assert_int_equal(gv_top_render(m, GV_TOP_SORT_GPU, GV_TOP_MIN_WIDTH, NULL, &f, NULL),
                         0);
        const struct gv_top_line *w80 = row_of(&f, GV_TOP_VMS, "web-1 ");
        assert_true(strlen(w80->text) <= GV_TOP_MIN_WIDTH);
        assert_non_null(strstr(w80->text, "73%]"));
        for (size_t j = 0; w80->marks[j]; j++)
                if (w80->marks[j] == 'b')
                        assert_int_equal(w80->text[j], '|');
        gv_top_frame_done(&f);

        struct gv_error *e = NULL;
        assert_int_equal(gv_top_render(m, GV_TOP_SORT_GPU, GV_TOP_MIN_WIDTH - 1, NULL, &f, &e),
                         -ERANGE);
        assert_non_null(strstr(e->msg, "widen the terminal"));
        assert_null(f.lines);
        gv_error_free(e);
}

static void test_bar_fill(void **state)
{
        (void)state;
        /* a VM with 2 vCPUs at 100 % of one core fills half its CPU bar */
        static const char j[] =
                "{\"hosts\": [], \"vms\": [{\"vm\": \"a\", \"host\": \"h\", \"phase\": "
                "\"running\", \"cpu\": {\"util_pct\": 100, \"vcpus\": 2}, \"memory\": "
                "{\"configured_mib\": 1000, \"rss_mib\": 1000}, \"gpus\": []}]}";
        _cleanup_json_ json_t *mj = json_loads(j, 0, NULL);
        _cleanup_(gv_top_model_freep) struct gv_top_model *m = NULL;
        struct gv_top_frame f = {};
        assert_int_equal(gv_top_model_build(mj, NULL, NULL, &m, NULL), 0);
        assert_int_equal(gv_top_render(m, GV_TOP_SORT_CPU, 100, NULL, &f, NULL), 0);
        const struct gv_top_line *l = row_of(&f, GV_TOP_VMS, "a ");
        /* CPU bar: [|||| 100%] half filled; memory: full (1000 of 1000) */
        const char *cpu = strchr(l->text, '[');
        assert_non_null(cpu);
        const char *end = strchr(cpu, ']');
        size_t inner = (size_t)(end - cpu - 1), filled = 0;
        for (const char *q = cpu + 1; q < end; q++)
                filled += l->marks[q - l->text] == 'b';
        assert_true(inner >= 8);
        assert_int_equal(filled, (inner + 1) / 2); /* lround(inner / 2) */
        const char *mem = strchr(end, '[');
        const char *mend = strchr(mem, ']');
        size_t mfilled = 0, minner = (size_t)(mend - mem - 1);
        for (const char *q = mem + 1; q < mend; q++)
                mfilled += l->text[q - l->text] == '|';
        assert_int_equal(mfilled + strlen("1000M/1000M"), minner);
        gv_top_frame_done(&f);
}

static void test_malformed(void **state)
{
        (void)state;
        struct gv_top_model *m = NULL;
        struct gv_error *e = NULL;
        _cleanup_json_ json_t *arr = json_array();
        _cleanup_json_ json_t *novms = json_pack("{s:[]}", "hosts");
        _cleanup_json_ json_t *ok = json_pack("{s:[], s:[]}", "hosts", "vms");
        _cleanup_json_ json_t *obj = json_object();

        assert_int_equal(gv_top_model_build(arr, NULL, NULL, &m, &e), -EINVAL);
        assert_null(m);
        assert_non_null(strstr(e->msg, "not a JSON object"));
        e = gv_error_free(e);
        assert_int_equal(gv_top_model_build(novms, NULL, NULL, &m, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "'vms'"));
        e = gv_error_free(e);
        assert_int_equal(gv_top_model_build(ok, obj, NULL, &m, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "host list"));
        e = gv_error_free(e);
        assert_int_equal(gv_top_model_build(ok, NULL, obj, &m, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "VM list"));
        e = gv_error_free(e);
        assert_null(m);

        /* an empty cluster renders, totals unknown rather than 0 */
        assert_int_equal(gv_top_model_build(ok, NULL, NULL, &m, NULL), 0);
        struct gv_top_frame f = {};
        assert_int_equal(gv_top_render(m, GV_TOP_SORT_NAME, 90, NULL, &f, NULL), 0);
        assert_non_null(strstr(f.lines[0].text, "CPU -, memory -, GPU -"));
        gv_top_frame_done(&f);
        gv_top_model_free(m);
}

static void test_interval(void **state)
{
        (void)state;
        static const struct {
                const char *s;
                uint32_t ms;
        } good[] = { { "2", 2000 }, { "0.5", 500 }, { ".25", 250 }, { "10.125", 10125 },
                     { "0.1", 100 }, { "3600", 3600000 }, { "1.0", 1000 } };
        static const char *const bad[] = { "0", "0.05", "abc", "-1", "+2", " 2", "2 ", "1.",
                                           "1.2345", "3601", "3600.5", "", "1e3", ".", "1..2",
                                           "0x10", "1,5" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                uint32_t ms = 0;
                assert_int_equal(gv_top_parse_interval(good[i].s, &ms), 0);
                assert_int_equal(ms, good[i].ms);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint32_t ms = 77;
                if (gv_top_parse_interval(bad[i], &ms) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_int_equal(ms, 77);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows),     cmocka_unit_test(test_sort),
                cmocka_unit_test(test_render),   cmocka_unit_test(test_bar_fill),
                cmocka_unit_test(test_malformed), cmocka_unit_test(test_interval),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
