/* ptx_launch: runs a grid by spreading its blocks over worker threads.
 *
 * The caller's thread is always one of the workers; the others come from a process-wide pool of
 * helper threads, created lazily (as many as the largest launch asked for, at most
 * PTX_MAX_WORKERS) and kept, because creating threads per launch costs more than a small kernel
 * runs. Several launches may run at once: each posts its run in the pool's queue and helpers
 * join whichever run still wants help. Blocks are handed out with an atomic counter; the first
 * failure stops every worker at its next block and is the one reported. The caller drains the
 * grid itself if no helper comes, so a launch never depends on the pool for progress. */
#include "ptx_exec.h"
#include "ptx_jit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Emulator limits, in line with what the emulated device reports. */
#define PTX_MAX_SHARED_BYTES (227u * 1024u)
#define PTX_MAX_LOCAL_BLOCK_BYTES (256ull << 20)
#define PTX_MAX_REGFILE_BLOCK_BYTES (64ull << 20)
#define PTX_MAX_WORKERS 256
#define PTX_HELPER_STACK (1u << 20)

typedef struct grid_run {
    const ptx_launch *l;
    const ptx_jit_kernel *jit;    /* compiled code, or NULL: interpret */
    int tiered;                   /* compile once the kernel has run enough (ptx_jit_kernel_work) */
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
} worker;

/* The helper pool. pool_lock guards everything below; runs wanting helpers are queued in
 * pool_queue. A helper takes a run, works on it, and signals pool_done when it leaves it. */
typedef struct pool_run {
    grid_run *run;
    unsigned wanted;              /* helpers still wanted */
    unsigned active;              /* helpers working on it now */
    unsigned next_id;             /* %smid for the next helper */
    struct pool_run *next;
} pool_run;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static pool_run *pool_queue;
static pthread_t pool_threads[PTX_MAX_WORKERS];
static unsigned pool_nthreads;
static int pool_shutdown;

static void *worker_main(void *arg);

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        while (!pool_queue && !pool_shutdown)
            pthread_cond_wait(&pool_work, &pool_lock);
        if (pool_shutdown)
            break;
        pool_run *pr = pool_queue;
        if (--pr->wanted == 0)
            pool_queue = pr->next;
        pr->active++;
        worker wk = {pr->run, (int)pr->next_id++};
        pthread_mutex_unlock(&pool_lock);
        worker_main(&wk);
        pthread_mutex_lock(&pool_lock);
        if (--pr->active == 0)
            pthread_cond_broadcast(&pool_done);
    }
    pthread_mutex_unlock(&pool_lock);
    return NULL;
}

/* fork() copies only the forking thread: the child starts with an empty pool. */
static void pool_atfork_prepare(void)
{
    pthread_mutex_lock(&pool_lock);
}

static void pool_atfork_parent(void)
{
    pthread_mutex_unlock(&pool_lock);
}

static void pool_atfork_child(void)
{
    pool_nthreads = 0;
    pool_queue = NULL;
    pthread_mutex_unlock(&pool_lock);
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_register_atfork(void)
{
    pthread_atfork(pool_atfork_prepare, pool_atfork_parent, pool_atfork_child);
}

/* Grows the pool to n helpers (under pool_lock). Failing to create one is not an error: the
 * launching thread can run every block itself. */
static void pool_grow(unsigned n)
{
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr)
        pthread_attr_setstacksize(&attr, PTX_HELPER_STACK);
    while (pool_nthreads < n && pool_nthreads < PTX_MAX_WORKERS) {
        if (pthread_create(&pool_threads[pool_nthreads], have_attr ? &attr : NULL, helper_main, NULL) != 0)
            break;
        pool_nthreads++;
    }
    if (have_attr)
        pthread_attr_destroy(&attr);
}

/* Stops the helpers when the library is unloaded (dlclose of the emulated driver) or the process
 * exits, so no thread is left running code that is about to be unmapped. */
