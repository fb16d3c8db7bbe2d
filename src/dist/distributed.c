/* The process group of a data-parallel job: MPI when grove is built with
 * GROVE_MPI (GV_HAVE_MPI), otherwise a single process.
 *
 * grove talks over its own duplicate of MPI_COMM_WORLD, so a program's own
 * MPI traffic never interleaves with the plan's collectives. The threads:
 * one at a time calls MPI (MPI_THREAD_SERIALIZED): the thread that runs a
 * plan, or, while the plan runs, the communication thread it hands its
 * psums to (below); the loader's and the checkpoint writer's threads never
 * do. */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "dist/dist_internal.h"
#include "grove/data.h"
#include "grove/distributed.h"

#ifdef GV_HAVE_MPI
#include <mpi.h>
#endif

static struct {
    bool init;      /* gv_distributed_init succeeded */
    bool owns_mpi;  /* grove called MPI_Init, so it calls MPI_Finalize */
    bool has_comm;  /* comm is grove's duplicate of MPI_COMM_WORLD */
    int local_size; /* the processes on this host */
    int rank, size;
#ifdef GV_HAVE_MPI
    MPI_Comm comm;
#endif
    gv_distributed_stats stats; /* under A.mu while the comm thread runs */
} D = {.size = 1};

/* The communication thread: all-reduces queued by running plans, done in
 * queue order (the same on every process, as MPI needs). While a plan runs
 * only this thread calls MPI; the plan waits for it before returning, so
 * MPI_THREAD_SERIALIZED holds. */
enum { QCAP = 64 };
static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done_cv;
    pthread_t th;
    bool started, stop;
    struct { void *buf; int64_t count; gv_dtype d; } q[QCAP];
    uint64_t queued, done; /* tickets: job t is q[t % QCAP], finished when done > t */
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

static void stop_comm_thread(void);

gv_distributed_stats gv_distributed_get_stats(void) {
    pthread_mutex_lock(&A.mu);
    gv_distributed_stats s = D.stats;
    pthread_mutex_unlock(&A.mu);
    return s;
}

bool gv_distributed_available(void) {
#ifdef GV_HAVE_MPI
    return true;
#else
    return false;
#endif
}

/* The size an MPI launcher put in the environment, 0 without one. */
static long launcher_size(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && *v && !*end && n > 0) return n;
    }
    return 0;
}

bool gv_distributed_launched(void) {
    return launcher_size() > 0 || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

gv_status gv_distributed_init(int *argc, char ***argv) {
    if (D.init) return GV_OK;
    if (!gv_distributed_launched()) {
        D.init = true, D.rank = 0, D.size = 1;
        return GV_OK;
    }
#ifdef GV_HAVE_MPI
    int already = 0, provided = 0;
    MPI_Initialized(&already);
    if (!already) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            return gv_error(GV_ERR_IO, "gv_distributed_init: MPI_Init_thread failed");
        D.owns_mpi = true;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED)
        return gv_error(GV_ERR_UNSUPPORTED, "gv_distributed_init: MPI gives thread level %d, "
                        "grove needs MPI_THREAD_SERIALIZED (%d)", provided, MPI_THREAD_SERIALIZED);
    MPI_Comm_dup(MPI_COMM_WORLD, &D.comm);
    D.has_comm = true;
    MPI_Comm_rank(D.comm, &D.rank);
    MPI_Comm_size(D.comm, &D.size);
    MPI_Comm local;
    D.local_size = D.size;
    if (MPI_Comm_split_type(D.comm, MPI_COMM_TYPE_SHARED, D.rank, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &D.local_size);
        MPI_Comm_free(&local);
    }
    D.init = true;
    return GV_OK;
#else
    (void)argc, (void)argv;
    long n = launcher_size();
    if (n > 1)
        return gv_error(GV_ERR_UNSUPPORTED, "gv_distributed_init: launched as one of %ld "
                        "processes, but this grove was built without MPI (configure with "
                        "-DGROVE_MPI=ON and Open MPI installed: libopenmpi-dev)", n);
    D.init = true, D.rank = 0, D.size = 1;
    return GV_OK;
#endif
}

int gv_process_index(void) { return D.rank; }
int gv_process_count(void) { return D.size; }

