/* SPDX-License-Identifier: MIT */
/*
 * cloud-init.c — the NoCloud seed of a VM (cloud-init.h).
 */
#include "vmm/cloud-init.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"
#include "vmm/proc.h"

#define ISO_TIMEOUT_MS (60 * 1000)
#define ISO_OUTPUT_MAX (64 * 1024)
/* The volume label NoCloud looks for. */
#define SEED_LABEL "cidata"

/* A YAML double-quoted scalar (YAML 1.1 §4.6.8, 1.2 §7.3.1): '\' and '"' escaped. The
 * parser lets only printable ASCII into the strings we quote, so nothing else needs it. */
static void yaml_quoted(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static void yaml_list(FILE *f, char *const *items)
{
        for (char *const *k = items; k && *k; k++) {
                fputs("  - ", f);
                yaml_quoted(f, *k);
                fputc('\n', f);
        }
}

/* open_memstream: the text grows as it is written; fclose() finalises it. */
static FILE *text_open(char **buf, size_t *len)
{
        FILE *f = open_memstream(buf, len);
        if (!f)
                abort(); /* only ENOMEM; allocation failure aborts everywhere (alloc.h) */
        return f;
}

char *gv_cloud_init_meta_data(const struct gv_vm_config *c)
{
        const struct gv_vm_cloud_init *ci = c->cloud_init;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = text_open(&buf, &len);

        fputs("instance-id: ", f);
        yaml_quoted(f, c->uuid);
        fputs("\nlocal-hostname: ", f);
        if (ci && ci->hostname) {
                yaml_quoted(f, ci->hostname);
        } else {
                /* A VM name may hold '_', which a host name may not. */
                _cleanup_free_ char *h = xstrdup(c->name);
                for (char *p = h; *p; p++)
                        if (*p == '_')
                                *p = '-';
                yaml_quoted(f, h);
        }
        fputc('\n', f);
        if (ci && ci->ssh_authorized_keys && ci->ssh_authorized_keys[0]) {
                fputs("public-keys:\n", f);
                yaml_list(f, ci->ssh_authorized_keys);
        }
        fclose(f);
        return buf;
}

char *gv_cloud_init_user_data(const struct gv_vm_config *c)
{
        const struct gv_vm_cloud_init *ci = c->cloud_init;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (ci && ci->user_data)
                return xstrdup(ci->user_data);
        f = text_open(&buf, &len);
        fputs("#cloud-config\n", f);
        if (ci && ci->ssh_authorized_keys && ci->ssh_authorized_keys[0]) {
                fputs("ssh_authorized_keys:\n", f);
                yaml_list(f, ci->ssh_authorized_keys);
        } else {
                fputs("{}\n", f); /* an empty mapping: nothing to configure */
        }
        fclose(f);
        return buf;
}

/* A path as an argument of a tool: absolute, or "./" in front so it never reads as an
 * option. */
static char *path_arg(const char *path)
{
        return path[0] == '/' ? xstrdup(path) : xasprintf("./%s", path);
}

static int make_iso(const char *dir, const char *out, struct gv_error **err)
{
        _cleanup_free_ char *ud = NULL, *md = NULL, *o = path_arg(out);
        _cleanup_strv_free_ char **argv = NULL;
        int r;

        {
                _cleanup_free_ char *u = gv_path_join(dir, "user-data");
                _cleanup_free_ char *m = gv_path_join(dir, "meta-data");
                ud = path_arg(u);
                md = path_arg(m);
        }
        /* genisoimage first (the tool cloud-init's documentation uses), then xorriso's mkisofs
         * emulation. -J Joliet and -R Rock Ridge keep the names "user-data" and "meta-data"
         * as they are (plain ISO 9660 level 1 would make them USER_DAT). */
        if (gv_program_in_path("genisoimage")) {
                strv_extend(&argv, "genisoimage");
                strv_extend(&argv, "-quiet");
        } else if (gv_program_in_path("xorriso")) {
                strv_extend(&argv, "xorriso");
                strv_extend(&argv, "-as");
                strv_extend(&argv, "mkisofs");
        } else {
                return gv_error_set(err, ENOENT, "Cannot make the cloud-init seed: neither "
                                    "'genisoimage' nor 'xorriso' is in $PATH; install the "
                                    "Debian package genisoimage (deps/debian-packages.txt).");
        }
        strv_extend(&argv, "-o");
        strv_extend(&argv, o);
        strv_extend(&argv, "-V");
        strv_extend(&argv, SEED_LABEL);
        strv_extend(&argv, "-J");
        strv_extend(&argv, "-R");
        strv_extend(&argv, ud);
        strv_extend(&argv, md);
        r = gv_proc_run(argv, ISO_TIMEOUT_MS, ISO_OUTPUT_MAX, NULL, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot make the cloud-init seed '%s' with '%s'",
                                     out, argv[0]);
        return 0;
}

int gv_cloud_init_write_seed(const struct gv_vm_config *c, const char *iso_path,
                             struct gv_error **err)
{
        _cleanup_free_ char *dir = xasprintf("%s.d.XXXXXX", iso_path);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", iso_path);
        _cleanup_free_ char *md = NULL, *ud = NULL, *mdp = NULL, *udp = NULL;
        int r;

        if (!c->cloud_init)
                return gv_error_set(err, EINVAL, "VM '%s' has no cloud_init to make a seed "
                                    "of.", c->name);
        /* mkdtemp: 0700, so the user data is private while it is there. */
        if (!mkdtemp(dir))
                return gv_error_set(err, errno, "Cannot make a scratch directory for the "
                                    "cloud-init seed beside '%s': %s.", iso_path,
                                    strerror(errno));
        md = gv_cloud_init_meta_data(c);
        ud = gv_cloud_init_user_data(c);
        mdp = gv_path_join(dir, "meta-data");
        udp = gv_path_join(dir, "user-data");
        r = gv_write_file(mdp, md, GV_WRITE_CREATE);
        if (r >= 0)
                r = gv_write_file(udp, ud, GV_WRITE_CREATE);
        if (r < 0) {
                gv_error_set(err, -r, "Cannot write the cloud-init seed's files in '%s': %s.",
                             dir, strerror(-r));
                goto out;
        }
        (void)unlink(tmp);
        r = make_iso(dir, tmp, err);
        if (r < 0)
                goto out;
        if (chmod(tmp, 0600) < 0 || rename(tmp, iso_path) < 0) {
                r = gv_error_set(err, errno, "Cannot put the cloud-init seed in place at '%s': "
                                 "%s.", iso_path, strerror(errno));
                goto out;
        }
        r = 0;
out:
        if (r < 0)
                (void)unlink(tmp);
        (void)gv_rm_rf(dir);
        return r;
}
