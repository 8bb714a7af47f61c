/* SPDX-License-Identifier: MIT */
/*
 * sampler.c — the agent's metrics sampler (sampler.h, docs/agent.md "Metrics").
 *
 * The plan: one thread wakes every interval and builds one JSON sample:
 *   host  /proc/stat and /proc/meminfo (CPU % from the previous sample's ticks);
 *   vms   each VM's status as the agent would answer it (never waiting for an operation: a busy
 *         VM answers from its saved status), then its QEMU's /proc/PID/stat (every thread),
 *         /proc/PID/task/TID/stat of the threads named "CPU n/KVM|TCG" and VmRSS;
 *   gpus  every GPU's live values through src/host (gv_gpu_read_metrics) on the sampler's own
 *         gv_host: an inventory and vendor library handle only this thread touches, so the
 *         sampler never takes the agent's host lock and never holds up a VM operation. The
 *         inventory is re-read for a GPU when a VM holds hardware on it that the inventory
 *         does not show yet, after a failed read, and one GPU every few samples in turn.
 * Each vGPU and GPU instance is attributed to the VM whose recorded hardware names it.
 * The sample replaces the previous one under the sampler's own lock, a leaf in the agent's
 * lock order (agent.h): nothing else is taken while it is held.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/sampler.h"
#include "util/alloc.h"
#include "util/parse.h"
#include "util/strv.h"

/* ---- /proc parsing ------------------------------------------------------------------------- */

/* The next whitespace-separated unsigned number at *p; -EPROTO when there is none. */
static int next_u64(const char **p, uint64_t *ret)
{
        const char *s = *p;
        char buf[24];
        size_t n = 0;

        while (*s == ' ' || *s == '\t')
                s++;
        while (s[n] >= '0' && s[n] <= '9' && n < sizeof(buf) - 1) {
                buf[n] = s[n];
                n++;
        }
        if (!n)
                return -EPROTO;
        buf[n] = '\0';
        if (gv_parse_u64(buf, 10, ret) < 0)
                return -EPROTO;
        *p = s + n;
        return 0;
}

int gv_proc_parse_stat(const char *text, struct gv_proc_cpu *ret)
{
        struct gv_proc_cpu c = { 0 };
        bool found = false;

        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (strncmp(line, "cpu ", 4) == 0) {
                        /* user nice system idle iowait irq softirq steal [guest guest_nice] */
                        uint64_t v[8];
                        const char *p = line + 4;
                        for (size_t i = 0; i < 8; i++)
                                if (next_u64(&p, &v[i]) < 0) {
                                        if (i < 4)
                                                return -EPROTO;
                                        v[i] = 0; /* old kernels have fewer fields */
                                }
                        c.idle = v[3] + v[4];
                        for (size_t i = 0; i < 8; i++)
                                c.total += v[i];
                        found = true;
                } else if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
                        c.n_cpus++;
                }
        }
        if (!found)
                return -EPROTO;
        *ret = c;
        return 0;
}

/* "Key:   1234 kB" → 1234; -ENOENT when the key is absent. */
static int meminfo_field(const char *text, const char *key, uint64_t *ret)
{
        size_t kl = strlen(key);
        for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (strncmp(line, key, kl) != 0 || line[kl] != ':')
                        continue;
                const char *p = line + kl + 1;
                return next_u64(&p, ret);
        }
        return -ENOENT;
}

int gv_proc_parse_meminfo(const char *text, struct gv_proc_mem *ret)
{
        struct gv_proc_mem m;
        if (meminfo_field(text, "MemTotal", &m.total_kib) < 0 ||
            meminfo_field(text, "MemAvailable", &m.available_kib) < 0)
                return -EPROTO;
        *ret = m;
        return 0;
}

int gv_proc_parse_pid_stat(const char *text, struct gv_proc_task *ret)
{
        struct gv_proc_task t = { 0 };
        const char *open = strchr(text, '('), *close = strrchr(text, ')');
        uint64_t v;

        if (!open || !close || close < open)
                return -EPROTO;
        size_t n = (size_t)(close - open - 1);
        if (n >= sizeof(t.comm))
                n = sizeof(t.comm) - 1;
        memcpy(t.comm, open + 1, n);
        t.comm[n] = '\0';
        /* After ") ": state (a letter), then fields 4.. ; utime and stime are fields 14, 15. */
        const char *p = close + 1;
        while (*p == ' ')
                p++;
        if (!*p || *p == '\n')
                return -EPROTO;
        p++; /* the state */
        for (int field = 4; field <= 15; field++) {
                /* ppid, pgrp, session, tty_nr, tpgid may be negative (tpgid -1): skip a sign. */
                while (*p == ' ')
                        p++;
                if (*p == '-')
                        p++;
                if (next_u64(&p, &v) < 0)
                        return -EPROTO;
                if (field >= 14)
                        t.ticks += v;
        }
        *ret = t;
        return 0;
}

