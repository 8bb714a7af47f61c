/* SPDX-License-Identifier: MIT */
/*
 * confine.h — what holds a VM's QEMU in (docs/qemu-confinement.md; reliability.md R22): the
 * unprivileged user it runs as, the files and device nodes handed to that user, and the VM's
 * own cgroup with its limits.
 *
 * QEMU's security policy says QEMU "must run as unprivileged users" and holds only what the
 * guest may use; libvirt switches uid/gid right before exec and sets the ownership of the
 * devices and images a VM is given when it starts (reliability.md §1.1-1.2 [S6][S15]). Here:
 *   user:   gv_confine_user_resolve() turns the agent's qemu-user option into a uid, a gid and
 *           the supplementary groups (the kvm group when /dev/kvm exists, so KVM keeps
 *           working); gv_proc_spawn() (proc.h) switches to them in the child before exec.
 *   files:  gv_confine_give() hands a file or directory to the user (chown, and a mode);
 *           gv_confine_can_reach() says whether the user may search every directory above a
 *           path (a 0700 ancestor owned by someone else stops QEMU before it starts).
 *   cgroup: one directory per VM, GROUP = "gpuvirt/KEY/NAME" under the cgroup root, in cgroup
 *           v2 (memory.max, pids.max, cpu.weight) or, where the controllers are only mounted as
 *           v1 hierarchies, in each of v1's memory, pids and cpu (memory.limit_in_bytes,
 *           pids.max, cpu.shares). KEY keeps two agents on one machine (tests, simulated
 *           clusters) apart. QEMU joins it before exec: the spawn writes the child's pid into
 *           each cgroup.procs (gv_cgroup_open_procs()).
 *
 * No logging; errors follow src/util/error.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

/* The user QEMU runs as unless configured otherwise (docs/qemu-confinement.md). */
#define GV_QEMU_USER_DEFAULT "gpuvirt-qemu"
#define GV_CONFINE_GROUPS_MAX 8

struct gv_confine_user {
        bool switch_user;   /* spawn as uid/gid/groups (the agent is root and a user is set) */
        uid_t uid;          /* who QEMU runs as, switched or not */
        gid_t gid;
        gid_t groups[GV_CONFINE_GROUPS_MAX]; /* supplementary groups (switch_user) */
        size_t n_groups;
        char *name;         /* the user's name ("nobody", "root", ...) */
        char *why;          /* why QEMU is not switched to an unprivileged user, or NULL */
};

/* The QEMU user from the qemu-user option:
 *   NULL            GV_QEMU_USER_DEFAULT, which must exist;
 *   "" or "root"    QEMU runs as root, unconfined by user (said in `why`);
 *   a user name     that user, which must exist (and is not a uid-0 alias).
 * An agent that is not root cannot change user: QEMU runs as the agent's own user, whatever
 * the option, and `why` says so. `kvm_path` (NULL: /dev/kvm): when it exists and a "kvm" group
 * does, that group is added. -ENOENT naming the option when the user does not exist. */
int gv_confine_user_resolve(const char *option, const char *kvm_path,
                            struct gv_confine_user *ret, struct gv_error **err);
void gv_confine_user_done(struct gv_confine_user *u);

/* chown `path` to the QEMU user (uid, gid) and chmod it to `mode` (0: keep); links are not
 * followed. A no-op when !u->switch_user. */
int gv_confine_give(const struct gv_confine_user *u, const char *path, mode_t mode,
                    struct gv_error **err);

/* Whether the QEMU user may search every directory from "/" down to `path` (inclusive when
 * `path` is a directory), by the owner/group/other bits (uid 0 may). -EACCES names the first
 * directory that stops it and what to change. */
int gv_confine_can_reach(const struct gv_confine_user *u, const char *path,
                         struct gv_error **err);

/* Whether the QEMU user may open `path` for reading (and writing when `write`), by the mode
 * bits of the file and gv_confine_can_reach() on its directory. -EACCES says what to change. */
int gv_confine_can_open(const struct gv_confine_user *u, const char *path, bool write,
                        struct gv_error **err);

enum gv_cgroup_mode {
        GV_CGROUP_NONE,
        GV_CGROUP_V1,
        GV_CGROUP_V2,
};

struct gv_cgroup_limits {
        uint64_t memory_max;  /* bytes */
        uint64_t pids_max;
        uint32_t cpu_weight;  /* cgroup v2's 1..10000 (v1: cpu.shares = weight * 1024 / 100) */
};

/* Memory beyond the guest's RAM that QEMU may use before the cgroup's limit stops it: 512 MiB
 * for QEMU itself (its heap, device emulation, block and migration buffers), plus 1 GiB under
 * TCG, the translation cache QEMU reserves on 64-bit hosts (docs/qemu-confinement.md). */
#define GV_CGROUP_MEMORY_OVERHEAD_MIB 512u
#define GV_CGROUP_MEMORY_TCG_MIB 1024u
/* Threads and processes: QEMU's main loop, one thread per vCPU, its I/O and RCU threads and a
 * block-layer worker pool of up to 64 threads; spawning is refused by the sandbox anyway. */
#define GV_CGROUP_PIDS_BASE 256u

/* The limits for a guest of `memory_mib` and `vcpus` (tcg: add the translation cache). */
void gv_cgroup_limits_for(uint64_t memory_mib, uint32_t vcpus, bool tcg,
                          struct gv_cgroup_limits *ret);

/* Which hierarchy `root` holds: v2 when root/cgroup.controllers exists, v1 when root/memory is a
 * directory, none otherwise (*ret_why says why, or NULL). */
enum gv_cgroup_mode gv_cgroup_detect(const char *root, char **ret_why);

/* Create GROUP (a relative path, "gpuvirt/KEY/NAME") with the limits, anew: a leftover of that
 * name is removed first. *ret_path: the directory to show (v2: the group; v1: the memory
 * hierarchy's). -EACCES/-EPERM/-EROFS when the hierarchy is not writable (the caller may run
 * without), other errors name the file. Nothing is left behind on failure. */
int gv_cgroup_create(const char *root, const char *group, const struct gv_cgroup_limits *l,
                     char **ret_path, struct gv_error **err);

/* Open GROUP's cgroup.procs in each hierarchy for writing (O_CLOEXEC), for gv_spawn_opts's
 * cgroup_fds. *ret_fds has *ret_n entries; close them after the spawn. */
int gv_cgroup_open_procs(const char *root, const char *group, int **ret_fds, size_t *ret_n,
                         struct gv_error **err);

/* Remove GROUP in every hierarchy (absent: 0). -EBUSY while a process is still in it. A tree
 * that is not a cgroup file system (a test's stand-in) is removed with its files. */
int gv_cgroup_remove(const char *root, const char *group, struct gv_error **err);

/* The names of the groups under PARENT ("gpuvirt/KEY") in the first hierarchy that has it,
 * sorted; an empty list when there is none. */
int gv_cgroup_list(const char *root, const char *parent, char ***ret, struct gv_error **err);

/* Whether GROUP has a process in it (any hierarchy). */
bool gv_cgroup_populated(const char *root, const char *group);
