/* SPDX-License-Identifier: MIT */
/*
 * sim-state.c — the shared state of a simulated GPU host: ROOT/gpuvirt-sim/state.json under
 * an flock on ROOT/gpuvirt-sim/state.lock, and the MIG and vGPU rules both the NVML simulator
 * and the kernel mock obey. Facts from ../shared/reference/mig.md and vgpu.md; where the
 * reference does not say, the choice is marked [I] and documented in docs/simulator-nvml.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "host/sim-profile.h"
#include "host/sim-state.h"
#include "hw/nvml/nvml-abi.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"

#define STATE_DIR "gpuvirt-sim"
#define STATE_FILE "state.json"
#define LOCK_FILE "state.lock"
#define STATE_MAX (8u * 1024u * 1024u)
#define STATE_FORMAT 1

static const char *const vgpu_interface_table[_SIM_VGPU_INTERFACE_MAX] = {
        [SIM_VGPU_NONE] = "none",
        [SIM_VGPU_MDEV] = "mdev",
        [SIM_VGPU_VENDOR_VFIO] = "vendor-vfio",
};
DEFINE_STRING_TABLE_LOOKUP(sim_vgpu_interface, enum sim_vgpu_interface, vgpu_interface_table);

static const char *const inject_mode_table[_SIM_INJECT_MODE_MAX] = {
        [SIM_INJECT_ONCE] = "once",
        [SIM_INJECT_ALWAYS] = "always",
};
DEFINE_STRING_TABLE_LOOKUP(sim_inject_mode, enum sim_inject_mode, inject_mode_table);

/* ---- catalog cache ------------------------------------------------------------------------ */

/* Every NVML call re-reads the state; parsing the catalog each time would dominate, so each
 * process keeps the catalogs it loaded (they are immutable) for its lifetime. */
struct catalog_entry {
        char *dir;
        struct gv_catalog *catalog;
        struct catalog_entry *next;
};
static pthread_mutex_t catalog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct catalog_entry *catalog_cache;

static int catalog_get(const char *dir, struct gv_catalog **ret, struct gv_error **err)
{
        int r = 0;

        pthread_mutex_lock(&catalog_lock);
        for (struct catalog_entry *e = catalog_cache; e; e = e->next)
                if (strcmp(e->dir, dir) == 0) {
                        *ret = e->catalog;
                        goto out;
                }
        struct gv_catalog *c = NULL;
        r = gv_catalog_load_dir(dir, &c, err);
        if (r < 0)
                goto out;
        struct catalog_entry *e = xnew0(struct catalog_entry, 1);
        e->dir = xstrdup(dir);
        e->catalog = c;
        e->next = catalog_cache;
        catalog_cache = e;
        *ret = c;
out:
        pthread_mutex_unlock(&catalog_lock);
        return r;
}

/* The last state this process parsed, keyed on the identity of state.json. Every change is
 * written by an atomic rename, so an unchanged (device, inode, size, mtime, ctime) means
 * unchanged content: NVML calls then copy the parsed state instead of parsing the file again
 * (the inventory benchmark measured the re-parse as most of the simulator's cost). Only states
 * whose catalog is the process-wide cache are kept, so the models they point to stay valid. */
static pthread_mutex_t parsed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        bool valid;
        struct stat key;
        struct sim_state snap; /* root, profile and catalog_dir owned by the cache */
} parsed;

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void parsed_clear_locked(void)
{
        if (parsed.valid) {
                free(parsed.snap.root);
                free(parsed.snap.profile);
                free(parsed.snap.catalog_dir);
        }
        parsed.valid = false;
}

/* Fill s from the cache when it holds this root's state as it is on disk now. */
static bool parsed_take(struct sim_state *s, const struct stat *st)
{
        bool hit = false;
        pthread_mutex_lock(&parsed_lock);
        if (parsed.valid && same_file(&parsed.key, st) && strcmp(parsed.snap.root, s->root) == 0) {
                char *root = s->root;
                int fd = s->lock_fd;
                bool excl = s->exclusive;
                *s = parsed.snap;
                s->root = root;
                s->lock_fd = fd;
                s->exclusive = excl;
                s->profile = xstrdup(parsed.snap.profile);
                s->catalog_dir = xstrdup(parsed.snap.catalog_dir);
                hit = true;
        }
        pthread_mutex_unlock(&parsed_lock);
        return hit;
}

static void parsed_put(const struct sim_state *s, const struct stat *st)
{
        if (!s->catalog_cached)
                return;
        pthread_mutex_lock(&parsed_lock);
        parsed_clear_locked();
        parsed.snap = *s;
        parsed.snap.root = xstrdup(s->root);
        parsed.snap.profile = s->profile ? xstrdup(s->profile) : NULL;
        parsed.snap.catalog_dir = s->catalog_dir ? xstrdup(s->catalog_dir) : NULL;
        parsed.snap.lock_fd = -1;
        parsed.key = *st;
        parsed.valid = true;
        pthread_mutex_unlock(&parsed_lock);
}

void sim_state_cache_free(void)
{
        pthread_mutex_lock(&parsed_lock);
        parsed_clear_locked();
        pthread_mutex_unlock(&parsed_lock);
        pthread_mutex_lock(&catalog_lock);
        while (catalog_cache) {
                struct catalog_entry *e = catalog_cache;
                catalog_cache = e->next;
                gv_catalog_free(e->catalog);
                free(e->dir);
                free(e);
        }
        pthread_mutex_unlock(&catalog_lock);
}

/* The directory gv_catalog_load_default() reads, by the same rules. */
static char *default_catalog_dir(void)
{
        const char *e = getenv("GPUVIRT_DATA_DIR");
        _cleanup_free_ char *dir = NULL;

        if (e && *e)
                dir = gv_path_join(e, "gpus");
        else {
                dir = gv_path_join(GPUVIRT_SOURCE_ROOT, "data", "gpus");
                if (gv_file_exists(dir) <= 0) {
                        free(dir);
                        dir = gv_path_join(GPUVIRT_DATADIR, "gpus");
                }
        }
        char *abs = realpath(dir, NULL);
        return abs ? abs : TAKE_PTR(dir);
}

/* ---- paths and locking -------------------------------------------------------------------- */

int sim_root_of_path(const char *path, char **ret_root)
{
        if (!path || !*path)
                return -EINVAL;

        _cleanup_free_ char *p = NULL;
        if (path[0] == '/')
                p = xstrdup(path);
        else {
                char cwd[PATH_MAX];
                if (!getcwd(cwd, sizeof(cwd)))
                        return -errno;
                p = gv_path_join(cwd, path);
        }

        for (;;) {
                _cleanup_free_ char *f = gv_path_join(*p ? p : "/", STATE_DIR, STATE_FILE);
                if (gv_file_exists(f) > 0) {
                        *ret_root = xstrdup(*p ? p : "/");
                        return 0;
                }
                char *slash = strrchr(p, '/');
                if (!slash || !*p)
                        return -ENOENT;
                *slash = '\0';
        }
}

/* The states this thread has locked (sim_state_held). */
#define HELD_MAX 8
static _Thread_local const struct sim_state *held[HELD_MAX];

static void held_add(const struct sim_state *s)
{
        for (size_t i = 0; i < HELD_MAX; i++)
                if (!held[i]) {
                        held[i] = s;
                        return;
                }
}

static void held_remove(const struct sim_state *s)
{
        for (size_t i = 0; i < HELD_MAX; i++)
                if (held[i] == s)
                        held[i] = NULL;
}

bool sim_state_held(const char *root)
{
        if (!root)
                return false;
        char *abs = realpath(root, NULL);
        const char *r = abs ? abs : root;
        bool found = false;
        for (size_t i = 0; i < HELD_MAX && !found; i++)
                found = held[i] && held[i]->root && strcmp(held[i]->root, r) == 0;
        free(abs);
        return found;
}

static struct sim_state *state_alloc(const char *root)
{
        struct sim_state *s = xnew0(struct sim_state, 1);
        char *abs = realpath(root, NULL);
        s->root = abs ? abs : xstrdup(root);
        s->lock_fd = -1;
        s->next_vgpu_instance = 1;
        return s;
}

struct sim_state *sim_state_unlock(struct sim_state *s)
{
        if (!s)
                return NULL;
        held_remove(s);
        s->lock_fd = safe_close(s->lock_fd);
        if (!s->catalog_cached)
                gv_catalog_free(s->catalog);
        free(s->catalog_dir);
        free(s->profile);
        free(s->root);
        free(s);
        return NULL;
}

static int lock_open(struct sim_state *s, enum sim_lock_mode mode, struct gv_error **err)
{
        _cleanup_free_ char *dir = gv_path_join(s->root, STATE_DIR);
        _cleanup_free_ char *path = gv_path_join(dir, LOCK_FILE);

        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                int r = errno;
                if (r == ENOENT)
                        return gv_error_set(err, r,
                                            "'%s' is not a simulated host: '%s' is missing; create "
                                            "one with 'gpuvirt-sim create'.",
                                            s->root, dir);
                return gv_error_set(err, r, "Cannot open the simulator lock '%s': %s.", path,
                                    strerror(r));
        }
        while (flock(fd, mode == SIM_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH) < 0) {
                if (errno == EINTR)
                        continue;
                int r = errno;
                close(fd);
                return gv_error_set(err, r, "Cannot lock '%s': %s.", path, strerror(r));
        }
        s->lock_fd = fd;
        s->exclusive = mode == SIM_LOCK_EXCLUSIVE;
        held_add(s);
        return 0;
}

/* ---- JSON (de)serialization --------------------------------------------------------------- */

static int copy_str(char *dst, size_t n, const char *src, const char *what, struct gv_error **err)
{
        size_t l = strlen(src);
        if (l >= n)
                return gv_error_set(err, EINVAL, "The %s '%s' is too long (at most %zu characters).",
                                    what, src, n - 1);
        memcpy(dst, src, l + 1);
        return 0;
}

