/* SPDX-License-Identifier: MIT */
/*
 * failpoint.c — GPUVIRT_FAILPOINTS parsed once (pthread_once), then matched at each hit.
 * See failpoint.h for the syntax. This is a test facility: the only util code that writes to
 * stderr, one line before it kills its own process or when the list is malformed.
 */
#include "util/failpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/parse.h"

enum fp_action {
        FP_OFF,
        FP_KILL,
        FP_SLEEP,
};

struct fp_entry {
        char *name;             /* exact name, or a prefix when prefix is set */
        bool prefix;
        enum fp_action action;
        uint32_t arg;           /* kill: the hit that kills (1 = first); sleep: milliseconds */
        atomic_uint hits;
};

atomic_int gv_failpoint_state = 1;

static pthread_once_t fp_once = PTHREAD_ONCE_INIT;
static struct fp_entry *fp_entries;
static size_t fp_n;

static void fp_say(const char *a, const char *b, const char *c) {
        /* One write, so that lines from several threads do not interleave. */
        char line[512];
        int n = snprintf(line, sizeof line, "gpuvirt failpoint %s%s%s\n", a, b, c);
        if (n > 0) {
                size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
                ssize_t w = write(STDERR_FILENO, line, len);
                (void)w;
        }
}

static int fp_parse_one(char *item, struct fp_entry *ret) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item)
                return -EINVAL;
        *eq = '\0';
        const char *name = item, *act = eq + 1;
        struct fp_entry e = {0};
        size_t len = strlen(name);
        if (name[len - 1] == '*') {
                e.prefix = true;
                len--;
        }
        e.name = xstrndup(name, len);
        if (strcmp(act, "off") == 0)
                e.action = FP_OFF;
        else if (strcmp(act, "kill") == 0) {
                e.action = FP_KILL;
                e.arg = 1;
        } else if (strncmp(act, "kill@", 5) == 0) {
                e.action = FP_KILL;
                if (gv_parse_u32(act + 5, 10, &e.arg) < 0 || e.arg == 0)
                        goto fail;
        } else if (strncmp(act, "sleep:", 6) == 0) {
                e.action = FP_SLEEP;
                if (gv_parse_u32(act + 6, 10, &e.arg) < 0 || e.arg > 600000)
                        goto fail;
        } else
                goto fail;
        *ret = e;
        return 0;
fail:
        free(e.name);
        return -EINVAL;
}

static void fp_clear(void) {
        for (size_t i = 0; i < fp_n; i++)
                free(fp_entries[i].name);
        free(fp_entries);
        fp_entries = NULL;
        fp_n = 0;
}

static void fp_parse(void) {
        const char *env = getenv("GPUVIRT_FAILPOINTS");
        if (!env || !*env) {
                atomic_store(&gv_failpoint_state, 0);
                return;
        }
        char *copy = xstrdup(env), *save = NULL;
        for (char *item = strtok_r(copy, ";,", &save); item; item = strtok_r(NULL, ";,", &save)) {
                while (*item == ' ')
                        item++;
                if (!*item)
                        continue;
                struct fp_entry e;
                if (fp_parse_one(item, &e) < 0) {
                        fp_say("list '", env,
                               "' is malformed (want NAME=kill|kill@N|sleep:MS|off, ';'-separated):"
                               " none armed");
                        fp_clear();
                        break;
                }
                fp_entries = xreallocarray(fp_entries, fp_n + 1, sizeof *fp_entries);
                fp_entries[fp_n++] = e;
        }
        free(copy);
        atomic_store(&gv_failpoint_state, fp_n > 0 ? 2 : 0);
}

static struct fp_entry *fp_match(const char *name) {
        for (size_t i = 0; i < fp_n; i++) {
                struct fp_entry *e = &fp_entries[i];
                if (e->prefix ? strncmp(name, e->name, strlen(e->name)) == 0
                              : strcmp(name, e->name) == 0)
                        return e;
        }
        return NULL;
}

void gv_failpoint_hit(const char *name) {
        pthread_once(&fp_once, fp_parse);
        if (atomic_load(&gv_failpoint_state) != 2)
                return;
        struct fp_entry *e = fp_match(name);
        if (!e)
                return;
        unsigned hit = atomic_fetch_add(&e->hits, 1) + 1;
        switch (e->action) {
        case FP_OFF:
                break;
        case FP_KILL:
                if (hit == e->arg) {
                        fp_say("'", name, "' fired: kill");
                        raise(SIGKILL);
                }
                break;
        case FP_SLEEP: {
                struct timespec ts = {.tv_sec = e->arg / 1000,
                                      .tv_nsec = (long)(e->arg % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                break;
        }
        }
}

void gv_failpoint_reset(void) {
        pthread_once(&fp_once, fp_parse);
        fp_clear();
        fp_parse();
}

unsigned gv_failpoint_hits(const char *name) {
        pthread_once(&fp_once, fp_parse);
        for (size_t i = 0; i < fp_n; i++)
                if (strcmp(fp_entries[i].name, name) == 0 && !fp_entries[i].prefix)
                        return atomic_load(&fp_entries[i].hits);
        return 0;
}
