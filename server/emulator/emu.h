/* emu: the emulated GPU's driver internals, shared by the files of server/emulator/.
 *
 * Object model. Every handle the driver gives out (context, stream, event, module, function,
 * library, kernel, graph, graph node and exec, user object, pool, VMM handle, array, mipmapped
 * array, link state) is a heap object registered in one live-object set (emu_obj_*). A handle from
 * a caller is looked up there before it is dereferenced, so NULL, freed and garbage handles give
 * clean errors instead of crashes. Texture and surface objects are 64-bit slot-and-generation
 * handles of their own table (emu_tex.c).
 *
 * Files: emu_core (init, devices), emu_ctx (contexts, queue, streams, events, peers, profiler),
 * emu_mem (the allocation table, copies, memsets, pinned memory, pointer attributes), emu_shm
 * (capacity shared between processes), emu_printf (printf FIFO), emu_module (modules, libraries,
 * launches, occupancy), emu_graph (graphs, capture), emu_pool (stream-ordered allocation),
 * emu_managed, emu_vmm, emu_array (arrays, 2D/3D copies), emu_tex + emu_sample (textures),
 * emu_link (JIT linker), emu_ptds (per-thread default stream entry points).
 *
 * Execution. Each context owns one worker thread that runs a FIFO of operations (launches,
 * async copies, memsets, event records, stream waits, host functions). Every stream of the context
 * feeds that one queue, so work is in order within a stream, the legacy NULL stream is ordered
 * with everything, and all of it is asynchronous to the host. Streams are therefore serialized
 * with each other (a legal schedule for correct CUDA programs; a kernel that spins waiting for
 * another stream's kernel would hang).
 *
 * Memory. Device allocations live at device addresses (EMU_DEVICE_BASE + ordinal * EMU_DEVICE_SPAN
 * upward) backed by host memory; pinned and registered host memory is recorded in the same table
 * at its host address (unified addressing). The table is sorted and guarded by a rwlock; kernel
 * accesses, memsets and copies resolve addresses through emu_mem_translate, which takes the
 * context the access is made from: each context has its own address space, as on a GPU, so a
 * kernel reaches only its own context's allocations, peers it enabled, and host memory.
 * Device memory capacity is shared by every process on the host (emu_shm.c). */
#ifndef VG_EMU_H
#define VG_EMU_H

#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "ptx.h"

#define EMU_DEVICE_BASE 0x700000000000ull
#define EMU_DEVICE_SPAN 0x10000000000ull /* 1 TiB of device address space per device */
#define EMU_MAX_DEVICES 16
#define EMU_SHARED_PER_BLOCK (48 * 1024)
#define EMU_SHARED_PER_BLOCK_OPTIN (64 * 1024)
#define EMU_MAX_PEERS 64                /* contexts one context may have peer access to */
#define EMU_PRINTF_FIFO_DEFAULT (1u << 20) /* CU_LIMIT_PRINTF_FIFO_SIZE, as NVIDIA's default */

enum emu_kind {
    EMU_OBJ_CTX = 1,
    EMU_OBJ_STREAM,
    EMU_OBJ_EVENT,
    EMU_OBJ_MODULE,
    EMU_OBJ_FUNC,
    EMU_OBJ_LIBRARY,
    EMU_OBJ_KERNEL,
    EMU_OBJ_GRAPH,
    EMU_OBJ_GRAPH_NODE,
    EMU_OBJ_GRAPH_EXEC,
    EMU_OBJ_USER_OBJECT,
    EMU_OBJ_POOL,
    EMU_OBJ_VMM_HANDLE,
    EMU_OBJ_ARRAY,
    EMU_OBJ_MIPMAP,
    EMU_OBJ_LINK,
};

/* ---- live-object set (emu_core.c) ---- */
int emu_obj_add(const void *obj, int kind);   /* 0, or -1 when out of memory */
void emu_obj_del(const void *obj);
int emu_obj_is(const void *obj, int kind);    /* 1 when obj is live and of this kind */
int emu_obj_kind(const void *obj);            /* its emu_kind when live, else 0 */
/* A caller's handle checked (after cuInit): *out is h when it is a live object of kind, else the
 * error `bad` (the one the API documents for a wrong handle of this kind). */
CUresult emu_obj_resolve(const void *h, int kind, CUresult bad, void **out);

/* ---- devices (emu_core.c) ---- */
typedef struct emu_ctx emu_ctx;

