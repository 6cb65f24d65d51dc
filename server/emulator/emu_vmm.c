/* emu_vmm: virtual memory management (cuMemAddressReserve, cuMemCreate, cuMemMap, cuMemSetAccess).
 *
 * Reservations are ranges of a device-address region of their own (EMU_VMM_BASE, after every
 * device's span), handed out at a 2 MiB granularity, the figure GPUs report. Each reservation has
 * a host shadow of the same size (an inaccessible mmap). A physical handle (cuMemCreate) is a
 * memfd charged to its device. A mapping maps a piece of the handle's memfd into the shadow at the
 * mapping's offset, so that mappings placed side by side are contiguous in host memory as they
 * are on the device, and the same handle mapped twice shows the same bytes twice, as on a GPU. The
 * mapping is also a record in the allocation table (kind EMU_ALLOC_VMM) that no context may touch
 * until cuMemSetAccess grants its device read-write access; kernel accesses and copies continue
 * from one mapping into the next adjacent one (emu_mem_translate). Mappings belong to the
 * process, not to a context; the handle's memory lives until it is released and unmapped. */
#include "emu.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define VMM_GRANULARITY ((size_t)2 << 20)
#define EMU_VMM_BASE (EMU_DEVICE_BASE + (uint64_t)EMU_MAX_DEVICES * EMU_DEVICE_SPAN)
#define EMU_VMM_SPAN EMU_DEVICE_SPAN

typedef struct vmm_handle {
    int tag;                       /* EMU_OWNER_VMM */
    int refs;                      /* handle references plus mappings: the memory lives until 0 */
    int handle_refs;               /* cuMemCreate and cuMemRetainAllocationHandle, less releases */
    CUmemAllocationProp prop;
    size_t size;
    int fd;                        /* memfd holding the memory */
    int dev;                       /* this process's ordinal */
    int charge_dev;                /* the host's device, charged for it */
} vmm_handle;

typedef struct reservation {
    uint64_t addr;
    size_t size;
    unsigned char *shadow;         /* host range of the same size; mappings are mmap'd into it */
    struct reservation *next;
} reservation;

/* Guards handles' reference counts and the reservation list. */
static pthread_mutex_t vmm_lock = PTHREAD_MUTEX_INITIALIZER;
static reservation *reservations;
static uint64_t vmm_next = EMU_VMM_BASE;

static void handle_unref(vmm_handle *h)
{
    if (--h->refs > 0)
        return;
    emu_capacity_release(h->charge_dev, h->size);
    close(h->fd);
    free(h);
}

void emu_vmm_mapping_released(const emu_alloc *a)
{
    pthread_mutex_lock(&vmm_lock);
    handle_unref(a->owner);
    pthread_mutex_unlock(&vmm_lock);
}

