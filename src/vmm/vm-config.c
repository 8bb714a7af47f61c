/* SPDX-License-Identifier: MIT */
/*
 * vm-config.c — strict parser and canonical writer of a VM's definition (vm-config.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/vm-config.h"

static const char *const disk_kind_table[_GV_VM_DISK_MAX] = {
        [GV_VM_DISK_OVERLAY] = "overlay",
        [GV_VM_DISK_EMPTY] = "empty",
        [GV_VM_DISK_IMAGE] = "image",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_disk_kind, enum gv_vm_disk_kind, disk_kind_table);

static const char *const nic_mode_table[_GV_VM_NIC_MAX] = {
        [GV_VM_NIC_USER] = "user",
        [GV_VM_NIC_BRIDGE] = "bridge",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_nic_mode, enum gv_vm_nic_mode, nic_mode_table);

static const char *const gpu_mode_table[_GV_VM_GPU_MAX] = {
        [GV_VM_GPU_PASSTHROUGH] = "passthrough",
        [GV_VM_GPU_VGPU] = "vgpu",
        [GV_VM_GPU_MIG_VGPU] = "mig-vgpu",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_gpu_mode, enum gv_vm_gpu_mode, gpu_mode_table);

#define MAX_PATH_LEN 4000
#define MAX_APPEND_LEN 4096

/* Every member of `o` must be one of `allowed` (NULL-terminated). */
static int check_keys(const json_t *o, const char *where, const char *const *allowed,
                      struct gv_error **err)
{
        const char *key;
        json_t *v;

        json_object_foreach((json_t *)o, key, v) {
                bool ok = false;
                for (size_t i = 0; allowed[i]; i++)
                        if (strcmp(key, allowed[i]) == 0)
                                ok = true;
                if (!ok) {
                        _cleanup_free_ char *list = NULL;
                        size_t len = 0;
                        for (size_t i = 0; allowed[i]; i++)
                                len += strlen(allowed[i]) + 2;
                        list = xcalloc(len + 1, 1);
                        for (size_t i = 0; allowed[i]; i++) {
                                if (i)
                                        strcat(list, ", ");
                                strcat(list, allowed[i]);
                        }
                        return gv_error_set(err, EINVAL, "%s: unknown member '%s'; valid: %s.",
                                            where, key, list);
                }
        }
        return 0;
}

