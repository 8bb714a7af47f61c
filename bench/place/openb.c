/* SPDX-License-Identifier: MIT */
/*
 * openb.c — openb CSV reader and the FGD artefact's workload protocol (openb.h).
 */
#include "openb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"

#define OPENB_FILE_MAX (64u * 1024u * 1024u)
#define OPENB_MAX_FIELDS 64

/* One CSV line split in place. */
struct csv_row {
        char *field[OPENB_MAX_FIELDS];
        size_t n;
};

static const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* Next line of *cursor (NUL-terminated in place, "\r" stripped); NULL at the end. */
static char *next_line(char **cursor)
{
        char *s = *cursor, *e;

        if (!s || !*s)
                return NULL;
        e = strchr(s, '\n');
        if (e) {
                *e = 0;
                *cursor = e + 1;
        } else
                *cursor = s + strlen(s);
        if (*s && s[strlen(s) - 1] == '\r')
                s[strlen(s) - 1] = 0;
        return s;
}

static int split_row(const char *file, size_t row, char *line, struct csv_row *ret,
                     struct gv_error **err)
{
        struct csv_row r = { .n = 0 };

        if (strchr(line, '"'))
                return gv_error_set(err, EINVAL,
                                    "%s: row %zu: quoted fields are not supported by the openb "
                                    "format; remove the '\"' characters.",
                                    file, row);
        for (char *s = line;;) {
                char *c = strchr(s, ',');
                if (r.n >= OPENB_MAX_FIELDS)
                        return gv_error_set(err, EINVAL,
                                            "%s: row %zu has more than %d fields; is this an "
                                            "openb CSV file?",
                                            file, row, OPENB_MAX_FIELDS);
                r.field[r.n++] = s;
                if (!c)
                        break;
                *c = 0;
                s = c + 1;
        }
        *ret = r;
        return 0;
}

/* Column index by header name, -1 if absent. */
static int column(const struct csv_row *hdr, const char *name)
{
        for (size_t i = 0; i < hdr->n; i++)
                if (strcmp(hdr->field[i], name) == 0)
                        return (int)i;
        return -1;
}

static int need_columns(const char *file, const struct csv_row *hdr, const char *const *names,
                        int *idx, size_t n, struct gv_error **err)
{
        for (size_t i = 0; i < n; i++) {
                idx[i] = column(hdr, names[i]);
                if (idx[i] < 0)
                        return gv_error_set(err, EINVAL,
                                            "%s: the header has no '%s' column; an openb file "
                                            "needs the columns %s%s%s%s%s%s%s%s%s.",
                                            file, names[i], names[0], n > 1 ? ", " : "",
                                            n > 1 ? names[1] : "", n > 2 ? ", " : "",
                                            n > 2 ? names[2] : "", n > 3 ? ", " : "",
                                            n > 3 ? names[3] : "", n > 4 ? ", " : "",
                                            n > 4 ? names[4] : "");
        }
        return 0;
}

static int field_u32(const char *file, size_t row, const struct csv_row *hdr,
                     const struct csv_row *r, int col, uint32_t *ret, struct gv_error **err)
{
        if (gv_parse_u32(r->field[col], 10, ret) < 0)
                return gv_error_set(err, EINVAL,
                                    "%s: row %zu, column '%s': '%s' is not a non-negative "
                                    "integer.",
                                    file, row, hdr->field[col], r->field[col]);
        return 0;
}

static int field_u64(const char *file, size_t row, const struct csv_row *hdr,
                     const struct csv_row *r, int col, uint64_t *ret, struct gv_error **err)
{
        if (gv_parse_u64(r->field[col], 10, ret) < 0)
                return gv_error_set(err, EINVAL,
                                    "%s: row %zu, column '%s': '%s' is not a non-negative "
                                    "integer.",
                                    file, row, hdr->field[col], r->field[col]);
        return 0;
}

static char *models_join(const struct openb_cluster *c)
{
        size_t len = 1;
        char *s;

        for (size_t i = 0; i < c->n_models; i++)
                len += strlen(c->models[i]) + 2;
        s = xnew0(char, len);
        for (size_t i = 0; i < c->n_models; i++) {
                if (i)
                        strcat(s, ", ");
                strcat(s, c->models[i]);
        }
        return s;
}

void openb_cluster_done(struct openb_cluster *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n_nodes; i++)
                free(c->nodes[i].name);
        free(c->nodes);
        for (size_t i = 0; i < c->n_models; i++)
                free(c->models[i]);
        *c = (struct openb_cluster){};
}

