/* Logging for library code. Library code never prints: it calls nd_log, and the program
 * decides where messages go (nd_log_set_handler) and how much (nd_log_set_level). The default
 * handler writes "nasdet: warning: ..." lines to stderr. Thread-safe. */
#ifndef ND_LOG_H
#define ND_LOG_H

typedef enum nd_log_level {
    ND_LOG_DEBUG = 0,
    ND_LOG_INFO = 1,
    ND_LOG_WARN = 2,
    ND_LOG_ERROR = 3,
    ND_LOG_QUIET = 4 /* as a threshold: nothing passes */
} nd_log_level;

typedef void (*nd_log_fn)(nd_log_level level, const char *message, void *user);

/* Route messages to `fn` (NULL restores the default stderr handler). */
void nd_log_set_handler(nd_log_fn fn, void *user);
/* Drop messages below `level` (default ND_LOG_INFO). */
void nd_log_set_level(nd_log_level level);
nd_log_level nd_log_get_level(void);

void nd_log(nd_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define ND_DEBUG(...) nd_log(ND_LOG_DEBUG, __VA_ARGS__)
#define ND_INFO(...) nd_log(ND_LOG_INFO, __VA_ARGS__)
#define ND_WARN(...) nd_log(ND_LOG_WARN, __VA_ARGS__)
#define ND_ERROR(...) nd_log(ND_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
