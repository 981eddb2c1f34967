/* The benchmarks' clock: wall time, or the process's CPU time with BENCH_CLOCK=cpu (on a
 * machine shared with other jobs, CPU time is steadier than wall time). */
#ifndef NASDET_BENCH_CLOCK_H
#define NASDET_BENCH_CLOCK_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/fileio.h"

/* Seconds: wall clock, or the process's CPU time with BENCH_CLOCK=cpu. */
static inline double bench_now(void) {
    static int cpu = -1;
    if (cpu < 0) {
        const char *c = getenv("BENCH_CLOCK");
        cpu = c && strcmp(c, "cpu") == 0;
    }
    if (!cpu) return nd_time_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
