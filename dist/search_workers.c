/* Search workers over MPI. Rank 0 keeps one job in flight per worker rank and collects results
 * in any order (the driver's batches make the sampled architectures independent of that order);
 * ranks 1..K-1 train each child in a forked process.
 *
 * Why fork: under Open MPI 4.1 (Debian 12, no ULFM) a rank that dies takes the whole job down,
 * so a crashing or hanging child must not be the rank itself. The worker rank forks, the child
 * process trains (it never calls MPI) and writes its result into a pipe; the rank watches the
 * pipe, the clock and rank 0's messages, so it can kill a child that runs too long, report one
 * that was killed, and stop at once when rank 0 says so. The data set is loaded once before the
 * fork and shared copy-on-write. The rank itself runs no OpenMP region before forking (libgomp's
 * thread pool does not survive a fork), so each child starts with fresh threads.
 *
 * Messages (tags): HELLO w->0 {ok, child setting or load error}; JOB 0->w {id, seed, genotype
 * JSON}; RESULT w->0 {id, status, srch_result fields}; STOP 0->w {}. Waits poll with MPI_Iprobe
 * and short sleeps, because Open MPI's blocking receives spin a core at 100%, and on a 2-core
 * machine that core belongs to a child. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "dist/dist_internal.h"

#ifdef NASDET_USE_MPI
#include <mpi.h>
#endif

void dist_search_config_default(dist_search_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->job_timeout = 0;
    cfg->grace = 60;
    cfg->max_attempts = 3;
}

#ifndef NASDET_USE_MPI

int dist_search_workers_new(const dist_search_config *cfg, srch_workers **out) {
    (void)cfg;
    *out = NULL;
    return dist__unsupported("search workers on other ranks");
}

int dist_search_worker_main(const dist_search_config *cfg, const srch_child_trainer *trainer,
                            const char *load_error) {
    (void)cfg, (void)trainer, (void)load_error;
    return dist__unsupported("search worker");
}

#else

enum { TAG_HELLO = 101, TAG_JOB = 102, TAG_RESULT = 103, TAG_STOP = 104 };
enum { STATUS_DONE = 0, STATUS_LOST = 1 }; /* LOST: the child's process died or timed out */

typedef struct wire_job {
    int64_t id;
    uint64_t seed;
    /* followed by the genotype as JSON text, NUL-terminated */
} wire_job;

typedef struct wire_result {
    int64_t id;
    int32_t status;
    int32_t ok;
    double reward;
    int64_t params, macs;
    double seconds;
    char message[SRCH_MESSAGE_MAX];
} wire_result;

