/* SPDX-License-Identifier: MIT */
/*
 * The cloud-init NoCloud seed: the meta-data and user-data texts, and the ISO made from them,
 * read back here byte by byte (ECMA-119: the volume descriptors from sector 16, the root
 * directory's records; IEEE P1282 Rock Ridge "NM" entries for the real names): volume id
 * "cidata", a Joliet descriptor, /meta-data and /user-data holding the texts, mode 0600, a
 * second write replacing the first, nothing left beside it; a missing tool and a failing one
 * leave the old seed in place and say what to do. The ISO tests skip, saying why, where
 * neither genisoimage nor xorriso is installed.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "vmm/cloud-init.h"

#define ED_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
#define UUID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define SECTOR 2048u

static struct gv_vm_config *config(const char *text)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vm_config *c = NULL;

        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        int r = gv_vm_config_from_json(j, &c, &e);
        if (r < 0)
                fail_msg("config: %s", gv_error_msg(e, r));
        return c;
}

/* ---- the texts ---- */

static void test_texts_keys_and_user_data(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"web-1\", \"uuid\": \"" UUID "\", \"cloud_init\": {"
                " \"user_data\": \"#!/bin/sh\\necho hi\\n\","
                " \"ssh_authorized_keys\": [\"" ED_KEY " a\\\"b\\\\c\", \"" ED_KEY "\"],"
                " \"hostname\": \"db.example.org\"}}");
        _cleanup_free_ char *md = gv_cloud_init_meta_data(c);
        _cleanup_free_ char *ud = gv_cloud_init_user_data(c);

        /* Keys in meta-data public-keys, YAML-quoted (the '"' and '\' of the comment escaped);
         * the user data exactly as given. */
        assert_string_equal(md, "instance-id: \"" UUID "\"\n"
                                "local-hostname: \"db.example.org\"\n"
                                "public-keys:\n"
                                "  - \"" ED_KEY " a\\\"b\\\\c\"\n"
                                "  - \"" ED_KEY "\"\n");
        assert_string_equal(ud, "#!/bin/sh\necho hi\n");
}

static void test_texts_keys_only(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"my_vm\", \"uuid\": \"" UUID "\", \"cloud_init\": {"
                " \"ssh_authorized_keys\": [\"" ED_KEY " me@host\"]}}");
        _cleanup_free_ char *md = gv_cloud_init_meta_data(c);
        _cleanup_free_ char *ud = gv_cloud_init_user_data(c);

        /* The host name defaults to the VM's name, '_' made '-'. */
        assert_string_equal(md, "instance-id: \"" UUID "\"\n"
                                "local-hostname: \"my-vm\"\n"
                                "public-keys:\n"
                                "  - \"" ED_KEY " me@host\"\n");
        assert_string_equal(ud, "#cloud-config\n"
                                "ssh_authorized_keys:\n"
                                "  - \"" ED_KEY " me@host\"\n");
}

static void test_texts_empty(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c =
                config("{\"name\": \"bare\", \"uuid\": \"" UUID "\", \"cloud_init\": {}}");
        _cleanup_free_ char *md = gv_cloud_init_meta_data(c);
        _cleanup_free_ char *ud = gv_cloud_init_user_data(c);

        assert_string_equal(md, "instance-id: \"" UUID "\"\nlocal-hostname: \"bare\"\n");
        assert_string_equal(ud, "#cloud-config\n{}\n");
}

/* ---- the ISO, read back ---- */

static bool have_tool(void)
{
        return gv_program_in_path("genisoimage") || gv_program_in_path("xorriso");
}

#define NEED_TOOL()                                                                          \
        do {                                                                                 \
                if (!have_tool()) {                                                          \
                        print_message("skipped: neither genisoimage nor xorriso is "         \
                                      "installed (deps/debian-packages.txt: genisoimage)\n"); \
                        skip();                                                              \
                }                                                                            \
        } while (0)

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct iso {
        uint8_t *data;
        size_t len;
};

static const uint8_t *sector(const struct iso *iso, uint32_t lba, uint32_t bytes)
{
        if ((size_t)lba * SECTOR + bytes > iso->len)
                fail_msg("ISO: sector %u (+%u bytes) is past the end (%zu bytes)", lba, bytes,
                         iso->len);
        return iso->data + (size_t)lba * SECTOR;
}

/* The volume id of the primary descriptor, trailing spaces cut; whether a Joliet
 * supplementary descriptor (type 2, escape "%/@", "%/C" or "%/E") is there. */
