/* SPDX-License-Identifier: MIT */
/*
 * metrics-prom.c — the Prometheus text exposition format 0.0.4 writer (metrics.h): families
 * with HELP and TYPE, samples with escaped label values, NaN left out.
 *
 * The format (Prometheus "Exposition formats", text format 0.0.4): lines separated by '\n';
 * "# HELP name docstring" with '\\' and newline escaped as "\\\\" and "\\n"; "# TYPE name type";
 * samples "name{label="value",...} value" where a label value escapes '\\', '"' and newline;
 * values are Go ParseFloat numbers ("NaN", "+Inf", "-Inf" allowed, but we leave unknown values
 * out rather than write NaN: a gauge that is not known is absent).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/metrics.h"
#include "util/alloc.h"

static void reserve(struct gv_prom *p, size_t more)
{
        if (p->len + more + 1 <= p->cap)
                return;
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + more + 1)
                cap *= 2;
        p->buf = xreallocarray(p->buf, cap, 1);
        p->cap = cap;
}

static void put(struct gv_prom *p, const char *s, size_t n)
{
        reserve(p, n);
        memcpy(p->buf + p->len, s, n);
        p->len += n;
        p->buf[p->len] = 0;
}

static void puts_(struct gv_prom *p, const char *s)
{
        put(p, s, strlen(s));
}

/* s escaped: '\\' and newline always, '"' when quote. */
static void put_escaped(struct gv_prom *p, const char *s, bool quote)
{
        const char *run = s;
        for (; *s; s++) {
                const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n"
                                : quote && *s == '"' ? "\\\"" : NULL;
                if (!esc)
                        continue;
                put(p, run, (size_t)(s - run));
                puts_(p, esc);
                run = s + 1;
        }
        put(p, run, (size_t)(s - run));
}

void gv_prom_family(struct gv_prom *p, const char *name, const char *type, const char *help)
{
        puts_(p, "# HELP ");
        puts_(p, name);
        puts_(p, " ");
        put_escaped(p, help, false);
        puts_(p, "\n# TYPE ");
        puts_(p, name);
        puts_(p, " ");
        puts_(p, type);
        puts_(p, "\n");
}

void gv_prom_sample(struct gv_prom *p, const char *name, const struct gv_prom_label *labels,
                    size_t n_labels, double value)
{
        char num[64];
        bool first = true;

        if (isnan(value))
                return;
        puts_(p, name);
        for (size_t i = 0; i < n_labels; i++) {
                if (!labels[i].value)
                        continue;
                puts_(p, first ? "{" : ",");
                first = false;
                puts_(p, labels[i].name);
                puts_(p, "=\"");
                put_escaped(p, labels[i].value, true);
                puts_(p, "\"");
        }
        if (!first)
                puts_(p, "}");
        if (isinf(value))
                snprintf(num, sizeof(num), " %s\n", value > 0 ? "+Inf" : "-Inf");
        else if (fabs(value) < 9e15 && value == (double)(int64_t)value)
                snprintf(num, sizeof(num), " %lld\n", (long long)value);
        else {
                /* The shortest of 15 or 17 digits that reads back as the same double. */
                snprintf(num, sizeof(num), " %.15g\n", value);
                if (strtod(num, NULL) != value)
                        snprintf(num, sizeof(num), " %.17g\n", value);
        }
        puts_(p, num);
}

char *gv_prom_steal(struct gv_prom *p, size_t *ret_len)
{
        reserve(p, 0);
        char *s = TAKE_PTR(p->buf);
        if (ret_len)
                *ret_len = p->len;
        p->len = p->cap = 0;
        return s;
}

void gv_prom_done(struct gv_prom *p)
{
        free(p->buf);
        *p = (struct gv_prom){ 0 };
}
