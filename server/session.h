/* vg_sess: one client's view of the GPU — its handle table and the execution of its calls.
 *
 * Everything a client creates (contexts, modules, functions, libraries, kernels, streams, events,
 * device memory) is recorded here. The client sees session-local ids, never server pointers; every
 * id and device pointer it sends is checked against this table before it reaches the driver.
 *
 * Threading: a session's calls run one at a time, in order, on a device worker thread
 * (vg_sess_execute, vg_sess_destroy_all); the loop thread hands the session from one call to the
 * next through the worker queues, which order the memory accesses. No lock is needed inside. */
#ifndef VG_SESSION_H
#define VG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "frame.h"

struct vg_sess;

/* A copy between host and device memory that vg_sess_execute checked (the device range, the
 * stream) and left to its caller, who moves the bytes between the device and wherever they lie
 * (sess_copy.h): dir is VG_COPY_NONE when the call left none. */
enum vg_copy_dir { VG_COPY_NONE = 0, VG_COPY_HTOD, VG_COPY_DTOH };
struct vg_copy {
    enum vg_copy_dir dir;
    CUdeviceptr dev;     /* the device side's first byte */
    uint64_t len;
    CUstream stream;
    int async;           /* ordered on stream (then waited for), not on the legacy stream */
};

/* The outcome of one call. outs points at inline storage unless more is needed (then malloc'd);
 * bulk (reply payload) is malloc'd. Release with vg_result_clear. */
struct vg_result {
    int32_t result;
    uint64_t *outs;
    size_t n_outs;
    uint64_t outs_inline[8];
    char str[256];
    uint8_t *bulk;
    uint64_t bulk_len;
    uint64_t bulk_cap;   /* bytes allocated at bulk */
    struct vg_copy copy; /* a host-device copy for the caller to run (see above) */
};

void vg_result_init(struct vg_result *r);
void vg_result_clear(struct vg_result *r);

/* A session for one connection; peer names the client in logs; max_bulk bounds the payload of
 * one reply (a device-to-host copy). NULL on ENOMEM. */
struct vg_sess *vg_sess_new(const struct vg_drv *drv, uint64_t id, const char *peer, uint64_t max_bulk);

/* Tenant accounting, supplied by the session process (sess_proc.c); without it nothing is
 * charged and the driver's figures are shown as they are. dev is a device as the session
 * numbers it. Each allocation path charges before the driver allocates and refunds exactly
 * once after the memory is freed (by the client, with its module or context, or when the
 * driver's allocation failed); the session process's end refunds the rest on the board. */
struct vg_sess_acct {
    void *arg;
    int (*charge)(void *arg, int dev, uint64_t bytes);      /* 1 granted, 0 over the limit */
    void (*refund)(void *arg, int dev, uint64_t bytes);
    /* The tenant's view of a device: may lower the driver's free and total bytes. */
    void (*view)(void *arg, int dev, size_t *free_bytes, size_t *total_bytes);
};
void vg_sess_set_acct(struct vg_sess *s, const struct vg_sess_acct *acct);

/* Zero bytes the loop places after every bulk payload: PTX images are then terminated, and a
 * module image's headers can be read (to size it) without running off the buffer. */
#define VG_BULK_PAD 64

/* Runs one decoded call (bulk[0..bulk_len) is the frame's bulk, followed by VG_BULK_PAD zero
 * bytes; the session may read it until the call returns).
 * no_reply: the client did not ask for a reply (pipelined), so a failure is kept and reported by
 * the next VG_SYNCING call. Fills *res. Worker thread only.
 * Host-to-device and device-to-host copies are only checked: res->copy describes the copy (only
 * bulk_len matters then, and bulk may be NULL: the bytes may still be on their way), which the
 * caller runs (vg_copy_part) in the context this left current, whatever res->result says (a
 * failure reported there may be an earlier pipelined call's), then reports with
 * vg_sess_copy_done. */
void vg_sess_execute(struct vg_sess *s, const Vgpu__Call *call, const uint8_t *bulk,
                     uint64_t bulk_len, int no_reply, struct vg_result *res);

/* Folds the outcome rc of running res->copy into the call's result as vg_sess_execute would
 * have: a failure of a pipelined call (no_reply) is kept for the next synchronizing call. */
void vg_sess_copy_done(struct vg_sess *s, struct vg_result *res, CUresult rc, int no_reply);

/* Makes the context handle ctx (0: none) current, as a call naming it would. */
CUresult vg_sess_use_ctx(struct vg_sess *s, uint64_t ctx);

/* When call c is device work (a launch, copy or memset) that would run with valid arguments:
 * 0, its driver context and stream and its device (as the session numbers devices); -1
 * otherwise (the call then fails or does no device work). For the device scheduler, before the
 * call runs. */
int vg_sess_work_target(const struct vg_sess *s, const Vgpu__Call *c, CUcontext *ctx, CUstream *stream, int *device);
/* Whether device work of this call is kernels (launches, graph launches) rather than copies or
 * memsets (protocol/cuda.calls, work=). */
int vg_sess_work_is_kernel(unsigned call);

/* Device memory the session has charged on device dev (what sess_mem_charge granted and was
 * not refunded): the tenant's ledger gets the same bytes. */
uint64_t vg_sess_mem_charged(const struct vg_sess *s, int dev);

/* Device allocations the session holds (cuMemAlloc'd, not module globals). Any thread: a
 * snapshot for the log line that says what a session's end released. */
unsigned vg_sess_owned_allocations(const struct vg_sess *s);

/* The device the session's last call ran on, to pick the worker for its next call. */
int vg_sess_device(const struct vg_sess *s);

/* Destroys everything the session owns in the driver (streams, events, modules, libraries, memory,
 * contexts, primary context references). Worker thread; idempotent. */
void vg_sess_destroy_all(struct vg_sess *s);

/* Frees the session itself (after vg_sess_destroy_all). */
void vg_sess_free(struct vg_sess *s);

#endif
