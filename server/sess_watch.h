/* sess_watch: a session process's watchdog thread. While the main thread is inside a driver
 * call (which may block for as long as a kernel runs) it
 *   - ends the process at once when the client hangs up (its kernels die with the process);
 *   - sends Heartbeats so the client can tell a busy server from a dead one (VGPU_TIMEOUT);
 *   - ends the session on SIGTERM or SIGINT (an operator's way to stop one session), saying so;
 *   - with --kernel-timeout, ends a session whose oldest burst of device work has run that long
 *     without completing (sess_sched.h), telling the client CUDA_ERROR_LAUNCH_TIMEOUT. Work
 *     queued behind a long but finite kernel does not count against it; a grid that never ends
 *     does. */
#ifndef VG_SESS_WATCH_H
#define VG_SESS_WATCH_H

#include <stdint.h>

struct sess_watch_hooks {
    void *arg;
    /* Each runs on the watchdog thread. */
    int (*peer_gone)(void *arg);                   /* during a call: 1 when the client is gone */
    void (*idle_check)(void *arg);                 /* between calls (may be NULL) */
    void (*heartbeat)(void *arg);                  /* send one Heartbeat if the socket is free */
    void (*kernel_timeout)(void *arg);             /* tell the client and end the process */
    uint64_t (*last_write_ns)(void *arg);          /* when a frame last went to the client */
    uint64_t (*running_since)(void *arg);          /* the oldest burst in flight; 0: none */
    void (*stop)(void *arg, int signum);           /* SIGTERM/SIGINT arrived: end the process */
};

/* The signals the watchdog takes (SIGTERM, SIGINT): block them in every thread of the session
 * process, from before the driver starts its threads, so that they reach the watchdog only. */
void sess_watch_block_signals(void);

/* Starts the thread. busy_since_ns points at the main thread's "inside a call since" clock
 * (CLOCK_MONOTONIC ns, 0 when between calls). Returns 0, or -1 when it cannot start. */
int sess_watch_start(const uint64_t *busy_since_ns, unsigned heartbeat_ms, unsigned kernel_timeout_ms,
                     const struct sess_watch_hooks *hooks);

uint64_t vg_now_ns(void);

#endif
