/* SPDX-License-Identifier: MIT */
/*
 * common.h — what the benchmarks that drive gpuvirtd share: failing with a message, usage
 * errors, the tail of a daemon's log in a failure report, the machine line of their reports.
 */
#pragma once

#include <jansson.h>

#include "util/macro.h"

/* "PROG: message" on stderr; returns -EIO. */
int bench_fail(const char *prog, const char *fmt, ...) _printf_(2, 3);
/* "PROG: message" and "Run 'PROG --help' for usage." on stderr; returns 2. */
int bench_usage_error(const char *prog, const char *fmt, ...) _printf_(2, 3);
/* An option's whole number from lo to hi: 0 and *ret, or the usage error (2) naming `opt`
 * ("--vms") and the range. */
int bench_parse_uint(const char *prog, const char *opt, const char *arg, unsigned lo,
                     unsigned hi, unsigned *ret);
/* The last `max` bytes of a log file (e.g. a daemon's) on stderr, framed; nothing when empty. */
void bench_print_log_tail(const char *what, const char *path, size_t max);
/* The gpuvirtd a benchmark runs: `given` (its --daemon), else $ENV_VAR, else `built`. */
const char *bench_daemon_path(const char *given, const char *env_var, const char *built);
/* What a benchmark needs before it starts: `files` as (label, path) pairs, NULL-terminated,
 * each executable, and `progs` (NULL-terminated) in PATH. 0, or 77 (skipped) after a
 * "skipped: ..." line on stdout that names the first thing missing and says how to fix it. */
int bench_need(const char *const *files, const char *const *progs);
/* "machine: N CPUs online (MODEL), Linux RELEASE ARCH" on stdout. */
void bench_print_machine(void);
/* One request (header: one extra "Name: value" line, or NULL); fails unless the status is
 * `want`, quoting the body. *ret_json (may be NULL) gets the body as JSON (NULL when empty). */
int bench_call(const char *prog, const char *endpoint, const char *method, const char *path,
               const char *body, const char *header, int want, int timeout_ms,
               json_t **ret_json);
