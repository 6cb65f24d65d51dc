/* emu_mem: device memory, pinned/registered host memory, copies and memsets.
 *
 * Host pointers from callers are never dereferenced directly: copies go through
 * process_vm_readv/writev on our own pid, which report EFAULT for unmapped memory instead of
 * faulting, so a garbage host pointer becomes CUDA_ERROR_INVALID_VALUE. Where those system calls
 * are forbidden (seccomp), we fall back to memcpy after a NULL check. */
#include "emu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

/* The allocation table, sorted by addr; guarded by table_lock (readers: translate). */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static emu_alloc *table;
static size_t table_len, table_cap;
static uint64_t next_addr[EMU_MAX_DEVICES]; /* bump pointer per device */
static unsigned long long next_buffer_id = 1;
/* Bumped (under the write lock) whenever a translation may have become wrong: an allocation
 * removed, an access right taken away. Per-thread caches compare it before trusting an entry. */
static _Atomic uint64_t table_gen = 1;

#define ALLOC_ALIGN 512
#define ALLOC_GUARD 4096 /* unmapped gap between allocations, so small overruns never alias */

static size_t round_alloc(size_t size)
{
    return (size + ALLOC_ALIGN - 1) & ~(size_t)(ALLOC_ALIGN - 1);
}

/* Index of the allocation containing addr, or -1. Caller holds table_lock. */
static long table_find(uint64_t addr)
{
    size_t lo = 0, hi = table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const emu_alloc *a = &table[lo - 1];
    if (addr - a->addr < a->size)
        return (long)(lo - 1);
    return -1;
}

/* Inserts a (caller holds the write lock); 0 or -1 when out of memory or overlapping. */
static int table_insert(const emu_alloc *a)
{
    if (a->size == 0 || a->addr + a->size < a->addr)
        return -1;
    if (table_len == table_cap) {
        size_t ncap = table_cap ? table_cap * 2 : 64;
        emu_alloc *n = realloc(table, ncap * sizeof *n);
        if (!n)
            return -1;
        table = n;
        table_cap = ncap;
    }
    size_t lo = 0, hi = table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table[mid].addr < a->addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    if ((i < table_len && table[i].addr < a->addr + a->size) ||
        (i > 0 && table[i - 1].addr + table[i - 1].size > a->addr))
        return -1;
    memmove(&table[i + 1], &table[i], (table_len - i) * sizeof *table);
    table[i] = *a;
    table[i].buffer_id = next_buffer_id++;
    table_len++;
    return 0;
}

static void table_remove_at(size_t i)
{
    memmove(&table[i], &table[i + 1], (table_len - i - 1) * sizeof *table);
    table_len--;
    atomic_fetch_add(&table_gen, 1);
}

void emu_mem_invalidate(void)
{
    pthread_rwlock_wrlock(&table_lock);
    atomic_fetch_add(&table_gen, 1);
    pthread_rwlock_unlock(&table_lock);
}

static int peer_enabled(const emu_ctx *c, const emu_ctx *owner)
{
    for (int i = 0; i < EMU_MAX_PEERS; i++)
        if (atomic_load_explicit(&((emu_ctx *)c)->peer_ids[i], memory_order_relaxed) == owner->id)
            return 1;
    return 0;
}

/* Whether an access from ctx c (NULL: the process, for unified-addressing copies) may touch a. */
static int reachable(const emu_alloc *a, const emu_ctx *c)
{
    if (a->parked)
        return 0;
    if (!c)
        return a->ctx != NULL || a->access_devs != 0;
    if (a->ctx == c || ((a->access_devs >> c->dev->ordinal) & 1))
        return 1;
    return a->ctx && a->kind == EMU_ALLOC_DEVICE && peer_enabled(c, a->ctx);
}

/* Per-thread cache of whole allocations recently resolved, per context: kernels alternate between
 * a few buffers, and a hit then costs one atomic load and no lock. */
#define XLATE_WAYS 4
struct xlate_entry {
    const emu_ctx *ctx;
    uint64_t gen, lo, size;
    char *host;
};
static __thread struct xlate_entry xlate_cache[XLATE_WAYS];
static __thread unsigned xlate_next;

