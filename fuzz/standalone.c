/* SPDX-License-Identifier: MIT */
/*
 * standalone.c — a main() for the harnesses outside libFuzzer (fuzz.h): every file named, and
 * every file in every directory named (sorted, dot files and README* skipped), is given to
 * LLVMFuzzerTestOneInput() once. This is how the regression corpora (fuzz/regress/<target>/)
 * and the seeds (fuzz/corpus/<target>/) run as meson tests in the gcc builds, plain and
 * ASan+UBSan: an input that crashes fails the test.
 *
 *   fuzz-json-regress fuzz/regress/json fuzz/corpus/json
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"

/* Larger than any -max_len fuzz/run.sh uses. */
#define INPUT_MAX (4u * 1024u * 1024u)

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = gv_read_file(path, INPUT_MAX, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-r));
                return r;
        }
        fprintf(stderr, "input %s (%zu bytes)\n", path, len);
        /* A copy of exactly len bytes, so ASan sees a read past the input's end. */
        _cleanup_free_ uint8_t *data = xmalloc(len ? len : 1);
        memcpy(data, buf, len);
        (void)LLVMFuzzerTestOneInput(data, len);
        return 0;
}

static int run_dir(const char *dir, size_t *n)
{
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "%s: cannot open: %s\n", dir, strerror(errno));
                return -errno;
        }
        _cleanup_strv_free_ char **names = NULL;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && strncmp(de->d_name, "README", 6) != 0)
                        strv_extend(&names, de->d_name);
        closedir(d);
        strv_sort(names);
        STRV_FOREACH(name, names) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, *name);
                int r = run_file(p);
                if (r < 0)
                        return r;
                (*n)++;
        }
        return 0;
}

int main(int argc, char **argv)
{
        size_t n = 0;
        if (LLVMFuzzerInitialize)
                (void)LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                int r = S_ISDIR(st.st_mode) ? run_dir(argv[i], &n) : run_file(argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
                if (!S_ISDIR(st.st_mode))
                        n++;
        }
        printf("%s: %zu inputs, no finding\n", argv[0], n);
        return EXIT_SUCCESS;
}
