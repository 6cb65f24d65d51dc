/* emu_tex: texture and surface objects, and the callbacks through which the PTX interpreter's
 * texture and surface instructions reach them (ptx_memory.tex_fetch / surf_access / tex_query).
 *
 * An object is a 64-bit handle: a slot index plus one in the low 32 bits and the slot's
 * generation in the high 32, so a destroyed or forged handle fails lookup instead of reaching
 * freed memory. An object belongs to the context that created it; a kernel of another context
 * cannot use it (CUDA_ERROR_ILLEGAL_ADDRESS, like a foreign pointer). Objects over arrays hold a
 * reference to the array; objects over linear or pitched device memory resolve that memory
 * through the launching context's address space at every fetch, so freed memory is an illegal
 * address, not a use after free. Destroying an object first drains its context (the only one
 * whose kernels may use it). */
#include "emu.h"
#include "emu_sample.h"

#include <stdlib.h>
#include <string.h>

typedef struct emu_texobj {
    int surface;
    emu_ctx *ctx;
    CUDA_RESOURCE_DESC res;
    CUDA_TEXTURE_DESC tex;
    CUDA_RESOURCE_VIEW_DESC view;
    int has_view;
    emu_array *array;              /* referenced (ARRAY, or a mipmap's levels through mipmap) */
    emu_mipmap *mipmap;
    emu_tex_view sampler;          /* levels filled per fetch for linear memory */
    emu_tex_level *levels;         /* for arrays: fixed; for linear memory: data set per fetch */
    size_t elem_size;
    int fmt_kind;
    unsigned comp_bytes, channels;
} emu_texobj;

struct slot {
    emu_texobj *obj;
    uint32_t gen;
};

static pthread_rwlock_t tex_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct slot *slots;
static size_t nslots, slots_cap;
static uint32_t free_hint;

static uint64_t handle_of(size_t i)
{
    return ((uint64_t)slots[i].gen << 32) | (uint64_t)(i + 1);
}

/* The object for handle h (any context), under the read lock held by the caller; NULL if none. */
static emu_texobj *lookup(uint64_t h, int surface)
{
    uint64_t i = (h & 0xffffffffu) - 1;
    if ((h & 0xffffffffu) == 0 || i >= nslots || slots[i].gen != (uint32_t)(h >> 32) ||
        !slots[i].obj || slots[i].obj->surface != surface)
        return NULL;
    return slots[i].obj;
}