void *emu_mem_translate(const emu_ctx *c, uint64_t addr, size_t len)
{
    uint64_t gen = atomic_load_explicit(&table_gen, memory_order_acquire);
    for (int i = 0; i < XLATE_WAYS; i++) {
        const struct xlate_entry *e = &xlate_cache[i];
        if (e->gen == gen && e->ctx == c && addr - e->lo < e->size && len <= e->size - (addr - e->lo))
            return e->host + (addr - e->lo);
    }
    void *p = NULL;
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find(addr);
    if (i >= 0) {
        const emu_alloc *a = &table[i];
        uint64_t off = addr - a->addr;
        if (len <= a->size - off && reachable(a, c)) {
            p = (char *)a->host + off;
            struct xlate_entry *e = &xlate_cache[xlate_next++ % XLATE_WAYS];
            *e = (struct xlate_entry){c, gen, a->addr, a->size, a->host};
        } else if (a->kind == EMU_ALLOC_VMM && reachable(a, c)) {
            /* Virtual memory mappings side by side are one range for the device, and their host
             * shadows are side by side too (emu_vmm.c): continue into the next ones. */
            size_t have = a->size - off;
            for (size_t j = (size_t)i + 1; j < table_len && have < len; j++) {
                const emu_alloc *b = &table[j], *prev = &table[j - 1];
                if (b->kind != EMU_ALLOC_VMM || b->addr != prev->addr + prev->size ||
                    (char *)b->host != (char *)prev->host + prev->size || !reachable(b, c))
                    break;
                have += b->size;
            }
            if (have >= len)
                p = (char *)a->host + off;
        }
    }
    pthread_rwlock_unlock(&table_lock);
    return p;
}

void *emu_ptx_translate(void *ctx, uint64_t addr, size_t len)
{
    return emu_mem_translate(ctx, addr, len);
}

int emu_mem_is_device(const emu_ctx *c, uint64_t addr)
{
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find(addr);
    int r = i >= 0 && (table[i].kind == EMU_ALLOC_DEVICE || table[i].kind == EMU_ALLOC_MANAGED ||
                       table[i].kind == EMU_ALLOC_VMM) &&
            reachable(&table[i], c);
    pthread_rwlock_unlock(&table_lock);
    return r;
}

int emu_mem_lookup(uint64_t addr, emu_alloc *out)
{
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find(addr);
    if (i >= 0 && out)
        *out = table[i];
    pthread_rwlock_unlock(&table_lock);
    return i >= 0;
}

/* Lowest address in [base, limit) with room for `need` bytes between live allocations, or 0.
 * Caller holds the write lock. Used once the bump pointer has reached the end of the device's
 * span, so that a long-running server that allocates and frees keeps working. */
static uint64_t find_gap(uint64_t base, uint64_t limit, size_t need)
{
    uint64_t at = base;
    for (size_t i = 0; i < table_len; i++) {
        const emu_alloc *a = &table[i];
        if (a->addr < base || a->addr >= limit)
            continue;
        if (a->addr >= at && a->addr - at >= need)
            return at;
        uint64_t end = a->addr + round_alloc(a->size) + ALLOC_GUARD;
        if (end > at)
            at = end;
    }
    return limit - at >= need ? at : 0;
}

/* Device memory starts zeroed, which makes tests deterministic. Large blocks are mapped
 * directly: they cost nothing until touched, go back to the system at free, and stay out of the
 * malloc heap (and of a sanitizer's allocator, which would poison gigabytes of shadow). */
#define EMU_MAP_THRESHOLD ((size_t)1 << 20)

