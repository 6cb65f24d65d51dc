/* sess_sched: a session process's part in the device scheduler (sched.h). Its main thread
 * groups device work into bursts (sess_sched_work, sess_sched_close), asking the board for the
 * device before each burst; a tracker thread waits for each burst's end event, measures its
 * device time between its two events, and charges it (vg_sched_release), which lets waiting
 * sessions in. The tracker's oldest burst is also what the kernel timeout watches. */
#ifndef VG_SESS_SCHED_H
#define VG_SESS_SCHED_H

#include <cuda.h>
#include <stdint.h>

#include "board.h"
#include "driver.h"

struct sess_sched;

/* devices[dev] is the server's ordinal of the session's device dev (ndevices 0: the same). NULL
 * when the tracker thread cannot start. */
struct sess_sched *sess_sched_start(const struct vg_drv *drv, struct vg_board *b, int slot, uint32_t tenant,
                                    const int *devices, int ndevices);

/* Main thread, before a call that is device work on stream of ctx (current on this thread once
 * the call runs), on the session's device dev; kernel: a launch (else a copy or memset). Adds it
 * to the open burst, or closes that one and opens a new burst (for kernels, waiting for the
 * device's permit). */
void sess_sched_work(struct sess_sched *s, CUcontext ctx, CUstream stream, int dev, int kernel);

/* Main thread: closes the open burst; before the session waits for its client, or for the
 * device in a synchronizing call. */
void sess_sched_close(struct sess_sched *s);

/* Main thread: 1 when a burst is open (s may be NULL). */
int sess_sched_open(const struct sess_sched *s);

/* Main thread, before a call that may destroy a context: closes the open burst and waits until
 * every burst in flight has completed (their events die with the context). */
void sess_sched_drain(struct sess_sched *s);

/* Any thread: since when (CLOCK_MONOTONIC ns) the oldest burst in flight has run without
 * completing; 0 when none is in flight. */
uint64_t sess_sched_running_since(struct sess_sched *s);

#endif