int gv_proc_parse_status_rss(const char *text, uint64_t *ret_kib)
{
        uint64_t v;
        int r = meminfo_field(text, "VmRSS", &v);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EPROTO;
        *ret_kib = v;
        return 0;
}

bool gv_proc_comm_is_vcpu(const char *comm)
{
        uint32_t n;
        char num[12];
        size_t k = 0;

        if (!gv_startswith(comm, "CPU "))
                return false;
        const char *p = comm + 4;
        while (p[k] >= '0' && p[k] <= '9' && k < sizeof(num) - 1) {
                num[k] = p[k];
                k++;
        }
        num[k] = '\0';
        if (!k || gv_parse_u32(num, 10, &n) < 0)
                return false;
        return strcmp(p + k, "/KVM") == 0 || strcmp(p + k, "/TCG") == 0;
}

/* Read a small file relative to dirfd into buf (NUL-terminated). */
static int read_at(int dirfd, const char *name, char *buf, size_t size)
{
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t n = 0;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        close(fd);
        buf[n] = '\0';
        return 0;
}

int gv_proc_read_usage(const char *proc_root, pid_t pid, struct gv_proc_usage *ret,
                       struct gv_error **err)
{
        struct gv_proc_usage u = { 0 };
        struct gv_proc_task t;
        char path[PATH_MAX], buf[8192];
        int r;

        snprintf(path, sizeof(path), "%s/%d", proc_root, (int)pid);
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return gv_error_set(err, ESRCH, "Process %d is gone ('%s': %m).", (int)pid, path);
        r = read_at(dfd, "stat", buf, sizeof(buf));
        if (r >= 0)
                r = gv_proc_parse_pid_stat(buf, &t) < 0 ? -EPROTO : 0;
        if (r < 0) {
                close(dfd);
                if (r == -EPROTO)
                        return gv_error_set(err, EPROTO, "'%s/stat' does not parse as a process's "
                                            "stat line.", path);
                return gv_error_set(err, ESRCH, "Process %d is gone ('%s/stat': %s).", (int)pid,
                                    path, strerror(-r));
        }
        u.ticks = t.ticks;
        if (read_at(dfd, "status", buf, sizeof(buf)) >= 0 &&
            gv_proc_parse_status_rss(buf, &u.rss_kib) >= 0)
                u.has_rss = true;