typedef struct emu_device {
    int ordinal;                   /* as this process numbers it */
    int physical;                  /* the host's device it is (CUDA_VISIBLE_DEVICES renumbers) */
    size_t total_mem;
    pthread_mutex_t primary_lock;  /* guards the primary_* fields */
    emu_ctx *primary;              /* allocated at first retain; the handle stays stable */
    unsigned primary_refs;
    unsigned primary_flags;
} emu_device;

/* CUDA_ERROR_NOT_INITIALIZED until cuInit succeeded. */
CUresult emu_check_init(void);
emu_device *emu_device_at(CUdevice ordinal); /* NULL when out of range */
/* cuInit done and ordinal a device: CUDA_SUCCESS with *out, else the error to return. */
CUresult emu_device_resolve(CUdevice ordinal, emu_device **out);
int emu_device_count(void);
unsigned emu_workers(void);                  /* threads per launch = multiprocessor count */

/* ---- device memory capacity, shared by the processes of a host (emu_shm.c) ---- */
/* Called once by cuInit: opens (or creates) the shared segment for this configuration, or keeps
 * the accounting process-local when VGPU_EMU_SHM=none or the segment is unusable. */
void emu_capacity_init(int ndevices, size_t mem_per_device);
/* The device numbers here are the host's (emu_device.physical), so that processes with
 * different CUDA_VISIBLE_DEVICES charge the same device. ndevices is the host's device count.
 * Charges bytes to device for this process: CUDA_SUCCESS, or CUDA_ERROR_OUT_OF_MEMORY when the
 * device's memory is used up across processes. Thread-safe. */
CUresult emu_capacity_reserve(int device, size_t bytes);
void emu_capacity_release(int device, size_t bytes);
/* Bytes in use on device by every live process (dead ones' usage reclaimed first). */
size_t emu_capacity_used(int device);
/* The shared segment's name ("/vgpu-emu-..."), or NULL when the accounting is process-local. */
const char *emu_capacity_segment(void);

/* ---- contexts and the work queue (emu_ctx.c) ---- */
typedef struct emu_op emu_op;
typedef struct emu_stream emu_stream;

struct emu_ctx {
    emu_device *dev;
    int is_primary;
    int alive;                     /* 0 for a released primary context */
    unsigned flags;
    unsigned long long id;
    _Atomic int sticky;            /* CUresult that poisons the context (ILLEGAL_ADDRESS...) */
    size_t limits[CU_LIMIT_MAX];
    CUfunc_cache cache_config;
    CUsharedconfig shared_config;
    /* What this context's kernels are given: translate resolves against this context's address
     * space, print appends to its printf FIFO. ctx points back here. */
    ptx_memory ptx_mem;
    /* Ids of the contexts whose allocations this one may reach (cuCtxEnablePeerAccess); 0 entries
     * are free. Ids are never reused, so a destroyed peer simply stops matching. Written by API
     * threads under emu_peer_lock, read by kernel workers: atomics, and a change that takes
     * access away bumps the translation generation (emu_mem_invalidate). */
    _Atomic unsigned long long peer_ids[EMU_MAX_PEERS];
    /* Device printf FIFO (emu_printf.c), guarded by printf_lock: printf_cap bytes allocated at
     * the first printf, holding printf_len bytes of formatted text until the next flush. */
    pthread_mutex_t printf_lock;
    char *printf_buf;
    _Atomic size_t printf_len;     /* also read without the lock: a flush with nothing to write
                                      costs no lock */
    size_t printf_cap;
    int printf_frozen;             /* a kernel printed: CU_LIMIT_PRINTF_FIFO_SIZE is fixed now */
    _Atomic size_t printf_dropped; /* bytes dropped since the last flush (logged at flush) */
    /* Device malloc heap (emu_heap.c), guarded by heap_lock: made at the first launch of a
     * kernel that can call malloc or free, CU_LIMIT_MALLOC_HEAP_SIZE bytes, fixed from then. */
    pthread_mutex_t heap_lock;
    struct emu_heap *heap;
    /* A cooperative launch's grid workspace (the address in %envreg1:%envreg2): 8 bytes of the
     * context's memory, made at its first cooperative launch and zeroed at each. Only the
     * context's worker touches it. */
    uint64_t coop_ws;

