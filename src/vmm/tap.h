/* SPDX-License-Identifier: MIT */
/*
 * tap.h — tap devices for bridge NICs.
 *
 * NIC modes of a VM definition (src/vmm/vm-config.h):
 *   - "user":   QEMU's user-mode NAT (slirp) with port forwards. Needs nothing from the host
 *               and is the default.
 *   - "bridge": the guest sits on a host bridge ("bridge": "br0") through a tap device. The
 *               host must be configured for it: the bridge exists (ip link add br0 type bridge;
 *               ip link set br0 up; plus an uplink port) and the agent has CAP_NET_ADMIN and
 *               /dev/net/tun. The agent creates one *persistent* tap per bridge NIC with
 *               gv_tap_create() before QEMU starts, QEMU opens it by name
 *               (-netdev tap,ifname=TAP,script=no,downscript=no), and the agent deletes it with
 *               gv_tap_delete() after QEMU exits. Tap names are derived from the VM's UUID and
 *               the NIC's index (gv_tap_name()), so a restarted agent, or the reconcile loop
 *               through gv_tap_list(), recognises taps it made and finds leaked ones.
 *
 * Network state is the real kernel's even on a simulated GPU host (only GPUs are simulated),
 * so this file reads /sys/class/net directly instead of going through src/hw/sysfs.h, whose
 * root is the simulated GPU tree.
 *
 * No logging; errors follow src/util/error.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define GV_TAP_PREFIX "gv"
/* Largest NIC index a tap name can carry (two decimal digits). */
#define GV_TAP_NIC_INDEX_MAX 99u

/* "gv" + the first 8 hex digits of the VM's UUID (lower case, dashes removed) + "n" + the NIC's
 * index in decimal, e.g. "gv1b4e28ban0": at most 13 characters, below IFNAMSIZ - 1 (15). NULL
 * when vm_uuid is not a UUID (8-4-4-4-12 hex digits) or nic_index > GV_TAP_NIC_INDEX_MAX. */
char *gv_tap_name(const char *vm_uuid, size_t nic_index);

/* Whether ifname has the exact shape gv_tap_name() makes: "gv", 8 lower-case hex digits, "n",
 * and 0-99 without leading zeros. */
bool gv_tap_name_is_ours(const char *ifname);

/* Create the persistent tap `ifname` (or reuse the one a crash left behind: creation is
 * idempotent), give it the MTU of `bridge`, attach it to `bridge` (moving it there from another
 * bridge if need be) and set it up. gv_bridge_check() runs first and its errors pass through.
 * Other errors: -EINVAL (bad name, or an interface of that name exists and is not a tap),
 * -EBUSY (the tap is held open, e.g. by a QEMU still running), -ENOENT (no /dev/net/tun: load
 * the tun module), -EPERM (the agent lacks CAP_NET_ADMIN), -EACCES (it may not open
 * /dev/net/tun). The tap is owned by the caller's euid (TUNSETOWNER), which QEMU, spawned by the
 * agent, shares. A tap this call made is removed again when a later step fails. */
int gv_tap_create(const char *ifname, const char *bridge, struct gv_error **err);

/* Remove the persistent tap `ifname`. -ENOENT when no interface of that name exists (callers
 * treat that as done), -EINVAL when the interface exists and is not a tap (it is left alone),
 * -EBUSY while a process (QEMU) still holds it open. */
int gv_tap_delete(const char *ifname, struct gv_error **err);

/* Every network interface whose name gv_tap_name_is_ours() and that is a tap device
 * (/sys/class/net/X/tun_flags exists and has IFF_TAP), sorted, for the reconcile loop.
 * *ret is a NULL-terminated strv (an empty one, not NULL, when there are none). */
int gv_tap_list(char ***ret, struct gv_error **err);

/* Whether `bridge` exists and is a bridge: 0; -ENODEV "Bridge 'br0' does not exist on this
 * host: create it (...) or use a NIC in mode user."; -EINVAL when it is not a valid interface
 * name or exists and is not a bridge. */
int gv_bridge_check(const char *bridge, struct gv_error **err);