        int tfd = openat(dfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(dfd);
        DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
        if (!d) {
                if (tfd >= 0)
                        close(tfd);
        } else {
                struct dirent *de;
                while ((de = readdir(d))) {
                        char name[300];
                        uint32_t tid;
                        if (gv_parse_u32(de->d_name, 10, &tid) < 0)
                                continue;
                        snprintf(name, sizeof(name), "%s/stat", de->d_name);
                        /* A thread may end between readdir and open: not an error. */
                        if (read_at(dirfd(d), name, buf, sizeof(buf)) < 0 ||
                            gv_proc_parse_pid_stat(buf, &t) < 0)
                                continue;
                        u.n_threads++;
                        if (gv_proc_comm_is_vcpu(t.comm)) {
                                u.n_vcpu_threads++;
                                u.vcpu_ticks += t.ticks;
                        }
                }
                closedir(d);
        }
        *ret = u;
        return 0;
}

int gv_proc_read_host(const char *proc_root, struct gv_proc_cpu *ret_cpu,
                      struct gv_proc_mem *ret_mem, struct gv_error **err)
{
        char buf[65536];
        struct gv_proc_cpu c;
        struct gv_proc_mem m;
        int dfd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        if (dfd < 0)
                return gv_error_set(err, errno, "Cannot open the proc root '%s': %m.", proc_root);
        r = read_at(dfd, "stat", buf, sizeof(buf));
        if (r < 0 || gv_proc_parse_stat(buf, &c) < 0) {
                close(dfd);
                return gv_error_set(err, r < 0 ? -r : EPROTO, "'%s/stat' has no aggregate 'cpu' "
                                    "line%s%s.", proc_root, r < 0 ? ": " : "",
                                    r < 0 ? strerror(-r) : "");
        }
        r = read_at(dfd, "meminfo", buf, sizeof(buf));
        close(dfd);
        if (r < 0 || gv_proc_parse_meminfo(buf, &m) < 0)
                return gv_error_set(err, r < 0 ? -r : EPROTO, "'%s/meminfo' lacks MemTotal or "
                                    "MemAvailable%s%s.", proc_root, r < 0 ? ": " : "",
                                    r < 0 ? strerror(-r) : "");
        *ret_cpu = c;
        *ret_mem = m;
        return 0;
}

/* ---- the sampler --------------------------------------------------------------------------- */

/* A VM's CPU ticks in the previous sample, for rates. */
struct vm_prev {
        char *name;
        pid_t pid;
        uint64_t ticks, vcpu_ticks;
        int64_t mono_ns;
};

struct gv_sampler {
        struct gv_agent *agent;
        char *proc_root;
        int interval_ms;
        long hz;
        struct gv_host *host;        /* the sampler's own inventory: only its thread uses it */
        size_t refresh_next, ticks;
        pthread_t thread;
        bool running;
        pthread_mutex_t lock;        /* a leaf: latest, seq, stop */
        pthread_cond_t cond;         /* stop requested, or a first sample published */
        bool stop;
        json_t *latest;
        uint64_t seq;
        /* the thread's own */
        struct gv_proc_cpu prev_cpu;
        int64_t prev_cpu_ns;
        bool has_prev_cpu;
        struct vm_prev *prev;
        size_t n_prev;
};

/* Refresh one GPU of the sampler's inventory every this many samples, in turn. */
#define REFRESH_EVERY 5

static int64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A percentage with one decimal. */
static json_t *pct_json(double v)
{
        return json_real((double)(int64_t)(v * 10.0 + 0.5) / 10.0);
}

static json_t *u64_or_null(bool valid, uint64_t v)
{
        return valid ? json_integer((json_int_t)v) : json_null();
}

/* One VM as the sample sees it: from its status (never waiting for an operation on it). */
struct vm_snap {
        json_t *status; /* owned */
        const char *name, *phase;
        pid_t pid;      /* 0: no QEMU */
        json_t *hw;     /* borrowed from status */
};

static void snaps_free(struct vm_snap *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                json_decref(v[i].status);
        free(v);
}

static void snapshot_vms(struct gv_agent *a, struct vm_snap **ret, size_t *ret_n)
{
        _cleanup_strv_free_ char **names = NULL;
        struct vm_snap *v;
        size_t n = 0;

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms; i++)
                strv_extend(&names, a->vms[i]->config->name);
        pthread_mutex_unlock(&a->lock);
        if (names)
                strv_sort(names);
        v = xnew0(struct vm_snap, strv_length(names) + 1);
        STRV_FOREACH(name, names) {
                json_t *s = NULL, *pid;
                if (gv_agent_vm_status(a, *name, &s, NULL) < 0)
                        continue; /* deleted meanwhile */
                struct vm_snap *x = &v[n++];
                x->status = s;
                x->name = json_string_value(json_object_get(s, "name"));
                if (!x->name)
                        x->name = "";
                x->phase = json_string_value(json_object_get(s, "phase"));
                pid = json_object_get(s, "pid");
                x->pid = json_is_integer(pid) ? (pid_t)json_integer_value(pid) : 0;
                x->hw = json_object_get(s, "hw");
        }
        *ret = v;
        *ret_n = n;
}

static bool hw_is(const json_t *hw, const char *kind, const char *gpu)
{
        const char *k = json_string_value(json_object_get(hw, "kind"));
        const char *g = json_string_value(json_object_get(hw, "gpu"));
        return k && g && strcmp(k, kind) == 0 && strcmp(g, gpu) == 0;
}

static const char *hw_id(const json_t *hw)
{
        const char *id = json_string_value(json_object_get(hw, "id"));
        return id ? id : "";
}

static bool hw_gi(const json_t *hw, uint32_t *ret)
{
        json_t *gi = json_object_get(hw, "gi");
        if (!json_is_integer(gi) || json_integer_value(gi) < 0)
                return false;
        *ret = (uint32_t)json_integer_value(gi);
        return true;
}

/* Does vGPU `id` (an mdev UUID or a VF address) name this inventory vGPU? */
static bool vgpu_is(const char *id, const char *uuid, const char *parent)
{
        return (*uuid && strcasecmp(id, uuid) == 0) || (*parent && strcmp(id, parent) == 0);
}