void *emu_backing_alloc(size_t rounded)
{
    if (rounded < EMU_MAP_THRESHOLD)
        return calloc(1, rounded);
    void *p = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void emu_backing_free(void *p, size_t rounded)
{
    if (!p)
        return;
    if (rounded < EMU_MAP_THRESHOLD)
        free(p);
    else
        munmap(p, rounded);
}

CUresult emu_mem_alloc_device(emu_device *d, size_t size, const emu_alloc *tmpl, uint64_t *addr)
{
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (size > d->total_mem)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t rounded = round_alloc(size);
    CUresult r = emu_capacity_reserve(d->physical, rounded);
    if (r)
        return r;

    void *host = emu_backing_alloc(rounded);
    if (!host) {
        emu_capacity_release(d->physical, rounded);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_rwlock_wrlock(&table_lock);
    uint64_t base = EMU_DEVICE_BASE + (uint64_t)d->ordinal * EMU_DEVICE_SPAN;
    if (next_addr[d->ordinal] == 0)
        next_addr[d->ordinal] = base;
    uint64_t a = next_addr[d->ordinal];
    uint64_t limit = base + EMU_DEVICE_SPAN;
    int bumped = 1;
    if (rounded + ALLOC_GUARD > limit - a) {
        /* The span is used up once; from then on freed ranges are reused, lowest first. */
        a = find_gap(base, limit, rounded + ALLOC_GUARD);
        bumped = 0;
        if (!a) {
            pthread_rwlock_unlock(&table_lock);
            goto fail;
        }
    }
    emu_alloc rec = *tmpl;
    rec.addr = a;
    rec.size = size;
    rec.host = host;
    rec.kind = EMU_ALLOC_DEVICE;
    rec.parked = 0;
    rec.charged = rounded;
    rec.charge_dev = d->physical;
    rec.ordinal = d->ordinal;
    if (table_insert(&rec) != 0) {
        pthread_rwlock_unlock(&table_lock);
        goto fail;
    }
    if (bumped)
        next_addr[d->ordinal] = a + rounded + ALLOC_GUARD;
    pthread_rwlock_unlock(&table_lock);
    *addr = a;
    return CUDA_SUCCESS;
fail:
    emu_backing_free(host, rounded);
    emu_capacity_release(d->physical, rounded);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult emu_mem_alloc(emu_ctx *ctx, size_t size, int module, uint64_t *addr)
{
    emu_alloc tmpl = {0};
    tmpl.ctx = ctx;
    tmpl.module = module;
    return emu_mem_alloc_device(ctx->dev, size, &tmpl, addr);
}

CUresult emu_mem_insert(const emu_alloc *rec)
{
    pthread_rwlock_wrlock(&table_lock);
    int rc = table_insert(rec);
    pthread_rwlock_unlock(&table_lock);
    return rc == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* Gives back what an allocation holds: its capacity charge and its backing store (host memory the
 * caller registered and VMM mappings, whose physical memory the handle owns, have none). */
static void release(emu_alloc *a)
{
    if (a->owner)
        emu_owner_released(a);
    if (a->kind == EMU_ALLOC_MANAGED)
        emu_managed_released(a);
    if (a->charged)
        emu_capacity_release(a->charge_dev, a->charged);
    switch (a->kind) {
    case EMU_ALLOC_DEVICE:
    case EMU_ALLOC_MANAGED:
        emu_backing_free(a->host, round_alloc(a->size));
        break;
    case EMU_ALLOC_HOST:
        free(a->host);
        break;
    default:
        break;
    }
}

void emu_mem_update(int (*fn)(emu_alloc *a, void *arg), void *arg)
{
    emu_alloc *doomed = NULL;
    size_t ndoomed = 0, cap = 0, keep = 0;
    pthread_rwlock_wrlock(&table_lock);
    for (size_t i = 0; i < table_len; i++) {
        if (fn(&table[i], arg) != EMU_MEM_REMOVE) {
            table[keep++] = table[i];
            continue;
        }
        if (ndoomed == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            emu_alloc *n = realloc(doomed, ncap * sizeof *n);
            if (!n) {
                /* No memory to defer it: release it here (release takes no table_lock). */
                release(&table[i]);
                continue;
            }
            doomed = n;
            cap = ncap;
        }
        doomed[ndoomed++] = table[i];
    }
    table_len = keep;
    atomic_fetch_add(&table_gen, 1);
    pthread_rwlock_unlock(&table_lock);
    for (size_t i = 0; i < ndoomed; i++)
        release(&doomed[i]);
    free(doomed);
}

/* Removes the allocation that starts exactly at addr, is of one of the kinds in mask and is (or,
 * with module 0, is not) a module's variable. */
static CUresult remove_exact(uint64_t addr, unsigned kind_mask, int module)
{
    pthread_rwlock_wrlock(&table_lock);
    long i = table_find(addr);
    if (i < 0 || table[i].addr != addr || !(kind_mask & (1u << table[i].kind)) ||
        table[i].module != module || table[i].parked) {
        pthread_rwlock_unlock(&table_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    emu_alloc a = table[i];
    table_remove_at((size_t)i);
    pthread_rwlock_unlock(&table_lock);
    release(&a);
    return CUDA_SUCCESS;
}

CUresult emu_mem_free_addr(uint64_t addr, int module)
{
    return remove_exact(addr, 1u << EMU_ALLOC_DEVICE, module);
}

static int owned_by_ctx(emu_alloc *a, void *ctx)
{
    return a->ctx == ctx ? EMU_MEM_REMOVE : EMU_MEM_KEEP;
}

void emu_mem_free_ctx(emu_ctx *ctx)
{
    emu_mem_update(owned_by_ctx, ctx);
}

/* ---- untrusted host memory ---- */

static _Atomic int vm_unavailable; /* process_vm_* refused (seccomp): plain memcpy instead */

static CUresult host_copy(void *local, void *remote, size_t n, int to_remote)
{
    if (n == 0)
        return CUDA_SUCCESS;
    if (!remote)
        return CUDA_ERROR_INVALID_VALUE;
    if (!atomic_load(&vm_unavailable)) {
        size_t done = 0;
        while (done < n) {
            size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
            struct iovec l = {(char *)local + done, chunk};
            struct iovec r = {(char *)remote + done, chunk};
            ssize_t got = to_remote ? process_vm_writev(getpid(), &l, 1, &r, 1, 0)
                                    : process_vm_readv(getpid(), &l, 1, &r, 1, 0);
            if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
                atomic_store(&vm_unavailable, 1);
                vg_warn("process_vm_readv unavailable (%s): host pointers are not checked",
                        strerror(errno));
                goto plain;
            }
            if (got <= 0)
                return CUDA_ERROR_INVALID_VALUE;
            done += (size_t)got;
        }
        return CUDA_SUCCESS;
    }
plain:
    if (to_remote)
        memcpy(remote, local, n);
    else
        memcpy(local, remote, n);
    return CUDA_SUCCESS;
}

CUresult emu_host_read(void *dst, const void *host_src, size_t n)
{
    return host_copy(dst, (void *)host_src, n, 0);
}

CUresult emu_host_write(void *host_dst, const void *src, size_t n)
{
    return host_copy((void *)src, host_dst, n, 1);
}

CUresult emu_host_readv(const struct emu_iov *iov, size_t n)
{
    struct iovec local[64], remote[64];
    for (size_t i = 0; i < n; i++)
        if (iov[i].len && !iov[i].remote)
            return CUDA_ERROR_INVALID_VALUE;
    if (atomic_load(&vm_unavailable)) {
        for (size_t i = 0; i < n; i++)
            memcpy(iov[i].local, iov[i].remote, iov[i].len);
        return CUDA_SUCCESS;
    }
    /* Batches of 64 keep the iovec arrays on the stack; kernels rarely have more parameters. */
    for (size_t at = 0; at < n;) {
        size_t cnt = 0, want = 0;
        for (; at < n && cnt < 64; at++) {
            if (!iov[at].len)
                continue;
            local[cnt] = (struct iovec){iov[at].local, iov[at].len};
            remote[cnt] = (struct iovec){(void *)iov[at].remote, iov[at].len};
            want += iov[at].len;
            cnt++;
        }
        if (!cnt)
            break;
        ssize_t got = process_vm_readv(getpid(), local, cnt, remote, cnt, 0);
        if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
            /* Let the single-range path record the refusal, then copy what is left plainly. */
            for (size_t i = 0; i < cnt; i++)
                if (host_copy(local[i].iov_base, remote[i].iov_base, local[i].iov_len, 0))
                    return CUDA_ERROR_INVALID_VALUE;
            continue;
        }
        if (got < 0 || (size_t)got != want)
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* Checks that [p, p+n) is readable (and writable when write) before an async copy is queued,
 * touching one byte per page. Writability is tested by writing back the byte just read, which is
 * harmless because the range belongs to the pending copy. */
static CUresult host_probe(const void *p, size_t n, int write)
{
    if (n == 0)
        return CUDA_SUCCESS;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if ((uintptr_t)p + n < (uintptr_t)p)
        return CUDA_ERROR_INVALID_VALUE;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p, end = start + n - 1;
    for (uintptr_t a = start;; a = (a | (uintptr_t)(page - 1)) + 1) {
        if (a > end)
            a = end;
        unsigned char b;
        CUresult r = emu_host_read(&b, (const void *)a, 1);
        if (r == CUDA_SUCCESS && write)
            r = emu_host_write((void *)a, &b, 1);
        if (r)
            return r;
        if (a == end)
            break;
    }
    return CUDA_SUCCESS;
}

CUresult emu_host_probe(const void *p, size_t n, int write)
{
    return host_probe(p, n, write);
}

static int alloc_snapshot(uint64_t ptr, emu_alloc *out);

/* ---- allocation API ---- */

CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytesize)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = emu_capture_unsafe_call()))
        return r;
    uint64_t a;
    r = emu_mem_alloc(c, bytesize, 0, &a);
    if (r)
        return r;
    *dptr = (CUdeviceptr)a;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocPitch(CUdeviceptr *dptr, size_t *pPitch, size_t width, size_t height,
                                 unsigned int elementSizeBytes)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!dptr || !pPitch || width == 0 || height == 0 ||
        (elementSizeBytes != 4 && elementSizeBytes != 8 && elementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (width + ALLOC_ALIGN - 1) & ~(size_t)(ALLOC_ALIGN - 1);
    if (pitch < width || height > SIZE_MAX / pitch)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t a;
    r = emu_mem_alloc(c, pitch * height, 0, &a);
    if (r)
        return r;
    *dptr = (CUdeviceptr)a;
    *pPitch = pitch;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (dptr == 0)
        return CUDA_SUCCESS;
    if ((r = emu_capture_unsafe_call()))
        return r;
    /* cuMemFree synchronizes: nothing queued may still use the memory, in this context or in the
     * one that owns it (unified addressing lets a program free another context's memory). */
    r = emu_ctx_drain(c);
    if (r)
        return r;
    emu_alloc a;
    if (!alloc_snapshot((uint64_t)dptr, &a) || a.addr != (uint64_t)dptr || a.parked)
        return CUDA_ERROR_INVALID_VALUE;
    if (a.ctx && a.ctx != c) {
        emu_ctx *owner;
        if (emu_ctx_resolve((CUcontext)a.ctx, &owner) != CUDA_ERROR_INVALID_CONTEXT)
            emu_ctx_drain(owner); /* a poisoned owner is drained too: its queue still runs */
    }
    if (a.owner && *(const int *)a.owner == EMU_OWNER_POOL)
        return emu_pool_free_now((uint64_t)dptr); /* stream-ordered memory freed synchronously */
    return remove_exact((uint64_t)dptr, (1u << EMU_ALLOC_DEVICE) | (1u << EMU_ALLOC_MANAGED), 0);
}

CUresult CUDAAPI cuMemGetInfo(size_t *free_bytes, size_t *total)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!free_bytes || !total)
        return CUDA_ERROR_INVALID_VALUE;
    size_t used = emu_capacity_used(c->dev->physical);
    *total = c->dev->total_mem;
    *free_bytes = used < *total ? *total - used : 0;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetAddressRange(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find((uint64_t)dptr);
    if (i < 0 || table[i].kind != EMU_ALLOC_DEVICE) {
        pthread_rwlock_unlock(&table_lock);
        return CUDA_ERROR_NOT_FOUND;
    }
    if (pbase)
        *pbase = (CUdeviceptr)table[i].addr;
    if (psize)
        *psize = table[i].size;
    pthread_rwlock_unlock(&table_lock);
    return CUDA_SUCCESS;
}

static CUresult host_alloc(emu_ctx *c, void **pp, size_t size, int kind, void *existing)
{
    void *p = existing ? existing : calloc(1, size);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_rwlock_wrlock(&table_lock);
    emu_alloc rec = {0};
    rec.addr = (uint64_t)(uintptr_t)p;
    rec.size = size;
    rec.host = p;
    rec.ctx = c;
    rec.kind = kind;
    rec.access_devs = EMU_ALL_DEVICES;
    int rc = table_insert(&rec);
    pthread_rwlock_unlock(&table_lock);
    if (rc != 0) {
        if (!existing)
            free(p);
        return existing ? CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED : CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (pp)
        *pp = p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!pp || bytesize == 0 ||
        (flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                             CU_MEMHOSTALLOC_WRITECOMBINED)))
        return CUDA_ERROR_INVALID_VALUE;
    return host_alloc(c, pp, bytesize, EMU_ALLOC_HOST, NULL);
}

CUresult CUDAAPI cuMemAllocHost(void **pp, size_t bytesize)
{
    return cuMemHostAlloc(pp, bytesize, 0);
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    r = emu_ctx_drain(c);
    if (r)
        return r;
    return remove_exact((uint64_t)(uintptr_t)p, 1u << EMU_ALLOC_HOST, 0);
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytesize, unsigned int flags)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!p || bytesize == 0 ||
        (flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                             CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY)))
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_MEMHOSTREGISTER_IOMEMORY)
        return CUDA_ERROR_NOT_SUPPORTED;
    /* Registration pins nothing here (copies read host memory directly); it records the range
     * so that kernels and pointer queries see it, after checking that it is really mapped. */
    r = host_probe(p, bytesize, !(flags & CU_MEMHOSTREGISTER_READ_ONLY));
    if (r)
        return r;
    return host_alloc(c, NULL, bytesize, EMU_ALLOC_REGISTERED, p);
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    r = emu_ctx_drain(c);
    if (r)
        return r;
    r = remove_exact((uint64_t)(uintptr_t)p, 1u << EMU_ALLOC_REGISTERED, 0);
    return r == CUDA_ERROR_INVALID_VALUE ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : r;
}