static void descriptors(const struct iso *iso, char volid[33], bool *joliet,
                        const uint8_t **root_record)
{
        bool primary = false;

        *joliet = false;
        for (uint32_t lba = 16; lba < 64; lba++) {
                const uint8_t *d = sector(iso, lba, SECTOR);
                if (memcmp(d + 1, "CD001", 5) != 0)
                        fail_msg("ISO: sector %u is not a volume descriptor", lba);
                if (d[0] == 255)
                        break;
                if (d[0] == 1) {
                        primary = true;
                        memcpy(volid, d + 40, 32);
                        volid[32] = 0;
                        for (int i = 31; i >= 0 && volid[i] == ' '; i--)
                                volid[i] = 0;
                        *root_record = d + 156;
                }
                if (d[0] == 2 && d[88] == '%' && d[89] == '/' &&
                    (d[90] == '@' || d[90] == 'C' || d[90] == 'E'))
                        *joliet = true;
        }
        assert_true(primary);
}

/* The file named `name` (its Rock Ridge NM name) in the root directory: contents. */
static char *iso_file(const struct iso *iso, const uint8_t *root_record, const char *name)
{
        uint32_t dir = le32(root_record + 2), dir_len = le32(root_record + 10);
        const uint8_t *d = sector(iso, dir, dir_len);

        for (uint32_t off = 0; off < dir_len;) {
                const uint8_t *r = d + off;
                if (r[0] == 0) { /* records do not cross sectors: on to the next one */
                        off = (off / SECTOR + 1) * SECTOR;
                        continue;
                }
                uint8_t name_len = r[32];
                /* System use area: after the name, padded to an even offset. */
                size_t su = 33 + name_len + (name_len % 2 == 0 ? 1 : 0);
                for (size_t p = su; p + 4 <= r[0];) {
                        uint8_t len = r[p + 2];
                        if (len < 4 || p + len > r[0])
                                break;
                        if (r[p] == 'N' && r[p + 1] == 'M' && (size_t)len - 5 == strlen(name) &&
                            memcmp(r + p + 5, name, strlen(name)) == 0) {
                                uint32_t size = le32(r + 10);
                                const uint8_t *f = sector(iso, le32(r + 2), size);
                                char *s = xmalloc(size + 1);
                                memcpy(s, f, size);
                                s[size] = 0;
                                return s;
                        }
                        p += len;
                }
                off += r[0];
        }
        return NULL;
}

static void load_iso(const char *path, struct iso *iso)
{
        char *data = NULL;
        size_t len = 0;
        int r = gv_read_file(path, 16u << 20, &data, &len);
        if (r < 0)
                fail_msg("cannot read %s: %s", path, strerror(-r));
        iso->data = (uint8_t *)data;
        iso->len = len;
}

/* Names in `dir` other than the ones listed (NULL-terminated), joined; "" when none. */
static char *extra_files(const char *dir, const char *const *expected)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        char *out = xstrdup("");

        assert_non_null(d);
        while ((de = readdir(d))) {
                bool known = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
                for (size_t i = 0; expected[i]; i++)
                        known = known || strcmp(de->d_name, expected[i]) == 0;
                if (!known) {
                        char *x = xasprintf("%s %s", out, de->d_name);
                        free(out);
                        out = x;
                }
        }
        closedir(d);
        return out;
}

static char tmpdir[] = "/tmp/gv-cloud-init-XXXXXX";

/* A fresh folder under the test's temporary directory. */
static char *subdir(const char *name)
{
        char *d = gv_path_join(tmpdir, name);
        assert_int_equal(gv_mkdir_p(d, 0700), 0);
        return d;
}

static int setup(void **state)
{
        (void)state;
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        return gv_rm_rf(tmpdir);
}

