/* SPDX-License-Identifier: MIT */
/* The VM definition parser: defaults, the canonical round trip, and every rejection naming the
 * member at fault. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/json.h"
#include "vmm/vm-config.h"

static struct gv_vm_config *parse_ok(const char *text)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vm_config *c = NULL;

        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        int r = gv_vm_config_from_json(j, &c, &e);
        if (r < 0)
                fail_msg("unexpected error: %s", gv_error_msg(e, r));
        return c;
}

/* Expect a rejection whose message contains `needle`. */
static void parse_bad(const char *text, const char *needle)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vm_config *c = NULL;

        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        int r = gv_vm_config_from_json(j, &c, &e);
        if (r >= 0)
                fail_msg("accepted: %s", text);
        assert_null(c);
        assert_non_null(e);
        if (!strstr(e->msg, needle))
                fail_msg("message '%s' lacks '%s'", e->msg, needle);
}

static void test_defaults(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c =
                parse_ok("{\"name\": \"web-1\", \"nics\": [{}]}");

        assert_string_equal(c->name, "web-1");
        assert_int_equal(c->vcpus, 1);
        assert_int_equal(c->memory_mib, 1024);
        assert_int_equal(strlen(c->uuid), 36);
        assert_int_equal(c->n_nics, 1);
        assert_int_equal(c->nics[0].mode, GV_VM_NIC_USER);
        /* Derived MAC: QEMU's OUI, locally unique from the uuid. */
        assert_memory_equal(c->nics[0].mac, "52:54:00:", 9);
        assert_null(c->kernel);
}

static void test_full_round_trip(void **state)
{
        (void)state;
        const char *text =
                "{\"name\": \"train-7\", \"uuid\": \"3F2504E0-4F89-11D3-9A0C-0305E82C3301\","
                " \"vcpus\": 8, \"memory_mib\": 65536,"
                " \"boot\": {\"kernel\": \"/img/vmlinuz\", \"initrd\": \"/img/initrd\","
                "            \"append\": \"console=ttyS0\"},"
                " \"disks\": [{\"name\": \"root\", \"base\": \"/img/debian.qcow2\", \"size\": \"20G\"},"
                "             {\"name\": \"data\", \"size\": 1073741824},"
                "             {\"name\": \"iso\", \"path\": \"/img/x.raw\", \"readonly\": true}],"
                " \"nics\": [{\"mode\": \"user\", \"forwards\": [{\"host_port\": 2222, \"guest_port\": 22},"
                "             {\"proto\": \"udp\", \"host_port\": 2222, \"guest_port\": 53}]},"
                "            {\"mode\": \"bridge\", \"bridge\": \"br0\", \"mac\": \"52:54:00:AB:cd:01\"}],"
                " \"gpus\": [{\"mode\": \"passthrough\", \"gpu\": \"0000:18:00.0\"},"
                "            {\"mode\": \"vgpu\", \"type\": \"H100XM-20C\", \"gpu\": \"any\"},"
                "            {\"mode\": \"mig-vgpu\", \"type\": \"H100XM-1-10C\"}]}";
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = parse_ok(text);
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c2 = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *j = NULL, *j2 = NULL;

        assert_string_equal(c->uuid, "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
        assert_int_equal(c->n_disks, 3);
        assert_int_equal(c->disks[0].kind, GV_VM_DISK_OVERLAY);
        assert_int_equal(c->disks[0].size, 20ull << 30);
        assert_int_equal(c->disks[1].kind, GV_VM_DISK_EMPTY);
        assert_int_equal(c->disks[2].kind, GV_VM_DISK_IMAGE);
        assert_true(c->disks[2].readonly);
        assert_int_equal(c->nics[0].n_forwards, 2);
        assert_true(c->nics[0].forwards[1].udp);
        assert_string_equal(c->nics[1].mac, "52:54:00:ab:cd:01");
        assert_string_equal(c->nics[1].bridge, "br0");
        assert_int_equal(c->gpus[0].mode, GV_VM_GPU_PASSTHROUGH);
        assert_string_equal(c->gpus[0].gpu, "0000:18:00.0");
        assert_null(c->gpus[1].gpu); /* "any" */
        assert_string_equal(c->gpus[2].type, "H100XM-1-10C");

        /* The canonical form parses back to the same canonical form. */
        j = gv_vm_config_to_json(c);
        assert_int_equal(gv_vm_config_from_json(j, &c2, &e), 0);
        j2 = gv_vm_config_to_json(c2);
        assert_true(json_equal(j, j2));
}

static void test_rejections(void **state)
{
        (void)state;
        parse_bad("[]", "JSON object");
        parse_bad("{}", "name");
        parse_bad("{\"name\": \"Web_1\"}", "not a valid VM name");
        parse_bad("{\"name\": \"a\", \"colour\": 1}", "unknown member 'colour'");
        parse_bad("{\"name\": \"a\", \"vcpus\": 0}", "vcpus: 0 is out of range");
        parse_bad("{\"name\": \"a\", \"vcpus\": \"2\"}", "vcpus");
        parse_bad("{\"name\": \"a\", \"memory_mib\": 8}", "memory_mib");
        parse_bad("{\"name\": \"a\", \"uuid\": \"nope\"}", "uuid: 'nope'");
        parse_bad("{\"name\": \"a\", \"boot\": {\"initrd\": \"/x\"}}", "kernel");
        parse_bad("{\"name\": \"a\", \"boot\": {\"kernel\": \"vmlinuz\"}}",
                  "not an absolute path");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\"}]}", "say what the disk is");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\", \"size\": \"10X\"}]}",
                  "disks[0].size: '10X' is not a size");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\", \"size\": 1000}]}",
                  "multiple of 512");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\", \"base\": \"/b\", "
                  "\"path\": \"/p\"}]}", "not both");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\", \"size\": \"1G\"}, "
                  "{\"name\": \"d\", \"size\": \"1G\"}]}", "taken by disks[0]");
        parse_bad("{\"name\": \"a\", \"disks\": [{\"name\": \"d\", \"size\": \"1G\", "
                  "\"readonly\": true}]}", "cannot be read-only");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"mode\": \"macvtap\"}]}",
                  "nics[0].mode: 'macvtap'");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"mode\": \"bridge\"}]}", "names its host bridge");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"mode\": \"bridge\", \"bridge\": "
                  "\"br0; rm -rf\"}]}", "not an interface name");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"mac\": \"01:00:5e:00:00:01\"}]}",
                  "unicast MAC");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"forwards\": [{\"host_port\": 0, "
                  "\"guest_port\": 22}]}]}", "ports are 1..65535");
        parse_bad("{\"name\": \"a\", \"nics\": [{\"forwards\": [{\"host_port\": 80, "
                  "\"guest_port\": 22}, {\"host_port\": 80, \"guest_port\": 23}]}]}",
                  "forwarded twice");
        parse_bad("{\"name\": \"a\", \"gpus\": [{\"mode\": \"mig\"}]}", "gpus[0].mode: 'mig'");
        parse_bad("{\"name\": \"a\", \"gpus\": [{\"mode\": \"vgpu\"}]}", "needs a vGPU 'type'");
        parse_bad("{\"name\": \"a\", \"gpus\": [{\"mode\": \"passthrough\", \"type\": \"x\"}]}",
                  "no vGPU type");
        parse_bad("{\"name\": \"a\", \"gpus\": [{\"mode\": \"passthrough\", \"gpu\": "
                  "\"../../etc\"}]}", "not a GPU selector");
}