__attribute__((destructor)) static void pool_stop(void)
{
    pthread_mutex_lock(&pool_lock);
    pool_shutdown = 1;
    pthread_cond_broadcast(&pool_work);
    unsigned n = pool_nthreads;
    pool_nthreads = 0;
    pthread_mutex_unlock(&pool_lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(pool_threads[i], NULL);
}

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

/* Sets b up for the launch's blocks: the storage of one block (registers, shared and local
 * memory), which every block run in it reuses. Returns 0, or -1 (out of memory: release it). */
static int block_setup(ptx_block *b, grid_run *r, int worker_id)
{
    const ptx_launch *l = r->l;
    const ptx_kernel *k = l->kernel;
    memset(b, 0, sizeof(*b));
    b->kernel = k;
    b->module = k->module;
    b->memory = l->memory;
    b->params = l->params;
    b->param_bytes = ptx_kernel_param_bytes(k);
    memcpy(b->grid, l->grid, sizeof(b->grid));
    memcpy(b->block, l->block, sizeof(b->block));
    b->nthreads = l->block[0] * l->block[1] * l->block[2];
    b->nwarps = (b->nthreads + 31) / 32;
    b->dyn_shared_base = (k->static_shared + k->dyn_shared_align - 1) / k->dyn_shared_align *
                         k->dyn_shared_align;
    b->shared_bytes = b->dyn_shared_base + l->dynamic_shared;
    b->worker_id = worker_id;
    b->max_lane_instructions = l->max_lane_instructions;
    b->jit = r->jit;
    b->envreg = l->envreg;
    b->warps = calloc(b->nwarps, sizeof(ptx_warp));
    /* Register rows are read and written as whole vectors: cache-line aligned. */
    size_t regbytes = (size_t)b->nwarps * k->xbytes;
    b->regs = aligned_alloc(64, regbytes);
    if (b->regs) {
        memset(b->regs, 0, regbytes);
        for (unsigned wi = 0; wi < b->nwarps; wi++)
            ptx_exec_init_regs(k, b->regs + (size_t)wi * k->xbytes);
    }
    b->shared = calloc(b->shared_bytes ? b->shared_bytes : 1, 1);
    b->local = calloc((size_t)b->nthreads * (k->local_bytes ? k->local_bytes : 1), 1);
    if (!b->warps || !b->regs || !b->shared || !b->local) {
        record_error(r, PTX_ERR_NOMEM, "out of memory for a block's registers, shared or local memory");
        return -1;
    }
    return 0;
}

static void block_release(ptx_block *b)
{
    free(b->warps);
    free(b->regs);
    free(b->shared);
    free(b->local);
}

static void block_place(ptx_block *b, const ptx_launch *l, uint64_t bi)
{
    uint64_t gx = l->grid[0], gy = l->grid[1];
    b->ctaid[0] = (unsigned)(bi % gx);
    b->ctaid[1] = (unsigned)((bi / gx) % gy);
    b->ctaid[2] = (unsigned)(bi / (gx * gy));
}

/* A cooperative grid: every block must be able to wait for every other (grid-wide sync), so a
 * worker keeps the blocks it took in progress together, a round of warp turns each in turn,
 * and takes one more block of the grid each round while some are left. Whichever workers the
 * pool gives, every block is taken and every block gets turns, so a grid barrier releases. */
static void cooperative_worker(grid_run *r, int worker_id)
{
    const ptx_launch *l = r->l;
    ptx_block *blocks = NULL;
    size_t nblocks = 0, cap = 0, live = 0;
    for (;;) {
        if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE))
            break;
        if (__atomic_load_n(&r->next_block, __ATOMIC_RELAXED) < r->nblocks) {
            uint64_t bi = __atomic_fetch_add(&r->next_block, 1, __ATOMIC_RELAXED);
            if (bi < r->nblocks) {
                if (nblocks == cap) {
                    size_t ncap = cap ? cap * 2 : 4;
                    ptx_block *nb = realloc(blocks, ncap * sizeof(*nb));
                    if (!nb) {
                        record_error(r, PTX_ERR_NOMEM, "out of memory for a cooperative grid's blocks");
                        break;
                    }
                    blocks = nb;
                    cap = ncap;
                }
                ptx_block *b = &blocks[nblocks++];
                if (block_setup(b, r, worker_id) != 0)
                    break;
                block_place(b, l, bi);
                ptx_exec_block_begin(b);
                live++;
            }
        }
        if (live == 0 && __atomic_load_n(&r->next_block, __ATOMIC_RELAXED) >= r->nblocks)
            break;
        for (size_t i = 0; i < nblocks; i++) {
            ptx_block *b = &blocks[i];
            if (b->finished)
                continue;
            int rc = ptx_exec_block_round(b);
            if (rc < 0) {
                record_error(r, rc, b->msg);
                goto out;
            }
            if (rc == 1) {
                b->finished = 1;
                live--;
            }
        }
    }
out:
    for (size_t i = 0; i < nblocks; i++) {
        __atomic_fetch_add(&r->lane_instructions, blocks[i].lane_instructions, __ATOMIC_RELAXED);
        block_release(&blocks[i]);
    }
    free(blocks);
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    grid_run *r = wk->run;
    const ptx_launch *l = r->l;
    const ptx_kernel *k = l->kernel;
    if (l->cooperative) {
        cooperative_worker(r, wk->id);
        return NULL;
    }
    ptx_block b;
    if (block_setup(&b, r, wk->id) != 0)
        goto done;
    for (;;) {
        if (__atomic_load_n(&r->failed, __ATOMIC_ACQUIRE))
            break;
        uint64_t bi = __atomic_fetch_add(&r->next_block, 1, __ATOMIC_RELAXED);
        if (bi >= r->nblocks)
            break;
        block_place(&b, l, bi);
        uint64_t before = b.lane_instructions;
        int rc = ptx_exec_block(&b);
        if (rc != PTX_OK) {
            record_error(r, rc, b.msg);
            break;
        }
        /* JIT and interpreter share every piece of state: the next block may switch. */
        if (r->tiered && !b.jit)
            b.jit = ptx_jit_kernel_work(k, b.lane_instructions - before);
    }
    __atomic_fetch_add(&r->lane_instructions, b.lane_instructions, __ATOMIC_RELAXED);