int openb_cluster_parse(const char *file, char *text, struct openb_cluster *ret,
                        struct gv_error **err)
{
        static const char *const cols[] = { "sn", "cpu_milli", "memory_mib", "gpu", "model" };
        struct openb_cluster c = {};
        struct csv_row hdr;
        int idx[ELEMENTSOF(cols)];
        size_t cap = 0, row = 1;
        char *cursor = text, *line;
        int r;

        line = next_line(&cursor);
        if (!line || !*line)
                return gv_error_set(err, EINVAL, "%s: the file is empty; expected a header "
                                    "'sn,cpu_milli,memory_mib,gpu,model'.", file);
        r = split_row(file, row, line, &hdr, err);
        if (r < 0)
                return r;
        r = need_columns(file, &hdr, cols, idx, ELEMENTSOF(cols), err);
        if (r < 0)
                return r;

        while ((line = next_line(&cursor))) {
                struct csv_row f;
                struct openb_node n = {};
                size_t m;

                row++;
                if (!*line) {
                        if (*cursor)
                                goto fail_blank;
                        break;
                }
                r = split_row(file, row, line, &f, err);
                if (r < 0)
                        goto fail;
                if (f.n != hdr.n) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu has %zu fields; the header has %zu.", file,
                                         row, f.n, hdr.n);
                        goto fail;
                }
                if (!*f.field[idx[0]]) {
                        r = gv_error_set(err, EINVAL, "%s: row %zu, column 'sn' is empty; every "
                                         "node needs a name.", file, row);
                        goto fail;
                }
                if ((r = field_u32(file, row, &hdr, &f, idx[1], &n.cpu_milli, err)) < 0 ||
                    (r = field_u64(file, row, &hdr, &f, idx[2], &n.memory_mib, err)) < 0 ||
                    (r = field_u32(file, row, &hdr, &f, idx[3], &n.gpus, err)) < 0)
                        goto fail;
                if (n.gpus > OPENB_MAX_GPUS_PER_NODE) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu, column 'gpu': %u GPUs on one node; at most "
                                         "%d are supported.",
                                         file, row, n.gpus, OPENB_MAX_GPUS_PER_NODE);
                        goto fail;
                }
                if (n.gpus > 0 && !*f.field[idx[4]]) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu, column 'model' is empty but the node has "
                                         "%u GPUs; name the GPU model.",
                                         file, row, n.gpus);
                        goto fail;
                }
                for (m = 0; m < c.n_models; m++)
                        if (strcmp(c.models[m], f.field[idx[4]]) == 0)
                                break;
                if (m == c.n_models) {
                        if (c.n_models >= OPENB_MAX_MODELS) {
                                r = gv_error_set(err, EINVAL,
                                                 "%s: row %zu, column 'model': more than %d "
                                                 "distinct GPU models.",
                                                 file, row, OPENB_MAX_MODELS);
                                goto fail;
                        }
                        c.models[c.n_models++] = xstrdup(f.field[idx[4]]);
                }
                n.model = (unsigned)m;
                n.name = xstrdup(f.field[idx[0]]);
                if (c.n_nodes == cap) {
                        cap = cap ? cap * 2 : 256;
                        c.nodes = xreallocarray(c.nodes, cap, sizeof(*c.nodes));
                }
                c.nodes[c.n_nodes++] = n;
                c.total_gpus += n.gpus;
        }
        if (c.n_nodes == 0) {
                r = gv_error_set(err, EINVAL, "%s: the node list has a header but no nodes.",
                                 file);
                goto fail;
        }
        *ret = c;
        return 0;

fail_blank:
        r = gv_error_set(err, EINVAL, "%s: row %zu is empty; remove blank lines.", file, row);
fail:
        openb_cluster_done(&c);
        return r;
}

int openb_cluster_load(const char *path, struct openb_cluster *ret, struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = gv_read_file(path, OPENB_FILE_MAX, &text, NULL);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the node list '%s': %s.", path,
                                    strerror(-r));
        return openb_cluster_parse(base_name(path), text, ret, err);
}

void openb_pods_done(struct openb_pods *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_pods; i++)
                free(p->pods[i].name);
        free(p->pods);
        *p = (struct openb_pods){};
}

