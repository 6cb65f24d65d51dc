#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fatbin.h"
#include "log.h"

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
    int nparams;          /* H_FUNC/H_KERN: -1 until the layout is known */
    uint32_t *param_off, *param_size;
    uint32_t param_bytes;
};

struct range {
    CUdeviceptr base;
    size_t size;
    uint32_t ctx;         /* slot + 1 of its context */
    int owned;            /* cuMemAlloc'd (freed at cleanup) vs a module global */
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
};

void vg_result_init(struct vg_result *r)
{
    memset(r, 0, sizeof *r);
    r->outs = r->outs_inline;
}

void vg_result_clear(struct vg_result *r)
{
    if (r->outs != r->outs_inline)
        free(r->outs);
    free(r->bulk);
    vg_result_init(r);
}

static void out(struct vg_result *r, uint64_t v)
{
    if (r->n_outs < sizeof r->outs_inline / sizeof r->outs_inline[0])
        r->outs[r->n_outs++] = v;
}

struct vg_sess *vg_sess_new(const struct vg_drv *drv, uint64_t id, const char *peer, uint64_t max_bulk)
{
    struct vg_sess *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->drv = drv;
    s->max_bulk = max_bulk;
    s->id = id;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    return s;
}

int vg_sess_device(const struct vg_sess *s)
{
    return s->device;
}

/* ---- handle table ---------------------------------------------------------------------- */

static uint64_t hid(const struct vg_sess *s, uint32_t slot)
{
    const struct handle *e = &s->h[slot];
    return ((uint64_t)e->type << 56) | ((uint64_t)(e->gen & 0xffffff) << 32) | (uint64_t)(slot + 1);
}

/* Returns the slot of a new handle, or -1 (table full / ENOMEM). */
static int hnew(struct vg_sess *s, int type, void *real, uint32_t ctx)
{
    uint32_t slot;
    if (s->free_head) {
        slot = s->free_head - 1;
        s->free_head = s->h[slot].ctx;
    } else {
        if (s->nh >= SESS_MAX_HANDLES)
            return -1;
        if (s->nh == s->caph) {
            uint32_t cap = s->caph ? s->caph * 2 : 64;
            struct handle *n = realloc(s->h, cap * sizeof *n);
            if (!n)
                return -1;
            s->h = n;
            s->caph = cap;
        }
        slot = s->nh++;
        s->h[slot].gen = 0;
    }
    struct handle *e = &s->h[slot];
    uint32_t gen = e->gen + 1;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->type = (uint8_t)type;
    e->live = 1;
    e->real = real;
    e->ctx = ctx;
    e->nparams = -1;
    return (int)slot;
}

static void hfree(struct vg_sess *s, uint32_t slot)
{
    struct handle *e = &s->h[slot];
    free(e->param_off);
    free(e->param_size);
    uint32_t gen = e->gen;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->ctx = s->free_head;
    s->free_head = slot + 1;
}

/* The live slot of id if it has the given type, else -1. */
static int hget(const struct vg_sess *s, uint64_t id, int type)
{
    uint32_t slot1 = (uint32_t)id;
    if ((int)(id >> 56) != type || slot1 == 0 || slot1 > s->nh)
        return -1;
    const struct handle *e = &s->h[slot1 - 1];
    if (!e->live || e->type != type || (e->gen & 0xffffff) != ((id >> 32) & 0xffffff))
        return -1;
    return (int)(slot1 - 1);
}

static int hfind_real(const struct vg_sess *s, int type, const void *real)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].type == type && s->h[i].real == real)
            return (int)i;
    return -1;
}

/* ---- device memory ranges ------------------------------------------------------------ */

static int range_add(struct vg_sess *s, CUdeviceptr base, size_t size, uint32_t ctx, int owned)
{
    if (s->nr >= SESS_MAX_RANGES)
        return -1;
    if (s->nr == s->capr) {
        uint32_t cap = s->capr ? s->capr * 2 : 64;
        struct range *n = realloc(s->r, cap * sizeof *n);
        if (!n)
            return -1;
        s->r = n;
        s->capr = cap;
    }
    s->r[s->nr++] = (struct range){base, size, ctx, owned};
    return 0;
}

static void range_del(struct vg_sess *s, uint32_t i)
{
    s->r[i] = s->r[--s->nr];
}

/* True when [p, p+len) lies inside one range of this session. */
static int range_ok(const struct vg_sess *s, uint64_t p, uint64_t len)
{
    for (uint32_t i = 0; i < s->nr; i++) {
        const struct range *r = &s->r[i];
        if (p >= r->base && p - r->base <= r->size && len <= r->size - (p - r->base))
            return 1;
    }
    return 0;
}

/* ---- helpers for calls ----------------------------------------------------------------- */

/* Maps a stream argument: 0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD pass through, anything
 * else must be one of the session's streams. Returns 0 or -1. */
static int stream_arg(const struct vg_sess *s, uint64_t v, CUstream *out_stream)
{
    if (v <= 2) {
        *out_stream = (CUstream)(uintptr_t)v;
        return 0;
    }
    int i = hget(s, v, H_STREAM);
    if (i < 0)
        return -1;
    *out_stream = s->h[i].real;
    return 0;
}

/* Forgets (without driver calls) everything recorded in context slot ctx1, which the driver has
 * destroyed or which the session no longer holds. */
static void drop_ctx_children(struct vg_sess *s, uint32_t ctx1)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].ctx == ctx1 && i + 1 != ctx1)
            hfree(s, i);
    for (uint32_t i = 0; i < s->nr;)
        if (s->r[i].ctx == ctx1)
            range_del(s, i);
        else
            i++;
}

/* Destroys, with driver calls, the objects of context slot ctx1 (or of every context when ctx1
 * is 0), leaving the contexts themselves. The context must be current. */
