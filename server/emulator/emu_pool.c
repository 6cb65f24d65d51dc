/* emu_pool: stream-ordered allocation (cuMemAllocAsync, cuMemFreeAsync) and memory pools.
 *
 * A pool hands out device memory of its device. An allocation is made at the call (it exists
 * before the stream reaches it, which no correct program can tell); a stream-ordered free is queued
 * on its stream and, when the stream reaches it, parks the block in its pool: the address stays
 * reserved and charged to the device, nothing can reach it, and a later allocation of the pool
 * that fits takes it back. At synchronizing calls (context, stream and event synchronization) a
 * pool gives parked memory back to the device down to its release threshold (0 by default), as
 * CUDA's pools do; cuMemPoolTrimTo does it on request.
 *
 * Pool allocations belong to the allocating stream's context (they go when it is destroyed) and
 * are reachable by the contexts of the devices the pool grants access to (its own always).
 * Locking: pool_lock guards every pool; it is never held while calling into emu_mem (whose
 * release path calls back into emu_owner_released, which takes pool_lock). */
#include "emu.h"

#include <stdlib.h>
#include <string.h>

typedef struct parked_block {
    uint64_t addr;
    size_t size;
} parked_block;

typedef struct emu_pool {
    int tag;                       /* EMU_OWNER_POOL: allocations point here as their owner */
    emu_device *dev;
    int is_default;
    int destroyed;                 /* the handle is gone; freed when nothing is left */
    CUmemPoolProps props;
    unsigned access;               /* devices whose contexts may reach its memory */
    cuuint64_t release_threshold;
    int reuse[3];                  /* follow event dependencies, opportunistic, internal */
    size_t reserved, reserved_high, used, used_high;
    parked_block *parked;
    size_t nparked, parkcap;
    struct emu_pool *next;         /* all pools */
} emu_pool;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_pool *pools;
/* Parked blocks in all pools (changed under pool_lock): synchronizing calls read it without the
 * lock to skip the pools when nothing is parked. */
static _Atomic size_t parked_total;
static emu_pool *default_pool[EMU_MAX_DEVICES];
static emu_pool *current_pool[EMU_MAX_DEVICES];

static emu_pool *pool_new(emu_device *dev, const CUmemPoolProps *props, int is_default)
{
    emu_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->tag = EMU_OWNER_POOL;
    p->dev = dev;
    p->is_default = is_default;
    p->props = *props;
    p->access = 1u << dev->ordinal;
    p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;
    if (emu_obj_add(p, EMU_OBJ_POOL) != 0) {
        free(p);
        return NULL;
    }
    p->next = pools;
    pools = p;
    return p;
}

/* The device's default pool, made at first use. Caller holds pool_lock. */
static emu_pool *device_default(emu_device *dev)
{
    if (!default_pool[dev->ordinal]) {
        CUmemPoolProps props;
        memset(&props, 0, sizeof props);
        props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
        props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        props.location.id = dev->ordinal;
        default_pool[dev->ordinal] = pool_new(dev, &props, 1);
    }
    return default_pool[dev->ordinal];
}

void *emu_pool_current(emu_device *dev)
{
    pthread_mutex_lock(&pool_lock);
    emu_pool *p = current_pool[dev->ordinal];
    if (!p)
        p = device_default(dev);
    pthread_mutex_unlock(&pool_lock);
    return p;
}

static void pool_maybe_free(emu_pool *p)
{
    if (!p->destroyed || p->reserved || p->nparked)
        return;
    for (emu_pool **pp = &pools; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p->parked);
    free(p);
}

static void note_high(size_t *cur, size_t *high, size_t add)
{
    *cur += add;
    if (*cur > *high)
        *high = *cur;
}

/* ---- blocks in and out of the table ---- */

struct unpark_arg {
    uint64_t addr;
    emu_pool *pool;
    emu_ctx *ctx;
    int done;
};

static int unpark(emu_alloc *a, void *arg)
{
    struct unpark_arg *u = arg;
    if (a->addr == u->addr && a->owner == u->pool && a->parked) {
        a->parked = 0;
        a->ctx = u->ctx;
        a->access_devs = u->pool->access;
        u->done = 1;
    }
    return EMU_MEM_KEEP;
}

