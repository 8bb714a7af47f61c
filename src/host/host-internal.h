/* SPDX-License-Identifier: MIT */
/* host-internal.h — what host.c shares with the backends and the operation files. */
#pragma once

#include "host/host.h"

/* Free the vendor-filled parts of g (GIs, vGPUs) so a backend can fill them again. */
void gv_gpu_vendor_state_clear(struct gv_gpu *g);
/* "vGPU H100XM-20C 0000:18:00.4, GPU instance 1 (3g.40gb at slices 4-7)"; NULL if unused. */
char *gv_gpu_describe_use(const struct gv_gpu *g);