static CUresult insert(emu_texobj *o, uint64_t *handle)
{
    pthread_rwlock_wrlock(&tex_lock);
    size_t i = free_hint < nslots ? free_hint : 0;
    for (; i < nslots && slots[i].obj; i++)
        ;
    if (i == nslots) {
        if (nslots == slots_cap) {
            size_t ncap = slots_cap ? slots_cap * 2 : 64;
            if (ncap > 0xffffffffu) {
                pthread_rwlock_unlock(&tex_lock);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            struct slot *n = realloc(slots, ncap * sizeof *n);
            if (!n) {
                pthread_rwlock_unlock(&tex_lock);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            memset(n + slots_cap, 0, (ncap - slots_cap) * sizeof *n);
            slots = n;
            slots_cap = ncap;
        }
        nslots++;
    }
    slots[i].obj = o;
    slots[i].gen++;
    *handle = handle_of(i);
    free_hint = (uint32_t)(i + 1);
    pthread_rwlock_unlock(&tex_lock);
    return CUDA_SUCCESS;
}

static void obj_free(emu_texobj *o)
{
    emu_array_unref(o->array);
    emu_mipmap_unref(o->mipmap);
    free(o->levels);
    free(o);
}

/* ---- building an object ---- */

static int addr_mode_ok(CUaddress_mode m)
{
    return m >= CU_TR_ADDRESS_MODE_WRAP && m <= CU_TR_ADDRESS_MODE_BORDER;
}

/* A view format's component kind, size and count; 0 for NONE, -1 for ones we do not have. */
static int view_format(CUresourceViewFormat f, int *kind, unsigned *bytes, unsigned *ch)
{
    static const struct { int kind; unsigned bytes, ch; } t[] = {
        [CU_RES_VIEW_FORMAT_UINT_1X8] = {EMU_FMT_UINT, 1, 1},
        [CU_RES_VIEW_FORMAT_UINT_2X8] = {EMU_FMT_UINT, 1, 2},
        [CU_RES_VIEW_FORMAT_UINT_4X8] = {EMU_FMT_UINT, 1, 4},
        [CU_RES_VIEW_FORMAT_SINT_1X8] = {EMU_FMT_SINT, 1, 1},
        [CU_RES_VIEW_FORMAT_SINT_2X8] = {EMU_FMT_SINT, 1, 2},
        [CU_RES_VIEW_FORMAT_SINT_4X8] = {EMU_FMT_SINT, 1, 4},
        [CU_RES_VIEW_FORMAT_UINT_1X16] = {EMU_FMT_UINT, 2, 1},
        [CU_RES_VIEW_FORMAT_UINT_2X16] = {EMU_FMT_UINT, 2, 2},
        [CU_RES_VIEW_FORMAT_UINT_4X16] = {EMU_FMT_UINT, 2, 4},
        [CU_RES_VIEW_FORMAT_SINT_1X16] = {EMU_FMT_SINT, 2, 1},
        [CU_RES_VIEW_FORMAT_SINT_2X16] = {EMU_FMT_SINT, 2, 2},
        [CU_RES_VIEW_FORMAT_SINT_4X16] = {EMU_FMT_SINT, 2, 4},
        [CU_RES_VIEW_FORMAT_UINT_1X32] = {EMU_FMT_UINT, 4, 1},
        [CU_RES_VIEW_FORMAT_UINT_2X32] = {EMU_FMT_UINT, 4, 2},
        [CU_RES_VIEW_FORMAT_UINT_4X32] = {EMU_FMT_UINT, 4, 4},
        [CU_RES_VIEW_FORMAT_SINT_1X32] = {EMU_FMT_SINT, 4, 1},
        [CU_RES_VIEW_FORMAT_SINT_2X32] = {EMU_FMT_SINT, 4, 2},
        [CU_RES_VIEW_FORMAT_SINT_4X32] = {EMU_FMT_SINT, 4, 4},
        [CU_RES_VIEW_FORMAT_FLOAT_1X16] = {EMU_FMT_HALF, 2, 1},
        [CU_RES_VIEW_FORMAT_FLOAT_2X16] = {EMU_FMT_HALF, 2, 2},
        [CU_RES_VIEW_FORMAT_FLOAT_4X16] = {EMU_FMT_HALF, 2, 4},
        [CU_RES_VIEW_FORMAT_FLOAT_1X32] = {EMU_FMT_FLOAT, 4, 1},
        [CU_RES_VIEW_FORMAT_FLOAT_2X32] = {EMU_FMT_FLOAT, 4, 2},
        [CU_RES_VIEW_FORMAT_FLOAT_4X32] = {EMU_FMT_FLOAT, 4, 4},
    };
    if (f == CU_RES_VIEW_FORMAT_NONE)
        return 0;
    if ((unsigned)f >= sizeof t / sizeof t[0] || !t[f].kind)
        return -1;
    *kind = t[f].kind;
    *bytes = t[f].bytes;
    *ch = t[f].ch;
    return 1;
}

/* Geometry of an array as the sampler sees it. */
static void array_shape(const emu_array *a, int *dims, int *layered, int *cube)
{
    *layered = (a->desc.Flags & CUDA_ARRAY3D_LAYERED) != 0;
    *cube = (a->desc.Flags & CUDA_ARRAY3D_CUBEMAP) != 0;
    if (*cube)
        *dims = 2;
    else if (*layered)
        *dims = a->desc.Height ? 2 : 1;
    else
        *dims = a->desc.Depth ? 3 : a->desc.Height ? 2 : 1;
}

static void level_of(const emu_array *a, emu_tex_level *lv)
{
    lv->data = a->data;
    lv->width = a->width;
    lv->height = a->height;
    lv->depth = a->depth;
    lv->row_bytes = a->row_bytes;
    lv->slice_bytes = a->row_bytes * a->height;
}

/* Reads the caller's descriptors and builds an object for the current context. */
static CUresult obj_make(int surface, const CUDA_RESOURCE_DESC *pRes, const CUDA_TEXTURE_DESC *pTex,
                         const CUDA_RESOURCE_VIEW_DESC *pView, emu_texobj **out)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    emu_texobj *o = calloc(1, sizeof *o);
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    o->surface = surface;
    o->ctx = c;
    r = CUDA_ERROR_INVALID_VALUE;
    if (!pRes || emu_host_read(&o->res, pRes, sizeof o->res) || o->res.flags != 0)
        goto fail;
    if (!surface && (!pTex || emu_host_read(&o->tex, pTex, sizeof o->tex)))
        goto fail;
    if (pView && !surface) {
        if (emu_host_read(&o->view, pView, sizeof o->view))
            goto fail;
        o->has_view = 1;
    }
    emu_tex_view *v = &o->sampler;
    unsigned nlevels = 1;
    switch (o->res.resType) {
    case CU_RESOURCE_TYPE_ARRAY:
        if ((r = emu_array_resolve(o->res.res.array.hArray, &o->array)))
            goto fail_invalid;
        if (surface && !(o->array->desc.Flags & CUDA_ARRAY3D_SURFACE_LDST))
            goto fail_invalid; /* surfaces need arrays made for load/store */
        array_shape(o->array, &v->dims, &v->layered, &v->cube);
        emu_format_info(o->array->desc.Format, &o->comp_bytes, &o->fmt_kind, NULL);
        o->channels = o->array->desc.NumChannels;
        break;
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
        if (surface)
            goto fail_invalid;
        if ((r = emu_mipmap_resolve(o->res.res.mipmap.hMipmappedArray, &o->mipmap)))
            goto fail_invalid;
        array_shape(o->mipmap->level[0], &v->dims, &v->layered, &v->cube);
        emu_format_info(o->mipmap->desc.Format, &o->comp_bytes, &o->fmt_kind, NULL);
        o->channels = o->mipmap->desc.NumChannels;
        nlevels = o->mipmap->levels;
        break;
    case CU_RESOURCE_TYPE_LINEAR:
    case CU_RESOURCE_TYPE_PITCH2D: {
        if (surface)
            goto fail_invalid;
        int linear = o->res.resType == CU_RESOURCE_TYPE_LINEAR;
        CUarray_format f = linear ? o->res.res.linear.format : o->res.res.pitch2D.format;
        unsigned ch = linear ? o->res.res.linear.numChannels : o->res.res.pitch2D.numChannels;
        unsigned fixed;
        if (emu_format_info(f, &o->comp_bytes, &o->fmt_kind, &fixed) != 0 ||
            (fixed ? ch != fixed : (ch != 1 && ch != 2 && ch != 4)))
            goto fail_invalid;
        o->channels = ch;
        v->dims = linear ? 1 : 2;
        v->linear = linear;
        break;
    }
    default:
        goto fail_invalid;
    }
    o->elem_size = (size_t)o->comp_bytes * o->channels;
    /* A view reinterprets elements of the same size, and may select levels and layers. */
    unsigned first_level = 0, first_layer = 0, last_layer = ~0u;
    if (o->has_view) {
        int kind;
        unsigned bytes, ch;
        int vf = view_format(o->view.format, &kind, &bytes, &ch);
        if (vf < 0)
            goto fail_unsupported;
        if (vf > 0) {
            if ((size_t)bytes * ch != o->elem_size)
                goto fail_invalid;
            o->fmt_kind = kind;
            o->comp_bytes = bytes;
            o->channels = ch;
        }
        if (o->res.resType != CU_RESOURCE_TYPE_ARRAY && o->res.resType != CU_RESOURCE_TYPE_MIPMAPPED_ARRAY)
            goto fail_invalid;
        first_level = o->view.firstMipmapLevel;
        if (o->view.lastMipmapLevel < first_level || o->view.lastMipmapLevel >= nlevels)
            goto fail_invalid;
        nlevels = o->view.lastMipmapLevel - first_level + 1;
        if (v->layered || v->cube) {
            first_layer = o->view.firstLayer;
            last_layer = o->view.lastLayer;
            if (last_layer < first_layer)
                goto fail_invalid;
        }
    }
    o->levels = calloc(nlevels, sizeof *o->levels);
    if (!o->levels) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail;
    }
    for (unsigned i = 0; i < nlevels; i++) {
        const emu_array *a = o->array ? o->array : o->mipmap ? o->mipmap->level[first_level + i] : NULL;
        if (a) {
            level_of(a, &o->levels[i]);
            if (last_layer != ~0u) {
                size_t per = v->cube ? 6 : 1;
                if ((size_t)last_layer * per + per > o->levels[i].depth)
                    goto fail_invalid;
                o->levels[i].data += (size_t)first_layer * per * o->levels[i].slice_bytes;
                o->levels[i].depth = (size_t)(last_layer - first_layer + 1) * per;
            }
        }
    }
    if (o->res.resType == CU_RESOURCE_TYPE_LINEAR) {
        size_t n = o->res.res.linear.sizeInBytes / o->elem_size;
        if (n == 0 || !emu_mem_translate(c, o->res.res.linear.devPtr, o->res.res.linear.sizeInBytes))
            goto fail_invalid;
        o->levels[0] = (emu_tex_level){NULL, n, 1, 1, n * o->elem_size, n * o->elem_size};
    } else if (o->res.resType == CU_RESOURCE_TYPE_PITCH2D) {
        size_t w = o->res.res.pitch2D.width, h = o->res.res.pitch2D.height,
               p = o->res.res.pitch2D.pitchInBytes;
        if (!w || !h || p < w * o->elem_size || h > SIZE_MAX / p ||
            !emu_mem_translate(c, o->res.res.pitch2D.devPtr, (h - 1) * p + w * o->elem_size))
            goto fail_invalid;
        o->levels[0] = (emu_tex_level){NULL, w, h, 1, p, p * h};
    }
    v->levels = o->levels;
    v->nlevels = nlevels;
    v->fmt_kind = o->fmt_kind;
    v->comp_bytes = o->comp_bytes;
    v->channels = o->channels;
    if (!surface) {
        for (int d = 0; d < 3; d++) {
            if (!addr_mode_ok(o->tex.addressMode[d]))
                goto fail_invalid;
            v->address[d] = (int)o->tex.addressMode[d];
        }
        if (o->tex.filterMode > CU_TR_FILTER_MODE_LINEAR ||
            o->tex.mipmapFilterMode > CU_TR_FILTER_MODE_LINEAR)
            goto fail_invalid;
        unsigned known = CU_TRSF_READ_AS_INTEGER | CU_TRSF_NORMALIZED_COORDINATES | CU_TRSF_SRGB |
                         CU_TRSF_DISABLE_TRILINEAR_OPTIMIZATION | CU_TRSF_SEAMLESS_CUBEMAP;
        if (o->tex.flags & ~known)
            goto fail_invalid;
        v->filter = (int)o->tex.filterMode;
        v->mip_filter = (int)o->tex.mipmapFilterMode;
        v->normalized = (o->tex.flags & CU_TRSF_NORMALIZED_COORDINATES) != 0;
        v->read_as_int = (o->tex.flags & CU_TRSF_READ_AS_INTEGER) != 0;
        v->srgb = (o->tex.flags & CU_TRSF_SRGB) != 0;
        memcpy(v->border, o->tex.borderColor, sizeof v->border);
        v->lod_bias = o->tex.mipmapLevelBias;
        v->min_lod = o->tex.minMipmapLevelClamp;
        v->max_lod = o->tex.maxMipmapLevelClamp;
        if (v->max_lod < v->min_lod)
            goto fail_invalid;
        if (nlevels == 1 && v->max_lod == 0.0f && v->min_lod == 0.0f)
            v->max_lod = 0.0f;
        /* Filtering needs values that can be weighted: not integers read as integers. */
        if (v->filter == EMU_FILTER_LINEAR && !emu_tex_returns_float(v))
            goto fail_invalid;
    }
    *out = o;
    return CUDA_SUCCESS;
fail_unsupported:
    r = EMU_UNSUPPORTED("texture views of block-compressed formats");
    goto fail;
fail_invalid:
    r = CUDA_ERROR_INVALID_VALUE;
fail:
    obj_free(o);
    return r;
}

