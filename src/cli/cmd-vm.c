/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt vm create|list|show|start|stop|delete` through the controller's API (docs/api.md:
 * vm-create, vm, operation). Options of `vm create` become the vm-create JSON here, checked with
 * the strict parsers before anything is sent.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "vmm/vm-config.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define USER_DATA_MAX GV_VM_MAX_USER_DATA /* the agent's limit (vm-config.h) */
#define SSH_KEYS_MAX (64u * 1024u)
#define MIB (1024ull * 1024ull)

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "32G" → MiB; sizes must be whole MiB. */
static int parse_mib(const char *what, const char *s, uint64_t *ret)
{
        uint64_t bytes;
        if (gv_parse_size(s, &bytes) < 0 || bytes == 0)
                return gv_cli_usage_error("%s '%s' is not a size such as 512M, 32G or 1T", what,
                                          s);
        if (bytes % MIB != 0)
                return gv_cli_usage_error("%s '%s' is not a whole number of MiB (a bare number "
                                          "is bytes: write 32G or 512M)", what, s);
        *ret = bytes / MIB;
        return GV_EXIT_OK;
}

/* --gpu SPEC → one entry of vm-create's "gpus". */
static int parse_gpu_spec(const char *spec, json_t **ret)
{
        static const char kinds[] = "passthrough[:N], vgpu:TYPE, mig:PROFILE, "
                                    "need:MEM[,isolation=none|software|hardware][,migrate]";
        const char *colon = strchr(spec, ':');
        size_t klen = colon ? (size_t)(colon - spec) : strlen(spec);
        const char *arg = colon ? colon + 1 : NULL;
        _cleanup_free_ char *kind = xstrndup(spec, klen);

        if (strcmp(kind, "passthrough") == 0) {
                uint32_t n = 1;
                if (arg && (gv_parse_u32(arg, 10, &n) < 0 || n == 0 || n > 64))
                        return gv_cli_usage_error("--gpu '%s': the count '%s' is not a number "
                                                  "from 1 to 64", spec, arg);
                *ret = json_pack("{s:s, s:i}", "kind", "passthrough", "count", (int)n);
                return GV_EXIT_OK;
        }
        if (strcmp(kind, "vgpu") == 0 || strcmp(kind, "mig") == 0) {
                if (!arg || !*arg)
                        return gv_cli_usage_error("--gpu '%s' needs a %s after '%s:' (see "
                                                  "'gpuvirt %s HOST/GPU')", spec,
                                                  kind[0] == 'v' ? "vGPU type" : "MIG profile",
                                                  kind, kind[0] == 'v' ? "vgpu types"
                                                                       : "mig list");
                json_t *j = json_pack("{s:s, s:s}", "kind", kind,
                                      kind[0] == 'v' ? "type" : "profile", arg);
                if (!j)
                        return gv_cli_usage_error("--gpu '%s' is not valid UTF-8", spec);
                *ret = j;
                return GV_EXIT_OK;
        }
        if (strcmp(kind, "need") == 0) {
                if (!arg || !*arg)
                        return gv_cli_usage_error("--gpu '%s' needs the GPU memory after "
                                                  "'need:' (e.g. need:20G,isolation=hardware)",
                                                  spec);
                _cleanup_strv_free_ char **parts = strv_split(arg, ",");
                if (strv_length(parts) == 0)
                        return gv_cli_usage_error("--gpu '%s' needs the GPU memory", spec);
                uint64_t mib;
                int ex = parse_mib("--gpu need: memory", parts[0], &mib);
                if (ex != GV_EXIT_OK)
                        return ex;
                _cleanup_json_ json_t *j = json_pack("{s:s, s:I}", "kind", "need", "memory_mib",
                                                     (json_int_t)mib);
                for (char **p = parts + 1; *p; p++) {
                        if (gv_startswith(*p, "isolation=")) {
                                const char *iso = *p + strlen("isolation=");
                                if (strcmp(iso, "none") != 0 && strcmp(iso, "software") != 0 &&
                                    strcmp(iso, "hardware") != 0)
                                        return gv_cli_usage_error("--gpu '%s': unknown isolation "
                                                                  "'%s' (valid: none, software, "
                                                                  "hardware)", spec, iso);
                                if (json_object_get(j, "isolation"))
                                        return gv_cli_usage_error("--gpu '%s' gives isolation "
                                                                  "twice", spec);
                                json_object_set_new(j, "isolation", json_string(iso));
                        } else if (strcmp(*p, "migrate") == 0) {
                                json_object_set_new(j, "live_migration", json_true());
                        } else {
                                return gv_cli_usage_error("--gpu '%s': unknown need '%s' (valid: "
                                                          "isolation=none|software|hardware, "
                                                          "migrate)", spec, *p);
                        }
                }
                *ret = TAKE_PTR(j);
                return GV_EXIT_OK;
        }
        return gv_cli_usage_error("--gpu '%s': unknown kind '%s' (valid: %s)", spec, kind, kinds);
}

/* --forward HOST:GUEST */
static int parse_forward(const char *s, json_t **ret)
{
        const char *colon = strchr(s, ':');
        uint16_t hp, gp;
        _cleanup_free_ char *h = colon ? xstrndup(s, (size_t)(colon - s)) : NULL;
        if (!colon || gv_parse_u16(h, 10, &hp) < 0 || hp == 0 ||
            gv_parse_u16(colon + 1, 10, &gp) < 0 || gp == 0)
                return gv_cli_usage_error("--forward '%s' is not HOST-PORT:GUEST-PORT (e.g. "
                                          "2222:22; ports 1 to 65535)", s);
        *ret = json_pack("{s:i, s:i}", "host_port", (int)hp, "guest_port", (int)gp);
        return GV_EXIT_OK;
}

/* --nic user|bridge:BR */
static int parse_nic(const char *s, json_t **ret)
{
        if (strcmp(s, "user") == 0) {
                *ret = json_pack("{s:s}", "mode", "user");
                return GV_EXIT_OK;
        }
        if (gv_startswith(s, "bridge:") && s[strlen("bridge:")]) {
                json_t *j = json_pack("{s:s, s:s}", "mode", "bridge", "bridge",
                                      s + strlen("bridge:"));
                if (!j)
                        return gv_cli_usage_error("--nic '%s' is not valid UTF-8", s);
                *ret = j;
                return GV_EXIT_OK;
        }
        return gv_cli_usage_error("--nic '%s' is neither 'user' nor 'bridge:BRIDGE'", s);
}

static int read_text(const char *opt, const char *path, size_t max, char **ret)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = gv_read_file(path, max, &text, &len);
        if (r == -EFBIG)
                return gv_cli_usage_error("%s '%s' is larger than %zu KiB", opt, path, max / 1024);
        if (r < 0)
                return gv_cli_usage_error("%s: cannot read '%s': %s", opt, path, strerror(-r));
        if (strlen(text) != len)
                return gv_cli_usage_error("%s '%s' holds a NUL byte; it must be text", opt, path);
        *ret = TAKE_PTR(text);
        return GV_EXIT_OK;
}

static int add_ssh_keys(const char *path, json_t *keys)
{
        _cleanup_free_ char *text = NULL;
        int ex = read_text("--ssh-key", path, SSH_KEYS_MAX, &text);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_strv_free_ char **lines = strv_split(text, "\r\n");
        size_t before = json_array_size(keys);
        STRV_FOREACH(l, lines) {
                char *k = gv_strip(*l);
                if (!*k || *k == '#')
                        continue;
                json_t *s = json_string(k);
                if (!s)
                        return gv_cli_usage_error("--ssh-key '%s' is not valid UTF-8", path);
                json_array_append_new(keys, s);
        }
        if (json_array_size(keys) == before)
                return gv_cli_usage_error("--ssh-key '%s' holds no key (one public key a line, "
                                          "e.g. ~/.ssh/id_ed25519.pub)", path);
        return GV_EXIT_OK;
}

/* " (policy gpuvirt)" and the like, for the line after a create. */
static char *describe_placement(const json_t *vm)
{
        const json_t *pl = json_object_get(vm, "placement");
        const char *host = jstr(pl, "host") ? jstr(pl, "host") : jstr(vm, "host");
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(pl, "gpus"), i, g) {
                const char *gpu = jstr(g, "gpu") ? jstr(g, "gpu") : "?";
                const char *alloc = jstr(g, "alloc") ? jstr(g, "alloc") : "";
                const char *slash = strchr(gpu, '/');
                const char *gidx = slash ? slash + 1 : gpu;
                const json_t *start = json_object_get(g, "start");
                const json_t *size = json_object_get(g, "size");
                char where[64] = "";
                if (json_is_integer(start) && json_is_integer(size) &&
                    json_integer_value(size) > 1)
                        snprintf(where, sizeof(where), " at slices %lld–%lld",
                                 (long long)json_integer_value(start),
                                 (long long)(json_integer_value(start) +
                                             json_integer_value(size) - 1));
                else if (json_is_integer(start))
                        snprintf(where, sizeof(where), " at slice %lld",
                                 (long long)json_integer_value(start));
                /* docs/api.md names "profile"; the controller's placement "name" */
                const char *what = jstr(g, "profile") ? jstr(g, "profile")
                                   : jstr(g, "type") ? jstr(g, "type")
                                   : jstr(g, "name") ? jstr(g, "name") : "?";
                if (strcmp(alloc, "mig") == 0)
                        strv_consume(&l, xasprintf("GPU %s, MIG %s%s", gidx, what, where));
                else if (strcmp(alloc, "mig-vgpu") == 0)
                        strv_consume(&l, xasprintf("GPU %s, MIG-backed vGPU %s%s", gidx, what,
                                                   where));
                else if (strcmp(alloc, "vgpu") == 0)
                        strv_consume(&l, xasprintf("GPU %s, vGPU %s", gidx, what));
                else
                        strv_consume(&l, xasprintf("GPU %s, pass-through", gidx));
        }
        _cleanup_free_ char *gpus = l ? strv_join(l, "; ") : NULL;
        return xasprintf("placed on %s%s%s%s%s%s", host ? host : "?", gpus ? " " : "",
                         gpus ? gpus : "", jstr(pl, "policy") ? " (policy " : "",
                         jstr(pl, "policy") ? jstr(pl, "policy") : "",
                         jstr(pl, "policy") ? ")" : "");
}

static int get_vm(struct gv_cli *cli, const char *name, json_t **ret)
{
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        _cleanup_free_ char *path = xasprintf("/api/v1/vms/%s", e);
        return gv_cli_api_call(cli, "GET", path, NULL, ret, NULL);
}

static int vm_create(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "vm create NAME [--image IMG] [--disk-size 40G] [--cpus N] [--memory 32G]\n"
                "        [--gpu passthrough[:N]|vgpu:TYPE|mig:PROFILE|need:MEM[,isolation=..]"
                "[,migrate]]\n"
                "        [--nic user|bridge:BR]... [--forward HOST:GUEST]... [--user-data FILE]\n"
                "        [--ssh-key FILE]... [--policy P] [--host H]\n"
                "        [--maintenance offline|stop|keep] [--tenant T] [--wait] [--json]";
        enum {
                OPT_IMAGE = GV_CLI_OPT_FIRST_OWN, OPT_DISK, OPT_CPUS, OPT_MEMORY, OPT_GPU, OPT_NIC,
                OPT_FORWARD, OPT_USER_DATA, OPT_SSH_KEY, OPT_POLICY, OPT_HOST, OPT_MAINTENANCE,
                OPT_TENANT,
        };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "wait", no_argument, NULL, GV_CLI_OPT_WAIT },
                { "image", required_argument, NULL, OPT_IMAGE },
                { "disk-size", required_argument, NULL, OPT_DISK },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "memory", required_argument, NULL, OPT_MEMORY },
                { "gpu", required_argument, NULL, OPT_GPU },
                { "nic", required_argument, NULL, OPT_NIC },
                { "forward", required_argument, NULL, OPT_FORWARD },
                { "user-data", required_argument, NULL, OPT_USER_DATA },
                { "ssh-key", required_argument, NULL, OPT_SSH_KEY },
                { "policy", required_argument, NULL, OPT_POLICY },
                { "host", required_argument, NULL, OPT_HOST },
                { "maintenance", required_argument, NULL, OPT_MAINTENANCE },
                { "tenant", required_argument, NULL, OPT_TENANT },
                {},
        };
        _cleanup_json_ json_t *spec = json_object();
        _cleanup_json_ json_t *nics = json_array(), *forwards = json_array();
        _cleanup_json_ json_t *keys = json_array();
        _cleanup_free_ char *user_data = NULL;
        bool wait = false;
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                json_t *j = NULL;
                uint64_t v;
                uint32_t n;
                int hx = -1;
                switch (c) {
                case GV_CLI_OPT_WAIT:
                        wait = true;
                        break;
                case OPT_IMAGE:
                case OPT_POLICY:
                case OPT_HOST:
                case OPT_TENANT: {
                        const char *key = c == OPT_IMAGE    ? "image"
                                          : c == OPT_POLICY ? "policy"
                                          : c == OPT_HOST   ? "host"
                                                            : "tenant";
                        if (!*optarg)
                                return gv_cli_usage_error("--%s needs a value", key);
                        if (c != OPT_POLICY && !gv_name_is_valid(optarg))
                                return gv_cli_usage_error("--%s '%s' is not a valid name "
                                                          "(lower-case letters, digits, '-')",
                                                          key, optarg);
                        json_t *s = json_string(optarg);
                        if (!s)
                                return gv_cli_usage_error("--%s '%s' is not valid UTF-8", key,
                                                          optarg);
                        json_object_set_new(spec, key, s);
                        break;
                }
                case OPT_MAINTENANCE:
                        if (strcmp(optarg, "offline") != 0 && strcmp(optarg, "stop") != 0 &&
                            strcmp(optarg, "keep") != 0)
                                return gv_cli_usage_error("--maintenance '%s': use offline, "
                                                          "stop or keep", optarg);
                        json_object_set_new(spec, "maintenance", json_string(optarg));
                        break;
                case OPT_DISK:
                        if (gv_parse_size(optarg, &v) < 0 || v == 0)
                                return gv_cli_usage_error("--disk-size '%s' is not a size such "
                                                          "as 40G", optarg);
                        json_object_set_new(spec, "disk_size", json_string(optarg));
                        break;
                case OPT_CPUS:
                        if (gv_parse_u32(optarg, 10, &n) < 0 || n == 0 || n > 1024)
                                return gv_cli_usage_error("--cpus '%s' is not a number from 1 to "
                                                          "1024", optarg);
                        json_object_set_new(spec, "vcpus", json_integer(n));
                        break;
                case OPT_MEMORY:
                        ex = parse_mib("--memory", optarg, &v);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        json_object_set_new(spec, "memory_mib", json_integer((json_int_t)v));
                        break;
                case OPT_GPU:
                        if (json_object_get(spec, "gpus"))
                                return gv_cli_usage_error("--gpu is given twice; a VM takes one "
                                                          "GPU request in this version (e.g. "
                                                          "passthrough:2 for two GPUs)");
                        ex = parse_gpu_spec(optarg, &j);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        json_object_set_new(spec, "gpus", json_pack("[o]", j));
                        break;
                case OPT_NIC:
                        ex = parse_nic(optarg, &j);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        json_array_append_new(nics, j);
                        break;
                case OPT_FORWARD:
                        ex = parse_forward(optarg, &j);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        json_array_append_new(forwards, j);
                        break;
                case OPT_USER_DATA:
                        if (user_data)
                                return gv_cli_usage_error("--user-data is given twice");
                        ex = read_text("--user-data", optarg, USER_DATA_MAX, &user_data);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        break;
                case OPT_SSH_KEY:
                        ex = add_ssh_keys(optarg, keys);
                        if (ex != GV_EXIT_OK)
                                return ex;
                        break;
                default:
                        /* hx, not ex: ex holds the last option's parse result */
                        if (gv_cli_api_option(cli, c, usage, &hx)) {
                                if (hx >= 0)
                                        return hx;
                                break;
                        }
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *name = argv[optind];
        if (!gv_name_is_valid(name))
                return gv_cli_usage_error("'%s' is not a valid VM name (1 to 63 of a-z, 0-9 and "
                                          "'-', starting and ending with a letter or digit)",
                                          name);
        json_object_set_new(spec, "name", json_string(name));

        if (json_array_size(forwards) > 0) {
                json_t *user = NULL;
                size_t i;
                json_t *nic;
                if (json_array_size(nics) == 0)
                        json_array_append_new(nics, json_pack("{s:s}", "mode", "user"));
                json_array_foreach(nics, i, nic)
                        if (!user && strcmp(jstr(nic, "mode"), "user") == 0)
                                user = nic;
                if (!user)
                        return gv_cli_usage_error("--forward needs a user-mode NIC (--nic user); "
                                                  "a bridge NIC is reached at the guest's own "
                                                  "address");
                json_object_set(user, "forwards", forwards);
        }
        if (json_array_size(nics) > 0)
                json_object_set(spec, "nics", nics);
        if (user_data || json_array_size(keys) > 0) {
                json_t *ci = json_object();
                if (user_data) {
                        json_t *s = json_string(user_data);
                        if (!s) {
                                json_decref(ci);
                                return gv_cli_usage_error("--user-data is not valid UTF-8");
                        }
                        json_object_set_new(ci, "user_data", s);
                }
                if (json_array_size(keys) > 0)
                        json_object_set(ci, "ssh_authorized_keys", keys);
                json_object_set_new(spec, "cloud_init", ci);
        }

        int64_t t0 = now_ms();
        _cleanup_json_ json_t *op = NULL, *final = NULL;
        ex = gv_cli_api_call(cli, "POST", "/api/v1/vms", spec, &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (!wait || cli->json)
                return gv_cli_op_follow(cli, op, name, wait, NULL);
        ex = gv_cli_op_follow(cli, op, name, true, &final);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_json_ json_t *vm = NULL;
        ex = get_vm(cli, name, &vm);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_free_ char *where = describe_placement(vm);
        printf("%s: %s\n", name, where);
        printf("%s: %s (%.1f s)\n", name, jstr(vm, "state") ? jstr(vm, "state") : "created",
               (double)(now_ms() - t0) / 1000.0);
        return GV_EXIT_OK;
}

/* "mig:3g.40gb", "passthrough:2", "need:20G" from the vm's spec. */
static char *fmt_gpu_request(const json_t *vm)
{
        const json_t *g = json_array_get(json_object_get(json_object_get(vm, "spec"), "gpus"), 0);
        const char *kind = jstr(g, "kind");
        if (!kind)
                return NULL;
        if (strcmp(kind, "passthrough") == 0)
                return xasprintf("passthrough:%lld",
                                 (long long)json_integer_value(json_object_get(g, "count")));
        if (strcmp(kind, "vgpu") == 0)
                return xasprintf("vgpu:%s", jstr(g, "type") ? jstr(g, "type") : "?");
        if (strcmp(kind, "mig") == 0)
                return xasprintf("mig:%s", jstr(g, "profile") ? jstr(g, "profile") : "?");
        if (strcmp(kind, "need") == 0) {
                _cleanup_free_ char *m = gv_fmt_mib((uint64_t)json_integer_value(
                        json_object_get(g, "memory_mib")));
                return xasprintf("need:%s", m);
        }
        return xstrdup(kind);
}

static char *fmt_gpu_placed(const json_t *vm)
{
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(json_object_get(vm, "placement"), "gpus"), i, g)
                if (jstr(g, "gpu"))
                        strv_extend(&l, jstr(g, "gpu"));
        return l ? strv_join(l, ",") : NULL;
}

static int vm_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vm list [--json]";
        _cleanup_json_ json_t *vms = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/vms",
                                 "no VMs (create one with 'gpuvirt vm create NAME --gpu ...')",
                                 &vms);
        if (!vms)
                return ex;
        static const char *const headers[] = { "NAME", "STATE", "HOST", "GPU REQUEST", "GPUS",
                                               "CPUS", "MEMORY", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm) {
                const json_t *spec = json_object_get(vm, "spec");
                _cleanup_free_ char *req = fmt_gpu_request(vm), *placed = fmt_gpu_placed(vm);
                _cleanup_free_ char *cpus = NULL, *mem = NULL;
                if (json_is_integer(json_object_get(spec, "vcpus")))
                        cpus = xasprintf("%lld", (long long)json_integer_value(
                                json_object_get(spec, "vcpus")));
                if (json_is_integer(json_object_get(spec, "memory_mib")))
                        mem = gv_fmt_mib((uint64_t)json_integer_value(
                                json_object_get(spec, "memory_mib")));
                gv_table_add_rowf(t, jstr(vm, "name"), jstr(vm, "state"), jstr(vm, "host"), req,
                                  placed, cpus, mem);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

static int vm_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vm show NAME [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *vm = NULL;
        ex = get_vm(cli, argv[idx], &vm);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(vm));
                return GV_EXIT_OK;
        }
        const json_t *spec = json_object_get(vm, "spec");
        _cleanup_free_ char *req = fmt_gpu_request(vm);
        _cleanup_free_ char *mem = json_is_integer(json_object_get(spec, "memory_mib"))
                ? gv_fmt_mib((uint64_t)json_integer_value(json_object_get(spec, "memory_mib")))
                : NULL;
        printf("name:      %s\n", jstr(vm, "name") ? jstr(vm, "name") : argv[idx]);
        printf("state:     %s\n", jstr(vm, "state") ? jstr(vm, "state") : "—");
        printf("host:      %s\n", jstr(vm, "host") ? jstr(vm, "host") : "—");
        if (jstr(spec, "tenant"))
                printf("tenant:    %s\n", jstr(spec, "tenant"));
        printf("image:     %s", jstr(spec, "image") ? jstr(spec, "image") : "— (no disk)");
        if (jstr(spec, "disk_size"))
                printf(", disk %s", jstr(spec, "disk_size"));
        printf("\n");
        if (json_is_integer(json_object_get(spec, "vcpus")))
                printf("cpus:      %lld\n",
                       (long long)json_integer_value(json_object_get(spec, "vcpus")));
        printf("memory:    %s\n", mem ? mem : "—");
        printf("gpu:       %s\n", req ? req : "none");
        if (json_object_get(vm, "placement") && !json_is_null(json_object_get(vm, "placement"))) {
                _cleanup_free_ char *where = describe_placement(vm);
                printf("placement: %s\n", where);
        }
        size_t i;
        json_t *nic;
        json_array_foreach(json_object_get(spec, "nics"), i, nic) {
                printf("nic %zu:     %s%s%s", i, jstr(nic, "mode") ? jstr(nic, "mode") : "?",
                       jstr(nic, "bridge") ? " " : "",
                       jstr(nic, "bridge") ? jstr(nic, "bridge") : "");
                size_t k;
                json_t *f;
                json_array_foreach(json_object_get(nic, "forwards"), k, f)
                        printf(" %lld→%lld",
                               (long long)json_integer_value(json_object_get(f, "host_port")),
                               (long long)json_integer_value(json_object_get(f, "guest_port")));
                printf("\n");
        }
        const json_t *err = json_object_get(vm, "error");
        if (json_is_string(err))
                printf("error:     %s\n", json_string_value(err));
        else if (json_is_object(err))
                printf("error:     %s\n", jstr(err, "detail") ? jstr(err, "detail") : "?");
        return GV_EXIT_OK;
}

/* start | stop | delete: a request that answers an operation. */
static int vm_action(struct gv_cli *cli, int argc, char **argv, const char *verb,
                     const char *done_state)
{
        enum { OPT_TIMEOUT = GV_CLI_OPT_FIRST_OWN };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "wait", no_argument, NULL, GV_CLI_OPT_WAIT },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {},
        };
        bool stop = strcmp(verb, "stop") == 0;
        _cleanup_free_ char *usage = xasprintf("vm %s NAME%s [--wait] [--json]", verb,
                                               stop ? " [--timeout SECONDS]" : "");
        bool wait = false;
        int64_t timeout = -1;
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == GV_CLI_OPT_WAIT) {
                        wait = true;
                } else if (c == OPT_TIMEOUT && stop) {
                        uint32_t v;
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v > 3600)
                                return gv_cli_usage_error("--timeout '%s' is not a number of "
                                                          "seconds from 0 to 3600", optarg);
                        timeout = v;
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
        const char *name = argv[optind];
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        _cleanup_free_ char *path = strcmp(verb, "delete") == 0
                ? xasprintf("/api/v1/vms/%s", e) : xasprintf("/api/v1/vms/%s/%s", e, verb);
        _cleanup_json_ json_t *body = timeout >= 0 ? json_pack("{s:I}", "timeout_s",
                                                               (json_int_t)timeout) : NULL;
        _cleanup_json_ json_t *op = NULL, *final = NULL;
        int64_t t0 = now_ms();
        ex = gv_cli_api_call(cli, strcmp(verb, "delete") == 0 ? "DELETE" : "POST", path, body,
                             &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (!wait || cli->json)
                return gv_cli_op_follow(cli, op, name, wait, NULL);
        ex = gv_cli_op_follow(cli, op, name, true, &final);
        if (ex != GV_EXIT_OK)
                return ex;
        printf("%s: %s (%.1f s)\n", name, done_state, (double)(now_ms() - t0) / 1000.0);
        return GV_EXIT_OK;
}

static int vm_start(struct gv_cli *cli, int argc, char **argv)
{
        return vm_action(cli, argc, argv, "start", "running");
}

static int vm_stop(struct gv_cli *cli, int argc, char **argv)
{
        return vm_action(cli, argc, argv, "stop", "stopped");
}

static int vm_delete(struct gv_cli *cli, int argc, char **argv)
{
        return vm_action(cli, argc, argv, "delete", "deleted");
}

/* vm migrate NAME [--to HOST] [--offline] [--downtime MS] [--bandwidth MIB] [--wait] */
static int vm_migrate(struct gv_cli *cli, int argc, char **argv)
{
        enum { OPT_TO = GV_CLI_OPT_FIRST_OWN, OPT_OFFLINE, OPT_DOWNTIME, OPT_BANDWIDTH };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "wait", no_argument, NULL, GV_CLI_OPT_WAIT },
                { "to", required_argument, NULL, OPT_TO },
                { "offline", no_argument, NULL, OPT_OFFLINE },
                { "downtime", required_argument, NULL, OPT_DOWNTIME },
                { "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
                {},
        };
        static const char usage[] = "vm migrate NAME [--to HOST] [--offline] [--downtime MS] "
                                    "[--bandwidth MIB/s] [--wait] [--json]";
        _cleanup_json_ json_t *body = json_object(), *op = NULL, *final = NULL;
        bool wait = false;
        int c, ex = -1;
        uint32_t v;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == GV_CLI_OPT_WAIT) {
                        wait = true;
                } else if (c == OPT_TO) {
                        json_object_set_new(body, "to", json_string(optarg));
                } else if (c == OPT_OFFLINE) {
                        json_object_set_new(body, "mode", json_string("offline"));
                } else if (c == OPT_DOWNTIME || c == OPT_BANDWIDTH) {
                        if (gv_parse_u32(optarg, 10, &v) < 0)
                                return gv_cli_usage_error("--%s '%s' is not a whole number",
                                                          c == OPT_DOWNTIME ? "downtime"
                                                                            : "bandwidth",
                                                          optarg);
                        json_object_set_new(body, c == OPT_DOWNTIME ? "downtime_ms"
                                                                    : "max_bandwidth_mib",
                                            json_integer(v));
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
        const char *name = argv[optind];
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        _cleanup_free_ char *path = xasprintf("/api/v1/vms/%s/migrate", e);
        int64_t t0 = now_ms();
        ex = gv_cli_api_call(cli, "POST", path, body, &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (!wait || cli->json)
                return gv_cli_op_follow(cli, op, name, wait, NULL);
        ex = gv_cli_op_follow(cli, op, name, true, &final);
        if (ex != GV_EXIT_OK)
                return ex;
        const json_t *res = json_object_get(final, "result");
        printf("%s: on %s (%s move from %s, %.1f s)\n", name,
               json_string_value(json_object_get(res, "to")) ?: "?",
               json_string_value(json_object_get(res, "mode")) ?: "?",
               json_string_value(json_object_get(res, "from")) ?: "?",
               (double)(now_ms() - t0) / 1000.0);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_vm_commands[] = {
        { "vm", "create", "NAME [--gpu SPEC] ...", "create a VM where the placement engine says "
          "[--wait]", vm_create },
        { "vm", "list", "", "VMs: state, host, GPU request and placement", vm_list },
        { "vm", "show", "NAME", "one VM: spec, placement, NICs, error", vm_show },
        { "vm", "start", "NAME", "start a VM [--wait]", vm_start },
        { "vm", "stop", "NAME [--timeout S]", "stop a VM (graceful for up to S seconds) [--wait]",
          vm_stop },
        { "vm", "delete", "NAME", "delete a VM and free its GPU [--wait]", vm_delete },
        { "vm", "migrate", "NAME [--to HOST] [--offline]", "move a VM to another host, live "
          "(vGPU, MIG) or offline [--wait]", vm_migrate },
        {},
};
