/* SPDX-License-Identifier: MIT */
/* json-out.h — the --json shapes of the host model (stable keys, null for unknown values). */
#pragma once

#include <jansson.h>

#include "host/host.h"

json_t *gv_json_host(const struct gv_host *h);
json_t *gv_json_gpu(const struct gv_gpu *g);
json_t *gv_json_vgpu_types(const struct gv_vgpu_type_info *t, size_t n);
/* Print j to stdout (sorted keys, 2-space indent) and release it. */
void gv_json_print(json_t *j);