/* Does the sampler's inventory of g show every piece of hardware the VMs hold on it? */
static bool inventory_current(const struct gv_gpu *g, const struct vm_snap *vms, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t k;
                json_t *hw;
                json_array_foreach(vms[i].hw, k, hw) {
                        uint32_t gi;
                        bool found = false;
                        if (hw_is(hw, "passthrough", g->bdf) && g->mode != GV_GPU_MODE_PASSTHROUGH)
                                return false;
                        if (hw_is(hw, "vgpu", g->bdf)) {
                                for (size_t j = 0; j < g->n_vgpus && !found; j++)
                                        found = vgpu_is(hw_id(hw), g->vgpus[j].uuid,
                                                        g->vgpus[j].parent_bdf);
                                if (!found)
                                        return false;
                        }
                        if (hw_is(hw, "mig-gi", g->bdf) && hw_gi(hw, &gi)) {
                                for (size_t j = 0; j < g->n_gis && !found; j++)
                                        found = g->gis[j].id == gi;
                                if (!found)
                                        return false;
                        }
                }
        }
        return true;
}

/* The VM holding vGPU (uuid, parent) or GPU instance gi of GPU bdf, or NULL. */
static const char *holder_of(const struct vm_snap *vms, size_t n, const char *bdf,
                             const struct gv_vgpu_metrics *v, const uint32_t *gi)
{
        for (size_t i = 0; i < n; i++) {
                size_t k;
                json_t *hw;
                json_array_foreach(vms[i].hw, k, hw) {
                        uint32_t x;
                        if (v && hw_is(hw, "vgpu", bdf) &&
                            vgpu_is(hw_id(hw), v->uuid, v->parent_bdf))
                                return vms[i].name;
                        if (gi && hw_is(hw, "mig-gi", bdf) && hw_gi(hw, &x) && x == *gi)
                                return vms[i].name;
                }
        }
        return NULL;
}

static const struct gv_mig_gi_info *gi_info(const struct gv_gpu *g, uint32_t id)
{
        for (size_t i = 0; i < g->n_gis; i++)
                if (g->gis[i].id == id)
                        return &g->gis[i];
        return NULL;
}

static json_t *vgpu_values(json_t *o, const struct gv_vgpu_metrics *v)
{
        json_object_set_new(o, "util_pct", u64_or_null(v->valid & GV_METRIC_UTIL, v->util_pct));
        json_object_set_new(o, "memory_util_pct",
                            u64_or_null(v->valid & GV_METRIC_MEM_UTIL, v->mem_util_pct));
        json_object_set_new(o, "encoder_pct", u64_or_null(v->valid & GV_METRIC_CODEC, v->enc_pct));
        json_object_set_new(o, "decoder_pct", u64_or_null(v->valid & GV_METRIC_CODEC, v->dec_pct));
        json_object_set_new(o, "memory_used_mib",
                            u64_or_null(v->valid & GV_METRIC_MEMORY, v->memory_used_mib));
        json_object_set_new(o, "memory_total_mib",
                            u64_or_null(v->valid & GV_METRIC_MEMORY, v->memory_total_mib));
        return o;
}

static json_t *mig_values(json_t *o, const struct gv_gpu *g, const struct gv_mig_metrics *x)
{
        const struct gv_mig_gi_info *gi = gi_info(g, x->gi_id);
        json_object_set_new(o, "gi", json_integer(x->gi_id));
        json_object_set_new(o, "profile", gi && gi->profile_name ? json_string(gi->profile_name)
                                                                 : json_null());
        json_object_set_new(o, "memory_used_mib",
                            u64_or_null(x->valid & GV_METRIC_MEMORY, x->memory_used_mib));
        json_object_set_new(o, "memory_total_mib", json_integer((json_int_t)x->memory_total_mib));
        json_object_set_new(o, "memory_source",
                            x->memory_source ? json_string(x->memory_source) : json_null());
        json_object_set_new(o, "util_pct", json_null());
        json_object_set_new(o, "util", json_string(x->util_unavailable));
        return o;
}