static void destroy_children(struct vg_sess *s, uint32_t ctx1)
{
    const struct vg_drv *d = s->drv;
    static const int order[] = {H_EVENT, H_STREAM, H_FUNC, H_KERN, H_MOD, H_LIB};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        for (uint32_t i = 0; i < s->nh; i++) {
            struct handle *e = &s->h[i];
            if (!e->live || e->type != order[o] || (ctx1 && e->ctx != ctx1))
                continue;
            if (e->type == H_EVENT && d->cuEventDestroy)
                d->cuEventDestroy(e->real);
            else if (e->type == H_STREAM && d->cuStreamDestroy)
                d->cuStreamDestroy(e->real);
            else if (e->type == H_MOD && e->owned && d->cuModuleUnload)
                d->cuModuleUnload(e->real);
            else if (e->type == H_LIB && d->cuLibraryUnload)
                d->cuLibraryUnload(e->real);
            hfree(s, i);
        }
    }
    for (uint32_t i = 0; i < s->nr;) {
        if (ctx1 && s->r[i].ctx != ctx1) {
            i++;
            continue;
        }
        if (s->r[i].owned && d->cuMemFree)
            d->cuMemFree(s->r[i].base);
        range_del(s, i);
    }
}

static CUresult set_ctx(struct vg_sess *s, uint32_t ctx1)
{
    CUcontext c = ctx1 ? s->h[ctx1 - 1].real : NULL;
    if (ctx1)
        s->device = s->h[ctx1 - 1].device;
    return s->drv->cuCtxSetCurrent(c);
}