    pthread_mutex_t qlock;         /* guards the queue fields below */
    pthread_cond_t qwork;          /* signalled when an op is queued to an idle worker, or stop */
    pthread_cond_t qdone;          /* broadcast when an op completes and someone waits */
    emu_op *head, *tail;
    uint64_t submitted;            /* sequence number of the last op queued */
    /* Sequence number of the last op run. Written by the worker without qlock so that a launch
     * costs no lock round trip on the worker side. A waiter lowers wake_seq (under qlock) to the
     * op it waits for; the worker takes qlock to broadcast qdone only when it reaches wake_seq,
     * so a synchronize behind a long queue is woken once, not once per op. */
    _Atomic uint64_t completed;
    _Atomic uint64_t wake_seq;     /* UINT64_MAX when nobody waits */
    int worker_idle;               /* the worker sleeps on qwork: enqueue must signal */
    int stop;
    pthread_t worker;
    int worker_running;
    _Atomic int capturing;         /* streams of this context in stream capture (emu_graph.c) */
};

struct emu_capture;
struct emu_graph_node;

struct emu_stream {
    emu_ctx *ctx;
    unsigned flags;
    int priority;
    unsigned long long id;
    uint64_t last_seq;             /* guarded by ctx->qlock */
    /* Stream capture (emu_graph.c), guarded by emu_graph_lock: the capture this stream takes
     * part in, and the nodes its next captured work depends on. */
    struct emu_capture *capture;
    struct emu_graph_node **cap_deps;
    size_t cap_ndeps, cap_depcap;
};

typedef struct emu_event {
    emu_ctx *ctx;
    unsigned flags;
    _Atomic int refs;              /* the handle plus each queued record op */
    /* guarded by the recording context's qlock */
    emu_ctx *rec_ctx;
    uint64_t seq;                  /* 0: never recorded, which counts as complete */
    struct timespec when;
    int timed;
    /* Recorded in a capturing stream (emu_graph.c, guarded by emu_graph_lock): the capture and
     * the nodes a stream that waits on it will depend on. */
    unsigned long long cap_id;
    struct emu_graph_node **cap_deps;
    size_t cap_ndeps;
} emu_event;

/* ---- arrays and 2D/3D copies (emu_array.c) ---- */
typedef struct emu_array {
    _Atomic int refs;              /* the handle, plus texture objects and queued copies using it */
    emu_ctx *ctx;
    int destroyed;                 /* the handle was destroyed; storage lives until refs drop */
    CUDA_ARRAY3D_DESCRIPTOR desc;  /* Height/Depth 0 for 1D/2D, as created */
    unsigned elem_size;            /* bytes per element: channels times format size */
    size_t width, height, depth;   /* in elements; at least 1 each (layers or 6 faces in depth) */
    size_t row_bytes, bytes;
    unsigned char *data;           /* depth x height x row_bytes */
    struct emu_mipmap *mipmap;     /* set for a level of a mipmapped array (not a handle of its own) */
    size_t charged;                /* device capacity charged, on the host's device charge_dev */
    int charge_dev;
    struct emu_array *next_handle; /* live array handles, for context teardown (array_lock) */
} emu_array;

typedef struct emu_mipmap {
    emu_ctx *ctx;
    _Atomic int refs;
    int destroyed;
    CUDA_ARRAY3D_DESCRIPTOR desc;
    unsigned levels;
    emu_array **level;
    struct emu_mipmap *next_handle;
} emu_mipmap;

/* One side of a copy: a caller's host pointer (never trusted: read and written through
 * emu_host_*), a unified device address (resolved through the table, process-wide), or an array
 * (the op holds a reference). */
enum { EMU_SIDE_HOST, EMU_SIDE_DEVICE, EMU_SIDE_ARRAY };
typedef struct emu_copy_side {
    int kind;
    uint64_t base;
    emu_array *array;
    size_t x, y, z;                /* x in bytes */
    size_t pitch, height;          /* of a linear side: bytes per row, rows per slice */
} emu_copy_side;

typedef struct emu_copy3d {
    emu_copy_side src, dst;
    size_t width, height, depth;   /* width in bytes */
} emu_copy3d;

/* Reads a caller's CUDA_MEMCPY3D (already copied into our memory) into a copy description, taking
 * references to arrays; CUDA_ERROR_INVALID_VALUE for bad fields or handles. */
