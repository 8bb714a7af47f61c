/* SPDX-License-Identifier: MIT */
/*
 * common.c — what the benchmarks share (common.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common.h"
#include "util/parse.h"
#include "http/client.h"
#include "util/alloc.h"
#include "util/fileio.h"

int bench_fail(const char *prog, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", prog);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EIO;
}

int bench_usage_error(const char *prog, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", prog);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nRun '%s --help' for usage.\n", prog);
        return 2;
}

int bench_parse_uint(const char *prog, const char *opt, const char *arg, unsigned lo,
                     unsigned hi, unsigned *ret)
{
        uint32_t v;
        if (gv_parse_u32(arg, 10, &v) < 0 || v < lo || v > hi)
                return bench_usage_error(prog, "%s needs a whole number from %u to %u, not "
                                         "'%s'.", opt, lo, hi, arg);
        *ret = v;
        return 0;
}

void bench_print_log_tail(const char *what, const char *path, size_t max)
{
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        if (!path || gv_read_file(path, 16u << 20, &s, &len) < 0 || len == 0)
                return;
        const char *start = len > max ? s + len - max : s;
        fprintf(stderr, "--- last lines of %s (%s) ---\n%s%s--- end ---\n", what, path, start,
                s[len - 1] == '\n' ? "" : "\n");
}

void bench_print_machine(void)
{
        struct utsname u;
        _cleanup_free_ char *model = NULL, *cpuinfo = NULL;

        if (gv_read_file("/proc/cpuinfo", 1 << 20, &cpuinfo, NULL) >= 0) {
                char *l = strstr(cpuinfo, "model name");
                char *colon = l ? strchr(l, ':') : NULL;
                if (colon) {
                        colon += 2;
                        model = xstrndup(colon, strcspn(colon, "\n"));
                }
        }
        if (uname(&u) < 0)
                memset(&u, 0, sizeof(u));
        printf("machine: %ld CPUs online (%s), Linux %s %s\n", sysconf(_SC_NPROCESSORS_ONLN),
               model ? model : "unknown CPU", u.release, u.machine);
}

int bench_call(const char *prog, const char *endpoint, const char *method, const char *path,
               const char *body, const char *header, int want, int timeout_ms,
               json_t **ret_json)
{
        const char *headers[] = { header, NULL };
        struct gv_http_client_req rq = {
                .endpoint = endpoint,
                .method = method,
                .path = path,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .headers = header ? headers : NULL,
                .timeout_ms = timeout_ms,
        };
        struct gv_http_client_reply rp = {};
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rp, &e);
        if (r < 0)
                return bench_fail(prog, "%s %s: %s", method, path, gv_error_msg(e, r));
        if (rp.status != want) {
                bench_fail(prog, "%s %s answered %d, not %d: %.3000s", method, path, rp.status,
                           want, rp.body && *rp.body ? rp.body : "(no body)");
                gv_http_client_reply_done(&rp);
                return -EIO;
        }
        if (ret_json) {
                json_t *j = NULL;
                if (rp.body && rp.body_len > 0) {
                        json_error_t je;
                        j = json_loadb(rp.body, rp.body_len, 0, &je);
                        if (!j) {
                                bench_fail(prog, "%s %s: the reply is not JSON (%s): %.2000s",
                                           method, path, je.text, rp.body);
                                gv_http_client_reply_done(&rp);
                                return -EBADMSG;
                        }
                }
                *ret_json = j;
        }
        gv_http_client_reply_done(&rp);
        return 0;
}

const char *bench_daemon_path(const char *given, const char *env_var, const char *built)
{
        const char *env = getenv(env_var);

        return given ? given : env && *env ? env : built;
}

int bench_need(const char *const *files, const char *const *progs)
{
        for (const char *const *f = files; f && f[0]; f += 2)
                if (access(f[1], X_OK) < 0) {
                        printf("skipped: %s '%s' is not there (%s); build it (ninja -C build) or "
                               "name one (--help).\n", f[0], f[1], strerror(errno));
                        return 77;
                }
        for (const char *const *p = progs; p && *p; p++)
                if (!gv_program_in_path(*p)) {
                        printf("skipped: '%s' is not in PATH; the benchmark needs it.\n", *p);
                        return 77;
                }
        return 0;
}