static bool has_control(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* An absolute path without control characters. */
static int parse_path(const json_t *o, const char *key, const char *where, bool required,
                      char **ret, struct gv_error **err)
{
        const char *s = NULL;
        int r = required ? gv_json_get_string(o, key, &s, err)
                         : gv_json_opt_string(o, key, &s, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);
        if (!s)
                return 0;
        if (s[0] != '/' || strlen(s) > MAX_PATH_LEN || has_control(s))
                return gv_error_set(err, EINVAL, "%s.%s: '%s' is not an absolute path (one "
                                    "that starts with '/', without control characters, at "
                                    "most %d bytes).", where, key, s, MAX_PATH_LEN);
        *ret = xstrdup(s);
        return 0;
}

/* A size: a string with a binary suffix ("20G") or a number of bytes. */
static int parse_size(const json_t *o, const char *key, const char *where, uint64_t *ret,
                      struct gv_error **err)
{
        json_t *v = json_object_get(o, key);
        uint64_t bytes;

        if (!v || json_is_null(v))
                return 0;
        if (json_is_integer(v) && json_integer_value(v) > 0) {
                bytes = (uint64_t)json_integer_value(v);
        } else if (json_is_string(v)) {
                if (gv_parse_size(json_string_value(v), &bytes) < 0 || bytes == 0)
                        return gv_error_set(err, EINVAL, "%s.%s: '%s' is not a size; use e.g. "
                                            "\"512M\", \"20G\" or a number of bytes.", where,
                                            key, json_string_value(v));
        } else {
                return gv_error_set(err, EINVAL, "%s.%s: a size is a string such as \"20G\" "
                                    "or a positive number of bytes.", where, key);
        }
        if (bytes % 512)
                return gv_error_set(err, EINVAL, "%s.%s: %" PRIu64 " bytes is not a multiple "
                                    "of 512.", where, key, bytes);
        *ret = bytes;
        return 0;
}

static int parse_disk(const json_t *j, size_t i, struct gv_vm_disk *d, struct gv_error **err)
{
        static const char *const keys[] = { "name", "base", "path", "size", "readonly", NULL };
        char where[32];
        const char *name = NULL;
        int r;

        snprintf(where, sizeof(where), "disks[%zu]", i);
        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "%s: a disk is an object.", where);
        r = check_keys(j, where, keys, err);
        if (r < 0)
                return r;
        r = gv_json_get_string(j, "name", &name, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "%s.name: '%s' is not a valid name "
                                    "([a-z0-9][a-z0-9._-]{0,62}).", where, name);
        d->name = xstrdup(name);
        r = parse_path(j, "base", where, false, &d->base, err);
        if (r < 0)
                return r;
        r = parse_path(j, "path", where, false, &d->path, err);
        if (r < 0)
                return r;
        r = parse_size(j, "size", where, &d->size, err);
        if (r < 0)
                return r;
        r = gv_json_opt_bool(j, "readonly", &d->readonly, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);

        if (d->base && d->path)
                return gv_error_set(err, EINVAL, "%s: give 'base' (a new overlay on a base "
                                    "image) or 'path' (an existing image), not both.", where);
        if (d->base)
                d->kind = GV_VM_DISK_OVERLAY;
        else if (d->path)
                d->kind = GV_VM_DISK_IMAGE;
        else if (d->size)
                d->kind = GV_VM_DISK_EMPTY;
        else
                return gv_error_set(err, EINVAL, "%s: say what the disk is: 'base' (overlay on "
                                    "a base image), 'path' (an existing image) or 'size' (a "
                                    "new empty disk).", where);
        if (d->kind == GV_VM_DISK_IMAGE && d->size)
                return gv_error_set(err, EINVAL, "%s: 'size' applies to new disks only; an "
                                    "existing image keeps its size.", where);
        if (d->kind != GV_VM_DISK_IMAGE && d->readonly)
                return gv_error_set(err, EINVAL, "%s: a new disk cannot be read-only.", where);
        return 0;
}

static int parse_mac(const char *s, char out[static sizeof("52:54:00:00:00:00")])
{
        unsigned b[6];
        int n = 0;

        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 17; i++) {
                char c = s[i];
                if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                              (c >= 'A' && c <= 'F')))
                        return -EINVAL;
        }
        if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                   &n) != 6 || n != 17)
                return -EINVAL;
        if (b[0] & 1) /* multicast */
                return -EINVAL;
        snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", (uint8_t)b[0], (uint8_t)b[1],
                 (uint8_t)b[2], (uint8_t)b[3], (uint8_t)b[4], (uint8_t)b[5]);
        return 0;
}

static bool ifname_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 15)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.'))
                        return false;
        }
        return true;
}

static int parse_forward(const json_t *j, const char *where, struct gv_vm_forward *f,
                         struct gv_error **err)
{
        static const char *const keys[] = { "proto", "host_port", "guest_port", NULL };
        const char *proto = "tcp";
        uint32_t hp = 0, gp = 0;
        int r;

        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "%s: a forward is an object.", where);
        r = check_keys(j, where, keys, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "proto", &proto, err);
        if (r >= 0)
                r = gv_json_get_u32(j, "host_port", &hp, err);
        if (r >= 0)
                r = gv_json_get_u32(j, "guest_port", &gp, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);
        if (strcmp(proto, "tcp") && strcmp(proto, "udp"))
                return gv_error_set(err, EINVAL, "%s.proto: '%s' is not a protocol; use tcp or "
                                    "udp.", where, proto);
        if (hp < 1 || hp > 65535 || gp < 1 || gp > 65535)
                return gv_error_set(err, EINVAL, "%s: ports are 1..65535 (host %" PRIu32
                                    ", guest %" PRIu32 ").", where, hp, gp);
        f->udp = strcmp(proto, "udp") == 0;
        f->host_port = (uint16_t)hp;
        f->guest_port = (uint16_t)gp;
        return 0;
}