CUresult emu_copy3d_from_desc(const CUDA_MEMCPY3D *d, emu_copy3d *out);
/* Checks every row of the copy against its allocations or array, probing host rows. */
CUresult emu_copy3d_check(const emu_copy3d *c);
CUresult emu_copy3d_run(const emu_copy3d *c);
void emu_copy3d_release(emu_copy3d *c);          /* drops the array references */
void emu_copy3d_retain(const emu_copy3d *c);     /* takes another set of them (a cloned op) */
/* The inverse of emu_copy3d_from_desc, for graph memcpy nodes' getters. */
void emu_copy3d_to_desc(const emu_copy3d *c, CUDA_MEMCPY3D *d);
void emu_array_unref(emu_array *a);
/* Destroys the array and mipmapped-array handles of a context that is going away (storage that
 * texture objects or queued copies still use lives on until they let go). */
void emu_arrays_free_ctx(emu_ctx *c);
CUresult emu_array_resolve(CUarray h, emu_array **out);
CUresult emu_mipmap_resolve(CUmipmappedArray h, emu_mipmap **out);
void emu_mipmap_unref(emu_mipmap *m);
/* Bytes per component of a format, 0 when it is not emulated. */
unsigned emu_format_size(CUarray_format f);
/* Component size, kind (EMU_FMT_*) and, for formats that fix it, channel count (0 otherwise) of an
 * array format: 0, or -1 for formats the emulated GPU does not have (compressed, video). */
enum { EMU_FMT_UINT = 1, EMU_FMT_SINT, EMU_FMT_HALF, EMU_FMT_FLOAT, EMU_FMT_UNORM, EMU_FMT_SNORM };
int emu_format_info(CUarray_format f, unsigned *comp_bytes, int *kind, unsigned *channels);

enum emu_op_kind { EMU_OP_LAUNCH, EMU_OP_COPY, EMU_OP_MEMSET, EMU_OP_RECORD, EMU_OP_WAIT,
                   EMU_OP_HOSTFN, EMU_OP_COPY3D, EMU_OP_POOL_FREE };

struct emu_op {
    emu_op *next;
    int kind;
    uint32_t bytes;                /* size of the op's allocation: launches carry their parameters */
    uint64_t seq;
    emu_stream *stream;            /* NULL for the legacy stream */
    union {
        struct {
            ptx_launch launch;     /* launch.params points into this op's own allocation */
            struct emu_func *func;
            void *handle;          /* the CUfunction or CUkernel the caller launched */
        } launch;
        struct {
            uint64_t dst, src;     /* device or host addresses */
            int dst_host, src_host;
            size_t size;
        } copy;
        struct {
            uint64_t dst;
            size_t pitch, width, height; /* width in elements of elem_size bytes */
            unsigned value;
            int elem_size;
        } memset;
        struct {
            emu_event *event;
        } record;
        struct {
            emu_ctx *ctx;
            uint64_t seq;
        } wait;
        struct {
            CUhostFn fn;
            CUstreamCallback cb;
            void *user;
        } hostfn;
        emu_copy3d copy3d;
        struct {
            uint64_t addr;         /* a stream-ordered allocation going back to its pool */
        } pool_free;
    } u;
};

/* The current context of the calling thread, validated: CUDA_ERROR_INVALID_CONTEXT when there is
 * none or it was destroyed, the context's sticky error when it has one. */
CUresult emu_ctx_current(emu_ctx **out);
/* Validates a caller's context handle the same way (NULL means the current context). */
CUresult emu_ctx_resolve(CUcontext handle, emu_ctx **out);
/* Resolves a stream handle (NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD or a created stream) to
 * its context; *stream is NULL for the default streams. */
CUresult emu_stream_resolve(CUstream handle, emu_ctx **ctx, emu_stream **stream);
/* Queues op (heap, ownership passes to the queue) on ctx; it runs on the worker. */
void emu_ctx_enqueue(emu_ctx *ctx, emu_stream *stream, emu_op *op);
/* What every API call that puts work on a stream uses: queues op, or, when the stream is being
 * captured, adds it to the capture's graph. Ownership of op passes in every case (freed on
 * error). */
CUresult emu_submit(emu_ctx *ctx, emu_stream *stream, emu_op *op);
/* Frees an op and what it holds (event and array references). */
void emu_op_free(emu_op *op);
/* A copy of op (its parameters and references included), or NULL when out of memory. */
emu_op *emu_op_clone(const emu_op *op);
/* Records event e on stream s of context c (e must belong to c), or waits on it: the work a graph
 * launch queues for its event nodes, as cuEventRecord and cuStreamWaitEvent queue it. */
