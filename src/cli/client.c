/* SPDX-License-Identifier: MIT */
/*
 * client.c — endpoint and token resolution, the config file, and the request helper every API
 * command goes through (client.h).
 */
#include "cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/client.h"
#include "cli/format.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define TOKEN_MAX 512

struct gv_cli_api *gv_cli_api_free(struct gv_cli_api *a)
{
        if (!a)
                return NULL;
        free(a->endpoint);
        if (a->token)
                explicit_bzero(a->token, strlen(a->token));
        free(a->token);
        free(a->endpoint_from);
        free(a->ca_file);
        free(a);
        return NULL;
}

static bool endpoint_is_valid(const char *s)
{
        if (gv_startswith(s, "unix:/"))
                return true;
        const char *hp = gv_startswith(s, "http://")    ? s + strlen("http://")
                         : gv_startswith(s, "https://") ? s + strlen("https://")
                                                        : NULL;
        if (!hp)
                return false;
        const char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
        if (!colon || colon == hp)
                return false;
        const char *port = colon + (hp[0] == '[' ? 2 : 1);
        uint16_t p;
        return gv_parse_u16(port, 10, &p) >= 0 && p > 0;
}

static bool token_is_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > TOKEN_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

int gv_cli_config_parse(const char *text, const char *path, char **ret_endpoint,
                        char **ret_token, char **ret_ca, struct gv_error **err)
{
        _cleanup_free_ char *endpoint = NULL, *token = NULL, *ca = NULL;
        _cleanup_free_ char *copy = xstrdup(text);
        unsigned line = 0;
        char *save = NULL;

        /* strtok_r would merge empty lines and so miscount; split by hand. */
        for (char *p = copy; p; p = save) {
                char *nl = strchr(p, '\n');
                save = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = '\0';
                line++;
                if (!nl && !*p)
                        break;
                char *l = gv_strip(p);
                if (!*l || *l == '#')
                        continue;
                char *eq = strchr(l, '=');
                if (!eq)
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' is not 'key = value' (keys: "
                                            "endpoint, token, ca).", path, line, l);
                *eq = '\0';
                char *key = gv_strip(l), *value = gv_strip(eq + 1);
                char **slot;
                if (strcmp(key, "endpoint") == 0)
                        slot = &endpoint;
                else if (strcmp(key, "token") == 0)
                        slot = &token;
                else if (strcmp(key, "ca") == 0)
                        slot = &ca;
                else
                        return gv_error_set(err, EINVAL, "%s:%u: unknown key '%s' (valid: "
                                            "endpoint, token, ca).", path, line, key);
                if (*slot)
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' is set twice; keep one.",
                                            path, line, key);
                if (!*value)
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' has no value.", path, line,
                                            key);
                if (slot == &endpoint && !endpoint_is_valid(value))
                        return gv_error_set(err, EINVAL, "%s:%u: endpoint '%s' is neither "
                                            "'unix:/PATH', 'http://HOST:PORT' nor "
                                            "'https://HOST:PORT'.", path, line, value);
                if (slot == &token && !token_is_valid(value))
                        return gv_error_set(err, EINVAL, "%s:%u: the token must be 1 to %d "
                                            "printable characters without spaces.", path, line,
                                            TOKEN_MAX);
                *slot = xstrdup(value);
        }
        *ret_endpoint = TAKE_PTR(endpoint);
        *ret_token = TAKE_PTR(token);
        if (ret_ca)
                *ret_ca = TAKE_PTR(ca);
        return 0;
}

char *gv_cli_config_path(void)
{
        const char *x = secure_getenv("XDG_CONFIG_HOME");
        if (x && x[0] == '/')
                return gv_path_join(x, "gpuvirt", "config");
        const char *home = secure_getenv("HOME");
        if (home && home[0] == '/')
                return gv_path_join(home, ".config", "gpuvirt", "config");
        return NULL;
}

