/* emu_heap: the device heap behind malloc and free in kernels (C++ new and delete).
 *
 * As on a GPU, each context has one heap of CU_LIMIT_MALLOC_HEAP_SIZE bytes (8 MiB unless set
 * before), made when the context first launches a kernel that can call malloc or free and kept
 * until the context goes; what kernels allocate lives until they free it or the context ends.
 * The heap is one allocation of the context's device memory (counted against the device, not
 * reachable by cuMemFree), so kernels reach its bytes as any other memory and every access is
 * checked against it. Blocks are 16-byte aligned. The books live in host memory, out of the
 * kernels' reach: a sorted array of the blocks in use, searched for the first gap that fits from
 * where the last allocation ended (next fit), so a kernel that allocates in every thread costs
 * an append per malloc. Workers of a launch call in concurrently; heap_lock serializes them. */
#include "emu.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define HEAP_ALIGN 16

typedef struct heap_block {
    uint64_t off;
    uint64_t size;
} heap_block;

struct emu_heap {
    uint64_t base;       /* device address */
    uint64_t size;
    heap_block *used;    /* sorted by off, not overlapping */
    size_t nused, cap;
    size_t rover;        /* index where the next search starts */
};

void emu_heap_init(emu_ctx *c)
{
    pthread_mutex_init(&c->heap_lock, NULL);
    c->heap = NULL;
    c->coop_ws = 0;
}

void emu_heap_free(emu_ctx *c)
{
    pthread_mutex_lock(&c->heap_lock);
    struct emu_heap *h = c->heap;
    c->heap = NULL;
    pthread_mutex_unlock(&c->heap_lock);
    if (h) {
        emu_mem_free_addr(h->base, 1);
        free(h->used);
        free(h);
    }
    if (c->coop_ws) {
        emu_mem_free_addr(c->coop_ws, 1);
        c->coop_ws = 0;
    }
    pthread_mutex_destroy(&c->heap_lock);
}

CUresult emu_heap_ensure(emu_ctx *c)
{
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&c->heap_lock);
    if (c->heap)
        goto out;
    r = CUDA_ERROR_OUT_OF_MEMORY;
    struct emu_heap *h = calloc(1, sizeof *h);
    if (!h)
        goto out;
    h->size = c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] / HEAP_ALIGN * HEAP_ALIGN;
    if (h->size && emu_mem_alloc(c, h->size, 1, &h->base) != CUDA_SUCCESS) {
        vg_warn("emulated GPU: no memory for a %llu-byte device malloc heap",
                (unsigned long long)h->size);
        free(h);
        goto out;
    }
    c->heap = h;
    r = CUDA_SUCCESS;
out:
    pthread_mutex_unlock(&c->heap_lock);
    return r;
}

CUresult emu_heap_set_size(emu_ctx *c, size_t bytes)
{
    pthread_mutex_lock(&c->heap_lock);
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    if (!c->heap) {
        c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = bytes;
        r = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&c->heap_lock);
    return r;
}

/* The first gap of at least size bytes at or after block index `from` (then from the start):
 * the index where the new block goes and its offset, or 0 when none fits. */
static int find_gap(const struct emu_heap *h, uint64_t size, size_t *at, uint64_t *off)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t i = pass == 0 ? h->rover : 0, end = pass == 0 ? h->nused : h->rover;
        for (; i <= end; i++) {
            uint64_t lo = i == 0 ? 0 : h->used[i - 1].off + h->used[i - 1].size;
            uint64_t hi = i == h->nused ? h->size : h->used[i].off;
            if (hi - lo >= size) {
                *at = i;
                *off = lo;
                return 1;
            }
        }
    }
    return 0;
}

uint64_t emu_ptx_heap_alloc(void *ctx, uint64_t size)
{
    emu_ctx *c = ctx;
    uint64_t addr = 0;
    if (size > (1ull << 62))
        return 0;
    size = size ? (size + HEAP_ALIGN - 1) / HEAP_ALIGN * HEAP_ALIGN : HEAP_ALIGN;
    pthread_mutex_lock(&c->heap_lock);
    struct emu_heap *h = c->heap;
    size_t at;
    uint64_t off;
    if (!h || size > h->size || !find_gap(h, size, &at, &off))
        goto out;
    if (h->nused == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        heap_block *nb = realloc(h->used, ncap * sizeof *nb);
        if (!nb)
            goto out;
        h->used = nb;
        h->cap = ncap;
    }
    memmove(&h->used[at + 1], &h->used[at], (h->nused - at) * sizeof *h->used);
    h->used[at].off = off;
    h->used[at].size = size;
    h->nused++;
    h->rover = at + 1;
    addr = h->base + off;
out:
    pthread_mutex_unlock(&c->heap_lock);
    return addr;
}

int emu_ptx_heap_free(void *ctx, uint64_t addr)
{
    emu_ctx *c = ctx;
    int rc = PTX_ERR_ILLEGAL_ADDRESS;
    pthread_mutex_lock(&c->heap_lock);
    struct emu_heap *h = c->heap;
    if (!h || addr < h->base || addr - h->base >= h->size)
        goto out;
    uint64_t off = addr - h->base;
    size_t lo = 0, hi = h->nused;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->used[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == h->nused || h->used[lo].off != off)
        goto out; /* not the start of a block in use: never allocated, or freed already */
    memmove(&h->used[lo], &h->used[lo + 1], (h->nused - lo - 1) * sizeof *h->used);
    h->nused--;
    if (h->rover > lo)
        h->rover--;
    rc = PTX_OK;
out:
    pthread_mutex_unlock(&c->heap_lock);
    return rc;
}
