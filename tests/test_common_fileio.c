#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "tests/util/testutil.h"

Test(fileio, atomic_write_replaces_whole_file) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "a/b/c.txt");
    char *sub = nd_path_join(dir, "a/b");
    cr_assert_eq(nd_mkdirs(sub), 0, "%s", nd_last_error());
    cr_assert_eq(nd_file_write_atomic(path, "first", 5), 0);
    cr_assert_eq(nd_file_write_atomic(path, "second!", 7), 0);
    char *data;
    size_t len;
    cr_assert_eq(nd_file_read_all(path, &data, &len), 0);
    cr_expect_eq(len, 7);
    cr_expect_str_eq(data, "second!");
    free(data);
    /* An aborted write leaves the old content and no temporary file behind. */
    nd_atomic_file af;
    cr_assert_eq(nd_atomic_open(&af, path), 0);
    fputs("partial", af.fp);
    nd_atomic_abort(&af);
    cr_assert_eq(nd_file_read_all(path, &data, &len), 0);
    cr_expect_str_eq(data, "second!");
    free(data);
    char *listing;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/a/b | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int files = 0;
    cr_assert_eq(fscanf(p, "%d", &files), 1);
    pclose(p);
    cr_expect_eq(files, 1);
    (void)listing;
    free(path);
    free(sub);
    tu_rmtree(dir);
    free(dir);
}

Test(fileio, missing_file_names_it) {
    char *data;
    size_t len;
    cr_expect_eq(nd_file_read_all("/nonexistent/x.json", &data, &len), ND_ERR_IO);
    cr_expect(strstr(nd_last_error(), "/nonexistent/x.json") != NULL);
    cr_expect_null(data);
}

Test(fileio, append_lines) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "log.jsonl");
    cr_assert_eq(nd_file_append_line(path, "{\"a\":1}"), 0);
    cr_assert_eq(nd_file_append_line(path, "{\"a\":2}"), 0);
    char *data;
    size_t len;
    cr_assert_eq(nd_file_read_all(path, &data, &len), 0);
    cr_expect_str_eq(data, "{\"a\":1}\n{\"a\":2}\n");
    free(data);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(rng, deterministic_and_uniform) {
    nd_rng a, b;
    nd_rng_seed(&a, 42);
    nd_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) cr_assert_eq(nd_rng_u64(&a), nd_rng_u64(&b));
    nd_rng_seed_stream(&a, 42, 1);
    nd_rng_seed_stream(&b, 42, 2);
    cr_expect_neq(nd_rng_u64(&a), nd_rng_u64(&b));
    int counts[10] = {0};
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 100000; i++) {
        counts[nd_rng_below(&a, 10)]++;
        double z = nd_rng_normal(&a);
        sum += z;
        sum2 += z * z;
    }
    for (int k = 0; k < 10; k++) cr_expect(counts[k] > 9500 && counts[k] < 10500, "bucket %d: %d", k, counts[k]);
    cr_expect(fabs(sum / 1e5) < 0.02);
    cr_expect(fabs(sum2 / 1e5 - 1.0) < 0.02);
}