CUresult emu_pool_alloc(void *pool, emu_ctx *c, size_t size, uint64_t *addr)
{
    emu_pool *p = pool;
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (int tries = 0; tries < 4; tries++) {
        /* Best fit among parked blocks that are not much larger than the request. */
        pthread_mutex_lock(&pool_lock);
        long best = -1;
        for (size_t i = 0; i < p->nparked; i++) {
            size_t bs = p->parked[i].size;
            if (bs >= size && bs / 2 <= size && (best < 0 || bs < p->parked[best].size))
                best = (long)i;
        }
        parked_block b = {0, 0};
        if (best >= 0) {
            b = p->parked[best];
            p->parked[best] = p->parked[--p->nparked];
            atomic_fetch_sub(&parked_total, 1);
            note_high(&p->used, &p->used_high, b.size);
        }
        pthread_mutex_unlock(&pool_lock);
        if (best < 0)
            break;
        struct unpark_arg u = {b.addr, p, c, 0};
        emu_mem_update(unpark, &u);
        if (u.done) {
            *addr = b.addr;
            return CUDA_SUCCESS;
        }
        /* The block went away meanwhile (its context was destroyed): try again. */
        pthread_mutex_lock(&pool_lock);
        p->used -= b.size;
        pthread_mutex_unlock(&pool_lock);
    }
    pthread_mutex_lock(&pool_lock);
    int over = p->props.maxSize && (p->reserved > p->props.maxSize ||
                                    size > p->props.maxSize - p->reserved);
    unsigned access = p->access;
    pthread_mutex_unlock(&pool_lock);
    if (over)
        return CUDA_ERROR_OUT_OF_MEMORY;
    emu_alloc tmpl = {0};
    tmpl.ctx = c;
    tmpl.owner = p;
    tmpl.access_devs = access;
    CUresult r = emu_mem_alloc_device(p->dev, size, &tmpl, addr);
    if (r)
        return r;
    pthread_mutex_lock(&pool_lock);
    note_high(&p->reserved, &p->reserved_high, size);
    note_high(&p->used, &p->used_high, size);
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

struct park_arg {
    uint64_t addr;
    void *owner;                   /* set by the match */
    size_t size;
    int kind;                      /* 1 parked in a pool, 2 to free */
};

static int park(emu_alloc *a, void *arg)
{
    struct park_arg *pa = arg;
    if (a->addr != pa->addr || a->parked || a->module || a->kind != EMU_ALLOC_DEVICE)
        return EMU_MEM_KEEP;
    pa->owner = a->owner;
    pa->size = a->size;
    if (a->owner && *(const int *)a->owner == EMU_OWNER_POOL) {
        a->parked = 1;
        pa->kind = 1;
        return EMU_MEM_KEEP;
    }
    pa->kind = 2; /* plain or graph memory freed in stream order: it goes */
    return EMU_MEM_REMOVE;
}

static void pool_trim_block(emu_pool *p, uint64_t addr);

CUresult emu_pool_free_now(uint64_t addr)
{
    struct park_arg pa = {addr, NULL, 0, 0};
    emu_mem_update(park, &pa);
    if (pa.kind == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (pa.kind == 1) {
        emu_pool *p = pa.owner;
        pthread_mutex_lock(&pool_lock);
        p->used -= pa.size < p->used ? pa.size : p->used;
        if (p->nparked == p->parkcap) {
            size_t ncap = p->parkcap ? p->parkcap * 2 : 16;
            parked_block *n = realloc(p->parked, ncap * sizeof *n);
            if (n) {
                p->parked = n;
                p->parkcap = ncap;
            }
        }
        if (p->nparked < p->parkcap) {
            p->parked[p->nparked++] = (parked_block){addr, pa.size};
            atomic_fetch_add(&parked_total, 1);
            pthread_mutex_unlock(&pool_lock);
        } else {
            /* No room to remember it: give it back to the device instead. */
            pthread_mutex_unlock(&pool_lock);
            pool_trim_block(p, addr);
        }
    }
    return CUDA_SUCCESS;
}

/* ---- giving memory back ---- */

struct release_arg {
    emu_pool *pool;
    uint64_t *addrs;
    size_t n;
};

static int release_parked(emu_alloc *a, void *arg)
{
    struct release_arg *ra = arg;
    if (a->owner != ra->pool || !a->parked)
        return EMU_MEM_KEEP;
    for (size_t i = 0; i < ra->n; i++)
        if (ra->addrs[i] == a->addr)
            return EMU_MEM_REMOVE;
    return EMU_MEM_KEEP;
}

static void pool_trim_block(emu_pool *p, uint64_t addr)
{
    struct release_arg ra = {p, &addr, 1};
    emu_mem_update(release_parked, &ra);
}

/* Releases parked blocks of p until at most keep bytes stay reserved. */
static void pool_trim(emu_pool *p, size_t keep)
{
    pthread_mutex_lock(&pool_lock);
    if (p->reserved <= keep || !p->nparked) {
        pthread_mutex_unlock(&pool_lock);
        return;
    }
    uint64_t *addrs = malloc(p->nparked * sizeof *addrs);
    size_t n = 0, reserved = p->reserved;
    if (addrs) {
        /* Largest first, so that as little as possible is released. */
        while (reserved > keep && p->nparked) {
            size_t big = 0;
            for (size_t i = 1; i < p->nparked; i++)
                if (p->parked[i].size > p->parked[big].size)
                    big = i;
            addrs[n++] = p->parked[big].addr;
            reserved -= p->parked[big].size < reserved ? p->parked[big].size : reserved;
            p->parked[big] = p->parked[--p->nparked];
            atomic_fetch_sub(&parked_total, 1);
        }
    }
    pthread_mutex_unlock(&pool_lock);
    if (!n) {
        free(addrs);
        return;
    }
    struct release_arg ra = {p, addrs, n};
    emu_mem_update(release_parked, &ra); /* reserved drops in emu_owner_released */
    free(addrs);
}

void emu_pools_sync(emu_device *dev)
{
    if (atomic_load_explicit(&parked_total, memory_order_relaxed) == 0)
        return;
    /* Cheap when nothing is parked: one pass over the (few) pools. */
    emu_pool *todo[64];
    size_t n = 0;
    pthread_mutex_lock(&pool_lock);
    for (emu_pool *p = pools; p && n < 64; p = p->next)
        if (p->dev == dev && p->nparked && p->reserved > p->release_threshold)
            todo[n++] = p;
    pthread_mutex_unlock(&pool_lock);
    for (size_t i = 0; i < n; i++)
        pool_trim(todo[i], (size_t)todo[i]->release_threshold);
}

void emu_owner_released(const emu_alloc *a)
{
    int tag = *(const int *)a->owner;
    if (tag == EMU_OWNER_VMM) {
        emu_vmm_mapping_released(a);
        return;
    }
    if (tag != EMU_OWNER_POOL)
        return; /* graph memory: its node keeps its own books */
    emu_pool *p = a->owner;
    pthread_mutex_lock(&pool_lock);
    p->reserved -= a->size < p->reserved ? a->size : p->reserved;
    if (a->parked) {
        for (size_t i = 0; i < p->nparked; i++) {
            if (p->parked[i].addr == a->addr) {
                p->parked[i] = p->parked[--p->nparked];
                atomic_fetch_sub(&parked_total, 1);
                break;
            }
        }
    } else {
        p->used -= a->size < p->used ? a->size : p->used;
    }
    pool_maybe_free(p);
    pthread_mutex_unlock(&pool_lock);
}

/* ---- stream-ordered allocation API ---- */

CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                         CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    int ok = emu_obj_is(pool, EMU_OBJ_POOL);
    pthread_mutex_unlock(&pool_lock);
    if (!ok)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t a;
    if (atomic_load(&c->capturing)) {
        r = emu_capture_mem_alloc(c, s, bytesize, pool, &a);
        if (r != EMU_NOT_CAPTURED) {
            if (!r)
                *dptr = (CUdeviceptr)a;
            return r;
        }
    }
    r = emu_pool_alloc(pool, c, bytesize, &a);
    if (!r)
        *dptr = (CUdeviceptr)a;
    return r;
}

CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    return cuMemAllocFromPoolAsync(dptr, bytesize, (CUmemoryPool)emu_pool_current(c->dev),
                                   hStream);
}

CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    emu_alloc a;
    if (!dptr || !emu_mem_lookup((uint64_t)dptr, &a) || a.addr != (uint64_t)dptr || a.parked ||
        a.module || a.kind != EMU_ALLOC_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    emu_op *op = calloc(1, sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->kind = EMU_OP_POOL_FREE;
    op->u.pool_free.addr = (uint64_t)dptr;
    return emu_submit(c, s, op);
}

/* ---- pools ---- */

static CUresult pool_resolve(CUmemoryPool h, emu_pool **out)
{
    return emu_obj_resolve(h, EMU_OBJ_POOL, CUDA_ERROR_INVALID_VALUE, (void **)out);
}

static CUresult location_device(const CUmemLocation *loc, emu_device **out)
{
    if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return loc->type == CU_MEM_LOCATION_TYPE_HOST || loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
                       loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT
                   ? EMU_UNSUPPORTED("memory pools in host memory")
                   : CUDA_ERROR_INVALID_VALUE;
    *out = emu_device_at(loc->id);
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    CUmemPoolProps props;
    if (!pool || !poolProps || emu_host_read(&props, poolProps, sizeof props))
        return CUDA_ERROR_INVALID_VALUE;
    if (props.allocType != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    emu_device *dev = NULL;
    if ((r = location_device(&props.location, &dev)))
        return r;
    if (props.handleTypes != CU_MEM_HANDLE_TYPE_NONE)
        return EMU_UNSUPPORTED("memory pools with shareable (IPC) handle types");
    pthread_mutex_lock(&pool_lock);
    emu_pool *p = pool_new(dev, &props, 0);
    pthread_mutex_unlock(&pool_lock);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *pool = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool)
{
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    CUresult r = pool_resolve(pool, &p);
    if (!r && p->is_default)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r) {
        pthread_mutex_unlock(&pool_lock);
        return r;
    }
    emu_obj_del(p);
    p->destroyed = 1;
    if (current_pool[p->dev->ordinal] == p)
        current_pool[p->dev->ordinal] = NULL;
    pthread_mutex_unlock(&pool_lock);
    /* Outstanding allocations keep the pool alive until they are freed, as CUDA documents. */
    pool_trim(p, 0);
    pthread_mutex_lock(&pool_lock);
    pool_maybe_free(p);
    pthread_mutex_unlock(&pool_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    CUresult r = pool_resolve(pool, &p);
    pthread_mutex_unlock(&pool_lock);
    if (r)
        return r;
    pool_trim(p, minBytesToKeep);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    CUresult r = pool_resolve(pool, &p);
    if (r)
        goto out;
    int iv;
    cuuint64_t uv;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        if (emu_host_read(&iv, value, sizeof iv)) {
            r = CUDA_ERROR_INVALID_VALUE;
            break;
        }
        /* Remembered for the getter: with one in-order queue per context every reuse is safe. */
        p->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES] = iv != 0;
        break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        if (emu_host_read(&uv, value, sizeof uv))
            r = CUDA_ERROR_INVALID_VALUE;
        else
            p->release_threshold = uv;
        break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        /* Only a reset (to the current value) is allowed. */
        if (emu_host_read(&uv, value, sizeof uv) || uv != 0) {
            r = CUDA_ERROR_INVALID_VALUE;
            break;
        }
        if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH)
            p->reserved_high = p->reserved;
        else
            p->used_high = p->used;
        break;
    default:
        r = CUDA_ERROR_INVALID_VALUE;
    }
