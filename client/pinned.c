/* Page-locked host memory shared with gpu-server (see pinned.h). */
#include "pinned.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "shm.h"

struct pinned {
    struct pinned *next;
    uint8_t *base;
    size_t size;               /* mapped (a whole number of pages) */
    uint64_t region;           /* the server's id for it */
    uint64_t epoch;            /* the connection it was shared with */
};

static pthread_mutex_t pinned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pinned *pinned_list;

/* Around fork (called by conn.c's handlers, after it took its own lock: the order of the two
 * locks everywhere is conn_lock, then pinned_lock). */
void vg_pinned_atfork_prepare(void)
{
    pthread_mutex_lock(&pinned_lock);
}

void vg_pinned_atfork_release(void)
{
    pthread_mutex_unlock(&pinned_lock);
}

CUresult vg_pinned_alloc(size_t bytes, void **p)
{
    if (!vg_conn_shares_memory())
        return CUDA_ERROR_NOT_SUPPORTED;
    long page = sysconf(_SC_PAGESIZE);
    if (bytes > SIZE_MAX - (size_t)page)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t size = (bytes + (size_t)page - 1) & ~((size_t)page - 1);
    struct pinned *e = malloc(sizeof *e);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    int fd = vg_shm_create_sealed("vgpu-pinned", size);
    if (fd < 0) {
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    /* Takes fd (it travels to the server, and is closed here either way). */
    CUresult rc = vg_conn_region_map(fd, size, &e->region, &e->epoch);
    if (rc != CUDA_SUCCESS) {
        munmap(m, size);
        free(e);
        /* The server would not take it (at its cap): plain memory serves, copied by value. */
        return rc == CUDA_ERROR_OUT_OF_MEMORY ? CUDA_ERROR_NOT_SUPPORTED : rc;
    }
    e->base = m;
    e->size = size;
    pthread_mutex_lock(&pinned_lock);
    e->next = pinned_list;
    pinned_list = e;
    pthread_mutex_unlock(&pinned_lock);
    *p = m;
    return CUDA_SUCCESS;
}

int vg_pinned_free(void *p)
{
    struct pinned *e = NULL;
    pthread_mutex_lock(&pinned_lock);
    for (struct pinned **pp = &pinned_list; *pp; pp = &(*pp)->next) {
        if ((*pp)->base == p) {
            e = *pp;
            *pp = e->next;
            break;
        }
    }
    pthread_mutex_unlock(&pinned_lock);
    if (!e)
        return 0;
    /* The server unmaps its side after every call queued before (frames run in order). */
    vg_conn_region_unmap(e->region, e->epoch);
    munmap(e->base, e->size);
    free(e);
    return 1;
}

int vg_pinned_ref(const void *p, uint64_t len, uint64_t epoch, struct vg_bulk_ref *ref)
{
    uintptr_t a = (uintptr_t)p;
    int found = 0;
    pthread_mutex_lock(&pinned_lock);
    for (struct pinned *e = pinned_list; e; e = e->next) {
        uintptr_t base = (uintptr_t)e->base;
        if (a < base || a - base >= e->size)
            continue;
        if (e->epoch == epoch && len <= e->size - (a - base)) {
            ref->region = e->region;
            ref->offset = a - base;
            ref->length = len;
            found = 1;
        }
        break;
    }
    pthread_mutex_unlock(&pinned_lock);
    return found;
}
