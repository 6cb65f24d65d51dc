#include "sess_watch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Launches closer together than this share one tracking event: a burst of tiny kernels costs
 * one event record, not one each. The last launches of a burst are covered when the main
 * thread next goes idle or synchronizes (sess_watch_idle). */
#define TRACK_BATCH_NS 1000000ull
#define MAX_UNTRACKED 16

struct entry {
    CUcontext ctx;
    CUevent ev;
    uint64_t submitted_ns;
};

struct pooled {
    CUcontext ctx;
    CUevent ev;
};

struct sess_watch {
    const struct vg_drv *drv;
    const uint64_t *busy_since;
    unsigned heartbeat_ms, kernel_timeout_ms;
    struct sess_watch_hooks hooks;
    pthread_t thread;

    pthread_mutex_t lock;          /* guards everything below (main thread and watchdog) */
    struct entry *fifo;            /* outstanding launches in submission order, ring */
    size_t head, count, cap;
    uint64_t last_done_ns;         /* when the launch before the head completed (or was queued) */
    struct pooled *pool;           /* events ready for reuse, with their context */
    size_t npool, cappool;
    struct { CUcontext ctx; CUstream stream; } untracked[MAX_UNTRACKED];
    int nuntracked;
    uint64_t last_record_ns;
};

uint64_t vg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An event of ctx (current on this thread) from the pool or new; NULL on failure. Locked. */
static CUevent event_get(struct sess_watch *w, CUcontext ctx)
{
    for (size_t i = w->npool; i-- > 0;) {
        if (w->pool[i].ctx == ctx) {
            CUevent ev = w->pool[i].ev;
            w->pool[i] = w->pool[--w->npool];
            return ev;
        }
    }
    CUevent ev = NULL;
    if (!w->drv->cuEventCreate || w->drv->cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS)
        return NULL;
    return ev;
}

static void event_put(struct sess_watch *w, CUcontext ctx, CUevent ev)
{
    if (w->npool == w->cappool) {
        size_t cap = w->cappool ? w->cappool * 2 : 16;
        struct pooled *n = realloc(w->pool, cap * sizeof *n);
        if (!n) {
            w->drv->cuEventDestroy(ev);
            return;
        }
        w->pool = n;
        w->cappool = cap;
    }
    w->pool[w->npool++] = (struct pooled){ctx, ev};
}

/* Records a tracking event on stream of ctx (current) and queues it. Locked. */
static void record(struct sess_watch *w, CUcontext ctx, CUstream stream, uint64_t now)
{
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct entry *n = malloc(cap * sizeof *n);
        if (!n)
            return; /* untracked: the session only loses its timeout for this launch */
        for (size_t i = 0; i < w->count; i++)
            n[i] = w->fifo[(w->head + i) % w->cap];
        free(w->fifo);
        w->fifo = n;
        w->head = 0;
        w->cap = cap;
    }
    CUevent ev = event_get(w, ctx);
    if (!ev)
        return;
    if (w->drv->cuEventRecord(ev, stream) != CUDA_SUCCESS) {
        event_put(w, ctx, ev);
        return;
    }
    if (w->count == 0)
        w->last_done_ns = now; /* the device was idle for this session until now */
    w->fifo[(w->head + w->count++) % w->cap] = (struct entry){ctx, ev, now};
    w->last_record_ns = now;
}

void sess_watch_launched(struct sess_watch *w, CUcontext ctx, CUstream stream)
{
    if (!w || !w->kernel_timeout_ms)
        return;
    uint64_t now = vg_now_ns();
    pthread_mutex_lock(&w->lock);
    if (w->count && now - w->last_record_ns < TRACK_BATCH_NS) {
        for (int i = 0; i < w->nuntracked; i++)
            if (w->untracked[i].ctx == ctx && w->untracked[i].stream == stream)
                goto out;
        if (w->nuntracked < MAX_UNTRACKED) {
            w->untracked[w->nuntracked].ctx = ctx;
            w->untracked[w->nuntracked].stream = stream;
            w->nuntracked++;
            goto out;
        }
    }
    record(w, ctx, stream, now);
    /* This event also covers the earlier launches on this stream. */
    for (int i = 0; i < w->nuntracked; i++) {
        if (w->untracked[i].ctx == ctx && w->untracked[i].stream == stream) {
            w->untracked[i] = w->untracked[--w->nuntracked];
            break;
        }
    }
out:
    pthread_mutex_unlock(&w->lock);
}

/* Records events for the launches not covered yet. Locked; the main thread's contexts are
 * made current one by one. */