CUresult CUDAAPI cuMemHostGetDevicePointer(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!pdptr || !p || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find((uint64_t)(uintptr_t)p);
    int ok = i >= 0 && table[i].kind != EMU_ALLOC_DEVICE;
    pthread_rwlock_unlock(&table_lock);
    if (!ok)
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)(uintptr_t)p; /* unified addressing: the same address on both sides */
    return CUDA_SUCCESS;
}

/* ---- copies ---- */

/* Resolves a device-side range, as every copy must lie within one allocation. Copies see the
 * process's whole unified address space, as CUDA's do: with unified addressing cuMemcpy (and the
 * typed copies, which infer the owner from the pointer) may copy between any two contexts of the
 * process, and the CUDA programming guide uses exactly that for copies between devices. Only
 * kernels and memsets (which run on the calling context's device) are confined to the context's
 * own address space. */
static CUresult device_range(uint64_t addr, size_t n, void **host)
{
    if (n == 0) {
        *host = NULL;
        return CUDA_SUCCESS;
    }
    void *p = emu_mem_translate(NULL, addr, n);
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    *host = p;
    return CUDA_SUCCESS;
}

/* Performs a copy where each side is a device/registered address or a raw host pointer.
 * Registered host memory resolves through the table and is then trusted. */
static CUresult do_copy(uint64_t dst, int dst_host, uint64_t src, int src_host, size_t n)
{
    if (n == 0)
        return CUDA_SUCCESS;
    void *d = NULL, *s = NULL;
    if (!dst_host && device_range(dst, n, &d))
        return CUDA_ERROR_INVALID_VALUE;
    if (!src_host && device_range(src, n, &s))
        return CUDA_ERROR_INVALID_VALUE;
    if (dst_host && src_host)
        return emu_host_write((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n) ==
                       CUDA_SUCCESS
                   ? CUDA_SUCCESS
                   : CUDA_ERROR_INVALID_VALUE;
    if (dst_host)
        return emu_host_write((void *)(uintptr_t)dst, s, n);
    if (src_host)
        return emu_host_read(d, (const void *)(uintptr_t)src, n);
    memmove(d, s, n);
    return CUDA_SUCCESS;
}

CUresult emu_mem_run_copy(const emu_op *op)
{
    CUresult r = do_copy(op->u.copy.dst, op->u.copy.dst_host, op->u.copy.src,
                         op->u.copy.src_host, op->u.copy.size);
    /* Validated when queued; failing now means the caller freed memory under a pending copy. */
    return r == CUDA_SUCCESS ? r : CUDA_ERROR_ILLEGAL_ADDRESS;
}

/* Synchronous copies follow the legacy stream: they wait for all queued work, then copy on the
 * caller's thread. */
static CUresult copy_sync(uint64_t dst, int dst_host, uint64_t src, int src_host, size_t n)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if ((r = emu_capture_unsafe_call()))
        return r;
    r = emu_ctx_drain(c);
    emu_printf_flush(c); /* a blocking copy is a synchronizing point for device printf */
    if (r)
        return r;
    return do_copy(dst, dst_host, src, src_host, n);
}

