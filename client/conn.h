/* vg_conn: the stub's connection to gpu-server, over the transport VGPU_SERVER names
 * (protocol/xport.h: host:port is TCP, unix:PATH shared memory beside a Unix socket).
 *
 * One connection (one server session) per process: every handle the server gives out is local to
 * the session, and all threads of a CUDA program share their contexts, memory and modules, so they
 * must share the session. Calls from several threads are serialized by one lock held for a whole
 * request/reply exchange; request ids check that each reply answers its request. A forked child
 * notices the pid change and opens its own connection (the parent's session is not the child's).
 *
 * Errors are CUresult at this edge: an unreachable server is CUDA_ERROR_NO_DEVICE, a lost
 * connection CUDA_ERROR_DEVICE_UNAVAILABLE. */
#ifndef VG_CONN_H
#define VG_CONN_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

/* Connects and does the handshake if this process has no live connection yet. */
CUresult vg_conn_connect(void);

/* True once cuInit has connected successfully in this process (or its parent). */
int vg_conn_initialized(void);

/* The largest bulk payload one frame may carry (fixed after the handshake). */
uint64_t vg_conn_max_bulk(void);

/* One driver call. ctx is the caller's current context handle (0 = none). args[0..nargs) are the
 * call's scalar arguments, name an optional string, bulk[0..bulk_len) its payload.
 * For VG_PIPELINED calls nothing is waited for and CUDA_SUCCESS is returned once sent.
 * Otherwise the reply's outs are copied to outs[0..nouts) (missing ones are 0), its string to
 * str[0..str_size), and its bulk, which must be exactly rbulk_len bytes, to rbulk. */
struct vg_rpc {
    unsigned call;
    uint64_t ctx;
    const uint64_t *args;
    size_t nargs;
    const char *name;
    const void *bulk;
    uint64_t bulk_len;
    uint64_t *outs;
    size_t nouts;
    char *str;
    size_t str_size;
    void *rbulk;
    uint64_t rbulk_len;
    /* Where the reply's outs go when nouts is not known in advance (FUNC_GET_PARAM_LAYOUT):
     * a malloc'd array the caller frees, and its length. */
    uint64_t **outs_alloc;
    size_t *nouts_alloc;
    /* Where the reply's bulk goes when its length is not known in advance (a name): a malloc'd
     * buffer the caller frees (NULL when the reply has none), and its length. */
    void **rbulk_alloc;
    uint64_t *rbulk_alloc_len;
    /* Wait for the reply even if the call is VG_PIPELINED (its result is needed now). */
    int want_reply;
};

CUresult vg_conn_call(const struct vg_rpc *r);

/* Pinned host memory shared with the server (pinned.h), shared-memory transports only. */
/* True when this process's connection is over shared memory (connecting if need be). */
int vg_conn_shares_memory(void);
/* Shares the sealed memfd fd (size bytes) with the server: CUDA_SUCCESS with the region's id and
 * the connection's epoch; CUDA_ERROR_NOT_SUPPORTED without shared memory. Closes fd. */
CUresult vg_conn_region_map(int fd, uint64_t size, uint64_t *id, uint64_t *epoch);
/* The server forgets region id (after every call queued before). Nothing for a region of another
 * connection (epoch). */
void vg_conn_region_unmap(uint64_t id, uint64_t epoch);

#endif
