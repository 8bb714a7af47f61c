/* SPDX-License-Identifier: MIT */
/*
 * The cluster through the controller's API: `host list|show`, `gpu list|show`, and the HOST/GPU
 * forms of `gpu set-mode`, `mig apply|list` and `vgpu types`. A bare GPU (index, PCI address,
 * UUID) in those four keeps the local hardware commands (cmd-gpu.c, cmd-mig.c, cmd-vgpu.c): the
 * entries here look at the GPU argument and hand a bare one to the local table.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "host/host.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static bool jint(const json_t *o, const char *key, json_int_t *ret)
{
        const json_t *v = json_object_get(o, key);
        if (!json_is_integer(v))
                return false;
        *ret = json_integer_value(v);
        return true;
}

/* "18/64" from {"used", "total"}; a bare number is a total ("64"). */
static char *fmt_used_total(const json_t *o, bool mib)
{
        json_int_t used, total;
        if (json_is_integer(o))
                return mib ? gv_fmt_mib((uint64_t)MAX(json_integer_value(o), 0))
                           : xasprintf("%lld", (long long)json_integer_value(o));
        if (!jint(o, "used", &used) || !jint(o, "total", &total))
                return xstrdup("—");
        if (!mib)
                return xasprintf("%lld/%lld", (long long)used, (long long)total);
        return xasprintf("%lld/%lld GiB", (long long)((used + 512) / 1024),
                         (long long)((total + 512) / 1024));
}

/* A host's CPU and memory: docs/api.md's {"cpu": {"used", "total"}} or the inventory's
 * {"cpus": N, "memory_mib": N}. */
static char *fmt_host_cpu(const json_t *h)
{
        const json_t *c = json_object_get(h, "cpu");
        return fmt_used_total(c ? c : json_object_get(h, "cpus"), false);
}

/* "8× H100-SXM5-80GB" from a summary string or {"MODEL": count}; else the GPU count. */
static char *fmt_host_gpus(const json_t *h)
{
        const json_t *m = json_object_get(h, "models");
        json_int_t n;
        if (json_is_string(m) && *json_string_value(m))
                return xstrdup(json_string_value(m));
        if (json_is_object(m) && json_object_size(m) > 0) {
                _cleanup_strv_free_ char **l = NULL;
                const char *k;
                json_t *v;
                json_object_foreach((json_t *)m, k, v)
                        strv_consume(&l, xasprintf("%lld× %s", (long long)json_integer_value(v),
                                                   k));
                return strv_join(l, ", ");
        }
        if (jint(h, "gpus", &n))
                return xasprintf("%lld", (long long)n);
        if (json_is_array(json_object_get(h, "gpus")))
                return xasprintf("%zu", json_array_size(json_object_get(h, "gpus")));
        return NULL;
}

/* The GPU shapes differ between docs/api.md (mig.instances with "vm", "vgpus",
 * "passthrough_vm") and the controller's view of the agent's inventory (mig.gpu_instances,
 * vgpu.instances, and "use": [{"vm", "alloc", "name", "start"}] naming the VMs); these read
 * either. */
static const json_t *gpu_mig_instances(const json_t *g)
{
        const json_t *mig = json_object_get(g, "mig");
        const json_t *a = json_object_get(mig, "instances");
        return a ? a : json_object_get(mig, "gpu_instances");
}

static const json_t *gpu_vgpus(const json_t *g)
{
        const json_t *a = json_object_get(g, "vgpus");
        return a ? a : json_object_get(json_object_get(g, "vgpu"), "instances");
}

/* The VM on a MIG instance: its own "vm", else the "use" entry that starts where it starts. */
static const char *gi_vm(const json_t *g, const json_t *gi)
{
        const char *vm = jstr(gi, "vm");
        json_int_t start, s;
        size_t i;
        json_t *u;
        if (vm || !jint(gi, "start", &start))
                return vm;
        json_array_foreach(json_object_get(g, "use"), i, u) {
                const char *alloc = jstr(u, "alloc");
                if (alloc && gv_startswith(alloc, "mig") && jint(u, "start", &s) && s == start)
                        return jstr(u, "vm");
        }
        return NULL;
}

