#include "session_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fatbin.h"
#include "log.h"
#include "ptx.h"

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

void sess_out(struct vg_result *r, uint64_t v)
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

uint64_t sess_hid(const struct vg_sess *s, uint32_t slot)
{
    const struct handle *e = &s->h[slot];
    return ((uint64_t)e->type << 56) | ((uint64_t)(e->gen & 0xffffff) << 32) | (uint64_t)(slot + 1);
}

/* Returns the slot of a new handle, or -1 (table full / ENOMEM). */
int sess_hnew(struct vg_sess *s, int type, void *real, uint32_t ctx)
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

void sess_hfree(struct vg_sess *s, uint32_t slot)
{
    struct handle *e = &s->h[slot];
    if (e->charged)
        sess_mem_refund(s, e->charged_dev, e->charged); /* a module's globals go with it */
    free(e->param_off);
    free(e->param_size);
    uint32_t gen = e->gen;
    memset(e, 0, sizeof *e);
    e->gen = gen;
    e->ctx = s->free_head;
    s->free_head = slot + 1;
}

/* The live slot of id if it has the given type, else -1. */
int sess_hget(const struct vg_sess *s, uint64_t id, int type)
{
    uint32_t slot1 = (uint32_t)id;
    if ((int)(id >> 56) != type || slot1 == 0 || slot1 > s->nh)
        return -1;
    const struct handle *e = &s->h[slot1 - 1];
    if (!e->live || e->type != type || (e->gen & 0xffffff) != ((id >> 32) & 0xffffff))
        return -1;
    return (int)(slot1 - 1);
}

int sess_hfind_real(const struct vg_sess *s, int type, const void *real)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].type == type && s->h[i].real == real)
            return (int)i;
    return -1;
}

/* ---- device memory ranges ------------------------------------------------------------ */

int sess_range_add(struct vg_sess *s, CUdeviceptr base, size_t size, uint32_t ctx, int owned)
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
    s->r[s->nr++] = (struct range){.base = base, .size = size, .ctx = ctx, .owned = owned};
    if (owned)
        __atomic_fetch_add(&s->owned_allocs, 1, __ATOMIC_RELAXED);
    return 0;
}

int sess_alloc_add(struct vg_sess *s, CUdeviceptr base, size_t size, uint32_t ctx, int dev, uint64_t charged)
{
    if (sess_range_add(s, base, size, ctx, 1) < 0)
        return -1;
    s->r[s->nr - 1].dev = dev;
    s->r[s->nr - 1].charged = charged;
    return 0;
}

void sess_range_del(struct vg_sess *s, uint32_t i)
{
    if (s->r[i].owned)
        __atomic_fetch_sub(&s->owned_allocs, 1, __ATOMIC_RELAXED);
    if (s->r[i].charged)
        sess_mem_refund(s, s->r[i].dev, s->r[i].charged);
    s->r[i] = s->r[--s->nr];
}

/* ---- tenant accounting ---------------------------------------------------------------- */

void vg_sess_set_acct(struct vg_sess *s, const struct vg_sess_acct *acct)
{
    s->acct = *acct;
}

CUresult sess_mem_charge(struct vg_sess *s, int dev, uint64_t bytes)
{
    if (!s->acct.charge || !bytes)
        return CUDA_SUCCESS;
    return s->acct.charge(s->acct.arg, dev, bytes) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

void sess_mem_refund(struct vg_sess *s, int dev, uint64_t bytes)
{
    if (s->acct.refund && bytes)
        s->acct.refund(s->acct.arg, dev, bytes);
}

int sess_ctx_device(const struct vg_sess *s, uint32_t ctx1)
{
    return ctx1 ? s->h[ctx1 - 1].device : s->device;
}

uint64_t sess_image_global_bytes(const uint8_t *image, uint64_t len)
{
    const void *data = NULL;
    size_t size = 0;
    char *owned_ptx = NULL;
    const char *ptx = NULL;
    size_t ptx_len = 0;
    enum vg_image_kind kind = vg_image_locate(image, &data, &size);
    if (kind == VG_IMAGE_PTX && size <= len + 1) {
        ptx = (const char *)image;
        ptx_len = strnlen(ptx, (size_t)len);
    } else if (kind == VG_IMAGE_FATBIN && data == (const void *)image && size <= len) {
        int only_elf = 0;
        if (vg_fatbin_extract_ptx(image, size, &owned_ptx, &ptx_len, &only_elf) == 0)
            ptx = owned_ptx;
    }
    uint64_t bytes = 0;
    ptx_module *m = NULL;
    char err[16];
    if (ptx && ptx_module_parse(ptx, ptx_len, &m, err, sizeof err) == PTX_OK) {
        for (size_t i = 0; i < ptx_module_global_count(m); i++) {
            ptx_global_info g;
            ptx_module_global(m, i, &g);
            bytes += g.size;
        }
        ptx_module_free(m);
    }
    free(owned_ptx);
    return bytes;
}

unsigned vg_sess_owned_allocations(const struct vg_sess *s)
{
    return __atomic_load_n(&s->owned_allocs, __ATOMIC_RELAXED);
}

/* True when [p, p+len) lies inside one range of this session. */
int sess_range_ok(const struct vg_sess *s, uint64_t p, uint64_t len)
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
int sess_stream_arg(const struct vg_sess *s, uint64_t v, CUstream *out_stream)
{
    if (v <= 2) {
        *out_stream = (CUstream)(uintptr_t)v;
        return 0;
    }
    int i = sess_hget(s, v, H_STREAM);
    if (i < 0)
        return -1;
    *out_stream = s->h[i].real;
    return 0;
}

/* Forgets (without driver calls) everything recorded in context slot ctx1, which the driver has
 * destroyed or which the session no longer holds. */
void sess_drop_ctx_children(struct vg_sess *s, uint32_t ctx1)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].ctx == ctx1 && i + 1 != ctx1)
            sess_hfree(s, i);
    for (uint32_t i = 0; i < s->nr;)
        if (s->r[i].ctx == ctx1)
            sess_range_del(s, i);
        else
            i++;
}

