/* Internals of a session shared by session.c (the handle table, device memory, accounting,
 * lifetime), dispatch.c (the hand-written handlers) and the generated handlers (cuapi_server.c,
 * from protocol/cuda.calls). Worker thread only, like everything in vg_sess. */
#ifndef VG_SESSION_PRIV_H
#define VG_SESSION_PRIV_H

#include "session.h"
#include "cuapi_handles.h" /* enum htype: H_CTX, H_STREAM, ... one per 'handle' line of the list */
#include "vg_buf.h"
#include "vg_gen.h"

/* Limits on what one client may ask for, so a hostile client cannot make the server allocate
 * unbounded memory for bookkeeping. */
#define SESS_MAX_HANDLES (1u << 20)
#define SESS_MAX_RANGES (1u << 20)
#define SESS_MAX_PARAMS 4096
#define SESS_MAX_DEVICES 64

/* A client-visible handle: type in bits 56..63, a generation in 32..55 (so a stale id of a reused
 * slot is rejected), slot index + 1 in 0..31. Never 0, 1 or 2 (the special stream values).
 * Identity kinds (texture and surface objects) are seen by the client as the driver's value. */
struct handle {
    uint8_t type;
    uint8_t live;
    uint8_t primary;      /* H_CTX: this session's primary context of `device` */
    uint8_t owned;        /* created by the session's call (destroyed at its end) */
    uint32_t gen;
    void *real;
    int device;           /* H_CTX: its device */
    int primary_refs;     /* H_CTX primary: cuDevicePrimaryCtxRetain calls not yet released */
    uint32_t ctx;         /* slot + 1 of the context it was created in (0: none) */
    uint32_t parent;      /* slot + 1 of the object it was obtained from (0: none) */
    uint32_t parent_gen;  /* the parent slot's generation then (a reused slot is another object) */
    uint32_t refs;        /* references the session holds (cuMemRetainAllocationHandle adds) */
    int charge_dev;       /* device memory this object holds, charged to the session */
    uint64_t charged;
    int nparams;          /* H_FUNC/H_KERN: -1 until the layout is known */
    uint32_t *param_off, *param_size;
    uint32_t param_bytes;
    void *extra;          /* malloc'd state a kind keeps (H_LINK: its log buffers); freed with it */
};

/* Device memory the session may touch. Kept sorted by base and never overlapping, so a lookup is
 * a binary search. */
enum range_kind {
    R_ALLOC = 1,   /* an allocation the session made (cuMemAlloc*, pools, managed): it frees it */
    R_GLOBAL,      /* driver-owned memory (a module or library global) */
    R_MAPPED,      /* VMM: a mapping of a memory handle into a reservation */
};

struct range {
    CUdeviceptr base;
    uint64_t size;
    uint32_t ctx;         /* slot + 1 of its context (0: none) */
    uint8_t kind;
    uint8_t hint_only;    /* R_ALLOC: managed memory backed by device memory (hints are no-ops) */
    int charge_dev;
    uint64_t charged;     /* bytes charged for it (refunded once when it goes) */
};

/* A reserved virtual address range (cuMemAddressReserve): not memory until mapped. */
struct va {
    CUdeviceptr base;
    uint64_t size;
    uint32_t ctx;
};

struct vg_sess {
    const struct vg_drv *drv;
    uint64_t id;
    char peer[128];
    struct handle *h;
    uint32_t nh, caph;
    uint32_t free_head;   /* free slot list via ctx field (slot + 1), 0 = none */
    uint32_t *hidx;       /* open-addressing index (type, real) -> slot + 1; 0 empty, ~0 deleted */
    uint32_t hidx_cap, hidx_used;
    struct range *r;
    uint32_t nr, capr;
    struct va *va;
    uint32_t nva, capva;
    CUresult deferred;    /* first failure of a pipelined call not yet reported */
    unsigned primary_flags[SESS_MAX_DEVICES]; /* cuDevicePrimaryCtxSetFlags, per device */
    uint64_t mem_used[SESS_MAX_DEVICES];      /* device memory charged, per device */
    uint32_t cur_ctx;     /* slot + 1 of the context current for the call being run */
    int device;
    int destroyed;
    uint64_t max_bulk;    /* largest reply payload the connection may carry */
    unsigned owned_allocs;   /* R_ALLOC ranges (atomic: read by the watchdog's log line) */
    struct vg_sess_acct acct;  /* the tenant's ledger (session.h); none: nothing is refused */
};

