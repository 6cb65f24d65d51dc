/* gpu-server's end of the shared-memory transport (see xport_shm.h). */
#include "xport_shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm.h"

/* Pinned memory a client may share at once: enough for any program that uses pinned buffers as
 * staging areas, and a bound on what one client can make the server map. */
#define REGIONS_MAX 4096
#define REGIONS_BYTES_MAX ((uint64_t)1 << 40)

struct vg_xport *vg_srv_shm_offer(int sock, uint64_t req_size, uint64_t rep_size, int *memfd,
                                  uint64_t *size, const char **why)
{
    uint64_t total = vg_shm_region_size(req_size, rep_size);
    int fd = vg_shm_create_sealed("vgpu-shm", total);
    if (fd < 0) {
        *why = "cannot create the shared region";
        return NULL;
    }
    void *base = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED) {
        *why = "cannot map the shared region";
        close(fd);
        return NULL;
    }
    vg_shm_init(base, req_size, rep_size);
    int sock2 = dup(sock);
    struct vg_xport *x = sock2 >= 0 ? vg_xport_shm(sock2, base, total, VG_SHM_SERVER, why) : NULL;
    if (!x) {
        if (sock2 < 0)
            *why = "out of descriptors";
        else
            close(sock2);
        munmap(base, (size_t)total);
        close(fd);
        return NULL;
    }
    *memfd = fd;
    *size = total;
    return x;
}

/* ---- the client's pinned memory ---- */

struct region {
    void *map;                 /* NULL: a free slot */
    uint64_t size;
    uint32_t gen;
};

struct vg_regions {
    struct region *r;
    uint32_t n, cap;
    uint64_t bytes;            /* mapped in all */
};

struct vg_regions *vg_regions_new(void)
{
    return calloc(1, sizeof(struct vg_regions));
}

/* id = generation << 32 | slot + 1: never 0, and a reused slot's old ids no longer match. */
static struct region *find(const struct vg_regions *t, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot == 0 || slot > t->n)
        return NULL;
    struct region *e = &t->r[slot - 1];
    return e->map && e->gen == (uint32_t)(id >> 32) ? e : NULL;
}

int vg_regions_map(struct vg_regions *t, int fd, uint64_t size, uint64_t *id, void **base, const char **why)
{
    int rc = 0;
    if (size == 0 || size > REGIONS_BYTES_MAX - t->bytes) {
        *why = "over the pinned memory one client may share";
        rc = -ENOSPC;
        goto out;
    }
    rc = vg_shm_check_sealed(fd, size, why);
    if (rc < 0)
        goto out;
    uint32_t slot = 0;
    while (slot < t->n && t->r[slot].map)
        slot++;
    if (slot == t->n) {
        if (t->n == REGIONS_MAX) {
            *why = "too many pinned regions";
            rc = -ENOSPC;
            goto out;
        }
        if (t->n == t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 16;
            struct region *n = realloc(t->r, cap * sizeof *n);
            if (!n) {
                *why = "out of memory";
                rc = -ENOMEM;
                goto out;
            }
            t->r = n;
            t->cap = cap;
        }
        memset(&t->r[t->n++], 0, sizeof *t->r);
    }
    void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        *why = "cannot map it";
        rc = -errno;
        goto out;
    }
    struct region *e = &t->r[slot];
    e->map = m;
    e->size = size;
    e->gen++;
    t->bytes += size;
    *id = (uint64_t)e->gen << 32 | (slot + 1);
    *base = m;
out:
    close(fd);
    return rc;
}

void *vg_regions_get(const struct vg_regions *t, uint64_t id, uint64_t *size)
{
    struct region *e = find(t, id);
    if (!e)
        return NULL;
    *size = e->size;
    return e->map;
}

void *vg_regions_ptr(const struct vg_regions *t, uint64_t id, uint64_t offset, uint64_t length)
{
    struct region *e = find(t, id);
    if (!e || offset > e->size || length > e->size - offset)
        return NULL;
    return (uint8_t *)e->map + offset;
}

int vg_regions_unmap(struct vg_regions *t, uint64_t id)
{
    struct region *e = find(t, id);
    if (!e)
        return -ENOENT;
    munmap(e->map, (size_t)e->size);
    t->bytes -= e->size;
    e->map = NULL;
    e->size = 0;
    return 0;
}
