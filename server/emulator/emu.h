/* emu: the emulated GPU's driver internals, shared by the files of server/emulator/.
 *
 * Object model. Every handle the driver gives out (context, stream, event, module, function,
 * library, kernel) is a heap object registered in one live-object set (emu_obj_*). A handle from a
 * caller is looked up there before it is dereferenced, so NULL, freed and garbage handles give
 * clean errors instead of crashes.
 *
 * Execution. Each context owns one worker thread that runs a FIFO of operations (launches,
 * async copies, memsets, event records, stream waits, host functions). Every stream of the context
 * feeds that one queue, so work is in order within a stream, the legacy NULL stream is ordered
 * with everything, and all of it is asynchronous to the host. Streams are therefore serialized
 * with each other (a legal schedule for correct CUDA programs; a kernel that spins waiting for
 * another stream's kernel would hang).
 *
 * Memory. Device allocations live at device addresses (EMU_DEVICE_BASE + ordinal * EMU_DEVICE_SPAN
 * upward, never reused) backed by host memory; pinned and registered host memory is recorded in the
 * same table at its host address (unified addressing). The table is sorted and guarded by a
 * rwlock; kernel accesses and copies resolve addresses through emu_mem_translate. */
#ifndef VG_EMU_H
#define VG_EMU_H

#include <cuda.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ptx.h"

#define EMU_DEVICE_BASE 0x700000000000ull
#define EMU_DEVICE_SPAN 0x10000000000ull /* 1 TiB of device address space per device */
#define EMU_MAX_DEVICES 16
#define EMU_SHARED_PER_BLOCK (48 * 1024)
#define EMU_SHARED_PER_BLOCK_OPTIN (64 * 1024)

enum emu_kind {
    EMU_OBJ_CTX = 1,
    EMU_OBJ_STREAM,
    EMU_OBJ_EVENT,
    EMU_OBJ_MODULE,
    EMU_OBJ_FUNC,
    EMU_OBJ_LIBRARY,
    EMU_OBJ_KERNEL,
};

/* ---- live-object set (emu_core.c) ---- */
int emu_obj_add(const void *obj, int kind);   /* 0, or -1 when out of memory */
void emu_obj_del(const void *obj);
int emu_obj_is(const void *obj, int kind);    /* 1 when obj is live and of this kind */
int emu_obj_kind(const void *obj);            /* its emu_kind when live, else 0 */

/* ---- devices (emu_core.c) ---- */
typedef struct emu_ctx emu_ctx;

typedef struct emu_device {
    int ordinal;                   /* as this process numbers it */
    int physical;                  /* the host's device it is (CUDA_VISIBLE_DEVICES renumbers) */
    size_t total_mem;
    _Atomic size_t used_mem;
    pthread_mutex_t primary_lock;  /* guards the primary_* fields */
    emu_ctx *primary;              /* allocated at first retain; the handle stays stable */
    unsigned primary_refs;
    unsigned primary_flags;
} emu_device;

/* CUDA_ERROR_NOT_INITIALIZED until cuInit succeeded. */
CUresult emu_check_init(void);
emu_device *emu_device_at(CUdevice ordinal); /* NULL when out of range */
int emu_device_count(void);
unsigned emu_workers(void);                  /* threads per launch = multiprocessor count */

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
};

struct emu_stream {
    emu_ctx *ctx;
    unsigned flags;
    int priority;
    unsigned long long id;
    uint64_t last_seq;             /* guarded by ctx->qlock */
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
} emu_event;

enum emu_op_kind { EMU_OP_LAUNCH, EMU_OP_COPY, EMU_OP_MEMSET, EMU_OP_RECORD, EMU_OP_WAIT,
                   EMU_OP_HOSTFN };

struct emu_op {
    emu_op *next;
    int kind;
    uint64_t seq;
    emu_stream *stream;            /* NULL for the legacy stream */
    union {
        struct {
            ptx_launch launch;     /* launch.params points into this op's own allocation */
            struct emu_func *func;
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
/* Waits until every op queued so far has run; returns the sticky error or CUDA_SUCCESS. */
CUresult emu_ctx_drain(emu_ctx *ctx);
/* Caller holds ctx->qlock: waits until op number seq has run (or, with until_stopped, until the
 * worker is gone). */
void emu_ctx_wait_seq(emu_ctx *ctx, uint64_t seq, int until_stopped);
void emu_ctx_set_sticky(emu_ctx *ctx, CUresult err);

/* ---- memory (emu_mem.c) ---- */
/* The host pointer backing [addr, addr+len) when that range lies within one live allocation
 * (device or pinned/registered host), else NULL. Safe from any thread. */
void *emu_mem_translate(uint64_t addr, size_t len);
/* 1 when addr falls inside a device (not host) allocation. */
int emu_mem_is_device(uint64_t addr);
/* Allocates size bytes of device memory for ctx; 0 or a CUresult. A module's variables are
 * allocated with module set: cuMemFree refuses them, and only emu_mem_free_addr(addr, 1) (the
 * module's unload) releases them. */
CUresult emu_mem_alloc(emu_ctx *ctx, size_t size, int module, uint64_t *addr);
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
CUresult emu_mem_run_memset(const emu_op *op);
extern const ptx_memory emu_ptx_memory;

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

#endif