static void flush_untracked(struct sess_watch *w)
{
    if (!w->nuntracked)
        return;
    CUcontext cur = NULL;
    w->drv->cuCtxGetCurrent(&cur);
    uint64_t now = vg_now_ns();
    for (int i = 0; i < w->nuntracked; i++) {
        if (w->drv->cuCtxSetCurrent(w->untracked[i].ctx) == CUDA_SUCCESS)
            record(w, w->untracked[i].ctx, w->untracked[i].stream, now);
    }
    w->nuntracked = 0;
    w->drv->cuCtxSetCurrent(cur);
}

void sess_watch_idle(struct sess_watch *w)
{
    if (!w || !w->kernel_timeout_ms)
        return;
    pthread_mutex_lock(&w->lock);
    flush_untracked(w);
    pthread_mutex_unlock(&w->lock);
}

void sess_watch_forget(struct sess_watch *w)
{
    if (!w || !w->kernel_timeout_ms)
        return;
    pthread_mutex_lock(&w->lock);
    w->nuntracked = 0;
    for (size_t i = 0; i < w->count; i++)
        w->drv->cuEventDestroy(w->fifo[(w->head + i) % w->cap].ev);
    w->head = w->count = 0;
    for (size_t i = 0; i < w->npool; i++)
        w->drv->cuEventDestroy(w->pool[i].ev);
    w->npool = 0;
    pthread_mutex_unlock(&w->lock);
}

/* Pops completed launches; 1 when the oldest outstanding one has made no progress for longer
 * than the kernel timeout. Locked. */
static int stuck(struct sess_watch *w, uint64_t now)
{
    while (w->count) {
        struct entry *e = &w->fifo[w->head];
        CUresult r = w->drv->cuEventQuery(e->ev);
        if (r == CUDA_ERROR_NOT_READY)
            break;
        /* Done, or its context failed (a sticky error also ends the work). */
        event_put(w, e->ctx, e->ev);
        w->head = (w->head + 1) % w->cap;
        w->count--;
        w->last_done_ns = now;
    }
    if (!w->count)
        return 0;
    uint64_t since = w->fifo[w->head].submitted_ns > w->last_done_ns ? w->fifo[w->head].submitted_ns
                                                                      : w->last_done_ns;
    return now - since > (uint64_t)w->kernel_timeout_ms * 1000000u;
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void sess_watch_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *watch_main(void *arg)
{
    struct sess_watch *w = arg;
    unsigned period_ms = 100;
    if (w->heartbeat_ms && w->heartbeat_ms / 2 < period_ms)
        period_ms = w->heartbeat_ms / 2 ? w->heartbeat_ms / 2 : 1;
    sigset_t stops;
    stop_signals(&stops);
    for (;;) {
        struct timespec ts = {.tv_sec = period_ms / 1000, .tv_nsec = (long)(period_ms % 1000) * 1000000};
        int sig = sigtimedwait(&stops, NULL, &ts);
        if (sig > 0)
            w->hooks.stop(w->hooks.arg, sig); /* does not return */
        uint64_t now = vg_now_ns();
        uint64_t busy = __atomic_load_n(w->busy_since, __ATOMIC_ACQUIRE);
        if (busy) {
            if (w->hooks.peer_gone(w->hooks.arg))
                return NULL; /* peer_gone ended the process */
            uint64_t last = w->hooks.last_write_ns(w->hooks.arg);
            uint64_t quiet_since = last > busy ? last : busy;
            if (w->heartbeat_ms && now - quiet_since >= (uint64_t)w->heartbeat_ms * 1000000u)
                w->hooks.heartbeat(w->hooks.arg);
        }
        if (w->kernel_timeout_ms) {
            pthread_mutex_lock(&w->lock);
            int s = stuck(w, now);
            pthread_mutex_unlock(&w->lock);
            if (s)
                w->hooks.kernel_timeout(w->hooks.arg); /* does not return */
        }
    }
    return NULL;
}

struct sess_watch *sess_watch_start(const struct vg_drv *drv, const uint64_t *busy_since_ns,
                                    unsigned heartbeat_ms, unsigned kernel_timeout_ms,
                                    const struct sess_watch_hooks *hooks)
{
    struct sess_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->drv = drv;
    w->busy_since = busy_since_ns;
    w->heartbeat_ms = heartbeat_ms;
    w->kernel_timeout_ms = kernel_timeout_ms;
    w->hooks = *hooks;
    if (kernel_timeout_ms && (!drv->cuEventCreate || !drv->cuEventRecord || !drv->cuEventQuery ||
                              !drv->cuEventDestroy || !drv->cuCtxGetCurrent)) {
        vg_warn("the driver lacks the event calls --kernel-timeout needs; kernels are not timed");
        w->kernel_timeout_ms = 0;
    }
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}
