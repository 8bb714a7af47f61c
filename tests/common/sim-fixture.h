/* SPDX-License-Identifier: MIT */
/*
 * sim-fixture.h — simulated hosts for tests (docs/simulator.md, "Tests").
 *
 *   int main(int argc, char **argv) {
 *           sim_fixture_reexec_with_kmock(argc, argv);   // write-path tests only
 *           ...
 *           char *root = NULL;
 *           assert_int_equal(sim_fixture_create("dgx-h100", &root), 0);
 *           ...
 *           sim_fixture_destroy(root);
 *   }
 */
#pragma once

/* Make a host of the profile in a fresh mkdtemp() directory under $TMPDIR (or /tmp). *ret_root
 * is newly allocated. Prints the reason to stderr on failure (test code). */
int sim_fixture_create(const char *profile, char **ret_root);

/* Remove the host (unless GPUVIRT_TEST_KEEP_ROOT=1, then print where it is) and free root.
 * Accepts NULL. */
void sim_fixture_destroy(char *root);

/* Re-exec the test binary with the kernel mock preloaded (LD_PRELOAD=<kmock>, and
 * ASAN_OPTIONS with verify_asan_link_order=0) unless it already is. Returns only when the mock
 * is loaded; aborts when the re-exec fails. */
void sim_fixture_reexec_with_kmock(int argc, char **argv);

/* Full paths of the built libraries (meson defines; env GPUVIRT_SIM_NVML_LIB / GPUVIRT_SIM_KMOCK
 * override). "" when not built. */
const char *sim_fixture_nvml_lib(void);
const char *sim_fixture_kmock_lib(void);
