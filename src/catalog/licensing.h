/* SPDX-License-Identifier: MIT */
/*
 * licensing.h — NVIDIA vGPU licence editions and which one a GPU use needs
 * (../shared/reference/vgpu.md §6 "Series → licence edition", §12 "Licensing").
 *
 *   series A → vApps; B → vPC (or vWS); Q → vWS; C → NVIDIA AI Enterprise (vCS or vWS in the
 *   vGPU 12–15 guides). Pass-through: vWS or vApps for graphics, vCS for compute; vPC is not
 *   available for pass-through (NV-LIC, NV-CPH).
 *   Counting: a concurrent-user licence allows one VM per licence (NV-PPL), and that is how
 *   gpuvirt counts by default; NVIDIA AI Enterprise is also sold per GPU, one licence per GPU
 *   (NVIDIA Enterprise Licensing Guide), which a pool declares with counting "gpu".
 *
 * Pure facts: no I/O, no allocation.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "catalog/catalog.h"

enum gv_license_edition {
        GV_LICENSE_NVAIE, /* "nvaie": NVIDIA AI Enterprise */
        GV_LICENSE_VCS,   /* "vcs": NVIDIA Virtual Compute Server */
        GV_LICENSE_VWS,   /* "vws": NVIDIA RTX Virtual Workstation */
        GV_LICENSE_VPC,   /* "vpc": NVIDIA Virtual PC */
        GV_LICENSE_VAPPS, /* "vapps": NVIDIA Virtual Applications */
        _GV_LICENSE_EDITION_MAX,
        _GV_LICENSE_EDITION_INVALID = -EINVAL,
};
const char *gv_license_edition_to_string(enum gv_license_edition e);
enum gv_license_edition gv_license_edition_from_string(const char *s);
/* "NVIDIA AI Enterprise", "vCS", ... for people. */
const char *gv_license_edition_title(enum gv_license_edition e);
/* "nvaie, vcs, vws, vpc, vapps", newly allocated (error hints). */
char *gv_license_edition_names(void);

/* How a pool's seats are counted. */
enum gv_license_counting {
        GV_LICENSE_COUNT_VM,  /* "vm": one seat per running VM (concurrent user, NV-PPL) */
        GV_LICENSE_COUNT_GPU, /* "gpu": one seat per physical GPU in use (NVIDIA AI Enterprise) */
        _GV_LICENSE_COUNTING_MAX,
        _GV_LICENSE_COUNTING_INVALID = -EINVAL,
};
const char *gv_license_counting_to_string(enum gv_license_counting c);
enum gv_license_counting gv_license_counting_from_string(const char *s);

/* The editions that license a vGPU of series s, preferred first, into ret; their number. */
size_t gv_license_editions_for_series(enum gv_vgpu_series s,
                                      enum gv_license_edition ret[_GV_LICENSE_EDITION_MAX]);
/* Whether an edition may license a pass-through GPU (vPC may not; NV-LIC). */
bool gv_license_edition_covers_passthrough(enum gv_license_edition e);
