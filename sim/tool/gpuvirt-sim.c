/* SPDX-License-Identifier: MIT */
/*
 * gpuvirt-sim — create, inspect, break and remove simulated GPU hosts (docs/simulator.md).
 *
 *   gpuvirt-sim create --profile NAME --root DIR
 *   gpuvirt-sim profiles
 *   gpuvirt-sim status --root DIR [--json]
 *   gpuvirt-sim inject --root DIR CALL CODE [--gpu N] [--target T] [--once|--always]
 *   gpuvirt-sim inject --root DIR --clear
 *   gpuvirt-sim load --root DIR [--json]
 *   gpuvirt-sim load --root DIR TARGET [--util PCT] [--memory-used MIB] [--power W]
 *                    [--temperature C]            TARGET: --gpu G | --vgpu V | --gpu G --gi N
 *   gpuvirt-sim load --root DIR [TARGET] --clear
 *   gpuvirt-sim exec --root DIR -- CMD [ARGS...]
 *   gpuvirt-sim destroy --root DIR
 *
 * Exit codes: 0 success, 1 the operation failed, 2 usage error, 127 exec could not start CMD.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/sim-profile.h"
#include "host/sim-state.h"
#include "hw/nvml/nvml-abi.h"
#include "sysfs/sim-sysfs-tree.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"

#ifndef GPUVIRT_SIM_NVML_LIB
#define GPUVIRT_SIM_NVML_LIB ""
#endif
#ifndef GPUVIRT_SIM_KMOCK_LIB
#define GPUVIRT_SIM_KMOCK_LIB ""
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_EXEC = 127 };

static const char usage_text[] =
        "Usage:\n"
        "  gpuvirt-sim create --profile NAME --root DIR\n"
        "  gpuvirt-sim profiles\n"
        "  gpuvirt-sim status --root DIR [--json]\n"
        "  gpuvirt-sim inject --root DIR CALL CODE [--gpu N] [--target T] [--once|--always]\n"
        "  gpuvirt-sim inject --root DIR --clear\n"
        "  gpuvirt-sim load --root DIR [--json]\n"
        "  gpuvirt-sim load --root DIR TARGET [--util PCT] [--memory-used MIB] [--power W]\n"
        "                   [--temperature C]\n"
        "  gpuvirt-sim load --root DIR [TARGET] --clear\n"
        "  gpuvirt-sim exec --root DIR -- CMD [ARGS...]\n"
        "  gpuvirt-sim destroy --root DIR\n"
        "\n"
        "CALL is an NVML function name (nvmlDeviceGetMigMode) or sysfs:<op> with op one of\n"
        "bind, unbind, driver_override, drivers_probe, mdev_create, mdev_remove,\n"
        "current_vgpu_type, sriov_numvfs. CODE is a number or a name: NVML_ERROR_IN_USE for\n"
        "NVML calls, EBUSY for sysfs ones.\n"
        "load shows the simulated load now, or pins values on a TARGET: --gpu G (index or PCI\n"
        "address), --vgpu V (UUID, parent PCI address or NVML instance), --gpu G --gi N (a GPU\n"
        "instance: --memory-used only). Pins stay until cleared (docs/simulator.md, \"Load\").\n"
        "Environment: GPUVIRT_SIM_NVML_LIB and GPUVIRT_SIM_KMOCK override the built libraries.\n";

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
        va_list ap;
        fputs("gpuvirt-sim: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n\n", stderr);
        fputs(usage_text, stderr);
        return EXIT_USAGE;
}

static int fail(struct gv_error *e, int r)
{
        fprintf(stderr, "gpuvirt-sim: %s\n", gv_error_msg(e, r));
        gv_error_free(e);
        return EXIT_FAIL;
}

static const char *lib_path(const char *env, const char *built)
{
        const char *v = getenv(env);
        return v && *v ? v : built;
}

/* ---------------------------------------------------------------- options */

