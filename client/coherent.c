/* Managed and mapped memory kept coherent between the client's host copy and the server's
 * device copy (the protocol is stated in coherent.h).
 *
 * coh_lock protects the list of ranges and every page state; it is taken before the connection's
 * lock, never after (vg_coh_enter runs before a call takes the connection, the fault handler
 * calls the server with coh_lock held). A thread doing coherent work marks itself (coh_inside):
 * its own calls skip the hook, and a fault while it is set is not ours to handle. */
#include "coherent.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "calls.h"
#include "conn.h"
#include "log.h"
#include "stub.h"
#include "vg_gen.h"

enum { S_INVALID = 0, S_CLEAN, S_DIRTY };

/* Pages fetched together when the host touches invalid memory. */
#define FETCH_PAGES 16
/* Server allocations kept while looking for an address the client can map (freed after). */
#define PLACE_TRIES 8

struct coh {
    struct coh *next;
    enum vg_coh_kind kind;
    uintptr_t host;       /* first byte on the host side */
    CUdeviceptr dev;      /* first byte on the device side */
    size_t size;
    uintptr_t pg0;        /* first page covering [host, host + size) */
    size_t npages;
    uint8_t *state;       /* per page */
    uint64_t ctx;         /* the context it belongs to (session id), for synchronizing */
    int synced;           /* the context was synchronized since the pages were invalidated */
};

static pthread_mutex_t coh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct coh *cohs;
static int coh_count;     /* ranges (atomic: the hook's fast path) */
static __thread int coh_inside;
static size_t page_size;
static struct sigaction old_segv;
static int handler_installed;

static void on_segv(int sig, siginfo_t *si, void *uc);

static int prot_of(int state)
{
    return state == S_INVALID ? PROT_NONE : state == S_CLEAN ? PROT_READ : PROT_READ | PROT_WRITE;
}

/* Sets pages [first, first + n) of c to state (and their protection). */
static void set_pages(struct coh *c, size_t first, size_t n, int state)
{
    if (n == 0)
        return;
    if (mprotect((void *)(c->pg0 + first * page_size), n * page_size, prot_of(state)) != 0)
        vg_error("coherent memory: mprotect failed: %s", strerror(errno));
    memset(c->state + first, state, n);
}

/* The part of page i that belongs to the range: [*off, *off + *len) from c->host. */
static void page_bytes(const struct coh *c, size_t first, size_t n, size_t *off, size_t *len)
{
    uintptr_t a = c->pg0 + first * page_size, b = a + n * page_size;
    if (a < c->host)
        a = c->host;
    if (b > c->host + c->size)
        b = c->host + c->size;
    *off = a - c->host;
    *len = b > a ? b - a : 0;
}

/* One call to the server on the range's context (coh_inside is set: no hook). */
static CUresult call(struct coh *c, struct vg_rpc *r)
{
    r->ctx = c->ctx;
    return vg_conn_call(r);
}

/* Makes pages [first, first + n) valid from the server: a synchronize of the context (once
 * after each invalidation) and a copy, in one call (vgCohFetch, which does not take the
 * deferred errors of pipelined calls: those stay for the program's own next synchronize). */
static void fetch(struct coh *c, size_t first, size_t n)
{
    size_t off, len;
    page_bytes(c, first, n, &off, &len);
    set_pages(c, first, n, S_DIRTY); /* writable while the reply lands */
    CUresult rc = CUDA_SUCCESS;
    if (len) {
        struct vg_rpc r = {.call = VG_CALL_vgCohFetch, .args = ARGV(c->dev + off, len), .nargs = 2,
                           .rbulk = (void *)(c->host + off), .rbulk_len = len};
        rc = call(c, &r);
    }
    if (rc != CUDA_SUCCESS) {
        static int once;
        if (!__atomic_exchange_n(&once, 1, __ATOMIC_RELAXED))
            vg_error("coherent memory: cannot fetch %zu bytes from the server (CUresult %d); the host "
                     "copy keeps its old contents", len, (int)rc);
    }
    c->synced = 1;
    set_pages(c, first, n, S_CLEAN);
}

/* Sends the written pages of c to the server. A pipelined copy on the legacy stream: the server
 * runs a session's calls in order and waits for it (its bulk is the frame), so it is done before
 * any later call starts; its failure is deferred like any pipelined call's. */
