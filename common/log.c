#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static nd_log_fn log_handler;
static void *log_user;
static nd_log_level log_threshold = ND_LOG_INFO;

static void log_to_stderr(nd_log_level level, const char *message, void *user) {
    static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
    (void)user;
    fprintf(stderr, "nasdet: %s%s\n", prefix[level], message);
}

void nd_log_set_handler(nd_log_fn fn, void *user) {
    pthread_mutex_lock(&log_lock);
    log_handler = fn;
    log_user = user;
    pthread_mutex_unlock(&log_lock);
}

void nd_log_set_level(nd_log_level level) { log_threshold = level; }

nd_log_level nd_log_get_level(void) { return log_threshold; }

void nd_log(nd_log_level level, const char *fmt, ...) {
    char message[2048];
    va_list ap;
    if (level < log_threshold || level >= ND_LOG_QUIET) return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    (log_handler ? log_handler : log_to_stderr)(level, message, log_user);
    pthread_mutex_unlock(&log_lock);
}