static json_t *gpu_json(const struct gv_gpu *g, const struct gv_gpu_metrics *m,
                        const struct vm_snap *vms, size_t n_vms)
{
        json_t *o = json_object(), *vg = json_array(), *mig = json_array();
        bool vis = !m->hidden;

        json_object_set_new(o, "gpu", json_string(g->bdf));
        json_object_set_new(o, "index", json_integer(g->index));
        json_object_set_new(o, "uuid", g->valid & GV_GPU_HAS_UUID ? json_string(g->uuid)
                                                                  : json_null());
        json_object_set_new(o, "model", g->model ? json_string(g->model) : json_null());
        json_object_set_new(o, "mode", json_string(gv_gpu_mode_to_string(g->mode)));
        json_object_set_new(o, "visible", json_boolean(vis));
        json_object_set_new(o, "visibility", json_string(vis ? "host driver" : m->hidden));
        json_object_set_new(o, "util_pct", u64_or_null(m->valid & GV_METRIC_UTIL, m->util_pct));
        json_object_set_new(o, "memory_util_pct",
                            u64_or_null(m->valid & GV_METRIC_MEM_UTIL, m->mem_util_pct));
        json_object_set_new(o, "memory_used_mib",
                            u64_or_null(m->valid & GV_METRIC_MEMORY, m->memory_used_mib));
        json_object_set_new(o, "memory_total_mib",
                            u64_or_null(m->valid & GV_METRIC_MEMORY, m->memory_total_mib));
        json_object_set_new(o, "power_mw", u64_or_null(m->valid & GV_METRIC_POWER, m->power_mw));
        json_object_set_new(o, "temperature_c", m->valid & GV_METRIC_TEMP
                                                        ? json_integer(m->temperature_c)
                                                        : json_null());
        for (size_t i = 0; i < m->n_vgpus; i++) {
                const struct gv_vgpu_metrics *v = &m->vgpus[i];
                const char *vm = holder_of(vms, n_vms, g->bdf, v, NULL);
                json_t *x = json_object();
                json_object_set_new(x, "uuid", json_string(v->uuid));
                json_object_set_new(x, "parent", *v->parent_bdf ? json_string(v->parent_bdf)
                                                                : json_null());
                json_object_set_new(x, "gi", v->gi_id != UINT32_MAX ? json_integer(v->gi_id)
                                                                    : json_null());
                json_object_set_new(x, "vm", vm ? json_string(vm) : json_null());
                json_array_append_new(vg, vgpu_values(x, v));
        }
        for (size_t i = 0; i < m->n_migs; i++) {
                const char *vm = holder_of(vms, n_vms, g->bdf, NULL, &m->migs[i].gi_id);
                json_t *x = json_object();
                json_object_set_new(x, "vm", vm ? json_string(vm) : json_null());
                json_array_append_new(mig, mig_values(x, g, &m->migs[i]));
        }
        json_object_set_new(o, "vgpus", vg);
        json_object_set_new(o, "mig", mig);
        if (m->error)
                json_object_set_new(o, "error", json_string(m->error));
        return o;
}

static const struct gv_vgpu_metrics *find_vgpu(const struct gv_gpu_metrics *m, const char *id)
{
        for (size_t i = 0; m && i < m->n_vgpus; i++)
                if (vgpu_is(id, m->vgpus[i].uuid, m->vgpus[i].parent_bdf))
                        return &m->vgpus[i];
        return NULL;
}

/* The VM's GPUs with their live values: one entry per pass-through GPU, per time-sliced vGPU
 * and per GPU instance (the MIG-backed vGPU on it folded in). */