out:
    pthread_mutex_unlock(&pool_lock);
    return r;
}

CUresult CUDAAPI cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    CUresult r = pool_resolve(pool, &p);
    int iv = 0;
    cuuint64_t uv = 0;
    int is_int = 0;
    if (!r) {
        switch (attr) {
        case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
        case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
            iv = p->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES];
            is_int = 1;
            break;
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: uv = p->release_threshold; break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: uv = p->reserved; break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: uv = p->reserved_high; break;
        case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: uv = p->used; break;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH: uv = p->used_high; break;
        default: r = CUDA_ERROR_INVALID_VALUE;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    if (r)
        return r;
    return is_int ? emu_host_write(value, &iv, sizeof iv) : emu_host_write(value, &uv, sizeof uv);
}

static int set_pool_access(emu_alloc *a, void *arg)
{
    emu_pool *p = arg;
    if (a->owner == p)
        a->access_devs = p->access;
    return EMU_MEM_KEEP;
}

CUresult CUDAAPI cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
    if (count && !map)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    CUresult r = pool_resolve(pool, &p);
    unsigned access = p && !r ? p->access : 0;
    for (size_t i = 0; !r && i < count; i++) {
        CUmemAccessDesc d;
        emu_device *dev = NULL;
        if (emu_host_read(&d, &map[i], sizeof d) || (r = location_device(&d.location, &dev)))
            r = r ? r : CUDA_ERROR_INVALID_VALUE;
        else if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            access |= 1u << dev->ordinal;
        else if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_NONE && dev != p->dev)
            access &= ~(1u << dev->ordinal);
        else if (d.flags == CU_MEM_ACCESS_FLAGS_PROT_READ)
            r = EMU_UNSUPPORTED("read-only access to pool memory");
        else
            r = CUDA_ERROR_INVALID_VALUE; /* no access for the pool's own device, or bad flags */
    }
    if (!r)
        p->access = access;
    pthread_mutex_unlock(&pool_lock);
    if (!r)
        emu_mem_update(set_pool_access, p);
    return r;
}