static bool gpu_free_slices(const json_t *g, json_int_t *ret)
{
        const json_t *mig = json_object_get(g, "mig");
        json_int_t total, size, used = 0;
        size_t i;
        json_t *gi;
        if (jint(mig, "free_slices", ret))
                return true;
        if (!jint(mig, "memory_slices", &total) || total <= 0)
                return false;
        json_array_foreach(gpu_mig_instances(g), i, gi)
                if (jint(gi, "size", &size))
                        used += size;
        *ret = MAX(total - used, 0);
        return true;
}

/* "3g.40gb vm/infer-1 · 2g.20gb vm/dev-3 · 2 slices free" and the like. */
static char *fmt_gpu_use(const json_t *g)
{
        const char *mode = jstr(g, "mode");
        const json_t *use = json_object_get(g, "use");
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        json_t *x;
        if (!mode)
                return xstrdup("—");
        if (strcmp(mode, "passthrough") == 0) {
                const char *vm = jstr(g, "passthrough_vm");
                if (!vm)
                        vm = jstr(json_array_get(use, 0), "vm");
                return vm ? xasprintf("vm/%s", vm) : xstrdup("free");
        }
        if (strcmp(mode, "mig") == 0) {
                json_array_foreach(gpu_mig_instances(g), i, x) {
                        const char *vm = gi_vm(g, x);
                        const char *p = jstr(x, "profile") ? jstr(x, "profile") : "?";
                        strv_consume(&l, vm ? xasprintf("%s vm/%s", p, vm) : xstrdup(p));
                }
                json_int_t free_slices;
                if (gpu_free_slices(g, &free_slices) && free_slices > 0)
                        strv_consume(&l, xasprintf("%lld slice%s free", (long long)free_slices,
                                                   free_slices == 1 ? "" : "s"));
                return l ? strv_join(l, " · ") : xstrdup("no instances");
        }
        if (strcmp(mode, "vgpu") == 0) {
                /* who holds what, from the controller's "use" when it has one */
                json_array_foreach(use, i, x)
                        if (jstr(x, "vm"))
                                strv_consume(&l, xasprintf("%s vm/%s", jstr(x, "name")
                                                           ? jstr(x, "name") : "vGPU",
                                                           jstr(x, "vm")));
                if (l)
                        return strv_join(l, " · ");
                const json_t *vgpus = gpu_vgpus(g);
                if (json_array_size(vgpus) == 0)
                        return xstrdup("0 vGPUs");
                json_array_foreach(vgpus, i, x) {
                        const char *vm = jstr(x, "vm");
                        strv_consume(&l, xasprintf("%s %s%s", jstr(x, "type") ? jstr(x, "type")
                                                                              : "?",
                                                   vm ? "vm/" : "", vm ? vm : "free"));
                }
                return strv_join(l, " · ");
        }
        return xstrdup("—");
}

static char *fmt_gpu_util(const json_t *g)
{
        const char *mode = jstr(g, "mode");
        json_int_t u;
        if (mode && strcmp(mode, "passthrough") == 0)
                return xstrdup("n/a");
        if (!jint(g, "util_pct", &u))
                return xstrdup("—");
        return xasprintf("%lld%%", (long long)u);
}

static char *fmt_gpu_mem(const json_t *g)
{
        const char *mode = jstr(g, "mode");
        json_int_t used, total;
        if (mode && strcmp(mode, "passthrough") == 0)
                return xstrdup("n/a (in guest)");
        if (!jint(g, "memory_mib", &total))
                return xstrdup("—");
        if (!jint(g, "memory_used_mib", &used))
                return gv_fmt_mib((uint64_t)total);
        return xasprintf("%lld/%lld GiB", (long long)((used + 512) / 1024),
                         (long long)((total + 512) / 1024));
}

