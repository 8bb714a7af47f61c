/* SPDX-License-Identifier: MIT */
/*
 * failpoint.h — named crash points for the reliability tests (docs/reliability.md, "Crash
 * consistency"; reliability.md R2, etcd's gofail [S45]).
 *
 * GV_FAILPOINT("vm.create.reserved") marks a persisted step of a multi-step operation. A point is
 * inert unless the environment variable GPUVIRT_FAILPOINTS names it; the list is parsed once, on
 * the first point reached, and an unarmed point then costs one relaxed atomic load.
 *
 *   GPUVIRT_FAILPOINTS="NAME=ACTION[;NAME=ACTION...]"   (',' separates too)
 *
 * NAME is `<operation>.<step>`, or a prefix ending in '*' ("vm.create.*", "*").
 * ACTION is one of
 *   kill            raise SIGKILL at the first hit
 *   kill@N          raise SIGKILL at the N-th hit (N >= 1)
 *   sleep:MS        sleep MS milliseconds at every hit (widens a window for random kills)
 *   off             nothing (a way to switch one point of a '*' list off)
 * The first entry that matches a name decides. Before a kill the point writes one line
 * "gpuvirt failpoint 'NAME' fired: kill" to stderr, so that a test can tell a failpoint's kill
 * from any other death. A malformed list is reported once on stderr and arms nothing.
 */
#pragma once

#include <stdatomic.h>

/* 0: inert, 1: not parsed yet, 2: armed. */
extern atomic_int gv_failpoint_state;

void gv_failpoint_hit(const char *name);

/* Re-reads GPUVIRT_FAILPOINTS (tests only; not thread-safe against concurrent hits). */
void gv_failpoint_reset(void);

/* Hits counted so far for NAME (tests). */
unsigned gv_failpoint_hits(const char *name);

#define GV_FAILPOINT(name)                                                                  \
        do {                                                                                \
                if (__builtin_expect(atomic_load_explicit(&gv_failpoint_state,              \
                                                          memory_order_relaxed) != 0, 0))   \
                        gv_failpoint_hit(name);                                             \
        } while (0)