static int parse_nic(const json_t *j, size_t i, struct gv_vm_nic *n, struct gv_error **err)
{
        static const char *const keys[] = { "mode", "mac", "bridge", "forwards", NULL };
        char where[32];
        const char *mode = "user", *mac = NULL, *bridge = NULL;
        json_t *fw = NULL;
        int r;

        snprintf(where, sizeof(where), "nics[%zu]", i);
        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "%s: a NIC is an object.", where);
        r = check_keys(j, where, keys, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "mode", &mode, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "mac", &mac, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "bridge", &bridge, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);
        n->mode = gv_vm_nic_mode_from_string(mode);
        if ((int)n->mode < 0)
                return gv_error_set(err, EINVAL, "%s.mode: '%s' is not a NIC mode; use user "
                                    "(NAT with port forwards) or bridge.", where, mode);
        if (mac && parse_mac(mac, n->mac) < 0)
                return gv_error_set(err, EINVAL, "%s.mac: '%s' is not a unicast MAC address "
                                    "(xx:xx:xx:xx:xx:xx, first octet even).", where, mac);
        if (n->mode == GV_VM_NIC_BRIDGE) {
                if (!bridge)
                        return gv_error_set(err, EINVAL, "%s: a bridge NIC names its host "
                                            "bridge ('bridge': \"br0\").", where);
                if (!ifname_is_valid(bridge))
                        return gv_error_set(err, EINVAL, "%s.bridge: '%s' is not an interface "
                                            "name (1-15 of A-Z a-z 0-9 . _ -).", where, bridge);
                n->bridge = xstrdup(bridge);
        } else if (bridge) {
                return gv_error_set(err, EINVAL, "%s: 'bridge' applies to mode bridge only.",
                                    where);
        }
        fw = json_object_get(j, "forwards");
        if (fw && !json_is_null(fw)) {
                if (n->mode != GV_VM_NIC_USER)
                        return gv_error_set(err, EINVAL, "%s: port forwards apply to mode user "
                                            "only.", where);
                if (!json_is_array(fw) || json_array_size(fw) > GV_VM_MAX_FORWARDS)
                        return gv_error_set(err, EINVAL, "%s.forwards: an array of at most %u "
                                            "forwards.", where, GV_VM_MAX_FORWARDS);
                n->forwards = xnew0(struct gv_vm_forward, json_array_size(fw) + 1);
                for (size_t k = 0; k < json_array_size(fw); k++) {
                        char w2[64];
                        snprintf(w2, sizeof(w2), "%s.forwards[%zu]", where, k);
                        r = parse_forward(json_array_get(fw, k), w2, &n->forwards[k], err);
                        if (r < 0)
                                return r;
                        n->n_forwards++;
                }
        }
        return 0;
}

static bool selector_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == ':' || c == '.'))
                        return false;
        }
        return true;
}

static int parse_gpu(const json_t *j, size_t i, struct gv_vm_gpu *g, struct gv_error **err)
{
        static const char *const keys[] = { "mode", "gpu", "type", NULL };
        char where[32];
        const char *mode = NULL, *gpu = NULL, *type = NULL;
        int r;

        snprintf(where, sizeof(where), "gpus[%zu]", i);
        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "%s: a GPU is an object.", where);
        r = check_keys(j, where, keys, err);
        if (r >= 0)
                r = gv_json_get_string(j, "mode", &mode, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "gpu", &gpu, err);
        if (r >= 0)
                r = gv_json_opt_string(j, "type", &type, err);
        if (r < 0)
                return gv_error_wrap(err, r, "%s", where);
        g->mode = gv_vm_gpu_mode_from_string(mode);
        if ((int)g->mode < 0)
                return gv_error_set(err, EINVAL, "%s.mode: '%s' is not a GPU mode; use "
                                    "passthrough, vgpu or mig-vgpu.", where, mode);
        if (gpu && strcmp(gpu, "any") != 0) {
                if (!selector_is_valid(gpu))
                        return gv_error_set(err, EINVAL, "%s.gpu: '%s' is not a GPU selector "
                                            "(an index, a PCI address, a UUID or \"any\").",
                                            where, gpu);
                g->gpu = xstrdup(gpu);
        }
        if (g->mode == GV_VM_GPU_PASSTHROUGH) {
                if (type)
                        return gv_error_set(err, EINVAL, "%s: a pass-through GPU has no vGPU "
                                            "type.", where);
        } else {
                if (!type)
                        return gv_error_set(err, EINVAL, "%s: mode %s needs a vGPU 'type' (e.g. "
                                            "\"H100XM-20C\"; `gpuvirt vgpu types` lists them).",
                                            where, mode);
                if (!selector_is_valid(type))
                        return gv_error_set(err, EINVAL, "%s.type: '%s' is not a vGPU type name.",
                                            where, type);
                g->type = xstrdup(type);
        }
        return 0;
}

