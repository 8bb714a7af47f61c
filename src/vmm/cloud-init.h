/* SPDX-License-Identifier: MIT */
/*
 * cloud-init.h — a VM's cloud-init NoCloud seed: an ISO 9660 image labelled "cidata" that
 * holds /meta-data and /user-data.
 *
 * Facts (cloud-init's NoCloud datasource documentation, docs.cloud-init.io, "NoCloud"): the
 * datasource reads a vfat or iso9660 file system whose volume label is "cidata" (or
 * "CIDATA"); /user-data and /meta-data must both be there for a valid seed, /vendor-data and
 * /network-config are optional; meta-data is YAML with instance-id and local-hostname; the
 * documented way to make one is `genisoimage -output seed.iso -volid cidata -joliet -rock
 * user-data meta-data`. SSH keys: meta-data `public-keys` (cloud-init's DataSource
 * get_public_ssh_keys() reads metadata["public-keys"], a string or a list) and the
 * cloud-config key `ssh_authorized_keys` of user data; cc_ssh gives both to the default user.
 *
 * What we write:
 *   meta-data  instance-id (the VM's UUID), local-hostname (cloud_init.hostname or the VM's
 *              name), public-keys (the keys, when any);
 *   user-data  cloud_init.user_data as given; without it a minimal "#cloud-config" that lists
 *              the keys under ssh_authorized_keys (so an image that ignores meta-data keys
 *              still gets them).
 * Every string goes into YAML double-quoted; the parser (vm-config.c) allows only printable
 * ASCII in keys and host names, so no escape but \" and \\ is ever needed.
 *
 * The image is made by genisoimage (Debian package genisoimage, deps/debian-packages.txt), or
 * `xorriso -as mkisofs` where only xorriso is installed, run through gv_proc_run(). No
 * logging; errors follow src/util/error.h.
 */
#pragma once

#include "util/error.h"
#include "vmm/vm-config.h"

/* The text of /meta-data and /user-data for `c` (c->cloud_init must be set). */
char *gv_cloud_init_meta_data(const struct gv_vm_config *c);
char *gv_cloud_init_user_data(const struct gv_vm_config *c);

/* Write the seed of `c` (c->cloud_init must be set) to iso_path, replacing what is there:
 * the two files in a scratch directory beside it (removed again), the image made as
 * ISO_PATH.tmp, mode 0600 (user data may hold secrets), then renamed over iso_path. On failure
 * iso_path is untouched. -ENOENT when neither genisoimage nor xorriso is in $PATH (the message
 * says what to install); -EIO with the tool's words when it fails. */
int gv_cloud_init_write_seed(const struct gv_vm_config *c, const char *iso_path,
                             struct gv_error **err);
