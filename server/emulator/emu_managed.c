/* emu_managed: managed (unified) memory, in-process.
 *
 * On the emulated GPU device memory is host memory, so managed memory is simply host memory that
 * kernels of every context may reach: the host and kernels see the same bytes at the same address,
 * always coherent, and the device reports concurrent managed access. cuMemAllocManaged charges the
 * allocating context's device, like device memory. Prefetches and advice have no effect on where
 * the bytes are (they are legal hints); they are checked like CUDA checks them and remembered per
 * allocation, so that cuMemRangeGetAttribute(s) report what was asked. */
#include "emu.h"

#include <stdlib.h>
#include <string.h>

typedef struct managed_info {
    uint64_t addr;
    size_t size;
    int read_mostly;
    CUmemLocation preferred;     /* type 0 (invalid) when unset */
    CUmemLocation last_prefetch; /* type 0 when never prefetched */
    unsigned accessed_by;        /* device bits */
    int accessed_by_host;
    struct managed_info *next;
} managed_info;

static pthread_mutex_t managed_lock = PTHREAD_MUTEX_INITIALIZER;
static managed_info *infos;

#define MANAGED_ALIGN 4096

CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!dptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = emu_capture_unsafe_call()))
        return r;
    if (bytesize > c->dev->total_mem || bytesize > SIZE_MAX - MANAGED_ALIGN)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t rounded = (bytesize + MANAGED_ALIGN - 1) & ~(size_t)(MANAGED_ALIGN - 1);
    managed_info *mi = calloc(1, sizeof *mi);
    if (!mi)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = emu_capacity_reserve(c->dev->physical, rounded))) {
        free(mi);
        return r;
    }
    void *host = emu_backing_alloc(rounded);
    if (!host) {
        emu_capacity_release(c->dev->physical, rounded);
        free(mi);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    emu_alloc rec = {0};
    rec.addr = (uint64_t)(uintptr_t)host;
    rec.size = bytesize;
    rec.host = host;
    rec.ctx = c;
    rec.kind = EMU_ALLOC_MANAGED;
    rec.access_devs = EMU_ALL_DEVICES;
    rec.charged = rounded;
    rec.charge_dev = c->dev->physical;
    rec.ordinal = c->dev->ordinal;
    rec.flags = flags;
    mi->addr = rec.addr;
    mi->size = bytesize;
    pthread_mutex_lock(&managed_lock);
    mi->next = infos;
    infos = mi;
    pthread_mutex_unlock(&managed_lock);
    if (emu_mem_insert(&rec) != CUDA_SUCCESS) {
        /* Cannot happen for fresh memory; undo everything if it does. */
        emu_alloc undo = rec;
        emu_managed_released(&undo);
        emu_backing_free(host, rounded);
        emu_capacity_release(c->dev->physical, rounded);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *dptr = (CUdeviceptr)rec.addr;
    return CUDA_SUCCESS;
}

void emu_managed_released(const emu_alloc *a)
{
    pthread_mutex_lock(&managed_lock);
    for (managed_info **pp = &infos; *pp; pp = &(*pp)->next) {
        if ((*pp)->addr == a->addr) {
            managed_info *mi = *pp;
            *pp = mi->next;
            free(mi);
            break;
        }
    }
    pthread_mutex_unlock(&managed_lock);
}

/* The managed allocation holding [ptr, ptr+count), under managed_lock (held on success). */
static CUresult managed_range(CUdeviceptr ptr, size_t count, managed_info **out)
{
    emu_alloc a;
    if (count == 0 || !emu_mem_lookup((uint64_t)ptr, &a) || a.kind != EMU_ALLOC_MANAGED ||
        count > a.size - ((uint64_t)ptr - a.addr))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&managed_lock);
    for (managed_info *mi = infos; mi; mi = mi->next) {
        if (mi->addr == a.addr) {
            *out = mi;
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&managed_lock);
    return CUDA_ERROR_INVALID_VALUE;
}

/* A location as prefetches and advice name it: a device, or host memory. */
static CUresult check_location(CUmemLocation loc, int allow_host)
{
    switch (loc.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
        return emu_device_at(loc.id) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        return allow_host ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                    unsigned int flags, CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (flags != 0 || (r = check_location(location, 1)))
        return r ? r : CUDA_ERROR_INVALID_VALUE;
    managed_info *mi;
    if ((r = managed_range(devPtr, count, &mi)))
        return r;
    /* The bytes are where every processor reaches them already: nothing to move. */
    mi->last_prefetch = location;
    pthread_mutex_unlock(&managed_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
                             CUmemLocation location)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    int needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION ||
                         advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                         advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
    if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
        return CUDA_ERROR_INVALID_VALUE;
    if (needs_location && (r = check_location(location, 1)))
        return r;
    managed_info *mi;
    if ((r = managed_range(devPtr, count, &mi)))
        return r;
    int host = location.type != CU_MEM_LOCATION_TYPE_DEVICE;
    switch (advice) {
    case CU_MEM_ADVISE_SET_READ_MOSTLY: mi->read_mostly = 1; break;
    case CU_MEM_ADVISE_UNSET_READ_MOSTLY: mi->read_mostly = 0; break;
    case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: mi->preferred = location; break;
    case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: memset(&mi->preferred, 0, sizeof mi->preferred); break;
    case CU_MEM_ADVISE_SET_ACCESSED_BY:
        if (host)
            mi->accessed_by_host = 1;
        else
            mi->accessed_by |= 1u << location.id;
        break;
    case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
        if (host)
            mi->accessed_by_host = 0;
        else
            mi->accessed_by &= ~(1u << location.id);
        break;
    default: break;
    }
    pthread_mutex_unlock(&managed_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length,
                                        unsigned int flags)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST &&
        flags != CU_MEM_ATTACH_SINGLE)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags == CU_MEM_ATTACH_SINGLE && !s)
        return CUDA_ERROR_INVALID_VALUE; /* a single-stream attachment needs a stream */
    emu_alloc a;
    if (!emu_mem_lookup((uint64_t)dptr, &a) || a.kind != EMU_ALLOC_MANAGED ||
        (length && (a.addr != (uint64_t)dptr || length != a.size)))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS; /* visibility is always global here: nothing to attach */
}

