/* SPDX-License-Identifier: MIT */
/*
 * vm-config.h — a VM's definition as the API takes it and the state directory keeps it.
 *
 * JSON (docs/agent.md has the full reference):
 *   {"name": "web-1", "uuid": "…" (optional: generated), "vcpus": 2, "memory_mib": 2048,
 *    "boot": {"kernel": PATH, "initrd": PATH, "append": "console=ttyS0"}   (optional),
 *    "disks": [{"name": "root", "base": PATH, "size": "20G"},   a qcow2 overlay on a base image
 *              {"name": "data", "size": "10G"},                  an empty qcow2 disk
 *              {"name": "iso", "path": PATH, "readonly": true}], an existing image, used as is
 *    "nics": [{"mode": "user", "forwards": [{"proto": "tcp", "host_port": 2222,
 *                                             "guest_port": 22}]},
 *             {"mode": "bridge", "bridge": "br0", "mac": "52:54:00:12:34:56"}],
 *    "gpus": [{"mode": "passthrough", "gpu": "0"},
 *             {"mode": "vgpu", "type": "H100XM-20C", "gpu": "any"},
 *             {"mode": "mig-vgpu", "type": "H100XM-1-10C"}],
 *    "cloud_init": {"user_data": "#cloud-config\n...",                 (optional: a NoCloud
 *                   "ssh_authorized_keys": ["ssh-ed25519 AAAA... me@x"],  seed, cloud-init.h)
 *                   "hostname": "web-1"}}
 * The parser is strict: unknown keys, wrong types, out-of-range numbers and names outside the
 * grammar are errors naming the member ("disks[1].size: '10X' is not a size").
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/parse.h"

#define GV_VM_MAX_VCPUS 512u
#define GV_VM_MAX_MEMORY_MIB (16ull * 1024 * 1024) /* 16 TiB */
#define GV_VM_MAX_DISKS 16u
#define GV_VM_MAX_NICS 8u
#define GV_VM_MAX_GPUS 16u
#define GV_VM_MAX_FORWARDS 32u
#define GV_VM_MAX_USER_DATA (64u * 1024)  /* bytes of cloud-init user data */
#define GV_VM_MAX_SSH_KEYS 32u
#define GV_VM_MAX_SSH_KEY_LEN 8192u       /* sshd(8): an authorized_keys line is at most 8 KB */
#define GV_VM_MAX_HOSTNAME 253u

enum gv_vm_disk_kind {
        GV_VM_DISK_OVERLAY, /* created: qcow2 overlay on `base` */
        GV_VM_DISK_EMPTY,   /* created: empty qcow2 of `size` */
        GV_VM_DISK_IMAGE,   /* existing `path`, used as is */
        _GV_VM_DISK_MAX,
        _GV_VM_DISK_INVALID = -EINVAL,
};
const char *gv_vm_disk_kind_to_string(enum gv_vm_disk_kind k);
enum gv_vm_disk_kind gv_vm_disk_kind_from_string(const char *s);

struct gv_vm_disk {
        char *name;         /* [a-z0-9][a-z0-9._-]*: the file name in the VM's state dir */
        enum gv_vm_disk_kind kind;
        char *base;         /* OVERLAY */
        char *path;         /* IMAGE */
        uint64_t size;      /* bytes; OVERLAY: 0 = the base's size; EMPTY: required */
        bool readonly;
};

enum gv_vm_nic_mode {
        GV_VM_NIC_USER,   /* user-mode NAT, port forwards */
        GV_VM_NIC_BRIDGE, /* a tap device on a host bridge */
        _GV_VM_NIC_MAX,
        _GV_VM_NIC_INVALID = -EINVAL,
};
const char *gv_vm_nic_mode_to_string(enum gv_vm_nic_mode m);
enum gv_vm_nic_mode gv_vm_nic_mode_from_string(const char *s);

struct gv_vm_forward {
        bool udp;
        uint16_t host_port, guest_port;
};

struct gv_vm_nic {
        enum gv_vm_nic_mode mode;
        char mac[sizeof("52:54:00:00:00:00")]; /* "" = derived from the VM's uuid and index */
        char *bridge;                          /* BRIDGE */
        struct gv_vm_forward *forwards;        /* USER */
        size_t n_forwards;
};

enum gv_vm_gpu_mode {
        GV_VM_GPU_PASSTHROUGH, /* the whole GPU, every function of it, through vfio-pci */
        GV_VM_GPU_VGPU,        /* a time-sliced vGPU (mdev or vendor-VFIO VF) */
        GV_VM_GPU_MIG_VGPU,    /* a MIG-backed vGPU: a GPU instance holding one vGPU */
        _GV_VM_GPU_MAX,
        _GV_VM_GPU_INVALID = -EINVAL,
};
const char *gv_vm_gpu_mode_to_string(enum gv_vm_gpu_mode m);
enum gv_vm_gpu_mode gv_vm_gpu_mode_from_string(const char *s);

struct gv_vm_gpu {
        enum gv_vm_gpu_mode mode;
        char *gpu;  /* a GPU selector (index, PCI address, UUID) or NULL for any */
        char *type; /* VGPU, MIG_VGPU: the vGPU type name */
};

/* A cloud-init NoCloud seed (src/vmm/cloud-init.h writes it). */
struct gv_vm_cloud_init {
        char *user_data;            /* as given; NULL: a minimal #cloud-config */
        char **ssh_authorized_keys; /* strv; NULL when none. "TYPE BASE64 [COMMENT]", printable
                                     * ASCII, TYPE a known key type matching the key data */
        char *hostname;             /* NULL: the VM's name */
};
struct gv_vm_cloud_init *gv_vm_cloud_init_free(struct gv_vm_cloud_init *ci);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_vm_cloud_init *, gv_vm_cloud_init_free);
/* The "cloud_init" member alone (the controller checks a VM request with it before placing
 * it); errors name the member ("cloud_init.ssh_authorized_keys[1]: ..."). */
int gv_vm_cloud_init_from_json(const json_t *j, struct gv_vm_cloud_init **ret,
                               struct gv_error **err);
json_t *gv_vm_cloud_init_to_json(const struct gv_vm_cloud_init *ci);

struct gv_vm_config {
        char *name;
        char uuid[GV_UUID_STR_LEN + 1];
        uint32_t vcpus;
        uint64_t memory_mib;
        char *kernel, *initrd, *append; /* direct kernel boot; NULL when absent */
        struct gv_vm_disk *disks;
        size_t n_disks;
        struct gv_vm_nic *nics;
        size_t n_nics;
        struct gv_vm_gpu *gpus;
        size_t n_gpus;
        struct gv_vm_cloud_init *cloud_init; /* NULL: no seed */
};

/* Parse and validate; a missing uuid is generated, a missing MAC derived. */
int gv_vm_config_from_json(const json_t *j, struct gv_vm_config **ret, struct gv_error **err);
/* The canonical form (every default filled in); parsing it gives an equal config. */
json_t *gv_vm_config_to_json(const struct gv_vm_config *c);
struct gv_vm_config *gv_vm_config_free(struct gv_vm_config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_vm_config *, gv_vm_config_free);