static void test_seed_iso(void **state)
{
        (void)state;
        NEED_TOOL();
        _cleanup_free_ char *dir = subdir("seed");
        _cleanup_free_ char *iso_path = gv_path_join(dir, "seed.iso");
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"web-1\", \"uuid\": \"" UUID "\", \"cloud_init\": {"
                " \"ssh_authorized_keys\": [\"" ED_KEY " me@host\"]}}");
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c2 = config(
                "{\"name\": \"web-1\", \"uuid\": \"" UUID "\", \"cloud_init\": {"
                " \"user_data\": \"#cloud-config\\nruncmd: [[touch, /x]]\\n\","
                " \"hostname\": \"renamed\"}}");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *md = gv_cloud_init_meta_data(c), *ud = gv_cloud_init_user_data(c);
        _cleanup_free_ char *got_md = NULL, *got_ud = NULL, *got_md2 = NULL, *got_ud2 = NULL;
        _cleanup_free_ char *extra = NULL;
        static const char *const only_seed[] = { "seed.iso", NULL };
        struct iso iso = { 0 }, iso2 = { 0 };
        const uint8_t *root = NULL;
        char volid[33];
        bool joliet;
        struct stat st;
        int r;

        r = gv_cloud_init_write_seed(c, iso_path, &e);
        if (r < 0)
                fail_msg("write_seed: %s", gv_error_msg(e, r));
        assert_int_equal(stat(iso_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        load_iso(iso_path, &iso);
        descriptors(&iso, volid, &joliet, &root);
        assert_string_equal(volid, "cidata");
        assert_true(joliet);
        got_md = iso_file(&iso, root, "meta-data");
        got_ud = iso_file(&iso, root, "user-data");
        if (!got_md || !got_ud)
                fail_msg("the ISO lacks /meta-data or /user-data under their Rock Ridge names");
        assert_string_equal(got_md, md);
        assert_string_equal(got_ud, ud);
        assert_non_null(strstr(got_md, "public-keys:\n  - \"" ED_KEY " me@host\""));
        /* Nothing but the seed is left beside it (scratch directory, .tmp). */
        extra = extra_files(dir, only_seed);
        assert_string_equal(extra, "");

        /* Written again with another definition: the new texts replace the old. */
        r = gv_cloud_init_write_seed(c2, iso_path, &e);
        if (r < 0)
                fail_msg("write_seed again: %s", gv_error_msg(e, r));
        load_iso(iso_path, &iso2);
        descriptors(&iso2, volid, &joliet, &root);
        got_md2 = iso_file(&iso2, root, "meta-data");
        got_ud2 = iso_file(&iso2, root, "user-data");
        assert_non_null(got_md2);
        assert_non_null(got_ud2);
        assert_string_equal(got_ud2, "#cloud-config\nruncmd: [[touch, /x]]\n");
        assert_non_null(strstr(got_md2, "local-hostname: \"renamed\""));
        assert_null(strstr(got_md2, "public-keys"));
        free(iso.data);
        free(iso2.data);
}

/* Point $PATH at `dir` for one call; restored after. */
static int write_with_path(const char *dir, const struct gv_vm_config *c, const char *iso_path,
                           struct gv_error **err)
{
        _cleanup_free_ char *old = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        setenv("PATH", dir, 1);
        int r = gv_cloud_init_write_seed(c, iso_path, err);
        setenv("PATH", old, 1);
        return r;
}

static void test_missing_tool(void **state)
{
        (void)state;
        _cleanup_free_ char *dir = subdir("missing");
        _cleanup_free_ char *iso_path = gv_path_join(dir, "none.iso");
        _cleanup_free_ char *empty = subdir("empty-bin");
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c =
                config("{\"name\": \"a\", \"cloud_init\": {}}");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *extra = NULL;
        static const char *const nothing[] = { NULL };

        assert_int_equal(write_with_path(empty, c, iso_path, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "neither 'genisoimage' nor 'xorriso'"));
        assert_non_null(strstr(e->msg, "install the Debian package genisoimage"));
        extra = extra_files(dir, nothing);
        assert_string_equal(extra, "");
}

/* A genisoimage that fails: -EIO with its words, and the seed already there is untouched. */
static void test_tool_fails(void **state)
{
        (void)state;
        _cleanup_free_ char *dir = subdir("fails");
        _cleanup_free_ char *iso_path = gv_path_join(dir, "keep.iso");
        _cleanup_free_ char *bin = subdir("bad-bin");
        _cleanup_free_ char *tool = gv_path_join(bin, "genisoimage");
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c =
                config("{\"name\": \"a\", \"cloud_init\": {}}");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *text = NULL, *extra = NULL;
        static const char *const left[] = { "keep.iso", NULL };

        assert_int_equal(gv_write_file(tool, "#!/bin/sh\necho 'disk on fire' >&2\nexit 3\n",
                                       GV_WRITE_CREATE), 0);
        assert_int_equal(chmod(tool, 0755), 0);
        assert_int_equal(gv_write_file(iso_path, "old seed", GV_WRITE_CREATE), 0);
        /* /bin for the script's own /bin/sh is not needed: the kernel runs it by its path. */
        assert_int_equal(write_with_path(bin, c, iso_path, &e), -EIO);
        assert_non_null(strstr(e->msg, "Cannot make the cloud-init seed"));
        assert_non_null(strstr(e->msg, "disk on fire"));
        assert_int_equal(gv_read_file(iso_path, 4096, &text, NULL), 0);
        assert_string_equal(text, "old seed");
        extra = extra_files(dir, left);
        assert_string_equal(extra, "");
}

static void test_no_cloud_init(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config("{\"name\": \"a\"}");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *p = gv_path_join(tmpdir, "x.iso");

        assert_int_equal(gv_cloud_init_write_seed(c, p, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "no cloud_init"));
        assert_int_equal(gv_file_exists(p), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_texts_keys_and_user_data),
                cmocka_unit_test(test_texts_keys_only),
                cmocka_unit_test(test_texts_empty),
                cmocka_unit_test(test_seed_iso),
                cmocka_unit_test(test_missing_tool),
                cmocka_unit_test(test_tool_fails),
                cmocka_unit_test(test_no_cloud_init),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