/* ---- cloud_init ---- */

/* Well-formed public keys: the base64 holds the SSH wire form naming the same type. */
#define ED_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
#define EC_KEY                                                                                  \
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAABAgMEBQYHCAkK" \
        "CwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define CI_VM(ci) "{\"name\": \"a\", \"cloud_init\": " ci "}"

static void test_cloud_init(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = parse_ok(CI_VM(
                "{\"user_data\": \"#cloud-config\\npackages: [htop]\\n\","
                " \"ssh_authorized_keys\": [\"" ED_KEY " me@laptop\", \"" EC_KEY "\"],"
                " \"hostname\": \"web-1.example.org\"}"));
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c2 = NULL, *none = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *j = NULL, *j2 = NULL;

        assert_non_null(c->cloud_init);
        assert_string_equal(c->cloud_init->user_data, "#cloud-config\npackages: [htop]\n");
        assert_string_equal(c->cloud_init->ssh_authorized_keys[0], ED_KEY " me@laptop");
        assert_string_equal(c->cloud_init->ssh_authorized_keys[1], EC_KEY);
        assert_null(c->cloud_init->ssh_authorized_keys[2]);
        assert_string_equal(c->cloud_init->hostname, "web-1.example.org");

        /* Canonical round trip: the seed survives config.json. */
        j = gv_vm_config_to_json(c);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "cloud_init"),
                                                              "hostname")),
                            "web-1.example.org");
        assert_int_equal(gv_vm_config_from_json(j, &c2, &e), 0);
        j2 = gv_vm_config_to_json(c2);
        assert_true(json_equal(j, j2));

        /* Absent and null mean no seed; an empty object is a seed with the defaults. */
        none = parse_ok("{\"name\": \"a\", \"cloud_init\": null}");
        assert_null(none->cloud_init);
        none = gv_vm_config_free(none);
        none = parse_ok(CI_VM("{}"));
        assert_non_null(none->cloud_init);
        assert_null(none->cloud_init->user_data);
        assert_null(none->cloud_init->ssh_authorized_keys);
        assert_null(none->cloud_init->hostname);
}