done:
    block_release(&b);
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

int ptx_engine_available(int engine)
{
    return engine == PTX_ENGINE_INTERP || engine == PTX_ENGINE_DEFAULT ||
           (engine == PTX_ENGINE_JIT && ptx_jit_built());
}

int ptx_kernel_jit_prepare(const ptx_kernel *k, double *compile_ms, int *from_disk)
{
    if (compile_ms)
        *compile_ms = 0;
    if (from_disk)
        *from_disk = 0;
    const ptx_jit_kernel *jk = k ? ptx_jit_kernel_get(k) : NULL;
    if (!jk)
        return PTX_ERR_UNSUPPORTED;
    if (compile_ms)
        *compile_ms = jk->compile_ms;
    if (from_disk)
        *from_disk = jk->from_disk;
    return PTX_OK;
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
    if (k->unsupported)
        return launch_error(err, errlen, PTX_ERR_UNSUPPORTED, "kernel %s cannot run on the emulated GPU: %s",
                            name, k->unsupported);
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
    /* PTX registers are virtual and unbounded; the register file of a block is not. */
    uint64_t regfile = (nthreads + 31) / 32 * (uint64_t)k->xbytes;
    if (regfile > PTX_MAX_REGFILE_BLOCK_BYTES)
        return launch_error(err, errlen, PTX_ERR_LAUNCH,
                            "kernel %s: %d registers per thread are too many for %llu threads",
                            name, k->nregs_total, (unsigned long long)nthreads);
    if (ptx_kernel_param_bytes(k) > 0 && !l->params)
        return launch_error(err, errlen, PTX_ERR_LAUNCH, "kernel %s: missing parameters", name);

    grid_run run;
    memset(&run, 0, sizeof(run));
    run.l = l;
    /* Compiled code, when it is to be used and there is some: NULL means interpret. */
    int mode = l->engine == PTX_ENGINE_JIT ? PTX_JIT_ALWAYS : l->engine == PTX_ENGINE_INTERP ? PTX_JIT_OFF
             : ptx_jit_mode();
    if (mode == PTX_JIT_ALWAYS)
        run.jit = ptx_jit_kernel_get(k);
    else if (mode == PTX_JIT_TIERED && !(run.jit = ptx_jit_kernel_ready(k)))
        run.tiered = 1;
    run.nblocks = (uint64_t)l->grid[0] * l->grid[1] * l->grid[2];
    run.status = PTX_OK;
    if (pthread_mutex_init(&run.err_lock, NULL) != 0)
        return launch_error(err, errlen, PTX_ERR_NOMEM, "cannot create a mutex");
    unsigned nworkers = l->workers;
    if (nworkers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = n > 0 ? (unsigned)n : 1;
    }
    if (nworkers > PTX_MAX_WORKERS)
        nworkers = PTX_MAX_WORKERS;
    if (nworkers > run.nblocks)
        nworkers = (unsigned)run.nblocks;
    pool_run pr = {&run, nworkers - 1, 0, 1, NULL};
    int posted = 0;
    if (pr.wanted > 0) {
        pthread_once(&pool_once, pool_register_atfork);
        pthread_mutex_lock(&pool_lock);
        if (!pool_shutdown) {
            pool_grow(nworkers - 1);
            pool_run **tail = &pool_queue;
            while (*tail)
                tail = &(*tail)->next;
            *tail = &pr;
            posted = 1;
            pthread_cond_broadcast(&pool_work);
        }
        pthread_mutex_unlock(&pool_lock);
    }
    worker self = {&run, 0};
    worker_main(&self);
    if (posted) { /* pr.wanted may have dropped to 0 meanwhile: helpers took it all */
        /* Every block is handed out: take the run off the queue and wait for the helpers that
         * joined it to leave, after which nothing refers to this stack frame. */
        pthread_mutex_lock(&pool_lock);
        for (pool_run **q = &pool_queue; *q; q = &(*q)->next) {
            if (*q == &pr) {
                *q = pr.next;
                break;
            }
        }
        pr.wanted = 0;
        while (pr.active > 0)
            pthread_cond_wait(&pool_done, &pool_lock);
        pthread_mutex_unlock(&pool_lock);
    }
    pthread_mutex_destroy(&run.err_lock);
    l->lane_instructions = run.lane_instructions;
    if (run.status != PTX_OK)
        return launch_error(err, errlen, run.status, "%s", run.msg);
    return PTX_OK;
}