static CUresult copy_async(uint64_t dst, int dst_host, uint64_t src, int src_host, size_t n,
                           CUstream hStream)
{
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    if (n == 0)
        return CUDA_SUCCESS;
    void *unused;
    if (!dst_host && device_range(dst, n, &unused))
        return CUDA_ERROR_INVALID_VALUE;
    if (!src_host && device_range(src, n, &unused))
        return CUDA_ERROR_INVALID_VALUE;
    if (dst_host && (r = host_probe((void *)(uintptr_t)dst, n, 1)))
        return r;
    if (src_host && (r = host_probe((const void *)(uintptr_t)src, n, 0)))
        return r;
    emu_op *op = calloc(1, sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    op->kind = EMU_OP_COPY;
    op->u.copy.dst = dst;
    op->u.copy.dst_host = dst_host;
    op->u.copy.src = src;
    op->u.copy.src_host = src_host;
    op->u.copy.size = n;
    return emu_submit(c, s, op);
}

CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n)
{
    return copy_sync(dst, 0, (uint64_t)(uintptr_t)src, 1, n);
}

CUresult CUDAAPI cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n)
{
    return copy_sync((uint64_t)(uintptr_t)dst, 1, src, 0, n);
}

CUresult CUDAAPI cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy_sync(dst, 0, src, 0, n);
}

CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    return copy_async(dst, 0, (uint64_t)(uintptr_t)src, 1, n, s);
}

CUresult CUDAAPI cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_async((uint64_t)(uintptr_t)dst, 1, src, 0, n, s);
}

CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_async(dst, 0, src, 0, n, s);
}

/* Unified addressing: anything in the table (device, pinned, registered) resolves through it;
 * any other address is a plain host pointer. */
static int is_host_address(uint64_t a)
{
    return emu_mem_translate(NULL, a, 1) == NULL;
}

CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy_sync(dst, is_host_address(dst), src, is_host_address(src), n);
}

CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    return copy_async(dst, is_host_address(dst), src, is_host_address(src), n, s);
}

/* ---- memsets ---- */

CUresult emu_mem_run_memset(emu_ctx *c, const emu_op *op)
{
    size_t es = (size_t)op->u.memset.elem_size;
    size_t row = op->u.memset.width * es;
    for (size_t y = 0; y < op->u.memset.height; y++) {
        unsigned char *p = emu_mem_translate(c, op->u.memset.dst + y * op->u.memset.pitch, row);
        if (!p)
            return CUDA_ERROR_ILLEGAL_ADDRESS;
        if (es == 1) {
            memset(p, (int)(op->u.memset.value & 0xff), row);
        } else if (es == 2) {
            uint16_t v = (uint16_t)op->u.memset.value;
            for (size_t i = 0; i < op->u.memset.width; i++)
                memcpy(p + i * 2, &v, 2);
        } else {
            uint32_t v = op->u.memset.value;
            for (size_t i = 0; i < op->u.memset.width; i++)
                memcpy(p + i * 4, &v, 4);
        }
    }
    return CUDA_SUCCESS;
}