CUresult emu_event_record_submit(emu_event *e, emu_ctx *c, emu_stream *s);
CUresult emu_event_wait_submit(emu_event *e, emu_ctx *c, emu_stream *s);
CUresult emu_event_resolve(CUevent h, emu_event **out);
/* Every live context, drained: for memory that any context's kernels may be using. */
void emu_ctx_drain_all(void);
/* Waits until every op queued so far has run; returns the sticky error or CUDA_SUCCESS. */
CUresult emu_ctx_drain(emu_ctx *ctx);
/* Caller holds ctx->qlock: waits until op number seq has run (or, with until_stopped, until the
 * worker is gone). */
void emu_ctx_wait_seq(emu_ctx *ctx, uint64_t seq, int until_stopped);
void emu_ctx_set_sticky(emu_ctx *ctx, CUresult err);

/* ---- memory (emu_mem.c) ---- */
/* The host pointer backing [addr, addr+len) when that range lies within one live allocation that
 * ctx may reach, else NULL. ctx reaches its own allocations, host memory (pinned, registered,
 * managed), the allocations of contexts it enabled peer access to, and memory whose access was
 * granted to its device (pools, virtual memory mappings). ctx NULL means the whole process, as
 * unified-addressing copies see it. Safe from any thread; a small per-thread cache makes a
 * repeated hit cost no lock. */
void *emu_mem_translate(const emu_ctx *ctx, uint64_t addr, size_t len);
/* 1 when addr falls inside a device (not host) allocation that ctx may reach. */
int emu_mem_is_device(const emu_ctx *ctx, uint64_t addr);
/* Drops every cached translation (after an access right was taken away). */
void emu_mem_invalidate(void);
/* Allocates size bytes of device memory for ctx; 0 or a CUresult. A module's variables are
 * allocated with module set: cuMemFree refuses them, and only emu_mem_free_addr(addr, 1) (the
 * module's unload) releases them. */
CUresult emu_mem_alloc(emu_ctx *ctx, size_t size, int module, uint64_t *addr);

/* The allocation table's records, for the files that make other kinds of memory (pools, managed
 * and virtual memory). */
enum emu_alloc_kind { EMU_ALLOC_DEVICE, EMU_ALLOC_HOST, EMU_ALLOC_REGISTERED, EMU_ALLOC_MANAGED,
                      EMU_ALLOC_VMM };
#define EMU_ALL_DEVICES (~0u)
typedef struct emu_alloc {
    uint64_t addr;
    size_t size;
    void *host;            /* backing store (== addr for host kinds) */
    emu_ctx *ctx;          /* the owning context; NULL for virtual memory mappings */
    int kind;
    int module;            /* a module's variable: not for cuMemFree */
    int parked;            /* a pool's free block: its address stays reserved, nothing reaches it */
    unsigned access_devs;  /* devices whose contexts reach it besides ctx (host memory: all) */
    unsigned long long buffer_id;
    void *owner;           /* EMU_OWNER_* tagged: the pool or graph allocation it belongs to, or
                              the physical handle a mapping shows */
    size_t charged;        /* device capacity charged for it (released with it), on charge_dev */
    int charge_dev;        /* the host's device number (emu_device.physical) */
    int ordinal;           /* the device it is on, as this process numbers devices */
    unsigned flags;        /* managed: the attach flags */
} emu_alloc;
/* Owners start with one of these tags. */
enum { EMU_OWNER_POOL = 1, EMU_OWNER_GRAPH_ALLOC, EMU_OWNER_VMM };
#define EMU_MEM_KEEP 0
#define EMU_MEM_REMOVE 1
/* Device memory of size bytes on d, charged to its capacity; tmpl gives ctx, module, access_devs
 * and owner. */
CUresult emu_mem_alloc_device(emu_device *d, size_t size, const emu_alloc *tmpl, uint64_t *addr);
/* Adds a record made by the caller (mappings); CUDA_ERROR_INVALID_VALUE when it overlaps. */
CUresult emu_mem_insert(const emu_alloc *rec);
/* Snapshot of the allocation containing addr (parked ones included): 1, or 0 when none. */
int emu_mem_lookup(uint64_t addr, emu_alloc *out);
/* Calls fn on every record under the table's write lock; fn may change access_devs, parked and
 * ctx, and returns EMU_MEM_REMOVE to remove (and release) the record. fn must not call back into
 * emu_mem_*. Invalidates cached translations. */