static void push(struct coh *c)
{
    for (size_t i = 0; i < c->npages;) {
        if (c->state[i] != S_DIRTY) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < c->npages && c->state[j] == S_DIRTY)
            j++;
        size_t off, len;
        page_bytes(c, i, j - i, &off, &len);
        uint64_t chunk = vg_conn_max_bulk();
        for (size_t done = 0; done < len;) {
            size_t part = len - done < chunk ? len - done : (size_t)chunk;
            struct vg_rpc r = {.call = VG_CALL_cuMemcpyHtoDAsync_v2, .args = ARGV(c->dev + off + done, 0),
                               .nargs = 2, .bulk = (const void *)(c->host + off + done), .bulk_len = part};
            call(c, &r);
            done += part;
        }
        set_pages(c, i, j - i, S_CLEAN);
        i = j;
    }
}

static struct coh *find_page(uintptr_t a)
{
    for (struct coh *c = cohs; c; c = c->next)
        if (a >= c->pg0 && a < c->pg0 + c->npages * page_size)
            return c;
    return NULL;
}

/* Makes the pages of [p, p + len) valid; writing: also dirty (they are about to be written). */
static void prepare(const void *p, uint64_t len, int writing)
{
    uintptr_t a = (uintptr_t)p, end = a + len;
    while (a < end) {
        struct coh *c = find_page(a);
        if (!c) {
            a = (a & ~(uintptr_t)(page_size - 1)) + page_size;
            continue;
        }
        size_t i = (a - c->pg0) / page_size;
        size_t last = (end - 1 - c->pg0) / page_size;
        if (last >= c->npages)
            last = c->npages - 1;
        for (size_t k = i; k <= last; k++) {
            if (c->state[k] == S_INVALID)
                fetch(c, k, 1);
            if (writing && c->state[k] != S_DIRTY)
                set_pages(c, k, 1, S_DIRTY);
        }
        a = c->pg0 + (last + 1) * page_size;
    }
}

static int overlaps(uintptr_t a, size_t n, const void *p, uint64_t len)
{
    uintptr_t b = (uintptr_t)p;
    return p && len && a < b + len && b < a + n;
}

void vg_coh_enter(int device_work, const void *in, uint64_t in_len, void *out, uint64_t out_len)
{
    if (!__atomic_load_n(&coh_count, __ATOMIC_ACQUIRE) || coh_inside)
        return;
    coh_inside = 1;
    pthread_mutex_lock(&coh_lock);
    prepare(in, in_len, 0);
    prepare(out, out_len, 1);
    if (device_work) {
        for (struct coh *c = cohs; c; c = c->next)
            push(c);
        /* The device may write anything from now on: every page but the call's own buffers. */
        for (struct coh *c = cohs; c; c = c->next) {
            size_t run = 0;
            for (size_t i = 0; i <= c->npages; i++) {
                uintptr_t pa = c->pg0 + i * page_size;
                int keep = i == c->npages || c->state[i] == S_INVALID || overlaps(pa, page_size, in, in_len) ||
                           overlaps(pa, page_size, out, out_len);
                if (!keep) {
                    run++;
                    continue;
                }
                set_pages(c, i - run, run, S_INVALID);
                run = 0;
            }
            c->synced = 0;
        }
        /* The call's destination pages were pushed above and are written again by its reply. */
        prepare(out, out_len, 1);
    }
    pthread_mutex_unlock(&coh_lock);
    coh_inside = 0;
}

/* The host touched an address: 1 when it was coherent memory (now valid, or dirty when it was
 * a write to a clean page), 0 when the fault is not ours. */
static int coh_fault(uintptr_t a)
{
    if (coh_inside)
        return 0;
    coh_inside = 1;
    pthread_mutex_lock(&coh_lock);
    struct coh *c = find_page(a);
    if (c) {
        size_t i = (a - c->pg0) / page_size;
        if (c->state[i] == S_INVALID) {
            size_t first = i - i % FETCH_PAGES, n = 0;
            while (first < i && c->state[first] != S_INVALID)
                first++;
            while (first + n < c->npages && n < FETCH_PAGES && c->state[first + n] == S_INVALID)
                n++;
            fetch(c, first, n);
        } else if (c->state[i] == S_CLEAN) {
            set_pages(c, i, 1, S_DIRTY);
        }
    }
    pthread_mutex_unlock(&coh_lock);
    coh_inside = 0;
    return c != NULL;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    if (si->si_code == SEGV_ACCERR && coh_fault((uintptr_t)si->si_addr)) {
        errno = saved;
        return;
    }
    errno = saved;
    /* Not ours: what was there before (or the default, by retrying the access without us). */
    if (old_segv.sa_flags & SA_SIGINFO) {
        old_segv.sa_sigaction(sig, si, uc);
    } else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL);
    }
}