/* One decoded call, as the handlers see it. */
struct vg_in {
    const uint64_t *args;
    size_t nargs;
    const char *name;     /* Call.name ("" when absent) */
    const uint8_t *bulk;  /* followed by VG_BULK_PAD zero bytes */
    uint64_t bulk_len;
    unsigned call;
};

typedef CUresult (*vg_handler_fn)(struct vg_sess *s, const struct vg_in *in, struct vg_result *res);
/* The handler of every call id (generated, cuapi_server.c). */
extern const vg_handler_fn vg_handlers[];
/* Device work (work= in the list, generated): VG_WORK_* per call id, and the argument that names
 * its stream (-1: the legacy stream). */
enum { VG_WORK_NONE, VG_WORK_COPY, VG_WORK_KERNEL };
extern const unsigned char vg_work_kind[];
extern const signed char vg_work_stream[];

/* A hand-written handler: VG_SERVER_CALL(cuFoo) { ... } in server/; the generator checks that
 * every call the list marks server or manual has one. */
#define VG_SERVER_CALL(name)                                                                     \
    CUresult vg_srv_##name(struct vg_sess *s, const struct vg_in *in, __attribute__((unused)) struct vg_result *res)

/* In hand-written handlers: the driver lacks fn (CUDA_ERROR_NOT_SUPPORTED); the call does not
 * have exactly n arguments (CUDA_ERROR_INVALID_VALUE). */
#define NEED(fn)                                \
    do {                                        \
        if (!s->drv->fn)                        \
            return CUDA_ERROR_NOT_SUPPORTED;    \
    } while (0)
#define ARGS(n)                                 \
    do {                                        \
        if (in->nargs != (n))                   \
            return CUDA_ERROR_INVALID_VALUE;    \
    } while (0)

/* ---- scratch memory of one call (freed when the handler returns) ---- */
struct vg_tmp {
    void *blocks[8];
    unsigned n;
    void **more;          /* further blocks */
    unsigned nmore, capmore;
};
void vg_tmp_init(struct vg_tmp *t);
void *vg_tmp_zalloc(struct vg_tmp *t, size_t bytes); /* NULL on ENOMEM (or bytes == 0) */
void vg_tmp_free(struct vg_tmp *t);

/* ---- reading the call's bulk (struct vg_rd, protocol/vg_buf.h) ---- */
/* The next n bytes as an aligned private copy (scratch memory); NULL when fewer remain or on
 * ENOMEM (vg_rd_failed tells which); NULL for n == 0. */
void *vg_rd_dup(struct vg_rd *rd, struct vg_tmp *t, uint64_t n);
CUresult vg_rd_failed(const struct vg_rd *rd);
/* The stream in args[stream_arg] (translated into *st), then the whole bulk as n (1..max)
 * elements of esize bytes, an aligned private copy (scratch). */
CUresult vg_stream_bulk_array(struct vg_sess *s, const struct vg_in *in, unsigned stream_arg, CUstream *st,
                              uint64_t n, uint64_t max, size_t esize, struct vg_tmp *t, void **out);

/* ---- replies ---- */
/* Appends an output value (up to the inline capacity; calls with more allocate their own). */
void sess_out(struct vg_result *r, uint64_t v);
/* The reply's bulk, `bytes` long (allocated); NULL on ENOMEM. */
uint8_t *vg_reply_bulk(struct vg_result *r, uint64_t bytes);
/* 0 when a reply bulk of `bytes` fits in a frame, -1 otherwise. */
int vg_out_room(const struct vg_result *r, const struct vg_sess *s, uint64_t bytes);

/* ---- handles ---- */
uint64_t sess_hid(const struct vg_sess *s, uint32_t slot);
/* A new slot (-1 when the table is full or on ENOMEM); the slot's id stops working once freed. */
int sess_hnew(struct vg_sess *s, int type, void *real, uint32_t ctx);
void sess_hfree(struct vg_sess *s, uint32_t slot);
/* The live slot of id if it has the given type, else -1. */
int sess_hget(const struct vg_sess *s, uint64_t id, int type);
/* The live slot holding a driver object of a type, else -1. */
int sess_hfind_real(const struct vg_sess *s, int type, const void *real);
/* Records that child slot was obtained from parent slot (-1: none). */
void sess_set_parent(struct vg_sess *s, uint32_t child, int parent);