/* A location as the legacy int attributes report it: a device ordinal, CU_DEVICE_CPU for host
 * memory, CU_DEVICE_INVALID when unset. */
static int location_as_int(CUmemLocation l)
{
    if (l.type == CU_MEM_LOCATION_TYPE_DEVICE)
        return l.id;
    return l.type == 0 ? CU_DEVICE_INVALID : CU_DEVICE_CPU;
}

static CUresult range_attribute(void *data, size_t dataSize, CUmem_range_attribute attribute,
                                const managed_info *mi)
{
    int v;
    switch (attribute) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: v = mi->read_mostly; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: v = location_as_int(mi->preferred); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: v = location_as_int(mi->last_prefetch); break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: v = mi->preferred.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: v = mi->preferred.id; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: v = mi->last_prefetch.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID: v = mi->last_prefetch.id; break;
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY: {
        /* A list of devices (CU_DEVICE_CPU for host memory), CU_DEVICE_INVALID after it. */
        if (dataSize == 0 || dataSize % 4)
            return CUDA_ERROR_INVALID_VALUE;
        size_t n = dataSize / 4, k = 0;
        for (size_t i = 0; i < n; i++) {
            int e = CU_DEVICE_INVALID;
            while (k < EMU_MAX_DEVICES + 1) {
                int cand = (int)k++;
                if (cand < EMU_MAX_DEVICES && ((mi->accessed_by >> cand) & 1)) {
                    e = cand;
                    break;
                }
                if (cand == EMU_MAX_DEVICES && mi->accessed_by_host) {
                    e = CU_DEVICE_CPU;
                    break;
                }
            }
            if (emu_host_write((char *)data + i * 4, &e, 4))
                return CUDA_ERROR_INVALID_VALUE;
        }
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (dataSize != 4)
        return CUDA_ERROR_INVALID_VALUE;
    return emu_host_write(data, &v, sizeof v);
}

CUresult CUDAAPI cuMemRangeGetAttribute(void *data, size_t dataSize,
                                        CUmem_range_attribute attribute, CUdeviceptr devPtr,
                                        size_t count)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    managed_info *mi;
    if ((r = managed_range(devPtr, count, &mi)))
        return r;
    managed_info copy = *mi;
    pthread_mutex_unlock(&managed_lock);
    return range_attribute(data, dataSize, attribute, &copy);
}

CUresult CUDAAPI cuMemRangeGetAttributes(void **data, size_t *dataSizes,
                                         CUmem_range_attribute *attributes, size_t numAttributes,
                                         CUdeviceptr devPtr, size_t count)
{
    if (!data || !dataSizes || !attributes || numAttributes == 0 || numAttributes > 64)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < numAttributes; i++) {
        void *d;
        size_t sz;
        CUmem_range_attribute a;
        if (emu_host_read(&d, &data[i], sizeof d) || emu_host_read(&sz, &dataSizes[i], sizeof sz) ||
            emu_host_read(&a, &attributes[i], sizeof a))
            return CUDA_ERROR_INVALID_VALUE;
        CUresult r = cuMemRangeGetAttribute(d, sz, a, devPtr, count);
        if (r)
            return r;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemPrefetchBatchAsync(CUdeviceptr *dptrs, size_t *sizes, size_t count,
                                         CUmemLocation *prefetchLocs, size_t *prefetchLocIdxs,
                                         size_t numPrefetchLocs, unsigned long long flags,
                                         CUstream hStream)
{
    if (!dptrs || !sizes || !prefetchLocs || !prefetchLocIdxs || count == 0 ||
        numPrefetchLocs == 0 || numPrefetchLocs > count || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    /* prefetchLocs[k] applies from entry prefetchLocIdxs[k] to the next index. */
    size_t k = 0;
    CUmemLocation loc = {0};
    for (size_t i = 0; i < count; i++) {
        size_t start;
        while (k < numPrefetchLocs) {
            if (emu_host_read(&start, &prefetchLocIdxs[k], sizeof start))
                return CUDA_ERROR_INVALID_VALUE;
            if (start > i)
                break;
            if (emu_host_read(&loc, &prefetchLocs[k], sizeof loc))
                return CUDA_ERROR_INVALID_VALUE;
            k++;
        }
        CUdeviceptr p;
        size_t n;
        if (emu_host_read(&p, &dptrs[i], sizeof p) || emu_host_read(&n, &sizes[i], sizeof n))
            return CUDA_ERROR_INVALID_VALUE;
        CUresult r = cuMemPrefetchAsync(p, n, loc, 0, hStream);
        if (r)
            return r;
    }
    return CUDA_SUCCESS;
}