/* Takes ownership of c (whose pages are mapped and protected as c->state says). */
static void add(struct coh *c)
{
    if (!handler_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &old_segv) == 0)
            handler_installed = 1;
    }
    c->next = cohs;
    cohs = c;
    __atomic_fetch_add(&coh_count, 1, __ATOMIC_RELEASE);
}

static struct coh *new_range(enum vg_coh_kind kind, uintptr_t host, CUdeviceptr dev, size_t size)
{
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    struct coh *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = kind;
    c->host = host;
    c->dev = dev;
    c->size = size;
    c->pg0 = host & ~(uintptr_t)(page_size - 1);
    c->npages = (host + size - c->pg0 + page_size - 1) / page_size;
    c->state = calloc(c->npages, 1);
    c->ctx = vg_stub_ctx();
    if (!c->state) {
        free(c);
        return NULL;
    }
    return c;
}

/* Maps a zeroed shadow at exactly p; 0 or -1 when the client has something there. */
static int map_shadow(CUdeviceptr p, size_t bytes, int prot)
{
    void *m = mmap((void *)(uintptr_t)p, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    if (m != (void *)(uintptr_t)p) { /* a kernel without MAP_FIXED_NOREPLACE treats it as a hint */
        munmap(m, bytes);
        return -1;
    }
    return 0;
}

static CUresult server_alloc(size_t bytes, unsigned flags, CUdeviceptr *p)
{
    uint64_t o[1];
    CUresult rc = FWD(cuMemAllocManaged, o, 1, bytes, flags);
    if (rc == CUDA_SUCCESS)
        *p = o[0];
    return rc;
}

CUresult vg_coh_alloc(size_t bytes, unsigned flags, enum vg_coh_kind kind, CUdeviceptr *out)
{
    if (!bytes || !out)
        return CUDA_ERROR_INVALID_VALUE;
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    /* The server's address must be free in this process too: when it is not, try another one
     * (keeping the refused allocations until then so that the server picks new addresses). */
    CUdeviceptr refused[PLACE_TRIES];
    int nrefused = 0;
    CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;
    CUdeviceptr p = 0;
    while (nrefused < PLACE_TRIES) {
        /* After half the tries the server backs it with device memory, whose addresses may lie
         * elsewhere (the emulated GPU's managed memory is its own host memory, at addresses
         * this process often uses too): the stub keeps it coherent the same way. */
        int device_backed = nrefused >= PLACE_TRIES / 2;
        rc = server_alloc(bytes, flags | (device_backed ? VG_MANAGED_DEVICE_BACKED : 0), &p);
        if (rc != CUDA_SUCCESS)
            break;
        /* The shadow covers the pages around the range (device memory need not start on one;
         * bytes of those pages outside the range are never copied). */
        uintptr_t pg0 = p & ~(uintptr_t)(page_size - 1);
        if (map_shadow(pg0, (p + bytes - pg0 + page_size - 1) & ~(page_size - 1), PROT_READ) == 0)
            break;
        refused[nrefused++] = p;
        p = 0;
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < nrefused; i++)
        FWD(cuMemFree_v2, NULL, 0, refused[i]);
    if (rc != CUDA_SUCCESS) {
        if (nrefused)
            vg_warn("managed memory: the server's addresses are taken in this process; cannot place %zu bytes",
                    bytes);
        return rc;
    }
    struct coh *c = new_range(kind, (uintptr_t)p, p, bytes);
    if (!c) {
        uintptr_t pg0 = p & ~(uintptr_t)(page_size - 1);
        munmap((void *)pg0, (p + bytes - pg0 + page_size - 1) & ~(page_size - 1));
        FWD(cuMemFree_v2, NULL, 0, p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memset(c->state, S_CLEAN, c->npages); /* both copies start zeroed */
    pthread_mutex_lock(&coh_lock);
    add(c);
    pthread_mutex_unlock(&coh_lock);
    *out = p;
    return CUDA_SUCCESS;
}

CUresult vg_coh_adopt(CUdeviceptr p, size_t bytes)
{
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    pthread_mutex_lock(&coh_lock);
    int known = find_page(p) != NULL;
    pthread_mutex_unlock(&coh_lock);
    if (known)
        return CUDA_SUCCESS;
    /* A global need not start on a page: map the pages around it. */
    uintptr_t pg0 = p & ~(uintptr_t)(page_size - 1);
    size_t span = (p + bytes - pg0 + page_size - 1) & ~(page_size - 1);
    if (map_shadow(pg0, span, PROT_NONE) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct coh *c = new_range(VG_COH_GLOBAL, p, p, bytes);
    if (!c) {
        munmap((void *)pg0, span);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&coh_lock);
    add(c); /* all pages invalid: the first touch fetches the variable's value */
    pthread_mutex_unlock(&coh_lock);
    return CUDA_SUCCESS;
}

CUresult vg_coh_register(void *host, size_t bytes, CUdeviceptr *dev)
{
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t h = (uintptr_t)host;
    pthread_mutex_lock(&coh_lock);
    int clash = find_page(h) || find_page(h + bytes - 1);
    pthread_mutex_unlock(&coh_lock);
    if (clash)
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED; /* pages shared with other coherent memory */
    CUdeviceptr p = 0;
    CUresult rc = server_alloc(bytes, CU_MEM_ATTACH_GLOBAL, &p);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct coh *c = new_range(VG_COH_REGISTERED, h, p, bytes);
    if (!c) {
        FWD(cuMemFree_v2, NULL, 0, p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* The caller's bytes are the truth now: dirty, sent before the next device work. */
    pthread_mutex_lock(&coh_lock);
    set_pages(c, 0, c->npages, S_DIRTY);
    add(c);
    pthread_mutex_unlock(&coh_lock);
    *dev = p;
    return CUDA_SUCCESS;
}

int vg_coh_release(uintptr_t p, CUresult *rc)
{
    pthread_mutex_lock(&coh_lock);
    struct coh **pp = &cohs, *c = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->host == p || (*pp)->dev == p) {
            c = *pp;
            *pp = c->next;
            break;
        }
    if (c) {
        __atomic_fetch_sub(&coh_count, 1, __ATOMIC_RELEASE);
        if (c->kind == VG_COH_REGISTERED) {
            /* The caller keeps its memory, current and writable. */
            coh_inside = 1;
            for (size_t i = 0; i < c->npages; i++)
                if (c->state[i] == S_INVALID)
                    fetch(c, i, 1);
            coh_inside = 0;
            mprotect((void *)c->pg0, c->npages * page_size, PROT_READ | PROT_WRITE);
        } else if (c->kind != VG_COH_GLOBAL) {
            munmap((void *)c->pg0, c->npages * page_size);
        }
    }
    pthread_mutex_unlock(&coh_lock);
    if (!c)
        return -1;
    *rc = CUDA_SUCCESS;
    if (c->kind != VG_COH_GLOBAL)
        *rc = FWD(cuMemFree_v2, NULL, 0, c->dev);
    free(c->state);
    free(c);
    return 0;
}

int vg_coh_find(uintptr_t p, enum vg_coh_kind *kind, CUdeviceptr *dev, uintptr_t *base, size_t *size)
{
    if (!__atomic_load_n(&coh_count, __ATOMIC_ACQUIRE))
        return 0;
    int found = 0;
    pthread_mutex_lock(&coh_lock);
    for (struct coh *c = cohs; c; c = c->next)
        if (p >= c->host && p - c->host < c->size) {
            *kind = c->kind;
            *dev = c->dev + (p - c->host);
            *base = c->host;
            *size = c->size;
            found = 1;
            break;
        }
    pthread_mutex_unlock(&coh_lock);
    return found;
}

void vg_coh_forget(void)
{
    pthread_mutex_init(&coh_lock, NULL);
    for (struct coh *c = cohs, *n; c; c = n) {
        n = c->next;
        /* Invalid pages hold what the host last saw; the child keeps its copy, writable. */
        mprotect((void *)c->pg0, c->npages * page_size, PROT_READ | PROT_WRITE);
        free(c->state);
        free(c);
    }
    cohs = NULL;
    __atomic_store_n(&coh_count, 0, __ATOMIC_RELEASE);
}