/* One table of GPUs; with_host names them "HOST/INDEX" instead of by index. */
static void print_gpus(const json_t *gpus, bool with_host)
{
        static const char *const headers[] = { "GPU", "PCI", "MODEL", "MODE", "USE", "UTIL",
                                               "MEM", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *g;
        json_array_foreach(gpus, i, g) {
                char idx[24] = "—";
                json_int_t n;
                if (jint(g, "index", &n))
                        snprintf(idx, sizeof(idx), "%lld", (long long)n);
                const char *name = with_host && jstr(g, "name") ? jstr(g, "name") : idx;
                _cleanup_free_ char *use = fmt_gpu_use(g), *util = fmt_gpu_util(g),
                                    *mem = fmt_gpu_mem(g);
                gv_table_add_rowf(t, name, jstr(g, "pci"), jstr(g, "model"), jstr(g, "mode"),
                                  use, util, mem);
        }
        gv_table_print(t, stdout);
}

/* ---- host list | show ---- */

static int host_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "host list [--json]";
        _cleanup_json_ json_t *hosts = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/hosts",
                                 "no hosts registered (an agent registers itself when it "
                                 "starts with the controller's address)", &hosts);
        if (!hosts)
                return ex;
        static const char *const headers[] = { "HOST", "STATE", "POOL", "ACCEL", "CPU", "MEMORY",
                                               "GPUS", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h) {
                _cleanup_free_ char *cpu = fmt_host_cpu(h);
                _cleanup_free_ char *mem = fmt_used_total(json_object_get(h, "memory_mib"), true);
                _cleanup_free_ char *gpus = fmt_host_gpus(h);
                /* every host is in a GPU pool, "default" until an admin says otherwise */
                gv_table_add_rowf(t, jstr(h, "name"), jstr(h, "state"),
                                  jstr(h, "pool") ?: "default", jstr(h, "accel"), cpu, mem, gpus);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

static int get_host(struct gv_cli *cli, const char *name, json_t **ret)
{
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s", e);
        return gv_cli_api_call(cli, "GET", path, NULL, ret, NULL);
}

static int host_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "host show HOST [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *h = NULL;
        ex = get_host(cli, argv[idx], &h);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(h));
                return GV_EXIT_OK;
        }
        _cleanup_free_ char *cpu = fmt_host_cpu(h);
        _cleanup_free_ char *mem = fmt_used_total(json_object_get(h, "memory_mib"), true);
        const json_t *sim = json_object_get(h, "simulated");
        const char *accel = jstr(h, "accel"), *why = jstr(h, "accel_reason");
        printf("host:      %s%s\n", jstr(h, "name") ? jstr(h, "name") : argv[idx],
               json_is_true(sim) ? " (simulated)" : "");
        printf("state:     %s\n", jstr(h, "state") ? jstr(h, "state") : "—");
        printf("endpoint:  %s\n", jstr(h, "endpoint") ? jstr(h, "endpoint") : "—");
        printf("pool:      %s\n", jstr(h, "pool") ?: "default");
        if (why && accel && gv_startswith(why, accel))
                printf("accel:     %s\n", why); /* the reason starts with the accelerator */
        else
                printf("accel:     %s%s%s%s\n", accel ? accel : "—", why ? " (" : "",
                       why ? why : "", why ? ")" : "");
        printf("cpu:       %s\n", cpu);
        printf("memory:    %s\n", mem);
        const json_t *gpus = json_object_get(h, "gpus");
        if (json_is_array(gpus) && json_array_size(gpus) > 0) {
                printf("\n");
                print_gpus(gpus, false);
        } else {
                printf("gpus:      none\n");
        }
        return GV_EXIT_OK;
}

/* ---- gpu list | show ---- */

static int gpu_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "gpu list [HOST] [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, -1, NULL, &idx, &ex))
                return ex;
        bool one = idx < argc;
        _cleanup_json_ json_t *reply = NULL;
        if (one)
                ex = get_host(cli, argv[idx], &reply);
        else
                ex = gv_cli_api_call(cli, "GET", "/api/v1/gpus", NULL, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        json_t *gpus = one ? json_object_get(reply, "gpus") : reply;
        if (cli->json) {
                gv_json_print(json_incref(gpus ? gpus : json_array()));
                return GV_EXIT_OK;
        }
        if (json_array_size(gpus) == 0) {
                printf(one ? "host %s has no GPUs\n" : "no GPUs in the cluster%s\n",
                       one ? argv[idx] : "");
                return GV_EXIT_OK;
        }
        print_gpus(gpus, !one);
        return GV_EXIT_OK;
}

