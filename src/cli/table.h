/* SPDX-License-Identifier: MIT */
/* table.h — terminal tables for people (`--json` is the programs' format). */
#pragma once

#include <stdio.h>

#include "util/macro.h"

struct gv_table;

struct gv_table *gv_table_new(const char *const *headers); /* NULL-terminated */
/* Add a row: one string per column (NULL prints "—"). */
void gv_table_add_row(struct gv_table *t, const char *const *cells);
void gv_table_add_rowf(struct gv_table *t, const char *first, ...); /* n_cols strings */
void gv_table_print(const struct gv_table *t, FILE *f);
struct gv_table *gv_table_free(struct gv_table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_table *, gv_table_free);

/* Display width of a UTF-8 string (code points; good enough for our ASCII plus — · ×). */
size_t gv_utf8_width(const char *s);
