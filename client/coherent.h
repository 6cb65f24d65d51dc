/* vg_coh: memory that the program's host code and the server's kernels both use: managed memory
 * (cuMemAllocManaged, managed globals) and mapped page-locked memory (cuMemHostAlloc and
 * cuMemHostRegister with DEVICEMAP).
 *
 * The server holds the device copy; the stub keeps a host copy (a "shadow": for managed and
 * mapped allocations at the very address of the device copy, so that one pointer serves both
 * sides; for registered memory the caller's own pages, with the device copy elsewhere). The
 * two are kept coherent at defined points, page by page:
 *   - host writes reach the device before the next call that can start device work (any
 *     pipelined or synchronizing call: launches, copies, memsets, graph launches, syncs);
 *   - after such a call, the device may have written anything: the host copy is invalid until
 *     the host touches it, which waits for the device work issued before (a synchronize of the
 *     memory's context) and fetches the touched 64 KiB from the server.
 * Pages are protected (mprotect) to notice touches: PROT_NONE while invalid, read-only while
 * clean, read-write once written. What a program may rely on: the semantics of a device without
 * concurrent managed access (CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 0, which the stub
 * reports): host code sees the results of device work it issued once it touches the memory (it
 * need not synchronize first), and device work sees host writes made before the call that
 * starts it. Not supported: host and device writing the same memory at the same time (a flag a
 * running kernel polls), and system calls that read or write invalid managed memory directly
 * (read(2) into it fails with EFAULT; touch it, or copy through ordinary memory, first). */
#ifndef VG_COHERENT_H
#define VG_COHERENT_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

enum vg_coh_kind {
    VG_COH_MANAGED = 1, /* cuMemAllocManaged: the stub allocates and frees it */
    VG_COH_GLOBAL,      /* a module's managed variable: the module owns it */
    VG_COH_MAPPED,      /* cuMemHostAlloc with DEVICEMAP: page-locked memory the device maps */
    VG_COH_REGISTERED,  /* cuMemHostRegister with DEVICEMAP: the caller's pages, a device mirror */
};

/* Allocates `bytes` on the server (cuMemAllocManaged there) and a shadow at the same address.
 * *p gets the address. */
CUresult vg_coh_alloc(size_t bytes, unsigned flags, enum vg_coh_kind kind, CUdeviceptr *p);
/* Adds a shadow for server memory the client did not allocate (a managed global), filled from it. */
CUresult vg_coh_adopt(CUdeviceptr p, size_t bytes);
/* Registers the caller's memory [host, +bytes) with a device mirror; *dev gets its address. */
CUresult vg_coh_register(void *host, size_t bytes, CUdeviceptr *dev);
/* Forgets the range starting at host (or device) address p; frees the server memory when the
 * stub allocated it (managed, mapped, registered mirror). 0 when there was one, -1 otherwise. */
int vg_coh_release(uintptr_t p, CUresult *rc);
/* The range holding host address p: its kind, device address of p, and range start and size. */
int vg_coh_find(uintptr_t p, enum vg_coh_kind *kind, CUdeviceptr *dev, uintptr_t *base, size_t *size);

/* Called by every call before it takes the connection (conn.c): when device work may start
 * (device_work), host writes go to the server and the host copies become invalid; host buffers
 * the call reads (in, in_len) or writes (out, out_len) are made valid first and left so. Does
 * nothing, at the cost of one atomic load, while no coherent memory exists. */
void vg_coh_enter(int device_work, const void *in, uint64_t in_len, void *out, uint64_t out_len);

/* In a forked child: the ranges become plain memory (the session they belonged to is the
 * parent's). */
void vg_coh_forget(void);

#endif