/* ---- cloud_init ---- */

/* The key types sshd(8) takes in authorized_keys ("AUTHORIZED_KEYS FILE FORMAT"). */
static const char *const ssh_key_types[] = {
        "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-dss", NULL,
};

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Strict base64 (RFC 4648 §4, padded) of s[0..n) into out (at least n / 4 * 3 bytes);
 * the number of bytes, or -EINVAL. */
static ssize_t b64_decode(const char *s, size_t n, uint8_t *out)
{
        size_t o = 0;

        if (n == 0 || n % 4)
                return -EINVAL;
        for (size_t i = 0; i < n; i += 4) {
                int v[4], pad = 0;
                for (int k = 0; k < 4; k++) {
                        char c = s[i + k];
                        if (c == '=' && i + 4 == n && k >= 2) {
                                v[k] = 0;
                                pad++;
                        } else if (pad || (v[k] = b64_value(c)) < 0) {
                                return -EINVAL;
                        }
                }
                uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                             (uint32_t)v[3];
                out[o++] = (uint8_t)(w >> 16);
                if (pad < 2)
                        out[o++] = (uint8_t)(w >> 8);
                if (pad < 1)
                        out[o++] = (uint8_t)w;
        }
        return (ssize_t)o;
}

/* "TYPE BASE64 [COMMENT]": printable ASCII, a known TYPE, and key data that is base64 of an
 * SSH public key blob naming the same TYPE (RFC 4253 §6.6: string type, then the key). */
static int check_ssh_key(const char *key, const char *where, struct gv_error **err)
{
        size_t n = strlen(key), tlen, blen;
        const char *blob;
        ssize_t got;

        if (n == 0 || n > GV_VM_MAX_SSH_KEY_LEN)
                return gv_error_set(err, EINVAL, "%s: a public key is 1 to %u bytes, not %zu.",
                                    where, GV_VM_MAX_SSH_KEY_LEN, n);
        for (size_t i = 0; i < n; i++)
                if (key[i] < 0x20 || key[i] > 0x7e)
                        return gv_error_set(err, EINVAL, "%s: a public key is one line of "
                                            "printable ASCII (byte %zu is 0x%02x); give each key "
                                            "as its own string.", where, i,
                                            (unsigned char)key[i]);
        tlen = strcspn(key, " ");
        bool known = false;
        for (size_t i = 0; ssh_key_types[i]; i++)
                if (strlen(ssh_key_types[i]) == tlen && strncmp(key, ssh_key_types[i], tlen) == 0)
                        known = true;
        if (!known) {
                _cleanup_free_ char *types = strv_join((char **)ssh_key_types, ", ");
                return gv_error_set(err, EINVAL, "%s: '%.*s' is not an SSH public key type; a "
                                    "key is the line of an id_*.pub file (\"ssh-ed25519 AAAA... "
                                    "user@host\", no options) and its type one of %s.", where,
                                    (int)(tlen > 40 ? 40 : tlen), key, types);
        }
        blob = key + tlen + strspn(key + tlen, " ");
        blen = strcspn(blob, " ");
        _cleanup_free_ uint8_t *raw = xmalloc(blen / 4 * 3 + 3);
        got = b64_decode(blob, blen, raw);
        if (got < 0)
                return gv_error_set(err, EINVAL, "%s: the key data after '%.*s' is not base64; "
                                    "copy the whole line of the .pub file.", where, (int)tlen,
                                    key);
        if ((size_t)got < 4 + tlen || raw[0] || raw[1] || raw[2] != (tlen >> 8 & 0xff) ||
            raw[3] != (tlen & 0xff) || memcmp(raw + 4, key, tlen) != 0)
                return gv_error_set(err, EINVAL, "%s: the key data is not a '%.*s' key (it "
                                    "names another type or is cut short); copy the whole line "
                                    "of the .pub file.", where, (int)tlen, key);
        return 0;
}

