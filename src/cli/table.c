/* SPDX-License-Identifier: MIT */
#include "cli/table.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct gv_table {
        size_t n_cols;
        char **headers;
        char ***rows;
        size_t n_rows;
};

size_t gv_utf8_width(const char *s)
{
        size_t w = 0;
        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        w++;
        return w;
}

struct gv_table *gv_table_new(const char *const *headers)
{
        struct gv_table *t = xnew0(struct gv_table, 1);
        while (headers[t->n_cols])
                t->n_cols++;
        t->headers = xnew0(char *, t->n_cols);
        for (size_t i = 0; i < t->n_cols; i++)
                t->headers[i] = xstrdup(headers[i]);
        return t;
}

void gv_table_add_row(struct gv_table *t, const char *const *cells)
{
        char **row = xnew0(char *, t->n_cols);
        for (size_t i = 0; i < t->n_cols; i++)
                row[i] = xstrdup(cells[i] ? cells[i] : "—");
        t->rows = xreallocarray(t->rows, t->n_rows + 1, sizeof(char **));
        t->rows[t->n_rows++] = row;
}

void gv_table_add_rowf(struct gv_table *t, const char *first, ...)
{
        const char **cells = xnew0(const char *, t->n_cols);
        va_list ap;
        va_start(ap, first);
        cells[0] = first;
        for (size_t i = 1; i < t->n_cols; i++)
                cells[i] = va_arg(ap, const char *);
        va_end(ap);
        gv_table_add_row(t, cells);
        free(cells);
}

void gv_table_print(const struct gv_table *t, FILE *f)
{
        _cleanup_free_ size_t *w = xnew0(size_t, t->n_cols);
        for (size_t c = 0; c < t->n_cols; c++) {
                w[c] = gv_utf8_width(t->headers[c]);
                for (size_t r = 0; r < t->n_rows; r++)
                        w[c] = MAX(w[c], gv_utf8_width(t->rows[r][c]));
        }
        for (size_t r = 0; r <= t->n_rows; r++) {
                char *const *cells = r == 0 ? t->headers : t->rows[r - 1];
                for (size_t c = 0; c < t->n_cols; c++) {
                        bool last = c + 1 == t->n_cols;
                        fputs(cells[c], f);
                        if (!last)
                                for (size_t p = gv_utf8_width(cells[c]); p < w[c] + 2; p++)
                                        fputc(' ', f);
                }
                fputc('\n', f);
        }
}

struct gv_table *gv_table_free(struct gv_table *t)
{
        if (!t)
                return NULL;
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_cols; c++)
                        free(t->rows[r][c]);
                free(t->rows[r]);
        }
        for (size_t c = 0; c < t->n_cols; c++)
                free(t->headers[c]);
        free(t->headers);
        free(t->rows);
        free(t);
        return NULL;
}
