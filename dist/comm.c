/* The communicator: MPI_COMM_WORLD behind a few calls, and their "built without MPI" twins, so
 * that callers never need #ifdef (it appears only inside dist/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "dist/dist_internal.h"

#ifdef NASDET_USE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_inited = 0, g_abandon = 0;
static int g_local_rank = -1; /* dist_local_rank, once known */

void dist__abandon_at_finalize(int lost) { g_abandon = lost; }

int dist_built_with_mpi(void) {
#ifdef NASDET_USE_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }

int dist__unsupported(const char *what) {
    return nd_fail(ND_ERR_UNSUPPORTED, "%s: built without MPI (make MPI=1)", what);
}

#ifndef NASDET_USE_MPI
/* Process count announced by a launcher (Open MPI, MPICH/Hydra, Slurm), or 1. */
static int launcher_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return atoi(v);
    }
    return 1;
}
#endif

int dist_init(void) {
    if (g_inited) return ND_OK;
#ifdef NASDET_USE_MPI
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Init_thread failed");
    }
    /* Errors come back as codes (turned into ND_ERR_COMM) instead of aborting in the library. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_inited = already ? 2 : 1; /* 2: someone else initialised MPI and will finalize it */
    return ND_OK;
#else
    int n = launcher_size();
    if (n > 1)
        return nd_fail(ND_ERR_UNSUPPORTED,
                       "started as one of %d MPI processes, but this nasdet was built without MPI (make MPI=1): "
                       "the processes would all write the same run folder",
                       n);
    g_inited = 1;
    return ND_OK;
#endif
}

void dist_finalize(void) {
#ifdef NASDET_USE_MPI
    if (g_inited && g_abandon > 0 && g_rank == 0) {
        /* MPI_Finalize would wait for ranks that stopped answering, maybe forever. Everything is
         * written by now, so end the job instead. */
        ND_WARN("%d worker rank(s) never answered again; ending the MPI job with MPI_Abort (the run folder is "
                "complete)", g_abandon);
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 0);
    }
    if (g_inited == 1) {
        int done = 0;
        MPI_Finalized(&done);
        if (!done) MPI_Finalize();
    }
#endif
    g_inited = 0;
    g_rank = 0;
    g_size = 1;
    g_local_rank = -1;
}

int dist_barrier(void) {
#ifdef NASDET_USE_MPI
    if (g_size > 1 && MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS) return nd_fail(ND_ERR_COMM, "MPI_Barrier failed");
#endif
    return ND_OK;
}

