/* SPDX-License-Identifier: MIT */
/* licensing.c — licence editions as facts (licensing.h; ../shared/reference/vgpu.md §6, §12). */
#include "catalog/licensing.h"
#include "util/enum-table.h"

static const char *const edition_table[_GV_LICENSE_EDITION_MAX] = {
        [GV_LICENSE_NVAIE] = "nvaie", [GV_LICENSE_VCS] = "vcs",     [GV_LICENSE_VWS] = "vws",
        [GV_LICENSE_VPC] = "vpc",     [GV_LICENSE_VAPPS] = "vapps",
};
DEFINE_STRING_TABLE_LOOKUP(gv_license_edition, enum gv_license_edition, edition_table);

static const char *const edition_titles[_GV_LICENSE_EDITION_MAX] = {
        [GV_LICENSE_NVAIE] = "NVIDIA AI Enterprise",
        [GV_LICENSE_VCS] = "NVIDIA Virtual Compute Server (vCS)",
        [GV_LICENSE_VWS] = "NVIDIA RTX Virtual Workstation (vWS)",
        [GV_LICENSE_VPC] = "NVIDIA Virtual PC (vPC)",
        [GV_LICENSE_VAPPS] = "NVIDIA Virtual Applications (vApps)",
};

const char *gv_license_edition_title(enum gv_license_edition e)
{
        if ((int)e < 0 || e >= _GV_LICENSE_EDITION_MAX)
                return NULL;
        return edition_titles[e];
}

char *gv_license_edition_names(void)
{
        return STRING_TABLE_JOIN(edition_table, ", ");
}

static const char *const counting_table[_GV_LICENSE_COUNTING_MAX] = {
        [GV_LICENSE_COUNT_VM] = "vm",
        [GV_LICENSE_COUNT_GPU] = "gpu",
};
DEFINE_STRING_TABLE_LOOKUP(gv_license_counting, enum gv_license_counting, counting_table);

size_t gv_license_editions_for_series(enum gv_vgpu_series s,
                                      enum gv_license_edition ret[_GV_LICENSE_EDITION_MAX])
{
        size_t n = 0;
        switch (s) {
        case GV_VGPU_SERIES_A:
                ret[n++] = GV_LICENSE_VAPPS;
                break;
        case GV_VGPU_SERIES_B:
                ret[n++] = GV_LICENSE_VPC;
                ret[n++] = GV_LICENSE_VWS;
                break;
        case GV_VGPU_SERIES_Q:
                ret[n++] = GV_LICENSE_VWS;
                break;
        case GV_VGPU_SERIES_C:
                ret[n++] = GV_LICENSE_NVAIE;
                ret[n++] = GV_LICENSE_VCS;
                ret[n++] = GV_LICENSE_VWS;
                break;
        default:
                break;
        }
        return n;
}

bool gv_license_edition_covers_passthrough(enum gv_license_edition e)
{
        return e >= 0 && e < _GV_LICENSE_EDITION_MAX && e != GV_LICENSE_VPC;
}