struct opts {
        const char *root, *profile, *target;
        bool json, clear, always, once;
        int gpu;
        const char *gpu_arg, *vgpu;     /* load: --gpu as given (index or PCI), --vgpu */
        int64_t gi, util, mem_used, power_w, temp; /* load; -1 when not given */
        char **rest;
        int n_rest;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "root", required_argument, NULL, 'r' },
                { "profile", required_argument, NULL, 'p' },
                { "json", no_argument, NULL, 'j' },
                { "gpu", required_argument, NULL, 'g' },
                { "target", required_argument, NULL, 't' },
                { "once", no_argument, NULL, 'o' },
                { "always", no_argument, NULL, 'a' },
                { "clear", no_argument, NULL, 'c' },
                { "vgpu", required_argument, NULL, 'V' },
                { "gi", required_argument, NULL, 'G' },
                { "util", required_argument, NULL, 'U' },
                { "memory-used", required_argument, NULL, 'M' },
                { "power", required_argument, NULL, 'P' },
                { "temperature", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        *o = (struct opts){ .gpu = -1, .gi = -1, .util = -1, .mem_used = -1, .power_w = -1,
                            .temp = -1 };
        optind = 1;
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                switch (c) {
                case 'r': o->root = optarg; break;
                case 'p': o->profile = optarg; break;
                case 'j': o->json = true; break;
                case 't': o->target = optarg; break;
                case 'o': o->once = true; break;
                case 'a': o->always = true; break;
                case 'c': o->clear = true; break;
                case 'g': {
                        uint32_t g;
                        struct gv_pci_addr a;
                        o->gpu_arg = optarg;
                        if (gv_parse_u32(optarg, 10, &g) >= 0 && g < SIM_MAX_GPUS) {
                                o->gpu = (int)g;
                                break;
                        }
                        /* A PCI address means something only to `load`, which resolves it. */
                        if (gv_parse_pci_addr(optarg, &a) >= 0)
                                break;
                        return usage_error("Invalid --gpu '%s': give a GPU index from 0 to %d "
                                           "(load also takes a PCI address).", optarg,
                                           SIM_MAX_GPUS - 1);
                }
                case 'V': o->vgpu = optarg; break;
                case 'G': case 'U': case 'M': case 'P': case 'T': {
                        uint64_t v;
                        if (gv_parse_u64(optarg, 10, &v) < 0 || v > INT32_MAX)
                                return usage_error("Invalid value '%s' for '%s': give a whole "
                                                   "number.", optarg, argv[optind - 1]);
                        int64_t *dst = c == 'G' ? &o->gi : c == 'U' ? &o->util
                                     : c == 'M' ? &o->mem_used : c == 'P' ? &o->power_w
                                     : &o->temp;
                        *dst = (int64_t)v;
                        break;
                }
                case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
                default:
                        return usage_error("Unknown or incomplete option '%s'.",
                                           argv[optind - 1]);
                }
        }
        o->rest = argv + optind;
        o->n_rest = argc - optind;
        return 0;
}

/* ---------------------------------------------------------------- create / profiles */

static int cmd_profiles(void)
{
        printf("%-10s %-14s %s\n", "PROFILE", "VGPU", "DESCRIPTION");
        for (const struct sim_profile *const *p = sim_profile_all(); *p; p++)
                printf("%-10s %-14s %s\n", (*p)->name,
                       sim_vgpu_interface_to_string((*p)->vgpu_interface), (*p)->description);
        return EXIT_OK;
}

static int cmd_create(const struct opts *o)
{
        if (!o->profile) {
                _cleanup_free_ char *names = sim_profile_names();
                return usage_error("create needs --profile NAME (one of: %s).", names);
        }
        if (!o->root)
                return usage_error("create needs --root DIR.");
        if (o->n_rest > 0)
                return usage_error("Unexpected argument '%s'.", o->rest[0]);
        const char *nvml = lib_path("GPUVIRT_SIM_NVML_LIB", GPUVIRT_SIM_NVML_LIB);
        if (!*nvml) {
                fprintf(stderr, "gpuvirt-sim: the NVML simulator library was not built; set "
                        "GPUVIRT_SIM_NVML_LIB to its path.\n");
                return EXIT_FAIL;
        }
        struct gv_error *e = NULL;
        int r = sim_host_create(o->root, o->profile, nvml, &e);
        if (r < 0)
                return fail(e, r);

        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        char abs[PATH_MAX];
        if (!realpath(o->root, abs))
                return fail(NULL, -errno);
        r = sim_state_lock(abs, SIM_LOCK_SHARED, &s, &e);
        if (r < 0)
                return fail(e, r);
        printf("Created simulated host '%s' (profile %s, driver %s, vGPU interface %s):\n", abs,
               s->profile, s->driver_version, sim_vgpu_interface_to_string(s->vgpu_interface));
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                uint32_t nvfs = 0;
                (void)sim_sysfs_read_u32(abs, g->bdf, "sriov_numvfs", &nvfs);
                printf("  GPU %u  %s  %-18s %s  VFs %u\n", g->index, g->bdf,
                       g->model ? g->model->name : "?", g->uuid, nvfs);
        }
        printf("  sysfs: %s/sys\n  NVML:  %s/usr/lib/libnvidia-ml.so.1 -> %s\n", abs, abs, nvml);
        printf("Run programs against it with: gpuvirt-sim exec --root %s -- CMD\n", abs);
        return EXIT_OK;
}

/* ---------------------------------------------------------------- status */

static char *driver_of(const char *root, const char *bdf)
{
        char *d = NULL;
        if (sim_sysfs_driver_of(root, bdf, &d) < 0 || !d)
                return xstrdup("-");
        return d;
}

static const char *type_name(const struct sim_state *s, const struct sim_vgpu *v)
{
        for (size_t i = 0; i < s->n_gpus; i++)
                if (s->gpus[i].index == v->gpu && s->gpus[i].model) {
                        const struct gv_vgpu_type *t =
                                gv_gpu_model_find_vgpu_type_id(s->gpus[i].model, v->type_id);
                        if (t)
                                return t->name;
                }
        return "?";
}