static int parse_spec(const char *file, size_t row, const struct openb_cluster *c, char *spec,
                      uint64_t *ret, struct gv_error **err)
{
        uint64_t mask = 0;

        for (char *tok = spec; tok && *tok;) {
                char *bar = strchr(tok, '|');
                size_t m;

                if (bar)
                        *bar = 0;
                if (*tok) {
                        for (m = 0; m < c->n_models; m++)
                                if (strcmp(c->models[m], tok) == 0)
                                        break;
                        if (m == c->n_models) {
                                _cleanup_free_ char *known = models_join(c);
                                return gv_error_set(err, EINVAL,
                                                    "%s: row %zu, column 'gpu_spec': unknown GPU "
                                                    "model '%s'; the node list has %s.",
                                                    file, row, tok, known);
                        }
                        mask |= UINT64_C(1) << m;
                }
                tok = bar ? bar + 1 : NULL;
        }
        *ret = mask;
        return 0;
}

int openb_pods_parse(const char *file, char *text, const struct openb_cluster *c,
                     struct openb_pods *ret, struct gv_error **err)
{
        static const char *const cols[] = { "name", "cpu_milli", "memory_mib", "num_gpu",
                                            "gpu_milli" };
        struct openb_pods p = {};
        struct csv_row hdr;
        int idx[ELEMENTSOF(cols)], spec_col;
        size_t cap = 0, row = 1;
        char *cursor = text, *line;
        int r;

        line = next_line(&cursor);
        if (!line || !*line)
                return gv_error_set(err, EINVAL, "%s: the file is empty; expected a header "
                                    "'name,cpu_milli,memory_mib,num_gpu,gpu_milli,...'.", file);
        r = split_row(file, row, line, &hdr, err);
        if (r < 0)
                return r;
        r = need_columns(file, &hdr, cols, idx, ELEMENTSOF(cols), err);
        if (r < 0)
                return r;
        spec_col = column(&hdr, "gpu_spec"); /* optional: the multigpu files lack it */

        while ((line = next_line(&cursor))) {
                struct csv_row f;
                struct openb_pod q = {};

                row++;
                if (!*line) {
                        if (*cursor)
                                goto fail_blank;
                        break;
                }
                r = split_row(file, row, line, &f, err);
                if (r < 0)
                        goto fail;
                if (f.n != hdr.n) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu has %zu fields; the header has %zu.", file,
                                         row, f.n, hdr.n);
                        goto fail;
                }
                if (!*f.field[idx[0]]) {
                        r = gv_error_set(err, EINVAL, "%s: row %zu, column 'name' is empty; every "
                                         "pod needs a name.", file, row);
                        goto fail;
                }
                if ((r = field_u32(file, row, &hdr, &f, idx[1], &q.cpu_milli, err)) < 0 ||
                    (r = field_u64(file, row, &hdr, &f, idx[2], &q.memory_mib, err)) < 0 ||
                    (r = field_u32(file, row, &hdr, &f, idx[3], &q.num_gpu, err)) < 0 ||
                    (r = field_u32(file, row, &hdr, &f, idx[4], &q.gpu_milli, err)) < 0)
                        goto fail;
                if (q.num_gpu > OPENB_MAX_GPUS_PER_NODE) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu, column 'num_gpu': %u GPUs; at most %d.",
                                         file, row, q.num_gpu, OPENB_MAX_GPUS_PER_NODE);
                        goto fail;
                }
                if (q.num_gpu == 0)
                        /* pod_csv_to_yaml.py writes no GPU annotation for num_gpu == 0. */
                        q.gpu_milli = 0;
                else if (q.gpu_milli == 0 || q.gpu_milli > 1000) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu, column 'gpu_milli': %u for a pod with %u "
                                         "GPUs; the per-GPU share must be 1..1000.",
                                         file, row, q.gpu_milli, q.num_gpu);
                        goto fail;
                } else if (q.num_gpu > 1 && q.gpu_milli < 1000) {
                        r = gv_error_set(err, EINVAL,
                                         "%s: row %zu, column 'gpu_milli': a share of %u on %u "
                                         "GPUs; only single-GPU pods may share a GPU.",
                                         file, row, q.gpu_milli, q.num_gpu);
                        goto fail;
                }
                if (spec_col >= 0 && q.num_gpu > 0) {
                        r = parse_spec(file, row, c, f.field[spec_col], &q.model_mask, err);
                        if (r < 0)
                                goto fail;
                }
                q.name = xstrdup(f.field[idx[0]]);
                if (p.n_pods == cap) {
                        cap = cap ? cap * 2 : 1024;
                        p.pods = xreallocarray(p.pods, cap, sizeof(*p.pods));
                }
                p.pods[p.n_pods++] = q;
        }
        if (p.n_pods == 0) {
                r = gv_error_set(err, EINVAL, "%s: the pod list has a header but no pods.", file);
                goto fail;
        }
        *ret = p;
        return 0;

