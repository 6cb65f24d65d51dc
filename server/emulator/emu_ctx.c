/* emu_ctx: contexts (created and primary), the per-thread context stack, each context's work
 * queue and worker thread, streams and events. See emu.h for the execution model. */
#include "emu.h"

#include <cudaProfiler.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define EMU_CTX_STACK 64

/* Per-thread current-context stack; entries may go stale when another thread destroys a
 * context, so every use re-validates through the live-object set. */
static __thread emu_ctx *ctx_stack[EMU_CTX_STACK];
static __thread int ctx_depth;

static _Atomic unsigned long long next_ctx_id = 1;
static _Atomic unsigned long long next_stream_id = 1;

/* Streams and events per context, for teardown. Guarded by objects_lock. */
struct owned {
    struct owned *next;
    void *obj;
    int kind;
    emu_ctx *ctx;
};
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;
static struct owned *objects;
/* Every context with a running worker, for emu_ctx_drain_all. Guarded by objects_lock. */
static emu_ctx **ctx_all;
static size_t ctx_all_len, ctx_all_cap;

static int ctx_list_add(emu_ctx *c)
{
    pthread_mutex_lock(&objects_lock);
    if (ctx_all_len == ctx_all_cap) {
        size_t ncap = ctx_all_cap ? ctx_all_cap * 2 : 16;
        emu_ctx **n = realloc(ctx_all, ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&objects_lock);
            return -1;
        }
        ctx_all = n;
        ctx_all_cap = ncap;
    }
    ctx_all[ctx_all_len++] = c;
    pthread_mutex_unlock(&objects_lock);
    return 0;
}

static void ctx_list_remove(emu_ctx *c)
{
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; i < ctx_all_len; i++) {
        if (ctx_all[i] == c) {
            ctx_all[i] = ctx_all[--ctx_all_len];
            break;
        }
    }
    pthread_mutex_unlock(&objects_lock);
}

static int owned_add(void *obj, int kind, emu_ctx *ctx)
{
    struct owned *o = malloc(sizeof *o);
    if (!o)
        return -1;
    o->obj = obj;
    o->kind = kind;
    o->ctx = ctx;
    pthread_mutex_lock(&objects_lock);
    o->next = objects;
    objects = o;
    pthread_mutex_unlock(&objects_lock);
    return 0;
}

/* Removes obj from the owned list; returns 1 when it was there (so exactly one caller frees). */
static int owned_remove(void *obj)
{
    pthread_mutex_lock(&objects_lock);
    for (struct owned **pp = &objects; *pp; pp = &(*pp)->next) {
        if ((*pp)->obj == obj) {
            struct owned *o = *pp;
            *pp = o->next;
            pthread_mutex_unlock(&objects_lock);
            free(o);
            return 1;
        }
    }
    pthread_mutex_unlock(&objects_lock);
    return 0;
}

static void event_unref(emu_event *e)
{
    if (atomic_fetch_sub(&e->refs, 1) == 1) {
        free(e->cap_deps);
        free(e);
    }
}

void emu_op_free(emu_op *op)
{
    if (!op)
        return;
    if (op->kind == EMU_OP_RECORD)
        event_unref(op->u.record.event);
    else if (op->kind == EMU_OP_COPY3D)
        emu_copy3d_release(&op->u.copy3d);
    free(op);
}

emu_op *emu_op_clone(const emu_op *op)
{
    size_t bytes = op->bytes ? op->bytes : sizeof *op;
    emu_op *n = malloc(bytes);
    if (!n)
        return NULL;
    memcpy(n, op, bytes);
    n->next = NULL;
    if (op->kind == EMU_OP_LAUNCH)
        n->u.launch.launch.params = (char *)n + ((const char *)op->u.launch.launch.params - (const char *)op);
    else if (op->kind == EMU_OP_RECORD)
        atomic_fetch_add(&op->u.record.event->refs, 1);
    else if (op->kind == EMU_OP_COPY3D)
        emu_copy3d_retain(&op->u.copy3d);
    return n;
}

/* ---- the worker ---- */

