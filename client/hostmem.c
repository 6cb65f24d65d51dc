/* Page-locked host memory and pointer attributes. Page-locked memory is shared with gpu-server
 * over shared memory when the transport allows (pinned.h), plain host memory of the client
 * otherwise; either way it is remembered so that pointer attributes can answer "host" and
 * cuMemFreeHost can refuse a pointer it never gave out. */
#include <cuda.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "coherent.h"
#include "conn.h"
#include "log.h"
#include "pinned.h"
#include "stub.h"

/* The stub remembers page-locked memory (allocated or registered) so that pointer attributes can
 * say "host" and cuMemFreeHost can refuse a pointer it never gave out. host_lock protects the
 * list. */
struct host_range {
    struct host_range *next;
    uintptr_t base;
    size_t size;
    int owned; /* cuMemAllocHost/cuMemHostAlloc (freed by cuMemFreeHost) vs registered */
    unsigned flags; /* as given to cuMemHostAlloc / cuMemHostRegister */
};
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct host_range *host_ranges;

/* In a forked child: the ranges are still the child's memory, the lock may have been held. */
void vg_stub_forget_host_lock(void)
{
    pthread_mutex_init(&host_lock, NULL);
}

static int host_add(void *p, size_t size, int owned, unsigned flags)
{
    struct host_range *r = malloc(sizeof *r);
    if (!r)
        return -1;
    r->base = (uintptr_t)p;
    r->size = size;
    r->owned = owned;
    r->flags = flags;
    pthread_mutex_lock(&host_lock);
    r->next = host_ranges;
    host_ranges = r;
    pthread_mutex_unlock(&host_lock);
    return 0;
}