static json_t *vm_gpus_json(const struct vm_snap *vm, struct gv_host *h,
                            const struct gv_gpu_metrics *ms)
{
        json_t *out = json_array(), *hw;
        size_t k;

        json_array_foreach(vm->hw, k, hw) {
                const char *kind = json_string_value(json_object_get(hw, "kind"));
                const char *bdf = json_string_value(json_object_get(hw, "gpu"));
                const struct gv_gpu_metrics *m = NULL;
                const struct gv_gpu *g = NULL;
                json_t *o;
                uint32_t gi;

                if (!kind || !bdf || strcmp(kind, "tap") == 0)
                        continue;
                for (size_t i = 0; i < h->n_gpus; i++)
                        if (strcmp(h->gpus[i].bdf, bdf) == 0) {
                                g = &h->gpus[i];
                                m = &ms[i];
                        }
                o = json_object();
                json_object_set_new(o, "gpu", json_string(bdf));
                if (strcmp(kind, "passthrough") == 0) {
                        json_object_set_new(o, "mode", json_string("passthrough"));
                        json_object_set_new(o, "visibility",
                                            json_string(m && m->hidden
                                                                ? m->hidden
                                                                : GV_GPU_HIDDEN_PASSTHROUGH));
                        json_object_set_new(o, "util_pct", json_null());
                        json_object_set_new(o, "memory_used_mib", json_null());
                        json_object_set_new(o, "memory_total_mib", json_null());
                } else if (strcmp(kind, "mig-gi") == 0 && hw_gi(hw, &gi)) {
                        const struct gv_mig_metrics *x = NULL;
                        for (size_t i = 0; m && i < m->n_migs; i++)
                                if (m->migs[i].gi_id == gi)
                                        x = &m->migs[i];
                        json_object_set_new(o, "mode", json_string("mig-vgpu"));
                        if (x && g)
                                mig_values(o, g, x);
                        else {
                                json_object_set_new(o, "gi", json_integer(gi));
                                json_object_set_new(o, "memory_used_mib", json_null());
                                json_object_set_new(o, "util_pct", json_null());
                                json_object_set_new(o, "util",
                                                    json_string(GV_MIG_UTIL_UNAVAILABLE));
                        }
                } else if (strcmp(kind, "vgpu") == 0) {
                        const struct gv_vgpu_metrics *v = find_vgpu(m, hw_id(hw));
                        /* A MIG-backed vGPU is reported with its GPU instance. */
                        if (v && v->gi_id != UINT32_MAX) {
                                json_decref(o);
                                continue;
                        }
                        json_object_set_new(o, "mode", json_string("vgpu"));
                        json_object_set_new(o, "id", json_string(hw_id(hw)));
                        json_object_set_new(o, "uuid", v ? json_string(v->uuid) : json_null());
                        if (v)
                                vgpu_values(o, v);
                        else {
                                json_object_set_new(o, "util_pct", json_null());
                                json_object_set_new(o, "memory_used_mib", json_null());
                        }
                } else {
                        json_decref(o);
                        continue;
                }
                json_array_append_new(out, o);
        }
        return out;
}

static struct vm_prev *prev_find(struct gv_sampler *s, const char *name, pid_t pid)
{
        for (size_t i = 0; i < s->n_prev; i++)
                if (s->prev[i].pid == pid && strcmp(s->prev[i].name, name) == 0)
                        return &s->prev[i];
        return NULL;
}

static void prev_free(struct vm_prev *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(p[i].name);
        free(p);
}

static json_t *vm_json(struct gv_sampler *s, const struct vm_snap *vm, int64_t now_ns,
                       struct vm_prev *next, size_t *n_next)
{
        json_t *o = json_object(), *cpu = json_object(), *mem = json_object();
        json_t *config = json_object_get(vm->status, "config");
        json_t *vcpus = json_object_get(config, "vcpus");
        json_t *memory = json_object_get(config, "memory_mib");
        struct gv_proc_usage u = { 0 };
        bool have = vm->pid > 0 && gv_proc_read_usage(s->proc_root, vm->pid, &u, NULL) >= 0;
        const struct vm_prev *p = have ? prev_find(s, vm->name, vm->pid) : NULL;
        double dt = p ? (double)(now_ns - p->mono_ns) / 1e9 : 0;
        bool rate = p && dt > 0 && u.ticks >= p->ticks && u.vcpu_ticks >= p->vcpu_ticks;
        double hz = (double)s->hz;

        json_object_set_new(o, "vm", json_string(vm->name));
        json_object_set_new(o, "phase", vm->phase ? json_string(vm->phase) : json_null());
        json_object_set_new(o, "pid", have ? json_integer(vm->pid) : json_null());
        /* % of one core: ticks / hz is CPU seconds, over the seconds between the samples. */
        json_object_set_new(cpu, "util_pct",
                            rate ? pct_json(100.0 * (double)(u.ticks - p->ticks) / hz / dt)
                                 : json_null());
        json_object_set_new(cpu, "vcpu_util_pct",
                            rate ? pct_json(100.0 * (double)(u.vcpu_ticks - p->vcpu_ticks) / hz /
                                            dt)
                                 : json_null());
        json_object_set_new(cpu, "seconds", have ? json_real((double)u.ticks / hz) : json_null());
        json_object_set_new(cpu, "vcpus", json_is_integer(vcpus) ? json_incref(vcpus)
                                                                 : json_null());
        json_object_set_new(cpu, "vcpu_threads", have ? json_integer(u.n_vcpu_threads)
                                                      : json_null());
        json_object_set_new(cpu, "threads", have ? json_integer(u.n_threads) : json_null());
        json_object_set_new(mem, "configured_mib", json_is_integer(memory) ? json_incref(memory)
                                                                           : json_null());
        json_object_set_new(mem, "rss_mib", have && u.has_rss
                                                    ? json_integer((json_int_t)(u.rss_kib / 1024))
                                                    : json_null());
        /* "balloon_mib" only for a VM with a balloon device: gpuvirt's VMs have none (yet). */
        json_object_set_new(o, "cpu", cpu);
        json_object_set_new(o, "memory", mem);
        if (have) {
                next[*n_next] = (struct vm_prev){ .name = xstrdup(vm->name), .pid = vm->pid,
                                                  .ticks = u.ticks, .vcpu_ticks = u.vcpu_ticks,
                                                  .mono_ns = now_ns };
                (*n_next)++;
        }
        return o;
}

