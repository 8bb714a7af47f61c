/* SPDX-License-Identifier: MIT */
/*
 * client.h — the CLI's side of the controller's REST API (docs/api.md): where the controller is
 * and which token to send (flags, environment, config file, default), one request helper that
 * turns every failure into a printed error and an exit code, and waiting on operations.
 *
 * Resolution, first hit wins, separately for the endpoint, the token and the CA:
 *   --endpoint URL / --token T / --ca FILE
 *   GPUVIRT_ENDPOINT / GPUVIRT_TOKEN / GPUVIRT_CA
 *   $XDG_CONFIG_HOME/gpuvirt/config (else ~/.config/gpuvirt/config): "endpoint = URL",
 *     "token = T", "ca = FILE", "#" comment lines; refused when it holds a token and group or
 *     others may read it
 *   unix:/run/gpuvirt/gpuvirt.sock (no token: the local socket is admin)
 * URL is unix:/PATH, http://HOST:PORT or https://HOST:PORT; an https controller's certificate is
 * verified against the CA file (none: the system's trust store) and HOST (docs/tls.md).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "cli/cli.h"
#include "util/error.h"

#define GV_CLI_ENDPOINT_DEFAULT "unix:/run/gpuvirt/gpuvirt.sock"
#define GV_CLI_CONFIG_MAX (64u * 1024u)
/* How long one ordinary request may take (an operation's own wait is added to it). */
#define GV_CLI_REQUEST_TIMEOUT_MS 60000

struct gv_cli_api {
        char *endpoint;
        char *token;                 /* NULL: send none */
        /* where it came from: "--endpoint", "GPUVIRT_ENDPOINT", the config path, "the default" */
        char *endpoint_from;
        char *ca_file;               /* https: the CA to trust; NULL: the system's store */
};

struct gv_cli_api *gv_cli_api_free(struct gv_cli_api *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_cli_api *, gv_cli_api_free);

/* Parse a config file's text. path is only for messages. Unknown keys, a key given twice, a
 * line without "=", an empty value, an endpoint that is neither "unix:/PATH",
 * "http://HOST:PORT" nor "https://HOST:PORT", or a token with spaces or control characters:
 * -EINVAL naming the line. Absent keys leave their ret_ NULL; ret_ca may be NULL. */
int gv_cli_config_parse(const char *text, const char *path, char **ret_endpoint,
                        char **ret_token, char **ret_ca, struct gv_error **err);

/* The config file's path from XDG_CONFIG_HOME / HOME; NULL when neither is set. */
char *gv_cli_config_path(void);

/* Resolve endpoint, token and CA as described above (flag_* may be NULL). A missing config
 * file is fine; an unreadable or malformed one, or one holding a token that group or others can
 * read (-EACCES, saying to chmod 600), is an error. */
int gv_cli_api_resolve(const char *flag_endpoint, const char *flag_token, const char *flag_ca,
                       struct gv_cli_api **ret, struct gv_error **err);

/* The exit code for an HTTP status: 404 → 3, 409/422 → 4, 400/413 → 2, 401/403 → 6,
 * 501/503 → 5, other 4xx and 5xx → 1, 2xx → 0. */
int gv_cli_exit_code_from_status(int status);

/* Print an API problem (or an error reply that is not one) as "error: DETAIL" plus
 * "hint: FIX" when the problem carries a "fix" or "hint" member; with cli->json also the JSON
 * document {"error", "errno", "exit_code", "status", "problem"} on stdout. Returns the exit
 * code for status. */
int gv_cli_api_print_problem(const struct gv_cli *cli, int status, const json_t *problem);

/* One request to the API. path is below the endpoint ("/api/v1/vms"). On a 2xx answer returns
 * GV_EXIT_OK with *ret_body (may be NULL: no body) and *ret_status set. Otherwise prints the
 * error — a problem from the API, or a controller that cannot be reached (exit 5, saying how to
 * point at it) — and returns the exit code. ret_status may be NULL. */
int gv_cli_api_call(struct gv_cli *cli, const char *method, const char *path,
                    const json_t *body, json_t **ret_body, int *ret_status);