void gv_distributed_shutdown(void) {
    stop_comm_thread();
#ifdef GV_HAVE_MPI
    if (D.has_comm) MPI_Comm_free(&D.comm);
    if (D.owns_mpi) MPI_Finalize();
    D.has_comm = false;
#endif
    D.init = false, D.owns_mpi = false, D.rank = 0, D.size = 1;
}

_Noreturn void gv_distributed_abort(int code) {
    fflush(stdout), fflush(stderr);
#ifdef GV_HAVE_MPI
    if (D.has_comm && D.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

gv_status gv_distributed_barrier(void) {
#ifdef GV_HAVE_MPI
    if (D.init && D.size > 1 && MPI_Barrier(D.comm) != MPI_SUCCESS)
        return gv_error(GV_ERR_IO, "gv_distributed_barrier: MPI_Barrier failed");
#endif
    return GV_OK;
}

/* FNV-1a, 64 bits: equal bytes give equal hashes on every process. */
static uint64_t fnv1a(const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ^ n;
}

gv_status gv_distributed_check_same(const void *bytes, size_t n, const char *what) {
    if (!bytes && n) return gv_error(GV_ERR_ARG, "gv_distributed_check_same: bytes is NULL");
    if (D.size == 1) return GV_OK;
#ifdef GV_HAVE_MPI
    uint64_t mine = fnv1a(bytes, n), root = mine;
    MPI_Bcast(&root, 1, MPI_UINT64_T, 0, D.comm);
    int differs = mine != root ? D.rank : INT_MAX, first = INT_MAX;
    MPI_Allreduce(&differs, &first, 1, MPI_INT, MPI_MIN, D.comm);
    if (first != INT_MAX)
        return gv_error(GV_ERR_ARG, "%s differs between processes: rank %d does not have "
                        "rank 0's", what ? what : "a setting", first);
#else
    (void)fnv1a;
#endif
    return GV_OK;
}

bool gv_distributed_any(bool flag) {
#ifdef GV_HAVE_MPI
    if (D.has_comm && D.size > 1) {
        int mine = flag, any = 0;
        MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_LOR, D.comm);
        return any != 0;
    }
#endif
    return flag;
}

/* The host-side reductions: values[0..n) in place, not counted in the
 * plans' statistics. */
#ifdef GV_HAVE_MPI
static gv_status host_reduce(const char *fn, void *values, size_t n, MPI_Datatype t, MPI_Op op) {
    if (!values && n) return gv_error(GV_ERR_ARG, "%s: values is NULL", fn);
    if (!D.has_comm || D.size == 1 || !n) return GV_OK;
    if (n > INT_MAX) return gv_error(GV_ERR_OVERFLOW, "%s: %zu values", fn, n);
    MPI_Allreduce(MPI_IN_PLACE, values, (int)n, t, op, D.comm);
    return GV_OK;
}
#endif

gv_status gv_distributed_sum(double *values, size_t n) {
#ifdef GV_HAVE_MPI
    return host_reduce("gv_distributed_sum", values, n, MPI_DOUBLE, MPI_SUM);
#else
    return !values && n ? gv_error(GV_ERR_ARG, "gv_distributed_sum: values is NULL") : GV_OK;
#endif
}

gv_status gv_distributed_min(int64_t *values, size_t n) {
#ifdef GV_HAVE_MPI
    return host_reduce("gv_distributed_min", values, n, MPI_INT64_T, MPI_MIN);
#else
    return !values && n ? gv_error(GV_ERR_ARG, "gv_distributed_min: values is NULL") : GV_OK;
#endif
}

gv_shard gv_shard_by_process(void) { return (gv_shard){D.rank, D.size}; }

/* ---- the collectives a plan runs ---- */

#ifdef GV_HAVE_MPI
static MPI_Datatype mpi_type(gv_dtype d) {
    switch (d) {
    case GV_F32: return MPI_FLOAT;
    case GV_F64: return MPI_DOUBLE;
    case GV_I32: return MPI_INT32_T;
    case GV_I64: return MPI_INT64_T;
    case GV_U8: return MPI_UINT8_T;
    case GV_U16: return MPI_UINT16_T;
    case GV_U32: return MPI_UINT32_T;
    case GV_U64: return MPI_UINT64_T;
    default: return MPI_DATATYPE_NULL;
    }
}
#endif

bool gv_dist_sum_supports(gv_dtype d) {
    switch (d) {
    case GV_F32: case GV_F64: case GV_I32: case GV_I64:
    case GV_U8: case GV_U16: case GV_U32: case GV_U64:
        return true;
    default: return false;
    }
}

static void allreduce(void *buf, int64_t count, gv_dtype d);

void gv_dist_allreduce_sum(void *buf, int64_t count, gv_dtype d) {
    allreduce(buf, count, d);
}

static void *comm_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&A.mu);
    for (;;) {
        while (A.done == A.queued && !A.stop) pthread_cond_wait(&A.work, &A.mu);
        if (A.done == A.queued) break; /* stop, and nothing left */
        uint64_t t = A.done;
        void *buf = A.q[t % QCAP].buf;
        int64_t count = A.q[t % QCAP].count;
        gv_dtype d = A.q[t % QCAP].d;
        pthread_mutex_unlock(&A.mu);
        allreduce(buf, count, d);
        pthread_mutex_lock(&A.mu);
        A.done = t + 1;
        pthread_cond_broadcast(&A.done_cv);
    }
    pthread_mutex_unlock(&A.mu);
    return NULL;
}