CUresult CUDAAPI cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool,
                                    CUmemLocation *location)
{
    CUmemLocation loc;
    if (!flags || !location || emu_host_read(&loc, location, sizeof loc))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    emu_device *dev = NULL;
    CUresult r = pool_resolve(memPool, &p);
    if (!r)
        r = location_device(&loc, &dev);
    if (!r)
        *flags = (p->access >> dev->ordinal) & 1 ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                                                  : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    pthread_mutex_unlock(&pool_lock);
    return r;
}

CUresult CUDAAPI cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    emu_device *d;
    CUresult r = emu_device_resolve(dev, &d);
    if (r)
        return r;
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p = device_default(d);
    pthread_mutex_unlock(&pool_lock);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *pool_out = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    emu_device *d;
    CUresult r = emu_device_resolve(dev, &d);
    if (r)
        return r;
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    *pool = (CUmemoryPool)emu_pool_current(d);
    return *pool ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult CUDAAPI cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    emu_device *d;
    CUresult r = emu_device_resolve(dev, &d);
    if (r)
        return r;
    pthread_mutex_lock(&pool_lock);
    emu_pool *p;
    r = pool_resolve(pool, &p);
    if (!r && p->dev != d)
        r = CUDA_ERROR_INVALID_DEVICE;
    if (!r)
        current_pool[d->ordinal] = p;
    pthread_mutex_unlock(&pool_lock);
    return r;
}

static CUresult pinned_location(CUmemLocation *location, CUmemAllocationType type, emu_device **dev)
{
    CUmemLocation loc;
    if (!location || emu_host_read(&loc, location, sizeof loc))
        return CUDA_ERROR_INVALID_VALUE;
    if (type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return type == CU_MEM_ALLOCATION_TYPE_MANAGED ? EMU_UNSUPPORTED("managed memory pools")
                                                      : CUDA_ERROR_INVALID_VALUE;
    return location_device(&loc, dev);
}

CUresult CUDAAPI cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location,
                                        CUmemAllocationType type)
{
    emu_device *dev = NULL;
    CUresult r = emu_check_init();
    if (!r)
        r = pinned_location(location, type, &dev);
    return r ? r : cuDeviceGetDefaultMemPool(pool_out, dev->ordinal);
}

CUresult CUDAAPI cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *location,
                                 CUmemAllocationType type)
{
    emu_device *dev = NULL;
    CUresult r = emu_check_init();
    if (!r)
        r = pinned_location(location, type, &dev);
    return r ? r : cuDeviceGetMemPool(pool, dev->ordinal);
}

CUresult CUDAAPI cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type,
                                 CUmemoryPool pool)
{
    emu_device *dev = NULL;
    CUresult r = emu_check_init();
    if (!r)
        r = pinned_location(location, type, &dev);
    return r ? r : cuDeviceSetMemPool(dev->ordinal, pool);
}

/* Sharing pools between processes (IPC) is not emulated. */
CUresult CUDAAPI cuMemPoolExportToShareableHandle(void *handle_out, CUmemoryPool pool,
                                                  CUmemAllocationHandleType handleType,
                                                  unsigned long long flags)
{
    (void)handle_out, (void)pool, (void)handleType, (void)flags;
    return EMU_UNSUPPORTED("cuMemPoolExportToShareableHandle");
}

CUresult CUDAAPI cuMemPoolImportFromShareableHandle(CUmemoryPool *pool_out, void *handle,
                                                    CUmemAllocationHandleType handleType,
                                                    unsigned long long flags)
{
    (void)pool_out, (void)handle, (void)handleType, (void)flags;
    return EMU_UNSUPPORTED("cuMemPoolImportFromShareableHandle");
}

CUresult CUDAAPI cuMemPoolExportPointer(CUmemPoolPtrExportData *shareData_out, CUdeviceptr ptr)
{
    (void)shareData_out, (void)ptr;
    return EMU_UNSUPPORTED("cuMemPoolExportPointer");
}

CUresult CUDAAPI cuMemPoolImportPointer(CUdeviceptr *ptr_out, CUmemoryPool pool,
                                        CUmemPoolPtrExportData *shareData)
{
    (void)ptr_out, (void)pool, (void)shareData;
    return EMU_UNSUPPORTED("cuMemPoolImportPointer");
}