static int cmd_status(const struct opts *o)
{
        if (!o->root)
                return usage_error("status needs --root DIR.");
        if (o->n_rest > 0)
                return usage_error("Unexpected argument '%s'.", o->rest[0]);
        struct gv_error *e = NULL;
        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        int r = sim_state_lock(o->root, SIM_LOCK_SHARED, &s, &e);
        if (r < 0)
                return fail(e, r);

        if (o->json) {
                _cleanup_json_ json_t *j = json_object();
                json_object_set_new(j, "root", json_string(s->root));
                json_object_set_new(j, "profile", json_string(s->profile ? s->profile : ""));
                json_object_set_new(j, "driver_version", json_string(s->driver_version));
                json_object_set_new(j, "vgpu_interface",
                                    json_string(sim_vgpu_interface_to_string(s->vgpu_interface)));
                json_t *gpus = json_array();
                for (size_t i = 0; i < s->n_gpus; i++) {
                        const struct sim_gpu *g = &s->gpus[i];
                        _cleanup_free_ char *drv = driver_of(s->root, g->bdf);
                        uint32_t nvfs = 0;
                        (void)sim_sysfs_read_u32(s->root, g->bdf, "sriov_numvfs", &nvfs);
                        json_t *gis = json_array();
                        for (size_t k = 0; k < g->n_gis; k++)
                                json_array_append_new(gis, json_pack("{s:I, s:I, s:I, s:I, s:I}",
                                        "id", (json_int_t)g->gis[k].id, "profile_id",
                                        (json_int_t)g->gis[k].profile_id, "start",
                                        (json_int_t)g->gis[k].start, "size",
                                        (json_int_t)g->gis[k].size, "compute_instances",
                                        (json_int_t)g->gis[k].n_cis));
                        json_array_append_new(gpus, json_pack(
                                "{s:I, s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:o, s:b}",
                                "index", (json_int_t)g->index, "bdf", g->bdf, "model",
                                g->model ? g->model->name : "", "uuid", g->uuid, "driver", drv,
                                "sriov_numvfs", (json_int_t)nvfs, "mig_capable", g->mig_capable,
                                "mig_current", (json_int_t)g->mig_current, "mig_pending",
                                (json_int_t)g->mig_pending, "gpu_instances", gis, "lost",
                                g->lost));
                }
                json_object_set_new(j, "gpus", gpus);
                json_t *vgpus = json_array();
                for (size_t i = 0; i < s->n_vgpus; i++) {
                        const struct sim_vgpu *v = &s->vgpus[i];
                        json_array_append_new(vgpus, json_pack(
                                "{s:I, s:I, s:s, s:s, s:s, s:s, s:I}", "instance",
                                (json_int_t)v->instance, "type_id", (json_int_t)v->type_id,
                                "type", type_name(s, v), "uuid", v->uuid, "parent",
                                v->parent_bdf, "vm_id", v->vm_id, "gpu", (json_int_t)v->gpu));
                }
                json_object_set_new(j, "vgpus", vgpus);
                json_t *inj = json_array();
                for (size_t i = 0; i < s->n_inject; i++) {
                        const struct sim_inject *in = &s->inject[i];
                        json_array_append_new(inj, json_pack("{s:s, s:i, s:i, s:s, s:s}", "call",
                                in->call, "code", in->code, "gpu", in->gpu, "target",
                                in->target, "mode", sim_inject_mode_to_string(in->mode)));
                }
                json_object_set_new(j, "inject", inj);
                _cleanup_free_ char *text = gv_json_dumps_pretty(j);
                printf("%s\n", text);
                return EXIT_OK;
        }

        printf("Host %s: profile %s, driver %s, NVML %s, vGPU interface %s\n", s->root,
               s->profile, s->driver_version, s->nvml_version,
               sim_vgpu_interface_to_string(s->vgpu_interface));
        printf("\n%-3s %-12s %-18s %-13s %-4s %-9s %s\n", "GPU", "BDF", "MODEL", "DRIVER", "VFS",
               "MIG", "GPU INSTANCES");
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                _cleanup_free_ char *drv = driver_of(s->root, g->bdf);
                uint32_t nvfs = 0;
                (void)sim_sysfs_read_u32(s->root, g->bdf, "sriov_numvfs", &nvfs);
                char mig[16];
                if (!g->mig_capable)
                        snprintf(mig, sizeof(mig), "-");
                else if (g->mig_current != g->mig_pending)
                        snprintf(mig, sizeof(mig), "%s*", g->mig_pending ? "on" : "off");
                else
                        snprintf(mig, sizeof(mig), "%s", g->mig_current ? "on" : "off");
                printf("%-3u %-12s %-18s %-13s %-4u %-9s %zu%s\n", g->index, g->bdf,
                       g->model ? g->model->name : "?", drv, nvfs, mig, g->n_gis,
                       g->lost ? "  (lost)" : "");
        }
        printf("\n%zu vGPU(s)\n", s->n_vgpus);
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct sim_vgpu *v = &s->vgpus[i];
                printf("  %-4u %-16s %s on %s%s%s\n", v->instance, type_name(s, v), v->uuid,
                       v->parent_bdf, v->vm_id[0] ? "  vm " : "", v->vm_id);
        }
        printf("\n%zu injected failure(s)\n", s->n_inject);
        for (size_t i = 0; i < s->n_inject; i++) {
                const struct sim_inject *in = &s->inject[i];
                printf("  %-32s code %-5d gpu %-3d target '%s' %s\n", in->call, in->code, in->gpu,
                       in->target, sim_inject_mode_to_string(in->mode));
        }
        return EXIT_OK;
}