/* HOST/GPU into an API path below /api/v1 (new string), or a usage error. */
static int gpu_path(const char *sel, const char *suffix, char **ret)
{
        _cleanup_free_ char *host = NULL, *gpu = NULL;
        if (!gv_cli_split_host_gpu(sel, &host, &gpu))
                return gv_cli_usage_error("'%s' is not HOST/GPU (e.g. node-a/0; GPU is an index, "
                                          "PCI address or UUID)", sel);
        _cleanup_free_ char *eh = gv_cli_url_escape(host), *eg = gv_cli_url_escape(gpu);
        *ret = xasprintf("/api/v1/hosts/%s/gpus/%s%s", eh, eg, suffix);
        return GV_EXIT_OK;
}

static void print_partitions(const json_t *g)
{
        const json_t *inst = gpu_mig_instances(g);
        const json_t *vgpus = gpu_vgpus(g);
        size_t i;
        json_t *x;
        if (json_array_size(inst) > 0) {
                static const char *const headers[] = { "GI", "PROFILE", "SLICES", "VM", NULL };
                _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
                json_array_foreach(inst, i, x) {
                        json_int_t id = 0, start = 0, size = 0;
                        char sid[24], sl[48];
                        (void)jint(x, "id", &id);
                        (void)jint(x, "start", &start);
                        (void)jint(x, "size", &size);
                        snprintf(sid, sizeof(sid), "%lld", (long long)id);
                        if (size > 1)
                                snprintf(sl, sizeof(sl), "%lld-%lld", (long long)start,
                                         (long long)(start + size - 1));
                        else
                                snprintf(sl, sizeof(sl), "%lld", (long long)start);
                        gv_table_add_rowf(t, sid, jstr(x, "profile"), sl, gi_vm(g, x));
                }
                gv_table_print(t, stdout);
        }
        json_int_t free_slices;
        if (gpu_free_slices(g, &free_slices))
                printf("%lld MIG slice%s free\n", (long long)free_slices,
                       free_slices == 1 ? "" : "s");
        if (json_array_size(vgpus) > 0) {
                static const char *const headers[] = { "VGPU", "TYPE", "VM", NULL };
                _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
                json_array_foreach(vgpus, i, x)
                        gv_table_add_rowf(t, jstr(x, "id") ? jstr(x, "id") : jstr(x, "uuid"),
                                          jstr(x, "type"), jstr(x, "vm"));
                gv_table_print(t, stdout);
        }
}

static int get_gpu(struct gv_cli *cli, const char *sel, json_t **ret)
{
        _cleanup_free_ char *path = NULL;
        int ex = gpu_path(sel, "", &path);
        if (ex != GV_EXIT_OK)
                return ex;
        return gv_cli_api_call(cli, "GET", path, NULL, ret, NULL);
}

static int gpu_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "gpu show HOST/GPU [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *g = NULL;
        ex = get_gpu(cli, argv[idx], &g);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(g));
                return GV_EXIT_OK;
        }
        _cleanup_free_ char *use = fmt_gpu_use(g), *util = fmt_gpu_util(g), *mem = fmt_gpu_mem(g);
        printf("gpu:       %s\n", jstr(g, "name") ? jstr(g, "name") : argv[idx]);
        printf("pci:       %s\n", jstr(g, "pci") ? jstr(g, "pci") : "—");
        printf("model:     %s\n", jstr(g, "model") ? jstr(g, "model") : "—");
        printf("mode:      %s\n", jstr(g, "mode") ? jstr(g, "mode") : "—");
        printf("use:       %s\n", use);
        printf("util:      %s\n", util);
        printf("memory:    %s\n", mem);
        print_partitions(g);
        return GV_EXIT_OK;
}

/* ---- HOST/GPU forms of local commands ---- */

static int api_gpu_set_mode(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "gpu set-mode HOST/GPU none|passthrough|vgpu|mig [--wait] "
                                    "[--json]";
        int idx, ex;
        bool wait = false;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 2, &wait, &idx, &ex))
                return ex;
        const char *mode = argv[idx + 1];
        if ((int)gv_gpu_mode_from_string(mode) < 0) {
                _cleanup_free_ char *names = gv_gpu_mode_names();
                return gv_cli_usage_error("unknown mode '%s' (valid: %s)", mode, names);
        }
        _cleanup_free_ char *path = NULL;
        ex = gpu_path(argv[idx], "/mode", &path);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_json_ json_t *body = json_pack("{s:s}", "mode", mode);
        _cleanup_json_ json_t *op = NULL;
        ex = gv_cli_api_call(cli, "POST", path, body, &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        return gv_cli_op_follow(cli, op, argv[idx], wait, NULL);
}

