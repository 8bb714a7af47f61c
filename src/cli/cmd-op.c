/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt op show|wait|list` and `gpuvirt events`: the controller's operations (a long action's
 * state and progress) and its event stream (Server-Sent Events), docs/api.md.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

/* A poll asks the controller to wait this long for the end; short, so the bar moves. */
#define POLL_WAIT_S 1
#define EVENT_MAX (1024u * 1024u)

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

bool gv_cli_op_done(const json_t *op)
{
        const char *s = jstr(op, "state");
        return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0);
}

/* ---- progress ---- */

struct progress {
        bool tty;
        bool drawn;
        int64_t last_pct;
        char *last_msg;
        char *last_state;
};

static unsigned term_width(void)
{
        struct winsize ws;
        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
                return ws.ws_col;
        return 80;
}

static void progress_clear(struct progress *p)
{
        if (p->tty && p->drawn)
                fputs("\r\033[K", stderr);
        p->drawn = false;
        free(p->last_msg);
        free(p->last_state);
        p->last_msg = p->last_state = NULL;
}

static void progress_show(struct progress *p, const char *label, const json_t *op)
{
        json_int_t pct = json_integer_value(json_object_get(op, "progress"));
        if (pct < 0)
                pct = 0;
        if (pct > 100)
                pct = 100;
        const char *msg = jstr(op, "message");
        const char *state = jstr(op, "state");
        if (!msg)
                msg = state ? state : "";
        if (!p->tty) {
                if (p->last_msg && p->last_pct == pct && strcmp(p->last_msg, msg) == 0 &&
                    p->last_state && state && strcmp(p->last_state, state) == 0)
                        return;
                fprintf(stderr, "%s: %3d%% %s\n", label, (int)pct, msg);
        } else {
                enum { BAR = 20 };
                char bar[BAR + 1];
                int fill = (int)(pct * BAR / 100);
                for (int i = 0; i < BAR; i++)
                        bar[i] = i < fill ? '#' : '-';
                bar[BAR] = '\0';
                _cleanup_free_ char *line = xasprintf("%s  [%s] %3d%%  %s", label, bar, (int)pct,
                                                      msg);
                unsigned w = term_width() - 1;
                if (gv_utf8_width(line) > w) {
                        /* cut at a code-point boundary */
                        size_t cols = 0, i = 0;
                        for (; line[i] && cols < w; i++)
                                if (((unsigned char)line[i] & 0xc0) != 0x80 && ++cols > w)
                                        break;
                        while (line[i] && ((unsigned char)line[i] & 0xc0) == 0x80)
                                i++;
                        line[i] = '\0';
                }
                fprintf(stderr, "\r\033[K%s", line);
                p->drawn = true;
        }
        fflush(stderr);
        p->last_pct = pct;
        free(p->last_msg);
        p->last_msg = xstrdup(msg);
        free(p->last_state);
        p->last_state = xstrdup(state ? state : "");
}

/* Ctrl-C while waiting: the operation goes on in the controller; say how to follow it. */
static char interrupt_note[256];

static void on_interrupt(int sig)
{
        (void)sig;
        ssize_t n = write(STDERR_FILENO, interrupt_note, strlen(interrupt_note));
        (void)n;
        _exit(130);
}

/* An ended operation that failed: print its problem and return the exit code. */
static int op_failed(const struct gv_cli *cli, const json_t *op)
{
        const json_t *problem = json_object_get(op, "error");
        json_int_t status = json_integer_value(json_object_get(problem, "status"));
        if (json_is_object(problem) && status >= 400)
                return gv_cli_api_print_problem(cli, (int)status, problem);
        _cleanup_json_ json_t *p = json_pack("{s:s}", "detail", "the operation failed without "
                                             "saying why.");
        if (json_is_string(problem))
                json_object_set(p, "detail", (json_t *)problem);
        return gv_cli_api_print_problem(cli, 500, p);
}

int gv_cli_op_wait(struct gv_cli *cli, const char *id, const char *label, unsigned timeout_s,
                   json_t **ret_op)
{
        _cleanup_free_ char *eid = gv_cli_url_escape(id);
        struct progress p = { .tty = isatty(STDERR_FILENO) == 1, .last_pct = -1 };
        int64_t deadline = timeout_s ? now_ms() + (int64_t)timeout_s * 1000 : 0;
        _cleanup_json_ json_t *op = NULL;

        snprintf(interrupt_note, sizeof(interrupt_note),
                 "\ninterrupted: operation %s goes on; 'gpuvirt op wait %s' follows it again.\n",
                 id, id);
        struct sigaction sa = { .sa_handler = on_interrupt }, old_int;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);

        int ex = GV_EXIT_OK;
        for (;;) {
                unsigned w = POLL_WAIT_S;
                if (deadline) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                break;
                        w = (unsigned)MIN((int64_t)w, (left + 999) / 1000);
                }
                _cleanup_free_ char *path = xasprintf("/api/v1/operations/%s?wait=%u", eid, w);
                json_decref(op);
                op = NULL;
                ex = gv_cli_api_call_raw(cli, "GET", path, NULL, NULL, 0,
                                         (int)w * 1000 + GV_CLI_REQUEST_TIMEOUT_MS, &op, NULL);
                if (ex != GV_EXIT_OK)
                        break;
                if (!json_is_object(op)) {
                        ex = gv_cli_api_print_problem(cli, 502, NULL);
                        break;
                }
                progress_show(&p, label, op);
                if (gv_cli_op_done(op))
                        break;
        }
        if (p.tty && p.drawn && ex == GV_EXIT_OK && op && gv_cli_op_done(op))
                progress_clear(&p);
        else if (p.tty && p.drawn)
                fputc('\n', stderr);
        progress_clear(&p);
        sigaction(SIGINT, &old_int, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (!op || !gv_cli_op_done(op)) {
                if (cli->json && op)
                        gv_json_print(json_incref(op));
                fprintf(stderr, "error: operation %s still runs after %u s; 'gpuvirt op wait %s' "
                        "waits again.\n", id, timeout_s, id);
                return GV_EXIT_FAILURE;
        }
        if (strcmp(jstr(op, "state"), "failed") == 0)
                return op_failed(cli, op);
        if (ret_op)
                *ret_op = TAKE_PTR(op);
        return GV_EXIT_OK;
}

int gv_cli_op_follow(struct gv_cli *cli, json_t *op, const char *label, bool wait,
                     json_t **ret_op)
{
        const char *id = jstr(op, "id");
        const char *kind = jstr(op, "kind");
        if (!id) {
                fprintf(stderr, "error: the controller's answer is not an operation (no 'id').\n");
                return GV_EXIT_FAILURE;
        }
        int64_t t0 = now_ms();
        _cleanup_json_ json_t *final = NULL;
        if (!wait) {
                if (cli->json)
                        gv_json_print(json_incref(op));
                else if (gv_cli_op_done(op) && strcmp(jstr(op, "state"), "failed") == 0)
                        return op_failed(cli, op);
                else if (gv_cli_op_done(op))
                        printf("%s: %s done\n", label, kind ? kind : "operation");
                else
                        printf("%s: %s accepted as operation %s; 'gpuvirt op wait %s' follows "
                               "it\n", label, kind ? kind : "change", id, id);
                return GV_EXIT_OK;
        }
        int ex;
        if (gv_cli_op_done(op)) {
                if (strcmp(jstr(op, "state"), "failed") == 0)
                        return op_failed(cli, op);
                final = json_incref(op);
        } else {
                ex = gv_cli_op_wait(cli, id, label, 0, &final);
                if (ex != GV_EXIT_OK)
                        return ex;
        }
        if (ret_op) {
                *ret_op = TAKE_PTR(final);
                return GV_EXIT_OK;
        }
        if (cli->json) {
                gv_json_print(TAKE_PTR(final));
                return GV_EXIT_OK;
        }
        printf("%s: %s succeeded (%.1f s)\n", label, kind ? kind : "operation",
               (double)(now_ms() - t0) / 1000.0);
        return GV_EXIT_OK;
}

/* ---- op show | wait | list ---- */

static char *fmt_time(json_int_t t)
{
        if (t <= 0)
                return xstrdup("—");
        /* seconds since the epoch; milliseconds when it is that large */
        time_t s = t > 100000000000LL ? (time_t)(t / 1000) : (time_t)t;
        struct tm tm;
        char buf[32];
        if (!localtime_r(&s, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return xasprintf("%lld", (long long)t);
        return xstrdup(buf);
}

static void print_op(const json_t *op)
{
        _cleanup_free_ char *created = fmt_time(json_integer_value(json_object_get(op,
                                                                                  "created_at")));
        _cleanup_free_ char *updated = fmt_time(json_integer_value(json_object_get(op,
                                                                                  "updated_at")));
        printf("id:        %s\n", jstr(op, "id") ? jstr(op, "id") : "—");
        printf("kind:      %s\n", jstr(op, "kind") ? jstr(op, "kind") : "—");
        printf("target:    %s\n", jstr(op, "target") ? jstr(op, "target") : "—");
        printf("state:     %s\n", jstr(op, "state") ? jstr(op, "state") : "—");
        printf("progress:  %lld%%\n", (long long)json_integer_value(json_object_get(op,
                                                                                   "progress")));
        printf("message:   %s\n", jstr(op, "message") ? jstr(op, "message") : "—");
        printf("created:   %s\n", created);
        printf("updated:   %s\n", updated);
        const json_t *e = json_object_get(op, "error");
        if (json_is_object(e))
                printf("error:     %s\n", jstr(e, "detail") ? jstr(e, "detail")
                                                           : jstr(e, "title") ? jstr(e, "title")
                                                                              : "—");
        const json_t *res = json_object_get(op, "result");
        if (res && !json_is_null(res)) {
                _cleanup_free_ char *s = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
                printf("result:    %s\n", s ? s : "—");
        }
}

static int op_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "op show ID [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *eid = gv_cli_url_escape(argv[idx]);
        _cleanup_free_ char *path = xasprintf("/api/v1/operations/%s", eid);
        _cleanup_json_ json_t *op = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &op, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(json_incref(op));
        else
                print_op(op);
        return GV_EXIT_OK;
}

static int op_wait(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "op wait ID [--timeout SECONDS] [--json]";
        enum { OPT_TIMEOUT = GV_CLI_OPT_FIRST_OWN };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {},
        };
        unsigned timeout = 0;
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_TIMEOUT) {
                        uint32_t v;
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v == 0)
                                return gv_cli_usage_error("--timeout '%s' is not a number of "
                                                          "seconds above 0.", optarg);
                        timeout = v;
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *id = argv[optind];
        _cleanup_json_ json_t *op = NULL;
        int64_t t0 = now_ms();
        ex = gv_cli_op_wait(cli, id, id, timeout, &op);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(op));
                return GV_EXIT_OK;
        }
        printf("%s: %s %s succeeded (%.1f s)\n", id, jstr(op, "kind") ? jstr(op, "kind") : "",
               jstr(op, "target") ? jstr(op, "target") : "", (double)(now_ms() - t0) / 1000.0);
        return GV_EXIT_OK;
}

static int op_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "op list [--json]";
        _cleanup_json_ json_t *ops = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/operations", NULL, &ops);
        if (!ops)
                return ex;
        static const char *const headers[] = { "ID", "KIND", "TARGET", "STATE", "PROGRESS",
                                               "MESSAGE", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) {
                char pct[16];
                snprintf(pct, sizeof(pct), "%lld%%",
                         (long long)json_integer_value(json_object_get(op, "progress")));
                gv_table_add_rowf(t, jstr(op, "id"), jstr(op, "kind"), jstr(op, "target"),
                                  jstr(op, "state"), pct, jstr(op, "message"));
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* ---- events ---- */

struct sse {
        bool json;
        char *buf; /* bytes of the line being read */
        size_t len;
        char *data; /* "data:" lines of the event being read, joined by "\n" */
        size_t data_len;
        char *event;
        char *id;
        unsigned long n_events;
};

static void sse_reset(struct sse *s)
{
        free(s->data);
        free(s->event);
        free(s->id);
        s->data = s->event = s->id = NULL;
        s->data_len = 0;
}

static void print_value(FILE *f, const json_t *v)
{
        if (json_is_string(v)) {
                fputs(json_string_value(v), f);
                return;
        }
        _cleanup_free_ char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fputs(s ? s : "?", f);
}

static void sse_dispatch(struct sse *s)
{
        if (!s->data)
                return;
        s->n_events++;
        json_error_t je;
        _cleanup_json_ json_t *j = json_loads(s->data, JSON_REJECT_DUPLICATES, &je);
        if (s->json) {
                if (!j)
                        j = json_pack("{s:s?, s:s?, s:s}", "event", s->event, "id", s->id,
                                      "data", s->data);
                _cleanup_free_ char *line = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)
                                              : NULL;
                if (line)
                        printf("%s\n", line);
        } else if (!json_is_object(j)) {
                printf("%s  %s  %s\n", s->id ? s->id : "-", s->event ? s->event : "message",
                       s->data);
        } else {
                json_int_t seq = json_integer_value(json_object_get(j, "seq"));
                json_int_t t = json_integer_value(json_object_get(j, "time"));
                const char *type = jstr(j, "type") ? jstr(j, "type")
                                                   : s->event ? s->event : "message";
                const char *subject = jstr(j, "subject");
                char when[40] = "—";
                if (t > 0) {
                        time_t sec = t > 100000000000LL ? (time_t)(t / 1000) : (time_t)t;
                        struct tm tm;
                        if (localtime_r(&sec, &tm))
                                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                }
                printf("%-6lld %s  %-18s %s", (long long)seq, when, type,
                       subject ? subject : "—");
                const json_t *data = json_object_get(j, "data");
                const char *k;
                json_t *v;
                if (json_is_object(data)) {
                        json_object_foreach((json_t *)data, k, v) {
                                printf("  %s=", k);
                                print_value(stdout, v);
                        }
                } else if (data && !json_is_null(data)) {
                        fputs("  ", stdout);
                        print_value(stdout, data);
                }
                fputc('\n', stdout);
        }
        fflush(stdout);
}

static int sse_line(struct sse *s, char *line)
{
        if (!*line) {
                sse_dispatch(s);
                sse_reset(s);
                return 0;
        }
        if (*line == ':')
                return 0; /* a comment: keep-alive */
        char *colon = strchr(line, ':');
        char *value = "";
        if (colon) {
                *colon = '\0';
                value = colon + 1;
                if (*value == ' ')
                        value++;
        }
        if (strcmp(line, "data") == 0) {
                size_t n = strlen(value);
                if (s->data_len + n + 2 > EVENT_MAX)
                        return -EMSGSIZE;
                s->data = xreallocarray(s->data, s->data_len + n + 2, 1);
                if (s->data_len)
                        s->data[s->data_len++] = '\n';
                memcpy(s->data + s->data_len, value, n + 1);
                s->data_len += n;
        } else if (strcmp(line, "event") == 0) {
                free(s->event);
                s->event = xstrdup(value);
        } else if (strcmp(line, "id") == 0) {
                free(s->id);
                s->id = xstrdup(value);
        }
        /* "retry" and unknown fields are ignored, as the SSE specification says */
        return 0;
}

static int sse_data(void *userdata, const char *data, size_t len)
{
        struct sse *s = userdata;
        for (size_t i = 0; i < len; i++) {
                char ch = data[i];
                if (ch == '\n') {
                        if (s->len && s->buf[s->len - 1] == '\r')
                                s->len--;
                        s->buf = xreallocarray(s->buf, s->len + 1, 1);
                        s->buf[s->len] = '\0';
                        s->len = 0;
                        int r = sse_line(s, s->buf);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (s->len + 2 > EVENT_MAX)
                        return -EMSGSIZE;
                s->buf = xreallocarray(s->buf, s->len + 2, 1);
                s->buf[s->len++] = ch;
        }
        return 0;
}

static void on_sigint_events(int sig)
{
        (void)sig;
        /* Every event line was flushed whole; what is half-read is dropped. */
        _exit(GV_EXIT_OK);
}

static int events(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "events [--after SEQ] [--json]";
        enum { OPT_AFTER = GV_CLI_OPT_FIRST_OWN };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "after", required_argument, NULL, OPT_AFTER },
                {},
        };
        const char *after = NULL;
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_AFTER) {
                        uint64_t v;
                        if (gv_parse_u64(optarg, 10, &v) < 0)
                                return gv_cli_usage_error("--after '%s' is not an event "
                                                          "sequence number.", optarg);
                        after = optarg;
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc != optind)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        /* 'events' is a group without verbs: argv[0] is "events" itself */
        _cleanup_free_ char *path = after ? xasprintf("/api/v1/events?after=%s", after)
                                          : xstrdup("/api/v1/events");
        struct sigaction sa = { .sa_handler = on_sigint_events };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        struct sse s = { .json = cli->json };
        ex = gv_cli_api_stream(cli, path, sse_data, &s);
        sse_reset(&s);
        free(s.buf);
        return ex;
}

const struct gv_cli_command gv_cli_op_commands[] = {
        { "op", "show", "ID", "an operation: kind, target, state, progress, error", op_show },
        { "op", "wait", "ID [--timeout S]", "wait for an operation, with a progress bar",
          op_wait },
        { "op", "list", "", "recent operations, newest first", op_list },
        { "events", "", "[--after SEQ]", "stream the controller's events, one line each (Ctrl-C "
          "ends)", events },
        {},
};