void emu_mem_update(int (*fn)(emu_alloc *a, void *arg), void *arg);
void *emu_backing_alloc(size_t bytes);
void emu_backing_free(void *p, size_t bytes);
/* Called (outside the table's lock) when an allocation that has an owner is released for good:
 * pools and virtual memory handles keep their books (emu_pool.c dispatches on the tag). */
void emu_owner_released(const emu_alloc *a);
void emu_vmm_mapping_released(const emu_alloc *a);
/* Managed memory bookkeeping dies with its allocation (emu_managed.c). */
void emu_managed_released(const emu_alloc *a);
CUresult emu_mem_free_addr(uint64_t addr, int module);
/* Frees every allocation owned by ctx (context teardown). */
void emu_mem_free_ctx(emu_ctx *ctx);
/* Copies between caller host memory and our own buffers without trusting the host pointer:
 * CUDA_ERROR_INVALID_VALUE when it is not readable/writable. */
CUresult emu_host_read(void *dst, const void *host_src, size_t n);
CUresult emu_host_write(void *host_dst, const void *src, size_t n);
/* Reads n caller ranges (remote, len) into our buffers (local), one system call per 64 ranges;
 * CUDA_ERROR_INVALID_VALUE when any of them is not readable. */
struct emu_iov {
    void *local;
    const void *remote;
    size_t len;
};
CUresult emu_host_readv(const struct emu_iov *iov, size_t n);
/* CUDA_SUCCESS when [p, p+n) is readable (and writable with write), touching a byte per page. */
CUresult emu_host_probe(const void *p, size_t n, int write);
/* Runs a queued copy or memset (worker side). */
CUresult emu_mem_run_copy(const emu_op *op);
CUresult emu_mem_run_memset(emu_ctx *ctx, const emu_op *op);
/* The ptx_memory callbacks: ctx is the launching emu_ctx. */
void *emu_ptx_translate(void *ctx, uint64_t addr, size_t len);
void emu_ptx_print(void *ctx, const char *text, size_t len);

/* ---- device printf FIFO (emu_printf.c) ---- */
/* Writes what the context's kernels printed since the last flush to fd 1 in one write, at the
 * synchronizing points where a GPU flushes its printf FIFO. */
void emu_printf_flush(emu_ctx *ctx);
void emu_printf_init(emu_ctx *ctx);
void emu_printf_free(emu_ctx *ctx);
/* cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE): refused once a kernel of the context printed. */
CUresult emu_printf_set_size(emu_ctx *ctx, size_t bytes);

/* ---- device malloc heap (emu_heap.c) ---- */
void emu_heap_init(emu_ctx *ctx);
/* Frees the heap's memory and books (context teardown). */
void emu_heap_free(emu_ctx *ctx);
/* Makes the heap if there is none (the first launch of a kernel that uses it): CUDA_SUCCESS or
 * CUDA_ERROR_OUT_OF_MEMORY. Worker side. */
CUresult emu_heap_ensure(emu_ctx *ctx);
/* cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE): refused once the heap exists. */
CUresult emu_heap_set_size(emu_ctx *ctx, size_t bytes);
/* The ptx_memory callbacks (malloc, free in device code). */
uint64_t emu_ptx_heap_alloc(void *ctx, uint64_t size);
int emu_ptx_heap_free(void *ctx, uint64_t addr);

/* ---- modules, functions, launches (emu_module.c) ---- */
typedef struct emu_module emu_module;
typedef struct emu_func {
    emu_module *mod;
    const ptx_kernel *kernel;
    int max_dynamic_shared;
    int cache_config;
    int preferred_carveout;
} emu_func;

CUresult emu_launch_run(emu_ctx *ctx, emu_op *op);
void emu_modules_free_ctx(emu_ctx *ctx);
/* Resolves a launch handle for context c: a module's CUfunction (which must belong to c) or a
 * library's CUkernel (c's instance of its library); *is_kernel says which. */
CUresult emu_launch_func(void *handle, emu_ctx *c, emu_func **out, int *is_kernel);
/* Builds, without queueing, the op of a launch of f: checks the configuration (and, when
 * cooperative, that the whole grid can be resident), packs the parameters from kernelParams,
 * extra or a packed buffer of emu_func_param_bytes(f) bytes. */
CUresult emu_launch_build(emu_func *f, int is_kernel, void *handle, const unsigned grid[3],
                          const unsigned block[3], unsigned shared, void **kernelParams,
                          void **extra, const void *packed, int cooperative, emu_op **out);