static CUresult memset_submit(CUdeviceptr dst, size_t pitch, unsigned value, int es, size_t width,
                              size_t height, CUstream hStream, int async)
{
    emu_ctx *c;
    emu_stream *s = NULL;
    CUresult r = async ? emu_stream_resolve(hStream, &c, &s) : emu_ctx_current(&c);
    if (r)
        return r;
    if (width == 0 || height == 0)
        return CUDA_SUCCESS;
    if (dst % (uint64_t)es != 0 || (height > 1 && pitch < width * (size_t)es))
        return CUDA_ERROR_INVALID_VALUE;
    if (width > SIZE_MAX / (size_t)es || (height > 1 && (height - 1) > (SIZE_MAX - width * es) / pitch))
        return CUDA_ERROR_INVALID_VALUE;
    /* The whole pitched region must lie inside one allocation. */
    size_t span = (height - 1) * pitch + width * (size_t)es;
    if (!emu_mem_translate(c, dst, span) || !emu_mem_is_device(c, dst))
        return CUDA_ERROR_INVALID_VALUE;
    emu_op op_local = {0};
    op_local.kind = EMU_OP_MEMSET;
    op_local.u.memset.dst = dst;
    op_local.u.memset.pitch = pitch;
    op_local.u.memset.width = width;
    op_local.u.memset.height = height;
    op_local.u.memset.value = value;
    op_local.u.memset.elem_size = es;
    if (!async) {
        if ((r = emu_capture_unsafe_call()))
            return r;
        r = emu_ctx_drain(c);
        return r ? r : emu_mem_run_memset(c, &op_local);
    }
    emu_op *op = malloc(sizeof *op);
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *op = op_local;
    return emu_submit(c, s, op);
}

CUresult CUDAAPI cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n)
{
    return memset_submit(d, 0, v, 1, n, 1, NULL, 0);
}

CUresult CUDAAPI cuMemsetD16(CUdeviceptr d, unsigned short v, size_t n)
{
    return memset_submit(d, 0, v, 2, n, 1, NULL, 0);
}

CUresult CUDAAPI cuMemsetD32(CUdeviceptr d, unsigned int v, size_t n)
{
    return memset_submit(d, 0, v, 4, n, 1, NULL, 0);
}

CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s)
{
    return memset_submit(d, 0, v, 1, n, 1, s, 1);
}

CUresult CUDAAPI cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s)
{
    return memset_submit(d, 0, v, 2, n, 1, s, 1);
}

CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s)
{
    return memset_submit(d, 0, v, 4, n, 1, s, 1);
}

CUresult CUDAAPI cuMemsetD2D8(CUdeviceptr d, size_t pitch, unsigned char v, size_t w, size_t h)
{
    return memset_submit(d, pitch, v, 1, w, h, NULL, 0);
}

CUresult CUDAAPI cuMemsetD2D16(CUdeviceptr d, size_t pitch, unsigned short v, size_t w, size_t h)
{
    return memset_submit(d, pitch, v, 2, w, h, NULL, 0);
}

CUresult CUDAAPI cuMemsetD2D32(CUdeviceptr d, size_t pitch, unsigned int v, size_t w, size_t h)
{
    return memset_submit(d, pitch, v, 4, w, h, NULL, 0);
}

CUresult CUDAAPI cuMemsetD2D8Async(CUdeviceptr d, size_t pitch, unsigned char v, size_t w,
                                   size_t h, CUstream s)
{
    return memset_submit(d, pitch, v, 1, w, h, s, 1);
}

CUresult CUDAAPI cuMemsetD2D16Async(CUdeviceptr d, size_t pitch, unsigned short v, size_t w,
                                    size_t h, CUstream s)
{
    return memset_submit(d, pitch, v, 2, w, h, s, 1);
}