static void test_cloud_init_rejections(void **state)
{
        (void)state;
        _cleanup_free_ char *big = xmalloc(GV_VM_MAX_USER_DATA + 2);
        _cleanup_free_ char *too_big = NULL, *max_ok = NULL, *many = NULL, *long_key = NULL;

        parse_bad(CI_VM("\"#cloud-config\""), "cloud_init: an object");
        parse_bad(CI_VM("{\"userdata\": \"x\"}"), "cloud_init: unknown member 'userdata'");
        parse_bad(CI_VM("{\"user_data\": 7}"), "cloud_init.user_data: a string");
        parse_bad(CI_VM("{\"user_data\": \"\"}"), "cloud_init.user_data: 1 to 65536 bytes");
        {
                /* The JSON reader refuses \u0000; a document built in memory may hold one. */
                _cleanup_json_ json_t *ci = json_pack("{s:s%}", "user_data", "a\0b", (size_t)3);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                struct gv_vm_cloud_init *out = NULL;
                assert_int_equal(gv_vm_cloud_init_from_json(ci, &out, &e), -EINVAL);
                assert_null(out);
                assert_non_null(strstr(e->msg, "cloud_init.user_data: holds a NUL"));
        }
        /* 64 KiB is the most. */
        memset(big, 'x', GV_VM_MAX_USER_DATA + 1);
        big[GV_VM_MAX_USER_DATA + 1] = 0;
        too_big = xasprintf(CI_VM("{\"user_data\": \"%s\"}"), big);
        parse_bad(too_big, "not 65537");
        big[GV_VM_MAX_USER_DATA] = 0;
        max_ok = xasprintf(CI_VM("{\"user_data\": \"%s\"}"), big);
        gv_vm_config_free(parse_ok(max_ok));

        parse_bad(CI_VM("{\"ssh_authorized_keys\": \"" ED_KEY "\"}"),
                  "cloud_init.ssh_authorized_keys: an array of at most 32");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [1]}"),
                  "cloud_init.ssh_authorized_keys[0]: a public key is a string");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"\"]}"),
                  "cloud_init.ssh_authorized_keys[0]: a public key is 1 to 8192 bytes");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"" ED_KEY "\", \"ssh-foo AAAA\"]}"),
                  "cloud_init.ssh_authorized_keys[1]: 'ssh-foo' is not an SSH public key type");
        /* Options (from="...", command="...") are not taken: a key starts with its type. */
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"from=\\\"10.0.0.1\\\" " ED_KEY "\"]}"),
                  "is not an SSH public key type");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"" ED_KEY " a\\nssh-rsa x\"]}"),
                  "[0]: a public key is one line of printable ASCII (byte 82 is 0x0a)");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"ssh-ed25519 AAAA$$$$ me\"]}"),
                  "[0]: the key data after 'ssh-ed25519' is not base64");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"ssh-ed25519\"]}"), "is not base64");
        /* The type in front must be the one inside the key data. */
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"ssh-rsa "
                        "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\"]}"),
                  "[0]: the key data is not a 'ssh-rsa' key");
        parse_bad(CI_VM("{\"ssh_authorized_keys\": [\"ssh-ed25519 AAAAC3NzaC1lZA==\"]}"),
                  "is cut short");
        /* At most 32 keys, each at most 8 KiB. */
        many = xstrdup("");
        for (int i = 0; i < 33; i++) {
                char *x = xasprintf("%s%s\"%s\"", many, i ? ", " : "", ED_KEY);
                free(many);
                many = x;
        }
        char *m = xasprintf(CI_VM("{\"ssh_authorized_keys\": [%s]}"), many);
        parse_bad(m, "at most 32 public keys");
        free(m);
        memset(big, 'c', 8192);
        big[8192 - strlen(ED_KEY) - 1] = 0;
        long_key = xasprintf(CI_VM("{\"ssh_authorized_keys\": [\"" ED_KEY " %s\"]}"), big);
        gv_vm_config_free(parse_ok(long_key)); /* exactly 8192 bytes */
        free(long_key);
        big[8192 - strlen(ED_KEY) - 1] = 'c';
        big[8192 - strlen(ED_KEY)] = 0;
        long_key = xasprintf(CI_VM("{\"ssh_authorized_keys\": [\"" ED_KEY " %s\"]}"), big);
        parse_bad(long_key, "1 to 8192 bytes, not 8193");

        parse_bad(CI_VM("{\"hostname\": \"web_1\"}"), "cloud_init.hostname: 'web_1' is not a "
                  "host name");
        parse_bad(CI_VM("{\"hostname\": \"-web\"}"), "'-web' is not a host name");
        parse_bad(CI_VM("{\"hostname\": \"web-\"}"), "'web-' is not a host name");
        parse_bad(CI_VM("{\"hostname\": \"a..b\"}"), "'a..b' is not a host name");
        parse_bad(CI_VM("{\"hostname\": \"Web\"}"), "'Web' is not a host name");
        parse_bad(CI_VM("{\"hostname\": 5}"), "cloud_init.hostname");
        /* a 64-byte label */
        parse_bad(CI_VM("{\"hostname\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"), "is not a host name");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full_round_trip),
                cmocka_unit_test(test_rejections),
                cmocka_unit_test(test_cloud_init),
                cmocka_unit_test(test_cloud_init_rejections),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