static CUresult obj_create(int surface, unsigned long long *handle, const CUDA_RESOURCE_DESC *pRes,
                           const CUDA_TEXTURE_DESC *pTex, const CUDA_RESOURCE_VIEW_DESC *pView)
{
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    emu_texobj *o = NULL;
    CUresult r = obj_make(surface, pRes, pTex, pView, &o);
    if (r)
        return r;
    uint64_t h;
    if ((r = insert(o, &h))) {
        obj_free(o);
        return r;
    }
    *handle = h;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuTexObjectCreate(CUtexObject *pTexObject, const CUDA_RESOURCE_DESC *pResDesc,
                                   const CUDA_TEXTURE_DESC *pTexDesc,
                                   const CUDA_RESOURCE_VIEW_DESC *pResViewDesc)
{
    return obj_create(0, pTexObject, pResDesc, pTexDesc, pResViewDesc);
}

CUresult CUDAAPI cuSurfObjectCreate(CUsurfObject *pSurfObject, const CUDA_RESOURCE_DESC *pResDesc)
{
    return obj_create(1, pSurfObject, pResDesc, NULL, NULL);
}

static CUresult obj_destroy(uint64_t h, int surface)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    pthread_rwlock_rdlock(&tex_lock);
    emu_texobj *o = lookup(h, surface);
    emu_ctx *c = o ? o->ctx : NULL;
    pthread_rwlock_unlock(&tex_lock);
    if (!o)
        return CUDA_ERROR_INVALID_VALUE;
    /* Kernels of its context may be using it: let them finish first. */
    emu_ctx *live;
    if (emu_ctx_resolve((CUcontext)c, &live) != CUDA_ERROR_INVALID_CONTEXT)
        emu_ctx_drain(live);
    pthread_rwlock_wrlock(&tex_lock);
    o = lookup(h, surface);
    if (o)
        slots[(h & 0xffffffffu) - 1].obj = NULL;
    pthread_rwlock_unlock(&tex_lock);
    if (!o)
        return CUDA_ERROR_INVALID_VALUE; /* destroyed by another thread meanwhile */
    obj_free(o);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuTexObjectDestroy(CUtexObject texObject)
{
    return obj_destroy(texObject, 0);
}

CUresult CUDAAPI cuSurfObjectDestroy(CUsurfObject surfObject)
{
    return obj_destroy(surfObject, 1);
}

/* Copies a field of a live object out to the caller. */
static CUresult obj_get(uint64_t h, int surface, int what, void *dst)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!dst)
        return CUDA_ERROR_INVALID_VALUE;
    union {
        CUDA_RESOURCE_DESC res;
        CUDA_TEXTURE_DESC tex;
        CUDA_RESOURCE_VIEW_DESC view;
    } u;
    size_t n = 0;
    pthread_rwlock_rdlock(&tex_lock);
    emu_texobj *o = lookup(h, surface);
    if (o && what == 0) {
        u.res = o->res;
        n = sizeof u.res;
    } else if (o && what == 1) {
        u.tex = o->tex;
        n = sizeof u.tex;
    } else if (o && what == 2 && o->has_view) {
        u.view = o->view;
        n = sizeof u.view;
    }
    pthread_rwlock_unlock(&tex_lock);
    if (!n)
        return CUDA_ERROR_INVALID_VALUE;
    return emu_host_write(dst, &u, n);
}

