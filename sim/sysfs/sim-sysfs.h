/* SPDX-License-Identifier: MIT */
/*
 * sim-sysfs.h — the generated sysfs tree of a simulated host, and host creation.
 */
#pragma once

#include "host/sim-profile.h"
#include "host/sim-state.h"
#include "util/error.h"

/* Create a whole simulated host at root (which must not exist or be empty): state.json, the
 * sysfs tree under root/sys, and root/usr/lib/libnvidia-ml.so.1 -> nvml_lib (absolute path of
 * the built NVML simulator). Errors name the unknown profile and list the valid ones. */
int sim_host_create(const char *root, const char *profile_name, const char *nvml_lib,
                    struct gv_error **err);

/* Write the static tree for the state's profile (called once by sim_host_create). */
int sim_sysfs_generate(const struct sim_state *s, const struct sim_profile *p,
                       struct gv_error **err);

/* Rewrite the dynamic files from the state (available_instances, creatable_vgpu_types,
 * current_vgpu_type, mdev instance directories, ...). Called by sim_state_commit(). */
int sim_sysfs_sync(const struct sim_state *s, struct gv_error **err);
