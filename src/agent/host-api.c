/* SPDX-License-Identifier: MIT */
/*
 * host-api.c — this host and its GPUs through the agent (agent.h): the inventory with what QEMU
 * can do here, and GPU mode and MIG layout changes refused while a VM holds the GPU. (Metrics
 * are the sampler's: sampler.c.)
 */
#include <errno.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "host/host-json.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

json_t *gv_agent_host_json(struct gv_agent *a)
{
        json_t *j, *q = json_object();

        pthread_mutex_lock(&a->host_lock);
        for (size_t i = 0; i < a->host->n_gpus; i++)
                (void)gv_host_refresh_gpu(a->host, &a->host->gpus[i], NULL);
        j = gv_json_host(a->host);
        pthread_mutex_unlock(&a->host_lock);
        if (a->qemu.cpu_model) {
                char v[32];
                snprintf(v, sizeof(v), "%u.%u.%u", a->qemu.major, a->qemu.minor, a->qemu.micro);
                json_object_set_new(q, "version", json_string(v));
                json_object_set_new(q, "accel", json_string(gv_accel_to_string(a->qemu.accel)));
                json_object_set_new(q, "cpu_model", json_string(a->qemu.cpu_model));
                json_object_set_new(q, "reason", json_string(a->qemu.reason));
        } else {
                json_object_set_new(q, "error", json_string(a->qemu_error ? a->qemu_error : "?"));
        }
        json_object_set_new(j, "qemu", q);
        json_object_set_new(j, "simulated", json_boolean(a->simulated));
        {
                /* What VMs can have of this machine, for placement (the controller). A
                 * simulated host may say more than the machine running it has
                 * (GPUVIRT_SIM_CPUS, GPUVIRT_SIM_MEMORY_MIB: a simulated cluster of 8-GPU
                 * hosts on a 2-core machine; contrib/sim-cluster.sh); a value that does not
                 * parse is ignored. */
                struct sysinfo si;
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                const char *sc = a->simulated ? secure_getenv("GPUVIRT_SIM_CPUS") : NULL;
                const char *sm = a->simulated ? secure_getenv("GPUVIRT_SIM_MEMORY_MIB") : NULL;
                uint32_t n32;
                uint64_t n64;
                json_object_set_new(j, "cpus", json_integer(cpus > 0 ? cpus : 1));
                json_object_set_new(j, "memory_mib",
                                    sysinfo(&si) == 0
                                            ? json_integer((json_int_t)((uint64_t)si.totalram *
                                                                        si.mem_unit >> 20))
                                            : json_null());
                if (sc && gv_parse_u32(sc, 10, &n32) >= 0 && n32 > 0)
                        json_object_set_new(j, "cpus", json_integer(n32));
                if (sm && gv_parse_u64(sm, 10, &n64) >= 0 && n64 > 0 && n64 < (1ULL << 40))
                        json_object_set_new(j, "memory_mib", json_integer((json_int_t)n64));
        }
        if (a->problems) {
                json_t *p = json_array();
                STRV_FOREACH(s, a->problems)
                        json_array_append_new(p, json_string(*s));
                json_object_set_new(j, "state_problems", p);
        }
        return j;
}

/* Which VM holds hardware on GPU `bdf`, or NULL. */
static char *holder(struct gv_agent *a, const char *bdf)
{
        char *who = NULL;

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms && !who; i++)
                for (size_t k = 0; k < a->vms[i]->n_hw && !who; k++)
                        if (strcmp(a->vms[i]->hw[k].gpu, bdf) == 0)
                                who = xstrdup(a->vms[i]->config->name);
        pthread_mutex_unlock(&a->lock);
        return who;
}

/* The GPU a path names (/v1/gpus/{gpu}/...): one this host lacks is a resource not found
 * (404), not a device missing for a request (ENODEV, 409). */
static int gpu_resource(struct gv_agent *a, const char *gpu, struct gv_gpu **ret,
                        struct gv_error **err)
{
        int r = gv_host_find_gpu(a->host, gpu, ret, err);
        return r == -ENODEV ? -ENOENT : r;
}

int gv_agent_gpu_set_mode(struct gv_agent *a, const char *gpu, const char *mode,
                          struct gv_error **err)
{
        enum gv_gpu_mode m = gv_gpu_mode_from_string(mode);
        struct gv_gpu *g = NULL;
        int r;

        if ((int)m < 0 || m == GV_GPU_MODE_UNKNOWN) {
                _cleanup_free_ char *names = gv_gpu_mode_names();
                return gv_error_set(err, EINVAL, "'%s' is not a GPU mode; valid: %s.", mode, names);
        }
        pthread_mutex_lock(&a->host_lock);
        /* Before anything changes: on the first start the host is adopted as it is
         * (reconcile.c), and an unreadable host.json refuses the change. */
        r = gv_agent_hostcfg_load(a, err);
        if (r >= 0)
                r = gpu_resource(a, gpu, &g, err);
        if (r >= 0) {
                _cleanup_free_ char *who = holder(a, g->bdf);
                bool changed = false;
                /* The mode it has already: nothing changes, whoever uses it (a controller
                 * whose view of the host is a poll old asks again: alloc-race saw a create
                 * refused so while another VM ran on the GPU in that very mode). */
                if (g->mode == m)
                        ;
                else if (who)
                        r = gv_error_set(err, EBUSY, "GPU %s is in use by VM '%s'; stop it "
                                         "first.", g->bdf, who);
                else {
                        changed = true;
                        r = gv_gpu_set_mode(a->host, g, m, err);
                }
                /* The mode the administrator set is the host configuration the reconcile loop
                 * keeps; so is the MIG layout when the mode changed (none then). */
                if (r >= 0)
                        r = gv_agent_hostcfg_record(a, g, changed, err);
        }
        pthread_mutex_unlock(&a->host_lock);
        return r;
}

int gv_agent_gpu_mig_apply(struct gv_agent *a, const char *gpu, char *const *profiles,
                           char **ret_layout, struct gv_error **err)
{
        struct gv_gpu *g = NULL;
        int r;

        pthread_mutex_lock(&a->host_lock);
        r = gv_agent_hostcfg_load(a, err); /* as in gv_agent_gpu_set_mode() */
        if (r >= 0)
                r = gpu_resource(a, gpu, &g, err);
        if (r >= 0) {
                _cleanup_free_ char *who = holder(a, g->bdf);
                _cleanup_free_ char *layout = NULL;
                /* The layout call itself keeps instances a vGPU uses and refuses to destroy
                 * them; a VM holding the GPU whole is refused here. */
                if (who && g->mode != GV_GPU_MODE_MIG)
                        r = gv_error_set(err, EBUSY, "GPU %s is in use by VM '%s'.", g->bdf, who);
                else
                        r = gv_gpu_mig_apply(a->host, g, profiles, false, &layout, err);
                /* The instances it leaves (less those VMs own) are the host configuration. */
                if (r >= 0)
                        r = gv_agent_hostcfg_record(a, g, true, err);
                if (r >= 0 && ret_layout)
                        *ret_layout = TAKE_PTR(layout);
        }
        pthread_mutex_unlock(&a->host_lock);
        return r;
}
