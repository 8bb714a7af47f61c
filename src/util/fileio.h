/* SPDX-License-Identifier: MIT */
/*
 * fileio.h — bounded file reads and writes, all with O_CLOEXEC. No logging.
 */
#pragma once

#include <stdbool.h>

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Largest file gv_read_file accepts by default (sysfs attributes are a page at most; JSON
 * catalog and state files are larger, callers pass their own limit). */
#define GV_READ_MAX_DEFAULT (64u * 1024u)

/* Read a whole file (NUL-terminated). -EFBIG when it exceeds max bytes. */
int gv_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Read a file and strip one trailing newline (sysfs attribute). */
int gv_read_line(const char *path, char **ret);

enum {
        GV_WRITE_CREATE = 1 << 0,   /* O_CREAT|O_TRUNC, mode 0644 (regular files, not sysfs) */
        GV_WRITE_NEWLINE = 1 << 1,  /* append "\n" unless present */
        GV_WRITE_ATOMIC = 1 << 2,   /* write to a temp file in the same directory, fsync, rename */
        GV_WRITE_NOSYNC = 1 << 3,   /* with ATOMIC: no fsync — whole against a crash of the
                                     * process, not against a power loss (runtime state that a
                                     * reboot makes moot anyway) */
};
/* Write s to path in one write() (sysfs needs the value in one call). */
int gv_write_file(const char *path, const char *s, unsigned flags);

/* readlink() into a new string. */
int gv_readlink(const char *path, char **ret);
/* Last component of a symlink's target, e.g. driver link -> "vfio-pci". */
int gv_readlink_basename(const char *path, char **ret);

int gv_mkdir_p(const char *path, mode_t mode);
/* rm -rf; refuses "/" and "". */
int gv_rm_rf(const char *path);

/* Join path components with exactly one "/" between them; NULL-terminated list. */
char *gv_path_join_many(const char *first, ...) __attribute__((sentinel));
#define gv_path_join(...) gv_path_join_many(__VA_ARGS__, NULL)

int gv_file_exists(const char *path); /* 1 yes, 0 no, <0 error other than ENOENT */
/* Whether `prog` is an executable in a folder of $PATH (default "/usr/bin:/bin"). */
bool gv_program_in_path(const char *prog);