static int load_ci(const json_t *o, struct sim_ci *ci, struct gv_error **err)
{
        int r;
        if ((r = gv_json_get_u32(o, "id", &ci->id, err)) < 0 ||
            (r = gv_json_get_u32(o, "profile_id", &ci->profile_id, err)) < 0 ||
            (r = gv_json_get_u32(o, "start", &ci->start, err)) < 0 ||
            (r = gv_json_get_u32(o, "size", &ci->size, err)) < 0)
                return r;
        return 0;
}

static int load_gi(const json_t *o, struct sim_gi *gi, struct gv_error **err)
{
        json_t *cis;
        int r;
        if ((r = gv_json_get_u32(o, "id", &gi->id, err)) < 0 ||
            (r = gv_json_get_u32(o, "profile_id", &gi->profile_id, err)) < 0 ||
            (r = gv_json_get_u32(o, "start", &gi->start, err)) < 0 ||
            (r = gv_json_get_u32(o, "size", &gi->size, err)) < 0 ||
            (r = gv_json_get_array(o, "cis", &cis, err)) < 0)
                return r;
        if (json_array_size(cis) > SIM_MAX_CI)
                return gv_error_set(err, EINVAL, "GPU instance %u has more than %d compute "
                                    "instances.", gi->id, SIM_MAX_CI);
        size_t i;
        json_t *c;
        json_array_foreach(cis, i, c) {
                r = load_ci(c, &gi->cis[gi->n_cis++], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_gpu(struct sim_state *s, const json_t *o, struct sim_gpu *g, struct gv_error **err)
{
        const char *model, *bdf, *uuid;
        json_t *gis;
        int r;

        if ((r = gv_json_get_u32(o, "index", &g->index, err)) < 0 ||
            (r = gv_json_get_string(o, "model", &model, err)) < 0 ||
            (r = gv_json_get_string(o, "bdf", &bdf, err)) < 0 ||
            (r = gv_json_get_string(o, "uuid", &uuid, err)) < 0 ||
            (r = gv_json_get_bool(o, "mig_capable", &g->mig_capable, err)) < 0 ||
            (r = gv_json_get_u32(o, "mig_current", &g->mig_current, err)) < 0 ||
            (r = gv_json_get_u32(o, "mig_pending", &g->mig_pending, err)) < 0 ||
            (r = gv_json_get_bool(o, "vgpu_heterogeneous", &g->vgpu_heterogeneous, err)) < 0 ||
            (r = gv_json_get_bool(o, "lost", &g->lost, err)) < 0 ||
            (r = gv_json_get_u32(o, "load_seed", &g->load_seed, err)) < 0 ||
            (r = gv_json_get_array(o, "gis", &gis, err)) < 0)
                return r;
        g->model = gv_catalog_find(s->catalog, model);
        if (!g->model) {
                _cleanup_free_ char *names = NULL;
                names = xstrdup("");
                for (size_t i = 0; i < s->catalog->n_models; i++) {
                        char *n = xasprintf("%s%s%s", names, i ? ", " : "",
                                            s->catalog->models[i].name);
                        free(names);
                        names = n;
                }
                return gv_error_set(err, EINVAL,
                                    "GPU '%s' is a '%s', which the catalog '%s' does not have "
                                    "(it has: %s).",
                                    bdf, model, s->catalog_dir, names);
        }
        if ((r = copy_str(g->bdf, sizeof(g->bdf), bdf, "PCI address", err)) < 0 ||
            (r = copy_str(g->uuid, sizeof(g->uuid), uuid, "GPU UUID", err)) < 0)
                return r;
        if (json_array_size(gis) > SIM_MAX_GI)
                return gv_error_set(err, EINVAL, "GPU '%s' has more than %d GPU instances.", bdf,
                                    SIM_MAX_GI);
        size_t i;
        json_t *gi;
        json_array_foreach(gis, i, gi) {
                r = load_gi(gi, &g->gis[g->n_gis++], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_vgpu(const json_t *o, struct sim_vgpu *v, struct gv_error **err)
{
        const char *uuid, *parent, *vm;
        int r;
        if ((r = gv_json_get_u32(o, "instance", &v->instance, err)) < 0 ||
            (r = gv_json_get_u32(o, "type_id", &v->type_id, err)) < 0 ||
            (r = gv_json_get_string(o, "uuid", &uuid, err)) < 0 ||
            (r = gv_json_get_string(o, "parent_bdf", &parent, err)) < 0 ||
            (r = gv_json_get_string(o, "vm_id", &vm, err)) < 0 ||
            (r = gv_json_get_u32(o, "placement_id", &v->placement_id, err)) < 0 ||
            (r = gv_json_get_u32(o, "gi_id", &v->gi_id, err)) < 0 ||
            (r = gv_json_get_u32(o, "gpu", &v->gpu, err)) < 0)
                return r;
        if ((r = copy_str(v->uuid, sizeof(v->uuid), uuid, "vGPU UUID", err)) < 0 ||
            (r = copy_str(v->parent_bdf, sizeof(v->parent_bdf), parent, "PCI address", err)) < 0 ||
            (r = copy_str(v->vm_id, sizeof(v->vm_id), vm, "VM id", err)) < 0)
                return r;
        return 0;
}

static int load_inject(const json_t *o, struct sim_inject *in, struct gv_error **err)
{
        const char *call, *target, *mode;
        json_int_t gpu;
        int r;
        json_t *jcode = json_object_get(o, "code"), *jgpu = json_object_get(o, "gpu");

        if (!json_is_integer(jcode) || !json_is_integer(jgpu))
                return gv_error_set(err, EINVAL, "An injection entry needs integer 'code' and "
                                    "'gpu' keys.");
        if ((r = gv_json_get_string(o, "call", &call, err)) < 0 ||
            (r = gv_json_get_string(o, "target", &target, err)) < 0 ||
            (r = gv_json_get_string(o, "mode", &mode, err)) < 0)
                return r;
        gpu = json_integer_value(jgpu);
        if (gpu < -1 || gpu >= SIM_MAX_GPUS)
                return gv_error_set(err, EINVAL, "Injection 'gpu' %lld is out of range (-1 for "
                                    "any, else 0..%d).", (long long)gpu, SIM_MAX_GPUS - 1);
        in->gpu = (int)gpu;
        in->code = (int)json_integer_value(jcode);
        in->mode = sim_inject_mode_from_string(mode);
        if ((int)in->mode < 0)
                return gv_error_set(err, EINVAL, "Unknown injection mode '%s' (valid: once, "
                                    "always).", mode);
        if ((r = copy_str(in->call, sizeof(in->call), call, "injection call", err)) < 0 ||
            (r = copy_str(in->target, sizeof(in->target), target, "injection target", err)) < 0)
                return r;
        return 0;
}

/* {"kind": "gpu"|"vgpu"|"gi", "gpu": N, "id": N, and the pinned fields: "util_pct",
 * "mem_used_mib", "power_mw", "temperature_c"} */
static int load_pin(const json_t *o, struct sim_pin *p, struct gv_error **err)
{
        static const struct {
                const char *key;
                unsigned bit;
        } fields[] = {
                { "util_pct", SIM_PIN_UTIL },
                { "mem_used_mib", SIM_PIN_MEM_USED },
                { "power_mw", SIM_PIN_POWER },
                { "temperature_c", SIM_PIN_TEMP },
        };
        const char *kind;
        int r;

        *p = (struct sim_pin){ 0 };
        if ((r = gv_json_get_string(o, "kind", &kind, err)) < 0 ||
            (r = gv_json_get_u32(o, "gpu", &p->gpu, err)) < 0 ||
            (r = gv_json_get_u32(o, "id", &p->id, err)) < 0)
                return r;
        p->kind = sim_pin_kind_from_string(kind);
        if ((int)p->kind < 0)
                return gv_error_set(err, EINVAL, "Unknown pin kind '%s' (valid: gpu, vgpu, gi).",
                                    kind);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                uint64_t v;
                if (!json_object_get(o, fields[i].key))
                        continue;
                if ((r = gv_json_get_u64(o, fields[i].key, &v, err)) < 0)
                        return r;
                if (fields[i].bit != SIM_PIN_MEM_USED && v > UINT32_MAX)
                        return gv_error_set(err, ERANGE, "Pin value '%s' %llu is out of range.",
                                            fields[i].key, (unsigned long long)v);
                p->fields |= fields[i].bit;
                switch (fields[i].bit) {
                case SIM_PIN_UTIL: p->util_pct = (uint32_t)v; break;
                case SIM_PIN_MEM_USED: p->mem_used_mib = v; break;
                case SIM_PIN_POWER: p->power_mw = (uint32_t)v; break;
                default: p->temperature_c = (uint32_t)v; break;
                }
        }
        return 0;
}

static json_t *pin_to_json(const struct sim_pin *p)
{
        json_t *o = json_pack("{s:s, s:I, s:I}", "kind", sim_pin_kind_to_string(p->kind), "gpu",
                              (json_int_t)p->gpu, "id", (json_int_t)p->id);
        if (p->fields & SIM_PIN_UTIL)
                json_object_set_new(o, "util_pct", json_integer(p->util_pct));
        if (p->fields & SIM_PIN_MEM_USED)
                json_object_set_new(o, "mem_used_mib", json_integer((json_int_t)p->mem_used_mib));
        if (p->fields & SIM_PIN_POWER)
                json_object_set_new(o, "power_mw", json_integer(p->power_mw));
        if (p->fields & SIM_PIN_TEMP)
                json_object_set_new(o, "temperature_c", json_integer(p->temperature_c));
        return o;
}

static int state_parse(struct sim_state *s, const json_t *root, struct gv_error **err)
{
        const char *profile, *drv, *nvml, *iface, *catdir;
        json_t *gpus, *vgpus, *inject;
        uint32_t format;
        int r;

        if ((r = gv_json_get_u32(root, "format", &format, err)) < 0)
                return r;
        if (format != STATE_FORMAT)
                return gv_error_set(err, EINVAL, "State format %u is not supported (this build "
                                    "reads format %d); recreate the host.", format, STATE_FORMAT);
        if ((r = gv_json_get_string(root, "profile", &profile, err)) < 0 ||
            (r = gv_json_get_string(root, "driver_version", &drv, err)) < 0 ||
            (r = gv_json_get_string(root, "nvml_version", &nvml, err)) < 0 ||
            (r = gv_json_get_string(root, "vgpu_interface", &iface, err)) < 0 ||
            (r = gv_json_get_string(root, "catalog_dir", &catdir, err)) < 0 ||
            (r = gv_json_get_u32(root, "next_vgpu_instance", &s->next_vgpu_instance, err)) < 0 ||
            (r = gv_json_get_array(root, "gpus", &gpus, err)) < 0 ||
            (r = gv_json_get_array(root, "vgpus", &vgpus, err)) < 0 ||
            (r = gv_json_get_array(root, "inject", &inject, err)) < 0)
                return r;
        s->profile = xstrdup(profile);
        s->catalog_dir = xstrdup(catdir);
        if ((r = copy_str(s->driver_version, sizeof(s->driver_version), drv, "driver version",
                          err)) < 0 ||
            (r = copy_str(s->nvml_version, sizeof(s->nvml_version), nvml, "NVML version", err)) < 0)
                return r;
        s->vgpu_interface = sim_vgpu_interface_from_string(iface);
        if ((int)s->vgpu_interface < 0)
                return gv_error_set(err, EINVAL, "Unknown vgpu_interface '%s' (valid: none, mdev, "
                                    "vendor-vfio).", iface);

        r = catalog_get(s->catalog_dir, &s->catalog, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot load the GPU catalog '%s' of host '%s'",
                                     s->catalog_dir, s->root);
        s->catalog_cached = true;

        if (json_array_size(gpus) > SIM_MAX_GPUS || json_array_size(vgpus) > SIM_MAX_VGPUS ||
            json_array_size(inject) > SIM_MAX_INJECT)
                return gv_error_set(err, EINVAL, "The state has more GPUs, vGPUs or injections "
                                    "than the simulator holds (%d, %d, %d).", SIM_MAX_GPUS,
                                    SIM_MAX_VGPUS, SIM_MAX_INJECT);
        size_t i;
        json_t *o;
        json_array_foreach(gpus, i, o) {
                r = load_gpu(s, o, &s->gpus[s->n_gpus++], err);
                if (r < 0)
                        return r;
        }
        json_array_foreach(vgpus, i, o) {
                r = load_vgpu(o, &s->vgpus[s->n_vgpus++], err);
                if (r < 0)
                        return r;
        }
        json_array_foreach(inject, i, o) {
                r = load_inject(o, &s->inject[s->n_inject++], err);
                if (r < 0)
                        return r;
        }
        /* Optional: hosts made before pins existed have none. */
        json_t *pins = json_object_get(root, "pins");
        if (pins) {
                if (!json_is_array(pins) || json_array_size(pins) > SIM_MAX_PINS)
                        return gv_error_set(err, EINVAL, "The state's 'pins' is not a list of at "
                                            "most %d pins.", SIM_MAX_PINS);
                json_array_foreach(pins, i, o) {
                        r = load_pin(o, &s->pins[s->n_pins++], err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static json_t *state_to_json(const struct sim_state *s)
{
        json_t *gpus = json_array(), *vgpus = json_array(), *inject = json_array();
        json_t *pins = json_array();

        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                json_t *gis = json_array();
                for (size_t j = 0; j < g->n_gis; j++) {
                        const struct sim_gi *gi = &g->gis[j];
                        json_t *cis = json_array();
                        for (size_t k = 0; k < gi->n_cis; k++)
                                json_array_append_new(
                                        cis, json_pack("{s:I, s:I, s:I, s:I}", "id",
                                                       (json_int_t)gi->cis[k].id, "profile_id",
                                                       (json_int_t)gi->cis[k].profile_id, "start",
                                                       (json_int_t)gi->cis[k].start, "size",
                                                       (json_int_t)gi->cis[k].size));
                        json_array_append_new(
                                gis, json_pack("{s:I, s:I, s:I, s:I, s:o}", "id",
                                               (json_int_t)gi->id, "profile_id",
                                               (json_int_t)gi->profile_id, "start",
                                               (json_int_t)gi->start, "size", (json_int_t)gi->size,
                                               "cis", cis));
                }
                json_array_append_new(
                        gpus, json_pack("{s:I, s:s, s:s, s:s, s:b, s:I, s:I, s:b, s:b, s:I, s:o}",
                                        "index", (json_int_t)g->index, "model", g->model->name,
                                        "bdf", g->bdf, "uuid", g->uuid, "mig_capable",
                                        g->mig_capable, "mig_current", (json_int_t)g->mig_current,
                                        "mig_pending", (json_int_t)g->mig_pending,
                                        "vgpu_heterogeneous", g->vgpu_heterogeneous, "lost",
                                        g->lost, "load_seed", (json_int_t)g->load_seed, "gis",
                                        gis));
        }
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct sim_vgpu *v = &s->vgpus[i];
                json_array_append_new(
                        vgpus, json_pack("{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I}", "instance",
                                         (json_int_t)v->instance, "type_id",
                                         (json_int_t)v->type_id, "uuid", v->uuid, "parent_bdf",
                                         v->parent_bdf, "vm_id", v->vm_id, "placement_id",
                                         (json_int_t)v->placement_id, "gi_id",
                                         (json_int_t)v->gi_id, "gpu", (json_int_t)v->gpu));
        }
        for (size_t i = 0; i < s->n_inject; i++) {
                const struct sim_inject *in = &s->inject[i];
                json_array_append_new(
                        inject, json_pack("{s:s, s:I, s:I, s:s, s:s}", "call", in->call, "code",
                                          (json_int_t)in->code, "gpu", (json_int_t)in->gpu,
                                          "target", in->target, "mode",
                                          sim_inject_mode_to_string(in->mode)));
        }
        for (size_t i = 0; i < s->n_pins; i++)
                json_array_append_new(pins, pin_to_json(&s->pins[i]));
        return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o}", "format",
                         STATE_FORMAT, "profile", s->profile ? s->profile : "", "driver_version",
                         s->driver_version, "nvml_version", s->nvml_version, "vgpu_interface",
                         sim_vgpu_interface_to_string(s->vgpu_interface), "catalog_dir",
                         s->catalog_dir ? s->catalog_dir : "", "next_vgpu_instance",
                         (json_int_t)s->next_vgpu_instance, "gpus", gpus, "vgpus", vgpus,
                         "inject", inject, "pins", pins);
}

int sim_state_lock(const char *root, enum sim_lock_mode mode, struct sim_state **ret,
                   struct gv_error **err)
{
        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        _cleanup_json_ json_t *j = NULL;
        int r;

        if (!root || !*root)
                return gv_error_set(err, EINVAL, "No simulated host root was given.");
        s = state_alloc(root);
        r = lock_open(s, mode, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = gv_path_join(s->root, STATE_DIR, STATE_FILE);
        struct stat st;
        bool have_st = stat(path, &st) == 0;
        if (have_st && parsed_take(s, &st)) {
                *ret = TAKE_PTR(s);
                return 0;
        }
        r = gv_json_load_file(path, STATE_MAX, &j, err);
        if (r < 0)
                return r;
        r = state_parse(s, j, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Invalid simulator state '%s'", path);
        if (have_st)
                parsed_put(s, &st);
        *ret = TAKE_PTR(s);
        return 0;
}

int sim_state_commit(struct sim_state *s, struct gv_error **err)
{
        if (!s->exclusive || s->lock_fd < 0)
                return gv_error_set(err, EPERM, "The simulator state of '%s' was changed without "
                                    "the exclusive lock; take it with SIM_LOCK_EXCLUSIVE.",
                                    s->root);

        _cleanup_json_ json_t *j = state_to_json(s);
        if (!j)
                return gv_error_set(err, ENOMEM, "Cannot serialize the simulator state.");
        _cleanup_free_ char *text = gv_json_dumps_pretty(j);
        _cleanup_free_ char *path = gv_path_join(s->root, STATE_DIR, STATE_FILE);
        int r = gv_write_file(path, text, GV_WRITE_CREATE | GV_WRITE_ATOMIC | GV_WRITE_NEWLINE);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot write the simulator state '%s': %s.", path,
                                    strerror(-r));
        return sim_sysfs_sync(s, err);
}

/* ---- creation ----------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, uint64_t h)
{
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* A stable UUID for a GPU: a hash of the host root and the PCI address, so two simulated
 * hosts never show the same GPU UUID (as a cluster never does). */
static void make_gpu_uuid(const char *root, const char *bdf, char *buf, size_t n)
{
        uint64_t a = fnv1a(bdf, fnv1a(root, 0xcbf29ce484222325ULL));
        uint64_t b = fnv1a(root, fnv1a(bdf, 0x84222325cbf29ce4ULL));
        snprintf(buf, n, "GPU-%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
                 (unsigned long long)(b & 0xffffffffffffULL));
}

static int cmp_gpu_bdf(const void *a, const void *b)
{
        const struct sim_gpu *x = a, *y = b;
        struct gv_pci_addr pa, pb;
        if (gv_parse_pci_addr(x->bdf, &pa) < 0 || gv_parse_pci_addr(y->bdf, &pb) < 0)
                return strcmp(x->bdf, y->bdf);
        return gv_pci_addr_compare(&pa, &pb);
}

int sim_state_new_gpus(const char *root, const char *profile_name,
                       enum sim_vgpu_interface vgpu_interface, const char *const *models,
                       const char *const *bdfs, size_t n, struct sim_state **ret,
                       struct gv_error **err)
{
        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        int r;

        if (n > SIM_MAX_GPUS)
                return gv_error_set(err, EINVAL, "A simulated host holds at most %d GPUs, not %zu.",
                                    SIM_MAX_GPUS, n);
        _cleanup_free_ char *dir = gv_path_join(root, STATE_DIR);
        r = gv_mkdir_p(dir, 0755);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot create '%s': %s.", dir, strerror(-r));

        s = state_alloc(root);
        r = lock_open(s, SIM_LOCK_EXCLUSIVE, err);
        if (r < 0)
                return r;
        s->profile = xstrdup(profile_name ? profile_name : "custom");
        s->vgpu_interface = vgpu_interface;
        s->catalog_dir = default_catalog_dir();
        r = catalog_get(s->catalog_dir, &s->catalog, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot load the GPU catalog '%s'", s->catalog_dir);
        s->catalog_cached = true;

        for (size_t i = 0; i < n; i++) {
                struct sim_gpu *g = &s->gpus[s->n_gpus];
                struct gv_pci_addr a;
                char canon[GV_PCI_ADDR_STR_MAX];

                g->model = gv_catalog_find(s->catalog, models[i]);
                if (!g->model) {
                        _cleanup_free_ char *names = xstrdup("");
                        for (size_t m = 0; m < s->catalog->n_models; m++) {
                                char *x = xasprintf("%s%s%s", names, m ? ", " : "",
                                                    s->catalog->models[m].name);
                                free(names);
                                names = x;
                        }
                        return gv_error_set(err, EINVAL, "Unknown GPU model '%s' (the catalog "
                                            "'%s' has: %s).", models[i], s->catalog_dir, names);
                }
                if (gv_parse_pci_addr(bdfs[i], &a) < 0)
                        return gv_error_set(err, EINVAL, "Invalid PCI address '%s' (expected "
                                            "dddd:bb:ss.f).", bdfs[i]);
                gv_pci_addr_format(&a, canon);
                if (sim_gpu_by_bdf(s, canon))
                        return gv_error_set(err, EEXIST, "PCI address '%s' is given twice.",
                                            canon);
                r = copy_str(g->bdf, sizeof(g->bdf), canon, "PCI address", err);
                if (r < 0)
                        return r;
                make_gpu_uuid(s->root, g->bdf, g->uuid, sizeof(g->uuid));
                g->mig_capable = g->model->n_gi_profiles > 0;
                g->load_seed = (uint32_t)(fnv1a(g->uuid, 0xcbf29ce484222325ULL) & 0xffff);
                s->n_gpus++;
        }
        qsort(s->gpus, s->n_gpus, sizeof(s->gpus[0]), cmp_gpu_bdf);
        for (size_t i = 0; i < s->n_gpus; i++)
                s->gpus[i].index = (uint32_t)i;
        *ret = TAKE_PTR(s);
        return 0;
}

int sim_state_new(const char *root, const struct sim_profile *profile, struct sim_state **ret,
                  struct gv_error **err)
{
        const char *models[SIM_MAX_GPUS], *bdfs[SIM_MAX_GPUS];
        size_t n = 0;
        struct sim_state *s;
        int r;

        for (size_t i = 0; i < profile->n_devices; i++) {
                if (!profile->devices[i].gpu_model)
                        continue;
                if (n >= SIM_MAX_GPUS)
                        return gv_error_set(err, EINVAL, "Profile '%s' has more than %d GPUs.",
                                            profile->name, SIM_MAX_GPUS);
                models[n] = profile->devices[i].gpu_model;
                bdfs[n] = profile->devices[i].bdf;
                n++;
        }
        r = sim_state_new_gpus(root, profile->name, profile->vgpu_interface, models, bdfs, n, &s,
                               err);
        if (r < 0)
                return gv_error_wrap(err, r, "Profile '%s'", profile->name);
        snprintf(s->driver_version, sizeof(s->driver_version), "%s",
                 profile->driver_version ? profile->driver_version : "");
        snprintf(s->nvml_version, sizeof(s->nvml_version), "%s",
                 profile->nvml_version ? profile->nvml_version : "");
        *ret = s;
        return 0;
}

/* ---- injection ---------------------------------------------------------------------------- */

static bool inject_match(const struct sim_inject *in, const char *call, int gpu,
                         const char *target)
{
        if (strcmp(in->call, call) != 0)
                return false;
        if (in->gpu >= 0 && in->gpu != gpu)
                return false;
        if (in->target[0] && (!target || strcasecmp(in->target, target) != 0))
                return false;
        return true;
}

int sim_inject_peek(const struct sim_state *s, const char *call, int gpu, const char *target,
                    bool *ret_once)
{
        for (size_t i = 0; i < s->n_inject; i++)
                if (inject_match(&s->inject[i], call, gpu, target)) {
                        if (ret_once)
                                *ret_once = s->inject[i].mode == SIM_INJECT_ONCE;
                        return s->inject[i].code;
                }
        return 0;
}

int sim_inject_take(struct sim_state *s, const char *call, int gpu, const char *target)
{
        for (size_t i = 0; i < s->n_inject; i++) {
                if (!inject_match(&s->inject[i], call, gpu, target))
                        continue;
                int code = s->inject[i].code;
                if (s->inject[i].mode == SIM_INJECT_ONCE) {
                        memmove(&s->inject[i], &s->inject[i + 1],
                                (s->n_inject - i - 1) * sizeof(s->inject[0]));
                        s->n_inject--;
                }
                return code;
        }
        return 0;
}

int sim_inject_add(struct sim_state *s, const char *call, int code, int gpu, const char *target,
                   enum sim_inject_mode mode)
{
        if (!call || !*call || strlen(call) >= sizeof(s->inject[0].call))
                return -EINVAL;
        if (target && strlen(target) >= sizeof(s->inject[0].target))
                return -EINVAL;
        if (gpu < -1 || gpu >= SIM_MAX_GPUS || (int)mode < 0 || mode >= _SIM_INJECT_MODE_MAX)
                return -EINVAL;
        if (s->n_inject >= SIM_MAX_INJECT)
                return -ENOSPC;
        struct sim_inject *in = &s->inject[s->n_inject++];
        memset(in, 0, sizeof(*in));
        snprintf(in->call, sizeof(in->call), "%s", call);
        snprintf(in->target, sizeof(in->target), "%s", target ? target : "");
        in->code = code;
        in->gpu = gpu;
        in->mode = mode;
        return 0;
}

/* ---- lookups ------------------------------------------------------------------------------ */

static bool bdf_equal(const char *a, const char *b)
{
        struct gv_pci_addr pa, pb;
        if (gv_parse_pci_addr(a, &pa) < 0 || gv_parse_pci_addr(b, &pb) < 0)
                return strcasecmp(a, b) == 0;
        return gv_pci_addr_equal(&pa, &pb);
}

struct sim_gpu *sim_gpu_by_bdf(struct sim_state *s, const char *bdf)
{
        if (!bdf)
                return NULL;
        for (size_t i = 0; i < s->n_gpus; i++)
                if (bdf_equal(s->gpus[i].bdf, bdf))
                        return &s->gpus[i];
        return NULL;
}

struct sim_gpu *sim_gpu_by_index(struct sim_state *s, uint32_t index)
{
        for (size_t i = 0; i < s->n_gpus; i++)
                if (s->gpus[i].index == index)
                        return &s->gpus[i];
        return NULL;
}

struct sim_vgpu *sim_vgpu_by_instance(struct sim_state *s, uint32_t instance)
{
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (s->vgpus[i].instance == instance)
                        return &s->vgpus[i];
        return NULL;
}

struct sim_vgpu *sim_vgpu_by_uuid(struct sim_state *s, const char *uuid)
{
        if (!uuid)
                return NULL;
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (strcasecmp(s->vgpus[i].uuid, uuid) == 0)
                        return &s->vgpus[i];
        return NULL;
}

struct sim_gpu *sim_gpu_of_function(struct sim_state *s, const char *bdf)
{
        struct sim_gpu *g = sim_gpu_by_bdf(s, bdf);
        if (g)
                return g;
        /* A VF: its physfn link in the generated tree names the PF (passthrough.md §1). */
        _cleanup_free_ char *link = gv_path_join(s->root, "sys/bus/pci/devices", bdf, "physfn");
        _cleanup_free_ char *pf = NULL;
        if (gv_readlink_basename(link, &pf) >= 0)
                return sim_gpu_by_bdf(s, pf);
        /* Still known from a vGPU that lives on it (the tree may be mid-change). */
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (bdf_equal(s->vgpus[i].parent_bdf, bdf))
                        return sim_gpu_by_index(s, s->vgpus[i].gpu);
        return NULL;
}

/* ---- vGPU rules --------------------------------------------------------------------------- */

const struct gv_vgpu_type *sim_gpu_vgpu_type(const struct sim_gpu *g, uint32_t type_id)
{
        return gv_gpu_model_find_vgpu_type_id(g->model, type_id);
}

size_t sim_gpu_n_vgpus(const struct sim_state *s, const struct sim_gpu *g)
{
        size_t n = 0;
        for (size_t i = 0; i < s->n_vgpus; i++)
                n += s->vgpus[i].gpu == g->index;
        return n;
}

static uint32_t count_type(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id)
{
        uint32_t n = 0;
        for (size_t i = 0; i < s->n_vgpus; i++)
                n += s->vgpus[i].gpu == g->index && s->vgpus[i].type_id == type_id;
        return n;
}

static bool gi_has_vgpu(const struct sim_state *s, const struct sim_gpu *g, uint32_t gi_id)
{
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (s->vgpus[i].gpu == g->index && s->vgpus[i].gi_id == gi_id)
                        return true;
        return false;
}

static uint32_t placement_size(const struct gv_vgpu_type *t)
{
        uint64_t sz = (t->framebuffer_mib + 1023) / 1024;
        return sz ? (uint32_t)sz : 1;
}

/* Is [id, id+size) free of every other time-sliced vGPU's placement on g? */
static bool placement_free(const struct sim_state *s, const struct sim_gpu *g, uint32_t id,
                           uint32_t size)
{
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct sim_vgpu *v = &s->vgpus[i];
                if (v->gpu != g->index || v->placement_id == NVML_INVALID_VGPU_PLACEMENT_ID)
                        continue;
                const struct gv_vgpu_type *vt = sim_gpu_vgpu_type(g, v->type_id);
                uint32_t vs = vt ? placement_size(vt) : 1;
                if (id < v->placement_id + vs && v->placement_id < id + size)
                        return false;
        }
        return true;
}

static size_t placements_all(const struct sim_gpu *g, const struct gv_vgpu_type *t, bool het,
                             uint32_t *ids, size_t max, uint32_t *ret_size)
{
        (void)g;
        uint32_t size = placement_size(t);
        uint32_t n = het ? t->max_instances_mixed : t->max_instances;
        size_t k = 0;

        if (ret_size)
                *ret_size = t->gi ? 0 : size;
        if (t->gi)
                return 0;
        for (uint32_t i = 0; i < n && k < max; i++)
                ids[k++] = i * size;
        return k;
}

int sim_vgpu_check(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id,
                   struct gv_error **err)
{
        const struct gv_vgpu_type *t = sim_gpu_vgpu_type(g, type_id);

        if (s->vgpu_interface == SIM_VGPU_NONE)
                return gv_error_set(err, EINVAL, "Host '%s' has no vGPU manager; its GPUs can "
                                    "only be passed through.", s->root);
        if (!t) {
                _cleanup_free_ char *names = gv_gpu_model_vgpu_type_names(g->model);
                return gv_error_set(err, EINVAL, "vGPU type %u is not a type of GPU '%s' (%s); "
                                    "valid types: %s.", type_id, g->bdf, g->model->name,
                                    names ? names : "");
        }
        if (g->lost)
                return gv_error_set(err, EBUSY, "GPU '%s' has fallen off the bus.", g->bdf);
        if (s->n_vgpus >= SIM_MAX_VGPUS)
                return gv_error_set(err, ENOSPC, "The simulated host holds at most %d vGPUs.",
                                    SIM_MAX_VGPUS);

        uint32_t have = count_type(s, g, type_id);
        if (t->gi) {
                /* MIG-backed (vgpu.md §5): MIG on, one vGPU per GI of the type's profile. */
                if (g->mig_current != NVML_DEVICE_MIG_ENABLE)
                        return gv_error_set(err, EBUSY, "vGPU type '%s' is MIG-backed, but MIG is "
                                            "disabled on GPU '%s'; enable MIG and create a '%s' "
                                            "GPU instance first.", t->name, g->bdf, t->gi->name);
                if (have >= t->max_instances)
                        return gv_error_set(err, ENOSPC, "GPU '%s' already runs the maximum of %u "
                                            "'%s' vGPUs.", g->bdf, t->max_instances, t->name);
                for (size_t i = 0; i < g->n_gis; i++)
                        if (g->gis[i].profile_id == t->gi->id && !gi_has_vgpu(s, g, g->gis[i].id))
                                return 0;
                return gv_error_set(err, ENOSPC, "GPU '%s' has no free '%s' GPU instance for "
                                    "vGPU type '%s'; create one first.", g->bdf, t->gi->name,
                                    t->name);
        }

        /* Time-sliced. */
        if (g->mig_current == NVML_DEVICE_MIG_ENABLE)
                return gv_error_set(err, EBUSY, "vGPU type '%s' is time-sliced, which GPU '%s' "
                                    "cannot run while MIG is enabled; disable MIG or use a "
                                    "MIG-backed type.", t->name, g->bdf);
        if (!g->vgpu_heterogeneous) {
                /* Equal-size mode (vgpu.md §8): only the type already running. */
                for (size_t i = 0; i < s->n_vgpus; i++) {
                        const struct sim_vgpu *v = &s->vgpus[i];
                        if (v->gpu != g->index || v->type_id == type_id)
                                continue;
                        const struct gv_vgpu_type *vt = sim_gpu_vgpu_type(g, v->type_id);
                        return gv_error_set(err, EBUSY, "GPU '%s' runs vGPU type '%s' and is in "
                                            "equal-size mode, so it cannot also run '%s'; enable "
                                            "mixed-size mode while it has no vGPUs, or use "
                                            "another GPU.", g->bdf, vt ? vt->name : "?", t->name);
                }
                if (have >= t->max_instances)
                        return gv_error_set(err, ENOSPC, "GPU '%s' already runs the maximum of %u "
                                            "'%s' vGPUs.", g->bdf, t->max_instances, t->name);
        } else {
                if (t->max_instances_mixed == 0)
                        return gv_error_set(err, EBUSY, "vGPU type '%s' is not allowed in "
                                            "mixed-size mode on GPU '%s'.", t->name, g->bdf);
                if (have >= t->max_instances_mixed)
                        return gv_error_set(err, ENOSPC, "GPU '%s' already runs the mixed-size "
                                            "maximum of %u '%s' vGPUs.", g->bdf,
                                            t->max_instances_mixed, t->name);
        }
        /* Framebuffer must fit: a free placement id (vgpu.md §8). */
        uint32_t ids[64], size;
        size_t n = placements_all(g, t, g->vgpu_heterogeneous, ids, ELEMENTSOF(ids), &size);
        for (size_t i = 0; i < n; i++)
                if (placement_free(s, g, ids[i], size))
                        return 0;
        return gv_error_set(err, ENOSPC, "GPU '%s' has no free framebuffer placement for vGPU "
                            "type '%s'.", g->bdf, t->name);
}

uint32_t sim_vgpu_creatable(const struct sim_state *s, const struct sim_gpu *g, uint32_t type_id)
{
        if (sim_vgpu_check(s, g, type_id, NULL) < 0)
                return 0;
        const struct gv_vgpu_type *t = sim_gpu_vgpu_type(g, type_id);
        uint32_t have = count_type(s, g, type_id);
        uint32_t n = 0;

        if (t->gi) {
                for (size_t i = 0; i < g->n_gis; i++)
                        n += g->gis[i].profile_id == t->gi->id && !gi_has_vgpu(s, g, g->gis[i].id);
                return MIN(n, t->max_instances - have);
        }
        uint32_t max = g->vgpu_heterogeneous ? t->max_instances_mixed : t->max_instances;
        uint32_t ids[64], size;
        size_t np = placements_all(g, t, g->vgpu_heterogeneous, ids, ELEMENTSOF(ids), &size);
        for (size_t i = 0; i < np; i++)
                n += placement_free(s, g, ids[i], size);
        n = MIN(n, max - have);
        return (uint32_t)MIN((size_t)n, SIM_MAX_VGPUS - s->n_vgpus);
}

size_t sim_vgpu_placements(const struct sim_state *s, const struct sim_gpu *g,
                           const struct gv_vgpu_type *t, bool heterogeneous, bool creatable_only,
                           uint32_t *ids, size_t max, uint32_t *ret_size)
{
        uint32_t all[64], size;
        size_t n = placements_all(g, t, heterogeneous, all, ELEMENTSOF(all), &size), k = 0;

        if (ret_size)
                *ret_size = size;
        if (creatable_only && (heterogeneous != g->vgpu_heterogeneous ||
                               sim_vgpu_check(s, g, t->type_id, NULL) < 0))
                return 0;
        for (size_t i = 0; i < n && k < max; i++)
                if (!creatable_only || placement_free(s, g, all[i], size))
                        ids[k++] = all[i];
        return k;
}

int sim_vgpu_add_at(struct sim_state *s, struct sim_gpu *g, uint32_t type_id, const char *uuid,
                    const char *parent_bdf, uint32_t gi_id, uint32_t placement_id,
                    struct sim_vgpu **ret, struct gv_error **err)
{
        struct gv_uuid u;
        char ubuf[GV_UUID_STR_LEN + 1];
        int r;

        if (!uuid || gv_parse_uuid(uuid, &u) < 0)
                return gv_error_set(err, EINVAL, "Invalid vGPU UUID '%s' (expected "
                                    "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).", uuid ? uuid : "");
        gv_uuid_format(&u, ubuf);
        if (sim_vgpu_by_uuid(s, ubuf))
                return gv_error_set(err, EEXIST, "A vGPU with UUID '%s' already exists.", ubuf);
        if (!parent_bdf || strlen(parent_bdf) >= sizeof(s->vgpus[0].parent_bdf))
                return gv_error_set(err, EINVAL, "Invalid parent PCI address '%s'.",
                                    parent_bdf ? parent_bdf : "");
        /* "Only one instance of any vGPU type can be created on a virtual function" (vgpu.md
         * §2): a VF holds one vGPU; a non-SR-IOV mdev parent (the PF itself) holds many. */
        if (!bdf_equal(parent_bdf, g->bdf))
                for (size_t i = 0; i < s->n_vgpus; i++)
                        if (bdf_equal(s->vgpus[i].parent_bdf, parent_bdf))
                                return gv_error_set(err, EBUSY, "Virtual function '%s' already "
                                                    "holds vGPU '%s'.", parent_bdf,
                                                    s->vgpus[i].uuid);
        r = sim_vgpu_check(s, g, type_id, err);
        if (r < 0)
                return r;

        const struct gv_vgpu_type *t = sim_gpu_vgpu_type(g, type_id);
        uint32_t pid = NVML_INVALID_VGPU_PLACEMENT_ID, gid = INVALID_GPU_INSTANCE_ID;
        if (t->gi) {
                if (placement_id != NVML_INVALID_VGPU_PLACEMENT_ID)
                        return gv_error_set(err, EINVAL, "vGPU type '%s' is MIG-backed and takes "
                                            "no placement id.", t->name);
                for (size_t i = 0; i < g->n_gis; i++) {
                        const struct sim_gi *gi = &g->gis[i];
                        if (gi_id != INVALID_GPU_INSTANCE_ID && gi->id != gi_id)
                                continue;
                        if (gi->profile_id != t->gi->id && gi_id == INVALID_GPU_INSTANCE_ID)
                                continue;
                        if (gi->profile_id != t->gi->id)
                                return gv_error_set(err, EINVAL, "GPU instance %u of GPU '%s' is "
                                                    "not a '%s' instance, which vGPU type '%s' "
                                                    "needs.", gi->id, g->bdf, t->gi->name,
                                                    t->name);
                        if (gi_has_vgpu(s, g, gi->id)) {
                                if (gi_id != INVALID_GPU_INSTANCE_ID)
                                        return gv_error_set(err, EBUSY, "GPU instance %u of GPU "
                                                            "'%s' already holds a vGPU.", gi->id,
                                                            g->bdf);
                                continue;
                        }
                        gid = gi->id;
                        break;
                }
                if (gid == INVALID_GPU_INSTANCE_ID)
                        return gv_error_set(err, gi_id == INVALID_GPU_INSTANCE_ID ? ENOSPC : EINVAL,
                                            "GPU '%s' has no GPU instance %u.", g->bdf, gi_id);
        } else {
                if (gi_id != INVALID_GPU_INSTANCE_ID)
                        return gv_error_set(err, EINVAL, "vGPU type '%s' is time-sliced and takes "
                                            "no GPU instance.", t->name);
                uint32_t ids[64], size;
                size_t n = placements_all(g, t, g->vgpu_heterogeneous, ids, ELEMENTSOF(ids),
                                          &size);
                bool valid = false;
                for (size_t i = 0; i < n; i++) {
                        if (placement_id != NVML_INVALID_VGPU_PLACEMENT_ID &&
                            ids[i] != placement_id)
                                continue;
                        valid = true;
                        if (placement_free(s, g, ids[i], size)) {
                                pid = ids[i];
                                break;
                        }
                }
                if (pid == NVML_INVALID_VGPU_PLACEMENT_ID) {
                        if (!valid)
                                return gv_error_set(err, EINVAL, "%u is not a placement id of "
                                                    "vGPU type '%s'.", placement_id, t->name);
                        return gv_error_set(err, EBUSY, "Placement id %u of GPU '%s' overlaps "
                                            "another vGPU.", placement_id, g->bdf);
                }
        }

        struct sim_vgpu *v = &s->vgpus[s->n_vgpus++];
        memset(v, 0, sizeof(*v));
        v->instance = s->next_vgpu_instance ? s->next_vgpu_instance : 1;
        while (sim_vgpu_by_instance(s, v->instance) != v)
                v->instance++;
        s->next_vgpu_instance = v->instance + 1;
        if (s->next_vgpu_instance == 0)
                s->next_vgpu_instance = 1;
        v->type_id = type_id;
        snprintf(v->uuid, sizeof(v->uuid), "%s", ubuf);
        snprintf(v->parent_bdf, sizeof(v->parent_bdf), "%s", parent_bdf);
        v->placement_id = pid;
        v->gi_id = gid;
        v->gpu = g->index;
        if (ret)
                *ret = v;
        return 0;
}

int sim_vgpu_add(struct sim_state *s, struct sim_gpu *g, uint32_t type_id, const char *uuid,
                 const char *parent_bdf, struct sim_vgpu **ret)
{
        return sim_vgpu_add_at(s, g, type_id, uuid, parent_bdf, INVALID_GPU_INSTANCE_ID,
                               NVML_INVALID_VGPU_PLACEMENT_ID, ret, NULL);
}

int sim_vgpu_remove(struct sim_state *s, uint32_t instance)
{
        struct sim_vgpu *v = sim_vgpu_by_instance(s, instance);
        if (!v)
                return -ENOENT;
        size_t i = (size_t)(v - s->vgpus);
        memmove(&s->vgpus[i], &s->vgpus[i + 1], (s->n_vgpus - i - 1) * sizeof(s->vgpus[0]));
        s->n_vgpus--;
        return 0;
}

int sim_vgpu_set_heterogeneous(struct sim_state *s, struct sim_gpu *g, bool on,
                               struct gv_error **err)
{
        if (s->vgpu_interface == SIM_VGPU_NONE || !g->model->vgpu_heterogeneous_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU '%s' (%s) does not support mixed-size "
                                    "vGPU mode.", g->bdf, g->model->name);
        if (g->vgpu_heterogeneous == on)
                return 0;
        /* "Preconditions: no vGPUs running and the GPU idle" (vgpu.md §8). */
        if (sim_gpu_n_vgpus(s, g) > 0)
                return gv_error_set(err, EBUSY, "GPU '%s' has vGPUs; the vGPU mode can change "
                                    "only while it has none.", g->bdf);
        g->vgpu_heterogeneous = on;
        return 0;
}

/* ---- MIG ---------------------------------------------------------------------------------- */

const struct gv_mig_gi_profile *sim_gi_profile(const struct sim_gpu *g, uint32_t profile_id)
{
        return gv_gpu_model_find_gi_profile_id(g->model, profile_id);
}

struct sim_gi *sim_gi_by_id(struct sim_gpu *g, uint32_t gi_id)
{
        for (size_t i = 0; i < g->n_gis; i++)
                if (g->gis[i].id == gi_id)
                        return &g->gis[i];
        return NULL;
}

struct sim_ci *sim_ci_by_id(struct sim_gi *gi, uint32_t ci_id)
{
        for (size_t i = 0; i < gi->n_cis; i++)
                if (gi->cis[i].id == ci_id)
                        return &gi->cis[i];
        return NULL;
}

static bool is_ampere(const struct sim_gpu *g)
{
        return g->model->architecture && strcasecmp(g->model->architecture, "ampere") == 0;
}

int sim_mig_set_mode(struct sim_state *s, struct sim_gpu *g, bool enable, bool reset_fails,
                     struct gv_error **err)
{
        if (!g->mig_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU '%s' (%s) does not support MIG.",
                                    g->bdf, g->model->name);
        if (sim_gpu_n_vgpus(s, g) > 0)
                return gv_error_set(err, EBUSY, "GPU '%s' has vGPUs; remove them before "
                                    "changing the MIG mode.", g->bdf);
        uint32_t mode = enable ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
        g->mig_pending = mode;
        /* Ampere: the driver tries a GPU reset when the mode changes (mig.md §8); when that
         * reset cannot be done (a client holds the GPU, a pass-through VM) the mode stays
         * pending until the next reset. Hopper and later: at once, no reset (nvml-abi.md §9). */
        if (is_ampere(g) && reset_fails)
                return g->mig_current == mode ? 0 : 1;
        if (g->mig_current != mode) {
                g->mig_current = mode;
                g->n_gis = 0;
        }
        return 0;
}

int sim_gpu_reset(struct sim_state *s, struct sim_gpu *g, struct gv_error **err)
{
        if (sim_gpu_n_vgpus(s, g) > 0)
                return gv_error_set(err, EBUSY, "GPU '%s' has vGPUs and cannot be reset.", g->bdf);
        g->mig_current = g->mig_pending;
        g->n_gis = 0;
        g->vgpu_heterogeneous = false;
        return 0;
}

static uint32_t gi_compute_used(const struct sim_gpu *g)
{
        uint32_t n = 0;
        for (size_t i = 0; i < g->n_gis; i++) {
                const struct gv_mig_gi_profile *p = sim_gi_profile(g, g->gis[i].profile_id);
                n += p ? p->slices : 0;
        }
        return n;
}

static uint32_t gi_count_profile(const struct sim_gpu *g, uint32_t profile_id)
{
        uint32_t n = 0;
        for (size_t i = 0; i < g->n_gis; i++)
                n += g->gis[i].profile_id == profile_id;
        return n;
}

static bool gi_limits_ok(const struct sim_gpu *g, const struct gv_mig_gi_profile *p)
{
        uint32_t max = g->model->mig_max_instances ? g->model->mig_max_instances : SIM_MAX_GI;
        if (g->n_gis >= MIN(max, (uint32_t)SIM_MAX_GI))
                return false;
        if (gi_count_profile(g, p->id) >= p->instances)
                return false;
        if (g->model->mig_compute_slices &&
            gi_compute_used(g) + p->slices > g->model->mig_compute_slices)
                return false;
        return true;
}

bool sim_gi_placement_free(const struct sim_gpu *g, const struct gv_mig_gi_profile *p,
                           const struct gv_mig_placement *pl)
{
        if (!gi_limits_ok(g, p))
                return false;
        /* "Creation of new GPU instance will fail if there is overlap with the already occupied
         * memory slices" (mig.md §4). */
        for (size_t i = 0; i < g->n_gis; i++)
                if (pl->start < g->gis[i].start + g->gis[i].size &&
                    g->gis[i].start < pl->start + pl->size)
                        return false;
        return true;
}

uint32_t sim_gi_remaining(const struct sim_gpu *g, uint32_t profile_id)
{
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, profile_id);
        if (!p || g->mig_current != NVML_DEVICE_MIG_ENABLE)
                return 0;
        /* Greedy count on a scratch copy: place one, count again. */
        struct sim_gpu scratch = *g;
        uint32_t n = 0;
        for (;;) {
                bool placed = false;
                for (size_t i = 0; i < p->n_placements; i++)
                        if (sim_gi_placement_free(&scratch, p, &p->placements[i])) {
                                struct sim_gi *gi = &scratch.gis[scratch.n_gis++];
                                memset(gi, 0, sizeof(*gi));
                                gi->id = UINT32_MAX - n;
                                gi->profile_id = p->id;
                                gi->start = p->placements[i].start;
                                gi->size = p->placements[i].size;
                                placed = true;
                                n++;
                                break;
                        }
                if (!placed)
                        return n;
        }
}

int sim_gi_create(struct sim_state *s, struct sim_gpu *g, uint32_t profile_id,
                  const struct gv_mig_placement *placement, struct sim_gi **ret,
                  struct gv_error **err)
{
        (void)s;
        if (!g->mig_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU '%s' (%s) does not support MIG.",
                                    g->bdf, g->model->name);
        if (g->mig_current != NVML_DEVICE_MIG_ENABLE)
                return gv_error_set(err, EOPNOTSUPP, "MIG is disabled on GPU '%s'; enable it "
                                    "first.", g->bdf);
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, profile_id);
        if (!p) {
                _cleanup_free_ char *names = gv_gpu_model_gi_profile_names(g->model);
                return gv_error_set(err, EINVAL, "GPU '%s' (%s) has no GPU instance profile id "
                                    "%u; its profiles: %s.", g->bdf, g->model->name, profile_id,
                                    names ? names : "");
        }
        const struct gv_mig_placement *chosen = NULL;
        if (placement) {
                for (size_t i = 0; i < p->n_placements; i++)
                        if (p->placements[i].start == placement->start &&
                            p->placements[i].size == placement->size)
                                chosen = &p->placements[i];
                if (!chosen)
                        return gv_error_set(err, EINVAL, "Placement %u:%u is not valid for "
                                            "profile '%s' on GPU '%s'.", placement->start,
                                            placement->size, p->name, g->bdf);
                if (!sim_gi_placement_free(g, p, chosen))
                        return gv_error_set(err, ENOSPC, "Placement %u:%u of GPU '%s' overlaps "
                                            "an existing GPU instance or the limits of '%s' are "
                                            "reached.", chosen->start, chosen->size, g->bdf,
                                            p->name);
        } else {
                /* [I] the driver's choice: the free placement with the highest start. */
                for (size_t i = p->n_placements; i-- > 0;)
                        if (sim_gi_placement_free(g, p, &p->placements[i])) {
                                chosen = &p->placements[i];
                                break;
                        }
                if (!chosen)
                        return gv_error_set(err, ENOSPC, "GPU '%s' has no room for another "
                                            "'%s' GPU instance.", g->bdf, p->name);
        }
        /* [I] GI ids: the lowest free id from 1. */
        uint32_t id = 1;
        while (sim_gi_by_id(g, id))
                id++;
        struct sim_gi *gi = &g->gis[g->n_gis++];
        memset(gi, 0, sizeof(*gi));
        gi->id = id;
        gi->profile_id = p->id;
        gi->start = chosen->start;
        gi->size = chosen->size;
        if (ret)
                *ret = gi;
        return 0;
}

int sim_gi_destroy(struct sim_state *s, struct sim_gpu *g, uint32_t gi_id, struct gv_error **err)
{
        struct sim_gi *gi = sim_gi_by_id(g, gi_id);
        if (!gi)
                return gv_error_set(err, ENOENT, "GPU '%s' has no GPU instance %u.", g->bdf,
                                    gi_id);
        if (gi->n_cis > 0)
                return gv_error_set(err, EBUSY, "GPU instance %u of GPU '%s' still has %zu "
                                    "compute instance(s); destroy them first.", gi_id, g->bdf,
                                    gi->n_cis);
        if (gi_has_vgpu(s, g, gi_id))
                return gv_error_set(err, EBUSY, "GPU instance %u of GPU '%s' holds a vGPU.",
                                    gi_id, g->bdf);
        size_t i = (size_t)(gi - g->gis);
        memmove(&g->gis[i], &g->gis[i + 1], (g->n_gis - i - 1) * sizeof(g->gis[0]));
        g->n_gis--;
        return 0;
}

const struct gv_mig_ci_profile *sim_ci_profile(const struct sim_gpu *g, const struct sim_gi *gi,
                                               uint32_t ci_profile_id)
{
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_ci_profiles; i++)
                if (p->ci_profiles[i].id == ci_profile_id)
                        return &p->ci_profiles[i];
        return NULL;
}

size_t sim_ci_placements(const struct sim_gpu *g, const struct sim_gi *gi,
                         const struct gv_mig_ci_profile *cp, struct gv_mig_placement *out,
                         size_t max)
{
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        size_t n = 0;
        if (!p || cp->slices == 0)
                return 0;
        for (uint32_t k = 0; (k + 1) * cp->slices <= p->slices && k < cp->instances; k++) {
                if (n < max && out) {
                        out[n].start = k * cp->slices;
                        out[n].size = cp->slices;
                }
                n++;
        }
        return n;
}

static bool ci_placement_free(const struct sim_gi *gi, const struct gv_mig_ci_profile *cp,
                              const struct gv_mig_placement *pl)
{
        uint32_t same = 0;
        if (gi->n_cis >= SIM_MAX_CI)
                return false;
        for (size_t i = 0; i < gi->n_cis; i++) {
                same += gi->cis[i].profile_id == cp->id;
                if (pl->start < gi->cis[i].start + gi->cis[i].size &&
                    gi->cis[i].start < pl->start + pl->size)
                        return false;
        }
        return same < cp->instances;
}

uint32_t sim_ci_remaining(const struct sim_gpu *g, const struct sim_gi *gi, uint32_t profile_id)
{
        const struct gv_mig_ci_profile *cp = sim_ci_profile(g, gi, profile_id);
        struct gv_mig_placement pl[16];
        if (!cp)
                return 0;
        size_t n = sim_ci_placements(g, gi, cp, pl, ELEMENTSOF(pl));
        struct sim_gi scratch = *gi;
        uint32_t k = 0;
        for (size_t i = 0; i < n && i < ELEMENTSOF(pl); i++)
                if (ci_placement_free(&scratch, cp, &pl[i])) {
                        struct sim_ci *ci = &scratch.cis[scratch.n_cis++];
                        ci->id = UINT32_MAX - k;
                        ci->profile_id = cp->id;
                        ci->start = pl[i].start;
                        ci->size = pl[i].size;
                        k++;
                }
        return k;
}

int sim_ci_create(struct sim_gpu *g, struct sim_gi *gi, uint32_t profile_id,
                  const struct gv_mig_placement *placement, struct sim_ci **ret,
                  struct gv_error **err)
{
        const struct gv_mig_ci_profile *cp = sim_ci_profile(g, gi, profile_id);
        struct gv_mig_placement pl[16];
        const struct gv_mig_placement *chosen = NULL;

        if (!cp)
                return gv_error_set(err, EINVAL, "GPU instance %u of GPU '%s' has no compute "
                                    "instance profile id %u.", gi->id, g->bdf, profile_id);
        size_t n = MIN(sim_ci_placements(g, gi, cp, pl, ELEMENTSOF(pl)), ELEMENTSOF(pl));
        for (size_t i = 0; i < n; i++) {
                if (placement && (pl[i].start != placement->start ||
                                  pl[i].size != placement->size))
                        continue;
                if (placement && !ci_placement_free(gi, cp, &pl[i]))
                        return gv_error_set(err, ENOSPC, "Compute placement %u:%u of GPU "
                                            "instance %u overlaps another compute instance.",
                                            pl[i].start, pl[i].size, gi->id);
                if (ci_placement_free(gi, cp, &pl[i])) {
                        chosen = &pl[i];
                        break;
                }
        }
        if (!chosen) {
                if (placement)
                        return gv_error_set(err, EINVAL, "Compute placement %u:%u is not valid "
                                            "for profile '%s'.", placement->start,
                                            placement->size, cp->name);
                return gv_error_set(err, ENOSPC, "GPU instance %u of GPU '%s' has no room for "
                                    "another '%s' compute instance.", gi->id, g->bdf, cp->name);
        }
        /* [I] CI ids: the lowest free id from 0 (nvidia-smi shows CI 0 first). */
        uint32_t id = 0;
        while (sim_ci_by_id(gi, id))
                id++;
        struct sim_ci *ci = &gi->cis[gi->n_cis++];
        ci->id = id;
        ci->profile_id = cp->id;
        ci->start = chosen->start;
        ci->size = chosen->size;
        if (ret)
                *ret = ci;
        return 0;
}

int sim_ci_destroy(struct sim_gi *gi, uint32_t ci_id)
{
        struct sim_ci *ci = sim_ci_by_id(gi, ci_id);
        if (!ci)
                return -ENOENT;
        size_t i = (size_t)(ci - gi->cis);
        memmove(&gi->cis[i], &gi->cis[i + 1], (gi->n_cis - i - 1) * sizeof(gi->cis[0]));
        gi->n_cis--;
        return 0;
}

/* ---- simulated load ----------------------------------------------------------------------- */

/* No libm: libgvsim is linked into programs that do not link it. A sine good to ~1e-6 is
 * plenty for load curves. */
#define SIM_PI 3.14159265358979323846

static double frac(double x)
{
        return x - (double)(long long)x;
}

static double sim_sin(double x)
{
        /* Reduce to [-pi, pi]. */
        double turns = x / (2.0 * SIM_PI);
        turns = frac(turns);
        if (turns < 0)
                turns += 1.0;
        x = turns * 2.0 * SIM_PI;
        if (x > SIM_PI)
                x -= 2.0 * SIM_PI;
        /* Reduce to [-pi/2, pi/2] by symmetry, then a Taylor series to x^11. */
        if (x > SIM_PI / 2)
                x = SIM_PI - x;
        else if (x < -SIM_PI / 2)
                x = -SIM_PI - x;
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n <= 5; n++) {
                term *= -x2 / ((2.0 * n) * (2.0 * n + 1.0));
                sum += term;
        }
        return sum;
}

static unsigned uround(double x)
{
        return x <= 0 ? 0 : (unsigned)(x + 0.5);
}

static double clamp01(double x)
{
        return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* The shared wave: a slow 5-minute sine and a faster 17-second one, phase-shifted by the
 * seed (golden-ratio spread so neighbouring seeds differ). Range 0..1. */
static double wave(double t, uint32_t seed, double slow_s, double fast_s)
{
        double phase = frac((double)seed * 0.6180339887498949) * 2.0 * SIM_PI;
        return clamp01(0.5 + 0.35 * sim_sin(2.0 * SIM_PI * t / slow_s + phase) +
                       0.15 * sim_sin(2.0 * SIM_PI * t / fast_s + 2.0 * phase));
}

double sim_now(void)
{
        const char *e = getenv("GPUVIRT_SIM_TIME");
        uint64_t sec;
        if (e && *e && gv_parse_u64(e, 10, &sec) >= 0)
                return (double)sec;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint32_t sim_gpu_power_max_mw(const struct sim_gpu *g)
{
        return g->model->power_max_mw ? g->model->power_max_mw : 300000;
}

static const char *const pin_kind_table[_SIM_PIN_KIND_MAX] = {
        [SIM_PIN_GPU] = "gpu",
        [SIM_PIN_VGPU] = "vgpu",
        [SIM_PIN_GI] = "gi",
};
DEFINE_STRING_TABLE_LOOKUP(sim_pin_kind, enum sim_pin_kind, pin_kind_table);

const struct sim_pin *sim_pin_find(const struct sim_state *s, enum sim_pin_kind kind,
                                   uint32_t gpu, uint32_t id)
{
        for (size_t i = 0; i < s->n_pins; i++) {
                const struct sim_pin *p = &s->pins[i];
                /* A vGPU instance is unique on the host: its pin ignores the GPU. */
                if (p->kind == kind && p->id == id && (kind == SIM_PIN_VGPU || p->gpu == gpu))
                        return p;
        }
        return NULL;
}

struct sim_pin *sim_pin_get(struct sim_state *s, enum sim_pin_kind kind, uint32_t gpu,
                            uint32_t id)
{
        struct sim_pin *p = (struct sim_pin *)sim_pin_find(s, kind, gpu, id);
        if (p)
                return p;
        if (s->n_pins >= SIM_MAX_PINS)
                return NULL;
        p = &s->pins[s->n_pins++];
        *p = (struct sim_pin){ .kind = kind, .gpu = gpu, .id = id };
        return p;
}

size_t sim_pins_clear(struct sim_state *s, int kind, int gpu)
{
        size_t k = 0, n = s->n_pins;
        for (size_t i = 0; i < n; i++) {
                const struct sim_pin *p = &s->pins[i];
                if ((kind < 0 || (int)p->kind == kind) && (gpu < 0 || (int64_t)p->gpu == gpu))
                        continue;
                s->pins[k++] = *p;
        }
        s->n_pins = k;
        return n - k;
}

void sim_gpu_load(const struct sim_state *s, const struct sim_gpu *g, double t,
                  struct sim_load *ret)
{
        double alloc = 0;
        uint64_t total = g->model->memory_mib;

        if (g->mig_current == NVML_DEVICE_MIG_ENABLE && g->model->mig_memory_slices) {
                uint32_t used = 0;
                for (size_t i = 0; i < g->n_gis; i++)
                        used += g->gis[i].size;
                alloc = (double)used / g->model->mig_memory_slices;
        }
        uint64_t fb = 0;
        for (size_t i = 0; i < s->n_vgpus; i++) {
                const struct gv_vgpu_type *vt;
                if (s->vgpus[i].gpu != g->index)
                        continue;
                vt = sim_gpu_vgpu_type(g, s->vgpus[i].type_id);
                fb += vt ? vt->framebuffer_mib : 0;
        }
        if (total)
                alloc = MAX(alloc, (double)fb / (double)total);
        alloc = clamp01(alloc);

        double w = wave(t, g->load_seed, 300.0, 17.0);
        double util = 3.0 + 2.0 * w + alloc * (55.0 + 40.0 * w);
        uint32_t power_max = sim_gpu_power_max_mw(g);

        ret->allocated = alloc;
        ret->gpu_util = uround(MIN(util, 100.0));
        ret->mem_reserved_mib = total / 100;
        ret->mem_used_mib = (uint64_t)((double)total * (0.01 + alloc * (0.35 + 0.6 * w)) + 0.5);
        ret->power_mw = uround((double)power_max *
                               clamp01(0.08 + 0.02 * w + alloc * (0.45 + 0.45 * w)));

        const struct sim_pin *pin = sim_pin_find(s, SIM_PIN_GPU, g->index, 0);
        unsigned pf = pin ? pin->fields : 0;
        if (pf & SIM_PIN_UTIL)
                ret->gpu_util = MIN(pin->util_pct, 100u);
        if (pf & SIM_PIN_MEM_USED)
                ret->mem_used_mib = pin->mem_used_mib;
        if (pf & SIM_PIN_POWER)
                ret->power_mw = pin->power_mw;
        ret->mem_util = uround(ret->gpu_util * 0.6);
        ret->mem_used_mib = MIN(MAX(ret->mem_used_mib, ret->mem_reserved_mib), total);
        ret->power_mw = MIN(ret->power_mw, power_max);

        /* Temperature follows the utilization (pinned or not), within 30-85 C. */
        double phase = frac((double)g->load_seed * 0.6180339887498949) * 2.0 * SIM_PI;
        double temp = 30.0 + ret->gpu_util * 0.5 + 3.0 * sim_sin(2.0 * SIM_PI * t / 600.0 + phase);
        ret->temperature_c = uround(MIN(MAX(temp, 30.0), 85.0));
        if (pf & SIM_PIN_TEMP)
                ret->temperature_c = MIN(MAX(pin->temperature_c, 30u), 85u);
}

static const struct sim_gpu *gpu_of_index(const struct sim_state *s, uint32_t index)
{
        for (size_t i = 0; i < s->n_gpus; i++)
                if (s->gpus[i].index == index)
                        return &s->gpus[i];
        return NULL;
}

void sim_gi_load(const struct sim_state *s, const struct sim_gpu *g, const struct sim_gi *gi,
                 double t, struct sim_gi_load *ret)
{
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        uint64_t total = p ? p->memory_mib : 0;
        bool busy = gi->n_cis > 0;
        const struct sim_vgpu *v = NULL;

        for (size_t i = 0; i < s->n_vgpus; i++)
                if (s->vgpus[i].gpu == g->index && s->vgpus[i].gi_id == gi->id)
                        v = &s->vgpus[i];
        busy = busy || v;
        /* Idle (no compute instance, no vGPU): 1 % (the driver's part). In use: its own wave,
         * the GPU's seed offset by the GI id (a prime apart, so neighbours differ). */
        double w = wave(t, g->load_seed + gi->id * 104729u, 270.0, 19.0);
        uint64_t used = busy ? (uint64_t)((double)total * (0.1 + 0.6 * w) + 0.5) : total / 100;
        const struct sim_pin *vp = v ? sim_pin_find(s, SIM_PIN_VGPU, g->index, v->instance) : NULL;
        const struct sim_pin *gp = sim_pin_find(s, SIM_PIN_GI, g->index, gi->id);
        if (vp && (vp->fields & SIM_PIN_MEM_USED))
                used = vp->mem_used_mib;
        if (gp && (gp->fields & SIM_PIN_MEM_USED))
                used = gp->mem_used_mib;
        ret->mem_total_mib = total;
        ret->mem_used_mib = MIN(used, total);
}

void sim_vgpu_load(const struct sim_state *s, const struct sim_vgpu *v, double t,
                   struct sim_vgpu_load *ret)
{
        memset(ret, 0, sizeof(*ret));
        const struct sim_gpu *g = gpu_of_index(s, v->gpu);
        if (!g)
                return;
        const struct gv_vgpu_type *vt = sim_gpu_vgpu_type(g, v->type_id);
        uint64_t fb = vt ? vt->framebuffer_mib : 0;
        /* Every vGPU is loaded from the moment it exists: on a simulated host QEMU gets a
         * stand-in device, so no VM ever opens the vGPU (vm_id stays ""). */
        double w = wave(t, g->load_seed + v->instance * 7919u, 240.0, 13.0);
        const struct sim_pin *pin = sim_pin_find(s, SIM_PIN_VGPU, v->gpu, v->instance);
        unsigned pf = pin ? pin->fields : 0;
        ret->sm = pf & SIM_PIN_UTIL ? MIN(pin->util_pct, 100u) : uround(10.0 + 85.0 * w);
        ret->mem = uround(ret->sm * 0.6);
        ret->enc = uround(5.0 * w);
        ret->dec = uround(8.0 * w);
        ret->fb_used_mib = (uint64_t)((double)fb * (0.2 + 0.7 * w) + 0.5);
        if (pf & SIM_PIN_MEM_USED)
                ret->fb_used_mib = MIN(pin->mem_used_mib, fb);
        /* A MIG-backed vGPU's framebuffer is its GPU instance's memory. */
        if (v->gi_id != INVALID_GPU_INSTANCE_ID)
                for (size_t i = 0; i < g->n_gis; i++)
                        if (g->gis[i].id == v->gi_id) {
                                struct sim_gi_load gl;
                                sim_gi_load(s, g, &g->gis[i], t, &gl);
                                ret->fb_used_mib = gl.mem_used_mib;
                        }
}
