/* SPDX-License-Identifier: MIT */
/*
 * top-model.h — what `gpuvirt top` shows, without a terminal: the controller's latest metrics
 * (GET /api/v1/metrics, docs/api.md "Metrics"), its host list and its VM list turned into rows
 * of hosts, GPUs and VMs, sorted by a key, and rendered as plain text lines of a given width
 * (the --batch frames; the ncurses screen draws the same lines with attributes).
 *
 * A value the metrics do not have is unknown, never 0: its row keeps why (a pass-through GPU
 * the host driver cannot see, a MIG slice whose utilization the GPU does not report, a host
 * whose agent does not answer) and the text shows that reason or "-".
 */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/macro.h"

enum gv_top_sort {
        GV_TOP_SORT_CPU,
        GV_TOP_SORT_MEMORY,
        GV_TOP_SORT_GPU,
        GV_TOP_SORT_NAME,
        _GV_TOP_SORT_MAX,
        _GV_TOP_SORT_INVALID = -EINVAL,
};
const char *gv_top_sort_to_string(enum gv_top_sort s);
enum gv_top_sort gv_top_sort_from_string(const char *s);
/* "cpu, memory, gpu, name" (new string) for messages. */
char *gv_top_sort_list(void);

enum gv_top_section {
        GV_TOP_HOSTS,
        GV_TOP_GPUS,
        GV_TOP_VMS,
        _GV_TOP_SECTION_MAX,
};

/* One number that may be unknown; why (static or owned by the model) says why when set. */
struct gv_top_value {
        bool known;
        double v;
        const char *why; /* "n/a: passthrough", "n/a: MIG", "down"; NULL prints "-" */
};

struct gv_top_host {
        char *name;
        char *state;               /* the host list's "up", "down", "draining", ...; or NULL */
        char *error;               /* the metrics' "error": why there are no values; or NULL */
        struct gv_top_value cpus;  /* CPUs the agent counts */
        struct gv_top_value cpu;   /* % of all CPUs */
        struct gv_top_value mem_used_mib, mem_total_mib;
        struct gv_top_value gpu;   /* mean utilization of the GPUs whose value is known */
        unsigned n_gpus, n_gpus_known, n_vms;
};

struct gv_top_gpu {
        char *host;
        char *pci;
        int index;                 /* -1: not given */
        char *model, *mode;
        struct gv_top_value util, mem_used_mib, mem_total_mib, power_w, temperature_c;
        char *users;               /* "v1 m1" (VMs on it, by name), or NULL */
};

struct gv_top_vm {
        char *name, *host, *state;
        char *mode;                /* "vgpu H100XM-20C", "passthrough", "mig-vgpu X + vgpu Y" */
        struct gv_top_value cpu;   /* QEMU's CPU, % of one core */
        struct gv_top_value vcpus;
        struct gv_top_value mem_rss_mib, mem_total_mib;
        struct gv_top_value gpu_util;   /* mean of the slices whose utilization is known */
        struct gv_top_value gpu_mem_used_mib, gpu_mem_total_mib;
        unsigned n_gpus;
};

struct gv_top_model {
        int64_t timestamp_ms;      /* of the metrics round; 0: not given */
        uint32_t interval_ms;      /* the controller's collection interval; 0: not given */
        struct gv_top_host *hosts;
        size_t n_hosts;
        struct gv_top_gpu *gpus;
        size_t n_gpus;
        struct gv_top_vm *vms;
        size_t n_vms;
        /* cluster totals for the header */
        unsigned hosts_up, vms_running;
        struct gv_top_value cpu, mem_used_mib, mem_total_mib, gpu_util;
        unsigned gpus_known;
};

struct gv_top_model *gv_top_model_free(struct gv_top_model *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_top_model *, gv_top_model_free);

/* Build the rows from GET /api/v1/metrics (required) and, when not NULL, GET /api/v1/hosts
 * (host states; hosts without metrics) and GET /api/v1/vms (VM states; VMs the metrics do not
 * show, such as stopped ones; modes before the first sample). A metrics document that is not an
 * object with "hosts" and "vms" arrays is -EINVAL naming what is missing. Rows come sorted by
 * name; call gv_top_model_sort for another key. */
int gv_top_model_build(const json_t *metrics, const json_t *hosts, const json_t *vms,
                       struct gv_top_model **ret, struct gv_error **err);

/* Sort every section by key: cpu, memory and gpu descending (a GPU row's cpu order is host and
 * index), unknown values after every known one, ties and name ascending by name (GPUs by host
 * and index). */
void gv_top_model_sort(struct gv_top_model *m, enum gv_top_sort key);

/* ---- rendering ---- */

enum gv_top_line_kind {
        GV_TOP_LINE_HEADER,  /* the cluster totals */
        GV_TOP_LINE_TITLE,   /* "HOSTS (2, sorted by cpu)" */
        GV_TOP_LINE_COLUMNS, /* column names */
        GV_TOP_LINE_ROW,
        GV_TOP_LINE_BLANK,
};

/* One rendered line: text (ASCII, at most the width asked), marks the same length where 'b'
 * marks a bar's filled cell and ' ' anything else, and the section it belongs to. */
struct gv_top_line {
        enum gv_top_line_kind kind;
        int section; /* enum gv_top_section, or -1 for the header */
        char *text;
        char *marks;
};

struct gv_top_frame {
        struct gv_top_line *lines;
        size_t n_lines;
};

void gv_top_frame_done(struct gv_top_frame *f);

/* Narrowest width the columns fit in; below it gv_top_render refuses (-ERANGE). */
#define GV_TOP_MIN_WIDTH 80u
#define GV_TOP_MAX_WIDTH 400u

/* Render m (already sorted by sort, which the titles name) as lines of at most width
 * characters: the header, then each section's title, column names and rows. clock is the
 * header's time of day text ("12:00:01"; NULL leaves it out). */
int gv_top_render(const struct gv_top_model *m, enum gv_top_sort sort, unsigned width,
                  const char *clock, struct gv_top_frame *ret, struct gv_error **err);

/* "0.5", "2", "10.25" seconds → milliseconds; from 0.1 s to 3600 s, at most 3 decimals;
 * anything else is -EINVAL. */
int gv_top_parse_interval(const char *s, uint32_t *ret_ms);
