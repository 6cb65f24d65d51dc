/* emu_array: CUDA arrays (1D, 2D, 3D, layered, cube maps), mipmapped arrays, and the 2D/3D copy
 * engine that moves data between host memory, device memory and arrays.
 *
 * An array's elements are stored row-major in host memory we own: depth (or layers, or 6 faces
 * per cube) slices of height rows of width elements. Arrays are not addressable by device
 * pointers; copies and texture or surface objects reach them through their handle. Each array
 * counts against its context's device memory.
 *
 * Lifetime: an array is referenced by its handle, by texture and surface objects made on it and
 * by queued copies. Destroying the handle drops one reference; the storage goes with the last. */
#include "emu.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Guards handle lookups against concurrent destruction (lookup and reference are one step). */
static pthread_mutex_t array_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_array *array_handles;   /* live handles, guarded by array_lock */
static emu_mipmap *mipmap_handles;

int emu_format_info(CUarray_format f, unsigned *comp_bytes, int *kind, unsigned *channels)
{
    unsigned cb = 0, ch = 0;
    int k = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: cb = 1; k = EMU_FMT_UINT; break;
    case CU_AD_FORMAT_UNSIGNED_INT16: cb = 2; k = EMU_FMT_UINT; break;
    case CU_AD_FORMAT_UNSIGNED_INT32: cb = 4; k = EMU_FMT_UINT; break;
    case CU_AD_FORMAT_SIGNED_INT8: cb = 1; k = EMU_FMT_SINT; break;
    case CU_AD_FORMAT_SIGNED_INT16: cb = 2; k = EMU_FMT_SINT; break;
    case CU_AD_FORMAT_SIGNED_INT32: cb = 4; k = EMU_FMT_SINT; break;
    case CU_AD_FORMAT_HALF: cb = 2; k = EMU_FMT_HALF; break;
    case CU_AD_FORMAT_FLOAT: cb = 4; k = EMU_FMT_FLOAT; break;
    case CU_AD_FORMAT_UNORM_INT8X1: cb = 1; ch = 1; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_UNORM_INT8X2: cb = 1; ch = 2; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_UNORM_INT8X4: cb = 1; ch = 4; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_UNORM_INT16X1: cb = 2; ch = 1; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_UNORM_INT16X2: cb = 2; ch = 2; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_UNORM_INT16X4: cb = 2; ch = 4; k = EMU_FMT_UNORM; break;
    case CU_AD_FORMAT_SNORM_INT8X1: cb = 1; ch = 1; k = EMU_FMT_SNORM; break;
    case CU_AD_FORMAT_SNORM_INT8X2: cb = 1; ch = 2; k = EMU_FMT_SNORM; break;
    case CU_AD_FORMAT_SNORM_INT8X4: cb = 1; ch = 4; k = EMU_FMT_SNORM; break;
    case CU_AD_FORMAT_SNORM_INT16X1: cb = 2; ch = 1; k = EMU_FMT_SNORM; break;
    case CU_AD_FORMAT_SNORM_INT16X2: cb = 2; ch = 2; k = EMU_FMT_SNORM; break;
    case CU_AD_FORMAT_SNORM_INT16X4: cb = 2; ch = 4; k = EMU_FMT_SNORM; break;
    default: return -1; /* block-compressed and video formats are not emulated */
    }
    if (comp_bytes)
        *comp_bytes = cb;
    if (kind)
        *kind = k;
    if (channels)
        *channels = ch;
    return 0;
}

unsigned emu_format_size(CUarray_format f)
{
    unsigned cb;
    return emu_format_info(f, &cb, NULL, NULL) == 0 ? cb : 0;
}

/* ---- arrays ---- */

static void array_free(emu_array *a)
{
    if (a->charged)
        emu_capacity_release(a->charge_dev, a->charged);
    emu_backing_free(a->data, a->bytes);
    free(a);
}

void emu_array_unref(emu_array *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1)
        array_free(a);
}

/* Looks up a counted handle (an array or a mipmapped array) and takes a reference, in one step
 * under array_lock so that a concurrent destroy cannot free it in between. */
