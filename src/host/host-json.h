/* SPDX-License-Identifier: MIT */
/* host-json.h — the JSON shapes of the host model (stable keys, null for unknown values): the
 * CLI's --json output and the agent's API use the same. */
#pragma once

#include <jansson.h>

#include "host/host.h"

json_t *gv_json_host(const struct gv_host *h);
json_t *gv_json_gpu(const struct gv_gpu *g);
json_t *gv_json_vgpu_types(const struct gv_vgpu_type_info *t, size_t n);