/* ---------------------------------------------------------------- inject */

#define NVRET(x) { #x, x }
static const struct {
        const char *name;
        int value;
} nvml_returns[] = {
        NVRET(NVML_SUCCESS), NVRET(NVML_ERROR_UNINITIALIZED), NVRET(NVML_ERROR_INVALID_ARGUMENT),
        NVRET(NVML_ERROR_NOT_SUPPORTED), NVRET(NVML_ERROR_NO_PERMISSION),
        NVRET(NVML_ERROR_ALREADY_INITIALIZED), NVRET(NVML_ERROR_NOT_FOUND),
        NVRET(NVML_ERROR_INSUFFICIENT_SIZE), NVRET(NVML_ERROR_INSUFFICIENT_POWER),
        NVRET(NVML_ERROR_DRIVER_NOT_LOADED), NVRET(NVML_ERROR_TIMEOUT),
        NVRET(NVML_ERROR_IRQ_ISSUE), NVRET(NVML_ERROR_LIBRARY_NOT_FOUND),
        NVRET(NVML_ERROR_FUNCTION_NOT_FOUND), NVRET(NVML_ERROR_CORRUPTED_INFOROM),
        NVRET(NVML_ERROR_GPU_IS_LOST), NVRET(NVML_ERROR_RESET_REQUIRED),
        NVRET(NVML_ERROR_OPERATING_SYSTEM), NVRET(NVML_ERROR_LIB_RM_VERSION_MISMATCH),
        NVRET(NVML_ERROR_IN_USE), NVRET(NVML_ERROR_MEMORY), NVRET(NVML_ERROR_NO_DATA),
        NVRET(NVML_ERROR_VGPU_ECC_NOT_SUPPORTED), NVRET(NVML_ERROR_INSUFFICIENT_RESOURCES),
        NVRET(NVML_ERROR_FREQ_NOT_SUPPORTED), NVRET(NVML_ERROR_ARGUMENT_VERSION_MISMATCH),
        NVRET(NVML_ERROR_DEPRECATED), NVRET(NVML_ERROR_NOT_READY),
        NVRET(NVML_ERROR_GPU_NOT_FOUND), NVRET(NVML_ERROR_INVALID_STATE),
        NVRET(NVML_ERROR_RESET_TYPE_NOT_SUPPORTED), NVRET(NVML_ERROR_UNKNOWN),
};

static const char *const sysfs_ops[] = {
        "bind", "unbind", "driver_override", "drivers_probe", "mdev_create", "mdev_remove",
        "current_vgpu_type", "sriov_numvfs",
};

static int parse_code(const char *call, const char *s, int *ret)
{
        uint32_t n;
        if (gv_parse_u32(s, 0, &n) == 0 && n > 0 && n <= INT32_MAX) {
                *ret = (int)n;
                return 0;
        }
        if (gv_startswith(call, "sysfs:")) {
                for (int e = 1; e < 4096; e++)
                        if (strcmp(gv_errno_name(e), s) == 0) {
                                *ret = e;
                                return 0;
                        }
                return usage_error("Unknown errno '%s' for '%s': give a positive number or a "
                                   "name such as EBUSY, ENODEV, EINVAL, ENOSPC.", s, call);
        }
        for (size_t i = 1; i < ELEMENTSOF(nvml_returns); i++)
                if (strcmp(nvml_returns[i].name, s) == 0) {
                        *ret = nvml_returns[i].value;
                        return 0;
                }
        return usage_error("Unknown NVML return code '%s' for '%s': give a positive number or a "
                           "name such as NVML_ERROR_IN_USE, NVML_ERROR_GPU_IS_LOST, "
                           "NVML_ERROR_NOT_SUPPORTED.", s, call);
}

