/* libFuzzer target: genotype JSON, queue checkpoints and children.jsonl lines. Whatever the
 * bytes, parsing returns a status (never crashes), and whatever parses writes back to text
 * that parses to the same thing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet.h"
#include "common/log.h"
#include "search/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nd_log_set_level(ND_LOG_QUIET);
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    nas_genotype g, back;
    if (nas_genotype_parse(text, &g) == 0) {
        for (int pretty = 0; pretty < 2; pretty++) {
            char *out = NULL, *again = NULL;
            if (nas_genotype_to_json(&g, pretty, &out) != 0) abort();
            if (nas_genotype_parse(out, &back) != 0 || !nas_genotype_equal(&g, &back)) abort();
            if (nas_genotype_to_json(&back, pretty, &again) != 0 || strcmp(out, again) != 0) abort();
            free(out);
            free(again);
        }
        char *dot = NULL;
        if (nas_genotype_to_dot(&g, 3, &dot) != 0) abort();
        free(dot);
        for (int k = 0; k < SRCH_SPACE_COUNT; k++) {
            srch_space s;
            srch_space_init(&s, (srch_space_kind)k);
            int d[2 * 5 * NAS_MAX_BLOCKS];
            int n = srch_space_n_decisions(&s);
            if (srch_space_encode(&s, &g, d, n) == 0) {
                if (srch_space_decode(&s, d, n, &back) != 0) abort();
                g.name[0] = '\0';
                if (!nas_genotype_equal(&g, &back)) abort();
            }
        }
    }
    srch_queue *q = NULL;
    if (srch_queue_from_json(text, &q) == 0) {
        char *out = NULL;
        if (srch_queue_to_json(q, &out) != 0) abort();
        free(out);
    }
    srch_queue_free(q);
    srch_child c;
    if (srch_child_from_json(text, &c) == 0) {
        char *line = NULL;
        if (srch_child_to_json(&c, &line) != 0) abort();
        free(line);
    }
    free(text);
    return 0;
}