CUresult CUDAAPI cuMemsetD2D32Async(CUdeviceptr d, size_t pitch, unsigned int v, size_t w,
                                    size_t h, CUstream s)
{
    return memset_submit(d, pitch, v, 4, w, h, s, 1);
}

/* ---- pointer attributes ---- */

/* Computes one attribute into out (8 bytes, aligned) and its size into *len; the caller copies it
 * out with emu_host_write, so a garbage destination is an error, not a crash. */
#define PUT(type, value)                                                                         \
    do {                                                                                         \
        type put_value_ = (value);                                                               \
        memcpy(out, &put_value_, sizeof put_value_);                                             \
        *len = sizeof put_value_;                                                                \
    } while (0)

static CUresult pointer_attribute(uint64_t *out, size_t *len, CUpointer_attribute attr,
                                  const emu_alloc *a, uint64_t ptr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        PUT(CUcontext, (CUcontext)a->ctx); /* NULL for virtual memory mappings, as CUDA says */
        break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        /* Managed memory reports as device memory, as CUDA's driver does (the runtime tells
         * managed memory by CU_POINTER_ATTRIBUTE_IS_MANAGED). */
        PUT(unsigned, a->kind == EMU_ALLOC_HOST || a->kind == EMU_ALLOC_REGISTERED
                          ? CU_MEMORYTYPE_HOST
                          : CU_MEMORYTYPE_DEVICE);
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        PUT(CUdeviceptr, (CUdeviceptr)ptr);
        break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (a->kind == EMU_ALLOC_DEVICE || a->kind == EMU_ALLOC_VMM)
            return CUDA_ERROR_INVALID_VALUE; /* device memory has no host mapping */
        PUT(void *, (void *)(uintptr_t)ptr);
        break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
        PUT(int, 1);
        break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
        PUT(unsigned long long, a->buffer_id);
        break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        PUT(int, a->kind == EMU_ALLOC_MANAGED);
        break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
        PUT(int, 0);
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        PUT(int, a->ctx ? a->ctx->dev->ordinal : a->ordinal);
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
        PUT(CUdeviceptr, (CUdeviceptr)a->addr);
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
        PUT(size_t, a->size);
        break;
    case CU_POINTER_ATTRIBUTE_MAPPED:
        PUT(int, 1);
        break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        PUT(unsigned long long, 0);
        break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        PUT(unsigned, CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE);
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        PUT(CUmemoryPool, a->owner && *(const int *)a->owner == EMU_OWNER_POOL
                              ? (CUmemoryPool)a->owner
                              : NULL);
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* What CUDA reports for memory it does not know: an unregistered host pointer. */
static void unknown_pointer_attribute(uint64_t *out, size_t *len, CUpointer_attribute attr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: PUT(unsigned, 0); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: PUT(int, -2); break;
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: PUT(void *, NULL); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: PUT(size_t, 0); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: PUT(unsigned long long, 0); break;
    default: PUT(int, 0); break;
    }
}

/* A snapshot of the allocation holding ptr; 0 when there is none. */
static int alloc_snapshot(uint64_t ptr, emu_alloc *out)
{
    pthread_rwlock_rdlock(&table_lock);
    long i = table_find(ptr);
    if (i >= 0)
        *out = table[i];
    pthread_rwlock_unlock(&table_lock);
    return i >= 0;
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    emu_alloc a;
    if (!alloc_snapshot((uint64_t)ptr, &a))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t out;
    size_t len;
    r = pointer_attribute(&out, &len, attribute, &a, (uint64_t)ptr);
    return r ? r : emu_host_write(data, &out, len);
}

CUresult CUDAAPI cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data,
                                        CUdeviceptr ptr)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (n == 0 || !attrs || !data)
        return CUDA_ERROR_INVALID_VALUE;
    emu_alloc a;
    int known = alloc_snapshot((uint64_t)ptr, &a);
    for (unsigned k = 0; k < n; k++) {
        CUpointer_attribute attr;
        void *dst;
        if (emu_host_read(&attr, &attrs[k], sizeof attr) || emu_host_read(&dst, &data[k], sizeof dst) ||
            !dst)
            return CUDA_ERROR_INVALID_VALUE;
        uint64_t out;
        size_t len;
        if (!known)
            unknown_pointer_attribute(&out, &len, attr);
        else if (attr == CU_POINTER_ATTRIBUTE_HOST_POINTER &&
                 (a.kind == EMU_ALLOC_DEVICE || a.kind == EMU_ALLOC_VMM))
            unknown_pointer_attribute(&out, &len, attr); /* NULL here, not an error */
        else if ((r = pointer_attribute(&out, &len, attr, &a, (uint64_t)ptr)))
            return r;
        if (emu_host_write(dst, &out, len))
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}