static CUresult check_prop(const CUmemAllocationProp *prop, emu_device **dev)
{
    if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return prop->location.type == CU_MEM_LOCATION_TYPE_HOST ||
                       prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA
                   ? EMU_UNSUPPORTED("virtual memory allocations in host memory")
                   : CUDA_ERROR_INVALID_VALUE;
    *dev = emu_device_at(prop->location.id);
    return *dev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult CUDAAPI cuMemGetAllocationGranularity(size_t *granularity,
                                               const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    CUmemAllocationProp p;
    emu_device *dev = NULL;
    if (!granularity || !prop || emu_host_read(&p, prop, sizeof p) ||
        (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = check_prop(&p, &dev)))
        return r;
    *granularity = VMM_GRANULARITY;
    return CUDA_SUCCESS;
}

/* ---- reservations ---- */

static reservation *reservation_at(uint64_t addr, size_t size)
{
    for (reservation *rv = reservations; rv; rv = rv->next)
        if (addr >= rv->addr && addr - rv->addr < rv->size && size <= rv->size - (addr - rv->addr))
            return rv;
    return NULL;
}

static int range_free(uint64_t addr, size_t size)
{
    if (addr < EMU_VMM_BASE || addr - EMU_VMM_BASE > EMU_VMM_SPAN ||
        size > EMU_VMM_SPAN - (addr - EMU_VMM_BASE))
        return 0;
    for (reservation *rv = reservations; rv; rv = rv->next)
        if (addr < rv->addr + rv->size && rv->addr < addr + size)
            return 0;
    return 1;
}

/* Lowest free, aligned range of size bytes in the region (bump first, then gaps). */
static uint64_t find_range(size_t size, size_t align)
{
    uint64_t a = (vmm_next + align - 1) & ~(uint64_t)(align - 1);
    if (range_free(a, size))
        return a;
    for (a = EMU_VMM_BASE; a + size <= EMU_VMM_BASE + EMU_VMM_SPAN; a += align) {
        reservation *hit = NULL;
        for (reservation *rv = reservations; rv; rv = rv->next)
            if (a < rv->addr + rv->size && rv->addr < a + size)
                hit = rv;
        if (!hit)
            return a;
        a = ((hit->addr + hit->size + align - 1) & ~(uint64_t)(align - 1)) - align;
    }
    return 0;
}

CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                     CUdeviceptr addr, unsigned long long flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!ptr || size == 0 || size % VMM_GRANULARITY || flags != 0 ||
        (alignment && (alignment & (alignment - 1))) || size > EMU_VMM_SPAN)
        return CUDA_ERROR_INVALID_VALUE;
    size_t align = alignment > VMM_GRANULARITY ? alignment : VMM_GRANULARITY;
    reservation *rv = calloc(1, sizeof *rv);
    if (!rv)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *shadow = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (shadow == MAP_FAILED) {
        free(rv);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rv->shadow = shadow;
    pthread_mutex_lock(&vmm_lock);
    /* The requested address is a hint, honoured when it is free and aligned. */
    uint64_t a = addr && addr % align == 0 && range_free(addr, size) ? (uint64_t)addr
                                                                     : find_range(size, align);
    if (!a) {
        pthread_mutex_unlock(&vmm_lock);
        munmap(shadow, size);
        free(rv);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rv->addr = a;
    rv->size = size;
    rv->next = reservations;
    reservations = rv;
    if (a + size > vmm_next)
        vmm_next = a + size;
    pthread_mutex_unlock(&vmm_lock);
    *ptr = (CUdeviceptr)a;
    return CUDA_SUCCESS;
}

struct range_scan {
    uint64_t addr;
    size_t size;
    size_t inside, partial;        /* mappings wholly inside, and ones that straddle an edge */
    size_t covered;                /* bytes of the range that mappings cover */
};

static int scan_range(emu_alloc *a, void *arg)
{
    struct range_scan *rs = arg;
    if (a->kind != EMU_ALLOC_VMM || a->addr >= rs->addr + rs->size || rs->addr >= a->addr + a->size)
        return EMU_MEM_KEEP;
    if (a->addr >= rs->addr && a->addr + a->size <= rs->addr + rs->size) {
        rs->inside++;
        rs->covered += a->size;
    } else {
        rs->partial++;
    }
    return EMU_MEM_KEEP;
}

CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    struct range_scan rs = {(uint64_t)ptr, size, 0, 0, 0};
    emu_mem_update(scan_range, &rs);
    if (rs.inside || rs.partial)
        return CUDA_ERROR_INVALID_VALUE; /* still mapped: unmap first */
    pthread_mutex_lock(&vmm_lock);
    r = CUDA_ERROR_INVALID_VALUE;
    for (reservation **pp = &reservations; *pp; pp = &(*pp)->next) {
        if ((*pp)->addr == (uint64_t)ptr && (*pp)->size == size) {
            reservation *rv = *pp;
            *pp = rv->next;
            munmap(rv->shadow, rv->size);
            free(rv);
            r = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&vmm_lock);
    return r;
}

/* ---- physical memory ---- */

CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    CUmemAllocationProp p;
    emu_device *dev = NULL;
    if (!handle || !prop || emu_host_read(&p, prop, sizeof p) || size == 0 ||
        size % VMM_GRANULARITY || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = check_prop(&p, &dev)))
        return r;
    if (size > dev->total_mem)
        return CUDA_ERROR_OUT_OF_MEMORY;
    vmm_handle *h = calloc(1, sizeof *h);
    if (!h)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = emu_capacity_reserve(dev->physical, size))) {
        free(h);
        return r;
    }
    h->fd = memfd_create("vgpu-vmm", MFD_CLOEXEC);
    if (h->fd < 0 || ftruncate(h->fd, (off_t)size) != 0 || emu_obj_add(h, EMU_OBJ_VMM_HANDLE) != 0) {
        if (h->fd >= 0)
            close(h->fd);
        emu_capacity_release(dev->physical, size);
        free(h);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    h->tag = EMU_OWNER_VMM;
    h->refs = 1;
    h->handle_refs = 1;
    h->prop = p;
    h->size = size;
    h->dev = dev->ordinal;
    h->charge_dev = dev->physical;
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return CUDA_SUCCESS;
}