static int cmd_inject(const struct opts *o)
{
        if (!o->root)
                return usage_error("inject needs --root DIR.");
        struct gv_error *e = NULL;
        if (o->clear) {
                if (o->n_rest > 0)
                        return usage_error("inject --clear takes no CALL or CODE.");
                _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
                int r = sim_state_lock(o->root, SIM_LOCK_EXCLUSIVE, &s, &e);
                if (r < 0)
                        return fail(e, r);
                size_t n = s->n_inject;
                s->n_inject = 0;
                r = sim_state_commit(s, &e);
                if (r < 0)
                        return fail(e, r);
                printf("Cleared %zu injected failure(s).\n", n);
                return EXIT_OK;
        }
        if (o->n_rest != 2)
                return usage_error("inject needs CALL and CODE (or --clear).");
        if (o->once && o->always)
                return usage_error("Give --once or --always, not both.");
        const char *call = o->rest[0];
        if (gv_startswith(call, "sysfs:")) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(sysfs_ops); i++)
                        if (strcmp(call + 6, sysfs_ops[i]) == 0)
                                known = true;
                if (!known)
                        return usage_error("Unknown sysfs operation '%s'; choose one of: bind, "
                                           "unbind, driver_override, drivers_probe, mdev_create, "
                                           "mdev_remove, current_vgpu_type, sriov_numvfs.",
                                           call + 6);
        } else if (!gv_startswith(call, "nvml")) {
                return usage_error("Unknown call '%s': give an NVML function name (nvml...) or "
                                   "sysfs:<op>.", call);
        }
        int code = 0;
        int r = parse_code(call, o->rest[1], &code);
        if (r != 0)
                return r;

        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        r = sim_state_lock(o->root, SIM_LOCK_EXCLUSIVE, &s, &e);
        if (r < 0)
                return fail(e, r);
        if (o->gpu_arg && o->gpu < 0)
                return usage_error("inject --gpu takes a GPU index, not '%s'.", o->gpu_arg);
        if (o->gpu >= 0 && (size_t)o->gpu >= s->n_gpus)
                return usage_error("--gpu %d: the host has GPUs 0 to %zu.", o->gpu,
                                   s->n_gpus - 1);
        r = sim_inject_add(s, call, code, o->gpu, o->target ? o->target : "",
                           o->always ? SIM_INJECT_ALWAYS : SIM_INJECT_ONCE);
        if (r < 0) {
                if (r == -ENOSPC)
                        (void)gv_error_set(&e, ENOSPC, "Too many injected failures (at most "
                                           "%d); clear them with 'gpuvirt-sim inject --root %s "
                                           "--clear'.", SIM_MAX_INJECT, o->root);
                return fail(e, r);
        }
        r = sim_state_commit(s, &e);
        if (r < 0)
                return fail(e, r);
        printf("Injected: %s fails with %s (%d), %s", call, o->rest[1], code,
               o->always ? "always" : "once");
        if (o->gpu >= 0)
                printf(", GPU %d", o->gpu);
        if (o->target)
                printf(", target '%s'", o->target);
        printf(".\n");
        return EXIT_OK;
}

/* ---------------------------------------------------------------- load */

static json_t *pin_fields_json(const struct sim_pin *p)
{
        json_t *a = json_array();
        if (p && (p->fields & SIM_PIN_UTIL))
                json_array_append_new(a, json_string("util"));
        if (p && (p->fields & SIM_PIN_MEM_USED))
                json_array_append_new(a, json_string("memory-used"));
        if (p && (p->fields & SIM_PIN_POWER))
                json_array_append_new(a, json_string("power"));
        if (p && (p->fields & SIM_PIN_TEMP))
                json_array_append_new(a, json_string("temperature"));
        return a;
}

/* The load now: what every NVML call would answer at this instant. */
static json_t *load_json(const struct sim_state *s, double t)
{
        json_t *gpus = json_array(), *vgpus = json_array();
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                struct sim_load l;
                json_t *gis = json_array();
                sim_gpu_load(s, g, t, &l);
                for (size_t k = 0; k < g->n_gis; k++) {
                        struct sim_gi_load gl;
                        sim_gi_load(s, g, &g->gis[k], t, &gl);
                        json_array_append_new(
                                gis, json_pack("{s:I, s:I, s:I, s:o}", "id",
                                               (json_int_t)g->gis[k].id, "mem_used_mib",
                                               (json_int_t)gl.mem_used_mib, "mem_total_mib",
                                               (json_int_t)gl.mem_total_mib, "pinned",
                                               pin_fields_json(sim_pin_find(
                                                       s, SIM_PIN_GI, g->index, g->gis[k].id))));
                }
                json_array_append_new(
                        gpus, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
                                        "index", (json_int_t)g->index, "bdf", g->bdf, "seed",
                                        (json_int_t)g->load_seed, "util_pct",
                                        (json_int_t)l.gpu_util, "mem_util_pct",
                                        (json_int_t)l.mem_util, "mem_used_mib",
                                        (json_int_t)l.mem_used_mib, "mem_total_mib",
                                        (json_int_t)g->model->memory_mib, "power_mw",
                                        (json_int_t)l.power_mw, "temperature_c",
                                        (json_int_t)l.temperature_c, "pinned",
                                        pin_fields_json(sim_pin_find(s, SIM_PIN_GPU, g->index, 0)),
                                        "gis", gis));
        }
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct sim_vgpu *v = &s->vgpus[i];
                struct sim_vgpu_load l;
                sim_vgpu_load(s, v, t, &l);
                json_array_append_new(
                        vgpus,
                        json_pack("{s:I, s:s, s:s, s:I, s:o, s:I, s:I, s:o}", "instance",
                                  (json_int_t)v->instance, "uuid", v->uuid, "parent",
                                  v->parent_bdf, "gpu", (json_int_t)v->gpu, "gi",
                                  v->gi_id == INVALID_GPU_INSTANCE_ID ? json_null()
                                                                      : json_integer(v->gi_id),
                                  "sm_pct", (json_int_t)l.sm, "fb_used_mib",
                                  (json_int_t)l.fb_used_mib, "pinned",
                                  pin_fields_json(sim_pin_find(s, SIM_PIN_VGPU, v->gpu,
                                                               v->instance))));
        }
        return json_pack("{s:f, s:o, s:o}", "time", t, "gpus", gpus, "vgpus", vgpus);
}

