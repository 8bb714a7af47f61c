/* SPDX-License-Identifier: MIT */
/*
 * sampler.h — the agent's metrics sampler (docs/agent.md, "Metrics"): a thread that every
 * interval reads the host's CPU and memory (/proc), each VM's QEMU (CPU of the process and of its
 * vCPU threads, RSS) and every GPU's live values (through src/host, its own inventory and vendor
 * library handle, so it never waits for the agent's host lock), and keeps the latest sample in
 * memory for GET /v1/metrics.
 *
 * The /proc readers take a proc root ("/proc" on a host; a directory of fixture files in tests),
 * the way the hardware layer takes a sysfs root. The parsers are pure (text in, numbers out).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

/* ---- /proc parsing ---- */

/* The aggregate "cpu" line of /proc/stat: clock ticks over every CPU. idle counts idle and
 * iowait; total also user, nice, system, irq, softirq and steal (guest time is inside user). */
struct gv_proc_cpu {
        uint64_t total, idle;
        unsigned n_cpus; /* "cpuN" lines */
};
int gv_proc_parse_stat(const char *text, struct gv_proc_cpu *ret);

/* /proc/meminfo: MemTotal and MemAvailable (KiB). -EPROTO when either is missing. */
struct gv_proc_mem {
        uint64_t total_kib, available_kib;
};
int gv_proc_parse_meminfo(const char *text, struct gv_proc_mem *ret);

/* /proc/PID/stat or /proc/PID/task/TID/stat: the command name (it may hold spaces and
 * parentheses: everything between the first '(' and the last ')') and utime + stime. */
struct gv_proc_task {
        char comm[64];
        uint64_t ticks;
};
int gv_proc_parse_pid_stat(const char *text, struct gv_proc_task *ret);

/* /proc/PID/status: VmRSS in KiB. -ENOENT when absent (a zombie has none). */
int gv_proc_parse_status_rss(const char *text, uint64_t *ret_kib);

/* Is this thread name one of QEMU's vCPU threads ("CPU 0/KVM", "CPU 12/TCG"; QEMU names them
 * so with -name debug-threads=on, which gpuvirt always passes)? */
bool gv_proc_comm_is_vcpu(const char *comm);

/* One process under proc_root: its CPU ticks (every thread, from PROC/PID/stat), those of its
 * vCPU threads (PROC/PID/task/TID/stat, named as above) and its RSS. -ESRCH when it is gone. */
struct gv_proc_usage {
        uint64_t ticks, vcpu_ticks;
        unsigned n_threads, n_vcpu_threads;
        uint64_t rss_kib;
        bool has_rss;
};
int gv_proc_read_usage(const char *proc_root, pid_t pid, struct gv_proc_usage *ret,
                       struct gv_error **err);
/* PROC/stat and PROC/meminfo. */
int gv_proc_read_host(const char *proc_root, struct gv_proc_cpu *ret_cpu,
                      struct gv_proc_mem *ret_mem, struct gv_error **err);

/* ---- the sampler ---- */

#define GV_SAMPLER_INTERVAL_DEFAULT_MS 1000
#define GV_SAMPLER_INTERVAL_MIN_MS 100
#define GV_SAMPLER_INTERVAL_MAX_MS 3600000

struct gv_agent;
struct gv_sampler;

/* Open the sampler's own view of the host (inventory and vendor library) and start its thread;
 * the first sample is taken at once. */
int gv_sampler_start(struct gv_agent *a, struct gv_sampler **ret, struct gv_error **err);
/* Stop the thread and free. Accepts NULL; returns NULL. */
struct gv_sampler *gv_sampler_stop(struct gv_sampler *s);
/* A copy of the latest sample; waits (at most timeout_ms) for the first. NULL when none. */
json_t *gv_sampler_latest(struct gv_sampler *s, int timeout_ms);
