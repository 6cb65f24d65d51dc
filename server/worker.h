/* vg_worker: per-device threads that run driver calls, so that the libuv loop (all socket I/O)
 * never blocks on GPU work.
 *
 * The loop submits work items to device d's queue (vg_workers_submit); a worker runs it and puts
 * it on the done queue, then wakes the loop with uv_async_send; the loop calls on_done for each
 * finished item. The loop submits a session's calls as one batch at a time, all to one worker
 * (see net.c), so a session's calls run in order on one thread at a time. */
#ifndef VG_WORKER_H
#define VG_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "session.h"

enum vg_work_kind { VG_WORK_CALL, VG_WORK_CLEANUP };

struct vg_work {
    struct vg_work *next;
    enum vg_work_kind kind;
    void *owner;             /* the loop-side connection */
    struct vg_sess *sess;
    Vgpu__Call *call;        /* owned; protobuf_c_message_free_unpacked */
    uint8_t *frame;          /* owned: the frame body the bulk lies in */
    uint64_t frame_cap;      /* its capacity (without VG_BULK_PAD) */
    uint8_t *bulk;           /* bulk_len bytes + VG_BULK_PAD zeros, inside frame */
    uint64_t bulk_len;
    uint64_t request_id;
    uint32_t flags;
    struct vg_result res;
};

struct vg_workers;

/* Starts n worker threads; on_done runs on the loop thread for each finished item.
 * Returns NULL on failure. */
struct vg_workers *vg_workers_start(uv_loop_t *loop, int n, void (*on_done)(struct vg_work *));
/* Queues a list of items (linked by next) for device's worker, which runs them in list order. */
void vg_workers_submit(struct vg_workers *w, int device, struct vg_work *list);
/* Stops and joins the threads (pending items are dropped) and starts closing the async handle;
 * run the loop until it closes, then vg_workers_free. */
void vg_workers_stop(struct vg_workers *w);
void vg_workers_free(struct vg_workers *w);

#endif