/* RFC 1123 host name: dot-separated labels of a-z 0-9 '-', 1-63 each, no '-' at either end. */
static bool hostname_is_valid(const char *s)
{
        size_t n = strlen(s), label = 0;

        if (n == 0 || n > GV_VM_MAX_HOSTNAME)
                return false;
        for (size_t i = 0; i <= n; i++) {
                char c = s[i];
                if (c == '.' || c == '\0') {
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return false;
                        label = 0;
                } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                           (c == '-' && label > 0)) {
                        label++;
                } else {
                        return false;
                }
        }
        return true;
}

struct gv_vm_cloud_init *gv_vm_cloud_init_free(struct gv_vm_cloud_init *ci)
{
        if (!ci)
                return NULL;
        free(ci->user_data);
        strv_free(ci->ssh_authorized_keys);
        free(ci->hostname);
        free(ci);
        return NULL;
}

int gv_vm_cloud_init_from_json(const json_t *j, struct gv_vm_cloud_init **ret,
                               struct gv_error **err)
{
        static const char *const keys[] = { "user_data", "ssh_authorized_keys", "hostname",
                                            NULL };
        _cleanup_(gv_vm_cloud_init_freep) struct gv_vm_cloud_init *ci =
                xnew0(struct gv_vm_cloud_init, 1);
        json_t *v;
        int r;

        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "cloud_init: an object with user_data, "
                                    "ssh_authorized_keys and hostname (each optional).");
        r = check_keys(j, "cloud_init", keys, err);
        if (r < 0)
                return r;
        v = json_object_get(j, "user_data");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v))
                        return gv_error_set(err, EINVAL, "cloud_init.user_data: a string (the "
                                            "user data, e.g. \"#cloud-config\\n...\").");
                size_t n = json_string_length(v);
                if (n == 0 || n > GV_VM_MAX_USER_DATA)
                        return gv_error_set(err, EINVAL, "cloud_init.user_data: 1 to %u bytes, "
                                            "not %zu; leave it out for a minimal "
                                            "#cloud-config.", GV_VM_MAX_USER_DATA, n);
                if (strlen(json_string_value(v)) != n)
                        return gv_error_set(err, EINVAL, "cloud_init.user_data: holds a NUL "
                                            "byte; user data is text.");
                ci->user_data = xstrdup(json_string_value(v));
        }
        v = json_object_get(j, "ssh_authorized_keys");
        if (v && !json_is_null(v)) {
                if (!json_is_array(v) || json_array_size(v) > GV_VM_MAX_SSH_KEYS)
                        return gv_error_set(err, EINVAL, "cloud_init.ssh_authorized_keys: an "
                                            "array of at most %u public keys (strings).",
                                            GV_VM_MAX_SSH_KEYS);
                for (size_t i = 0; i < json_array_size(v); i++) {
                        json_t *k = json_array_get(v, i);
                        char where[64];
                        snprintf(where, sizeof(where), "cloud_init.ssh_authorized_keys[%zu]", i);
                        if (!json_is_string(k))
                                return gv_error_set(err, EINVAL, "%s: a public key is a "
                                                    "string.", where);
                        if (strlen(json_string_value(k)) != json_string_length(k))
                                return gv_error_set(err, EINVAL, "%s: holds a NUL byte.",
                                                    where);
                        r = check_ssh_key(json_string_value(k), where, err);
                        if (r < 0)
                                return r;
                        strv_extend(&ci->ssh_authorized_keys, json_string_value(k));
                }
        }
        v = json_object_get(j, "hostname");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v) || !hostname_is_valid(json_string_value(v)))
                        return gv_error_set(err, EINVAL, "cloud_init.hostname: '%s' is not a "
                                            "host name (labels of a-z, 0-9 and '-', 1-63 each, "
                                            "not starting or ending with '-', joined by '.'; "
                                            "at most %u bytes).",
                                            json_is_string(v) ? json_string_value(v) : "?",
                                            GV_VM_MAX_HOSTNAME);
                ci->hostname = xstrdup(json_string_value(v));
        }
        *ret = TAKE_PTR(ci);
        return 0;
}

