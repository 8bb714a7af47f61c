/* SPDX-License-Identifier: MIT */
/*
 * store-priv.h — what the store's own tests and diagnostics need beyond store.h. Not for the
 * controller: it names a backend.
 */
#pragma once

#include "store.h"

/* How the backends' messages name an object of a kind ("VM", "The allocation of host", ...). */
const char *gv_store_kind_human(enum gv_store_kind k);

/* The backend's handle behind a store (the `void *b` its ops receive). */
void *gv_store_backend(struct gv_store *s);

/* Run "PRAGMA name" on an SQLite store's own connection (synchronous, for one, is per
 * connection) and return the first column of its first row as text. -EOPNOTSUPP for a store of
 * another backend; -EINVAL for a name that is not [a-z_]+. */
int gv_store_sqlite_pragma(struct gv_store *s, const char *name, char **ret,
                           struct gv_error **err);

/* How SQLite would run an audit query (EXPLAIN QUERY PLAN's details joined by "; "): which
 * indexes it uses, for tests and for looking at a slow query. */
int gv_store_sqlite_audit_plan(struct gv_store *s, const struct gv_store_audit_query *q,
                               char **ret, struct gv_error **err);

/* The schema version the SQLite backend migrates to (the number of its migration steps). */
extern const int gv_store_sqlite_schema_newest;
/* ... and the PostgreSQL backend (the same numbering). */
extern const int gv_store_pg_schema_newest;

/* Tests: the next write transaction on this PostgreSQL store breaks its own connection right
 * after sending COMMIT (the server still commits), as if the network failed there. Nothing for
 * a store of another backend. */
void gv_store_pg_test_cut_after_commit(struct gv_store *s);