/* Read the config file; a missing one leaves all NULL. */
static int config_load(const char *path, char **ret_endpoint, char **ret_token, char **ret_ca,
                       struct gv_error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT) {
                *ret_endpoint = *ret_token = *ret_ca = NULL;
                return 0;
        }
        if (fd < 0)
                return gv_error_set(err, errno, "cannot open the config file '%s': %s.", path,
                                    strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return gv_error_set(err, errno, "cannot stat '%s': %s.", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return gv_error_set(err, EINVAL, "the config file '%s' is not a regular file.",
                                    path);
        if ((uint64_t)st.st_size > GV_CLI_CONFIG_MAX)
                return gv_error_set(err, EFBIG, "the config file '%s' is over %u bytes.", path,
                                    GV_CLI_CONFIG_MAX);
        _cleanup_free_ char *text = xmalloc((size_t)st.st_size + 1);
        size_t len = 0;
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return gv_error_set(err, errno, "cannot read '%s': %s.", path,
                                            strerror(errno));
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        text[len] = '\0';
        if (strlen(text) != len)
                return gv_error_set(err, EINVAL, "the config file '%s' holds a NUL byte.", path);

        _cleanup_free_ char *endpoint = NULL, *token = NULL, *ca = NULL;
        int r = gv_cli_config_parse(text, path, &endpoint, &token, &ca, err);
        explicit_bzero(text, len);
        if (r < 0)
                return r;
        if (token && (st.st_mode & (S_IRWXG | S_IRWXO))) {
                explicit_bzero(token, strlen(token));
                return gv_error_set(err, EACCES, "the config file '%s' holds a token but group or "
                                    "others may access it (mode %04o); run 'chmod 600 %s'.",
                                    path, (unsigned)(st.st_mode & 07777), path);
        }
        *ret_endpoint = TAKE_PTR(endpoint);
        *ret_token = TAKE_PTR(token);
        *ret_ca = TAKE_PTR(ca);
        return 0;
}

static const char *nonempty(const char *s)
{
        return s && *s ? s : NULL;
}

int gv_cli_api_resolve(const char *flag_endpoint, const char *flag_token, const char *flag_ca,
                       struct gv_cli_api **ret, struct gv_error **err)
{
        _cleanup_(gv_cli_api_freep) struct gv_cli_api *a = xnew0(struct gv_cli_api, 1);
        const char *env_endpoint = nonempty(secure_getenv("GPUVIRT_ENDPOINT"));
        const char *env_token = nonempty(secure_getenv("GPUVIRT_TOKEN"));
        const char *env_ca = nonempty(secure_getenv("GPUVIRT_CA"));

        if (flag_endpoint) {
                a->endpoint = xstrdup(flag_endpoint);
                a->endpoint_from = xstrdup("--endpoint");
        } else if (env_endpoint) {
                a->endpoint = xstrdup(env_endpoint);
                a->endpoint_from = xstrdup("GPUVIRT_ENDPOINT");
        }
        if (flag_token)
                a->token = xstrdup(flag_token);
        else if (env_token)
                a->token = xstrdup(env_token);
        if (flag_ca)
                a->ca_file = xstrdup(flag_ca);
        else if (env_ca)
                a->ca_file = xstrdup(env_ca);

        /* The file is read for what flags and environment left out; a CA only matters for an
         * https endpoint (one still unknown may come from the file). */
        bool need_ca = !a->ca_file && (!a->endpoint || gv_startswith(a->endpoint, "https://"));
        if (!a->endpoint || !a->token || need_ca) {
                _cleanup_free_ char *path = gv_cli_config_path();
                if (path) {
                        _cleanup_free_ char *ep = NULL, *tok = NULL, *ca = NULL;
                        int r = config_load(path, &ep, &tok, &ca, err);
                        if (r < 0)
                                return r;
                        if (!a->ca_file && ca)
                                a->ca_file = TAKE_PTR(ca);
                        if (!a->endpoint && ep) {
                                a->endpoint = TAKE_PTR(ep);
                                a->endpoint_from = xstrdup(path);
                        }
                        if (!a->token && tok)
                                a->token = TAKE_PTR(tok);
                        if (tok)
                                explicit_bzero(tok, strlen(tok));
                }
        }
        if (!a->endpoint) {
                a->endpoint = xstrdup(GV_CLI_ENDPOINT_DEFAULT);
                a->endpoint_from = xstrdup("the default");
        }
        if (!endpoint_is_valid(a->endpoint))
                return gv_error_set(err, EINVAL, "endpoint '%s' (from %s) is neither "
                                    "'unix:/PATH', 'http://HOST:PORT' nor "
                                    "'https://HOST:PORT'.", a->endpoint, a->endpoint_from);
        if (a->token && !token_is_valid(a->token))
                return gv_error_set(err, EINVAL, "the token must be 1 to %d printable characters "
                                    "without spaces.", TOKEN_MAX);
        *ret = TAKE_PTR(a);
        return 0;
}

int gv_cli_exit_code_from_status(int status)
{
        if (status >= 200 && status < 300)
                return GV_EXIT_OK;
        switch (status) {
        case 400:
        case 413:
                return GV_EXIT_USAGE;
        case 401:
        case 403:
                return GV_EXIT_NOT_ALLOWED;
        case 404:
                return GV_EXIT_NOT_FOUND;
        case 409:
        case 422:
                return GV_EXIT_REFUSED;
        case 501: /* this controller cannot do it (yet) */
        case 503:
                return GV_EXIT_UNAVAILABLE;
        default:
                return GV_EXIT_FAILURE;
        }
}

static const char *json_str(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        return s && *s ? s : NULL;
}

static void print_json_error(const char *msg, const char *errno_name, int code, int status,
                             const json_t *problem)
{
        json_t *j = json_pack("{s:s, s:i}", "error", msg, "exit_code", code);
        if (!j)
                return;
        if (errno_name)
                json_object_set_new(j, "errno", json_string(errno_name));
        if (status > 0)
                json_object_set_new(j, "status", json_integer(status));
        if (problem)
                json_object_set(j, "problem", (json_t *)problem);
        gv_json_print(j);
}

int gv_cli_api_print_problem(const struct gv_cli *cli, int status, const json_t *problem)
{
        int code = gv_cli_exit_code_from_status(status);
        const json_t *p = json_is_object(problem) ? problem : NULL;
        const char *detail = json_str(p, "detail");
        const char *title = json_str(p, "title");
        _cleanup_free_ char *fallback = NULL;
        if (!detail && title)
                detail = title;
        if (!detail) {
                fallback = xasprintf("the controller answered HTTP %d without saying why.",
                                     status);
                detail = fallback;
        }
        const char *fix = json_str(p, "fix");
        if (!fix)
                fix = json_str(p, "hint");
        if (cli && cli->json)
                print_json_error(detail, json_str(p, "errno"), code, status, p);
        fprintf(stderr, "error: %s\n", detail);
        if (fix)
                fprintf(stderr, "hint: %s\n", fix);
        else if (code == GV_EXIT_NOT_ALLOWED)
                fprintf(stderr, "hint: %s\n", status == 401
                        ? "give a valid API token with --token T, GPUVIRT_TOKEN or 'token = T' in "
                          "~/.config/gpuvirt/config."
                        : "this needs a token with a higher role (viewer < operator < admin); "
                          "ask an admin ('gpuvirt token create NAME --role ROLE').");
        return code;
}

static int resolve(struct gv_cli *cli)
{
        if (cli->api)
                return GV_EXIT_OK;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_cli_api_resolve(cli->endpoint, cli->token, cli->ca, &cli->api, &e);
        if (r < 0) {
                /* the user's own settings are wrong: a usage error, whatever the errno */
                int code = GV_EXIT_USAGE;
                if (cli->json)
                        print_json_error(gv_error_msg(e, r), gv_errno_name(r), code, 0, NULL);
                fprintf(stderr, "error: %s\n", gv_error_msg(e, r));
                return code;
        }
        return GV_EXIT_OK;
}

/* The controller could not be reached, or its answer broke the protocol. */
static int transport_fail(const struct gv_cli *cli, int r, const struct gv_error *e)
{
        int code;
        switch (-r) {
        case EINVAL:
                code = GV_EXIT_USAGE;
                break;
        case EACCES:
        case EPERM:
                code = GV_EXIT_NOT_ALLOWED;
                break;
        case EBADMSG:
        case EMSGSIZE:
        case EPROTO:
                code = GV_EXIT_FAILURE;
                break;
        default:
                code = GV_EXIT_UNAVAILABLE;
                break;
        }
        const char *msg = gv_error_msg(e, r);
        if (cli->json)
                print_json_error(msg, gv_errno_name(r), code, 0, NULL);
        fprintf(stderr, "error: %s\n", msg);
        if (r == -ETIMEDOUT)
                fprintf(stderr, "hint: a change may still be carried out by the controller; "
                        "'gpuvirt op list' and 'gpuvirt vm list' show where it stands.\n");
        else if (gv_startswith(cli->api->endpoint, "https://") && (r == -EPERM || r == -EPROTO))
                fprintf(stderr, "hint: the controller's certificate is checked against the CA "
                        "given with --ca FILE, GPUVIRT_CA=FILE or 'ca = FILE' in "
                        "~/.config/gpuvirt/config (now: %s); docs/tls.md.\n",
                        cli->api->ca_file ? cli->api->ca_file : "none, so the system's store");
        else if (code == GV_EXIT_UNAVAILABLE || code == GV_EXIT_USAGE)
                fprintf(stderr, "hint: the endpoint '%s' came from %s; point gpuvirt at the "
                        "controller with --endpoint URL, GPUVIRT_ENDPOINT=URL or 'endpoint = URL' "
                        "in ~/.config/gpuvirt/config (URL: unix:/PATH, http://HOST:PORT or "
                        "https://HOST:PORT).\n",
                        cli->api->endpoint, cli->api->endpoint_from);
        else if (code == GV_EXIT_NOT_ALLOWED)
                fprintf(stderr, "hint: the local socket '%s' is for its owner (root or the "
                        "gpuvirt group); elsewhere use the TCP endpoint with a token.\n",
                        cli->api->endpoint);
        return code;
}

int gv_cli_api_call_raw(struct gv_cli *cli, const char *method, const char *path,
                        const char *content_type, const void *body, size_t body_len,
                        int timeout_ms, json_t **ret_body, int *ret_status)
{
        int ex = resolve(cli);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_free_ char *auth = cli->api->token
                ? xasprintf("Authorization: Bearer %s", cli->api->token) : NULL;
        const char *headers[] = { auth, NULL };
        struct gv_http_client_req rq = {
                .endpoint = cli->api->endpoint,
                .method = method,
                .path = path,
                .content_type = content_type,
                .body = body,
                .body_len = body_len,
                .headers = auth ? headers : NULL,
                .timeout_ms = timeout_ms,
                .ca_file = cli->api->ca_file,
                .on_sent = cli->on_sent,
                .progress_userdata = cli->on_sent_userdata,
        };
        struct gv_http_client_reply rep = {};
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rep, &e);
        if (auth)
                explicit_bzero(auth, strlen(auth));
        if (r < 0)
                return transport_fail(cli, r, e);

        json_t *j = NULL;
        if (rep.body_len > 0) {
                json_error_t je;
                j = json_loadb(rep.body, rep.body_len, JSON_REJECT_DUPLICATES, &je);
                if (!j && rep.status >= 200 && rep.status < 300) {
                        gv_error_set(&e, EBADMSG, "the answer of '%s' to %s %s (HTTP %d) is not "
                                     "JSON: line %d, column %d: %s.", cli->api->endpoint, method,
                                     path, rep.status, je.line, je.column, je.text);
                        gv_http_client_reply_done(&rep);
                        return transport_fail(cli, -EBADMSG, e);
                }
        }
        int status = rep.status;
        gv_http_client_reply_done(&rep);
        if (status < 200 || status >= 300) {
                ex = gv_cli_api_print_problem(cli, status, j);
                json_decref(j);
                return ex;
        }
        if (ret_status)
                *ret_status = status;
        if (ret_body)
                *ret_body = j;
        else
                json_decref(j);
        return GV_EXIT_OK;
}