CUresult CUDAAPI cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *pResDesc, CUtexObject texObject)
{
    return obj_get(texObject, 0, 0, pResDesc);
}

CUresult CUDAAPI cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC *pTexDesc, CUtexObject texObject)
{
    return obj_get(texObject, 0, 1, pTexDesc);
}

CUresult CUDAAPI cuTexObjectGetResourceViewDesc(CUDA_RESOURCE_VIEW_DESC *pResViewDesc,
                                                CUtexObject texObject)
{
    return obj_get(texObject, 0, 2, pResViewDesc);
}

CUresult CUDAAPI cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *pResDesc, CUsurfObject surfObject)
{
    return obj_get(surfObject, 1, 0, pResDesc);
}

/* ---- the kernel side ---- */

/* Resolves a texture for a fetch by a kernel of ctx: a private copy of its sampler description
 * with linear memory resolved (levels[0] filled in *lv_out). NULL when the handle is not a live
 * object of ctx or its memory is gone. */
static int resolve_for_kernel(emu_ctx *ctx, uint64_t h, int surface, emu_tex_view *v,
                              emu_tex_level *lv_linear, emu_texobj **out)
{
    emu_texobj *o = lookup(h, surface);
    if (!o || o->ctx != ctx)
        return -1;
    *v = o->sampler;
    if (o->res.resType == CU_RESOURCE_TYPE_LINEAR || o->res.resType == CU_RESOURCE_TYPE_PITCH2D) {
        *lv_linear = o->levels[0];
        uint64_t base = o->res.resType == CU_RESOURCE_TYPE_LINEAR ? o->res.res.linear.devPtr
                                                                  : o->res.res.pitch2D.devPtr;
        size_t span = (lv_linear->height - 1) * lv_linear->row_bytes +
                      lv_linear->width * o->elem_size;
        lv_linear->data = emu_mem_translate(ctx, base, span);
        if (!lv_linear->data)
            return -1;
        v->levels = lv_linear;
    }
    *out = o;
    return 0;
}