static void load_print(const struct sim_state *s, double t)
{
        printf("Load at %.0f (GPUVIRT_SIM_TIME freezes the clock); * pinned\n", t);
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                const struct sim_pin *p = sim_pin_find(s, SIM_PIN_GPU, g->index, 0);
                struct sim_load l;
                sim_gpu_load(s, g, t, &l);
                printf("GPU %u %s  util %u%%%s  memory %llu/%llu MiB%s  power %.1f W%s  %u C%s\n",
                       g->index, g->bdf, l.gpu_util, p && (p->fields & SIM_PIN_UTIL) ? "*" : "",
                       (unsigned long long)l.mem_used_mib,
                       (unsigned long long)g->model->memory_mib,
                       p && (p->fields & SIM_PIN_MEM_USED) ? "*" : "", l.power_mw / 1000.0,
                       p && (p->fields & SIM_PIN_POWER) ? "*" : "", l.temperature_c,
                       p && (p->fields & SIM_PIN_TEMP) ? "*" : "");
                for (size_t k = 0; k < g->n_gis; k++) {
                        struct sim_gi_load gl;
                        const struct sim_pin *gp = sim_pin_find(s, SIM_PIN_GI, g->index,
                                                                g->gis[k].id);
                        sim_gi_load(s, g, &g->gis[k], t, &gl);
                        printf("  GPU instance %u  memory %llu/%llu MiB%s\n", g->gis[k].id,
                               (unsigned long long)gl.mem_used_mib,
                               (unsigned long long)gl.mem_total_mib, gp ? "*" : "");
                }
        }
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct sim_vgpu *v = &s->vgpus[i];
                const struct sim_pin *p = sim_pin_find(s, SIM_PIN_VGPU, v->gpu, v->instance);
                struct sim_vgpu_load l;
                sim_vgpu_load(s, v, t, &l);
                printf("vGPU %u %s on %s  SM %u%%%s  framebuffer %llu MiB%s\n", v->instance,
                       v->uuid, v->parent_bdf, l.sm, p && (p->fields & SIM_PIN_UTIL) ? "*" : "",
                       (unsigned long long)l.fb_used_mib,
                       p && (p->fields & SIM_PIN_MEM_USED) ? "*" : "");
        }
}

static struct sim_gpu *load_gpu(struct sim_state *s, const char *arg)
{
        uint32_t idx;
        if (gv_parse_u32(arg, 10, &idx) >= 0)
                return sim_gpu_by_index(s, idx);
        return sim_gpu_by_bdf(s, arg);
}

static struct sim_vgpu *load_vgpu(struct sim_state *s, const char *arg)
{
        uint32_t inst;
        struct gv_pci_addr a, b;
        if (gv_parse_u32(arg, 10, &inst) >= 0)
                return sim_vgpu_by_instance(s, inst);
        struct sim_vgpu *v = sim_vgpu_by_uuid(s, arg);
        if (v || gv_parse_pci_addr(arg, &a) < 0)
                return v;
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (gv_parse_pci_addr(s->vgpus[i].parent_bdf, &b) >= 0 && gv_pci_addr_equal(&a, &b))
                        return &s->vgpus[i];
        return NULL;
}