static vmm_handle *handle_lookup(CUmemGenericAllocationHandle handle)
{
    void *h = (void *)(uintptr_t)handle;
    return handle && emu_obj_is(h, EMU_OBJ_VMM_HANDLE) ? h : NULL;
}

CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    pthread_mutex_lock(&vmm_lock);
    vmm_handle *h = handle_lookup(handle);
    if (!h) {
        pthread_mutex_unlock(&vmm_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (--h->handle_refs == 0)
        emu_obj_del(h); /* the handle value is dead; the memory lives while mapped */
    handle_unref(h);
    pthread_mutex_unlock(&vmm_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                        CUmemGenericAllocationHandle handle)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vmm_lock);
    vmm_handle *h = handle_lookup(handle);
    CUmemAllocationProp p;
    if (h)
        p = h->prop;
    pthread_mutex_unlock(&vmm_lock);
    return h ? emu_host_write(prop, &p, sizeof p) : CUDA_ERROR_INVALID_VALUE;
}

/* ---- mappings ---- */

CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (size == 0 || flags != 0 || (uint64_t)ptr % VMM_GRANULARITY || size % VMM_GRANULARITY ||
        offset % VMM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vmm_lock);
    vmm_handle *h = handle_lookup(handle);
    reservation *rv = reservation_at(ptr, size);
    if (!h || offset > h->size || size > h->size - offset || !rv) {
        pthread_mutex_unlock(&vmm_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    unsigned char *host = rv->shadow + ((uint64_t)ptr - rv->addr);
    /* Over an existing mapping this would replace its bytes: the table refuses overlaps, so
     * check first (under vmm_lock, which every cuMemMap holds). */
    emu_alloc existing;
    for (size_t off = 0; off < size; off += VMM_GRANULARITY) {
        if (emu_mem_lookup((uint64_t)ptr + off, &existing)) {
            pthread_mutex_unlock(&vmm_lock);
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    if (mmap(host, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->fd, (off_t)offset) ==
        MAP_FAILED) {
        pthread_mutex_unlock(&vmm_lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    h->refs++;
    pthread_mutex_unlock(&vmm_lock);
    emu_alloc rec = {0};
    rec.addr = (uint64_t)ptr;
    rec.size = size;
    rec.host = host;
    rec.kind = EMU_ALLOC_VMM;
    rec.owner = h;
    rec.ordinal = h->dev;
    r = emu_mem_insert(&rec);
    if (r) {
        pthread_mutex_lock(&vmm_lock);
        mmap(host, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        handle_unref(h);
        pthread_mutex_unlock(&vmm_lock);
    }
    return r;
}

static int unmap_range(emu_alloc *a, void *arg)
{
    struct range_scan *rs = arg;
    if (a->kind == EMU_ALLOC_VMM && a->addr >= rs->addr && a->addr + a->size <= rs->addr + rs->size)
        return EMU_MEM_REMOVE;
    return EMU_MEM_KEEP;
}

CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct range_scan rs = {(uint64_t)ptr, size, 0, 0, 0};
    emu_mem_update(scan_range, &rs);
    if (rs.partial || rs.inside == 0)
        return CUDA_ERROR_INVALID_VALUE; /* a mapping goes whole, and there must be one */
    pthread_mutex_lock(&vmm_lock);
    reservation *rv = reservation_at(ptr, size);
    pthread_mutex_unlock(&vmm_lock);
    if (!rv)
        return CUDA_ERROR_INVALID_VALUE;
    /* Mappings belong to no context: any context's kernels may be using them. */
    emu_ctx_drain_all();
    emu_mem_update(unmap_range, &rs);
    /* The shadow goes back to inaccessible, dropping the handle's pages from it. */
    pthread_mutex_lock(&vmm_lock);
    mmap(rv->shadow + ((uint64_t)ptr - rv->addr), size, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    pthread_mutex_unlock(&vmm_lock);
    return CUDA_SUCCESS;
}

struct access_arg {
    uint64_t addr;
    size_t size;
    unsigned set, clear;
};

static int set_access(emu_alloc *a, void *arg)
{
    struct access_arg *aa = arg;
    if (a->kind == EMU_ALLOC_VMM && a->addr >= aa->addr && a->addr + a->size <= aa->addr + aa->size)
        a->access_devs = (a->access_devs | aa->set) & ~aa->clear;
    return EMU_MEM_KEEP;
}

CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                size_t count)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (size == 0 || !desc || count == 0 || count > 64)
        return CUDA_ERROR_INVALID_VALUE;
    struct access_arg aa = {(uint64_t)ptr, size, 0, 0};
    for (size_t i = 0; i < count; i++) {
        CUmemAccessDesc d;
        if (emu_host_read(&d, &desc[i], sizeof d))
            return CUDA_ERROR_INVALID_VALUE;
        if (d.location.type != CU_MEM_LOCATION_TYPE_DEVICE || !emu_device_at(d.location.id))
            return CUDA_ERROR_INVALID_DEVICE;
        if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            aa.set |= 1u << d.location.id;
        else if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_NONE)
            aa.clear |= 1u << d.location.id;
        else if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_READ)
            return EMU_UNSUPPORTED("read-only virtual memory mappings");
        else
            return CUDA_ERROR_INVALID_VALUE;
    }
    /* The range must be exactly covered by whole mappings. */
    struct range_scan rs = {(uint64_t)ptr, size, 0, 0, 0};
    emu_mem_update(scan_range, &rs);
    if (rs.partial || rs.covered != size)
        return CUDA_ERROR_INVALID_VALUE;
    if (aa.clear)
        emu_ctx_drain_all(); /* taking access away from work that may be using it */
    emu_mem_update(set_access, &aa);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                CUdeviceptr ptr)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    CUmemLocation loc;
    if (!flags || !location || emu_host_read(&loc, location, sizeof loc))
        return CUDA_ERROR_INVALID_VALUE;
    emu_alloc a;
    if (!emu_mem_lookup((uint64_t)ptr, &a) || a.kind != EMU_ALLOC_VMM)
        return CUDA_ERROR_INVALID_VALUE;
    if (loc.type != CU_MEM_LOCATION_TYPE_DEVICE || !emu_device_at(loc.id))
        return CUDA_ERROR_INVALID_DEVICE;
    *flags = (a.access_devs >> loc.id) & 1 ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                                            : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_alloc a;
    if (!handle || !emu_mem_lookup((uint64_t)(uintptr_t)addr, &a) || a.kind != EMU_ALLOC_VMM)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vmm_lock);
    vmm_handle *h = a.owner; /* alive: the mapping holds it */
    if (h->handle_refs == 0 && emu_obj_add(h, EMU_OBJ_VMM_HANDLE) != 0) {
        pthread_mutex_unlock(&vmm_lock);
        return CUDA_ERROR_OUT_OF_MEMORY; /* a released handle comes back to life */
    }
    h->handle_refs++;
    h->refs++;
    pthread_mutex_unlock(&vmm_lock);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return CUDA_SUCCESS;
}

