/* SPDX-License-Identifier: MIT */
/* format.h — the short cells the tables show for a GPU. All return new strings. */
#pragma once

#include <jansson.h>

#include "host/host.h"

char *gv_fmt_gpu_use(const struct gv_gpu *g);    /* "3g.40gb · 1g.10gb · 3 slices free" */
char *gv_fmt_gpu_memory(const struct gv_gpu *g); /* "52/80 GiB", "n/a (in guest)" */
char *gv_fmt_gpu_util(const struct gv_gpu *g);   /* "61%", "—" */
char *gv_fmt_mib(uint64_t mib);                  /* "20 GiB", "512 MiB" */
/* Print j to stdout (sorted keys, 2-space indent) and release it. */
void gv_json_print(json_t *j);