/* Destroys, with driver calls, the objects of context slot ctx1 (or of every context when ctx1
 * is 0), leaving the contexts themselves. The context must be current. */
void sess_destroy_children(struct vg_sess *s, uint32_t ctx1)
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
            sess_hfree(s, i);
        }
    }
    for (uint32_t i = 0; i < s->nr;) {
        if (ctx1 && s->r[i].ctx != ctx1) {
            i++;
            continue;
        }
        if (s->r[i].owned && d->cuMemFree)
            d->cuMemFree(s->r[i].base);
        sess_range_del(s, i);
    }
}

CUresult sess_set_ctx(struct vg_sess *s, uint32_t ctx1)
{
    CUcontext c = ctx1 ? s->h[ctx1 - 1].real : NULL;
    if (ctx1)
        s->device = s->h[ctx1 - 1].device;
    return s->drv->cuCtxSetCurrent(c);
}

/* Loads the parameter layout of function slot fi with cuFuncGetParamInfo. */
CUresult sess_load_layout(struct vg_sess *s, int fi, CUfunction f)
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
CUresult sess_func_arg(struct vg_sess *s, uint64_t v, int *slot, CUfunction *f)
{
    int i = sess_hget(s, v, H_FUNC);
    if (i >= 0) {
        *slot = i;
        *f = s->h[i].real;
        return CUDA_SUCCESS;
    }
    i = sess_hget(s, v, H_KERN);
    if (i < 0 || !s->drv->cuKernelGetFunction)
        return CUDA_ERROR_INVALID_HANDLE;
    *slot = i;
    return s->drv->cuKernelGetFunction(f, s->h[i].real);
}

CUresult sess_new_handle_out(struct vg_sess *s, struct vg_result *res, int type, void *real,
                               uint32_t ctx1)
{
    int i = sess_hnew(s, type, real, ctx1);
    if (i < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    sess_out(res, sess_hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

int vg_sess_work_target(const struct vg_sess *s, const Vgpu__Call *c, CUcontext *ctx, CUstream *stream, int *device)
{
    const uint64_t *a = c->args;
    size_t n = c->n_args;
    uint64_t stream_arg;
    /* Which argument names the stream, per call (protocol/README.md); synchronous copies run on
     * the legacy stream. */
    switch (c->call) {
    case VG_CALL_LAUNCH_KERNEL: if (n < 9) return -1; stream_arg = a[8]; break;
    case VG_CALL_MEMSET: if (n < 5) return -1; stream_arg = a[4]; break;
    case VG_CALL_MEMSET_2D: if (n < 7) return -1; stream_arg = a[6]; break;
    case VG_CALL_MEMCPY_HTOD_ASYNC: if (n < 2) return -1; stream_arg = a[1]; break;
    case VG_CALL_MEMCPY_DTOD_ASYNC: if (n < 4) return -1; stream_arg = a[3]; break;
    case VG_CALL_MEMCPY_DTOH: if (n < 4) return -1; stream_arg = a[3] ? a[2] : 1; break;
    case VG_CALL_MEMCPY_HTOD:
    case VG_CALL_MEMCPY_DTOD: stream_arg = 1; break; /* CU_STREAM_LEGACY */
    default: return -1;
    }
    if (!c->ctx)
        return -1; /* no context: the call fails by itself */
    int ci = sess_hget(s, c->ctx, H_CTX);
    if (ci < 0 || sess_stream_arg(s, stream_arg, stream) < 0)
        return -1;
    *ctx = s->h[ci].real;
    *device = s->h[ci].device;
    return 0;
}

/* The context slot of handle ctx (0: none) in *ctx1, made current. */
static CUresult use_ctx(struct vg_sess *s, uint64_t ctx, uint32_t *ctx1)
{
    *ctx1 = 0;
    if (ctx) {
        int i = sess_hget(s, ctx, H_CTX);
        if (i < 0)
            return CUDA_ERROR_INVALID_CONTEXT;
        *ctx1 = (uint32_t)i + 1;
    }
    /* The driver keeps a current context per thread and this worker serves many sessions. */
    return sess_set_ctx(s, *ctx1);
}

CUresult vg_sess_use_ctx(struct vg_sess *s, uint64_t ctx)
{
    uint32_t ctx1;
    return use_ctx(s, ctx, &ctx1);
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
    rc = use_ctx(s, c->ctx, &ctx1);
    if (rc == CUDA_SUCCESS)
        rc = vg_sess_run(s, c, bulk, bulk_len, res, ctx1);
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

void vg_sess_copy_done(struct vg_sess *s, struct vg_result *res, CUresult rc, int no_reply)
{
    if (rc == CUDA_SUCCESS)
        return;
    if (no_reply) {
        if (s->deferred == CUDA_SUCCESS)
            s->deferred = rc;
    } else if (res->result == CUDA_SUCCESS) {
        res->result = rc;
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
        if (sess_set_ctx(s, i + 1) == CUDA_SUCCESS && d->cuCtxSynchronize)
            d->cuCtxSynchronize();
        sess_destroy_children(s, i + 1);
        d->cuCtxSetCurrent(NULL);
        if (d->cuCtxDestroy)
            d->cuCtxDestroy(e->real); /* "primary" contexts are the session's own too */
        sess_hfree(s, i);
    }
    /* Libraries are context-independent. */
    sess_destroy_children(s, 0);
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