/* A handle argument: id v of `type` to the driver's object (*real) and its slot (-1 for NULL or
 * a special stream). nullable: 0 stands for NULL. CUstream also takes 0, CU_STREAM_LEGACY and
 * CU_STREAM_PER_THREAD; CUfunction also takes a library kernel (the driver accepts a CUkernel
 * where a CUfunction goes). CUDA_ERROR_INVALID_HANDLE (INVALID_CONTEXT for contexts) otherwise. */
CUresult sess_harg(struct vg_sess *s, uint64_t v, int type, int nullable, void **real, int *slot);
/* n handle ids from the bulk, translated into a scratch array of driver objects. */
CUresult sess_harg_array(struct vg_sess *s, struct vg_rd *rd, int type, size_t n, struct vg_tmp *t, void **out);
/* A handle output. new: an object this call created (owned, holds `charged` bytes); 0 on ENOMEM
 * (the caller destroys the object). get: the id of the session's handle for real, else a new
 * unowned one whose parent is found among the call's input handles (in_slots) and their
 * ancestors; contexts are never created this way (0 when unknown). retain: get, plus a
 * reference. */
uint64_t sess_hout_new(struct vg_sess *s, int type, void *real, uint64_t charged, int charge_dev);
uint64_t sess_hout_get(struct vg_sess *s, int type, void *real, const int *in_slots, int n_in);
uint64_t sess_hout_retain(struct vg_sess *s, int type, void *real, const int *in_slots, int n_in);
/* After a call that destroyed the object of slot (a destroy call): the session forgets it and
 * everything obtained from it, refunds its memory. A reference of a retained handle only drops
 * a reference. */
void sess_hdestroyed(struct vg_sess *s, int slot);
/* An object a new-handle output could not be recorded for: destroy it in the driver. */
void sess_hdrop_real(struct vg_sess *s, int type, void *real);
/* Frees a slot and everything obtained from it (no driver calls: the driver destroyed them). */
void sess_free_with_descendants(struct vg_sess *s, uint32_t slot);

/* ---- device memory ---- */
/* True when [p, p+len) lies inside one range of this session (len may exceed 64 bits: false). */
int sess_dev_ok(const struct vg_sess *s, uint64_t p, vg_u128 len);
/* The index of the range starting exactly at p that the session allocated, else -1. */
int sess_alloc_find(const struct vg_sess *s, uint64_t p);
/* Records an allocation of `bytes` (already charged to charge_dev) in the current context. */
CUresult sess_alloc_add(struct vg_sess *s, CUdeviceptr p, uint64_t bytes, int charge_dev);
/* After the driver freed range i: forget it, refund its charge. */
void sess_alloc_freed(struct vg_sess *s, int i);
/* Driver-owned memory the session may use (module globals); nothing when already covered. */
CUresult sess_global_add(struct vg_sess *s, CUdeviceptr p, vg_u128 size);
/* Adds a range of any kind; -1 on overlap with an existing range, table full or ENOMEM. */
int sess_range_add(struct vg_sess *s, const struct range *r);
void sess_range_del(struct vg_sess *s, uint32_t i);
/* True when [p, p+len) is managed memory the session backs with device memory (hints about it
 * need not reach the driver). */
int sess_hint_only(const struct vg_sess *s, uint64_t p, vg_u128 len);
/* The index of the range containing p, else -1. */
int sess_range_at(const struct vg_sess *s, uint64_t p);
/* Frees memory the driver just allocated but the session could not record. */
void vg_driver_free(struct vg_sess *s, CUdeviceptr p);

/* ---- accounting (the seam for tenants' memory limits) ----
 * Contract: every path that makes the driver allocate device memory for the session calls
 * sess_mem_charge BEFORE the driver allocates, with the bytes the allocation will hold, and stops
 * with the returned error when it fails (the driver is then not called). Exactly one
 * sess_mem_refund of the same bytes and device follows: when the allocation fails, when it is
 * freed, or when it goes with its module, context or the session. The charge is kept with the
 * record of what holds the memory (a range or a handle), which refunds it when it goes. Both keep
 * the session's own count per device (mem_used) and pass the bytes on to the tenant's ledger
 * (vg_sess_acct) when the session process gave one. */
