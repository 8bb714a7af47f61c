/* SPDX-License-Identifier: MIT */
/*
 * web.c — the dashboard's static files (docs/dashboard.md), served by the controller from one
 * directory (--web-dir, default /usr/share/gpuvirt/web; web/dist in the repository):
 *
 *   GET /                 302 to /ui/
 *   GET /ui               302 to /ui/
 *   GET /ui/              index.html
 *   GET /ui/{file:path}   the file
 *
 * The plan: the router has already refused '.' and '..' segments, backslashes and control
 * characters in the decoded path (route.c, ":path"). Here the path is walked one segment at a
 * time from a descriptor of the directory, each step openat(..., O_NOFOLLOW): a symbolic link
 * anywhere below the directory, a dot file, an empty segment or anything but a regular file at
 * the end is a 404, so nothing outside the directory is ever opened whatever the path holds.
 * The directory is opened per request, so a rebuild (npm run build) shows at once.
 *
 * Caching: files under assets/ carry a content hash in their names (esbuild), so they are
 * immutable for a year; everything else (index.html) is "no-cache", revalidated by an ETag
 * made of inode, size and modification time (If-None-Match answers 304). Every file goes with
 * X-Content-Type-Options: nosniff; HTML with a Content-Security-Policy that keeps the page to
 * its own origin (the API token lives in sessionStorage) and out of frames.
 *
 * No authentication: the files hold no data; the page asks the API, which checks the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/api.h"
#include "util/alloc.h"

#define WEB_DIR_DEFAULT "/usr/share/gpuvirt/web"
#define WEB_INDEX "index.html"
#define WEB_SEGMENTS_MAX 16

static const struct {
        const char *ext;
        const char *type;
} content_types[] = {
        { "html", "text/html; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "json", "application/json" },
        { "map", "application/json" },
        { "txt", "text/plain; charset=utf-8" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "ico", "image/vnd.microsoft.icon" },
        { "woff2", "font/woff2" },
};

const char *gv_controller_web_content_type(const char *name)
{
        const char *dot = name ? strrchr(name, '.') : NULL;
        const char *slash = name ? strrchr(name, '/') : NULL;
        if (dot && (!slash || dot > slash))
                for (size_t i = 0; i < ELEMENTSOF(content_types); i++)
                        if (strcmp(dot + 1, content_types[i].ext) == 0)
                                return content_types[i].type;
        return "application/octet-stream";
}

const char *gv_controller_web_dir(const struct gv_controller_api *api)
{
        return api && api->web_dir ? api->web_dir : WEB_DIR_DEFAULT;
}

/* Open file (relative, already checked by the router) under the directory dir_fd as a regular
 * file, one segment at a time without following links. -ENOENT for anything not served. */
static int open_beneath(int dir_fd, const char *file, int *ret_fd, struct stat *ret_st)
{
        _cleanup_close_ int cur = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        size_t n = 0;
        if (cur < 0)
                return -errno;
        for (const char *seg = file;;) {
                size_t len = strcspn(seg, "/");
                bool last = seg[len] == '\0';
                /* An empty segment ("a//b", a trailing '/'), a dot file or directory (".git",
                 * ".well-known"): not served. */
                if (len == 0 || seg[0] == '.' || len > 255 || ++n > WEB_SEGMENTS_MAX)
                        return -ENOENT;
                char name[256];
                memcpy(name, seg, len);
                name[len] = '\0';
                int fd = openat(cur, name,
                                (last ? O_RDONLY : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC |
                                        O_NOCTTY | O_NONBLOCK);
                if (fd < 0)
                        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
                                               errno == EACCES
                                       ? -ENOENT
                                       : -errno;
                safe_close(cur);
                cur = fd;
                if (last)
                        break;
                seg += len + 1;
        }
        struct stat st;
        if (fstat(cur, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        *ret_st = st;
        *ret_fd = TAKE_FD(cur);
        return 0;
}

static ssize_t file_read(void *cls, char *buf, size_t max, int stop_fd)
{
        int fd = (int)(intptr_t)cls;
        (void)stop_fd; /* a local file: each read is short */
        for (;;) {
                ssize_t n = read(fd, buf, max);
                if (n >= 0)
                        return n;
                if (errno != EINTR)
                        return -errno;
        }
}

static void file_close(void *cls)
{
        safe_close((int)(intptr_t)cls);
}

/* Whether the If-None-Match header's list names etag (or is "*"). */
static bool etag_matches(const char *header, const char *etag)
{
        size_t n = strlen(etag);
        if (!header)
                return false;
        for (const char *p = header; *p;) {
                p += strspn(p, " \t,");
                if (strncmp(p, "W/", 2) == 0)
                        p += 2;
                size_t len = strcspn(p, ",");
                while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if ((len == 1 && *p == '*') || (len == n && memcmp(p, etag, n) == 0))
                        return true;
                p += len;
        }
        return false;
}

static int redirect(struct gv_http_request *req, const char *to)
{
        int r = gv_http_reply_text(req, 302, "text/plain; charset=utf-8",
                                   xasprintf("The dashboard is at %s.\n", to));
        if (r >= 0)
                r = gv_http_reply_header(req, "Location", to);
        return r < 0 ? r : 0;
}

int gv_controller_web_root(struct gv_http_request *req, void *userdata)
{
        (void)userdata;
        return redirect(req, "/ui/");
}

int gv_controller_web_file(struct gv_http_request *req, void *userdata)
{
        const struct gv_controller_api *api = userdata;
        const char *dir = gv_controller_web_dir(api);
        const char *file = gv_http_param(req, "file");
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        struct stat st = { 0 }; /* -O2 cannot see open_beneath() fill it */
        int r;

        if (!file || !*file)
                file = WEB_INDEX;
        dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return gv_http_reply_problem(req, 404, "not-found", NULL,
                                             "The dashboard's files are not in '%s' (%s): build "
                                             "them with 'make web', or point --web-dir at them.",
                                             dir, strerror(errno));
        r = open_beneath(dir_fd, file, &fd, &st);
        if (r == -ENOENT)
                return gv_http_reply_problem(req, 404, "not-found", NULL,
                                             "There is no dashboard file at '%s'.",
                                             gv_http_path(req));
        if (r < 0)
                return r;

        char etag[96];
        (void)snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
                       (uint64_t)st.st_ino, (uint64_t)st.st_size,
                       (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
        bool immutable = strncmp(file, "assets/", 7) == 0;
        const char *type = gv_controller_web_content_type(file);
        bool html = strncmp(type, "text/html", 9) == 0;

        if (etag_matches(gv_http_header(req, "If-None-Match"), etag))
                r = gv_http_reply_text(req, 304, NULL, NULL);
        else /* the stream closes the file, also on failure */
                r = gv_http_reply_stream(req, 200, type, file_read,
                                         (void *)(intptr_t)TAKE_FD(fd), file_close);
        if (r < 0)
                return r;
        (void)gv_http_reply_header(req, "ETag", etag);
        (void)gv_http_reply_header(req, "Cache-Control",
                                   immutable ? "public, max-age=31536000, immutable"
                                             : "no-cache");
        (void)gv_http_reply_header(req, "X-Content-Type-Options", "nosniff");
        if (html) {
                (void)gv_http_reply_header(req, "Content-Security-Policy",
                                           "default-src 'self'; img-src 'self' data:; "
                                           "style-src 'self' 'unsafe-inline'; "
                                           "frame-ancestors 'none'; base-uri 'none'; "
                                           "form-action 'self'");
                (void)gv_http_reply_header(req, "Referrer-Policy", "no-referrer");
        }
        return 0;
}
