/* NN_PROFILE=1: wall time of every op the CPU backend runs, summed by op, direction and shapes,
 * printed to stderr at exit (the heaviest signatures first). For finding where a network's time
 * goes; off (one branch per op) unless the variable is set when the first op runs. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_impl.h"

#define PROFILE_SLOTS 4096 /* open addressing; distinct signatures of one network fit easily */
#define PROFILE_KEY 160

typedef struct profile_slot {
    char key[PROFILE_KEY];
    double seconds;
    int64_t calls;
} profile_slot;

static profile_slot *slots;
static int state; /* 0: not yet looked at the environment, 1: on, -1: off */

static void shape_str(char *s, size_t cap, const nn_tensor *t) {
    size_t n = 0;
    for (int d = 0; d < t->ndim && n + 1 < cap; d++)
        n += (size_t)snprintf(s + n, cap - n, d ? "x%lld" : "%lld", (long long)t->shape[d]);
    if (t->ndim == 0) snprintf(s, cap, "scalar");
}

static void signature(char *key, const nn_node *node, int backward) {
    size_t n = (size_t)snprintf(key, PROFILE_KEY, "%-15s %s", nn_op_names[node->op], backward ? "bwd" : "fwd");
    for (int i = 0; i < node->nin && i < 3 && n + 2 < PROFILE_KEY; i++) {
        char s[48];
        shape_str(s, sizeof s, node->ins[i]);
        n += (size_t)snprintf(key + n, PROFILE_KEY - n, " %s", s);
    }
    if (n + 2 < PROFILE_KEY) {
        char s[48];
        shape_str(s, sizeof s, node->out);
        snprintf(key + n, PROFILE_KEY - n, " -> %s", s);
    }
}

static profile_slot *find(const char *key) {
    uint64_t h = 1469598103934665603ull;
    for (const char *c = key; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (int probe = 0; probe < PROFILE_SLOTS; probe++) {
        profile_slot *s = &slots[(h + (uint64_t)probe) % PROFILE_SLOTS];
        if (!s->key[0]) strcpy(s->key, key);
        if (!strcmp(s->key, key)) return s;
    }
    return NULL; /* full: further signatures go uncounted */
}

static int by_seconds_desc(const void *a, const void *b) {
    double x = ((const profile_slot *)a)->seconds, y = ((const profile_slot *)b)->seconds;
    return (x < y) - (x > y);
}

static void report(void) {
    qsort(slots, PROFILE_SLOTS, sizeof *slots, by_seconds_desc);
    double total = 0, by_op[NN_OP_COUNT] = {0};
    for (int i = 0; i < PROFILE_SLOTS && slots[i].key[0]; i++) {
        total += slots[i].seconds;
        for (int op = 0; op < NN_OP_COUNT; op++) {
            size_t len = strlen(nn_op_names[op]);
            if (!strncmp(slots[i].key, nn_op_names[op], len) && slots[i].key[len] == ' ') by_op[op] += slots[i].seconds;
        }
    }
    fprintf(stderr, "NN_PROFILE: %.1f ms in ops (%d threads)\n", total * 1e3, omp_get_max_threads());
    for (int op = 0; op < NN_OP_COUNT; op++)
        if (by_op[op] > 0) fprintf(stderr, "  %-15s %9.2f ms %5.1f%%\n", nn_op_names[op], by_op[op] * 1e3,
                                   100 * by_op[op] / total);
    int top = getenv("NN_PROFILE_TOP") ? atoi(getenv("NN_PROFILE_TOP")) : 40;
    for (int i = 0; i < top && i < PROFILE_SLOTS && slots[i].key[0]; i++)
        fprintf(stderr, "  %9.2f ms %5.1f%% %6lld calls  %s\n", slots[i].seconds * 1e3, 100 * slots[i].seconds / total,
                (long long)slots[i].calls, slots[i].key);
    free(slots);
}

int nn__profile_on(void) {
    if (state == 0) {
        const char *v = getenv("NN_PROFILE");
        state = v && *v && strcmp(v, "0") ? 1 : -1;
        if (state == 1) {
            slots = calloc(PROFILE_SLOTS, sizeof *slots);
            if (!slots) state = -1;
            else atexit(report);
        }
    }
    return state == 1;
}

void nn__profile_add(const nn_node *node, int backward, double seconds) {
    char key[PROFILE_KEY];
    signature(key, node, backward);
    profile_slot *s = find(key);
    if (!s) return;
    s->seconds += seconds;
    s->calls++;
}
