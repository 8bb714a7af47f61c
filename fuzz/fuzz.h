/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h — what the harnesses in fuzz/ share (docs/fuzzing.md).
 *
 * Each fuzz-<target>.c defines LLVMFuzzerTestOneInput() (and, where it needs a fixture,
 * LLVMFuzzerInitialize()). It links either with libFuzzer (-Dfuzz=true, clang) or with
 * standalone.c, which runs the inputs named on its command line once each: the regression
 * corpora fuzz/regress/<target>/ and the seeds fuzz/corpus/<target>/ run so in every
 * `meson test` (plain and ASan+UBSan builds).
 *
 * A harness reports a finding by crashing: a sanitizer report, or fuzz_fail() (abort) when a
 * property it checks does not hold (e.g. the API answered 500).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Print "fuzz: <message>" to stderr and abort(): a finding. */
_noreturn_ void fuzz_fail(const char *fmt, ...) _printf_(1, 2);

/* A new private directory for a harness's files, on /dev/shm when it is writable (no disk I/O
 * per input; the store's fsyncs are free there), else $TMPDIR or /tmp. Removed at exit. Aborts
 * when none can be made. */
const char *fuzz_tmpdir(const char *name);

/* Replace dir/name with data[0..size) (a NUL byte and all). Aborts on failure. */
void fuzz_write_file(const char *dir, const char *name, const void *data, size_t size);

/* A NUL-terminated copy of data (newly allocated). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Split data at the first occurrence of sep: *ret_head and *ret_head_len before it, the rest in
 * *ret_tail and *ret_tail_len (the whole input and an empty tail when sep does not occur). */
void fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **ret_head,
                size_t *ret_head_len, const uint8_t **ret_tail, size_t *ret_tail_len);
