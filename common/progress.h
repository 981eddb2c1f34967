/* A progress line for long jobs: "label  done/total  rate unit/s  ETA mm:ss  extra".
 *
 * On a terminal the line is redrawn in place (at most 10 times a second); otherwise a plain
 * line is written every `period` seconds (default 10) and at the end, so that logs stay
 * readable. Library loops take an optional nd_progress * from the program: they never choose
 * where it goes. */
#ifndef ND_PROGRESS_H
#define ND_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nd_progress {
    FILE *out;          /* NULL: silent */
    const char *label;
    const char *unit;   /* e.g. "img", "children" */
    int64_t total;      /* 0 when unknown */
    int is_tty;
    double start, last_draw, period;
} nd_progress;

void nd_progress_init(nd_progress *p, FILE *out, const char *label, const char *unit, int64_t total);
/* Report `done` units finished; `extra` (may be NULL) is appended, e.g. "loss 0.412". */
void nd_progress_update(nd_progress *p, int64_t done, const char *extra);
/* Final line with the total time and mean rate. */
void nd_progress_finish(nd_progress *p, int64_t done, const char *extra);

#ifdef __cplusplus
}
#endif

#endif