static void run_op(emu_ctx *c, emu_op *op)
{
    int poisoned = atomic_load(&c->sticky) != CUDA_SUCCESS;
    CUresult r = CUDA_SUCCESS;
    switch (op->kind) {
    case EMU_OP_LAUNCH:
        if (!poisoned)
            r = emu_launch_run(c, op);
        break;
    case EMU_OP_COPY:
        if (!poisoned)
            r = emu_mem_run_copy(op);
        break;
    case EMU_OP_MEMSET:
        if (!poisoned)
            r = emu_mem_run_memset(c, op);
        break;
    case EMU_OP_RECORD:
        break; /* completed under qlock by the worker loop */
    case EMU_OP_WAIT: {
        emu_ctx *o = op->u.wait.ctx;
        if (o != c && emu_obj_is(o, EMU_OBJ_CTX)) {
            pthread_mutex_lock(&o->qlock);
            emu_ctx_wait_seq(o, op->u.wait.seq, 1);
            pthread_mutex_unlock(&o->qlock);
        }
        break;
    }
    case EMU_OP_COPY3D:
        if (!poisoned && emu_copy3d_run(&op->u.copy3d) != CUDA_SUCCESS)
            r = CUDA_ERROR_ILLEGAL_ADDRESS; /* checked when queued: memory freed under it since */
        break;
    case EMU_OP_POOL_FREE:
        emu_pool_free_now(op->u.pool_free.addr);
        break;
    case EMU_OP_HOSTFN:
        if (op->u.hostfn.fn) {
            if (!poisoned)
                op->u.hostfn.fn(op->u.hostfn.user);
        } else if (op->u.hostfn.cb) {
            op->u.hostfn.cb((CUstream)op->stream, (CUresult)atomic_load(&c->sticky),
                            op->u.hostfn.user);
        }
        break;
    }
    if (r != CUDA_SUCCESS)
        emu_ctx_set_sticky(c, r);
}

void emu_ctx_wait_seq(emu_ctx *c, uint64_t seq, int until_stopped)
{
    /* We lower wake_seq before we read `completed`; the worker publishes `completed` before it
     * reads wake_seq (all sequentially consistent). So either it sees our wake_seq and
     * broadcasts under qlock, which we hold until pthread_cond_wait releases it, or we see its
     * progress. A broadcast resets wake_seq and wakes everyone; who still waits lowers it again. */
    for (;;) {
        if (seq < atomic_load(&c->wake_seq))
            atomic_store(&c->wake_seq, seq);
        if (atomic_load(&c->completed) >= seq || (until_stopped && !c->worker_running))
            break;
        pthread_cond_wait(&c->qdone, &c->qlock);
    }
}

/* Publishes that op number seq has run, waking the waiters once one of them is due. */
static void publish_completed(emu_ctx *c, uint64_t seq)
{
    atomic_store(&c->completed, seq);
    if (seq >= atomic_load(&c->wake_seq)) {
        pthread_mutex_lock(&c->qlock);
        atomic_store(&c->wake_seq, UINT64_MAX);
        pthread_cond_broadcast(&c->qdone);
        pthread_mutex_unlock(&c->qlock);
    }
}

/* Takes the whole queue at once and runs it, so that a burst of launches costs the worker one
 * lock round trip, not two per op. */
static void *worker_main(void *arg)
{
    emu_ctx *c = arg;
    pthread_mutex_lock(&c->qlock);
    for (;;) {
        while (!c->head && !c->stop) {
            c->worker_idle = 1;
            pthread_cond_wait(&c->qwork, &c->qlock);
            c->worker_idle = 0;
        }
        if (!c->head)
            break;
        emu_op *batch = c->head;
        c->head = c->tail = NULL;
        pthread_mutex_unlock(&c->qlock);

        while (batch) {
            emu_op *op = batch;
            batch = op->next;
            run_op(c, op);
            if (op->kind == EMU_OP_RECORD) {
                /* The timestamp is set before the op counts as complete: readers check
                 * `completed`, then read `when` under qlock. */
                emu_event *e = op->u.record.event;
                pthread_mutex_lock(&c->qlock);
                if (e->rec_ctx == c && e->seq == op->seq) {
                    clock_gettime(CLOCK_MONOTONIC, &e->when);
                    e->timed = 1;
                }
                pthread_mutex_unlock(&c->qlock);
            }
            publish_completed(c, op->seq);
            emu_op_free(op);
        }
        pthread_mutex_lock(&c->qlock);
    }
    pthread_mutex_unlock(&c->qlock);
    return NULL;
}

void emu_ctx_set_sticky(emu_ctx *c, CUresult err)
{
    int expected = CUDA_SUCCESS;
    atomic_compare_exchange_strong(&c->sticky, &expected, (int)err);
}

