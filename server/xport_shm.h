/* gpu-server's end of the shared-memory transport (protocol/shm.h has the layout and rings):
 * the region a session process offers its client, and the client's pinned host memory it maps.
 * Session process, main thread only. */
#ifndef VG_XPORT_SHM_H
#define VG_XPORT_SHM_H

#include <stdint.h>

#include "xport.h"

/* Creates a sealed region with rings of req_size and rep_size bytes, maps it, and makes the
 * server end of the transport over it with `sock` (dup'ed: the caller keeps its own). The
 * memfd to hand the client is *memfd (the caller sends and closes it), its size *size.
 * NULL with *why on failure. */
struct vg_xport *vg_srv_shm_offer(int sock, uint64_t req_size, uint64_t rep_size, int *memfd,
                                  uint64_t *size, const char **why);

/* The client's pinned memory regions: ids carry a generation, so a stale or made-up id finds
 * nothing. Bounded in number and in total bytes mapped. */
struct vg_regions;

struct vg_regions *vg_regions_new(void);
/* Maps size bytes of the memfd fd (checked: sealed against shrinking, large enough); takes fd
 * in every case. 0 and *id, *base; or a negative errno with *why. */
int vg_regions_map(struct vg_regions *t, int fd, uint64_t size, uint64_t *id, void **base, const char **why);
/* The mapping of region id and its size, NULL for an unknown id. */
void *vg_regions_get(const struct vg_regions *t, uint64_t id, uint64_t *size);
/* Where [offset, offset + length) of region id lies, NULL when it is not all inside the region. */
void *vg_regions_ptr(const struct vg_regions *t, uint64_t id, uint64_t offset, uint64_t length);
/* Unmaps region id: 0, or -ENOENT for an unknown id. */
int vg_regions_unmap(struct vg_regions *t, uint64_t id);

#endif