static int cmd_load(const struct opts *o)
{
        if (!o->root)
                return usage_error("load needs --root DIR.");
        if (o->n_rest > 0)
                return usage_error("Unexpected argument '%s'.", o->rest[0]);
        bool setting = o->util >= 0 || o->mem_used >= 0 || o->power_w >= 0 || o->temp >= 0;
        bool target = o->gpu_arg || o->vgpu;
        if (o->gi >= 0 && (!o->gpu_arg || o->vgpu))
                return usage_error("--gi N names a GPU instance of a GPU: give --gpu too.");
        if (o->vgpu && o->gpu_arg)
                return usage_error("Give --gpu or --vgpu, not both (a vGPU names its GPU).");
        if (setting && o->clear)
                return usage_error("Give values to pin or --clear, not both.");
        if (setting && !target)
                return usage_error("Pinning needs a target: --gpu G, --vgpu V or --gpu G --gi N.");
        if (target && !setting && !o->clear)
                return usage_error("Give values to pin (--util, --memory-used, --power, "
                                   "--temperature) or --clear.");

        struct gv_error *e = NULL;
        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        int r = sim_state_lock(o->root, target || o->clear ? SIM_LOCK_EXCLUSIVE : SIM_LOCK_SHARED,
                               &s, &e);
        if (r < 0)
                return fail(e, r);

        if (!target && !o->clear) {
                double t = sim_now();
                if (o->json) {
                        _cleanup_json_ json_t *j = load_json(s, t);
                        _cleanup_free_ char *text = gv_json_dumps_pretty(j);
                        puts(text);
                } else
                        load_print(s, t);
                return EXIT_OK;
        }
        if (!target) {
                size_t n = sim_pins_clear(s, -1, -1);
                if ((r = sim_state_commit(s, &e)) < 0)
                        return fail(e, r);
                printf("Cleared %zu pinned load(s).\n", n);
                return EXIT_OK;
        }

        enum sim_pin_kind kind;
        uint32_t gpu, id = 0;
        uint64_t mem_max;
        const char *what;
        _cleanup_free_ char *label = NULL;
        if (o->vgpu) {
                struct sim_vgpu *v = load_vgpu(s, o->vgpu);
                if (!v)
                        return usage_error("No vGPU '%s' on this host: give its UUID, its parent "
                                           "PCI address or its NVML instance (see 'gpuvirt-sim "
                                           "status --root %s').", o->vgpu, o->root);
                struct sim_gpu *g = sim_gpu_by_index(s, v->gpu);
                const struct gv_vgpu_type *vt = g ? sim_gpu_vgpu_type(g, v->type_id) : NULL;
                kind = SIM_PIN_VGPU;
                gpu = v->gpu;
                id = v->instance;
                mem_max = vt ? vt->framebuffer_mib : 0;
                what = "framebuffer";
                label = xasprintf("vGPU %u (%s)", v->instance, v->uuid);
        } else {
                struct sim_gpu *g = load_gpu(s, o->gpu_arg);
                if (!g)
                        return usage_error("No GPU '%s' on this host: give an index from 0 to "
                                           "%zu or a PCI address.", o->gpu_arg, s->n_gpus - 1);
                gpu = g->index;
                if (o->gi >= 0) {
                        struct sim_gi *gi = sim_gi_by_id(g, (uint32_t)o->gi);
                        const struct gv_mig_gi_profile *p = gi ? sim_gi_profile(g, gi->profile_id)
                                                               : NULL;
                        if (!gi && !o->clear)
                                return usage_error("GPU %s has no GPU instance %lld.", g->bdf,
                                                   (long long)o->gi);
                        kind = SIM_PIN_GI;
                        id = (uint32_t)o->gi;
                        mem_max = p ? p->memory_mib : 0;
                        what = "GPU instance memory";
                        label = xasprintf("GPU %s instance %u", g->bdf, id);
                } else {
                        kind = SIM_PIN_GPU;
                        mem_max = g->model->memory_mib;
                        what = "GPU memory";
                        label = xasprintf("GPU %u (%s)", g->index, g->bdf);
                }
        }

        if (o->clear) {
                struct sim_pin *p = (struct sim_pin *)sim_pin_find(s, kind, gpu, id);
                if (p)
                        *p = s->pins[--s->n_pins];
                if ((r = sim_state_commit(s, &e)) < 0)
                        return fail(e, r);
                printf("%s: %s.\n", label, p ? "unpinned" : "nothing was pinned");
                return EXIT_OK;
        }
        if (kind == SIM_PIN_GI && o->util >= 0)
                return usage_error("A GPU instance's utilization is not reported (nvml-abi.md "
                                   "§7.4): pin --memory-used only.");
        if (kind != SIM_PIN_GPU && (o->power_w >= 0 || o->temp >= 0))
                return usage_error("--power and --temperature are a GPU's: pin them with "
                                   "--gpu G alone.");
        if (o->util > 100)
                return usage_error("--util %lld: give a percentage from 0 to 100.",
                                   (long long)o->util);
        if (o->mem_used >= 0 && (uint64_t)o->mem_used > mem_max)
                return usage_error("--memory-used %lld MiB exceeds the %s (%llu MiB).",
                                   (long long)o->mem_used, what, (unsigned long long)mem_max);
        if (kind == SIM_PIN_GPU) {
                struct sim_gpu *g = sim_gpu_by_index(s, gpu);
                uint32_t max_w = sim_gpu_power_max_mw(g) / 1000;
                if (o->power_w > max_w)
                        return usage_error("--power %lld W exceeds the board power of %s (%u W).",
                                           (long long)o->power_w, g->model->name, max_w);
                if (o->temp >= 0 && (o->temp < 30 || o->temp > 85))
                        return usage_error("--temperature %lld: the simulator keeps 30 to 85 C.",
                                           (long long)o->temp);
        }
        struct sim_pin *p = sim_pin_get(s, kind, gpu, id);
        if (!p)
                return usage_error("Too many pinned loads (at most %d); clear some with "
                                   "'gpuvirt-sim load --root %s --clear'.", SIM_MAX_PINS, o->root);
        if (o->util >= 0) {
                p->fields |= SIM_PIN_UTIL;
                p->util_pct = (uint32_t)o->util;
        }
        if (o->mem_used >= 0) {
                p->fields |= SIM_PIN_MEM_USED;
                p->mem_used_mib = (uint64_t)o->mem_used;
        }
        if (o->power_w >= 0) {
                p->fields |= SIM_PIN_POWER;
                p->power_mw = (uint32_t)o->power_w * 1000u;
        }
        if (o->temp >= 0) {
                p->fields |= SIM_PIN_TEMP;
                p->temperature_c = (uint32_t)o->temp;
        }
        if ((r = sim_state_commit(s, &e)) < 0)
                return fail(e, r);
        printf("%s: pinned.\n", label);
        return EXIT_OK;
}