void emu_ctx_enqueue(emu_ctx *c, emu_stream *s, emu_op *op)
{
    op->next = NULL;
    op->stream = s;
    pthread_mutex_lock(&c->qlock);
    op->seq = ++c->submitted;
    if (s)
        s->last_seq = op->seq;
    if (op->kind == EMU_OP_RECORD) {
        emu_event *e = op->u.record.event;
        e->rec_ctx = c;
        e->seq = op->seq;
        e->timed = 0;
    }
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    if (c->worker_idle)
        pthread_cond_signal(&c->qwork);
    pthread_mutex_unlock(&c->qlock);
}

CUresult emu_submit(emu_ctx *c, emu_stream *s, emu_op *op)
{
    if (atomic_load_explicit(&c->capturing, memory_order_acquire)) {
        CUresult r = emu_capture_submit(c, s, op); /* takes op, or hands it back with 0 */
        if (r != EMU_NOT_CAPTURED)
            return r;
    }
    emu_ctx_enqueue(c, s, op);
    return CUDA_SUCCESS;
}

CUresult emu_ctx_drain(emu_ctx *c)
{
    pthread_mutex_lock(&c->qlock);
    emu_ctx_wait_seq(c, c->submitted, 0);
    pthread_mutex_unlock(&c->qlock);
    return (CUresult)atomic_load(&c->sticky);
}

/* ---- context life cycle ---- */

