#include "sess_sched.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sched.h"
#include "sess_watch.h"

/* Items in a burst at most; fewer when they are long (about VG_SCHED_BURST_NS in all). */
#define BURST_MAX_ITEMS 256u
#define QUEUE_CAP 64u /* bursts closed and not yet completed */

struct burst {
    CUcontext ctx;
    CUstream stream;
    int dev;                   /* server ordinal */
    CUevent start, end;
    unsigned items;
    int gated;                 /* holds the device's permit (it has kernels) */
    uint64_t estimate_ns;      /* what its start charged the tenant's tag */
    uint64_t opened_ns;
};

struct pooled {
    CUcontext ctx;
    CUevent ev;
};

struct sess_sched {
    const struct vg_drv *drv;
    struct vg_board *board;
    int slot;
    uint32_t tenant;
    const int *devices;
    int ndevices;
    pthread_t thread;

    /* Main thread only. */
    struct burst open;
    int is_open;

    pthread_mutex_t lock;      /* guards everything below (main thread and tracker) */
    pthread_cond_t cond;       /* the queue changed */
    struct burst queue[QUEUE_CAP];
    unsigned head, count;
    uint64_t last_done_ns;     /* when the burst before the head completed */
    struct pooled *pool;
    size_t npool, cappool;
    unsigned max_items;        /* from the measured cost of items */
    uint64_t item_ns;          /* moving average of a kernel burst's item's device time (atomic:
                                * the tracker writes it, the main thread reads it) */
};