fail_blank:
        r = gv_error_set(err, EINVAL, "%s: row %zu is empty; remove blank lines.", file, row);
fail:
        openb_pods_done(&p);
        return r;
}

int openb_pods_load(const char *path, const struct openb_cluster *c, struct openb_pods *ret,
                    struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = gv_read_file(path, OPENB_FILE_MAX, &text, NULL);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the pod list '%s': %s.", path,
                                    strerror(-r));
        return openb_pods_parse(base_name(path), text, c, ret, err);
}

static uint64_t splitmix64(uint64_t *x)
{
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

void openb_rng_seed(struct openb_rng *r, uint64_t seed)
{
        for (int i = 0; i < 4; i++)
                r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
        return (x << k) | (x >> (64 - k));
}

uint64_t openb_rng_next(struct openb_rng *r)
{
        uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

uint64_t openb_rng_below(struct openb_rng *r, uint64_t n)
{
        uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;

        do
                x = openb_rng_next(r);
        while (x >= lim);
        return x % n;
}

static int pod_name_cmp(const void *x, const void *y)
{
        const struct openb_pod *const *a = x, *const *b = y;
        return strcmp((*a)->name, (*b)->name);
}

void openb_workload_done(struct openb_workload *w)
{
        if (!w)
                return;
        free(w->seq);
        *w = (struct openb_workload){};
}

int openb_workload_build(const struct openb_pods *trace, uint64_t capacity_milli, double ratio,
                         uint64_t seed, struct openb_workload *ret, struct gv_error **err)
{
        _cleanup_free_ const struct openb_pod **byname = NULL;
        const struct openb_pod **seq;
        struct openb_rng rng;
        size_t n, cap;
        uint64_t total = 0;
        double target = ratio * (double)capacity_milli;

        if (trace->n_pods == 0)
                return gv_error_set(err, EINVAL, "The pod list is empty; nothing to replay.");
        if (!(ratio > 0) || ratio > 100)
                return gv_error_set(err, EINVAL,
                                    "Tune ratio %g is out of range; use a value in (0, 100].",
                                    ratio);

        byname = xnew0(const struct openb_pod *, trace->n_pods);
        for (size_t i = 0; i < trace->n_pods; i++) {
                byname[i] = &trace->pods[i];
                total += openb_pod_total_milli(&trace->pods[i]);
        }
        qsort(byname, trace->n_pods, sizeof(*byname), pod_name_cmp);

        cap = trace->n_pods * 2 + 16;
        seq = xnew0(const struct openb_pod *, cap);
        memcpy(seq, byname, trace->n_pods * sizeof(*seq));
        n = trace->n_pods;

        openb_rng_seed(&rng, seed);
        /* rand.Shuffle: Fisher–Yates from the end. */
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = (size_t)openb_rng_below(&rng, i + 1);
                const struct openb_pod *t = seq[i];
                seq[i] = seq[j];
                seq[j] = t;
        }

        if ((double)total > target) {
                /* tuneDownPods: remove random pods until the total is within the target. */
                while ((double)total > target && n > 0) {
                        size_t k = (size_t)openb_rng_below(&rng, n);
                        total -= openb_pod_total_milli(seq[k]);
                        memmove(&seq[k], &seq[k + 1], (n - k - 1) * sizeof(*seq));
                        n--;
                }
                ret->n_trace = n;
        } else {
                ret->n_trace = n;
                /* tuneUpPods: the stop test adds the drawn pod's per-GPU share. */
                for (;;) {
                        const struct openb_pod *q =
                                byname[openb_rng_below(&rng, trace->n_pods)];
                        if ((double)(total + q->gpu_milli) > target)
                                break;
                        if (n == cap) {
                                cap *= 2;
                                seq = xreallocarray(seq, cap, sizeof(*seq));
                        }
                        total += openb_pod_total_milli(q);
                        seq[n++] = q;
                        if (n > trace->n_pods * 1000) {
                                free(seq);
                                return gv_error_set(err, EINVAL,
                                                    "The pod list asks for almost no GPU; tuning "
                                                    "it to %g x capacity does not end.",
                                                    ratio);
                        }
                }
        }
        ret->seq = seq;
        ret->n = n;
        return 0;
}
