/* vg_pinned: page-locked host memory shared with gpu-server (shared-memory transport only).
 *
 * cuMemAllocHost / cuMemHostAlloc in a session over shared memory return memory of a memfd that
 * gpu-server maps too (protocol/shm.h): a copy between it and the device is then one copy by the
 * server (a DMA from memory the server registered, on a GPU), named by a reference instead of
 * carried in the frame (frame.h, VG_FLAG_BULK_REF). Elsewhere (TCP, or the server offered no
 * shared memory) the stub's page-locked memory stays plain host memory.
 *
 * Each allocation remembers the connection it was shared with (an epoch, see conn.h): in a
 * forked child it is still the child's memory, but no longer shared with the child's session,
 * and copies from it go by value. Any thread; pinned_lock guards the table. */
#ifndef VG_PINNED_H
#define VG_PINNED_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* Allocates bytes of shared pinned memory: CUDA_SUCCESS with *p; CUDA_ERROR_NOT_SUPPORTED when
 * the connection has no shared memory or the server will not hold more (the caller allocates
 * plain memory instead); another error when the connection failed. */
CUresult vg_pinned_alloc(size_t bytes, void **p);

/* Frees p if vg_pinned_alloc gave it out: 1; 0 when p is not shared pinned memory. */
int vg_pinned_free(void *p);

/* When [p, p + len) lies in one allocation shared with the connection of this epoch: 1 and the
 * reference to it; else 0. */
int vg_pinned_ref(const void *p, uint64_t len, uint64_t epoch, struct vg_bulk_ref *ref);

/* conn.c's fork handlers take and release the table's lock with its own. */
void vg_pinned_atfork_prepare(void);
void vg_pinned_atfork_release(void);

#endif
