/* SPDX-License-Identifier: MIT */
/*
 * disk.h — disk images through qemu-img (run with gv_proc_run, its JSON parsed strictly): a
 * VM's boot disk is a qcow2 overlay on a shared base image, data disks are empty qcow2 images,
 * and every image is checked before a VM gets it.
 *
 * Paths are handed to qemu-img as plain file names (a relative path gets "./" so it can never
 * read as an option or a "protocol:" prefix). No logging; errors follow src/util/error.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct gv_disk_info {
        char *format;            /* "qcow2", "raw", ... */
        uint64_t virtual_size;   /* bytes */
        uint64_t actual_size;    /* bytes allocated on the host; 0 when qemu-img does not say */
        char *backing_file;      /* NULL when none; as recorded in the image */
        char *backing_format;    /* NULL when none recorded */
        bool corrupt;            /* qcow2 format-specific "corrupt": true */
};
void gv_disk_info_done(struct gv_disk_info *i);

/* `qemu-img info --output=json -U PATH` (-U: readable while a VM holds it). Errors say what
 * to fix: missing file (-ENOENT), unreadable (-EACCES), not an image / truncated / corrupt
 * qcow2 (-EINVAL, naming the path and qemu-img's words). A file qemu-img can only read as
 * "raw" but whose size is not a whole number of 512-byte sectors (a text file, say), or that
 * is empty, is -EINVAL too. */
int gv_disk_info(const char *path, struct gv_disk_info *ret, struct gv_error **err);

/* Check an image before use: exists, is a regular file (or block device), readable (and
 * writable unless readonly: write access and at least one write permission bit, so a file
 * made read-only is refused even for root), not marked corrupt, `qemu-img check` passes for
 * qcow2 (leaked clusters are fine; -EBUSY when another process holds it and !readonly), a
 * backing chain that resolves with every backing format recorded. */
int gv_disk_check(const char *path, bool readonly, struct gv_error **err);

/* Boot disk: a qcow2 overlay on a base image (format detected from the base, passed with -F;
 * the base recorded by its absolute path; size 0 = the base's size, larger to grow, smaller is
 * refused; sizes are whole 512-byte sectors). Refuses to overwrite (-EEXIST); on failure
 * nothing is left behind. */
int gv_disk_create_overlay(const char *base, const char *overlay, uint64_t size,
                           struct gv_error **err);

/* An empty qcow2 data disk of `size` bytes (> 0, whole 512-byte sectors). Refuses to
 * overwrite (-EEXIST). */
int gv_disk_create(const char *path, uint64_t size, struct gv_error **err);