/* The same with a raw body of content_type (an image upload) and a timeout (<= 0: none). */
int gv_cli_api_call_raw(struct gv_cli *cli, const char *method, const char *path,
                        const char *content_type, const void *body, size_t body_len,
                        int timeout_ms, json_t **ret_body, int *ret_status);

/* GET path as a stream: the body goes to on_data as it arrives (no timeout). A non-2xx answer
 * is printed as a problem. Returns GV_EXIT_OK when the stream ended cleanly, else the exit
 * code (an on_data failure: its message is printed, exit 1). */
int gv_cli_api_stream(struct gv_cli *cli, const char *path,
                      int (*on_data)(void *userdata, const char *data, size_t len),
                      void *userdata);

/* Percent-encode s for one path segment or query value (unreserved characters kept). */
char *gv_cli_url_escape(const char *s);

/* "node-a/0" → host "node-a", gpu "0" (new strings). false when s has no '/' or either side is
 * empty or the GPU part holds another '/'. */
bool gv_cli_split_host_gpu(const char *s, char **ret_host, char **ret_gpu);

/* ---- operations (cmd-op.c) ---- */

/* Whether an operation JSON has ended ("succeeded" or "failed"). */
bool gv_cli_op_done(const json_t *op);
/* Poll GET /api/v1/operations/ID?wait=... until op ends or timeout_s passes (0: no limit),
 * drawing a progress bar on stderr when it is a terminal and printing a plain line per change
 * otherwise. label names what is waited for ("infer-2"). On success (the operation ended
 * "succeeded") returns GV_EXIT_OK with *ret_op the final operation; a failed operation prints
 * its error and returns the exit code of its problem; a timeout returns GV_EXIT_FAILURE saying
 * how to go on waiting. ret_op may be NULL. */
int gv_cli_op_wait(struct gv_cli *cli, const char *id, const char *label, unsigned timeout_s,
                   json_t **ret_op);
/* After a POST answered with an operation: with wait, wait for it (as above) and return its
 * result; without, print it (--json: as is; else "LABEL: KIND accepted (operation ID) ..."). */
int gv_cli_op_follow(struct gv_cli *cli, json_t *op, const char *label, bool wait,
                     json_t **ret_op);

/* Options every API command takes: --endpoint URL, --token T, --ca FILE, --json, -h. Returns
 * true when c was one of them (handled); sets *ret_exit when the command must exit (help). */
bool gv_cli_api_option(struct gv_cli *cli, int c, const char *usage, int *ret_exit);
/* The getopt_long entries for them, to copy into a command's option table. */
#define GV_CLI_API_OPTIONS                                          \
        { "endpoint", required_argument, NULL, GV_CLI_OPT_ENDPOINT }, \
        { "token", required_argument, NULL, GV_CLI_OPT_TOKEN },       \
        { "ca", required_argument, NULL, GV_CLI_OPT_CA },             \
        { "json", no_argument, NULL, GV_CLI_OPT_JSON },               \
        { "help", no_argument, NULL, 'h' }
enum {
        GV_CLI_OPT_ENDPOINT = 0x200,
        GV_CLI_OPT_TOKEN,
        GV_CLI_OPT_JSON,
        GV_CLI_OPT_WAIT,
        GV_CLI_OPT_CA,
        GV_CLI_OPT_FIRST_OWN, /* commands number their own options from here */
};
/* The list commands: parse `usage` (common options, no argument), GET `path`; with --json
 * print the answer, and an empty list prints `empty` (when not NULL). Returns the exit code;
 * *ret gets the list only when it is left for the caller to print as a table, else NULL. */
int gv_cli_api_list(struct gv_cli *cli, int argc, char **argv, const char *usage,
                    const char *path, const char *empty, json_t **ret);
/* Parse a command with only the common options (plus --wait when wait is not NULL) and exactly
 * n_args positional arguments (n_args < 0: at most -n_args), like gv_cli_parse_simple. */
bool gv_cli_api_parse_simple(struct gv_cli *cli, int argc, char **argv, const char *usage,
                             int n_args, bool *wait, int *ret_index, int *ret_exit);