static void stop_comm_thread(void) {
    pthread_mutex_lock(&A.mu);
    bool started = A.started;
    A.stop = true;
    pthread_cond_signal(&A.work);
    pthread_mutex_unlock(&A.mu);
    if (started) pthread_join(A.th, NULL);
    A.started = false, A.stop = false;
}

uint64_t gv_dist_async_sum(void *buf, int64_t count, gv_dtype d) {
    pthread_mutex_lock(&A.mu);
    if (!A.started) {
        /* no thread (none could be made): the sum is done here and now */
        if (pthread_create(&A.th, NULL, comm_main, NULL) != 0) {
            uint64_t t = A.queued;
            pthread_mutex_unlock(&A.mu);
            allreduce(buf, count, d);
            pthread_mutex_lock(&A.mu);
            A.queued = A.done = t + 1;
            pthread_mutex_unlock(&A.mu);
            return t;
        }
        A.started = true;
    }
    while (A.queued - A.done >= QCAP) pthread_cond_wait(&A.done_cv, &A.mu);
    uint64_t t = A.queued++;
    A.q[t % QCAP].buf = buf, A.q[t % QCAP].count = count, A.q[t % QCAP].d = d;
    pthread_cond_signal(&A.work);
    pthread_mutex_unlock(&A.mu);
    return t;
}

void gv_dist_async_wait(uint64_t ticket) {
    pthread_mutex_lock(&A.mu);
    while (A.done <= ticket) pthread_cond_wait(&A.done_cv, &A.mu);
    pthread_mutex_unlock(&A.mu);
}

/* Overlap pays where the transfer is a network card's work: across hosts.
 * Within one host the all-reduce is memory copies done by the same cores
 * that compute, so a communication thread only takes turns with them
 * (docs/distributed.md has the measurement). GROVE_OVERLAP_COLLECTIVES=1
 * or 0 decides instead. */
bool gv_dist_async_enabled(void) {
    if (!D.has_comm || D.size == 1) return false;
    const char *v = getenv("GROVE_OVERLAP_COLLECTIVES");
    if (v && !strcmp(v, "1")) return true;
    if (v && !strcmp(v, "0")) return false;
    return D.local_size < D.size;
}

static void allreduce(void *buf, int64_t count, gv_dtype d) {
#ifdef GV_HAVE_MPI
    if (!D.has_comm || D.size == 1 || count <= 0) return;
    MPI_Datatype t = mpi_type(d);
    size_t esize = gv_dtype_size(d);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* MPI counts are int: a larger buffer goes in pieces */
    for (int64_t done = 0; done < count;) {
        int64_t part = count - done < INT_MAX / 2 ? count - done : INT_MAX / 2;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * esize, (int)part, t, MPI_SUM,
                      D.comm);
        done += part;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_lock(&A.mu);
    D.stats.calls++;
    D.stats.bytes += count * (int64_t)esize;
    D.stats.seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    pthread_mutex_unlock(&A.mu);
#else
    (void)buf, (void)count, (void)d;
#endif
}