static json_t *host_json(struct gv_sampler *s, int64_t now_ns)
{
        json_t *o = json_object(), *cpu = json_object(), *mem = json_object();
        struct gv_proc_cpu c;
        struct gv_proc_mem m;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_read_host(s->proc_root, &c, &m, &e);

        if (r < 0) {
                json_object_set_new(o, "error", json_string(gv_error_msg(e, r)));
                json_object_set_new(cpu, "util_pct", json_null());
                json_object_set_new(mem, "total_mib", json_null());
        } else {
                uint64_t dt = s->has_prev_cpu ? c.total - s->prev_cpu.total : 0;
                bool rate = s->has_prev_cpu && c.total > s->prev_cpu.total &&
                            c.idle >= s->prev_cpu.idle && c.idle - s->prev_cpu.idle <= dt;
                json_object_set_new(cpu, "cpus", json_integer(c.n_cpus));
                /* Busy share of all CPUs between the two samples. */
                json_object_set_new(cpu, "util_pct",
                                    rate ? pct_json(100.0 * (double)(dt - (c.idle -
                                                                           s->prev_cpu.idle)) /
                                                    (double)dt)
                                         : json_null());
                json_object_set_new(mem, "total_mib", json_integer((json_int_t)(m.total_kib >> 10)));
                json_object_set_new(mem, "available_mib",
                                    json_integer((json_int_t)(m.available_kib >> 10)));
                json_object_set_new(mem, "used_mib",
                                    json_integer((json_int_t)((m.total_kib -
                                                               MIN(m.available_kib,
                                                                   m.total_kib)) >> 10)));
                s->prev_cpu = c;
                s->prev_cpu_ns = now_ns;
                s->has_prev_cpu = true;
        }
        json_object_set_new(o, "cpu", cpu);
        json_object_set_new(o, "memory", mem);
        return o;
}

static json_t *take_sample(struct gv_sampler *s)
{
        struct gv_agent *a = s->agent;
        struct gv_host *h = s->host;
        struct vm_snap *vms = NULL;
        size_t n_vms = 0;
        int64_t t0 = mono_ns();
        int64_t ts = realtime_ms();
        json_t *j = json_object(), *gpus = json_array(), *jvms = json_array();

        snapshot_vms(a, &vms, &n_vms);
        json_object_set_new(j, "host", host_json(s, t0));

        struct gv_gpu_metrics *ms = xnew0(struct gv_gpu_metrics, h->n_gpus + 1);
        bool rr = s->ticks++ % REFRESH_EVERY == 0 && h->n_gpus;
        for (size_t i = 0; i < h->n_gpus; i++) {
                struct gv_gpu *g = &h->gpus[i];
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                bool turn = rr && s->refresh_next % h->n_gpus == i;
                if (turn || !inventory_current(g, vms, n_vms))
                        (void)gv_host_refresh_gpu(h, g, NULL);
                int r = gv_gpu_read_metrics(h, g, &ms[i], &e);
                if (r < 0) {
                        snprintf(ms[i].bdf, sizeof(ms[i].bdf), "%s", g->bdf);
                        ms[i].error = xstrdup(gv_error_msg(e, r));
                }
                if (ms[i].error && !turn) {
                        /* The inventory may be behind (a mode changed): read it again for the
                         * next sample. */
                        (void)gv_host_refresh_gpu(h, g, NULL);
                }
                json_array_append_new(gpus, gpu_json(g, &ms[i], vms, n_vms));
        }
        if (rr)
                s->refresh_next++;

        int64_t now = mono_ns();
        struct vm_prev *next = xnew0(struct vm_prev, n_vms + 1);
        size_t n_next = 0;
        for (size_t i = 0; i < n_vms; i++) {
                json_t *o = vm_json(s, &vms[i], now, next, &n_next);
                json_object_set_new(o, "gpus", vm_gpus_json(&vms[i], h, ms));
                json_array_append_new(jvms, o);
        }
        prev_free(s->prev, s->n_prev);
        s->prev = next;
        s->n_prev = n_next;

        for (size_t i = 0; i < h->n_gpus; i++)
                gv_gpu_metrics_done(&ms[i]);
        free(ms);
        snaps_free(vms, n_vms);

        json_object_set_new(j, "timestamp_ms", json_integer(ts));
        json_object_set_new(j, "interval_ms", json_integer(s->interval_ms));
        json_object_set_new(j, "duration_us", json_integer((mono_ns() - t0) / 1000));
        json_object_set_new(j, "gpus", gpus);
        json_object_set_new(j, "vms", jvms);
        return j;
}