CUresult sess_mem_charge(struct vg_sess *s, int device, uint64_t bytes);
void sess_mem_refund(struct vg_sess *s, int device, uint64_t bytes);
/* The current context's device (0 without one). */
int sess_cur_device(const struct vg_sess *s);
/* A device's free and total memory as the session's tenant sees them (its limit may lower what
 * the driver says). */
void sess_mem_view(struct vg_sess *s, int device, size_t *free_bytes, size_t *total_bytes);

/* ---- contexts and functions ---- */
/* Forgets, without driver calls, what context slot ctx1 held (the driver destroyed it). */
void sess_drop_ctx_children(struct vg_sess *s, uint32_t ctx1);
/* Destroys, with driver calls, the objects of context slot ctx1 (0: of every context). */
void sess_destroy_children(struct vg_sess *s, uint32_t ctx1);
/* No context current on this thread (before the driver destroys the current one). */
void sess_leave_ctx(struct vg_sess *s);
/* Makes context slot ctx1 (0: none) current on this thread. */
CUresult sess_set_ctx(struct vg_sess *s, uint32_t ctx1);
/* Loads function slot fi's parameter layout from the driver once. */
CUresult sess_load_layout(struct vg_sess *s, int fi, CUfunction f);
/* Records a new driver object and outputs its id. */
CUresult sess_new_handle_out(struct vg_sess *s, struct vg_result *res, int type, void *real, uint32_t ctx1);

/* Destroys a driver object of a handle kind (the list's destroy=, generated). */
void vg_handle_destroy_real(const struct vg_drv *d, int type, void *real);
/* Per kind: name, parent kinds (bit mask), identity, whether it has a destroy function. */
struct vg_handle_kind {
    const char *name;
    uint32_t parents;
    uint8_t identity;
    uint8_t destroyable;
};
extern const struct vg_handle_kind vg_handle_kinds[H_TYPES];

/* ---- marshal.c: structures with handles, pointers or device addresses inside ---- */
/* Checks a 3-D copy's device sides against the session's memory and translates its arrays; a
 * host side is CUDA_ERROR_NOT_SUPPORTED unless host_ok (the caller then supplies it). */
CUresult sess_check_memcpy3d(struct vg_sess *s, CUDA_MEMCPY3D *c, int host_ok);
/* Checks the addresses of stream memory operations. */
CUresult sess_check_memops(struct vg_sess *s, CUstreamBatchMemOpParams *ops, uint64_t n);
/* Checks a launch attribute's value and translates the handles in it (in place); the reverse
 * for a value going back to the client. */
CUresult sess_check_launch_attr(struct vg_sess *s, CUlaunchAttributeID id, CUlaunchAttributeValue *v);
void sess_out_launch_attr(struct vg_sess *s, CUlaunchAttributeID id, CUlaunchAttributeValue *v);
/* Loads the parameter layout of function or kernel slot (a kernel's from its function in the
 * current context). */
CUresult sess_func_layout(struct vg_sess *s, int slot);
/* kernelParams for function or kernel slot from a parameter buffer of len bytes (scratch). */
CUresult sess_params(struct vg_sess *s, int slot, const uint8_t *buf, uint64_t len, struct vg_tmp *t,
                     void ***params);
/* A node's parameters (struct, then its extras) for the Set calls or (adding) cuGraphAddNode. */
CUresult sess_node_params(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUgraphNodeParams *p, int adding);
/* The launch configuration of cuLaunchKernelEx and the occupancy calls (struct, attributes). */
CUresult vg_mdec_CUlaunchConfig(struct vg_sess *s, struct vg_rd *rd, struct vg_tmp *t, CUlaunchConfig *out);
/* A resource description's handles as the client's ids (in place). */
void sess_out_resource_desc(struct vg_sess *s, CUDA_RESOURCE_DESC *d);

/* ---- dispatch.c ---- */

/* Runs call c with context slot ctx1 (0: none) already current. */
CUresult vg_sess_run(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                     struct vg_result *res, uint32_t ctx1);

#endif