static int api_mig_apply(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig apply HOST/GPU PROFILE[,PROFILE...] [--wait] [--json]";
        int idx, ex;
        bool wait = false;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 2, &wait, &idx, &ex))
                return ex;
        _cleanup_strv_free_ char **profiles = strv_split(argv[idx + 1], ", ");
        if (strv_length(profiles) == 0)
                return gv_cli_usage_error("no MIG profile given; usage: gpuvirt %s", usage);
        _cleanup_free_ char *path = NULL;
        ex = gpu_path(argv[idx], "/mig", &path);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_json_ json_t *list = json_array();
        STRV_FOREACH(p, profiles)
                json_array_append_new(list, json_string(*p));
        _cleanup_json_ json_t *body = json_pack("{s:O}", "profiles", list);
        _cleanup_json_ json_t *op = NULL;
        ex = gv_cli_api_call(cli, "POST", path, body, &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        return gv_cli_op_follow(cli, op, argv[idx], wait, NULL);
}

static int api_mig_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig list HOST/GPU [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *g = NULL;
        ex = get_gpu(cli, argv[idx], &g);
        if (ex != GV_EXIT_OK)
                return ex;
        json_t *mig = json_object_get(g, "mig");
        if (cli->json) {
                gv_json_print(json_incref(mig ? mig : json_null()));
                return GV_EXIT_OK;
        }
        if (!json_is_object(mig)) {
                printf("%s: mode %s, no MIG instances\n", argv[idx],
                       jstr(g, "mode") ? jstr(g, "mode") : "unknown");
                return GV_EXIT_OK;
        }
        if (json_array_size(gpu_mig_instances(g)) == 0)
                printf("%s: no GPU instances\n", argv[idx]);
        print_partitions(g);
        return GV_EXIT_OK;
}

static int api_vgpu_types(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vgpu types HOST/GPU [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *path = NULL;
        ex = gpu_path(argv[idx], "/vgpu-types", &path);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_json_ json_t *types = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &types, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(types));
                return GV_EXIT_OK;
        }
        if (json_array_size(types) == 0) {
                printf("%s offers no vGPU types (mode, driver or vGPU manager)\n", argv[idx]);
                return GV_EXIT_OK;
        }
        static const char *const headers[] = { "TYPE", "FRAMEBUFFER", "MAX", "AVAILABLE", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *x;
        json_array_foreach(types, i, x) {
                json_int_t fb = 0, mx = 0, av = 0;
                bool has_fb = jint(x, "framebuffer_mib", &fb);
                (void)jint(x, "max_instances", &mx);
                (void)jint(x, "available", &av);
                _cleanup_free_ char *sfb = has_fb ? gv_fmt_mib((uint64_t)fb) : NULL;
                char smx[24], sav[24];
                snprintf(smx, sizeof(smx), "%lld", (long long)mx);
                snprintf(sav, sizeof(sav), "%lld", (long long)av);
                gv_table_add_rowf(t, jstr(x, "name"), sfb, smx, sav);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* ---- local or API ---- */

/* The first positional argument of a command line (argv[0] is the verb), skipping options and
 * the values of those that take one. NULL when there is none. */
static const char *first_positional(int argc, char **argv)
{
        static const char *const with_value[] = { "--endpoint", "--token", "--timeout", NULL };
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0)
                        return i + 1 < argc ? argv[i + 1] : NULL;
                if (a[0] != '-' || a[1] == '\0')
                        return a;
                for (const char *const *w = with_value; *w; w++)
                        if (strcmp(a, *w) == 0)
                                i++;
        }
        return NULL;
}

static int dispatch(struct gv_cli *cli, int argc, char **argv, const char *group,
                    const struct gv_cli_command *local,
                    int (*api)(struct gv_cli *, int, char **))
{
        const char *sel = first_positional(argc, argv);
        if (sel && strchr(sel, '/'))
                return api(cli, argc, argv);
        for (const struct gv_cli_command *c = local; c->group; c++)
                if (strcmp(c->group, group) == 0 && strcmp(c->verb, argv[0]) == 0)
                        return c->run(cli, argc, argv);
        return gv_cli_usage_error("'%s %s' has no local form; give the GPU as HOST/GPU", group,
                                  argv[0]);
}