static CUresult resolve_counted(const void *h, int kind, size_t refs_offset, void **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    pthread_mutex_lock(&array_lock);
    if (!h || !emu_obj_is(h, kind)) {
        pthread_mutex_unlock(&array_lock);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    atomic_fetch_add((_Atomic int *)((char *)h + refs_offset), 1);
    pthread_mutex_unlock(&array_lock);
    *out = (void *)h; /* the caller drops the reference (emu_array_unref / emu_mipmap_unref) */
    return CUDA_SUCCESS;
}

CUresult emu_array_resolve(CUarray h, emu_array **out)
{
    return resolve_counted(h, EMU_OBJ_ARRAY, offsetof(emu_array, refs), (void **)out);
}

/* Checks a descriptor and fills the array's geometry. */
static CUresult array_geometry(const CUDA_ARRAY3D_DESCRIPTOR *d, emu_array *a)
{
    unsigned cb, ch;
    int kind;
    if (emu_format_info(d->Format, &cb, &kind, &ch) != 0) {
        /* Formats CUDA has but the emulated GPU does not: block-compressed, video, 10-bit. */
        int known = (d->Format >= CU_AD_FORMAT_BC1_UNORM && d->Format <= CU_AD_FORMAT_Y444_PLANAR10) ||
                    d->Format == CU_AD_FORMAT_YUV444_8bit_SemiPlanar ||
                    d->Format == CU_AD_FORMAT_YUV444_16bit_SemiPlanar ||
                    d->Format == CU_AD_FORMAT_UNORM_INT_101010_2;
        return known ? EMU_UNSUPPORTED("arrays of block-compressed, video or 10-bit formats")
                     : CUDA_ERROR_INVALID_VALUE;
    }
    if (ch ? d->NumChannels != ch : (d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4))
        return CUDA_ERROR_INVALID_VALUE;
    unsigned known = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_CUBEMAP |
                     CUDA_ARRAY3D_TEXTURE_GATHER | CUDA_ARRAY3D_DEPTH_TEXTURE |
                     CUDA_ARRAY3D_COLOR_ATTACHMENT;
    if (d->Flags & (CUDA_ARRAY3D_SPARSE | CUDA_ARRAY3D_DEFERRED_MAPPING |
                    CUDA_ARRAY3D_VIDEO_ENCODE_DECODE))
        return EMU_UNSUPPORTED("sparse, deferred-mapping and video arrays");
    if (d->Flags & ~known)
        return CUDA_ERROR_INVALID_VALUE;
    int layered = (d->Flags & CUDA_ARRAY3D_LAYERED) != 0;
    int cube = (d->Flags & CUDA_ARRAY3D_CUBEMAP) != 0;
    size_t W = d->Width, H = d->Height, D = d->Depth;
    if (W == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (cube) {
        if (W != H || D == 0 || D % 6 != 0 || (!layered && D != 6) || W > 32768)
            return CUDA_ERROR_INVALID_VALUE;
    } else if (layered) {
        if (D == 0 || D > 2048 || W > 32768 || H > 32768)
            return CUDA_ERROR_INVALID_VALUE;
    } else if (D > 0) {
        if (H == 0 || W > 16384 || H > 16384 || D > 16384)
            return CUDA_ERROR_INVALID_VALUE;
    } else if (H > 0) {
        if (W > 131072 || H > 65536)
            return CUDA_ERROR_INVALID_VALUE;
    } else if (W > 131072) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    a->desc = *d;
    a->elem_size = cb * d->NumChannels;
    a->width = W;
    a->height = H ? H : 1;
    a->depth = D ? D : 1;
    a->row_bytes = W * a->elem_size;
    a->bytes = a->row_bytes * a->height * a->depth;
    return CUDA_SUCCESS;
}

/* Makes an array of ctx with the given geometry and zeroed storage; not yet a handle. */
static CUresult array_make(emu_ctx *c, const CUDA_ARRAY3D_DESCRIPTOR *d, emu_array **out)
{
    emu_array *a = calloc(1, sizeof *a);
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = array_geometry(d, a);
    if (r) {
        free(a);
        return r;
    }
    a->ctx = c;
    atomic_init(&a->refs, 1);
    if (a->bytes > c->dev->total_mem || (r = emu_capacity_reserve(c->dev->physical, a->bytes))) {
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->charged = a->bytes;
    a->charge_dev = c->dev->physical;
    a->data = emu_backing_alloc(a->bytes);
    if (!a->data) {
        emu_capacity_release(c->dev->physical, a->charged);
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = a;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuArray3DCreate(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    CUDA_ARRAY3D_DESCRIPTOR d;
    if (!pHandle || !pAllocateArray || emu_host_read(&d, pAllocateArray, sizeof d))
        return CUDA_ERROR_INVALID_VALUE;
    emu_array *a;
    r = array_make(c, &d, &a);
    if (r)
        return r;
    pthread_mutex_lock(&array_lock);
    if (emu_obj_add(a, EMU_OBJ_ARRAY) != 0) {
        pthread_mutex_unlock(&array_lock);
        array_free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->next_handle = array_handles;
    array_handles = a;
    pthread_mutex_unlock(&array_lock);
    *pHandle = (CUarray)a;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuArrayCreate(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray)
{
    CUDA_ARRAY_DESCRIPTOR d2;
    if (!pAllocateArray || emu_host_read(&d2, pAllocateArray, sizeof d2))
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_ARRAY3D_DESCRIPTOR d = {d2.Width, d2.Height, 0, d2.Format, d2.NumChannels, 0};
    return cuArray3DCreate(pHandle, &d);
}

CUresult CUDAAPI cuArrayDestroy(CUarray hArray)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    pthread_mutex_lock(&array_lock);
    emu_array *a = (emu_array *)hArray;
    if (!a || !emu_obj_is(a, EMU_OBJ_ARRAY) || a->mipmap) {
        pthread_mutex_unlock(&array_lock);
        return CUDA_ERROR_INVALID_HANDLE; /* a mipmap level goes with its mipmapped array */
    }
    emu_obj_del(a);
    a->destroyed = 1;
    for (emu_array **pp = &array_handles; *pp; pp = &(*pp)->next_handle) {
        if (*pp == a) {
            *pp = a->next_handle;
            break;
        }
    }
    pthread_mutex_unlock(&array_lock);
    emu_array_unref(a);
    return CUDA_SUCCESS;
}

void emu_arrays_free_ctx(emu_ctx *c)
{
    for (;;) {
        pthread_mutex_lock(&array_lock);
        emu_array **pp = &array_handles;
        while (*pp && (*pp)->ctx != c)
            pp = &(*pp)->next_handle;
        emu_array *a = *pp;
        emu_mipmap *m = NULL;
        if (a) {
            *pp = a->next_handle;
            emu_obj_del(a);
            a->destroyed = 1;
        } else {
            emu_mipmap **mp = &mipmap_handles;
            while (*mp && (*mp)->ctx != c)
                mp = &(*mp)->next_handle;
            m = *mp;
            if (m) {
                *mp = m->next_handle;
                emu_obj_del(m);
                for (unsigned i = 0; i < m->levels; i++)
                    emu_obj_del(m->level[i]);
                m->destroyed = 1;
            }
        }
        pthread_mutex_unlock(&array_lock);
        if (a)
            emu_array_unref(a);
        else if (m)
            emu_mipmap_unref(m);
        else
            break;
    }
}

CUresult CUDAAPI cuArray3DGetDescriptor(CUDA_ARRAY3D_DESCRIPTOR *pArrayDescriptor, CUarray hArray)
{
    emu_array *a;
    if (!pArrayDescriptor)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_array_resolve(hArray, &a);
    if (r)
        return r;
    r = emu_host_write(pArrayDescriptor, &a->desc, sizeof a->desc);
    emu_array_unref(a);
    return r;
}

CUresult CUDAAPI cuArrayGetDescriptor(CUDA_ARRAY_DESCRIPTOR *pArrayDescriptor, CUarray hArray)
{
    emu_array *a;
    if (!pArrayDescriptor)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_array_resolve(hArray, &a);
    if (r)
        return r;
    if (a->desc.Depth || a->desc.Flags) {
        r = CUDA_ERROR_INVALID_VALUE; /* a 3D, layered or cube array: cuArray3DGetDescriptor */
    } else {
        CUDA_ARRAY_DESCRIPTOR d = {a->desc.Width, a->desc.Height, a->desc.Format,
                                   a->desc.NumChannels};
        r = emu_host_write(pArrayDescriptor, &d, sizeof d);
    }
    emu_array_unref(a);
    return r;
}

CUresult CUDAAPI cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *memoryRequirements,
                                              CUarray array, CUdevice device)
{
    emu_array *a;
    if (!memoryRequirements)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_array_resolve(array, &a);
    if (r)
        return r;
    if (!emu_device_at(device)) {
        emu_array_unref(a);
        return CUDA_ERROR_INVALID_DEVICE;
    }
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    memset(&req, 0, sizeof req);
    req.size = (a->bytes + 511) & ~(size_t)511;
    req.alignment = 512;
    emu_array_unref(a);
    return emu_host_write(memoryRequirements, &req, sizeof req);
}

/* ---- mipmapped arrays ---- */

void emu_mipmap_unref(emu_mipmap *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < m->levels; i++)
        emu_array_unref(m->level[i]);
    free(m->level);
    free(m);
}

CUresult emu_mipmap_resolve(CUmipmappedArray h, emu_mipmap **out)
{
    return resolve_counted(h, EMU_OBJ_MIPMAP, offsetof(emu_mipmap, refs), (void **)out);
}

static size_t level_extent(size_t e, unsigned level)
{
    if (e == 0)
        return 0;
    e >>= level;
    return e ? e : 1;
}

CUresult CUDAAPI cuMipmappedArrayCreate(CUmipmappedArray *pHandle,
                                        const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc,
                                        unsigned int numMipmapLevels)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    CUDA_ARRAY3D_DESCRIPTOR d;
    if (!pHandle || !pMipmappedArrayDesc || emu_host_read(&d, pMipmappedArrayDesc, sizeof d) ||
        numMipmapLevels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    int layered = (d.Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    size_t biggest = d.Width;
    if (d.Height > biggest)
        biggest = d.Height;
    if (!layered && d.Depth > biggest)
        biggest = d.Depth;
    unsigned max_levels = 1;
    while ((biggest >> max_levels) > 0)
        max_levels++;
    if (numMipmapLevels > max_levels)
        return CUDA_ERROR_INVALID_VALUE;
    emu_mipmap *m = calloc(1, sizeof *m);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    m->level = calloc(numMipmapLevels, sizeof *m->level);
    if (!m->level) {
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->ctx = c;
    m->desc = d;
    atomic_init(&m->refs, 1);
    for (unsigned i = 0; i < numMipmapLevels; i++) {
        CUDA_ARRAY3D_DESCRIPTOR ld = d;
        ld.Width = level_extent(d.Width, i);
        ld.Height = level_extent(d.Height, i);
        ld.Depth = layered ? d.Depth : level_extent(d.Depth, i);
        r = array_make(c, &ld, &m->level[i]);
        if (r)
            goto fail;
        m->level[i]->mipmap = m;
        m->levels = i + 1;
        if (emu_obj_add(m->level[i], EMU_OBJ_ARRAY) != 0) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
            goto fail;
        }
    }
    pthread_mutex_lock(&array_lock);
    if (emu_obj_add(m, EMU_OBJ_MIPMAP) != 0) {
        pthread_mutex_unlock(&array_lock);
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail;
    }
    m->next_handle = mipmap_handles;
    mipmap_handles = m;
    pthread_mutex_unlock(&array_lock);
    *pHandle = (CUmipmappedArray)m;
    return CUDA_SUCCESS;
fail:
    for (unsigned i = 0; i < m->levels; i++)
        emu_obj_del(m->level[i]);
    emu_mipmap_unref(m);
    return r;
}

CUresult CUDAAPI cuMipmappedArrayGetLevel(CUarray *pLevelArray, CUmipmappedArray hMipmappedArray,
                                          unsigned int level)
{
    emu_mipmap *m;
    if (!pLevelArray)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_mipmap_resolve(hMipmappedArray, &m);
    if (r)
        return r;
    if (level >= m->levels)
        r = CUDA_ERROR_INVALID_VALUE;
    else
        *pLevelArray = (CUarray)m->level[level];
    emu_mipmap_unref(m);
    return r;
}

CUresult CUDAAPI cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    pthread_mutex_lock(&array_lock);
    emu_mipmap *m = (emu_mipmap *)hMipmappedArray;
    if (!m || !emu_obj_is(m, EMU_OBJ_MIPMAP)) {
        pthread_mutex_unlock(&array_lock);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    emu_obj_del(m);
    for (unsigned i = 0; i < m->levels; i++)
        emu_obj_del(m->level[i]);
    m->destroyed = 1;
    for (emu_mipmap **pp = &mipmap_handles; *pp; pp = &(*pp)->next_handle) {
        if (*pp == m) {
            *pp = m->next_handle;
            break;
        }
    }
    pthread_mutex_unlock(&array_lock);
    emu_mipmap_unref(m);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *req,
                                                       CUmipmappedArray mipmap, CUdevice device)
{
    emu_mipmap *m;
    if (!req)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = emu_mipmap_resolve(mipmap, &m);
    if (r)
        return r;
    CUDA_ARRAY_MEMORY_REQUIREMENTS out;
    memset(&out, 0, sizeof out);
    for (unsigned i = 0; i < m->levels; i++)
        out.size += (m->level[i]->bytes + 511) & ~(size_t)511;
    out.alignment = 512;
    emu_mipmap_unref(m);
    if (!emu_device_at(device))
        return CUDA_ERROR_INVALID_DEVICE;
    return emu_host_write(req, &out, sizeof out);
}

/* ---- the copy engine ---- */

/* Reads one side of a CUDA_MEMCPY3D. */
static CUresult side_from_desc(emu_copy_side *s, CUmemorytype type, const void *host,
                               CUdeviceptr dev, CUarray array, size_t x, size_t y, size_t z,
                               size_t lod, size_t pitch, size_t height)
{
    memset(s, 0, sizeof *s);
    if (lod != 0)
        return CUDA_ERROR_INVALID_VALUE;
    s->x = x;
    s->y = y;
    s->z = z;
    s->pitch = pitch;
    s->height = height;
    switch (type) {
    case CU_MEMORYTYPE_HOST:
        s->kind = EMU_SIDE_HOST;
        s->base = (uint64_t)(uintptr_t)host;
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_DEVICE:
        s->kind = EMU_SIDE_DEVICE;
        s->base = (uint64_t)dev;
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_UNIFIED:
        /* Unified addressing: an address in the table is device-side, anything else host. */
        s->kind = emu_mem_translate(NULL, (uint64_t)dev, 1) ? EMU_SIDE_DEVICE : EMU_SIDE_HOST;
        s->base = (uint64_t)dev;
        return CUDA_SUCCESS;
    case CU_MEMORYTYPE_ARRAY: {
        emu_array *a;
        CUresult r = emu_array_resolve(array, &a);
        if (r)
            return CUDA_ERROR_INVALID_VALUE;
        s->kind = EMU_SIDE_ARRAY;
        s->array = a;
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static void side_release(emu_copy_side *s)
{
    if (s->kind == EMU_SIDE_ARRAY && s->array) {
        emu_array_unref(s->array);
        s->array = NULL;
    }
}

CUresult emu_copy3d_from_desc(const CUDA_MEMCPY3D *d, emu_copy3d *out)
{
    memset(out, 0, sizeof *out);
    CUresult r = side_from_desc(&out->src, d->srcMemoryType, d->srcHost, d->srcDevice,
                                d->srcArray, d->srcXInBytes, d->srcY, d->srcZ, d->srcLOD,
                                d->srcPitch, d->srcHeight);
    if (r)
        return r;
    r = side_from_desc(&out->dst, d->dstMemoryType, d->dstHost, d->dstDevice, d->dstArray,
                       d->dstXInBytes, d->dstY, d->dstZ, d->dstLOD, d->dstPitch, d->dstHeight);
    if (r) {
        side_release(&out->src);
        return r;
    }
    out->width = d->WidthInBytes;
    out->height = d->Height ? d->Height : 1;
    out->depth = d->Depth ? d->Depth : 1;
    return CUDA_SUCCESS;
}

void emu_copy3d_release(emu_copy3d *c)
{
    side_release(&c->src);
    side_release(&c->dst);
}

void emu_copy3d_retain(const emu_copy3d *c)
{
    if (c->src.kind == EMU_SIDE_ARRAY && c->src.array)
        atomic_fetch_add(&c->src.array->refs, 1);
    if (c->dst.kind == EMU_SIDE_ARRAY && c->dst.array)
        atomic_fetch_add(&c->dst.array->refs, 1);
}

static void side_to_desc(const emu_copy_side *s, CUmemorytype *type, const void **host,
                         CUdeviceptr *dev, CUarray *array, size_t *x, size_t *y, size_t *z,
                         size_t *pitch, size_t *height)
{
    *x = s->x;
    *y = s->y;
    *z = s->z;
    *pitch = s->pitch;
    *height = s->height;
    *host = NULL;
    *dev = 0;
    *array = NULL;
    switch (s->kind) {
    case EMU_SIDE_HOST:
        *type = CU_MEMORYTYPE_HOST;
        *host = (const void *)(uintptr_t)s->base;
        break;
    case EMU_SIDE_DEVICE:
        *type = CU_MEMORYTYPE_DEVICE;
        *dev = (CUdeviceptr)s->base;
        break;
    default:
        *type = CU_MEMORYTYPE_ARRAY;
        *array = (CUarray)s->array;
        break;
    }
}

void emu_copy3d_to_desc(const emu_copy3d *c, CUDA_MEMCPY3D *d)
{
    memset(d, 0, sizeof *d);
    side_to_desc(&c->src, &d->srcMemoryType, &d->srcHost, &d->srcDevice, &d->srcArray,
                 &d->srcXInBytes, &d->srcY, &d->srcZ, &d->srcPitch, &d->srcHeight);
    const void *dst_host;
    side_to_desc(&c->dst, &d->dstMemoryType, &dst_host, &d->dstDevice, &d->dstArray,
                 &d->dstXInBytes, &d->dstY, &d->dstZ, &d->dstPitch, &d->dstHeight);
    d->dstHost = (void *)dst_host;
    d->WidthInBytes = c->width;
    d->Height = c->height;
    d->Depth = c->depth;
}

/* Where the copy's rows lie on one side: the address of row 0 of slice 0, the distance between
 * rows and between slices, and the whole span they cover (first byte to last byte + 1). */
struct side_layout {
    uint64_t first;
    size_t row_stride, slice_stride, span;
};

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

static CUresult side_layout(const emu_copy_side *s, size_t width, size_t height, size_t depth,
                            struct side_layout *l)
{
    size_t rows_per_slice, x = s->x, y = s->y, z = s->z;
    if (s->kind == EMU_SIDE_ARRAY) {
        const emu_array *a = s->array;
        /* Arrays take whole elements, and the region must lie inside. */
        if (x % a->elem_size || width % a->elem_size || x > a->row_bytes ||
            width > a->row_bytes - x || y > a->height || height > a->height - y ||
            z > a->depth || depth > a->depth - z)
            return CUDA_ERROR_INVALID_VALUE;
        l->row_stride = a->row_bytes;
        rows_per_slice = a->height;
    } else {
        size_t pitch = s->pitch ? s->pitch : width;
        rows_per_slice = s->height ? s->height : height + y;
        if ((height > 1 || depth > 1 || y || z) && (x > pitch || width > pitch - x))
            return CUDA_ERROR_INVALID_VALUE;
        if (depth > 1 && (y > rows_per_slice || height > rows_per_slice - y))
            return CUDA_ERROR_INVALID_VALUE;
        l->row_stride = pitch;
    }
    size_t slice, off_z, off_y, last;
    if (!mul_ok(l->row_stride, rows_per_slice, &slice) || !mul_ok(slice, z, &off_z) ||
        !mul_ok(l->row_stride, y, &off_y))
        return CUDA_ERROR_INVALID_VALUE;
    l->slice_stride = slice;
    size_t last_slice, last_row;
    if (!mul_ok(slice, depth - 1, &last_slice) || !mul_ok(l->row_stride, height - 1, &last_row))
        return CUDA_ERROR_INVALID_VALUE;
    last = last_slice + last_row + width;
    if (last < width || off_z + off_y + x < off_z)
        return CUDA_ERROR_INVALID_VALUE;
    l->first = s->kind == EMU_SIDE_ARRAY ? off_z + off_y + x : s->base + off_z + off_y + x;
    if (s->kind != EMU_SIDE_ARRAY && l->first < s->base)
        return CUDA_ERROR_INVALID_VALUE;
    l->span = last;
    return CUDA_SUCCESS;
}

/* A side's rows as a local pointer (device memory, arrays) or as a caller's host address. */
struct side_access {
    unsigned char *local;      /* NULL for a host side */
    uint64_t remote;
};

static CUresult side_access(const emu_copy_side *s, const struct side_layout *l, int write,
                            int probe, struct side_access *out)
{
    out->local = NULL;
    out->remote = 0;
    switch (s->kind) {
    case EMU_SIDE_ARRAY:
        out->local = s->array->data + l->first;
        return CUDA_SUCCESS;
    case EMU_SIDE_DEVICE:
        out->local = emu_mem_translate(NULL, l->first, l->span);
        return out->local ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default:
        out->remote = l->first;
        if (!out->remote)
            return CUDA_ERROR_INVALID_VALUE;
        return probe ? emu_host_probe((const void *)(uintptr_t)l->first, l->span, write)
                     : CUDA_SUCCESS;
    }
}

CUresult emu_copy3d_check(const emu_copy3d *c)
{
    if (c->width == 0)
        return CUDA_SUCCESS;
    struct side_layout ls, ld;
    struct side_access as, ad;
    CUresult r = side_layout(&c->src, c->width, c->height, c->depth, &ls);
    if (!r)
        r = side_layout(&c->dst, c->width, c->height, c->depth, &ld);
    if (!r)
        r = side_access(&c->src, &ls, 0, 1, &as);
    if (!r)
        r = side_access(&c->dst, &ld, 1, 1, &ad);
    return r ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

static CUresult copy_row(const struct side_access *d, const struct side_access *s, size_t doff,
                         size_t soff, size_t n)
{
    if (d->local && s->local) {
        memmove(d->local + doff, s->local + soff, n);
        return CUDA_SUCCESS;
    }
    if (d->local)
        return emu_host_read(d->local + doff, (const void *)(uintptr_t)(s->remote + soff), n);
    if (s->local)
        return emu_host_write((void *)(uintptr_t)(d->remote + doff), s->local + soff, n);
    /* Host to host: through a bounce buffer, both sides unchecked caller memory. */
    unsigned char buf[16384];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof buf ? n - done : sizeof buf;
        if (emu_host_read(buf, (const void *)(uintptr_t)(s->remote + soff + done), k) ||
            emu_host_write((void *)(uintptr_t)(d->remote + doff + done), buf, k))
            return CUDA_ERROR_INVALID_VALUE;
        done += k;
    }
    return CUDA_SUCCESS;
}

CUresult emu_copy3d_run(const emu_copy3d *c)
{
    if (c->width == 0)
        return CUDA_SUCCESS;
    struct side_layout ls, ld;
    struct side_access as, ad;
    if (side_layout(&c->src, c->width, c->height, c->depth, &ls) ||
        side_layout(&c->dst, c->width, c->height, c->depth, &ld) ||
        side_access(&c->src, &ls, 0, 0, &as) || side_access(&c->dst, &ld, 1, 0, &ad))
        return CUDA_ERROR_INVALID_VALUE;
    /* Both sides one contiguous run: a single copy. */
    if (ls.row_stride == c->width && ld.row_stride == c->width &&
        (c->depth == 1 || (ls.slice_stride == c->width * c->height &&
                           ld.slice_stride == c->width * c->height)))
        return copy_row(&ad, &as, 0, 0, c->width * c->height * c->depth);
    for (size_t k = 0; k < c->depth; k++)
        for (size_t j = 0; j < c->height; j++) {
            CUresult r = copy_row(&ad, &as, k * ld.slice_stride + j * ld.row_stride,
                                  k * ls.slice_stride + j * ls.row_stride, c->width);
            if (r)
                return r;
        }
    return CUDA_SUCCESS;
}

/* ---- copy API ---- */

static CUresult copy3d_sync(emu_copy3d *c)
{
    emu_ctx *ctx;
    CUresult r = emu_ctx_current(&ctx);
    if (!r)
        r = emu_capture_unsafe_call();
    if (!r)
        r = emu_copy3d_check(c);
    if (!r) {
        r = emu_ctx_drain(ctx);
        emu_printf_flush(ctx);
    }
    if (!r)
        r = emu_copy3d_run(c) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    emu_copy3d_release(c);
    return r;
}

static CUresult copy3d_async(emu_copy3d *c, CUstream hStream)
{
    emu_ctx *ctx;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &ctx, &s);
    if (!r)
        r = emu_copy3d_check(c);
    if (r) {
        emu_copy3d_release(c);
        return r;
    }
    emu_op *op = calloc(1, sizeof *op);
    if (!op) {
        emu_copy3d_release(c);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    op->kind = EMU_OP_COPY3D;
    op->u.copy3d = *c; /* the op takes the array references */
    return emu_submit(ctx, s, op);
}

static CUresult desc3d(const CUDA_MEMCPY3D *caller, emu_copy3d *c)
{
    CUDA_MEMCPY3D d;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!caller || emu_host_read(&d, caller, sizeof d))
        return CUDA_ERROR_INVALID_VALUE;
    return emu_copy3d_from_desc(&d, c);
}

static CUresult desc2d(const CUDA_MEMCPY2D *caller, emu_copy3d *c)
{
    CUDA_MEMCPY2D d2;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!caller || emu_host_read(&d2, caller, sizeof d2))
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D d;
    memset(&d, 0, sizeof d);
    d.srcXInBytes = d2.srcXInBytes;
    d.srcY = d2.srcY;
    d.srcMemoryType = d2.srcMemoryType;
    d.srcHost = d2.srcHost;
    d.srcDevice = d2.srcDevice;
    d.srcArray = d2.srcArray;
    d.srcPitch = d2.srcPitch;
    d.dstXInBytes = d2.dstXInBytes;
    d.dstY = d2.dstY;
    d.dstMemoryType = d2.dstMemoryType;
    d.dstHost = d2.dstHost;
    d.dstDevice = d2.dstDevice;
    d.dstArray = d2.dstArray;
    d.dstPitch = d2.dstPitch;
    d.WidthInBytes = d2.WidthInBytes;
    d.Height = d2.Height;
    d.Depth = 1;
    if (d2.Height == 0)
        d.WidthInBytes = 0; /* nothing to copy */
    return emu_copy3d_from_desc(&d, c);
}

static CUresult desc3d_peer(const CUDA_MEMCPY3D_PEER *caller, emu_copy3d *c)
{
    CUDA_MEMCPY3D_PEER p;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!caller || emu_host_read(&p, caller, sizeof p))
        return CUDA_ERROR_INVALID_VALUE;
    emu_ctx *sc, *dc;
    if ((p.srcContext && emu_ctx_resolve(p.srcContext, &sc) == CUDA_ERROR_INVALID_CONTEXT) ||
        (p.dstContext && emu_ctx_resolve(p.dstContext, &dc) == CUDA_ERROR_INVALID_CONTEXT))
        return CUDA_ERROR_INVALID_CONTEXT;
    CUDA_MEMCPY3D d = {p.srcXInBytes, p.srcY, p.srcZ, p.srcLOD, p.srcMemoryType, p.srcHost,
                       p.srcDevice, p.srcArray, NULL, p.srcPitch, p.srcHeight, p.dstXInBytes,
                       p.dstY, p.dstZ, p.dstLOD, p.dstMemoryType, p.dstHost, p.dstDevice,
                       p.dstArray, NULL, p.dstPitch, p.dstHeight, p.WidthInBytes, p.Height,
                       p.Depth};
    return emu_copy3d_from_desc(&d, c);
}

CUresult CUDAAPI cuMemcpy3D(const CUDA_MEMCPY3D *pCopy)
{
    emu_copy3d c;
    CUresult r = desc3d(pCopy, &c);
    return r ? r : copy3d_sync(&c);
}

CUresult CUDAAPI cuMemcpy3DAsync(const CUDA_MEMCPY3D *pCopy, CUstream hStream)
{
    emu_copy3d c;
    CUresult r = desc3d(pCopy, &c);
    return r ? r : copy3d_async(&c, hStream);
}

CUresult CUDAAPI cuMemcpy2D(const CUDA_MEMCPY2D *pCopy)
{
    emu_copy3d c;
    CUresult r = desc2d(pCopy, &c);
    return r ? r : copy3d_sync(&c);
}

CUresult CUDAAPI cuMemcpy2DUnaligned(const CUDA_MEMCPY2D *pCopy)
{
    return cuMemcpy2D(pCopy); /* no alignment constraint to relax here */
}

CUresult CUDAAPI cuMemcpy2DAsync(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    emu_copy3d c;
    CUresult r = desc2d(pCopy, &c);
    return r ? r : copy3d_async(&c, hStream);
}

CUresult CUDAAPI cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *pCopy)
{
    emu_copy3d c;
    CUresult r = desc3d_peer(pCopy, &c);
    return r ? r : copy3d_sync(&c);
}

CUresult CUDAAPI cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *pCopy, CUstream hStream)
{
    emu_copy3d c;
    CUresult r = desc3d_peer(pCopy, &c);
    return r ? r : copy3d_async(&c, hStream);
}

/* The 1D array copies address an array's storage as bytes from its first element. */
static CUresult flat_side(emu_copy_side *s, int kind, uint64_t base, CUarray array, size_t offset,
                          size_t n)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->base = base;
    if (kind != EMU_SIDE_ARRAY)
        return CUDA_SUCCESS;
    CUresult r = emu_array_resolve(array, &s->array);
    if (r)
        return CUDA_ERROR_INVALID_VALUE;
    emu_array *a = s->array;
    /* As x, y, z within the array, so that the engine's bounds checks apply. */
    if (offset > a->bytes || n > a->bytes - offset || (n && offset / a->row_bytes !=
                                                         (offset + n - 1) / a->row_bytes)) {
        side_release(s);
        return CUDA_ERROR_INVALID_VALUE; /* more than one row: not a 1D copy of this array */
    }
    s->x = offset % a->row_bytes;
    s->y = (offset / a->row_bytes) % a->height;
    s->z = offset / a->row_bytes / a->height;
    return CUDA_SUCCESS;
}

static CUresult array_copy(int dkind, uint64_t dbase, CUarray darray, size_t doff, int skind,
                           uint64_t sbase, CUarray sarray, size_t soff, size_t n, int async,
                           CUstream hStream)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_copy3d c;
    memset(&c, 0, sizeof c);
    r = flat_side(&c.src, skind, sbase, sarray, soff, n);
    if (r)
        return r;
    r = flat_side(&c.dst, dkind, dbase, darray, doff, n);
    if (r) {
        side_release(&c.src);
        return r;
    }
    c.width = n;
    c.height = c.depth = 1;
    return async ? copy3d_async(&c, hStream) : copy3d_sync(&c);
}

CUresult CUDAAPI cuMemcpyHtoA(CUarray dstArray, size_t dstOffset, const void *srcHost,
                              size_t ByteCount)
{
    return array_copy(EMU_SIDE_ARRAY, 0, dstArray, dstOffset, EMU_SIDE_HOST,
                      (uint64_t)(uintptr_t)srcHost, NULL, 0, ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyAtoH(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    return array_copy(EMU_SIDE_HOST, (uint64_t)(uintptr_t)dstHost, NULL, 0, EMU_SIDE_ARRAY, 0,
                      srcArray, srcOffset, ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyDtoA(CUarray dstArray, size_t dstOffset, CUdeviceptr srcDevice,
                              size_t ByteCount)
{
    return array_copy(EMU_SIDE_ARRAY, 0, dstArray, dstOffset, EMU_SIDE_DEVICE, srcDevice, NULL, 0,
                      ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyAtoD(CUdeviceptr dstDevice, CUarray srcArray, size_t srcOffset,
                              size_t ByteCount)
{
    return array_copy(EMU_SIDE_DEVICE, dstDevice, NULL, 0, EMU_SIDE_ARRAY, 0, srcArray, srcOffset,
                      ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyAtoA(CUarray dstArray, size_t dstOffset, CUarray srcArray,
                              size_t srcOffset, size_t ByteCount)
{
    return array_copy(EMU_SIDE_ARRAY, 0, dstArray, dstOffset, EMU_SIDE_ARRAY, 0, srcArray,
                      srcOffset, ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyHtoAAsync(CUarray dstArray, size_t dstOffset, const void *srcHost,
                                   size_t ByteCount, CUstream hStream)
{
    return array_copy(EMU_SIDE_ARRAY, 0, dstArray, dstOffset, EMU_SIDE_HOST,
                      (uint64_t)(uintptr_t)srcHost, NULL, 0, ByteCount, 1, hStream);
}

CUresult CUDAAPI cuMemcpyAtoHAsync(void *dstHost, CUarray srcArray, size_t srcOffset,
                                   size_t ByteCount, CUstream hStream)
{
    return array_copy(EMU_SIDE_HOST, (uint64_t)(uintptr_t)dstHost, NULL, 0, EMU_SIDE_ARRAY, 0,
                      srcArray, srcOffset, ByteCount, 1, hStream);
}

/* ---- copies between contexts ---- */

/* cuMemcpyPeer: each side must be memory of (or reachable from) the context named for it. */
static CUresult peer_copy(CUdeviceptr dst, CUcontext dstContext, CUdeviceptr src,
                          CUcontext srcContext, size_t n, int async, CUstream hStream)
{
    emu_ctx *dc, *sc;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (emu_ctx_resolve(dstContext, &dc) == CUDA_ERROR_INVALID_CONTEXT || !dstContext ||
        emu_ctx_resolve(srcContext, &sc) == CUDA_ERROR_INVALID_CONTEXT || !srcContext)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (n && (!emu_mem_translate(dc, dst, n) || !emu_mem_translate(sc, src, n)))
        return CUDA_ERROR_INVALID_VALUE;
    emu_copy3d c;
    memset(&c, 0, sizeof c);
    c.src.kind = c.dst.kind = EMU_SIDE_DEVICE;
    c.src.base = src;
    c.dst.base = dst;
    c.width = n;
    c.height = c.depth = 1;
    return async ? copy3d_async(&c, hStream) : copy3d_sync(&c);
}

CUresult CUDAAPI cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                              CUcontext srcContext, size_t ByteCount)
{
    return peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, 0, NULL);
}

CUresult CUDAAPI cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount,
                                   CUstream hStream)
{
    return peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, 1, hStream);
}