int gv_cli_api_call(struct gv_cli *cli, const char *method, const char *path,
                    const json_t *body, json_t **ret_body, int *ret_status)
{
        _cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (body && !payload) {
                fprintf(stderr, "error: the request body cannot be serialised as JSON (is "
                        "every string UTF-8?).\n");
                return GV_EXIT_USAGE;
        }
        return gv_cli_api_call_raw(cli, method, path, NULL, payload,
                                   payload ? strlen(payload) : 0, GV_CLI_REQUEST_TIMEOUT_MS,
                                   ret_body, ret_status);
}

struct stream {
        int (*on_data)(void *userdata, const char *data, size_t len);
        void *userdata;
        char head[4096]; /* the first bytes, for a problem answer */
        size_t head_len;
};

static int stream_data(void *userdata, const char *data, size_t len)
{
        struct stream *s = userdata;
        size_t n = MIN(len, sizeof(s->head) - 1 - s->head_len);
        memcpy(s->head + s->head_len, data, n);
        s->head_len += n;
        return s->on_data(s->userdata, data, len);
}

int gv_cli_api_stream(struct gv_cli *cli, const char *path,
                      int (*on_data)(void *userdata, const char *data, size_t len),
                      void *userdata)
{
        int ex = resolve(cli);
        if (ex != GV_EXIT_OK)
                return ex;
        _cleanup_free_ char *auth = cli->api->token
                ? xasprintf("Authorization: Bearer %s", cli->api->token) : NULL;
        const char *headers[] = { "Accept: text/event-stream", auth, NULL };
        struct stream st = { .on_data = on_data, .userdata = userdata };
        struct gv_http_client_req rq = {
                .endpoint = cli->api->endpoint,
                .method = "GET",
                .path = path,
                .headers = headers,
                .on_data = stream_data,
                .userdata = &st,
                .ca_file = cli->api->ca_file,
        };
        struct gv_http_client_reply rep = {};
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rep, &e);
        if (r < 0 && st.head_len == 0)
                return transport_fail(cli, r, e);
        if (r < 0) {
                if (cli->json)
                        print_json_error(gv_error_msg(e, r), gv_errno_name(r), GV_EXIT_FAILURE, 0,
                                         NULL);
                fprintf(stderr, "error: %s\n", gv_error_msg(e, r));
                return GV_EXIT_FAILURE;
        }
        int status = rep.status;
        gv_http_client_reply_done(&rep);
        if (status >= 200 && status < 300)
                return GV_EXIT_OK;
        st.head[st.head_len] = '\0';
        _cleanup_json_ json_t *j = json_loads(st.head, 0, NULL);
        return gv_cli_api_print_problem(cli, status, j);
}

