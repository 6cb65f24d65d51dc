/* Internals of a session shared by session.c (the handle table, memory ranges, lifetime) and
 * dispatch.c (what each call does). Worker thread only, like everything in vg_sess. */
#ifndef VG_SESSION_PRIV_H
#define VG_SESSION_PRIV_H

#include "session.h"

enum htype { H_NONE = 0, H_CTX, H_MOD, H_FUNC, H_LIB, H_KERN, H_STREAM, H_EVENT, H_TYPES };

/* Limits on what one client may ask for, so a hostile client cannot make the server allocate
 * unbounded memory for bookkeeping. */
#define SESS_MAX_HANDLES (1u << 20)
#define SESS_MAX_RANGES (1u << 20)
#define SESS_MAX_PARAMS 4096
#define SESS_MAX_DEVICES 64

/* A client-visible handle: type in bits 56..63, a generation in 32..55 (so a stale id of a reused
 * slot is rejected), slot index + 1 in 0..31. Never 0, 1 or 2 (the special stream values). */
struct handle {
    uint8_t type;
    uint8_t live;
    uint8_t primary;      /* H_CTX: this session's primary context of `device` */
    uint8_t owned;        /* H_MOD: loaded by the client (not a library's module) */
    uint32_t gen;
    void *real;
    int device;           /* H_CTX */
    int primary_refs;     /* H_CTX primary: cuDevicePrimaryCtxRetain calls not yet released */
    uint32_t ctx;         /* slot + 1 of the context it was created in (0: none) */
    uint32_t parent;      /* H_FUNC/H_KERN/H_MOD: slot + 1 of the module or library */
    uint32_t parent_gen;  /* the parent slot's generation then (a reused slot is another object) */
    int nparams;          /* H_FUNC/H_KERN: -1 until the layout is known */
    uint32_t *param_off, *param_size;
    uint32_t param_bytes;
    uint64_t charged;     /* H_MOD/H_LIB: device memory charged for its globals */
    int charged_dev;
};

struct range {
    CUdeviceptr base;
    size_t size;
    uint32_t ctx;         /* slot + 1 of its context */
    int owned;            /* cuMemAlloc'd (freed at cleanup) vs a module global */
    int dev;              /* owned: the device it was charged on */
    uint64_t charged;     /* owned: bytes charged to the tenant (refunded when it goes) */
};

struct vg_sess {
    const struct vg_drv *drv;
    uint64_t id;
    char peer[128];
    struct handle *h;
    uint32_t nh, caph;
    uint32_t free_head;   /* free slot list via ctx field (slot + 1), 0 = none */
    struct range *r;
    uint32_t nr, capr;
    CUresult deferred;    /* first failure of a pipelined call not yet reported */
    unsigned primary_flags[SESS_MAX_DEVICES]; /* cuDevicePrimaryCtxSetFlags, per device */
    int device;
    int destroyed;
    uint64_t max_bulk;    /* largest reply payload the connection may carry */
    unsigned owned_allocs;   /* ranges with owned set (atomic: read by the watchdog's log line) */
    struct vg_sess_acct acct;
};

/* ---- session.c ---- */

/* Appends an output value (up to the inline capacity; calls with more allocate their own). */
void sess_out(struct vg_result *r, uint64_t v);

/* The client-visible id of a slot; a new slot (-1 when the table is full or on ENOMEM); freeing
 * a slot (its id then fails sess_hget); the live slot of id if it has the given type, else -1;
 * the slot holding a driver object, else -1. */
uint64_t sess_hid(const struct vg_sess *s, uint32_t slot);
int sess_hnew(struct vg_sess *s, int type, void *real, uint32_t ctx);
void sess_hfree(struct vg_sess *s, uint32_t slot);
int sess_hget(const struct vg_sess *s, uint64_t id, int type);
int sess_hfind_real(const struct vg_sess *s, int type, const void *real);

/* Device memory the session may touch: its allocations (owned) and module globals. */
int sess_range_add(struct vg_sess *s, CUdeviceptr base, size_t size, uint32_t ctx, int owned);
/* An allocation of the client's on dev that was charged `charged` bytes (refunded when the range
 * goes). 0, or -1 when the table is full (nothing recorded, nothing refunded). */
int sess_alloc_add(struct vg_sess *s, CUdeviceptr base, size_t size, uint32_t ctx, int dev, uint64_t charged);
/* Forgets range i, refunding its charge. */
void sess_range_del(struct vg_sess *s, uint32_t i);

/* Tenant accounting (vg_sess_acct): CUDA_SUCCESS or CUDA_ERROR_OUT_OF_MEMORY. */
CUresult sess_mem_charge(struct vg_sess *s, int dev, uint64_t bytes);
void sess_mem_refund(struct vg_sess *s, int dev, uint64_t bytes);
/* The device of context slot ctx1 (0: the session's current device). */
int sess_ctx_device(const struct vg_sess *s, uint32_t ctx1);
/* Device memory a module image's globals take (.global and .const variables), from its PTX;
 * 0 when it has none or no PTX. */
uint64_t sess_image_global_bytes(const uint8_t *image, uint64_t len);
/* True when [p, p+len) lies inside one range of this session. */
int sess_range_ok(const struct vg_sess *s, uint64_t p, uint64_t len);

/* A stream argument: 0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD pass through, anything else
 * must be one of the session's streams. Returns 0 or -1. */
int sess_stream_arg(const struct vg_sess *s, uint64_t v, CUstream *out_stream);
/* Forgets, without driver calls, what context slot ctx1 held (the driver destroyed it). */
void sess_drop_ctx_children(struct vg_sess *s, uint32_t ctx1);
/* Destroys, with driver calls, the objects of context slot ctx1 (0: of every context). */
void sess_destroy_children(struct vg_sess *s, uint32_t ctx1);
/* Makes context slot ctx1 (0: none) current on this thread. */
CUresult sess_set_ctx(struct vg_sess *s, uint32_t ctx1);
/* Loads function slot fi's parameter layout from the driver once. */
CUresult sess_load_layout(struct vg_sess *s, int fi, CUfunction f);
/* The CUfunction for an argument naming a function or a library kernel. */
CUresult sess_func_arg(struct vg_sess *s, uint64_t v, int *slot, CUfunction *f);
/* Records a new driver object and outputs its id. */
CUresult sess_new_handle_out(struct vg_sess *s, struct vg_result *res, int type, void *real, uint32_t ctx1);

/* ---- dispatch.c ---- */

/* Runs call c with context slot ctx1 (0: none) already current. */
CUresult vg_sess_run(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                     struct vg_result *res, uint32_t ctx1);

#endif