json_t *gv_vm_cloud_init_to_json(const struct gv_vm_cloud_init *ci)
{
        json_t *o = json_object(), *keys = json_array();

        if (ci->user_data)
                json_object_set_new(o, "user_data", json_string(ci->user_data));
        for (char **k = ci->ssh_authorized_keys; k && *k; k++)
                json_array_append_new(keys, json_string(*k));
        json_object_set_new(o, "ssh_authorized_keys", keys);
        if (ci->hostname)
                json_object_set_new(o, "hostname", json_string(ci->hostname));
        return o;
}

static void derive_mac(const struct gv_uuid *u, size_t index, char out[18])
{
        snprintf(out, 18, "52:54:00:%02x:%02x:%02x", u->b[13], u->b[14],
                 (unsigned)((u->b[15] + index) & 0xff));
}

int gv_vm_config_from_json(const json_t *j, struct gv_vm_config **ret, struct gv_error **err)
{
        static const char *const keys[] = { "name", "uuid", "vcpus", "memory_mib", "boot",
                                            "disks", "nics", "gpus", "cloud_init", NULL };
        static const char *const boot_keys[] = { "kernel", "initrd", "append", NULL };
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = xnew0(struct gv_vm_config, 1);
        const char *name = NULL, *uuid = NULL, *append = NULL;
        struct gv_uuid u;
        json_t *a, *boot;
        int r;

        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "A VM definition is a JSON object.");
        r = check_keys(j, "VM", keys, err);
        if (r < 0)
                return r;
        r = gv_json_get_string(j, "name", &name, err);
        if (r < 0)
                return r;
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "name: '%s' is not a valid VM name "
                                    "([a-z0-9][a-z0-9._-]{0,62}).", name);
        c->name = xstrdup(name);
        r = gv_json_opt_string(j, "uuid", &uuid, err);
        if (r < 0)
                return r;
        if (uuid) {
                if (gv_parse_uuid(uuid, &u) < 0 || gv_uuid_is_null(&u))
                        return gv_error_set(err, EINVAL, "uuid: '%s' is not a UUID.", uuid);
        } else {
                r = gv_uuid_random(&u);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot generate a UUID: %s.",
                                            strerror(-r));
        }
        gv_uuid_format(&u, c->uuid);

        c->vcpus = 1;
        c->memory_mib = 1024;
        r = gv_json_opt_u32(j, "vcpus", &c->vcpus, err);
        if (r >= 0)
                r = gv_json_opt_u64(j, "memory_mib", &c->memory_mib, err);
        if (r < 0)
                return r;
        if (c->vcpus < 1 || c->vcpus > GV_VM_MAX_VCPUS)
                return gv_error_set(err, EINVAL, "vcpus: %" PRIu32 " is out of range 1..%u.",
                                    c->vcpus, GV_VM_MAX_VCPUS);
        if (c->memory_mib < 16 || c->memory_mib > GV_VM_MAX_MEMORY_MIB)
                return gv_error_set(err, EINVAL, "memory_mib: %" PRIu64 " is out of range "
                                    "16..%llu.", c->memory_mib, GV_VM_MAX_MEMORY_MIB);

        boot = json_object_get(j, "boot");
        if (boot && !json_is_null(boot)) {
                if (!json_is_object(boot))
                        return gv_error_set(err, EINVAL, "boot: an object with kernel, initrd "
                                            "and append.");
                r = check_keys(boot, "boot", boot_keys, err);
                if (r >= 0)
                        r = parse_path(boot, "kernel", "boot", true, &c->kernel, err);
                if (r >= 0)
                        r = parse_path(boot, "initrd", "boot", false, &c->initrd, err);
                if (r >= 0)
                        r = gv_json_opt_string(boot, "append", &append, err);
                if (r < 0)
                        return r;
                if (append) {
                        if (strlen(append) > MAX_APPEND_LEN || has_control(append))
                                return gv_error_set(err, EINVAL, "boot.append: at most %d "
                                                    "bytes without control characters.",
                                                    MAX_APPEND_LEN);
                        c->append = xstrdup(append);
                }
        }

        a = json_object_get(j, "disks");
        if (a && !json_is_null(a)) {
                if (!json_is_array(a) || json_array_size(a) > GV_VM_MAX_DISKS)
                        return gv_error_set(err, EINVAL, "disks: an array of at most %u disks.",
                                            GV_VM_MAX_DISKS);
                c->disks = xnew0(struct gv_vm_disk, json_array_size(a) + 1);
                for (size_t i = 0; i < json_array_size(a); i++) {
                        r = parse_disk(json_array_get(a, i), i, &c->disks[i], err);
                        c->n_disks++;
                        if (r < 0)
                                return r;
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(c->disks[k].name, c->disks[i].name) == 0)
                                        return gv_error_set(err, EEXIST, "disks[%zu]: the name "
                                                            "'%s' is taken by disks[%zu].", i,
                                                            c->disks[i].name, k);
                }
        }
        a = json_object_get(j, "nics");
        if (a && !json_is_null(a)) {
                if (!json_is_array(a) || json_array_size(a) > GV_VM_MAX_NICS)
                        return gv_error_set(err, EINVAL, "nics: an array of at most %u NICs.",
                                            GV_VM_MAX_NICS);
                c->nics = xnew0(struct gv_vm_nic, json_array_size(a) + 1);
                for (size_t i = 0; i < json_array_size(a); i++) {
                        r = parse_nic(json_array_get(a, i), i, &c->nics[i], err);
                        c->n_nics++;
                        if (r < 0)
                                return r;
                        if (!c->nics[i].mac[0])
                                derive_mac(&u, i, c->nics[i].mac);
                }
                /* A host port forwards to one guest only. */
                for (size_t i = 0; i < c->n_nics; i++)
                        for (size_t f = 0; f < c->nics[i].n_forwards; f++)
                                for (size_t k = 0; k <= i; k++)
                                        for (size_t g = 0; g < (k == i ? f : c->nics[k].n_forwards);
                                             g++) {
                                                const struct gv_vm_forward *x =
                                                        &c->nics[i].forwards[f];
                                                const struct gv_vm_forward *y =
                                                        &c->nics[k].forwards[g];
                                                if (x->udp == y->udp &&
                                                    x->host_port == y->host_port)
                                                        return gv_error_set(
                                                                err, EEXIST, "nics[%zu]: host "
                                                                "port %s/%u is forwarded twice.",
                                                                i, x->udp ? "udp" : "tcp",
                                                                x->host_port);
                                        }
        }
        a = json_object_get(j, "gpus");
        if (a && !json_is_null(a)) {
                if (!json_is_array(a) || json_array_size(a) > GV_VM_MAX_GPUS)
                        return gv_error_set(err, EINVAL, "gpus: an array of at most %u GPUs.",
                                            GV_VM_MAX_GPUS);
                c->gpus = xnew0(struct gv_vm_gpu, json_array_size(a) + 1);
                for (size_t i = 0; i < json_array_size(a); i++) {
                        r = parse_gpu(json_array_get(a, i), i, &c->gpus[i], err);
                        c->n_gpus++;
                        if (r < 0)
                                return r;
                }
        }
        a = json_object_get(j, "cloud_init");
        if (a && !json_is_null(a)) {
                r = gv_vm_cloud_init_from_json(a, &c->cloud_init, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

json_t *gv_vm_config_to_json(const struct gv_vm_config *c)
{
        json_t *j = json_object(), *a;

        json_object_set_new(j, "name", json_string(c->name));
        json_object_set_new(j, "uuid", json_string(c->uuid));
        json_object_set_new(j, "vcpus", json_integer(c->vcpus));
        json_object_set_new(j, "memory_mib", json_integer((json_int_t)c->memory_mib));
        if (c->kernel) {
                json_t *b = json_object();
                json_object_set_new(b, "kernel", json_string(c->kernel));
                if (c->initrd)
                        json_object_set_new(b, "initrd", json_string(c->initrd));
                if (c->append)
                        json_object_set_new(b, "append", json_string(c->append));
                json_object_set_new(j, "boot", b);
        }
        a = json_array();
        for (size_t i = 0; i < c->n_disks; i++) {
                const struct gv_vm_disk *d = &c->disks[i];
                json_t *o = json_object();
                json_object_set_new(o, "name", json_string(d->name));
                if (d->base)
                        json_object_set_new(o, "base", json_string(d->base));
                if (d->path)
                        json_object_set_new(o, "path", json_string(d->path));
                if (d->size)
                        json_object_set_new(o, "size", json_integer((json_int_t)d->size));
                if (d->readonly)
                        json_object_set_new(o, "readonly", json_true());
                json_array_append_new(a, o);
        }
        json_object_set_new(j, "disks", a);
        a = json_array();
        for (size_t i = 0; i < c->n_nics; i++) {
                const struct gv_vm_nic *n = &c->nics[i];
                json_t *o = json_object();
                json_object_set_new(o, "mode", json_string(gv_vm_nic_mode_to_string(n->mode)));
                json_object_set_new(o, "mac", json_string(n->mac));
                if (n->bridge)
                        json_object_set_new(o, "bridge", json_string(n->bridge));
                if (n->mode == GV_VM_NIC_USER) {
                        json_t *fw = json_array();
                        for (size_t k = 0; k < n->n_forwards; k++) {
                                json_t *f = json_object();
                                json_object_set_new(f, "proto", json_string(n->forwards[k].udp
                                                                                    ? "udp"
                                                                                    : "tcp"));
                                json_object_set_new(f, "host_port",
                                                    json_integer(n->forwards[k].host_port));
                                json_object_set_new(f, "guest_port",
                                                    json_integer(n->forwards[k].guest_port));
                                json_array_append_new(fw, f);
                        }
                        json_object_set_new(o, "forwards", fw);
                }
                json_array_append_new(a, o);
        }
        json_object_set_new(j, "nics", a);
        a = json_array();
        for (size_t i = 0; i < c->n_gpus; i++) {
                const struct gv_vm_gpu *g = &c->gpus[i];
                json_t *o = json_object();
                json_object_set_new(o, "mode", json_string(gv_vm_gpu_mode_to_string(g->mode)));
                json_object_set_new(o, "gpu", json_string(g->gpu ? g->gpu : "any"));
                if (g->type)
                        json_object_set_new(o, "type", json_string(g->type));
                json_array_append_new(a, o);
        }
        json_object_set_new(j, "gpus", a);
        if (c->cloud_init)
                json_object_set_new(j, "cloud_init", gv_vm_cloud_init_to_json(c->cloud_init));
        return j;
}

struct gv_vm_config *gv_vm_config_free(struct gv_vm_config *c)
{
        if (!c)
                return NULL;
        free(c->name);
        free(c->kernel);
        free(c->initrd);
        free(c->append);
        for (size_t i = 0; i < c->n_disks; i++) {
                free(c->disks[i].name);
                free(c->disks[i].base);
                free(c->disks[i].path);
        }
        free(c->disks);
        for (size_t i = 0; i < c->n_nics; i++) {
                free(c->nics[i].bridge);
                free(c->nics[i].forwards);
        }
        free(c->nics);
        for (size_t i = 0; i < c->n_gpus; i++) {
                free(c->gpus[i].gpu);
                free(c->gpus[i].type);
        }
        free(c->gpus);
        gv_vm_cloud_init_free(c->cloud_init);
        free(c);
        return NULL;
}
