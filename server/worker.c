#include "worker.h"

#include <stdlib.h>
#include <time.h>

#include "log.h"

/* A worker that runs out of work polls its queue this long before it sleeps: a pipelining
 * client's next batch follows within microseconds (one loop turn), and a worker still polling
 * takes it without a futex wake-up and context switch. Short, because a client waiting for a
 * reply sends its next call a whole round trip later, and on a box with few cores a longer spin
 * takes CPU from the loop and the client (measured: 50 us made null calls slower).
 * VGPU_WORKER_SPIN_NS overrides it (0: never poll). */
#define WORKER_SPIN_NS 20000

struct queue {
    struct vg_work *head, *tail;
};

static void q_push(struct queue *q, struct vg_work *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        __atomic_store_n(&q->head, it, __ATOMIC_RELAXED); /* spin_for_work peeks at it */
    q->tail = it;
}

static struct vg_work *q_pop(struct queue *q)
{
    struct vg_work *it = q->head;
    if (it) {
        __atomic_store_n(&q->head, it->next, __ATOMIC_RELAXED);
        if (!q->head)
            q->tail = NULL;
    }
    return it;
}

struct worker {
    pthread_t thread;
    struct vg_workers *all;
    pthread_mutex_t lock;    /* protects todo and stop */
    pthread_cond_t cond;
    struct queue todo;
    int stop;
    int started;
    int sleeping;            /* in pthread_cond_wait (under lock): a submit must signal */
};

struct vg_workers {
    int n;
    struct worker *w;
    uv_async_t done_async;
    pthread_mutex_t done_lock; /* protects done */
    struct queue done;
    void (*on_done)(struct vg_work *);
};

static void run_item(struct vg_work *it)
{
    if (it->kind == VG_WORK_CLEANUP) {
        vg_sess_destroy_all(it->sess);
        return;
    }
    vg_sess_execute(it->sess, it->call, it->bulk, it->bulk_len, (it->flags & VG_FLAG_NO_REPLY) != 0, &it->res);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Polls (without the lock: a racy read only decides whether to take it) until work or a stop
 * request shows up or the spin time is over. */
static void spin_for_work(struct worker *w)
{
    static uint64_t spin_ns = (uint64_t)-1;
    if (spin_ns == (uint64_t)-1) {
        const char *e = getenv("VGPU_WORKER_SPIN_NS");
        spin_ns = e ? strtoull(e, NULL, 10) : WORKER_SPIN_NS;
    }
    if (!spin_ns)
        return;
    uint64_t until = now_ns() + spin_ns;
    for (int i = 0;; i++) {
        if (__atomic_load_n(&w->todo.head, __ATOMIC_RELAXED) || __atomic_load_n(&w->stop, __ATOMIC_RELAXED))
            return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if ((i & 63) == 63 && now_ns() >= until)
            return;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        spin_for_work(w);
        pthread_mutex_lock(&w->lock);
        while (!w->todo.head && !w->stop) {
            w->sleeping = 1;
            pthread_cond_wait(&w->cond, &w->lock);
            w->sleeping = 0;
        }
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        struct vg_work *it = q_pop(&w->todo);
        pthread_mutex_unlock(&w->lock);

        run_item(it);

        pthread_mutex_lock(&w->all->done_lock);
        q_push(&w->all->done, it);
        pthread_mutex_unlock(&w->all->done_lock);
        uv_async_send(&w->all->done_async);
    }
}

static void on_async(uv_async_t *a)
{
    struct vg_workers *all = a->data;
    pthread_mutex_lock(&all->done_lock);
    struct vg_work *list = all->done.head;
    all->done.head = all->done.tail = NULL;
    pthread_mutex_unlock(&all->done_lock);
    while (list) {
        struct vg_work *next = list->next;
        all->on_done(list);
        list = next;
    }
}

struct vg_workers *vg_workers_start(uv_loop_t *loop, int n, void (*on_done)(struct vg_work *))
{
    struct vg_workers *all = calloc(1, sizeof *all);
    if (!all)
        return NULL;
    all->w = calloc((size_t)n, sizeof *all->w);
    if (!all->w)
        goto fail_all;
    all->n = n;
    all->on_done = on_done;
    pthread_mutex_init(&all->done_lock, NULL);
    if (uv_async_init(loop, &all->done_async, on_async) != 0)
        goto fail_w;
    all->done_async.data = all;
    for (int i = 0; i < n; i++) {
        struct worker *w = &all->w[i];
        w->all = all;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            vg_error("cannot start worker thread %d", i);
            vg_workers_stop(all);
            return NULL;
        }
        w->started = 1;
    }
    return all;
fail_w:
    free(all->w);
fail_all:
    free(all);
    return NULL;
}

void vg_workers_submit(struct vg_workers *all, int device, struct vg_work *list)
{
    struct worker *w = &all->w[(unsigned)device % (unsigned)all->n];
    pthread_mutex_lock(&w->lock);
    while (list) {
        struct vg_work *next = list->next;
        q_push(&w->todo, list);
        list = next;
    }
    int wake = w->sleeping;
    pthread_mutex_unlock(&w->lock);
    /* Signalled after unlocking, so that the woken worker does not block at once on the lock
     * still held here; and only when it sleeps (a polling worker sees the queue by itself).
     * The worker sets sleeping under the lock before it waits, so a push made before it checks
     * the queue is seen by that check, and one made after finds sleeping set. */
    if (wake)
        pthread_cond_signal(&w->cond);
}

void vg_workers_stop(struct vg_workers *all)
{
    for (int i = 0; i < all->n; i++) {
        struct worker *w = &all->w[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    uv_close((uv_handle_t *)&all->done_async, NULL);
    /* The handle memory must outlive uv_close: callers run the loop once more before freeing. */
}

void vg_workers_free(struct vg_workers *all)
{
    free(all->w);
    free(all);
}
