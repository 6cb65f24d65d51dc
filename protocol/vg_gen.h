/* Helpers of the generated call code (protocol/gen_calls.py), on both sides of the wire.
 *
 * Sizes and counts that cross the wire are computed in 128 bits (vg_u128) from the 64-bit
 * arguments, so that a product such as N * 4 cannot wrap around into a small, "valid" length;
 * the functions named in protocol/cuda.calls (vg_span2d, vg_array_bytes, ...) take and return
 * vg_u128 for the same reason. */
#ifndef VG_GEN_H
#define VG_GEN_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 vg_u128;

/* The largest array one call may carry in either direction, in bytes: a count beyond it is
 * CUDA_ERROR_INVALID_VALUE before anything is allocated for it. */
#define VG_MAX_ARRAY_BYTES ((size_t)64 << 20)
/* The largest amount of device memory one call may charge (a sanity bound, far above any GPU). */
#define VG_MAX_CHARGE ((vg_u128)1 << 50)
/* Reply.str holds string outputs (device names, PCI bus ids): at most this many bytes. */
#define VG_STR_MAX 256

static inline uint64_t vg_f2u(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float vg_u2f(uint64_t v)
{
    uint32_t b = (uint32_t)v;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* *out = n when n elements of esize bytes stay within VG_MAX_ARRAY_BYTES. */
static inline CUresult vg_count(vg_u128 n, size_t esize, size_t *out)
{
    if (n * esize > VG_MAX_ARRAY_BYTES)
        return CUDA_ERROR_INVALID_VALUE;
    *out = (size_t)n;
    return CUDA_SUCCESS;
}

static inline vg_u128 vg_sub(vg_u128 a, vg_u128 b)
{
    return a > b ? a - b : 0;
}

/* Bytes a 2-D region of `height` rows of `width` bytes, `pitch` apart, spans (0 when empty). */
static inline vg_u128 vg_span2d(vg_u128 pitch, vg_u128 width, vg_u128 height)
{
    return height && width ? (height - 1) * pitch + width : 0;
}

/* The size of the value of a memory-pool attribute (cuMemPoolGet/SetAttribute); 0 for an
 * unknown attribute, which the driver then refuses. */
static inline vg_u128 vg_pool_attr_size(CUmemPool_attribute attr)
{
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        return sizeof(int);
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        return sizeof(cuuint64_t);
    default:
        return 0;
    }
}

/* Bytes per element of an array format (1 for formats this table does not know: the charge is
 * an estimate and errs low only for exotic block-compressed formats). */
static inline vg_u128 vg_format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
        return 4;
    default:
        return 1;
    }
}

/* Device memory an array of this description holds, for the tenant's accounting (the driver's
 * own padding is not counted). */
static inline vg_u128 vg_array_bytes(const CUDA_ARRAY_DESCRIPTOR *d)
{
    vg_u128 h = d->Height ? d->Height : 1;
    return (vg_u128)d->Width * h * d->NumChannels * vg_format_bytes(d->Format);
}

static inline vg_u128 vg_array3d_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    vg_u128 h = d->Height ? d->Height : 1, z = d->Depth ? d->Depth : 1;
    return (vg_u128)d->Width * h * z * d->NumChannels * vg_format_bytes(d->Format);
}

/* A mipmapped array: every level halves each dimension; bounded by 4/3 of level 0 for 2-D, 8/7
 * for 3-D, so the sum of levels is computed rather than estimated. */
static inline vg_u128 vg_mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d, vg_u128 levels)
{
    CUDA_ARRAY3D_DESCRIPTOR l = *d;
    vg_u128 sum = 0;
    for (vg_u128 i = 0; i < levels && i < 32; i++) {
        sum += vg_array3d_bytes(&l);
        l.Width = l.Width > 1 ? l.Width / 2 : 1;
        l.Height = l.Height > 1 ? l.Height / 2 : l.Height;
        l.Depth = l.Depth > 1 ? l.Depth / 2 : l.Depth;
    }
    return sum;
}

/* Bytes of device memory a 2-D texture reference binding reads. */
static inline vg_u128 vg_texref2d_bytes(const CUDA_ARRAY_DESCRIPTOR *d, vg_u128 pitch)
{
    return vg_span2d(pitch, (vg_u128)d->Width * d->NumChannels * vg_format_bytes(d->Format), d->Height);
}

/* The device an allocation property names (its location), for charging cuMemCreate. */
static inline int vg_prop_device(const CUmemAllocationProp *p)
{
    return p->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? p->location.id : 0;
}

/* cuMemAllocManaged's flags from the stub: back it with plain device memory (the driver's managed
 * addresses were taken in the client; the stub keeps the memory coherent either way). */
#define VG_MANAGED_DEVICE_BACKED 0x80000000u

#endif