static CUevent event_get(struct sess_sched *s, CUcontext ctx)
{
    CUevent ev = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = s->npool; i-- > 0;) {
        if (s->pool[i].ctx == ctx) {
            ev = s->pool[i].ev;
            s->pool[i] = s->pool[--s->npool];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    /* Blocking sync: the tracker sleeps in cuEventSynchronize instead of spinning a core. */
    if (!ev && s->drv->cuEventCreate(&ev, CU_EVENT_BLOCKING_SYNC) != CUDA_SUCCESS)
        ev = NULL;
    return ev;
}

/* Locked. */
static void event_put(struct sess_sched *s, CUcontext ctx, CUevent ev)
{
    if (!ev)
        return;
    if (s->npool == s->cappool) {
        size_t cap = s->cappool ? s->cappool * 2 : 16;
        struct pooled *n = realloc(s->pool, cap * sizeof *n);
        if (!n) {
            s->drv->cuEventDestroy(ev);
            return;
        }
        s->pool = n;
        s->cappool = cap;
    }
    s->pool[s->npool++] = (struct pooled){ctx, ev};
}

static int server_device(const struct sess_sched *s, int dev)
{
    if (!s->ndevices)
        return dev >= 0 && dev < VG_BOARD_DEVICES ? dev : -1;
    return dev >= 0 && dev < s->ndevices ? s->devices[dev] : -1;
}

int sess_sched_open(const struct sess_sched *s)
{
    return s && s->is_open;
}

void sess_sched_close(struct sess_sched *s)
{
    if (!s || !s->is_open)
        return;
    s->is_open = 0;
    struct burst *b = &s->open;
    b->end = event_get(s, b->ctx);
    if (b->end && s->drv->cuEventRecord(b->end, b->stream) != CUDA_SUCCESS) {
        pthread_mutex_lock(&s->lock);
        event_put(s, b->ctx, b->end);
        pthread_mutex_unlock(&s->lock);
        b->end = NULL;
    }
    pthread_mutex_lock(&s->lock);
    if (s->count == 0)
        s->last_done_ns = b->opened_ns; /* the device was idle for us until this burst */
    s->queue[(s->head + s->count++) % QUEUE_CAP] = *b;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void sess_sched_work(struct sess_sched *s, CUcontext ctx, CUstream stream, int dev, int kernel)
{
    if (!s)
        return;
    int sdev = server_device(s, dev);
    if (sdev < 0)
        return; /* not a device of ours: the call fails by itself */
    if (s->is_open) {
        if (s->open.ctx == ctx && s->open.stream == stream && s->open.dev == sdev && (s->open.gated || !kernel) &&
            s->open.items < __atomic_load_n(&s->max_items, __ATOMIC_RELAXED)) {
            s->open.items++;
            return;
        }
        sess_sched_close(s);
    }
    /* Room in the tracker's queue (kernels' bursts are bounded by the permit; copies' are not). */
    pthread_mutex_lock(&s->lock);
    while (s->count == QUEUE_CAP)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    /* What a burst is expected to cost: its items at their average length. */
    uint64_t estimate = kernel ? __atomic_load_n(&s->item_ns, __ATOMIC_RELAXED) *
                                     __atomic_load_n(&s->max_items, __ATOMIC_RELAXED) : 0;
    if (kernel)
        vg_sched_acquire(s->board, s->slot, s->tenant, sdev, estimate);
    struct burst *b = &s->open;
    memset(b, 0, sizeof *b);
    b->estimate_ns = estimate;
    b->ctx = ctx;
    b->stream = stream;
    b->dev = sdev;
    b->items = 1;
    b->gated = kernel;
    b->opened_ns = vg_now_ns();
    s->drv->cuCtxSetCurrent(ctx);
    b->start = event_get(s, ctx);
    if (b->start && s->drv->cuEventRecord(b->start, stream) != CUDA_SUCCESS) {
        pthread_mutex_lock(&s->lock);
        event_put(s, ctx, b->start);
        pthread_mutex_unlock(&s->lock);
        b->start = NULL;
    }
    s->is_open = 1;
}

void sess_sched_drain(struct sess_sched *s)
{
    if (!s)
        return;
    sess_sched_close(s);
    pthread_mutex_lock(&s->lock);
    while (s->count)
        pthread_cond_wait(&s->cond, &s->lock);
    /* The pooled events may belong to the context about to go. */
    for (size_t i = 0; i < s->npool; i++)
        s->drv->cuEventDestroy(s->pool[i].ev);
    s->npool = 0;
    pthread_mutex_unlock(&s->lock);
}

uint64_t sess_sched_running_since(struct sess_sched *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t since = 0;
    if (s->count) {
        uint64_t opened = s->queue[s->head].opened_ns;
        since = opened > s->last_done_ns ? opened : s->last_done_ns;
    }
    pthread_mutex_unlock(&s->lock);
    return since;
}

/* The device time of a completed burst: between its events, or (without them) since it was the
 * oldest in flight. */
static uint64_t burst_cost(struct sess_sched *s, const struct burst *b, uint64_t since, uint64_t now)
{
    float ms = 0;
    if (b->start && b->end && s->drv->cuEventElapsedTime &&
        s->drv->cuEventElapsedTime(&ms, b->start, b->end) == CUDA_SUCCESS && ms >= 0)
        return (uint64_t)((double)ms * 1e6);
    return now > since ? now - since : 0;
}

static void *tracker_main(void *arg)
{
    struct sess_sched *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->count)
            pthread_cond_wait(&s->cond, &s->lock);
        struct burst b = s->queue[s->head];
        uint64_t since = b.opened_ns > s->last_done_ns ? b.opened_ns : s->last_done_ns;
        pthread_mutex_unlock(&s->lock);
        /* Until it is done; a context that failed (a sticky error) is done too. */
        if (b.end)
            s->drv->cuEventSynchronize(b.end);
        else if (s->drv->cuCtxSynchronize && s->drv->cuCtxSetCurrent(b.ctx) == CUDA_SUCCESS)
            s->drv->cuCtxSynchronize();
        uint64_t now = vg_now_ns();
        uint64_t cost = burst_cost(s, &b, since, now);
        if (b.gated)
            vg_sched_release(s->board, s->slot, s->tenant, b.dev, cost, b.estimate_ns);
        else
            vg_sched_charge(s->board, s->slot, s->tenant, b.dev, cost, 0);
        pthread_mutex_lock(&s->lock);
        /* Bursts of long items get fewer of them, so that one burst is about VG_SCHED_BURST_NS
         * (kernels' bursts say how long items are: those are the ones others wait behind). */
        uint64_t per_item = cost / (b.items ? b.items : 1);
        if (b.gated)
            __atomic_store_n(&s->item_ns, s->item_ns ? (s->item_ns * 7 + per_item) / 8 : per_item, __ATOMIC_RELAXED);
        uint64_t fit = s->item_ns ? VG_SCHED_BURST_NS / s->item_ns : BURST_MAX_ITEMS;
        __atomic_store_n(&s->max_items, (unsigned)(fit < 1 ? 1 : fit > BURST_MAX_ITEMS ? BURST_MAX_ITEMS : fit),
                         __ATOMIC_RELAXED);
        event_put(s, b.ctx, b.start);
        event_put(s, b.ctx, b.end);
        s->head = (s->head + 1) % QUEUE_CAP;
        s->count--;
        s->last_done_ns = now;
        pthread_cond_broadcast(&s->cond);
    }
    return NULL;
}

struct sess_sched *sess_sched_start(const struct vg_drv *drv, struct vg_board *b, int slot, uint32_t tenant,
                                    const int *devices, int ndevices)
{
    if (!drv->cuEventCreate || !drv->cuEventRecord || !drv->cuEventSynchronize || !drv->cuEventDestroy ||
        !drv->cuCtxSetCurrent) {
        vg_warn("the driver lacks the event calls the scheduler needs: device time is not shared");
        return NULL;
    }
    struct sess_sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->drv = drv;
    s->board = b;
    s->slot = slot;
    s->tenant = tenant;
    s->devices = devices;
    s->ndevices = ndevices;
    s->max_items = 1; /* until the first burst says how long items are */
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, tracker_main, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}