static int ptx_tex_fetch(void *ctx, uint64_t handle, const ptx_tex_request *req, uint32_t out[4])
{
    emu_tex_view v;
    emu_tex_level lv;
    emu_texobj *o;
    pthread_rwlock_rdlock(&tex_lock);
    int rc = resolve_for_kernel(ctx, handle, 0, &v, &lv, &o);
    if (rc == 0)
        rc = emu_tex_sample(&v, req, out);
    pthread_rwlock_unlock(&tex_lock);
    return rc == 0 ? PTX_OK : PTX_ERR_ILLEGAL_ADDRESS;
}

static int ptx_surf_access(void *ctx, uint64_t handle, int geom, int32_t x, int32_t y, int32_t z,
                           void *data, unsigned size, int write, int boundary)
{
    emu_tex_view v;
    emu_tex_level lv;
    emu_texobj *o;
    (void)geom;
    pthread_rwlock_rdlock(&tex_lock);
    int rc = resolve_for_kernel(ctx, handle, 1, &v, &lv, &o);
    if (rc == 0) {
        size_t off;
        int dims = v.cube ? 2 : v.dims;
        int where = emu_surf_locate(&v.levels[0], dims, o->elem_size, x, y, z, size, boundary, &off);
        if (where < 0) {
            rc = -1;
        } else if (where == 0) {
            if (!write)
                memset(data, 0, size);
        } else if (write) {
            memcpy((unsigned char *)v.levels[0].data + off, data, size);
        } else {
            memcpy(data, v.levels[0].data + off, size);
        }
    }
    pthread_rwlock_unlock(&tex_lock);
    return rc == 0 ? PTX_OK : PTX_ERR_ILLEGAL_ADDRESS;
}