/* Sharing physical memory between processes, and sparse arrays, are not emulated. */
CUresult CUDAAPI cuMemExportToShareableHandle(void *shareableHandle,
                                              CUmemGenericAllocationHandle handle,
                                              CUmemAllocationHandleType handleType,
                                              unsigned long long flags)
{
    (void)shareableHandle, (void)handle, (void)handleType, (void)flags;
    return EMU_UNSUPPORTED("cuMemExportToShareableHandle");
}

CUresult CUDAAPI cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                void *osHandle,
                                                CUmemAllocationHandleType shHandleType)
{
    (void)handle, (void)osHandle, (void)shHandleType;
    return EMU_UNSUPPORTED("cuMemImportFromShareableHandle");
}

CUresult CUDAAPI cuMemGetHandleForAddressRange(void *handle, CUdeviceptr dptr, size_t size,
                                               CUmemRangeHandleType handleType,
                                               unsigned long long flags)
{
    (void)handle, (void)dptr, (void)size, (void)handleType, (void)flags;
    return EMU_UNSUPPORTED("cuMemGetHandleForAddressRange");
}

CUresult CUDAAPI cuMemMapArrayAsync(CUarrayMapInfo *mapInfoList, unsigned int count,
                                    CUstream hStream)
{
    (void)mapInfoList, (void)count, (void)hStream;
    return EMU_UNSUPPORTED("cuMemMapArrayAsync");
}