size_t emu_func_param_bytes(const emu_func *f);
/* The parameter layout of a launch handle (CUfunction or CUkernel), NULL for anything else. */
const ptx_kernel *emu_launch_layout(void *handle);
/* Packs kernelParams or extra (as cuLaunchKernel takes them) into buf, laid out for k. */
CUresult emu_pack_params(const ptx_kernel *k, void **kernelParams, void **extra, void *buf);
/* Loads PTX text as a module of ctx (the JIT linker's product goes through here). */
CUresult emu_module_load_ptx(emu_ctx *ctx, const char *ptx, size_t len, CUmodule *out);
/* Finds the PTX of a caller's image (PTX text or a fatbin): *ptx is malloc'd when *owned. */
CUresult emu_image_ptx(const void *image, const char **ptx, size_t *len, int *owned);

/* ---- graphs and stream capture (emu_graph.c) ---- */
/* One lock for every graph, node, exec and capture: graph calls are not on any hot path. */
extern pthread_mutex_t emu_graph_lock;
#define EMU_NOT_CAPTURED ((CUresult)-1)
/* For emu_submit: when stream s of c is capturing, adds op to the capture's graph (taking it) and
 * returns its result; a legacy-stream submission while c has capturing streams fails with
 * CUDA_ERROR_STREAM_CAPTURE_IMPLICIT. Otherwise EMU_NOT_CAPTURED, and op stays the caller's. */
CUresult emu_capture_submit(emu_ctx *c, emu_stream *s, emu_op *op);
/* cuEventRecord / cuStreamWaitEvent in a capturing stream (EMU_NOT_CAPTURED when s is not). */
CUresult emu_capture_event_record(emu_event *e, emu_ctx *c, emu_stream *s, int external);
CUresult emu_capture_event_wait(emu_event *e, emu_ctx *c, emu_stream *s, int external);
/* Calls that may synchronize (cuCtxSynchronize, blocking copies, cuMemAlloc...) during a
 * capture that forbids them: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and the capture is
 * invalidated. CUDA_SUCCESS otherwise (cheap when nothing is captured). */
CUresult emu_capture_unsafe_call(void);
/* cuStreamSynchronize / cuStreamQuery of a capturing stream, cuEventQuery / cuEventSynchronize of
 * an event recorded in a capture. */
CUresult emu_capture_sync_check(emu_ctx *c, emu_stream *s);
CUresult emu_capture_event_check(emu_event *e);
void emu_capture_stream_gone(emu_stream *s);
void emu_capture_ctx_gone(emu_ctx *c);
/* Stream-ordered allocation inside a capture: a memory allocation node (emu_pool.c calls it). */
CUresult emu_capture_mem_alloc(emu_ctx *c, emu_stream *s, size_t size, void *pool, uint64_t *addr);

/* ---- stream-ordered allocation and pools (emu_pool.c) ---- */
/* Returns a pool's block to it now (cuMemFree, or a queued cuMemFreeAsync reaching the head of
 * its stream). */
CUresult emu_pool_free_now(uint64_t addr);
/* At synchronizing calls: pools give back free memory above their release threshold. */
void emu_pools_sync(emu_device *dev);
/* Allocates from pool (a CUmemoryPool) for context c: used by capture's allocation nodes too. */
CUresult emu_pool_alloc(void *pool, emu_ctx *c, size_t size, uint64_t *addr);
void *emu_pool_current(emu_device *dev);

/* ---- texture and surface objects (emu_tex.c) ---- */
/* Sets the texture and surface callbacks of a context's ptx_memory: the PTX interpreter's tex,
 * tld4, txq, suld, sust and suq instructions call them (see ptx.h for their contracts; the
 * sampling itself is emu_sample.h's emu_tex_sample and emu_surf_locate). */
void emu_tex_install(ptx_memory *m);
/* Destroys the texture and surface objects of a context that is going away. */
void emu_tex_free_ctx(emu_ctx *c);

/* ---- unsupported functions ---- */
/* Returns CUDA_ERROR_NOT_SUPPORTED after logging "<what> is not supported" once per call site. */
#define EMU_UNSUPPORTED(what)                                                                    \
    __extension__({                                                                              \
        static int emu_once_;                                                                    \
        (CUresult)vg_unsupported(what, &emu_once_);                                              \
    })

#endif