/* Loads the parameter layout of function slot fi with cuFuncGetParamInfo. */
static CUresult load_layout(struct vg_sess *s, int fi, CUfunction f)
{
    struct handle *e = &s->h[fi];
    if (e->nparams >= 0)
        return CUDA_SUCCESS;
    if (!s->drv->cuFuncGetParamInfo)
        return CUDA_ERROR_NOT_SUPPORTED;
    uint32_t *off = malloc(SESS_MAX_PARAMS * sizeof *off), *sz = malloc(SESS_MAX_PARAMS * sizeof *sz);
    if (!off || !sz) {
        free(off);
        free(sz);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    int n = 0;
    uint32_t bytes = 0;
    for (; n < SESS_MAX_PARAMS; n++) {
        size_t o = 0, z = 0;
        if (s->drv->cuFuncGetParamInfo(f, (size_t)n, &o, &z) != CUDA_SUCCESS)
            break;
        if (o > 65536 || z > 65536) {
            free(off);
            free(sz);
            return CUDA_ERROR_INVALID_VALUE;
        }
        off[n] = (uint32_t)o;
        sz[n] = (uint32_t)z;
        if (o + z > bytes)
            bytes = (uint32_t)(o + z);
    }
    e->param_off = off;
    e->param_size = sz;
    e->nparams = n;
    e->param_bytes = bytes;
    return CUDA_SUCCESS;
}

/* The CUfunction for a launch argument that names a function or a library kernel. */
static CUresult func_arg(struct vg_sess *s, uint64_t v, int *slot, CUfunction *f)
{
    int i = hget(s, v, H_FUNC);
    if (i >= 0) {
        *slot = i;
        *f = s->h[i].real;
        return CUDA_SUCCESS;
    }
    i = hget(s, v, H_KERN);
    if (i < 0 || !s->drv->cuKernelGetFunction)
        return CUDA_ERROR_INVALID_HANDLE;
    *slot = i;
    return s->drv->cuKernelGetFunction(f, s->h[i].real);
}

static CUresult new_handle_out(struct vg_sess *s, struct vg_result *res, int type, void *real,
                               uint32_t ctx1)
{
    int i = hnew(s, type, real, ctx1);
    if (i < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    out(res, hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

/* A module image from the wire: the driver API takes no length, so the image's own headers must
 * place its end inside what was received. A fatbin wrapper (a pointer into the client's memory)
 * is meaningless here. The VG_BULK_PAD zeros keep the header reads inside the buffer. */
static int image_ok(const uint8_t *bulk, uint64_t bulk_len)
{
    const void *data = NULL;
    size_t size = 0;
    if (bulk_len == 0)
        return 0;
    /* vg_image_locate would follow a wrapper's pointer: never with one from the wire. */
    uint32_t magic = (uint32_t)bulk[0] | (uint32_t)bulk[1] << 8 | (uint32_t)bulk[2] << 16 | (uint32_t)bulk[3] << 24;
    if (magic == 0x466243b1u)
        return 0;
    enum vg_image_kind kind = vg_image_locate(bulk, &data, &size);
    if (kind == VG_IMAGE_UNKNOWN || data != (const void *)bulk)
        return 0;
    /* PTX: the text plus its NUL, which may be the first pad byte. */
    return kind == VG_IMAGE_PTX ? size <= bulk_len + 1 : size <= bulk_len;
}

#define NEED(fn)                                \
    do {                                        \
        if (!d->fn)                             \
            return CUDA_ERROR_NOT_SUPPORTED;    \
    } while (0)
#define ARGS(n)                                 \
    do {                                        \
        if (c->n_args < (n))                    \
            return CUDA_ERROR_INVALID_VALUE;    \
    } while (0)

static int primary_slot(struct vg_sess *s, CUdevice dev)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].type == H_CTX && s->h[i].primary && s->h[i].device == dev)
            return (int)i;
    return -1;
}

static CUresult run(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                    struct vg_result *res, uint32_t ctx1)
{
    const struct vg_drv *d = s->drv;
    const uint64_t *a = c->args;
    CUresult rc;
    CUstream st;
    int i;

    switch (c->call) {
    case VG_CALL_INIT:
        ARGS(1);
        return d->cuInit((unsigned)a[0]);
    case VG_CALL_DRIVER_GET_VERSION: {
        NEED(cuDriverGetVersion);
        int v = 0;
        rc = d->cuDriverGetVersion(&v);
        out(res, (uint64_t)v);
        return rc;
    }
    case VG_CALL_DEVICE_GET: {
        NEED(cuDeviceGet);
        ARGS(1);
        CUdevice dev = 0;
        rc = d->cuDeviceGet(&dev, (int)a[0]);
        out(res, (uint64_t)(int64_t)dev);
        return rc;
    }
    case VG_CALL_DEVICE_GET_COUNT: {
        int n = 0;
        rc = d->cuDeviceGetCount(&n);
        out(res, (uint64_t)n);
        return rc;
    }
    case VG_CALL_DEVICE_GET_NAME:
        NEED(cuDeviceGetName);
        ARGS(1);
        return d->cuDeviceGetName(res->str, sizeof res->str - 1, (CUdevice)a[0]);
    case VG_CALL_DEVICE_GET_ATTRIBUTE: {
        NEED(cuDeviceGetAttribute);
        ARGS(2);
        int v = 0;
        rc = d->cuDeviceGetAttribute(&v, (CUdevice_attribute)a[0], (CUdevice)a[1]);
        out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_DEVICE_TOTAL_MEM: {
        NEED(cuDeviceTotalMem);
        ARGS(1);
        size_t v = 0;
        rc = d->cuDeviceTotalMem(&v, (CUdevice)a[0]);
        out(res, v);
        return rc;
    }
    case VG_CALL_DEVICE_GET_UUID: {
        NEED(cuDeviceGetUuid);
        ARGS(1);
        CUuuid u;
        memset(&u, 0, sizeof u);
        rc = d->cuDeviceGetUuid(&u, (CUdevice)a[0]);
        uint64_t w[2];
        memcpy(w, u.bytes, sizeof w);
        out(res, w[0]);
        out(res, w[1]);
        return rc;
    }
    /* Each session gets a "primary" context of its own per device (a created context behind the
     * primary-context API), not the driver's primary context: that one is shared by the whole
     * server process, so one client's sticky error (an illegal address) or reset would reach
     * every other client. */
    case VG_CALL_PRIMARY_CTX_RETAIN: {
        NEED(cuCtxCreate);
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = primary_slot(s, (CUdevice)a[0]);
        if (i < 0) {
            CUcontext pc = NULL;
            rc = d->cuCtxCreate(&pc, NULL, s->primary_flags[a[0]], (CUdevice)a[0]);
            if (rc != CUDA_SUCCESS)
                return rc;
            d->cuCtxSetCurrent(NULL);
            i = hnew(s, H_CTX, pc, 0);
            if (i < 0) {
                d->cuCtxDestroy(pc);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            s->h[i].primary = 1;
            s->h[i].device = (int)a[0];
            s->h[i].ctx = (uint32_t)i + 1;
        }
        s->h[i].primary_refs++;
        out(res, hid(s, (uint32_t)i));
        return CUDA_SUCCESS;
    }
    case VG_CALL_PRIMARY_CTX_RELEASE:
        ARGS(1);
        i = primary_slot(s, (CUdevice)a[0]);
        if (i < 0 || s->h[i].primary_refs <= 0)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (--s->h[i].primary_refs > 0)
            return CUDA_SUCCESS;
        /* The last reference: the context and everything in it go, as on a GPU. */
        d->cuCtxSetCurrent(NULL);
        rc = d->cuCtxDestroy(s->h[i].real);
        drop_ctx_children(s, (uint32_t)i + 1);
        hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_PRIMARY_CTX_RESET:
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = primary_slot(s, (CUdevice)a[0]);
        if (i >= 0) {
            /* A fresh context replaces the old one (clearing a sticky error); the handle stays. */
            CUcontext pc = NULL;
            d->cuCtxSetCurrent(NULL);
            rc = d->cuCtxDestroy(s->h[i].real);
            drop_ctx_children(s, (uint32_t)i + 1);
            if (rc == CUDA_SUCCESS)
                rc = d->cuCtxCreate(&pc, NULL, s->primary_flags[a[0]], (CUdevice)a[0]);
            d->cuCtxSetCurrent(NULL);
            if (rc != CUDA_SUCCESS) {
                hfree(s, (uint32_t)i);
                return rc;
            }
            s->h[i].real = pc;
        }
        return CUDA_SUCCESS;
    case VG_CALL_PRIMARY_CTX_GET_STATE:
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = primary_slot(s, (CUdevice)a[0]);
        out(res, s->primary_flags[a[0]]);
        out(res, i >= 0 && s->h[i].primary_refs > 0);
        return CUDA_SUCCESS;
    case VG_CALL_PRIMARY_CTX_SET_FLAGS:
        ARGS(2);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        if (a[1] & ~(uint64_t)(CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX))
            return CUDA_ERROR_INVALID_VALUE;
        /* Takes effect when the context is next created, as flags of an active one cannot
         * change here. */
        s->primary_flags[a[0]] = (unsigned)a[1];
        return CUDA_SUCCESS;
    case VG_CALL_CTX_CREATE: {
        NEED(cuCtxCreate);
        ARGS(2);
        CUcontext nc = NULL;
        rc = d->cuCtxCreate(&nc, NULL, (unsigned)a[0], (CUdevice)a[1]);
        if (rc != CUDA_SUCCESS)
            return rc;
        i = hnew(s, H_CTX, nc, 0);
        if (i < 0) {
            d->cuCtxDestroy(nc);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        s->h[i].device = (int)a[1];
        s->h[i].ctx = (uint32_t)i + 1;
        out(res, hid(s, (uint32_t)i));
        return CUDA_SUCCESS;
    }
    case VG_CALL_CTX_DESTROY:
        NEED(cuCtxDestroy);
        ARGS(1);
        i = hget(s, a[0], H_CTX);
        if (i < 0 || s->h[i].primary)
            return CUDA_ERROR_INVALID_CONTEXT;
        d->cuCtxSetCurrent(NULL);
        rc = d->cuCtxDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS) {
            drop_ctx_children(s, (uint32_t)i + 1);
            hfree(s, (uint32_t)i);
        }
        return rc;
    case VG_CALL_CTX_GET_DEVICE:
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        out(res, (uint64_t)(int64_t)s->h[ctx1 - 1].device);
        return CUDA_SUCCESS;
    case VG_CALL_CTX_SYNCHRONIZE:
        NEED(cuCtxSynchronize);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        return d->cuCtxSynchronize();
    case VG_CALL_CTX_GET_API_VERSION: {
        NEED(cuCtxGetApiVersion);
        ARGS(1);
        unsigned v = 0;
        CUcontext cc = NULL;
        if (a[0]) {
            i = hget(s, a[0], H_CTX);
            if (i < 0)
                return CUDA_ERROR_INVALID_CONTEXT;
            cc = s->h[i].real;
        }
        rc = d->cuCtxGetApiVersion(cc, &v);
        out(res, v);
        return rc;
    }
    case VG_CALL_CTX_GET_FLAGS: {
        NEED(cuCtxGetFlags);
        unsigned v = 0;
        rc = d->cuCtxGetFlags(&v);
        out(res, v);
        return rc;
    }
    case VG_CALL_CTX_SET_LIMIT:
        NEED(cuCtxSetLimit);
        ARGS(2);
        return d->cuCtxSetLimit((CUlimit)a[0], (size_t)a[1]);
    case VG_CALL_CTX_GET_LIMIT: {
        NEED(cuCtxGetLimit);
        ARGS(1);
        size_t v = 0;
        rc = d->cuCtxGetLimit(&v, (CUlimit)a[0]);
        out(res, v);
        return rc;
    }
    case VG_CALL_CTX_GET_STREAM_PRIORITY_RANGE: {
        NEED(cuCtxGetStreamPriorityRange);
        int lo = 0, hi = 0;
        rc = d->cuCtxGetStreamPriorityRange(&lo, &hi);
        out(res, (uint64_t)(int64_t)lo);
        out(res, (uint64_t)(int64_t)hi);
        return rc;
    }
    case VG_CALL_MEM_ALLOC: {
        NEED(cuMemAlloc);
        ARGS(1);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUdeviceptr p = 0;
        rc = d->cuMemAlloc(&p, (size_t)a[0]);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (range_add(s, p, (size_t)a[0], ctx1, 1) < 0) {
            d->cuMemFree(p);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        out(res, p);
        return CUDA_SUCCESS;
    }
    case VG_CALL_MEM_FREE:
        NEED(cuMemFree);
        ARGS(1);
        if (a[0] == 0)
            return CUDA_SUCCESS;
        for (uint32_t k = 0; k < s->nr; k++) {
            if (s->r[k].base == a[0] && s->r[k].owned) {
                rc = d->cuMemFree(a[0]);
                if (rc == CUDA_SUCCESS)
                    range_del(s, k);
                return rc;
            }
        }
        return CUDA_ERROR_INVALID_VALUE;
    case VG_CALL_MEM_GET_INFO: {
        NEED(cuMemGetInfo);
        size_t f = 0, t = 0;
        rc = d->cuMemGetInfo(&f, &t);
        out(res, f);
        out(res, t);
        return rc;
    }
    case VG_CALL_MEM_GET_ADDRESS_RANGE: {
        NEED(cuMemGetAddressRange);
        ARGS(1);
        if (!range_ok(s, a[0], 0))
            return CUDA_ERROR_NOT_FOUND;
        CUdeviceptr base = 0;
        size_t size = 0;
        rc = d->cuMemGetAddressRange(&base, &size, a[0]);
        out(res, base);
        out(res, size);
        return rc;
    }
    case VG_CALL_MEMSET: {
        /* args: dst, value, element size (1, 2, 4), count, stream */
        ARGS(5);
        uint64_t esz = a[2], n = a[3];
        if ((esz != 1 && esz != 2 && esz != 4) || n > (UINT64_MAX / 4))
            return CUDA_ERROR_INVALID_VALUE;
        if (!range_ok(s, a[0], n * esz))
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[4], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (esz == 1) {
            NEED(cuMemsetD8Async);
            return d->cuMemsetD8Async(a[0], (unsigned char)a[1], (size_t)n, st);
        }
        if (esz == 2) {
            NEED(cuMemsetD16Async);
            return d->cuMemsetD16Async(a[0], (unsigned short)a[1], (size_t)n, st);
        }
        NEED(cuMemsetD32Async);
        return d->cuMemsetD32Async(a[0], (unsigned)a[1], (size_t)n, st);
    }
    case VG_CALL_MEMCPY_HTOD:
    case VG_CALL_MEMCPY_HTOD_ASYNC:
        /* args: dst, stream; bulk: the bytes */
        ARGS(2);
        if (!range_ok(s, a[0], bulk_len))
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[1], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (bulk_len == 0)
            return CUDA_SUCCESS;
        if (c->call == VG_CALL_MEMCPY_HTOD || !d->cuMemcpyHtoDAsync) {
            NEED(cuMemcpyHtoD);
            return d->cuMemcpyHtoD(a[0], bulk, (size_t)bulk_len);
        }
        /* The bulk buffer is freed when this call returns: wait for the copy. */
        rc = d->cuMemcpyHtoDAsync(a[0], bulk, (size_t)bulk_len, st);
        if (rc == CUDA_SUCCESS && d->cuStreamSynchronize)
            rc = d->cuStreamSynchronize(st);
        return rc;
    case VG_CALL_MEMCPY_DTOH: {
        /* args: src, size, stream, async; reply bulk: the bytes */
        ARGS(4);
        if (a[1] > s->max_bulk || !range_ok(s, a[0], a[1]))
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[2], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (a[1] == 0)
            return CUDA_SUCCESS;
        uint8_t *buf = malloc((size_t)a[1]);
        if (!buf)
            return CUDA_ERROR_OUT_OF_MEMORY;
        if (a[3] && d->cuMemcpyDtoHAsync) {
            rc = d->cuMemcpyDtoHAsync(buf, a[0], (size_t)a[1], st);
            if (rc == CUDA_SUCCESS && d->cuStreamSynchronize)
                rc = d->cuStreamSynchronize(st);
        } else if (d->cuMemcpyDtoH) {
            rc = d->cuMemcpyDtoH(buf, a[0], (size_t)a[1]);
        } else {
            rc = CUDA_ERROR_NOT_SUPPORTED;
        }
        if (rc != CUDA_SUCCESS) {
            free(buf);
            return rc;
        }
        res->bulk = buf;
        res->bulk_len = a[1];
        return CUDA_SUCCESS;
    }
    case VG_CALL_MEMCPY_DTOD:
    case VG_CALL_MEMCPY_DTOD_ASYNC:
        /* args: dst, src, size, stream */
        ARGS(4);
        if (!range_ok(s, a[0], a[2]) || !range_ok(s, a[1], a[2]))
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[3], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_MEMCPY_DTOD_ASYNC && d->cuMemcpyDtoDAsync)
            return d->cuMemcpyDtoDAsync(a[0], a[1], (size_t)a[2], st);
        NEED(cuMemcpyDtoD);
        return d->cuMemcpyDtoD(a[0], a[1], (size_t)a[2]);
    case VG_CALL_MODULE_LOAD_DATA: {
        NEED(cuModuleLoadData);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (!image_ok(bulk, bulk_len))
            return CUDA_ERROR_INVALID_IMAGE;
        CUmodule m = NULL;
        rc = d->cuModuleLoadData(&m, bulk);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = new_handle_out(s, res, H_MOD, m, ctx1);
        if (rc != CUDA_SUCCESS)
            d->cuModuleUnload(m);
        else
            s->h[(uint32_t)res->outs[0] - 1].owned = 1;
        return rc;
    }
    case VG_CALL_MODULE_UNLOAD:
        NEED(cuModuleUnload);
        ARGS(1);
        i = hget(s, a[0], H_MOD);
        if (i < 0 || !s->h[i].owned)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuModuleUnload(s->h[i].real);
        if (rc == CUDA_SUCCESS) {
            for (uint32_t k = 0; k < s->nh; k++)
                if (s->h[k].live && s->h[k].type == H_FUNC && s->h[k].parent == (uint32_t)i + 1)
                    hfree(s, k);
            hfree(s, (uint32_t)i);
        }
        return rc;
    case VG_CALL_MODULE_GET_FUNCTION: {
        NEED(cuModuleGetFunction);
        ARGS(1);
        i = hget(s, a[0], H_MOD);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUfunction f = NULL;
        rc = d->cuModuleGetFunction(&f, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        int fi = hfind_real(s, H_FUNC, f);
        if (fi >= 0) {
            out(res, hid(s, (uint32_t)fi));
            return CUDA_SUCCESS;
        }
        rc = new_handle_out(s, res, H_FUNC, f, s->h[i].ctx);
        if (rc == CUDA_SUCCESS)
            s->h[(uint32_t)res->outs[0] - 1].parent = (uint32_t)i + 1;
        return rc;
    }
    case VG_CALL_MODULE_GET_GLOBAL: {
        NEED(cuModuleGetGlobal);
        ARGS(1);
        i = hget(s, a[0], H_MOD);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUdeviceptr p = 0;
        size_t size = 0;
        rc = d->cuModuleGetGlobal(&p, &size, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (!range_ok(s, p, size) && range_add(s, p, size, s->h[i].ctx, 0) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        out(res, p);
        out(res, size);
        return CUDA_SUCCESS;
    }
    case VG_CALL_LIBRARY_LOAD_DATA: {
        NEED(cuLibraryLoadData);
        if (!image_ok(bulk, bulk_len))
            return CUDA_ERROR_INVALID_IMAGE;
        CUlibrary l = NULL;
        rc = d->cuLibraryLoadData(&l, bulk, NULL, NULL, 0, NULL, NULL, 0);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = new_handle_out(s, res, H_LIB, l, 0);
        if (rc != CUDA_SUCCESS)
            d->cuLibraryUnload(l);
        return rc;
    }
    case VG_CALL_LIBRARY_GET_GLOBAL: {
        NEED(cuLibraryGetGlobal);
        ARGS(1);
        i = hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUdeviceptr p = 0;
        size_t size = 0;
        rc = d->cuLibraryGetGlobal(&p, &size, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (!range_ok(s, p, size) && range_add(s, p, size, ctx1, 0) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        out(res, p);
        out(res, size);
        return CUDA_SUCCESS;
    }
    case VG_CALL_KERNEL_GET_ATTRIBUTE: {
        /* args: attribute, kernel, device */
        NEED(cuKernelGetAttribute);
        ARGS(3);
        i = hget(s, a[1], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        int v = 0;
        rc = d->cuKernelGetAttribute(&v, (CUfunction_attribute)a[0], s->h[i].real, (CUdevice)a[2]);
        out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_KERNEL_SET_ATTRIBUTE: {
        /* args: attribute, value, kernel, device */
        NEED(cuKernelSetAttribute);
        ARGS(4);
        i = hget(s, a[2], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        return d->cuKernelSetAttribute((CUfunction_attribute)a[0], (int)a[1], s->h[i].real, (CUdevice)a[3]);
    }
    case VG_CALL_DEVICE_GET_PCI_BUS_ID:
        NEED(cuDeviceGetPCIBusId);
        ARGS(1);
        return d->cuDeviceGetPCIBusId(res->str, (int)sizeof res->str - 1, (CUdevice)a[0]);
    case VG_CALL_STREAM_GET_CTX:
        /* The context a created stream belongs to; the default streams belong to the caller's. */
        ARGS(1);
        if (a[0] <= 2) {
            if (!ctx1)
                return CUDA_ERROR_INVALID_CONTEXT;
            out(res, hid(s, ctx1 - 1));
            return CUDA_SUCCESS;
        }
        i = hget(s, a[0], H_STREAM);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        out(res, hid(s, s->h[i].ctx - 1));
        return CUDA_SUCCESS;
    case VG_CALL_STREAM_GET_ID: {
        NEED(cuStreamGetId);
        ARGS(1);
        if (stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        unsigned long long sid = 0;
        rc = d->cuStreamGetId(st, &sid);
        out(res, sid);
        return rc;
    }
    case VG_CALL_FUNC_GET_NAME:
    case VG_CALL_KERNEL_GET_NAME: {
        ARGS(1);
        const char *name = NULL;
        if (c->call == VG_CALL_FUNC_GET_NAME) {
            NEED(cuFuncGetName);
            i = hget(s, a[0], H_FUNC);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuFuncGetName(&name, s->h[i].real);
        } else {
            NEED(cuKernelGetName);
            i = hget(s, a[0], H_KERN);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuKernelGetName(&name, s->h[i].real);
        }
        if (rc == CUDA_SUCCESS && name)
            snprintf(res->str, sizeof res->str, "%s", name);
        return rc;
    }
    case VG_CALL_MEM_ALLOC_PITCH: {
        /* args: width in bytes, height, element size; outs: pointer, pitch */
        NEED(cuMemAllocPitch);
        ARGS(3);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (a[0] > ((uint64_t)1 << 40) || a[1] > ((uint64_t)1 << 40))
            return CUDA_ERROR_INVALID_VALUE;
        CUdeviceptr p = 0;
        size_t pitch = 0;
        rc = d->cuMemAllocPitch(&p, &pitch, (size_t)a[0], (size_t)a[1], (unsigned)a[2]);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (range_add(s, p, pitch * (size_t)a[1], ctx1, 1) < 0) {
            d->cuMemFree(p);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        out(res, p);
        out(res, pitch);
        return CUDA_SUCCESS;
    }
    case VG_CALL_MEMSET_2D: {
        /* args: dst, pitch, value, element size (1, 2, 4), width (elements), height, stream */
        ARGS(7);
        uint64_t dst = a[0], pitch = a[1], esz = a[3], width = a[4], height = a[5];
        if ((esz != 1 && esz != 2 && esz != 4) || width > ((uint64_t)1 << 40) || height > ((uint64_t)1 << 40) ||
            pitch > ((uint64_t)1 << 40) || width * esz > pitch)
            return CUDA_ERROR_INVALID_VALUE;
        if (height && !range_ok(s, dst, pitch * (height - 1) + width * esz))
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[6], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (esz == 1) {
            NEED(cuMemsetD2D8Async);
            return d->cuMemsetD2D8Async(dst, (size_t)pitch, (unsigned char)a[2], (size_t)width, (size_t)height, st);
        }
        if (esz == 2) {
            NEED(cuMemsetD2D16Async);
            return d->cuMemsetD2D16Async(dst, (size_t)pitch, (unsigned short)a[2], (size_t)width, (size_t)height, st);
        }
        NEED(cuMemsetD2D32Async);
        return d->cuMemsetD2D32Async(dst, (size_t)pitch, (unsigned)a[2], (size_t)width, (size_t)height, st);
    }
    case VG_CALL_LIBRARY_UNLOAD:
        NEED(cuLibraryUnload);
        ARGS(1);
        i = hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuLibraryUnload(s->h[i].real);
        if (rc == CUDA_SUCCESS) {
            for (uint32_t k = 0; k < s->nh; k++)
                if (s->h[k].live && s->h[k].parent == (uint32_t)i + 1)
                    hfree(s, k);
            hfree(s, (uint32_t)i);
        }
        return rc;
    case VG_CALL_LIBRARY_GET_KERNEL:
    case VG_CALL_LIBRARY_GET_MODULE: {
        ARGS(1);
        i = hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        void *obj = NULL;
        int type = c->call == VG_CALL_LIBRARY_GET_KERNEL ? H_KERN : H_MOD;
        if (type == H_KERN) {
            NEED(cuLibraryGetKernel);
            rc = d->cuLibraryGetKernel((CUkernel *)&obj, s->h[i].real, c->name);
        } else {
            NEED(cuLibraryGetModule);
            rc = d->cuLibraryGetModule((CUmodule *)&obj, s->h[i].real);
        }
        if (rc != CUDA_SUCCESS)
            return rc;
        int k = hfind_real(s, type, obj);
        if (k >= 0) {
            out(res, hid(s, (uint32_t)k));
            return CUDA_SUCCESS;
        }
        rc = new_handle_out(s, res, type, obj, ctx1);
        if (rc == CUDA_SUCCESS)
            s->h[(uint32_t)res->outs[0] - 1].parent = (uint32_t)i + 1;
        return rc;
    }
    case VG_CALL_KERNEL_GET_FUNCTION: {
        NEED(cuKernelGetFunction);
        ARGS(1);
        i = hget(s, a[0], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUfunction f = NULL;
        rc = d->cuKernelGetFunction(&f, s->h[i].real);
        if (rc != CUDA_SUCCESS)
            return rc;
        int fi = hfind_real(s, H_FUNC, f);
        if (fi >= 0) {
            out(res, hid(s, (uint32_t)fi));
            return CUDA_SUCCESS;
        }
        rc = new_handle_out(s, res, H_FUNC, f, ctx1);
        if (rc == CUDA_SUCCESS)
            s->h[(uint32_t)res->outs[0] - 1].parent = s->h[i].parent;
        return rc;
    }
    case VG_CALL_FUNC_GET_PARAM_LAYOUT: {
        /* outs: count, then offset and size of each parameter */
        ARGS(1);
        CUfunction f;
        rc = func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = load_layout(s, i, f);
        if (rc != CUDA_SUCCESS)
            return rc;
        struct handle *e = &s->h[i];
        uint64_t *o = malloc((1 + 2 * (size_t)e->nparams) * sizeof *o);
        if (!o)
            return CUDA_ERROR_OUT_OF_MEMORY;
        o[0] = (uint64_t)e->nparams;
        for (int k = 0; k < e->nparams; k++) {
            o[1 + 2 * k] = e->param_off[k];
            o[2 + 2 * k] = e->param_size[k];
        }
        res->outs = o;
        res->n_outs = 1 + 2 * (size_t)e->nparams;
        return CUDA_SUCCESS;
    }
    case VG_CALL_FUNC_GET_ATTRIBUTE: {
        NEED(cuFuncGetAttribute);
        ARGS(2);
        CUfunction f;
        rc = func_arg(s, a[1], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        int v = 0;
        rc = d->cuFuncGetAttribute(&v, (CUfunction_attribute)a[0], f);
        out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_FUNC_SET_ATTRIBUTE: {
        NEED(cuFuncSetAttribute);
        ARGS(3);
        CUfunction f;
        rc = func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        return d->cuFuncSetAttribute(f, (CUfunction_attribute)a[1], (int)a[2]);
    }
    case VG_CALL_FUNC_SET_CACHE_CONFIG: {
        NEED(cuFuncSetCacheConfig);
        ARGS(2);
        CUfunction f;
        rc = func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        return d->cuFuncSetCacheConfig(f, (CUfunc_cache)a[1]);
    }
    case VG_CALL_LAUNCH_KERNEL: {
        /* args: function, grid x y z, block x y z, shared bytes, stream; bulk: the parameter
         * buffer laid out as cuFuncGetParamInfo says */
        NEED(cuLaunchKernel);
        ARGS(9);
        CUfunction f;
        rc = func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = load_layout(s, i, f);
        if (rc != CUDA_SUCCESS)
            return rc;
        struct handle *e = &s->h[i];
        if (bulk_len < e->param_bytes)
            return CUDA_ERROR_INVALID_VALUE;
        for (int k = 1; k < 7; k++)
            if (a[k] == 0 || a[k] > 0x7fffffff)
                return CUDA_ERROR_INVALID_VALUE;
        if (a[7] > 0x7fffffff)
            return CUDA_ERROR_INVALID_VALUE;
        if (stream_arg(s, a[8], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        void *params_inline[32];
        void **params = params_inline;
        if (e->nparams > 32) {
            params = malloc((size_t)e->nparams * sizeof *params);
            if (!params)
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        for (int k = 0; k < e->nparams; k++)
            params[k] = (void *)(bulk + e->param_off[k]);
        rc = d->cuLaunchKernel(f, (unsigned)a[1], (unsigned)a[2], (unsigned)a[3], (unsigned)a[4],
                               (unsigned)a[5], (unsigned)a[6], (unsigned)a[7], st,
                               e->nparams ? params : NULL, NULL);
        if (params != params_inline)
            free(params);
        return rc;
    }
    case VG_CALL_STREAM_CREATE: {
        /* args: flags, priority, with_priority */
        ARGS(3);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUstream ns = NULL;
        if (a[2]) {
            NEED(cuStreamCreateWithPriority);
            rc = d->cuStreamCreateWithPriority(&ns, (unsigned)a[0], (int)a[1]);
        } else {
            NEED(cuStreamCreate);
            rc = d->cuStreamCreate(&ns, (unsigned)a[0]);
        }
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = new_handle_out(s, res, H_STREAM, ns, ctx1);
        if (rc != CUDA_SUCCESS)
            d->cuStreamDestroy(ns);
        return rc;
    }
    case VG_CALL_STREAM_DESTROY:
        NEED(cuStreamDestroy);
        ARGS(1);
        i = hget(s, a[0], H_STREAM);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuStreamDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_STREAM_SYNCHRONIZE:
    case VG_CALL_STREAM_QUERY:
    case VG_CALL_STREAM_GET_PRIORITY:
    case VG_CALL_STREAM_GET_FLAGS: {
        ARGS(1);
        if (stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_STREAM_SYNCHRONIZE) {
            NEED(cuStreamSynchronize);
            return d->cuStreamSynchronize(st);
        }
        if (c->call == VG_CALL_STREAM_QUERY) {
            NEED(cuStreamQuery);
            return d->cuStreamQuery(st);
        }
        if (c->call == VG_CALL_STREAM_GET_PRIORITY) {
            NEED(cuStreamGetPriority);
            int p = 0;
            rc = d->cuStreamGetPriority(st, &p);
            out(res, (uint64_t)(int64_t)p);
            return rc;
        }
        NEED(cuStreamGetFlags);
        unsigned fl = 0;
        rc = d->cuStreamGetFlags(st, &fl);
        out(res, fl);
        return rc;
    }
    case VG_CALL_STREAM_WAIT_EVENT: {
        NEED(cuStreamWaitEvent);
        ARGS(3);
        if (stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        i = hget(s, a[1], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        return d->cuStreamWaitEvent(st, s->h[i].real, (unsigned)a[2]);
    }
    case VG_CALL_EVENT_CREATE: {
        NEED(cuEventCreate);
        ARGS(1);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUevent ev = NULL;
        rc = d->cuEventCreate(&ev, (unsigned)a[0]);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = new_handle_out(s, res, H_EVENT, ev, ctx1);
        if (rc != CUDA_SUCCESS)
            d->cuEventDestroy(ev);
        return rc;
    }
    case VG_CALL_EVENT_DESTROY:
    case VG_CALL_EVENT_SYNCHRONIZE:
    case VG_CALL_EVENT_QUERY:
        ARGS(1);
        i = hget(s, a[0], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_EVENT_SYNCHRONIZE) {
            NEED(cuEventSynchronize);
            return d->cuEventSynchronize(s->h[i].real);
        }
        if (c->call == VG_CALL_EVENT_QUERY) {
            NEED(cuEventQuery);
            return d->cuEventQuery(s->h[i].real);
        }
        NEED(cuEventDestroy);
        rc = d->cuEventDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_EVENT_RECORD:
        NEED(cuEventRecord);
        ARGS(2);
        i = hget(s, a[0], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (stream_arg(s, a[1], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->n_args >= 3 && a[2]) {
            NEED(cuEventRecordWithFlags);
            return d->cuEventRecordWithFlags(s->h[i].real, st, (unsigned)a[2]);
        }
        return d->cuEventRecord(s->h[i].real, st);
    case VG_CALL_EVENT_ELAPSED_TIME: {
        NEED(cuEventElapsedTime);
        ARGS(2);
        int i0 = hget(s, a[0], H_EVENT), i1 = hget(s, a[1], H_EVENT);
        if (i0 < 0 || i1 < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        float ms = 0;
        rc = d->cuEventElapsedTime(&ms, s->h[i0].real, s->h[i1].real);
        uint32_t bits;
        memcpy(&bits, &ms, sizeof bits);
        out(res, bits);
        return rc;
    }
    case VG_CALL_POINTER_GET_ATTRIBUTE: {
        NEED(cuPointerGetAttribute);
        ARGS(2);
        CUpointer_attribute attr = (CUpointer_attribute)a[0];
        switch (attr) {
        case CU_POINTER_ATTRIBUTE_CONTEXT:
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
            break;
        default:
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        if (!range_ok(s, a[1], 0))
            return CUDA_ERROR_INVALID_VALUE;
        uint64_t v = 0;
        rc = d->cuPointerGetAttribute(&v, attr, a[1]);
        if (rc == CUDA_SUCCESS && attr == CU_POINTER_ATTRIBUTE_CONTEXT) {
            int ci = hfind_real(s, H_CTX, (void *)(uintptr_t)v);
            v = ci >= 0 ? hid(s, (uint32_t)ci) : 0;
        }
        out(res, v);
        return rc;
    }
    case VG_CALL_OCCUPANCY_MAX_BLOCKS: {
        NEED(cuOccupancyMaxActiveBlocksPerMultiprocessor);
        ARGS(3);
        CUfunction f;
        rc = func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        int n = 0;
        if (c->n_args >= 4 && a[3]) {
            NEED(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags);
            rc = d->cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&n, f, (int)a[1], (size_t)a[2],
                                                                         (unsigned)a[3]);
        } else {
            rc = d->cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, f, (int)a[1], (size_t)a[2]);
        }
        out(res, (uint64_t)(int64_t)n);
        return rc;
    }
    default:
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

void vg_sess_execute(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                     int no_reply, struct vg_result *res)
{
    uint32_t ctx1 = 0;
    CUresult rc;
    if (c->call >= VG_CALL_COUNT) {
        rc = CUDA_ERROR_NOT_SUPPORTED;
        goto done;
    }
    if (c->ctx) {
        int i = hget(s, c->ctx, H_CTX);
        if (i < 0) {
            rc = CUDA_ERROR_INVALID_CONTEXT;
            goto done;
        }
        ctx1 = (uint32_t)i + 1;
    }
    /* The driver keeps a current context per thread and this worker serves many sessions. */
    rc = set_ctx(s, ctx1);
    if (rc == CUDA_SUCCESS)
        rc = run(s, c, bulk, bulk_len, res, ctx1);
done:
    res->result = rc;
    if (rc != CUDA_SUCCESS && vg_log_enabled(VG_LOG_DEBUG))
        vg_debug("session %llu (%s): %s failed with CUresult %d", (unsigned long long)s->id,
                 s->peer, vg_call_name(c->call), (int)rc);
    /* An error nobody will read now is reported at the next synchronizing call. */
    int kind = vg_call_kind(c->call);
    if (no_reply && rc != CUDA_SUCCESS && s->deferred == CUDA_SUCCESS)
        s->deferred = rc;
    if (kind == VG_SYNCING && rc == CUDA_SUCCESS && s->deferred != CUDA_SUCCESS) {
        res->result = s->deferred;
        s->deferred = CUDA_SUCCESS;
    }
}

void vg_sess_destroy_all(struct vg_sess *s)
{
    if (s->destroyed)
        return;
    s->destroyed = 1;
    const struct vg_drv *d = s->drv;
    unsigned long freed = 0;
    for (uint32_t i = 0; i < s->nr; i++)
        freed += s->r[i].owned;
    /* Per context: make it current, destroy its objects; then the context itself. */
    for (uint32_t i = 0; i < s->nh; i++) {
        struct handle *e = &s->h[i];
        if (!e->live || e->type != H_CTX)
            continue;
        if (set_ctx(s, i + 1) == CUDA_SUCCESS && d->cuCtxSynchronize)
            d->cuCtxSynchronize();
        destroy_children(s, i + 1);
        d->cuCtxSetCurrent(NULL);
        if (d->cuCtxDestroy)
            d->cuCtxDestroy(e->real); /* "primary" contexts are the session's own too */
        hfree(s, i);
    }
    /* Libraries are context-independent. */
    destroy_children(s, 0);
    d->cuCtxSetCurrent(NULL);
    vg_info("session %llu (%s) ended: released %lu allocations", (unsigned long long)s->id, s->peer,
            freed);
}

void vg_sess_free(struct vg_sess *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nh; i++) {
        free(s->h[i].param_off);
        free(s->h[i].param_size);
    }
    free(s->h);
    free(s->r);
    free(s);
}
