/* sess_copy: the host side of a session's copies between host and device memory.
 *
 * vg_sess_execute checks a host-to-device or device-to-host copy call and leaves its bytes to the
 * session process (struct vg_copy in vg_result): they may lie in the staging buffer, in the
 * transport's shared ring (used in place, piece by piece as the client writes them), in the
 * client's pinned memory, or be read back in pieces straight into the ring or the socket. The
 * session process moves them with vg_copy_part and folds the outcome into the call's result with
 * vg_sess_copy_done (session.h).
 *
 * Host memory the session process owns or maps for such copies (the rings, its copy buffer, the
 * client's pinned regions) is registered with the driver (cuMemHostRegister): on a GPU a copy
 * from or to it is then a DMA instead of a staged copy of pageable memory (on the emulated GPU a
 * plain memmove instead of a checked copy of untrusted host memory). Registered memory is
 * reachable by device code, so memory whose contents the server trusts once checked (the staging
 * buffer that holds frames) is never registered.
 *
 * Session process, main thread only. */
#ifndef VG_SESS_COPY_H
#define VG_SESS_COPY_H

#include <stddef.h>

#include "driver.h"
#include "session.h"

struct vg_hostbufs;

struct vg_hostbufs *vg_hostbufs_new(const struct vg_drv *drv);

/* Flags of vg_hostbufs_add. */
#define VG_HOSTBUF_READ_ONLY 0x1u /* the device only reads it (a ring the client writes) */
#define VG_HOSTBUF_NOW 0x2u       /* register it now, in the current context, or never: memory
                                   * the client may write at any time later, where the emulated
                                   * driver's check of each page (read, write back) must not run */

/* Adds [p, p + n) as host memory for copies, registered with the driver at its first copy (or
 * now, see VG_HOSTBUF_NOW). 0 or -ENOMEM. */
int vg_hostbufs_add(struct vg_hostbufs *hb, void *p, size_t n, unsigned flags);
/* Forgets the memory added at p (unregistering it) before it is unmapped. */
void vg_hostbufs_remove(struct vg_hostbufs *hb, void *p);

/* Copies bytes [off, off + n) of the pending copy c between the device and host[0..n), on the
 * copy's stream (waiting for it) or the legacy stream, in the current context. */
CUresult vg_copy_part(struct vg_hostbufs *hb, const struct vg_copy *c, uint64_t off, void *host, size_t n);

/* The same, started without waiting, so that the device copies one piece while the transport
 * moves the next (a DMA beside the socket's copy on a GPU; a driver thread's memmove beside the
 * session's thread on the emulated one). Only host memory registered with the driver qualifies:
 * returns 1 when the copy was started (its CUresult in *rc) and vg_copy_wait must come before
 * host[0..n) is reused; 0 when it was not (run vg_copy_part instead). One started copy at a time. */
int vg_copy_start(struct vg_hostbufs *hb, const struct vg_copy *c, uint64_t off, void *host, size_t n,
                  CUresult *rc);
CUresult vg_copy_wait(struct vg_hostbufs *hb, const struct vg_copy *c);

#endif