int dist_allreduce_sum(double *buf, int64_t n) {
    if (n < 0) return nd_fail(ND_ERR_INVALID, "dist_allreduce_sum: negative count");
#ifdef NASDET_USE_MPI
    if (g_size <= 1) return ND_OK;
    for (int64_t off = 0; off < n;) {
        int chunk = n - off > (1 << 30) ? (1 << 30) : (int)(n - off);
        if (MPI_Allreduce(MPI_IN_PLACE, buf + off, chunk, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Allreduce of %d doubles failed", chunk);
        off += chunk;
    }
    return ND_OK;
#else
    (void)buf;
    return ND_OK; /* one rank: the sum over ranks is the buffer itself */
#endif
}

int dist_bcast_params(nn_params *ps, int root) {
    int64_t count = nn_params_count(ps);
#ifdef NASDET_USE_MPI
    if (g_size <= 1) return ND_OK;
    if (root < 0 || root >= g_size) return nd_fail(ND_ERR_INVALID, "broadcast root %d outside 0..%d", root, g_size - 1);
    /* The sizes first, so that two different networks fail with a message, not a hang. */
    int64_t *sizes = malloc(sizeof(int64_t) * (size_t)(count + 1));
    if (!sizes) return nd_fail(ND_ERR_NOMEM, "out of memory");
    sizes[0] = count;
    for (int64_t i = 0; i < count; i++) sizes[i + 1] = nn_params_at(ps, i)->numel;
    int64_t *theirs = malloc(sizeof(int64_t) * (size_t)(count + 1));
    if (!theirs) {
        free(sizes);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    memcpy(theirs, sizes, sizeof(int64_t) * (size_t)(count + 1));
    int rc = MPI_Bcast(theirs, (int)(count + 1), MPI_INT64_T, root, MPI_COMM_WORLD) == MPI_SUCCESS
                 ? ND_OK
                 : nd_fail(ND_ERR_COMM, "MPI_Bcast of the parameter sizes failed");
    int bad = 0;
    if (!rc) {
        for (int64_t i = 0; i <= count && !bad; i++)
            if (theirs[i] != sizes[i]) bad = (int)i + 1;
    }
    /* Everyone learns whether anyone differs, so that all ranks fail together. */
    int any_bad = 0;
    if (!rc && MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = nd_fail(ND_ERR_COMM, "MPI_Allreduce failed");
    if (!rc && any_bad) {
        if (bad == 1) rc = nd_fail(ND_ERR_INVALID, "rank %d has %lld parameter tensors, rank %d has %lld", g_rank,
                                   (long long)count, root, (long long)theirs[0]);
        else if (bad) rc = nd_fail(ND_ERR_INVALID, "parameter %s: %lld elements on rank %d, %lld on rank %d",
                                   nn_params_at(ps, bad - 2)->name, (long long)sizes[bad - 1], g_rank,
                                   (long long)theirs[bad - 1], root);
        else rc = nd_fail(ND_ERR_INVALID, "the ranks' networks differ (see the other ranks' messages)");
    }
    free(sizes);
    free(theirs);
    /* A device store goes through a host buffer: download on the root, upload elsewhere (MPI needs
     * no GPU support). */
    int device = strcmp(nn_params_device(ps), "cpu") != 0;
    nn_ctx *ctx = NULL;
    float *stage = NULL;
    if (!rc && device) {
        int64_t most = 0;
        for (int64_t i = 0; i < count; i++)
            if (nn_params_at(ps, i)->numel > most) most = nn_params_at(ps, i)->numel;
        ctx = nn_ctx_new_like(ps);
        if (!(stage = malloc(sizeof(float) * (size_t)(most ? most : 1))))
            rc = nd_fail(ND_ERR_NOMEM, "out of memory for a %lld-float broadcast buffer", (long long)most);
    }
    for (int64_t i = 0; !rc && i < count; i++) {
        nn_tensor *t = nn_params_at(ps, i);
        float *p = device ? stage : t->data;
        if (device && g_rank == root) {
            memcpy(stage, nn_tensor_host(ctx, t), sizeof(float) * (size_t)t->numel);
            nn_ctx_reset(ctx);
        }
        for (int64_t off = 0; !rc && off < t->numel;) {
            int chunk = t->numel - off > (1 << 30) ? (1 << 30) : (int)(t->numel - off);
            if (MPI_Bcast(p + off, chunk, MPI_FLOAT, root, MPI_COMM_WORLD) != MPI_SUCCESS)
                rc = nd_fail(ND_ERR_COMM, "MPI_Bcast of %s failed", t->name);
            off += chunk;
        }
        if (!rc && device && g_rank != root) nn_tensor_set(ctx, t, stage);
    }
    free(stage);
    nn_ctx_free(ctx);
    return rc;
#else
    (void)count;
    (void)root;
    return ND_OK; /* one rank holds the only copy */
#endif
}

/* ---- devices: one GPU per rank ------------------------------------------------------------------ */

int dist_local_rank(void) {
#ifdef NASDET_USE_MPI
    if (g_size <= 1) return 0;
    if (g_local_rank >= 0) return g_local_rank;
    MPI_Comm node;
    int r = -1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        if (MPI_Comm_rank(node, &r) != MPI_SUCCESS) r = -1;
        MPI_Comm_free(&node);
    }
    if (r < 0) {
        const char *v = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
        r = v ? atoi(v) : 0;
    }
    g_local_rank = r < 0 ? 0 : r;
    return g_local_rank;
#else
    return 0;
#endif
}

const char *dist_pick_device(const char *requested, char *out, size_t size) {
    snprintf(out, size, "%s", requested);
    if (strcmp(requested, "cuda") != 0 || g_size <= 1) return out;
    int local = dist_local_rank(); /* collective: before anything that may differ between ranks */
    int gpus = nn_cuda_device_count();
    if (gpus > 0) snprintf(out, size, "cuda:%d", local % gpus);
    return out;
}

int dist_describe_devices(const char *device, char *out, size_t size) {
    if (size == 0) return ND_OK;
    out[0] = '\0';
#ifdef NASDET_USE_MPI
    if (g_size > 1) {
        enum { WIDTH = 96 };
        char mine[WIDTH] = "", host[MPI_MAX_PROCESSOR_NAME] = "";
        int len = 0;
        MPI_Get_processor_name(host, &len);
        snprintf(mine, sizeof mine, "%s@%s", device, host);
        char *all = g_rank == 0 ? malloc((size_t)g_size * WIDTH) : NULL;
        /* Returning would leave the other ranks waiting in the gather: stop here, as nn does. */
        ND_ASSERT(g_rank != 0 || all, "out of memory for the ranks' device names");
        if (MPI_Gather(mine, WIDTH, MPI_CHAR, all, WIDTH, MPI_CHAR, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
            free(all);
            return nd_fail(ND_ERR_COMM, "MPI_Gather of the ranks' devices failed");
        }
        size_t used = 0;
        for (int i = 0; all && i < g_size; i++) {
            const char *row = all + (size_t)i * WIDTH;
            int w = snprintf(out + used, size - used, "%s%.*s", i ? ", " : "", WIDTH, row);
            if (w < 0 || (size_t)w >= size - used) {
                if (size >= 4) strcpy(out + size - 4, "...");
                break;
            }
            used += (size_t)w;
        }
        free(all);
        return ND_OK;
    }
#endif
    snprintf(out, size, "%s", device);
    return ND_OK;
}

/* ---- synchronised batch norm ----------------------------------------------------------------- */

#ifdef NASDET_USE_MPI
static void bn_sum(double *buf, int64_t n, void *user) {
    (void)user;
    /* Inside a kernel there is no status to return; a failed collective leaves the ranks out of
     * step for good, so stop the whole job with a message. */
    if (dist_allreduce_sum(buf, n)) {
        ND_ERROR("synchronised batch norm: %s", nd_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}
#endif

int dist_sync_bn(int on) {
#ifdef NASDET_USE_MPI
    nn_set_batch_norm_sync(on && g_size > 1 ? bn_sum : NULL, NULL);
    return ND_OK;
#else
    if (on) return dist__unsupported("synchronised batch norm");
    nn_set_batch_norm_sync(NULL, NULL);
    return ND_OK;
#endif
}