static int gpu_set_mode(struct gv_cli *cli, int argc, char **argv)
{
        return dispatch(cli, argc, argv, "gpu", gv_cli_gpu_commands, api_gpu_set_mode);
}

static int mig_apply(struct gv_cli *cli, int argc, char **argv)
{
        return dispatch(cli, argc, argv, "mig", gv_cli_mig_commands, api_mig_apply);
}

static int mig_list(struct gv_cli *cli, int argc, char **argv)
{
        return dispatch(cli, argc, argv, "mig", gv_cli_mig_commands, api_mig_list);
}

static int vgpu_types(struct gv_cli *cli, int argc, char **argv)
{
        return dispatch(cli, argc, argv, "vgpu", gv_cli_vgpu_commands, api_vgpu_types);
}

/* POST /api/v1/hosts/HOST/ACTION with body (may be NULL): the CLI exit code, *ret the answer. */
static int host_post(struct gv_cli *cli, const char *host, const char *action,
                     const json_t *body, json_t **ret)
{
        _cleanup_free_ char *e = gv_cli_url_escape(host);
        _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s/%s", e, action);
        return gv_cli_api_call(cli, "POST", path, body, ret, NULL);
}

/* host drain HOST [--dry-run] [--passthrough offline|stop|keep] [--wait] */
static int host_drain(struct gv_cli *cli, int argc, char **argv)
{
        enum { OPT_DRY = GV_CLI_OPT_FIRST_OWN, OPT_PT };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "wait", no_argument, NULL, GV_CLI_OPT_WAIT },
                { "dry-run", no_argument, NULL, OPT_DRY },
                { "passthrough", required_argument, NULL, OPT_PT },
                {},
        };
        static const char usage[] = "host drain HOST [--dry-run] [--passthrough offline|stop|"
                                    "keep] [--wait] [--json]";
        _cleanup_json_ json_t *body = json_object(), *out = NULL;
        bool wait = false, dry = false;
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == GV_CLI_OPT_WAIT) {
                        wait = true;
                } else if (c == OPT_DRY) {
                        dry = true;
                        json_object_set_new(body, "dry_run", json_true());
                } else if (c == OPT_PT) {
                        if (strcmp(optarg, "offline") && strcmp(optarg, "stop") &&
                            strcmp(optarg, "keep"))
                                return gv_cli_usage_error("--passthrough '%s' (valid: offline, "
                                                          "stop, keep)", optarg);
                        json_object_set_new(body, "passthrough", json_string(optarg));
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *host = argv[optind];
        ex = host_post(cli, host, "drain", body, &out);
        if (ex != GV_EXIT_OK)
                return ex;
        if (!dry)
                return gv_cli_op_follow(cli, out, host, wait, NULL);
        if (cli->json) {
                gv_json_print(TAKE_PTR(out));
                return GV_EXIT_OK;
        }
        static const char *const headers[] = { "VM", "ACTION", "WHY", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *p;
        size_t i;
        json_array_foreach(json_object_get(out, "plan"), i, p)
                gv_table_add_rowf(t, jstr(p, "vm"), jstr(p, "action"), jstr(p, "why"));
        printf("drain %s (dry run; pass-through VMs: %s):\n", host,
               jstr(out, "passthrough") ? jstr(out, "passthrough") : "offline");
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* A host verb with no options of its own: POST /api/v1/hosts/HOST/ACTION, then the host's state
 * (or `fallback` when the answer names none) and `note`, or the answer under --json. */
static int host_verb(struct gv_cli *cli, int argc, char **argv, const char *action,
                     const char *usage, const char *fallback, const char *note)
{
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *h = NULL;
        ex = host_post(cli, argv[idx], action, NULL, &h);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(TAKE_PTR(h));
        else
                printf("%s: %s%s\n", argv[idx], jstr(h, "state") ?: fallback, note);
        return GV_EXIT_OK;
}

static int host_undrain(struct gv_cli *cli, int argc, char **argv)
{
        return host_verb(cli, argc, argv, "undrain", "host undrain HOST [--json]", "up", "");
}

/* host pool HOST POOL: the GPU pool the host's GPUs are in (tenants may be held to pools) */
static int host_pool(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "host pool HOST POOL [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 2, NULL, &idx, &ex))
                return ex;
        const char *host = argv[idx], *pool = argv[idx + 1];
        if (!gv_name_is_valid(pool))
                return gv_cli_usage_error("'%s' is not a pool name (1 to 63 of a-z 0-9 . _ -, "
                                          "starting with a letter or digit)", pool);
        _cleanup_json_ json_t *body = json_pack("{s:s}", "pool", pool), *out = NULL;
        ex = host_post(cli, host, "pool", body, &out);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(TAKE_PTR(out));
        else
                printf("%s: in GPU pool %s\n", host, jstr(out, "pool") ?: pool);
        return GV_EXIT_OK;
}

/* host fence HOST [--reason TEXT]: the operator asserts the host is powered off (fence.c) */
static int host_fence(struct gv_cli *cli, int argc, char **argv)
{
        enum { OPT_REASON = GV_CLI_OPT_FIRST_OWN };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "reason", required_argument, NULL, OPT_REASON },
                {},
        };
        static const char usage[] = "host fence HOST [--reason TEXT] [--json]";
        _cleanup_json_ json_t *body = json_object(), *out = NULL;
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_REASON) {
                        json_object_set_new(body, "reason", json_string(optarg));
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *host = argv[optind];
        ex = host_post(cli, host, "fence", body, &out);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(TAKE_PTR(out));
        else
                printf("%s: fenced (no placements; `gpuvirt host evacuate %s` re-places its "
                       "VMs)\n", host, host);
        return GV_EXIT_OK;
}