/* Removes the range starting exactly at p with the given ownership; 0 or -1 if none. */
static int host_remove(void *p, int owned)
{
    int found = -1;
    pthread_mutex_lock(&host_lock);
    for (struct host_range **pp = &host_ranges; *pp; pp = &(*pp)->next) {
        if ((*pp)->base == (uintptr_t)p && (*pp)->owned == owned) {
            struct host_range *r = *pp;
            *pp = r->next;
            free(r);
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&host_lock);
    return found;
}

/* The range holding p: 1 with its base, size and flags (flags may be NULL), else 0. */
static int host_find_flags(uint64_t p, uint64_t *base, uint64_t *size, unsigned *flags)
{
    int found = 0;
    pthread_mutex_lock(&host_lock);
    for (struct host_range *r = host_ranges; r; r = r->next) {
        if (p >= r->base && p - r->base < r->size) {
            *base = r->base;
            *size = r->size;
            if (flags)
                *flags = r->flags;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&host_lock);
    return found;
}

static int host_find(uint64_t p, uint64_t *base, uint64_t *size)
{
    return host_find_flags(p, base, size, NULL);
}

static CUresult host_alloc(void **pp, size_t bytes, unsigned flags)
{
    vg_debug("page-locked allocation of %zu bytes, flags %#x", bytes, flags);
    if (!pp || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_conn_initialized())
        return CUDA_ERROR_NOT_INITIALIZED;
    void *p = NULL;
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
        /* Mapped: the device reads and writes it at the same address (client/coherent.h). */
        CUdeviceptr d;
        CUresult rc = vg_coh_alloc(bytes, CU_MEM_ATTACH_GLOBAL, VG_COH_MAPPED, &d);
        if (rc != CUDA_SUCCESS)
            return rc;
        p = (void *)(uintptr_t)d;
    } else {
        /* Shared with gpu-server when the transport allows (pinned.h), else plain memory. */
        CUresult rc = vg_pinned_alloc(bytes, &p);
        if (rc == CUDA_ERROR_NOT_SUPPORTED)
            rc = posix_memalign(&p, 4096, bytes) == 0 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    if (host_add(p, bytes, 1, flags) < 0) {
        CUresult rc;
        if (vg_coh_release((uintptr_t)p, &rc) < 0 && !vg_pinned_free(p))
            free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocHost(void **pp, size_t bytes)
{
    return host_alloc(pp, bytes, 0);
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    if (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
        return CUDA_ERROR_INVALID_VALUE;
    return host_alloc(pp, bytes, flags);
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
    if (host_remove(p, 1) < 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    if (vg_coh_release((uintptr_t)p, &rc) < 0 && !vg_pinned_free(p))
        free(p);
    return rc;
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytes, unsigned int flags)
{
    if (!p || !bytes)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t base, size;
    if (host_find((uint64_t)(uintptr_t)p, &base, &size))
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    if (flags & CU_MEMHOSTREGISTER_DEVICEMAP) {
        /* The device gets a mirror at an address of its own (coherent.h). */
        CUdeviceptr dev;
        CUresult rc = vg_coh_register(p, bytes, &dev);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    if (host_add(p, bytes, 0, flags) < 0) {
        CUresult rc;
        vg_coh_release((uintptr_t)p, &rc);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if (host_remove(p, 0) < 0)
        return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    CUresult rc = CUDA_SUCCESS;
    vg_coh_release((uintptr_t)p, &rc);
    return rc;
}

/* The device address of mapped page-locked memory: for cuMemHostAlloc'd memory the host address
 * itself, for registered memory its mirror's (coherent.h). Memory allocated or registered
 * without DEVICEMAP has none, as the driver documents. */
CUresult CUDAAPI cuMemHostGetDevicePointer(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
    enum vg_coh_kind kind;
    CUdeviceptr dev;
    uintptr_t base;
    size_t size;
    if (!pdptr || !p || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vg_coh_find((uintptr_t)p, &kind, &dev, &base, &size) || (kind != VG_COH_MAPPED && kind != VG_COH_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = dev;
    return CUDA_SUCCESS;
}

/* Managed memory: server memory and a host shadow at the same address (coherent.h). */
CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    if (!dptr || bytes == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    return vg_coh_alloc(bytes, flags, VG_COH_MANAGED, dptr);
}

/* Memory the stub keeps a shadow of goes with its shadow. */
CUresult CUDAAPI cuMemFree(CUdeviceptr dptr)
{
    CUresult rc;
    if (vg_coh_release(dptr, &rc) == 0)
        return rc;
    return FWD(cuMemFree_v2, NULL, 0, dptr);
}

/* One attribute at a time: each has a size of its own. */
CUresult CUDAAPI cuMemRangeGetAttributes(void **data, size_t *sizes, CUmem_range_attribute *attrs, size_t n,
                                         CUdeviceptr p, size_t count)
{
    if (!data || !sizes || !attrs || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n; i++) {
        CUresult rc = cuMemRangeGetAttribute(data[i], sizes[i], attrs[i], p, count);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostGetFlags(unsigned int *flags, void *p)
{
    uint64_t base, size;
    unsigned f = 0;
    if (!flags || !p)
        return CUDA_ERROR_INVALID_VALUE;
    if (!host_find_flags((uint64_t)(uintptr_t)p, &base, &size, &f))
        return CUDA_ERROR_INVALID_VALUE;
    *flags = f;
    return CUDA_SUCCESS;
}

/* ---- pointer attributes -------------------------------------------------------------------------- */

/* The size of the value each supported attribute writes; 0 for attributes not forwarded. */
static size_t pointer_attr_width(CUpointer_attribute attr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        return 8;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        return 4;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        return 1; /* a bool */
    default:
        return 0;
    }
}

static void store_width(void *data, uint64_t v, size_t width)
{
    if (width == 8)
        memcpy(data, &v, 8);
    else if (width == 4) {
        uint32_t w = (uint32_t)v;
        memcpy(data, &w, 4);
    } else {
        *(unsigned char *)data = v != 0;
    }
}

/* Attributes of page-locked host memory, answered here: 1 when ptr is such memory. */
static int host_attr(CUpointer_attribute attr, CUdeviceptr ptr, uint64_t *v)
{
    uint64_t base, size;
    if (!host_find(ptr, &base, &size))
        return 0;
    enum vg_coh_kind kind;
    CUdeviceptr dev;
    uintptr_t cbase;
    size_t csize;
    if (attr == CU_POINTER_ATTRIBUTE_DEVICE_POINTER && vg_coh_find(ptr, &kind, &dev, &cbase, &csize)) {
        *v = dev; /* mapped memory */
        return 1;
    }
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *v = CU_MEMORYTYPE_HOST;
        break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        *v = ptr;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *v = base;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *v = size;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: /* not mapped into the device */
    default:
        *v = 0;
        break;
    }
    return 1;
}

/* An attribute of device memory: managed memory's own answers (its host side is the stub's
 * shadow at the same address), else the server's. */
static CUresult device_attr(CUpointer_attribute attr, CUdeviceptr ptr, uint64_t *v)
{
    enum vg_coh_kind kind;
    CUdeviceptr dev;
    uintptr_t cbase;
    size_t csize;
    int coherent = vg_coh_find(ptr, &kind, &dev, &cbase, &csize);
    int managed = coherent && (kind == VG_COH_MANAGED || kind == VG_COH_GLOBAL);
    if (attr == CU_POINTER_ATTRIBUTE_IS_MANAGED && coherent) {
        *v = managed;
        return CUDA_SUCCESS;
    }
    if (attr == CU_POINTER_ATTRIBUTE_HOST_POINTER) {
        *v = managed ? ptr : 0;
        return CUDA_SUCCESS;
    }
    return FWD(cuPointerGetAttribute, v, 1, (uint64_t)attr, ptr);
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    size_t width = pointer_attr_width(attr);
    if (!width)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t v = 0;
    if (!host_attr(attr, ptr, &v)) {
        CUresult rc = device_attr(attr, ptr, &v);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (attr == CU_POINTER_ATTRIBUTE_HOST_POINTER && !v)
            return CUDA_ERROR_INVALID_VALUE; /* device memory has no host address */
    }
    store_width(data, v, width);
    return CUDA_SUCCESS;
}

/* Like the driver: a pointer that is not device memory of this client gets zeros (memory type 0,
 * "unregistered host memory") and success. */
CUresult CUDAAPI cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data, CUdeviceptr ptr)
{
    if (!attrs || !data || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        if (!pointer_attr_width(attrs[i]) || !data[i])
            return CUDA_ERROR_INVALID_VALUE;
    uint64_t hb, hs;
    int host = host_find(ptr, &hb, &hs);
    int device = !host && vg_stub_is_device_ptr(ptr);
    for (unsigned i = 0; i < n; i++) {
        size_t width = pointer_attr_width(attrs[i]);
        uint64_t v = 0;
        if (host)
            host_attr(attrs[i], ptr, &v);
        if (device) {
            CUresult rc = device_attr(attrs[i], ptr, &v);
            if (rc != CUDA_SUCCESS)
                return rc;
        }
        store_width(data[i], v, width);
    }
    return CUDA_SUCCESS;
}