static void *run(void *userdata)
{
        struct gv_sampler *s = userdata;
        struct timespec next;

        clock_gettime(CLOCK_MONOTONIC, &next);
        for (;;) {
                json_t *j = take_sample(s), *old;

                pthread_mutex_lock(&s->lock);
                json_object_set_new(j, "seq", json_integer((json_int_t)++s->seq));
                old = s->latest;
                s->latest = j;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                json_decref(old);

                /* The next sample on the interval's grid; after a slow sample, at once. */
                next.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
                next.tv_sec += s->interval_ms / 1000 + next.tv_nsec / 1000000000L;
                next.tv_nsec %= 1000000000L;
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > next.tv_sec ||
                    (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
                        next = now;

                pthread_mutex_lock(&s->lock);
                while (!s->stop &&
                       pthread_cond_timedwait(&s->cond, &s->lock, &next) != ETIMEDOUT)
                        ;
                bool stop = s->stop;
                pthread_mutex_unlock(&s->lock);
                if (stop)
                        break;
        }
        return NULL;
}

int gv_sampler_start(struct gv_agent *a, struct gv_sampler **ret, struct gv_error **err)
{
        struct gv_sampler *s = xnew0(struct gv_sampler, 1);
        struct gv_host_config hc = { .sysfs_root = a->host->config.sysfs_root,
                                     .nvml_library = a->host->config.nvml_library };
        pthread_condattr_t ca;
        int r;

        s->agent = a;
        s->proc_root = xstrdup(a->cfg.proc_root ? a->cfg.proc_root : "/proc");
        s->interval_ms = a->cfg.sample_interval_ms > 0 ? a->cfg.sample_interval_ms
                                                       : GV_SAMPLER_INTERVAL_DEFAULT_MS;
        s->interval_ms = MAX(s->interval_ms, GV_SAMPLER_INTERVAL_MIN_MS);
        s->hz = sysconf(_SC_CLK_TCK);
        if (s->hz <= 0)
                s->hz = 100;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);

        r = gv_host_open(&hc, &s->host, err);
        if (r < 0) {
                r = gv_error_wrap(err, r, "The metrics sampler cannot read the host");
                goto fail;
        }
        r = pthread_create(&s->thread, NULL, run, s);
        if (r) {
                r = gv_error_set(err, r, "Cannot start the metrics sampler thread: %s.",
                                 strerror(r));
                goto fail;
        }
        /* Named, so its CPU can be told apart in /proc/PID/task (bench-sampler reads it). */
        (void)pthread_setname_np(s->thread, "gv-sampler");
        s->running = true;
        *ret = s;
        return 0;
fail:
        gv_sampler_stop(s);
        return r;
}

struct gv_sampler *gv_sampler_stop(struct gv_sampler *s)
{
        if (!s)
                return NULL;
        if (s->running) {
                pthread_mutex_lock(&s->lock);
                s->stop = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
        }
        gv_host_free(s->host);
        json_decref(s->latest);
        prev_free(s->prev, s->n_prev);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->proc_root);
        free(s);
        return NULL;
}

json_t *gv_sampler_latest(struct gv_sampler *s, int timeout_ms)
{
        struct timespec until;
        json_t *j = NULL;

        if (!s)
                return NULL;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&s->lock);
        while (!s->latest && !s->stop &&
               pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
                ;
        if (s->latest)
                j = json_deep_copy(s->latest);
        pthread_mutex_unlock(&s->lock);
        return j;
}

json_t *gv_agent_metrics(struct gv_agent *a)
{
        return gv_sampler_latest(a->sampler, 10000);
}
