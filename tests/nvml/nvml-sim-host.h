/* SPDX-License-Identifier: MIT */
/*
 * nvml-sim-host.h — a simulated host in a temporary directory for the NVML binding tests, and
 * error injection through the simulator's state API (sim/host/sim-state.h).
 */
#pragma once

#include "hw/nvml/nvml.h"

struct simhost {
        char *root;      /* temporary directory, removed by simhost_done() */
        char *nvml_path; /* ROOT/usr/lib/libnvidia-ml.so.1 */
};

/* Create a host of the profile (fails the test on error). */
void simhost_make(const char *profile, struct simhost *ret);
void simhost_done(struct simhost *h);
/* Replace every injection with one: NVML symbol `call` fails with `code` on every call, on any
 * GPU. */
void simhost_inject(const struct simhost *h, const char *call, int code);
/* Replace every injection with one per symbol of calls[0..n) (n <= 32), all failing with code
 * on every call. */
void simhost_inject_many(const struct simhost *h, const char *const *calls, size_t n, int code);
/* The same, consumed by the first call it fails. */
void simhost_inject_once(const struct simhost *h, const char *call, int code);
void simhost_inject_clear(const struct simhost *h);
/* Add a vGPU instance of type_id on GPU index gpu (parent: the GPU's PF); returns the
 * nvmlVgpuInstance_t. */
unsigned simhost_add_vgpu(const struct simhost *h, unsigned gpu, unsigned type_id,
                          const char *uuid);
/* Reset the GPU at bdf (sim_gpu_reset: a pending MIG mode becomes current). */
void simhost_reset_gpu(const struct simhost *h, const char *bdf);
/* Mark a GPU lost (fallen off the bus). */
void simhost_set_lost(const struct simhost *h, unsigned gpu, bool lost);
