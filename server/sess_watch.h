/* sess_watch: a session process's second thread. While the main thread is inside a driver call
 * (which may block for as long as a kernel runs) it
 *   - ends the process at once when the client hangs up (its kernels die with the process);
 *   - sends Heartbeats so the client can tell a busy server from a dead one (VGPU_TIMEOUT);
 *   - ends the session on SIGTERM (an operator's way to stop one session), saying so;
 *   - with --kernel-timeout, ends the session when the device made no progress on the session's
 *     launched work for that long, telling the client CUDA_ERROR_LAUNCH_TIMEOUT.
 *
 * Progress is observed with one event recorded after each launch on the launch's stream (only
 * when a kernel timeout is set): the session's device work is "stuck" when some launch is
 * outstanding and no launch of the session completed for kernel_timeout_ms. Work queued behind
 * a long but finite kernel therefore never counts against it, and a grid that never ends does. */
#ifndef VG_SESS_WATCH_H
#define VG_SESS_WATCH_H

#include <cuda.h>
#include <stdint.h>

#include "driver.h"

struct sess_watch_hooks {
    void *arg;
    /* Each runs on the watchdog thread. */
    int (*peer_gone)(void *arg);                   /* 1 when the client is gone */
    void (*heartbeat)(void *arg);                  /* send one Heartbeat if the socket is free */
    void (*kernel_timeout)(void *arg);             /* tell the client and end the process */
    uint64_t (*last_write_ns)(void *arg);          /* when a frame last went to the client */
    void (*stop)(void *arg, int signum);           /* SIGTERM/SIGINT arrived: end the process */
};

struct sess_watch;

/* The signals the watchdog takes (SIGTERM, SIGINT): block them in every thread of the session
 * process, from before the driver starts its threads, so that they reach the watchdog only. */
void sess_watch_block_signals(void);

/* Starts the thread. busy_since_ns points at the main thread's "inside a call since" clock
 * (CLOCK_MONOTONIC ns, 0 when between calls). NULL when the thread cannot start. */
struct sess_watch *sess_watch_start(const struct vg_drv *drv, const uint64_t *busy_since_ns,
                                    unsigned heartbeat_ms, unsigned kernel_timeout_ms,
                                    const struct sess_watch_hooks *hooks);

/* Main thread, after a successful launch on stream (in the current context ctx). */
void sess_watch_launched(struct sess_watch *w, CUcontext ctx, CUstream stream);

/* Main thread, before it waits for the client or runs a synchronizing call: tracks the launches
 * a burst left uncovered. */
void sess_watch_idle(struct sess_watch *w);

/* Main thread, before a call that may destroy a context: drops every tracked launch (their
 * events would die with the context). */
void sess_watch_forget(struct sess_watch *w);

uint64_t vg_now_ns(void);

#endif