static int host_unfence(struct gv_cli *cli, int argc, char **argv)
{
        return host_verb(cli, argc, argv, "unfence", "host unfence HOST [--json]", "down",
                         " (takes placements once its agent answers)");
}

/* host evacuate HOST [--wait]: re-place the VMs of a fenced, silent host */
static int host_evacuate(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "host evacuate HOST [--wait] [--json]";
        _cleanup_json_ json_t *out = NULL;
        bool wait = false;
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, &wait, &idx, &ex))
                return ex;
        ex = host_post(cli, argv[idx], "evacuate", NULL, &out);
        if (ex != GV_EXIT_OK)
                return ex;
        return gv_cli_op_follow(cli, out, argv[idx], wait, NULL);
}

const struct gv_cli_command gv_cli_cluster_commands[] = {
        { "host", "list", "", "hosts of the cluster: state, accelerator, CPU, memory, GPUs",
          host_list },
        { "host", "show", "HOST", "one host and its GPUs", host_show },
        { "host", "drain", "HOST [--dry-run]", "maintenance: no new placements, its VMs moved "
          "away [--wait]", host_drain },
        { "host", "undrain", "HOST", "end maintenance: the host takes placements again",
          host_undrain },
        { "host", "pool", "HOST POOL", "put the host's GPUs in a GPU pool (tenants' --pool)",
          host_pool },
        { "host", "fence", "HOST [--reason TEXT]", "assert that a down host is powered off: "
          "its VMs may be re-placed", host_fence },
        { "host", "unfence", "HOST", "end the fence once the host answered again",
          host_unfence },
        { "host", "evacuate", "HOST", "re-place and start elsewhere the VMs of a fenced host "
          "[--wait]", host_evacuate },
        { "gpu", "list", "[HOST]", "GPUs of the cluster (or of one host): mode, use, memory",
          gpu_list },
        { "gpu", "show", "HOST/GPU", "one GPU with its MIG instances and vGPUs", gpu_show },
        { "gpu", "set-mode", "GPU|HOST/GPU MODE", "none, passthrough (vfio-pci), vgpu or mig "
          "[--wait]", gpu_set_mode },
        { "mig", "apply", "GPU|HOST/GPU PROFILE[,...]", "make the GPU hold exactly these GPU "
          "instances", mig_apply },
        { "mig", "list", "GPU|HOST/GPU", "GPU instances and their memory slices", mig_list },
        { "vgpu", "types", "GPU|HOST/GPU", "vGPU types, framebuffer, how many can still be made",
          vgpu_types },
        {},
};
