/* ptx_launch: runs a grid by spreading its blocks over worker threads.
 *
 * Threads are created per launch (the caller's thread is one of the workers), so concurrent
 * launches from several threads share nothing but the read-only module: there is no global
 * state and no lock outside a launch. Blocks are handed out with an atomic counter; the first
 * failure stops every worker at its next block and is the one reported. */
#include "ptx_exec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Emulator limits, in line with what the emulated device reports. */
#define PTX_MAX_SHARED_BYTES (227u * 1024u)
#define PTX_MAX_LOCAL_BLOCK_BYTES (256ull << 20)

typedef struct grid_run {
    const ptx_launch *l;
    uint64_t nblocks;
    uint64_t next_block;          /* atomic */
    int failed;                   /* atomic */
    pthread_mutex_t err_lock;     /* guards status/msg */
    int status;
    char msg[256];
    uint64_t lane_instructions;   /* atomic */
} grid_run;

typedef struct worker {
    grid_run *run;
    int id;
    pthread_t thread;
    int started;
} worker;

static void record_error(grid_run *r, int status, const char *msg)
{
    pthread_mutex_lock(&r->err_lock);
    if (r->status == PTX_OK) {
        r->status = status;
        snprintf(r->msg, sizeof(r->msg), "%s", msg);
    }
    pthread_mutex_unlock(&r->err_lock);
    __atomic_store_n(&r->failed, 1, __ATOMIC_RELEASE);
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    grid_run *r = wk->run;
    const ptx_launch *l = r->l;
    const ptx_kernel *k = l->kernel;
    ptx_block b;
    memset(&b, 0, sizeof(b));
    b.kernel = k;
    b.module = k->module;
    b.memory = l->memory;
    b.params = l->params;
    b.param_bytes = ptx_kernel_param_bytes(k);
    memcpy(b.grid, l->grid, sizeof(b.grid));
    memcpy(b.block, l->block, sizeof(b.block));
    b.nthreads = l->block[0] * l->block[1] * l->block[2];
    b.nwarps = (b.nthreads + 31) / 32;
    b.dyn_shared_base = (k->static_shared + k->dyn_shared_align - 1) / k->dyn_shared_align *
                        k->dyn_shared_align;
    b.shared_bytes = b.dyn_shared_base + l->dynamic_shared;
    b.worker_id = wk->id;
    size_t nregs = (size_t)(k->nregs_total ? k->nregs_total : 1);
    b.warps = calloc(b.nwarps, sizeof(ptx_warp));
    b.regs = calloc((size_t)b.nwarps * nregs * 32, sizeof(uint64_t));
    b.shared = calloc(b.shared_bytes ? b.shared_bytes : 1, 1);
    b.local = calloc((size_t)b.nthreads * (k->local_bytes ? k->local_bytes : 1), 1);
    if (!b.warps || !b.regs || !b.shared || !b.local) {
        record_error(r, PTX_ERR_NOMEM, "out of memory for a block's registers, shared or local memory");
        goto done;
    }
    uint64_t gx = l->grid[0], gy = l->grid[1];
    for (;;) {
        if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE))
            break;
        uint64_t bi = __atomic_fetch_add(&r->next_block, 1, __ATOMIC_RELAXED);
        if (bi >= r->nblocks)
            break;
        b.ctaid[0] = (unsigned)(bi % gx);
        b.ctaid[1] = (unsigned)((bi / gx) % gy);
        b.ctaid[2] = (unsigned)(bi / (gx * gy));
        int rc = ptx_exec_block(&b);
        if (rc != PTX_OK) {
            record_error(r, rc, b.msg);
            break;
        }
    }
    __atomic_fetch_add(&r->lane_instructions, b.lane_instructions, __ATOMIC_RELAXED);
done:
    free(b.warps);
    free(b.regs);
    free(b.shared);
    free(b.local);
    return NULL;
}

static int launch_error(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static int launch_error(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

int ptx_launch_run(ptx_launch *l, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (!l || !l->kernel || !l->memory || !l->memory->translate)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "incomplete launch description");
    l->lane_instructions = 0;
    const ptx_kernel *k = l->kernel;
    const char *name = ptx_kernel_name(k);
    if (k->recursive)
        return launch_error(err, errlen, PTX_ERR_LAUNCH,
                            "kernel %s: recursive or too deeply nested calls are not supported", name);
    for (int i = 0; i < 3; i++) {
        if (l->grid[i] == 0 || l->block[i] == 0)
            return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: zero grid or block dimension", name);
    }
    if (l->grid[1] > 65535 || l->grid[2] > 65535 || l->grid[0] > 0x7fffffffu)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: grid too large", name);
    if (l->block[0] > 1024 || l->block[1] > 1024 || l->block[2] > 64)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: block dimension too large", name);
    uint64_t nthreads = (uint64_t)l->block[0] * l->block[1] * l->block[2];
    if (nthreads > ptx_kernel_max_threads(k))
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: %llu threads per block, at most %u",
                            name, (unsigned long long)nthreads, ptx_kernel_max_threads(k));
    if (l->dynamic_shared > PTX_MAX_SHARED_BYTES ||
        k->static_shared + l->dynamic_shared + k->dyn_shared_align > PTX_MAX_SHARED_BYTES + 16)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: too much shared memory (%zu static + %zu dynamic)",
                            name, k->static_shared, l->dynamic_shared);
    if ((uint64_t)k->local_bytes * nthreads > PTX_MAX_LOCAL_BLOCK_BYTES)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: too much local memory", name);
    if (ptx_kernel_param_bytes(k) > 0 && !l->params)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: missing parameters", name);

    grid_run run;
    memset(&run, 0, sizeof(run));
    run.l = l;
    run.nblocks = (uint64_t)l->grid[0] * l->grid[1] * l->grid[2];
    run.status = PTX_OK;
    if (pthread_mutex_init(&run.err_lock, NULL) != 0)
        return launch_error(err, errlen, PTX_ERR_NOMEM, "cannot create a mutex");
    unsigned nworkers = l->workers;
    if (nworkers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = n > 0 ? (unsigned)n : 1;
    }
    if (nworkers > 256)
        nworkers = 256;
    if (nworkers > run.nblocks)
        nworkers = (unsigned)run.nblocks;
    worker *workers = calloc(nworkers, sizeof(worker));
    if (!workers) {
        pthread_mutex_destroy(&run.err_lock);
        return launch_error(err, errlen, PTX_ERR_NOMEM, "out of memory");
    }
    /* Workers 1..n-1 on new threads; worker 0 on the caller's. A thread that cannot be created
     * just leaves its share to the others. */
    for (unsigned i = 1; i < nworkers; i++) {
        workers[i].run = &run;
        workers[i].id = (int)i;
        workers[i].started = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0;
    }
    workers[0].run = &run;
    workers[0].id = 0;
    worker_main(&workers[0]);
    for (unsigned i = 1; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    free(workers);
    pthread_mutex_destroy(&run.err_lock);
    l->lane_instructions = run.lane_instructions;
    if (run.status != PTX_OK)
        return launch_error(err, errlen, run.status, "%s", run.msg);
    return PTX_OK;
}