char *gv_cli_url_escape(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
                        *o++ = (char)*p;
                } else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = '\0';
        return out;
}

bool gv_cli_split_host_gpu(const char *s, char **ret_host, char **ret_gpu)
{
        const char *slash = strchr(s, '/');
        if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
                return false;
        *ret_host = xstrndup(s, (size_t)(slash - s));
        *ret_gpu = xstrdup(slash + 1);
        return true;
}

bool gv_cli_api_option(struct gv_cli *cli, int c, const char *usage, int *ret_exit)
{
        switch (c) {
        case GV_CLI_OPT_ENDPOINT:
                cli->endpoint = optarg;
                return true;
        case GV_CLI_OPT_TOKEN:
                cli->token = optarg;
                return true;
        case GV_CLI_OPT_CA:
                cli->ca = optarg;
                return true;
        case GV_CLI_OPT_JSON:
                cli->json = true;
                return true;
        case 'h':
                printf("Usage: gpuvirt %s\n", usage);
                *ret_exit = GV_EXIT_OK;
                return true;
        default:
                return false;
        }
}

bool gv_cli_api_parse_simple(struct gv_cli *cli, int argc, char **argv, const char *usage,
                             int n_args, bool *wait, int *ret_index, int *ret_exit)
{
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "wait", no_argument, NULL, GV_CLI_OPT_WAIT },
                {},
        };
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == GV_CLI_OPT_WAIT && wait) {
                        *wait = true;
                        continue;
                }
                if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0) {
                                *ret_exit = ex;
                                return false;
                        }
                        continue;
                }
                *ret_exit = gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                               argv[optind - 1], usage);
                return false;
        }
        int n = argc - optind;
        if (n_args >= 0 ? n != n_args : n > -n_args) {
                *ret_exit = gv_cli_usage_error("usage: gpuvirt %s", usage);
                return false;
        }
        *ret_index = optind;
        return true;
}

int gv_cli_api_list(struct gv_cli *cli, int argc, char **argv, const char *usage,
                    const char *path, const char *empty, json_t **ret)
{
        _cleanup_json_ json_t *l = NULL;
        int idx, ex;

        *ret = NULL;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 0, NULL, &idx, &ex))
                return ex;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &l, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(TAKE_PTR(l));
                return GV_EXIT_OK;
        }
        if (empty && json_array_size(l) == 0) {
                printf("%s\n", empty);
                return GV_EXIT_OK;
        }
        *ret = TAKE_PTR(l);
        return GV_EXIT_OK;
}
