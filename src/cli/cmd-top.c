/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt top`: the cluster's hosts, GPUs and VMs with live utilization bars (CPU, memory and
 * GPU side by side), from the controller's GET /api/v1/metrics, /api/v1/hosts and /api/v1/vms
 * (docs/api.md "Metrics"; the rows: top-model.h). On a terminal an ncurses screen refreshing
 * every 2 s; `--batch` prints plain-text frames for scripts, as `top -b` does, and is what a
 * standard output that is not a terminal gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/top-model.h"
#include "config.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

#if HAVE_NCURSESW
#include <curses.h>
#include <termcap.h>
#endif

#define DEFAULT_INTERVAL_MS 2000u
#define BATCH_WIDTH_DEFAULT 132u

static const char usage[] = "top [--batch] [--iterations N] [--interval S] [--sort "
                            "cpu|memory|gpu|name] [--endpoint URL] [--token T]";

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
        (void)sig;
        stop_requested = 1;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The three answers, turned into rows sorted by sort. Returns the exit code (an API failure is
 * printed by the client; a malformed answer here). */
static int fetch(struct gv_cli *cli, enum gv_top_sort sort, struct gv_top_model **ret)
{
        _cleanup_json_ json_t *metrics = NULL, *hosts = NULL, *vms = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_top_model *m;
        int ex, r;

        ex = gv_cli_api_call(cli, "GET", "/api/v1/metrics", NULL, &metrics, NULL);
        if (ex == GV_EXIT_OK)
                ex = gv_cli_api_call(cli, "GET", "/api/v1/hosts", NULL, &hosts, NULL);
        if (ex == GV_EXIT_OK)
                ex = gv_cli_api_call(cli, "GET", "/api/v1/vms", NULL, &vms, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        r = gv_top_model_build(metrics, hosts, vms, &m, &e);
        if (r < 0) {
                fprintf(stderr, "error: %s\n", gv_error_msg(e, r));
                return GV_EXIT_FAILURE;
        }
        gv_top_model_sort(m, sort);
        *ret = m;
        return GV_EXIT_OK;
}

/* "12:00:01" of the metrics round (else now), local time. */
static void clock_text(const struct gv_top_model *m, char *buf, size_t n)
{
        struct timespec ts;
        struct tm tm;
        time_t t;
        if (m->timestamp_ms > 0) {
                t = (time_t)(m->timestamp_ms / 1000);
        } else {
                clock_gettime(CLOCK_REALTIME, &ts);
                t = ts.tv_sec;
        }
        if (!localtime_r(&t, &tm) || strftime(buf, n, "%H:%M:%S", &tm) == 0)
                snprintf(buf, n, "?");
}

/* Sleep ms unless a stop signal comes first; true when it did. */
static bool sleep_or_stop(uint32_t ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (!stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        return stop_requested;
}

static unsigned batch_width(void)
{
        const char *s = getenv("COLUMNS");
        uint32_t w;
        if (s && gv_parse_u32(s, 10, &w) >= 0 && w >= GV_TOP_MIN_WIDTH && w <= GV_TOP_MAX_WIDTH)
                return w;
        return BATCH_WIDTH_DEFAULT;
}

/* Plain-text frames on stdout, a blank line between them; iterations 0: until a signal. */
static int run_batch(struct gv_cli *cli, enum gv_top_sort sort, uint32_t interval_ms,
                     uint32_t iterations)
{
        unsigned width = batch_width();
        for (uint32_t n = 0; iterations == 0 || n < iterations; n++) {
                _cleanup_(gv_top_model_freep) struct gv_top_model *m = NULL;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                struct gv_top_frame f = {};
                char clk[16];
                int ex, r;

                if (n > 0 && sleep_or_stop(interval_ms))
                        break;
                ex = fetch(cli, sort, &m);
                if (ex != GV_EXIT_OK)
                        return ex;
                clock_text(m, clk, sizeof(clk));
                r = gv_top_render(m, sort, width, clk, &f, &e);
                if (r < 0) {
                        fprintf(stderr, "error: %s\n", gv_error_msg(e, r));
                        return GV_EXIT_FAILURE;
                }
                if (n > 0)
                        putchar('\n');
                for (size_t i = 0; i < f.n_lines; i++)
                        puts(f.lines[i].text);
                gv_top_frame_done(&f);
                if (fflush(stdout) != 0 || ferror(stdout))
                        return GV_EXIT_FAILURE; /* the reader went away */
        }
        return GV_EXIT_OK;
}

#if HAVE_NCURSESW

static const uint32_t interval_steps[] = { 250, 500, 1000, 2000, 5000, 10000, 30000, 60000 };

struct screen {
        struct gv_cli *cli;
        enum gv_top_sort sort;
        uint32_t interval_ms;
        enum gv_top_section focus;
        size_t scroll[_GV_TOP_SECTION_MAX];
        struct gv_top_model *model;
        char *error;      /* the last refresh's failure; the last good rows stay */
        bool colors;
};

/* fetch() with the client's printed error caught (stderr would scribble over the screen):
 * returns the exit code and, on failure, the message's first line. */
static int fetch_quiet(struct screen *s, struct gv_top_model **ret, char **ret_msg)
{
        _cleanup_close_ int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        _cleanup_close_ int mfd = memfd_create("gpuvirt-top-stderr", MFD_CLOEXEC);
        char buf[512] = "";
        int ex;

        if (saved < 0 || mfd < 0) {
                *ret_msg = xasprintf("cannot catch the client's errors: %s", strerror(errno));
                return GV_EXIT_FAILURE;
        }
        fflush(stderr);
        if (dup2(mfd, STDERR_FILENO) < 0) {
                *ret_msg = xasprintf("cannot catch the client's errors: %s", strerror(errno));
                return GV_EXIT_FAILURE;
        }
        ex = fetch(s->cli, s->sort, ret);
        fflush(stderr);
        (void)dup2(saved, STDERR_FILENO);
        if (ex == GV_EXIT_OK)
                return ex;
        ssize_t n = pread(mfd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        const char *msg = gv_startswith(buf, "error: ") ? buf + strlen("error: ") : buf;
        *ret_msg = xstrdup(*msg ? msg : "the request failed");
        return ex;
}

static void refresh_model(struct screen *s)
{
        struct gv_top_model *m = NULL;
        char *msg = NULL;
        if (fetch_quiet(s, &m, &msg) == GV_EXIT_OK) {
                gv_top_model_free(s->model);
                s->model = m;
                free(s->error);
                s->error = NULL;
        } else {
                free(s->error);
                s->error = msg;
        }
}

enum { PAIR_BAR = 1, PAIR_ERROR, PAIR_TITLE };

static void draw_line(struct screen *s, int y, const struct gv_top_line *l, int cols,
                      const char *suffix)
{
        attr_t base = A_NORMAL;
        if (l->kind == GV_TOP_LINE_HEADER)
                base = A_BOLD;
        else if (l->kind == GV_TOP_LINE_TITLE)
                base = (int)s->focus == l->section
                               ? (A_REVERSE | A_BOLD)
                               : (s->colors ? (attr_t)COLOR_PAIR(PAIR_TITLE) | A_BOLD : A_BOLD);
        else if (l->kind == GV_TOP_LINE_COLUMNS)
                base = A_UNDERLINE;
        move(y, 0);
        int x = 0;
        for (size_t i = 0; l->text[i] && x < cols; i++, x++) {
                attr_t a = base;
                if (l->marks[i] == 'b')
                        a |= s->colors ? (attr_t)COLOR_PAIR(PAIR_BAR) | A_BOLD : A_BOLD;
                addch((chtype)(unsigned char)l->text[i] | a);
        }
        for (size_t i = 0; suffix && suffix[i] && x < cols; i++, x++)
                addch((chtype)(unsigned char)suffix[i] | base);
        if (l->kind == GV_TOP_LINE_TITLE && (int)s->focus == l->section)
                for (; x < cols; x++)
                        addch(' ' | base);
}

static void draw_footer(struct screen *s, int y, int cols)
{
        char buf[512];
        move(y, 0);
        clrtoeol();
        if (s->error) {
                snprintf(buf, sizeof(buf), "refresh failed, the last values stay (q quits): %s",
                         s->error);
                attron(s->colors ? COLOR_PAIR(PAIR_ERROR) | A_BOLD : A_BOLD);
                mvaddnstr(y, 0, buf, cols);
                attroff(s->colors ? COLOR_PAIR(PAIR_ERROR) | A_BOLD : A_BOLD);
                return;
        }
        snprintf(buf, sizeof(buf),
                 "q quit  s/S sort: %s  c m u n cpu/memory/gpu/name  h g v focus  "
                 "arrows scroll  +/- refresh %.2g s",
                 gv_top_sort_to_string(s->sort), s->interval_ms / 1000.0);
        attron(A_DIM);
        mvaddnstr(y, 0, buf, cols);
        attroff(A_DIM);
}

/* How many rows each section shows: the focused one what the others leave, the others up to a
 * fifth of the room each (at least one), and what the focused one does not need goes back. */
static void share_rows(const struct screen *s, const size_t *need, int room, int *give)
{
        int left = room;
        int quota = MAX(1, room / 5);
        for (int k = 0; k < _GV_TOP_SECTION_MAX; k++) {
                if (k == (int)s->focus)
                        continue;
                give[k] = MIN((int)need[k], quota);
                left -= give[k];
        }
        give[s->focus] = MIN((int)need[s->focus], MAX(left, 0));
        left -= give[s->focus];
        for (int k = 0; k < _GV_TOP_SECTION_MAX && left > 0; k++) {
                int more = MIN((int)need[k] - give[k], left);
                give[k] += more;
                left -= more;
        }
}

static void draw(struct screen *s)
{
        int rows, cols;
        getmaxyx(stdscr, rows, cols);
        erase();
        /* the header, per section a title and column names, two blanks, the footer */
        if (cols < (int)GV_TOP_MIN_WIDTH || rows < 14) {
                char buf[160];
                snprintf(buf, sizeof(buf), "The terminal is %dx%d; gpuvirt top needs at least "
                         "%ux14. Enlarge it (q quits).", cols, rows, GV_TOP_MIN_WIDTH);
                mvaddnstr(0, 0, buf, cols);
                refresh();
                return;
        }
        struct gv_top_frame f = {};
        char clk[16];
        clock_text(s->model, clk, sizeof(clk));
        if (gv_top_render(s->model, s->sort, (unsigned)MIN(cols, (int)GV_TOP_MAX_WIDTH), clk,
                          &f, NULL) < 0) {
                mvaddnstr(0, 0, "gpuvirt top cannot draw at this width (q quits).", cols);
                refresh();
                return;
        }
        /* per section: its title line, its column line, its first row */
        size_t title[_GV_TOP_SECTION_MAX] = {}, need[_GV_TOP_SECTION_MAX] = {};
        for (size_t i = 0; i < f.n_lines; i++) {
                const struct gv_top_line *l = &f.lines[i];
                if (l->kind == GV_TOP_LINE_TITLE)
                        title[l->section] = i;
                else if (l->kind == GV_TOP_LINE_ROW)
                        need[l->section]++;
        }
        int give[_GV_TOP_SECTION_MAX];
        share_rows(s, need, rows - 2 - 2 * _GV_TOP_SECTION_MAX - (_GV_TOP_SECTION_MAX - 1),
                   give);

        int y = 0;
        draw_line(s, y++, &f.lines[0], cols, NULL);
        for (int k = 0; k < _GV_TOP_SECTION_MAX; k++) {
                size_t max_scroll = need[k] > (size_t)give[k] ? need[k] - (size_t)give[k] : 0;
                if (k != (int)s->focus)
                        s->scroll[k] = 0;
                s->scroll[k] = MIN(s->scroll[k], max_scroll);
                char more[64] = "";
                if ((size_t)give[k] < need[k])
                        snprintf(more, sizeof(more), "  [%zu-%zu of %zu]", s->scroll[k] + 1,
                                 s->scroll[k] + (size_t)give[k], need[k]);
                if (k > 0)
                        y++;
                draw_line(s, y++, &f.lines[title[k]], cols, more);
                draw_line(s, y++, &f.lines[title[k] + 1], cols, NULL);
                for (int r = 0; r < give[k]; r++)
                        draw_line(s, y++, &f.lines[title[k] + 2 + s->scroll[k] + (size_t)r],
                                  cols, NULL);
        }
        draw_footer(s, rows - 1, cols);
        gv_top_frame_done(&f);
        refresh();
}

static void step_interval(struct screen *s, int dir)
{
        size_t i = 0;
        while (i + 1 < ELEMENTSOF(interval_steps) && interval_steps[i] < s->interval_ms)
                i++;
        /* i: the first step >= the interval (or the last one) */
        if (dir > 0) {
                if (interval_steps[i] > s->interval_ms)
                        s->interval_ms = interval_steps[i];
                else if (i + 1 < ELEMENTSOF(interval_steps))
                        s->interval_ms = interval_steps[i + 1];
        } else if (i > 0 && interval_steps[i] >= s->interval_ms) {
                s->interval_ms = interval_steps[i - 1];
        } else if (interval_steps[i] < s->interval_ms) {
                s->interval_ms = interval_steps[i];
        }
}

/* Returns true to quit. *refetch asks for new values now. */
static bool handle_key(struct screen *s, int ch, bool *refetch)
{
        enum gv_top_sort old = s->sort;
        size_t *sc = &s->scroll[s->focus];
        switch (ch) {
        case 'q':
        case 'Q':
                return true;
        case 's':
                s->sort = (s->sort + 1) % _GV_TOP_SORT_MAX;
                break;
        case 'S':
                s->sort = (s->sort + _GV_TOP_SORT_MAX - 1) % _GV_TOP_SORT_MAX;
                break;
        case 'c':
                s->sort = GV_TOP_SORT_CPU;
                break;
        case 'm':
                s->sort = GV_TOP_SORT_MEMORY;
                break;
        case 'u':
                s->sort = GV_TOP_SORT_GPU;
                break;
        case 'n':
                s->sort = GV_TOP_SORT_NAME;
                break;
        case 'h':
                s->focus = GV_TOP_HOSTS;
                break;
        case 'g':
                s->focus = GV_TOP_GPUS;
                break;
        case 'v':
                s->focus = GV_TOP_VMS;
                break;
        case '\t':
                s->focus = (s->focus + 1) % _GV_TOP_SECTION_MAX;
                break;
        case '+':
        case '=':
                step_interval(s, +1);
                break;
        case '-':
        case '_':
                step_interval(s, -1);
                break;
        case KEY_DOWN:
        case 'j':
                (*sc)++;
                break;
        case KEY_UP:
        case 'k':
                if (*sc > 0)
                        (*sc)--;
                break;
        case KEY_NPAGE:
                *sc += 10;
                break;
        case KEY_PPAGE:
                *sc = *sc > 10 ? *sc - 10 : 0;
                break;
        case KEY_HOME:
                *sc = 0;
                break;
        case KEY_END:
                *sc = SIZE_MAX / 2;
                break;
        case ' ':
        case 'r':
                *refetch = true;
                break;
        case 12: /* ^L */
        case KEY_RESIZE: /* ncurses has the new size; paint all of it */
                clearok(curscr, TRUE);
                break;
        default: /* the rest: a redraw */
                break;
        }
        if (s->sort != old && s->model)
                gv_top_model_sort(s->model, s->sort);
        return false;
}

static int run_screen(struct gv_cli *cli, enum gv_top_sort sort, uint32_t interval_ms,
                      uint32_t iterations, bool *ret_fallback)
{
        struct screen s = { .cli = cli, .sort = sort, .interval_ms = interval_ms,
                            .focus = GV_TOP_VMS };
        int ex = fetch(cli, sort, &s.model); /* before the screen: errors print plainly */
        if (ex != GV_EXIT_OK)
                return ex;

        /* newterm() on a TERM terminfo does not know fails, but leaks its half-made screen
         * (ncurses 6.4): ask the terminfo database first */
        const char *term = getenv("TERM");
        SCREEN *scr = term && *term && tgetent(NULL, term) == 1 ? newterm(NULL, stdout, stdin)
                                                                : NULL;
        if (!scr) {
                gv_top_model_free(s.model);
                *ret_fallback = true;
                return GV_EXIT_OK;
        }
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        (void)curs_set(0);
        if (has_colors() && start_color() == OK) {
                use_default_colors();
                init_pair(PAIR_BAR, COLOR_GREEN, -1);
                init_pair(PAIR_ERROR, COLOR_RED, -1);
                init_pair(PAIR_TITLE, COLOR_CYAN, -1);
                s.colors = true;
        }

        uint32_t fetched = 1;
        int64_t next = now_ms() + s.interval_ms;
        draw(&s);
        while (!stop_requested) {
                int64_t wait = next - now_ms();
                timeout((int)MAX(MIN(wait, (int64_t)60000), (int64_t)0));
                int ch = getch();
                bool refetch = false;
                if (ch != ERR && handle_key(&s, ch, &refetch))
                        break;
                if (stop_requested)
                        break;
                if (refetch || now_ms() >= next) {
                        if (iterations && fetched >= iterations)
                                break;
                        refresh_model(&s);
                        fetched++;
                        next = now_ms() + s.interval_ms;
                }
                draw(&s);
        }
        endwin();
        delscreen(scr);
        gv_top_model_free(s.model);
        free(s.error);
        return GV_EXIT_OK;
}

#else /* !HAVE_NCURSESW */

static int run_screen(struct gv_cli *cli, enum gv_top_sort sort, uint32_t interval_ms,
                      uint32_t iterations, bool *ret_fallback)
{
        (void)cli, (void)sort, (void)interval_ms, (void)iterations;
        fprintf(stderr, "gpuvirt top: this gpuvirt was built without ncurses (libncurses-dev); "
                        "printing frames as with --batch.\n");
        *ret_fallback = true;
        return GV_EXIT_OK;
}

#endif

static int top(struct gv_cli *cli, int argc, char **argv)
{
        enum { OPT_BATCH = GV_CLI_OPT_FIRST_OWN, OPT_ITERATIONS, OPT_INTERVAL, OPT_SORT };
        static const struct option options[] = {
                { "endpoint", required_argument, NULL, GV_CLI_OPT_ENDPOINT },
                { "token", required_argument, NULL, GV_CLI_OPT_TOKEN },
                { "help", no_argument, NULL, 'h' },
                { "batch", no_argument, NULL, OPT_BATCH },
                { "iterations", required_argument, NULL, OPT_ITERATIONS },
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "sort", required_argument, NULL, OPT_SORT },
                {},
        };
        enum gv_top_sort sort = GV_TOP_SORT_CPU;
        uint32_t interval_ms = DEFAULT_INTERVAL_MS, iterations = 0;
        bool batch = false, iterations_set = false;
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "bhn:d:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'b':
                case OPT_BATCH:
                        batch = true;
                        break;
                case 'n':
                case OPT_ITERATIONS:
                        if (gv_parse_u32(optarg, 10, &iterations) < 0 || iterations == 0)
                                return gv_cli_usage_error("--iterations '%s' is not a number "
                                                          "of frames from 1 to 4294967295",
                                                          optarg);
                        iterations_set = true;
                        break;
                case 'd':
                case OPT_INTERVAL:
                        if (gv_top_parse_interval(optarg, &interval_ms) < 0)
                                return gv_cli_usage_error("--interval '%s' is not a number of "
                                                          "seconds from 0.1 to 3600 (e.g. 2 or "
                                                          "0.5)", optarg);
                        break;
                case 'o':
                case OPT_SORT: {
                        int k = gv_top_sort_from_string(optarg);
                        if (k < 0) {
                                _cleanup_free_ char *valid = gv_top_sort_list();
                                return gv_cli_usage_error("--sort '%s' is not a sort key "
                                                          "(valid: %s)", optarg, valid);
                        }
                        sort = (enum gv_top_sort)k;
                        break;
                }
                default:
                        if (gv_cli_api_option(cli, c, usage, &ex)) {
                                if (ex >= 0)
                                        return ex;
                                break;
                        }
                        if (optind > 0 && strcmp(argv[optind - 1], "--json") == 0)
                                return gv_cli_usage_error("top has no --json: the controller's "
                                                          "GET /api/v1/metrics is the "
                                                          "machine-readable form (docs/api.md "
                                                          "\"Metrics\")");
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc != optind)
                return gv_cli_usage_error("'%s' is not an option of top; usage: gpuvirt %s",
                                          argv[optind], usage);
        if (cli->json)
                return gv_cli_usage_error("top has no --json: the controller's GET "
                                          "/api/v1/metrics is the machine-readable form "
                                          "(docs/api.md \"Metrics\")");

        struct sigaction sa = { .sa_handler = on_stop_signal }; /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (batch)
                return run_batch(cli, sort, interval_ms, iterations);
        if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
                fprintf(stderr, "gpuvirt top: %s is not a terminal; printing %s as with "
                                "--batch.\n",
                        isatty(STDOUT_FILENO) ? "standard input" : "standard output",
                        iterations_set ? "frames" : "one frame");
                return run_batch(cli, sort, interval_ms, iterations_set ? iterations : 1);
        }
        bool fallback = false;
        ex = run_screen(cli, sort, interval_ms, iterations, &fallback);
        if (!fallback)
                return ex;
#if HAVE_NCURSESW
        const char *term = getenv("TERM");
        fprintf(stderr, "gpuvirt top: ncurses cannot drive the terminal type '%s' (set TERM, "
                        "e.g. TERM=xterm-256color); printing %s as with --batch.\n",
                term ? term : "", iterations_set ? "frames" : "one frame");
#endif
        return run_batch(cli, sort, interval_ms, iterations_set ? iterations : 1);
}

const struct gv_cli_command gv_cli_top_commands[] = {
        { "top", "", "[--batch] [--sort KEY]", "hosts, GPUs and VMs with live CPU, memory and "
          "GPU bars", top },
        {},
};
