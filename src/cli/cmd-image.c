/* SPDX-License-Identifier: MIT */
/* `gpuvirt image list|add|delete`: base images VMs are created from (docs/api.md). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static char *fmt_bytes(const json_t *img)
{
        static const char *const keys[] = { "size_bytes", "virtual_size", "size", NULL };
        for (const char *const *k = keys; *k; k++) {
                const json_t *v = json_object_get(img, *k);
                if (json_is_integer(v) && json_integer_value(v) >= 0) {
                        uint64_t b = (uint64_t)json_integer_value(v);
                        if (b >= 1024ull * 1024ull)
                                return gv_fmt_mib((b + 512ull * 1024ull) / (1024ull * 1024ull));
                        return xasprintf("%llu B", (unsigned long long)b);
                }
        }
        return NULL;
}

static int image_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "image list [--json]";
        _cleanup_json_ json_t *images = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/images",
                                 "no images (add one with 'gpuvirt image add NAME PATH')",
                                 &images);
        if (!images)
                return ex;
        static const char *const headers[] = { "IMAGE", "FORMAT", "SIZE", "PATH", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *img;
        json_array_foreach(images, i, img) {
                _cleanup_free_ char *size = fmt_bytes(img);
                gv_table_add_rowf(t, jstr(img, "name"), jstr(img, "format"), size,
                                  jstr(img, "path"));
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

struct upload_bar {
        const char *label;
        bool tty, drawn;
        int last_pct;
        uint64_t start_ns;
};

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The upload's progress: a bar on a terminal, a line per quarter otherwise. */
static void upload_progress(void *userdata, uint64_t sent, uint64_t total)
{
        struct upload_bar *b = userdata;
        int pct = total ? (int)(sent * 100 / total) : 100;
        double secs = (double)(now_ns() - b->start_ns) / 1e9;
        double mib = (double)sent / (1 << 20), total_mib = (double)total / (1 << 20);

        if (!b->tty) {
                if (sent && pct / 25 == b->last_pct / 25 && sent != total)
                        return;
                fprintf(stderr, "%s: uploaded %3d%%  %.1f/%.1f MiB\n", b->label, pct, mib,
                        total_mib);
        } else {
                enum { BAR = 20 };
                char bar[BAR + 1];
                for (int i = 0; i < BAR; i++)
                        bar[i] = i < pct * BAR / 100 ? '#' : '-';
                bar[BAR] = '\0';
                fprintf(stderr, "\r\033[K%s  [%s] %3d%%  %.1f/%.1f MiB  %.0f MiB/s", b->label,
                        bar, pct, mib, total_mib, secs > 0 ? mib / secs : 0.0);
                b->drawn = true;
        }
        b->last_pct = pct;
        fflush(stderr);
}

/* PUT the file's bytes (mapped, not copied), with a progress bar. */
static int upload(struct gv_cli *cli, const char *name, const char *file, json_t **ret)
{
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return gv_cli_usage_error("cannot open '%s': %s", file, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
                return gv_cli_usage_error("'%s' is not a non-empty regular file", file);
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return gv_cli_usage_error("cannot map '%s': %s", file, strerror(errno));
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        _cleanup_free_ char *path = xasprintf("/api/v1/images/%s", e);
        struct upload_bar bar = { .label = name, .tty = isatty(STDERR_FILENO),
                                  .start_ns = now_ns() };
        if (!cli->json) {
                cli->on_sent = upload_progress;
                cli->on_sent_userdata = &bar;
        }
        int ex = gv_cli_api_call_raw(cli, "PUT", path, "application/octet-stream", p,
                                     (size_t)st.st_size, 0, ret, NULL);
        cli->on_sent = NULL;
        cli->on_sent_userdata = NULL;
        if (bar.drawn)
                fputc('\n', stderr);
        munmap(p, (size_t)st.st_size);
        return ex;
}

static int image_add(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "image add NAME PATH [--format qcow2|raw] [--upload] [--json]";
        enum { OPT_FORMAT = GV_CLI_OPT_FIRST_OWN, OPT_UPLOAD };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "format", required_argument, NULL, OPT_FORMAT },
                { "upload", no_argument, NULL, OPT_UPLOAD },
                {},
        };
        const char *format = NULL;
        bool up = false;
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_FORMAT) {
                        if (strcmp(optarg, "qcow2") != 0 && strcmp(optarg, "raw") != 0)
                                return gv_cli_usage_error("unknown image format '%s' (valid: "
                                                          "qcow2, raw)", optarg);
                        format = optarg;
                } else if (c == OPT_UPLOAD) {
                        up = true;
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 2)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *name = argv[optind], *file = argv[optind + 1];
        if (!gv_name_is_valid(name))
                return gv_cli_usage_error("'%s' is not a valid image name (lower-case letters, "
                                          "digits, '-')", name);
        if (up && format)
                return gv_cli_usage_error("--format goes with a path on the hosts; an upload's "
                                          "format is read from its bytes");
        _cleanup_json_ json_t *img = NULL;
        if (up) {
                ex = upload(cli, name, file, &img);
        } else {
                if (file[0] != '/')
                        return gv_cli_usage_error("'%s' must be an absolute path on the hosts "
                                                  "(or give --upload to send a local file)",
                                                  file);
                _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "name", name, "path", file);
                if (!body)
                        return gv_cli_usage_error("'%s' is not valid UTF-8", file);
                if (format)
                        json_object_set_new(body, "format", json_string(format));
                ex = gv_cli_api_call(cli, "POST", "/api/v1/images", body, &img, NULL);
        }
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(img ? img : json_null()));
                return GV_EXIT_OK;
        }
        _cleanup_free_ char *size = fmt_bytes(img);
        printf("image %s added (%s%s%s)\n", name, jstr(img, "format") ? jstr(img, "format") : "?",
               size ? ", " : "", size ? size : "");
        return GV_EXIT_OK;
}

static int image_delete(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "image delete NAME [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *e = gv_cli_url_escape(argv[idx]);
        _cleanup_free_ char *path = xasprintf("/api/v1/images/%s", e);
        _cleanup_json_ json_t *reply = NULL;
        ex = gv_cli_api_call(cli, "DELETE", path, NULL, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(reply ? json_incref(reply)
                                    : json_pack("{s:s, s:b}", "name", argv[idx], "deleted", 1));
        else
                printf("image %s deleted\n", argv[idx]);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_image_commands[] = {
        { "image", "list", "", "base images VMs are created from", image_list },
        { "image", "add", "NAME PATH [--upload]", "register an image file on the hosts, or "
          "upload one", image_add },
        { "image", "delete", "NAME", "delete an image no VM uses", image_delete },
        {},
};