static CUresult ctx_setup(emu_ctx *c, emu_device *dev, unsigned flags, int primary)
{
    c->dev = dev;
    c->is_primary = primary;
    c->flags = flags;
    c->id = atomic_fetch_add(&next_ctx_id, 1);
    atomic_store(&c->sticky, CUDA_SUCCESS);
    memset(c->limits, 0, sizeof c->limits);
    c->limits[CU_LIMIT_STACK_SIZE] = 1024;
    c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 32;
    c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = EMU_PRINTF_FIFO_DEFAULT;
    c->cache_config = CU_FUNC_CACHE_PREFER_NONE;
    c->shared_config = CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE;
    c->ptx_mem.ctx = c;
    c->ptx_mem.translate = emu_ptx_translate;
    c->ptx_mem.print = emu_ptx_print;
    c->ptx_mem.heap_alloc = emu_ptx_heap_alloc;
    c->ptx_mem.heap_free = emu_ptx_heap_free;
    emu_tex_install(&c->ptx_mem);
    for (int i = 0; i < EMU_MAX_PEERS; i++)
        atomic_store(&c->peer_ids[i], 0);
    c->head = c->tail = NULL;
    c->submitted = 0;
    atomic_store(&c->completed, 0);
    atomic_store(&c->wake_seq, UINT64_MAX);
    c->worker_idle = 0;
    c->stop = 0;
    if (pthread_mutex_init(&c->qlock, NULL) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    emu_printf_init(c);
    emu_heap_init(c);
    if (pthread_cond_init(&c->qwork, NULL) != 0)
        goto fail_lock;
    if (pthread_cond_init(&c->qdone, NULL) != 0)
        goto fail_work;
    c->worker_running = 1;
    if (pthread_create(&c->worker, NULL, worker_main, c) != 0) {
        c->worker_running = 0;
        goto fail_done;
    }
    atomic_store(&c->capturing, 0);
    c->alive = 1;
    if (ctx_list_add(c) != 0) {
        /* Without a place in the list the context could not be drained by others: refuse it. */
        pthread_mutex_lock(&c->qlock);
        c->stop = 1;
        pthread_cond_signal(&c->qwork);
        pthread_mutex_unlock(&c->qlock);
        pthread_join(c->worker, NULL);
        c->worker_running = 0;
        c->alive = 0;
        goto fail_done;
    }
    return CUDA_SUCCESS;
fail_done:
    pthread_cond_destroy(&c->qdone);
fail_work:
    pthread_cond_destroy(&c->qwork);
fail_lock:
    emu_printf_free(c);
    emu_heap_free(c);
    pthread_mutex_destroy(&c->qlock);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* Runs what is queued, stops the worker and frees everything the context owns. The emu_ctx
 * itself stays allocated (primary contexts are reused). */
static void ctx_teardown(emu_ctx *c)
{
    ctx_list_remove(c);
    emu_capture_ctx_gone(c);
    pthread_mutex_lock(&c->qlock);
    c->stop = 1;
    pthread_cond_signal(&c->qwork);
    pthread_mutex_unlock(&c->qlock);
    pthread_join(c->worker, NULL);
    pthread_mutex_lock(&c->qlock);
    c->worker_running = 0;
    pthread_cond_broadcast(&c->qdone);
    pthread_mutex_unlock(&c->qlock);
    c->alive = 0;

    /* Streams and events of this context. */
    for (;;) {
        pthread_mutex_lock(&objects_lock);
        struct owned *o = objects;
        while (o && o->ctx != c)
            o = o->next;
        void *obj = o ? o->obj : NULL;
        int kind = o ? o->kind : 0;
        pthread_mutex_unlock(&objects_lock);
        if (!obj)
            break;
        if (!owned_remove(obj))
            continue;
        emu_obj_del(obj);
        if (kind == EMU_OBJ_EVENT) {
            event_unref(obj);
        } else {
            emu_capture_stream_gone(obj);
            free(obj);
        }
    }
    /* What the context's kernels printed comes out at its destruction, as on a GPU. */
    emu_printf_flush(c);
    emu_printf_free(c);
    emu_tex_free_ctx(c);
    emu_arrays_free_ctx(c);
    emu_modules_free_ctx(c);
    emu_heap_free(c);
    emu_mem_free_ctx(c);
    pthread_cond_destroy(&c->qdone);
    pthread_cond_destroy(&c->qwork);
    pthread_mutex_destroy(&c->qlock);
}

static int ctx_live(emu_ctx *c)
{
    return c && emu_obj_is(c, EMU_OBJ_CTX) && c->alive;
}

void emu_ctx_drain_all(void)
{
    pthread_mutex_lock(&objects_lock);
    size_t n = ctx_all_len;
    emu_ctx **snap = malloc((n ? n : 1) * sizeof *snap);
    if (snap)
        memcpy(snap, ctx_all, n * sizeof *snap);
    pthread_mutex_unlock(&objects_lock);
    if (!snap)
        return;
    for (size_t i = 0; i < n; i++)
        if (ctx_live(snap[i]))
            emu_ctx_drain(snap[i]);
    free(snap);
}

CUresult emu_ctx_resolve(CUcontext handle, emu_ctx **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_ctx *c = (emu_ctx *)handle;
    if (!c) {
        if (ctx_depth == 0 || !ctx_stack[ctx_depth - 1])
            return CUDA_ERROR_INVALID_CONTEXT;
        c = ctx_stack[ctx_depth - 1];
    }
    if (!ctx_live(c))
        return CUDA_ERROR_INVALID_CONTEXT;
    *out = c;
    return (CUresult)atomic_load(&c->sticky);
}

CUresult emu_ctx_current(emu_ctx **out)
{
    return emu_ctx_resolve(NULL, out);
}

static void stack_remove(emu_ctx *c)
{
    for (int i = 0; i < ctx_depth; i++)
        if (ctx_stack[i] == c)
            ctx_stack[i] = NULL;
    while (ctx_depth > 0 && !ctx_stack[ctx_depth - 1])
        ctx_depth--;
}

CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                             CUdevice dev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    if (params) {
        CUctxCreateParams copy;
        if (emu_host_read(&copy, params, sizeof copy))
            return CUDA_ERROR_INVALID_VALUE;
        if (copy.numExecAffinityParams > 0 || copy.cigParams)
            return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (ctx_depth >= EMU_CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    emu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    r = ctx_setup(c, d, flags, 0);
    if (r)
        goto fail_free;
    if (emu_obj_add(c, EMU_OBJ_CTX) != 0) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail_teardown;
    }
    ctx_stack[ctx_depth++] = c;
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
fail_teardown:
    ctx_teardown(c);
fail_free:
    free(c);
    return r;
}

CUresult CUDAAPI cuCtxDestroy(CUcontext ctx)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_ctx *c = (emu_ctx *)ctx;
    if (!c || !emu_obj_is(c, EMU_OBJ_CTX) || c->is_primary || !c->alive)
        return CUDA_ERROR_INVALID_CONTEXT;
    emu_obj_del(c);
    stack_remove(c);
    ctx_teardown(c);
    free(c);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!ctx_live((emu_ctx *)ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx_depth >= EMU_CTX_STACK)
        return CUDA_ERROR_INVALID_VALUE;
    ctx_stack[ctx_depth++] = (emu_ctx *)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPopCurrent(CUcontext *pctx)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (ctx_depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    emu_ctx *c = ctx_stack[--ctx_depth];
    if (pctx)
        *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!ctx) {
        if (ctx_depth > 0)
            ctx_depth--;
        return CUDA_SUCCESS;
    }
    if (!ctx_live((emu_ctx *)ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx_depth == 0)
        ctx_depth = 1;
    ctx_stack[ctx_depth - 1] = (emu_ctx *)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = ctx_depth > 0 ? (CUcontext)ctx_stack[ctx_depth - 1] : NULL;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *device)
{
    emu_ctx *c;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_current(&c);
    if (r == CUDA_ERROR_NOT_INITIALIZED || r == CUDA_ERROR_INVALID_CONTEXT)
        return r;
    *device = c->dev->ordinal;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSynchronize(void)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if ((r = emu_capture_unsafe_call()))
        return r;
    r = emu_ctx_drain(c);
    emu_pools_sync(c->dev);
    emu_printf_flush(c);
    return r;
}

CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    emu_ctx *c;
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_resolve(ctx, &c);
    if (r == CUDA_ERROR_NOT_INITIALIZED || r == CUDA_ERROR_INVALID_CONTEXT)
        return r;
    *version = 3020; /* what every context created through the _v2 API reports */
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetFlags(unsigned int *flags)
{
    emu_ctx *c;
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetId(CUcontext ctx, unsigned long long *id)
{
    emu_ctx *c;
    if (!id)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_resolve(ctx, &c);
    if (r)
        return r;
    *id = c->id;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if ((int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    if (limit == CU_LIMIT_MAX_L2_FETCH_GRANULARITY && value > 128)
        return CUDA_ERROR_INVALID_VALUE;
    if (limit == CU_LIMIT_PRINTF_FIFO_SIZE)
        return emu_printf_set_size(c, value);
    if (limit == CU_LIMIT_MALLOC_HEAP_SIZE)
        return emu_heap_set_size(c, value);
    c->limits[limit] = value;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetLimit(size_t *value, CUlimit limit)
{
    emu_ctx *c;
    if (!value || (int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    *value = c->limits[limit];
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCacheConfig(CUfunc_cache *config)
{
    emu_ctx *c;
    if (!config)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    *config = c->cache_config;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCacheConfig(CUfunc_cache config)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if ((int)config < 0 || config > CU_FUNC_CACHE_PREFER_EQUAL)
        return CUDA_ERROR_INVALID_VALUE;
    c->cache_config = config; /* no caches to configure; remembered for the getter */
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetSharedMemConfig(CUsharedconfig *config)
{
    emu_ctx *c;
    if (!config)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    *config = c->shared_config;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetStreamPriorityRange(int *least, int *greatest)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (least)
        *least = 0;
    if (greatest)
        *greatest = -5;
    return CUDA_SUCCESS;
}

/* ---- primary contexts ---- */

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&d->primary_lock);
    if (!d->primary) {
        emu_ctx *c = calloc(1, sizeof *c);
        if (!c || emu_obj_add(c, EMU_OBJ_CTX) != 0) {
            free(c);
            r = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
        d->primary = c;
    }
    if (d->primary_refs == 0 && !d->primary->alive) {
        r = ctx_setup(d->primary, d, d->primary_flags, 1);
        if (r)
            goto out;
    }
    d->primary_refs++;
    *pctx = (CUcontext)d->primary;
out:
    pthread_mutex_unlock(&d->primary_lock);
    return r;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&d->primary_lock);
    if (d->primary_refs == 0) {
        r = CUDA_ERROR_INVALID_CONTEXT;
    } else if (--d->primary_refs == 0 && d->primary->alive) {
        ctx_teardown(d->primary);
    }
    pthread_mutex_unlock(&d->primary_lock);
    return r;
}

CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&d->primary_lock);
    if (d->primary && d->primary->alive) {
        ctx_teardown(d->primary);
        /* Holders of the handle keep a usable (fresh, unpoisoned) context. */
        if (d->primary_refs > 0)
            r = ctx_setup(d->primary, d, d->primary_flags, 1);
    }
    pthread_mutex_unlock(&d->primary_lock);
    return r;
}

CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    if (flags & ~(unsigned)(CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX |
                            CU_CTX_SYNC_MEMOPS))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&d->primary_lock);
    d->primary_flags = flags;
    if (d->primary && d->primary->alive)
        d->primary->flags = flags;
    pthread_mutex_unlock(&d->primary_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_device *d = emu_device_at(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&d->primary_lock);
    *flags = d->primary_flags;
    *active = d->primary && d->primary->alive;
    pthread_mutex_unlock(&d->primary_lock);
    return CUDA_SUCCESS;
}

/* ---- streams ---- */

CUresult emu_stream_resolve(CUstream handle, emu_ctx **ctx, emu_stream **stream)
{
    if (handle == NULL || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD) {
        *stream = NULL;
        return emu_ctx_current(ctx);
    }
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_stream *s = (emu_stream *)handle;
    if (!emu_obj_is(s, EMU_OBJ_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!ctx_live(s->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    *stream = s;
    *ctx = s->ctx;
    return (CUresult)atomic_load(&s->ctx->sticky);
}

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!phStream || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_INVALID_VALUE;
    emu_stream *s = calloc(1, sizeof *s);
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    s->ctx = c;
    s->flags = flags;
    s->priority = priority > 0 ? 0 : priority < -5 ? -5 : priority; /* clamped, as CUDA does */
    s->id = atomic_fetch_add(&next_stream_id, 1);
    if (owned_add(s, EMU_OBJ_STREAM, c) != 0) {
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (emu_obj_add(s, EMU_OBJ_STREAM) != 0) {
        owned_remove(s);
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *phStream = (CUstream)s;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamCreate(CUstream *phStream, unsigned int flags)
{
    return cuStreamCreateWithPriority(phStream, flags, 0);
}

static CUresult stream_wait_idle(emu_ctx *c, emu_stream *s)
{
    pthread_mutex_lock(&c->qlock);
    emu_ctx_wait_seq(c, s ? s->last_seq : c->submitted, 0);
    pthread_mutex_unlock(&c->qlock);
    return (CUresult)atomic_load(&c->sticky);
}

CUresult CUDAAPI cuStreamDestroy(CUstream hStream)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_stream *s = (emu_stream *)hStream;
    if (!s || !emu_obj_is(s, EMU_OBJ_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    /* Work already queued still runs (CUDA's contract); ops hold no pointer that outlives it
     * except op->stream, which only host callbacks read, so wait for them. */
    stream_wait_idle(s->ctx, s);
    if (!owned_remove(s))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_obj_del(s);
    emu_capture_stream_gone(s);
    free(s);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if ((r = emu_capture_sync_check(c, s)))
        return r;
    r = stream_wait_idle(c, s);
    emu_printf_flush(c);
    emu_pools_sync(c->dev);
    return r;
}

CUresult CUDAAPI cuStreamQuery(CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if ((r = emu_capture_sync_check(c, s)))
        return r;
    pthread_mutex_lock(&c->qlock);
    uint64_t target = s ? s->last_seq : c->submitted;
    int done = atomic_load(&c->completed) >= target;
    pthread_mutex_unlock(&c->qlock);
    return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuStreamGetPriority(CUstream hStream, int *priority)
{
    emu_ctx *c;
    emu_stream *s;
    if (!priority)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    *priority = s ? s->priority : 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
    emu_ctx *c;
    emu_stream *s;
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    *flags = s ? s->flags : 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
    emu_ctx *c;
    emu_stream *s;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetId(CUstream hStream, unsigned long long *streamId)
{
    emu_ctx *c;
    emu_stream *s;
    if (!streamId)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    *streamId = s ? s->id : (hStream == CU_STREAM_PER_THREAD ? 2 : 1);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamGetDevice(CUstream hStream, CUdevice *device)
{
    emu_ctx *c;
    emu_stream *s;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    *device = c->dev->ordinal;
    return CUDA_SUCCESS;
}

static CUresult enqueue_hostfn(CUstream hStream, CUhostFn fn, CUstreamCallback cb, void *user)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    emu_op *op = calloc(1, sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->kind = EMU_OP_HOSTFN;
    op->u.hostfn.fn = fn;
    op->u.hostfn.cb = cb;
    op->u.hostfn.user = user;
    return emu_submit(c, s, op);
}

CUresult CUDAAPI cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    return enqueue_hostfn(hStream, fn, NULL, userData);
}

CUresult CUDAAPI cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                     unsigned int flags)
{
    if (!callback || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return enqueue_hostfn(hStream, NULL, callback, userData);
}

/* ---- events ---- */

static CUresult event_resolve(CUevent h, emu_event **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_event *e = (emu_event *)h;
    if (!e || !emu_obj_is(e, EMU_OBJ_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    *out = e;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventCreate(CUevent *phEvent, unsigned int flags)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!phEvent || (flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING |
                                         CU_EVENT_INTERPROCESS)))
        return CUDA_ERROR_INVALID_VALUE;
    if ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING))
        return CUDA_ERROR_INVALID_VALUE;
    emu_event *e = calloc(1, sizeof *e);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->ctx = c;
    e->flags = flags;
    atomic_init(&e->refs, 1);
    if (owned_add(e, EMU_OBJ_EVENT, c) != 0) {
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (emu_obj_add(e, EMU_OBJ_EVENT) != 0) {
        owned_remove(e);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventDestroy(CUevent hEvent)
{
    emu_event *e;
    CUresult r = event_resolve(hEvent, &e);
    if (r)
        return r;
    if (!owned_remove(e))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_obj_del(e);
    event_unref(e); /* a pending record op keeps it alive until it ran */
    return CUDA_SUCCESS;
}

CUresult emu_event_resolve(CUevent h, emu_event **out)
{
    return event_resolve(h, out);
}

CUresult emu_event_record_submit(emu_event *e, emu_ctx *c, emu_stream *s)
{
    if (c != e->ctx)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_op *op = calloc(1, sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->kind = EMU_OP_RECORD;
    op->u.record.event = e;
    atomic_fetch_add(&e->refs, 1);
    emu_ctx_enqueue(c, s, op);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    emu_event *e;
    emu_ctx *c;
    emu_stream *s;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = event_resolve(hEvent, &e);
    if (r)
        return r;
    r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (c != e->ctx)
        return CUDA_ERROR_INVALID_HANDLE;
    if (atomic_load(&c->capturing)) {
        r = emu_capture_event_record(e, c, s, (flags & CU_EVENT_RECORD_EXTERNAL) != 0);
        if (r != EMU_NOT_CAPTURED)
            return r;
    }
    return emu_event_record_submit(e, c, s);
}

CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream)
{
    return cuEventRecordWithFlags(hEvent, hStream, 0);
}

/* Snapshot of where an event stands; 1 when complete. */
static int event_done(emu_event *e, int wait)
{
    emu_ctx *c = e->ctx;
    pthread_mutex_lock(&c->qlock);
    if (wait)
        emu_ctx_wait_seq(c, e->seq, 1);
    int done = atomic_load(&c->completed) >= e->seq;
    pthread_mutex_unlock(&c->qlock);
    return done;
}

CUresult CUDAAPI cuEventQuery(CUevent hEvent)
{
    emu_event *e;
    CUresult r = event_resolve(hEvent, &e);
    if (r)
        return r;
    if (!ctx_live(e->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (atomic_load(&e->ctx->sticky))
        return (CUresult)atomic_load(&e->ctx->sticky);
    if ((r = emu_capture_event_check(e)))
        return r;
    return event_done(e, 0) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult CUDAAPI cuEventSynchronize(CUevent hEvent)
{
    emu_event *e;
    CUresult r = event_resolve(hEvent, &e);
    if (r)
        return r;
    if (!ctx_live(e->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if ((r = emu_capture_event_check(e)))
        return r;
    event_done(e, 1);
    emu_printf_flush(e->ctx);
    emu_pools_sync(e->ctx->dev);
    return (CUresult)atomic_load(&e->ctx->sticky);
}

CUresult CUDAAPI cuEventElapsedTime(float *ms, CUevent hStart, CUevent hEnd)
{
    emu_event *a, *b;
    if (!ms)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = event_resolve(hStart, &a);
    if (r)
        return r;
    r = event_resolve(hEnd, &b);
    if (r)
        return r;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!ctx_live(a->ctx) || !ctx_live(b->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (a->seq == 0 || b->seq == 0)
        return CUDA_ERROR_INVALID_HANDLE; /* never recorded */
    if (!event_done(a, 0) || !event_done(b, 0))
        return CUDA_ERROR_NOT_READY;
    pthread_mutex_lock(&a->ctx->qlock);
    struct timespec ta = a->when;
    int timed_a = a->timed;
    pthread_mutex_unlock(&a->ctx->qlock);
    pthread_mutex_lock(&b->ctx->qlock);
    struct timespec tb = b->when;
    int timed_b = b->timed;
    pthread_mutex_unlock(&b->ctx->qlock);
    if (!timed_a || !timed_b)
        return CUDA_ERROR_INVALID_HANDLE;
    *ms = (float)((double)(tb.tv_sec - ta.tv_sec) * 1e3 + (double)(tb.tv_nsec - ta.tv_nsec) / 1e6);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int flags)
{
    emu_event *e;
    emu_ctx *c;
    emu_stream *s;
    if (flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = event_resolve(hEvent, &e);
    if (r)
        return r;
    r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (!ctx_live(e->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (atomic_load(&c->capturing)) {
        r = emu_capture_event_wait(e, c, s, (flags & CU_EVENT_WAIT_EXTERNAL) != 0);
        if (r != EMU_NOT_CAPTURED)
            return r;
    }
    return emu_event_wait_submit(e, c, s);
}

CUresult emu_event_wait_submit(emu_event *e, emu_ctx *c, emu_stream *s)
{
    if (!ctx_live(e->ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&e->ctx->qlock);
    emu_ctx *rec = e->rec_ctx;
    uint64_t seq = e->seq;
    pthread_mutex_unlock(&e->ctx->qlock);
    /* Within one context the queue is already in order, so only a foreign record needs a wait. */
    if (seq == 0 || rec == c)
        return CUDA_SUCCESS;
    emu_op *op = calloc(1, sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->kind = EMU_OP_WAIT;
    op->u.wait.ctx = rec;
    op->u.wait.seq = seq;
    emu_ctx_enqueue(c, s, op);
    return CUDA_SUCCESS;
}

/* ---- peer access ---- */

/* Guards writers of every context's peer_ids (kernel workers read them with atomics). */
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;

CUresult CUDAAPI cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_device_at(dev) || !emu_device_at(peerDev))
        return CUDA_ERROR_INVALID_DEVICE;
    /* Every emulated device lives in host memory: each can reach every other. */
    *canAccessPeer = dev != peerDev;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib,
                                         CUdevice srcDevice, CUdevice dstDevice)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_device_at(srcDevice) || !emu_device_at(dstDevice) || srcDevice == dstDevice)
        return CUDA_ERROR_INVALID_DEVICE;
    switch (attrib) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED: *value = 1; break;
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED: *value = 1; break; /* host atomics */
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 1; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags)
{
    emu_ctx *c, *peer;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!peerContext || !ctx_live((emu_ctx *)peerContext))
        return CUDA_ERROR_INVALID_CONTEXT;
    peer = (emu_ctx *)peerContext;
    if (peer->dev == c->dev)
        return CUDA_ERROR_INVALID_DEVICE; /* contexts of one device are not peers */
    pthread_mutex_lock(&peer_lock);
    int free_slot = -1;
    for (int i = 0; i < EMU_MAX_PEERS; i++) {
        unsigned long long id = atomic_load(&c->peer_ids[i]);
        if (id == peer->id) {
            pthread_mutex_unlock(&peer_lock);
            return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
        }
        if (id == 0 && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        r = CUDA_ERROR_TOO_MANY_PEERS;
    else
        atomic_store(&c->peer_ids[free_slot], peer->id);
    pthread_mutex_unlock(&peer_lock);
    return r;
}

CUresult CUDAAPI cuCtxDisablePeerAccess(CUcontext peerContext)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!peerContext || !ctx_live((emu_ctx *)peerContext))
        return CUDA_ERROR_INVALID_CONTEXT;
    unsigned long long id = ((emu_ctx *)peerContext)->id;
    r = CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
    pthread_mutex_lock(&peer_lock);
    for (int i = 0; i < EMU_MAX_PEERS; i++) {
        if (atomic_load(&c->peer_ids[i]) == id) {
            atomic_store(&c->peer_ids[i], 0);
            r = CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&peer_lock);
    if (!r) {
        emu_ctx_drain(c);        /* work already queued keeps the access it was queued with */
        emu_mem_invalidate();    /* and cached translations forget it */
    }
    return r;
}

/* ---- profiler control: there is no profiler to start; the calls are accepted ---- */

CUresult CUDAAPI cuProfilerStart(void)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    return r == CUDA_ERROR_NOT_INITIALIZED || r == CUDA_ERROR_INVALID_CONTEXT ? r : CUDA_SUCCESS;
}

CUresult CUDAAPI cuProfilerStop(void)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r == CUDA_ERROR_NOT_INITIALIZED || r == CUDA_ERROR_INVALID_CONTEXT)
        return r;
    /* cuProfilerStop flushes profiling data, which means waiting for the work. */
    emu_ctx_drain(c);
    return CUDA_SUCCESS;
}