/* OpenCL channel data types and orders, which txq and suq report (PTX ISA). */
static int32_t cl_data_type(int kind, unsigned bytes)
{
    switch (kind) {
    case EMU_FMT_SNORM: return bytes == 1 ? 0x10D0 : 0x10D1;
    case EMU_FMT_UNORM: return bytes == 1 ? 0x10D2 : 0x10D3;
    case EMU_FMT_SINT: return bytes == 1 ? 0x10D7 : bytes == 2 ? 0x10D8 : 0x10D9;
    case EMU_FMT_UINT: return bytes == 1 ? 0x10DA : bytes == 2 ? 0x10DB : 0x10DC;
    case EMU_FMT_HALF: return 0x10DD;
    default: return 0x10DE;
    }
}

static int ptx_tex_query(void *ctx, uint64_t handle, int surface, int what, int32_t *out)
{
    emu_tex_view v;
    emu_tex_level lv;
    emu_texobj *o;
    pthread_rwlock_rdlock(&tex_lock);
    int rc = resolve_for_kernel(ctx, handle, surface, &v, &lv, &o);
    if (rc == 0) {
        const emu_tex_level *l0 = &v.levels[0];
        size_t layers = v.cube ? l0->depth / 6 : l0->depth;
        switch (what) {
        case PTX_TXQ_WIDTH: *out = (int32_t)(surface ? l0->row_bytes : l0->width); break;
        case PTX_TXQ_HEIGHT: *out = (int32_t)l0->height; break;
        case PTX_TXQ_DEPTH: *out = (int32_t)(v.dims == 3 ? l0->depth : 1); break;
        case PTX_TXQ_CHANNEL_DATA_TYPE: *out = cl_data_type(v.fmt_kind, v.comp_bytes); break;
        case PTX_TXQ_CHANNEL_ORDER:
            *out = v.channels == 1 ? 0x10B0 : v.channels == 2 ? 0x10B2 : 0x10B5;
            break;
        case PTX_TXQ_NORMALIZED_COORDS: *out = v.normalized; break;
        case PTX_TXQ_FILTER_MODE: *out = v.filter; break;
        case PTX_TXQ_ADDR_MODE_0: *out = v.address[0]; break;
        case PTX_TXQ_ADDR_MODE_1: *out = v.address[1]; break;
        case PTX_TXQ_ADDR_MODE_2: *out = v.address[2]; break;
        case PTX_TXQ_ARRAY_SIZE: *out = (int32_t)(v.layered || v.cube ? layers : 1); break;
        case PTX_TXQ_NUM_MIPMAP_LEVELS: *out = (int32_t)v.nlevels; break;
        case PTX_TXQ_NUM_SAMPLES: *out = 1; break;
        default: rc = -1;
        }
    }
    pthread_rwlock_unlock(&tex_lock);
    return rc == 0 ? PTX_OK : PTX_ERR_ILLEGAL_ADDRESS;
}

void emu_tex_install(ptx_memory *m)
{
    m->tex_fetch = ptx_tex_fetch;
    m->surf_access = ptx_surf_access;
    m->tex_query = ptx_tex_query;
}

/* Objects of a destroyed context go with it (their handles fail from then on). */
void emu_tex_free_ctx(emu_ctx *c)
{
    pthread_rwlock_wrlock(&tex_lock);
    emu_texobj **doomed = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nslots; i++) {
        if (slots[i].obj && slots[i].obj->ctx == c) {
            emu_texobj **d = realloc(doomed, (n + 1) * sizeof *d);
            if (!d)
                continue; /* leaked rather than freed under a fetch's feet */
            doomed = d;
            doomed[n++] = slots[i].obj;
            slots[i].obj = NULL;
        }
    }
    pthread_rwlock_unlock(&tex_lock);
    for (size_t i = 0; i < n; i++)
        obj_free(doomed[i]);
    free(doomed);
}