/* ---------------------------------------------------------------- exec / destroy */

static int cmd_exec(const struct opts *o)
{
        if (!o->root)
                return usage_error("exec needs --root DIR.");
        if (o->n_rest < 1)
                return usage_error("exec needs a command after '--'.");
        char abs[PATH_MAX];
        if (!realpath(o->root, abs)) {
                int e = errno;
                fprintf(stderr, "gpuvirt-sim: cannot resolve '%s': %s\n", o->root, strerror(e));
                return EXIT_FAIL;
        }
        _cleanup_free_ char *state = gv_path_join(abs, "gpuvirt-sim/state.json");
        if (gv_file_exists(state) <= 0) {
                fprintf(stderr, "gpuvirt-sim: '%s' is not a simulated host (no '%s'); create "
                        "one with 'gpuvirt-sim create'.\n", abs, state);
                return EXIT_FAIL;
        }
        const char *kmock = lib_path("GPUVIRT_SIM_KMOCK", GPUVIRT_SIM_KMOCK_LIB);
        if (!*kmock) {
                fprintf(stderr, "gpuvirt-sim: the kernel mock was not built; set "
                        "GPUVIRT_SIM_KMOCK to its path.\n");
                return EXIT_FAIL;
        }
        const char *old = getenv("LD_PRELOAD");
        _cleanup_free_ char *preload =
                old && *old ? xasprintf("%s:%s", kmock, old) : xstrdup(kmock);
        const char *asan = getenv("ASAN_OPTIONS");
        _cleanup_free_ char *asan_opts =
                asan && *asan ? xasprintf("%s:verify_asan_link_order=0", asan) :
                                xstrdup("verify_asan_link_order=0");
        _cleanup_free_ char *nvml = gv_path_join(abs, "usr/lib/libnvidia-ml.so.1");
        if (setenv("LD_PRELOAD", preload, 1) < 0 || setenv("ASAN_OPTIONS", asan_opts, 1) < 0 ||
            setenv("GPUVIRT_SYSFS_ROOT", abs, 1) < 0 ||
            setenv("GPUVIRT_NVML_LIBRARY", nvml, 1) < 0) {
                perror("gpuvirt-sim: setenv");
                return EXIT_FAIL;
        }
        fflush(stdout);
        execvp(o->rest[0], o->rest);
        fprintf(stderr, "gpuvirt-sim: cannot run '%s': %s\n", o->rest[0], strerror(errno));
        return EXIT_EXEC;
}

static int cmd_destroy(const struct opts *o)
{
        if (!o->root)
                return usage_error("destroy needs --root DIR.");
        if (o->n_rest > 0)
                return usage_error("Unexpected argument '%s'.", o->rest[0]);
        _cleanup_free_ char *state = gv_path_join(o->root, "gpuvirt-sim/state.json");
        if (gv_file_exists(state) <= 0) {
                fprintf(stderr, "gpuvirt-sim: refusing to remove '%s': it is not a simulated "
                        "host (no '%s').\n", o->root, state);
                return EXIT_FAIL;
        }
        int r = gv_rm_rf(o->root);
        if (r < 0) {
                fprintf(stderr, "gpuvirt-sim: cannot remove '%s': %s\n", o->root, strerror(-r));
                return EXIT_FAIL;
        }
        printf("Removed simulated host '%s'.\n", o->root);
        return EXIT_OK;
}

int main(int argc, char **argv)
{
        if (argc < 2)
                return usage_error("No command given.");
        const char *cmd = argv[1];
        if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
                fputs(usage_text, stdout);
                return EXIT_OK;
        }
        struct opts o;
        int r = parse_opts(argc - 1, argv + 1, &o);
        if (r != 0)
                return r;
        if (strcmp(cmd, "create") == 0)
                return cmd_create(&o);
        if (strcmp(cmd, "profiles") == 0)
                return o.n_rest ? usage_error("profiles takes no arguments.") : cmd_profiles();
        if (strcmp(cmd, "status") == 0)
                return cmd_status(&o);
        if (strcmp(cmd, "inject") == 0)
                return cmd_inject(&o);
        if (strcmp(cmd, "load") == 0)
                return cmd_load(&o);
        if (strcmp(cmd, "exec") == 0)
                return cmd_exec(&o);
        if (strcmp(cmd, "destroy") == 0)
                return cmd_destroy(&o);
        return usage_error("Unknown command '%s'; choose one of: create, profiles, status, "
                           "inject, load, exec, destroy.", cmd);
}