static void nap(long usec) {
    struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Receive a message of unknown length already announced by `st` (malloc'ed, NUL-terminated). */
static int recv_bytes(MPI_Status *st, char **buf, int *len) {
    int n = 0;
    MPI_Get_count(st, MPI_BYTE, &n);
    char *b = malloc((size_t)n + 1);
    if (!b) return nd_fail(ND_ERR_NOMEM, "out of memory for a %d-byte message", n);
    if (MPI_Recv(b, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(b);
        return nd_fail(ND_ERR_COMM, "MPI_Recv from rank %d failed", st->MPI_SOURCE);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return ND_OK;
}

/* ---- rank 0: the pool ----------------------------------------------------------------------- */

typedef struct slot {
    int busy;        /* a job of ours is on it */
    int lost;        /* silent past its deadline: no new work until it answers */
    int64_t job;
    double deadline; /* 0: none */
} slot;

typedef struct mpi_workers {
    srch_workers base; /* first: used through a srch_workers pointer */
    dist_search_config cfg;
    int size;
    slot *slots; /* by rank; [0] unused */
} mpi_workers;

static int send_job(int rank, const srch_job *job) {
    char *json = NULL;
    int rc = nas_genotype_to_json(&job->genotype, 0, &json);
    if (rc) return rc;
    size_t n = sizeof(wire_job) + strlen(json) + 1;
    char *buf = malloc(n);
    if (!buf) {
        free(json);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    wire_job h = {job->id, job->seed};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, json, strlen(json) + 1);
    free(json);
    rc = MPI_Send(buf, (int)n, MPI_BYTE, rank, TAG_JOB, MPI_COMM_WORLD) == MPI_SUCCESS
             ? ND_OK
             : nd_fail(ND_ERR_COMM, "sending job %lld to rank %d failed", (long long)job->id, rank);
    free(buf);
    return rc;
}

/* Give up on rank r's job: back to pending, unless it finished elsewhere meanwhile. */
static void requeue_slot(mpi_workers *mw, srch_queue *q, int r) {
    srch_job j;
    if (!srch_queue_get(q, mw->slots[r].job, &j) && j.state == SRCH_JOB_RUNNING && j.worker == r)
        srch_queue_requeue(q, mw->slots[r].job);
    mw->slots[r].busy = 0;
}

static int mpi_next_result(srch_workers *w, srch_queue *q, int64_t *id, srch_result *result) {
    mpi_workers *mw = (mpi_workers *)w;
    for (;;) {
        /* Hand out pending jobs, lowest id first, to idle live workers. */
        for (int r = 1; r < mw->size; r++) {
            slot *s = &mw->slots[r];
            if (s->busy || s->lost) continue;
            srch_job job;
            int got = srch_queue_pull(q, r, &job);
            if (got < 0) return got;
            if (got == 0) break;
            if (send_job(r, &job)) {
                ND_WARN("worker rank %d: %s; its job goes back to the queue", r, nd_last_error());
                s->job = job.id;
                requeue_slot(mw, q, r);
                s->lost = 1;
                continue;
            }
            s->busy = 1;
            s->job = job.id;
            s->deadline = mw->cfg.job_timeout > 0 ? nd_time_now() + mw->cfg.job_timeout + mw->cfg.grace : 0;
        }
        int busy = 0, live = 0;
        for (int r = 1; r < mw->size; r++) {
            busy += mw->slots[r].busy;
            live += !mw->slots[r].lost;
        }
        if (busy == 0) {
            if (srch_queue_count(q, SRCH_JOB_PENDING) > 0 && live == 0)
                return nd_fail(ND_ERR_COMM, "every worker rank stopped answering; the search state is saved: "
                               "continue it with --resume");
            if (srch_queue_count(q, SRCH_JOB_PENDING) == 0) return 0;
        }
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Iprobe failed");
        if (flag) {
            wire_result wr;
            int r = st.MPI_SOURCE;
            if (MPI_Recv(&wr, (int)sizeof wr, MPI_BYTE, r, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS)
                return nd_fail(ND_ERR_COMM, "MPI_Recv of a result from rank %d failed", r);
            wr.message[sizeof wr.message - 1] = 0;
            slot *s = &mw->slots[r];
            if (s->lost) ND_INFO("worker rank %d answers again", r);
            s->lost = 0;
            if (s->busy && s->job == wr.id) s->busy = 0;
            srch_job j;
            if (srch_queue_get(q, wr.id, &j) || j.state == SRCH_JOB_DONE) {
                ND_INFO("late result for job %lld from rank %d ignored: the job finished elsewhere", (long long)wr.id,
                        r);
                continue;
            }
            if (wr.status == STATUS_LOST) {
                if (j.state != SRCH_JOB_RUNNING || j.worker != r) continue; /* already re-queued */
                if (j.attempts < mw->cfg.max_attempts) {
                    ND_WARN("job %lld lost on rank %d (%s); re-queued (attempt %d of %d)", (long long)wr.id, r,
                            wr.message, j.attempts, mw->cfg.max_attempts);
                    srch_queue_requeue(q, wr.id);
                    continue;
                }
                memset(result, 0, sizeof *result);
                result->ok = 0;
                snprintf(result->message, sizeof result->message, "lost %d times, last on rank %d: %.200s", j.attempts,
                         r, wr.message);
                result->worker = r;
                *id = wr.id;
                return 1;
            }
            memset(result, 0, sizeof *result);
            result->ok = wr.ok;
            result->reward = wr.reward;
            result->params = wr.params;
            result->macs = wr.macs;
            result->seconds = wr.seconds;
            result->worker = r;
            memcpy(result->message, wr.message, sizeof result->message);
            *id = wr.id;
            return 1;
        }
        double now = nd_time_now();
        for (int r = 1; r < mw->size; r++) {
            slot *s = &mw->slots[r];
            if (s->busy && s->deadline > 0 && now > s->deadline) {
                ND_WARN("worker rank %d sent nothing for %.0f s on job %lld: given up, the job goes back to the queue",
                        r, mw->cfg.job_timeout + mw->cfg.grace, (long long)s->job);
                requeue_slot(mw, q, r);
                s->lost = 1;
            }
        }
        nap(1000);
    }
}

static void stop_all(int size) {
    char nothing = 0;
    for (int r = 1; r < size; r++) MPI_Send(&nothing, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
}

static void mpi_free(srch_workers *w) {
    mpi_workers *mw = (mpi_workers *)w;
    stop_all(mw->size);
    int lost = 0;
    for (int r = 1; r < mw->size; r++) lost += mw->slots[r].lost;
    dist__abandon_at_finalize(lost);
    free(mw->slots);
    free(mw);
}

int dist_search_workers_new(const dist_search_config *cfg, srch_workers **out) {
    *out = NULL;
    int size = dist_size();
    if (size < 2) return nd_fail(ND_ERR_UNSUPPORTED, "search workers need at least 2 MPI ranks (mpirun -np K, K >= 2)");
    if (dist_rank() != 0) return nd_fail(ND_ERR_INVALID, "the worker pool lives on rank 0");
    /* Every worker greets once: its child setting must be ours, its data must have loaded. */
    int rc = ND_OK;
    for (int i = 1; i < size; i++) {
        MPI_Status st;
        int flag = 0;
        while (!flag) {
            if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_HELLO, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) {
                stop_all(size);
                return nd_fail(ND_ERR_COMM, "MPI_Iprobe failed");
            }
            if (!flag) nap(1000);
        }
        char *msg = NULL;
        int len = 0;
        int r2 = recv_bytes(&st, &msg, &len);
        if (r2) {
            stop_all(size);
            return r2;
        }
        if (!rc && (len < 1 || msg[0] != '1'))
            rc = nd_fail(ND_ERR_INVALID, "worker rank %d cannot train children: %s", st.MPI_SOURCE,
                         len > 1 ? msg + 1 : "no reason given");
        else if (!rc && strcmp(msg + 1, cfg->child_desc ? cfg->child_desc : ""))
            rc = nd_fail(ND_ERR_INVALID, "worker rank %d has another child setting (%s) than rank 0 (%s): run every "
                         "rank with the same options", st.MPI_SOURCE, msg + 1, cfg->child_desc ? cfg->child_desc : "");
        free(msg);
    }
    mpi_workers *mw = rc ? NULL : calloc(1, sizeof *mw);
    slot *slots = rc ? NULL : calloc((size_t)size, sizeof *slots);
    if (!rc && (!mw || !slots)) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    if (rc) {
        free(mw);
        free(slots);
        stop_all(size);
        return rc;
    }
    mw->base.next_result = mpi_next_result;
    mw->base.free = mpi_free;
    mw->cfg = *cfg;
    mw->cfg.child_desc = NULL; /* only needed for the greeting */
    mw->size = size;
    mw->slots = slots;
    *out = &mw->base;
    return ND_OK;
}

/* ---- ranks 1..K-1: the worker ------------------------------------------------------------- */

static int send_hello(int ok, const char *text) {
    size_t n = strlen(text) + 2;
    char *b = malloc(n);
    if (!b) return nd_fail(ND_ERR_NOMEM, "out of memory");
    b[0] = ok ? '1' : '0';
    memcpy(b + 1, text, n - 1);
    int rc = MPI_Send(b, (int)n - 1, MPI_BYTE, 0, TAG_HELLO, MPI_COMM_WORLD) == MPI_SUCCESS
                 ? ND_OK
                 : nd_fail(ND_ERR_COMM, "greeting rank 0 failed");
    free(b);
    return rc;
}

static const char *host_name(void) {
    static char name[256];
    if (gethostname(name, sizeof name - 1)) snprintf(name, sizeof name, "?");
    return name;
}

static int stop_pending(void) {
    int flag = 0;
    MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
    return flag;
}

/* The forked child: train, write the result, leave without running the parent's exit handlers
 * (MPI's among them). */
static void child_process(int fd, const srch_child_trainer *t, const nas_genotype *g, uint64_t seed) {
    srch_result r;
    memset(&r, 0, sizeof r);
    double t0 = nd_time_now();
    nd_error_clear();
    int rc = t->train(t->user, g, seed, &r);
    r.seconds = nd_time_now() - t0;
    if (rc < 0) {
        r.ok = 0;
        snprintf(r.message, sizeof r.message, "%s: %s", nd_status_name(rc),
                 nd_last_error()[0] ? nd_last_error() : "child training failed");
    }
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) _exit(3);
        p += k;
        left -= (size_t)k;
    }
    _exit(0);
}

/* Train one job in a child process. *stopped = 1 when rank 0 said stop meanwhile (the child is
 * killed and no result is sent). */
static int run_job(const dist_search_config *cfg, const srch_child_trainer *t, int64_t id, uint64_t seed,
                   const nas_genotype *g, wire_result *wr, int *stopped) {
    memset(wr, 0, sizeof *wr);
    wr->id = id;
    *stopped = 0;
    int fds[2];
    if (pipe(fds)) return nd_fail(ND_ERR_IO, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return nd_fail(ND_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_process(fds[1], t, g, seed);
    }
    close(fds[1]);
    ND_INFO("worker rank %d: job %lld training in process %d", dist_rank(), (long long)id, (int)pid);
    srch_result r;
    size_t got = 0;
    double t0 = nd_time_now();
    int timed_out = 0;
    for (;;) {
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, 100);
        if (pr < 0 && errno != EINTR) break;
        if (pr > 0) {
            ssize_t k = read(fds[0], (char *)&r + got, sizeof r - got);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break; /* EOF: the child is gone */
            got += (size_t)k;
            if (got == sizeof r) break;
            continue;
        }
        if (cfg->job_timeout > 0 && nd_time_now() - t0 > cfg->job_timeout) {
            kill(pid, SIGKILL);
            timed_out = 1;
            break;
        }
        if (stop_pending()) {
            kill(pid, SIGKILL);
            *stopped = 1;
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (*stopped) return ND_OK;
    if (got == sizeof r && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        wr->status = STATUS_DONE;
        wr->ok = r.ok;
        wr->reward = r.reward;
        wr->params = r.params;
        wr->macs = r.macs;
        wr->seconds = r.seconds;
        memcpy(wr->message, r.message, sizeof wr->message);
        wr->message[sizeof wr->message - 1] = 0;
        return ND_OK;
    }
    wr->status = STATUS_LOST;
    if (timed_out)
        snprintf(wr->message, sizeof wr->message, "child training ran past the %.0f s job timeout and was killed",
                 cfg->job_timeout);
    else if (WIFSIGNALED(status))
        snprintf(wr->message, sizeof wr->message, "training process %d was killed by signal %d (%s)", (int)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(wr->message, sizeof wr->message, "training process %d exited with code %d before its result",
                 (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ND_WARN("worker rank %d: job %lld: %s", dist_rank(), (long long)id, wr->message);
    return ND_OK;
}

int dist_search_worker_main(const dist_search_config *cfg, const srch_child_trainer *trainer,
                            const char *load_error) {
    if (dist_size() < 2 || dist_rank() == 0) return nd_fail(ND_ERR_INVALID, "search workers run on ranks 1..K-1");
    int rc = trainer ? send_hello(1, cfg->child_desc ? cfg->child_desc : "")
                     : send_hello(0, load_error ? load_error : "no child trainer");
    if (rc) return rc;
    ND_INFO("worker rank %d: process %d on %s, ready", dist_rank(), (int)getpid(), host_name());
    for (;;) {
        MPI_Status st;
        int flag = 0;
        if (MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Iprobe failed");
        if (!flag) {
            nap(2000);
            continue;
        }
        char *msg = NULL;
        int len = 0;
        if ((rc = recv_bytes(&st, &msg, &len))) return rc;
        if (st.MPI_TAG == TAG_STOP) {
            free(msg);
            return ND_OK;
        }
        if (st.MPI_TAG != TAG_JOB || (size_t)len <= sizeof(wire_job) || !trainer) {
            free(msg);
            continue; /* nothing a worker answers */
        }
        wire_job h;
        memcpy(&h, msg, sizeof h);
        nas_genotype g;
        wire_result wr;
        int stopped = 0;
        if (nas_genotype_parse(msg + sizeof h, &g)) {
            memset(&wr, 0, sizeof wr);
            wr.id = h.id;
            wr.status = STATUS_DONE;
            snprintf(wr.message, sizeof wr.message, "genotype from rank 0: %s", nd_last_error());
        } else if ((rc = run_job(cfg, trainer, h.id, h.seed, &g, &wr, &stopped))) {
            /* No process could be started here: report the job lost so that another rank takes it. */
            memset(&wr, 0, sizeof wr);
            wr.id = h.id;
            wr.status = STATUS_LOST;
            snprintf(wr.message, sizeof wr.message, "rank %d: %s", dist_rank(), nd_last_error());
        }
        free(msg);
        if (stopped) {
            char nothing;
            MPI_Recv(&nothing, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            return ND_OK;
        }
        if (MPI_Send(&wr, (int)sizeof wr, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "sending the result of job %lld to rank 0 failed", (long long)h.id);
    }
}

#endif
