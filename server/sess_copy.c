/* The host side of a session's copies (see sess_copy.h). */
#include "sess_copy.h"

#include <stdint.h>
#include <stdlib.h>

#include "log.h"

enum reg_state { REG_UNTRIED, REG_DONE, REG_FAILED };

struct hostbuf {
    uint8_t *p;
    size_t n;
    unsigned flags;
    enum reg_state state;
};

struct vg_hostbufs {
    const struct vg_drv *drv;
    struct hostbuf *b;
    size_t nb, cap;
};

struct vg_hostbufs *vg_hostbufs_new(const struct vg_drv *drv)
{
    struct vg_hostbufs *hb = calloc(1, sizeof *hb);
    if (hb)
        hb->drv = drv;
    return hb;
}

/* Registers b in the current context if there is one. PORTABLE: every context of the session
 * may use the registration on a GPU. A failure only costs speed: copies then treat the memory
 * as pageable. */
static void reg_try(struct vg_hostbufs *hb, struct hostbuf *b)
{
    const struct vg_drv *d = hb->drv;
    CUcontext cur = NULL;
    if (!d->cuMemHostRegister || !d->cuMemcpy || !d->cuCtxGetCurrent ||
        d->cuCtxGetCurrent(&cur) != CUDA_SUCCESS || !cur) {
        if (b->flags & VG_HOSTBUF_NOW)
            b->state = REG_FAILED;
        return; /* untried: a later copy (with a context current) tries again */
    }
    unsigned f = CU_MEMHOSTREGISTER_PORTABLE | (b->flags & VG_HOSTBUF_READ_ONLY ? CU_MEMHOSTREGISTER_READ_ONLY : 0);
    CUresult rc = d->cuMemHostRegister(b->p, b->n, f);
    b->state = rc == CUDA_SUCCESS ? REG_DONE : REG_FAILED;
    if (rc != CUDA_SUCCESS)
        vg_debug("host buffer of %zu bytes not registered with the driver (CUresult %d): copies "
                 "through it are staged", b->n, (int)rc);
}

int vg_hostbufs_add(struct vg_hostbufs *hb, void *p, size_t n, unsigned flags)
{
    if (hb->nb == hb->cap) {
        size_t cap = hb->cap ? hb->cap * 2 : 8;
        struct hostbuf *nb = realloc(hb->b, cap * sizeof *nb);
        if (!nb)
            return -1;
        hb->b = nb;
        hb->cap = cap;
    }
    struct hostbuf *b = &hb->b[hb->nb++];
    *b = (struct hostbuf){p, n, flags, REG_UNTRIED};
    if (flags & VG_HOSTBUF_NOW)
        reg_try(hb, b);
    return 0;
}

void vg_hostbufs_remove(struct vg_hostbufs *hb, void *p)
{
    for (size_t i = 0; i < hb->nb; i++) {
        if (hb->b[i].p != p)
            continue;
        /* Needs a current context (any of the session's, with PORTABLE); without one, or after
         * the context that registered it ended (which took the registration with it), it fails
         * harmlessly. */
        if (hb->b[i].state == REG_DONE && hb->drv->cuMemHostUnregister)
            hb->drv->cuMemHostUnregister(p);
        hb->b[i] = hb->b[--hb->nb];
        return;
    }
}

/* 1 when host[0..n) lies in registered memory (registering it now if it may be). */
static int registered(struct vg_hostbufs *hb, const void *host, size_t n)
{
    uintptr_t h = (uintptr_t)host;
    for (size_t i = 0; i < hb->nb; i++) {
        struct hostbuf *b = &hb->b[i];
        uintptr_t base = (uintptr_t)b->p;
        if (h < base || h - base > b->n || n > b->n - (h - base))
            continue;
        if (b->state == REG_UNTRIED)
            reg_try(hb, b);
        return b->state == REG_DONE;
    }
    return 0;
}

CUresult vg_copy_part(struct vg_hostbufs *hb, const struct vg_copy *c, uint64_t off, void *host, size_t n)
{
    const struct vg_drv *d = hb->drv;
    if (n == 0)
        return CUDA_SUCCESS;
    CUdeviceptr dev = c->dev + off;
    int htod = c->dir == VG_COPY_HTOD;
    CUresult rc;
    if (registered(hb, host, n)) {
        /* Unified addressing: the registered host pointer is an address the driver knows. */
        CUdeviceptr h = (CUdeviceptr)(uintptr_t)host;
        CUdeviceptr dst = htod ? dev : h, src = htod ? h : dev;
        if (c->async && d->cuMemcpyAsync && d->cuStreamSynchronize) {
            rc = d->cuMemcpyAsync(dst, src, n, c->stream);
            return rc == CUDA_SUCCESS ? d->cuStreamSynchronize(c->stream) : rc;
        }
        return d->cuMemcpy(dst, src, n);
    }
    /* An asynchronous copy is ordered on its stream, then waited for: the host bytes are only
     * valid until this returns. */
    if (htod) {
        if (c->async && d->cuMemcpyHtoDAsync && d->cuStreamSynchronize) {
            rc = d->cuMemcpyHtoDAsync(dev, host, n, c->stream);
            return rc == CUDA_SUCCESS ? d->cuStreamSynchronize(c->stream) : rc;
        }
        return d->cuMemcpyHtoD ? d->cuMemcpyHtoD(dev, host, n) : CUDA_ERROR_NOT_SUPPORTED;
    }
    if (c->async && d->cuMemcpyDtoHAsync && d->cuStreamSynchronize) {
        rc = d->cuMemcpyDtoHAsync(host, dev, n, c->stream);
        return rc == CUDA_SUCCESS ? d->cuStreamSynchronize(c->stream) : rc;
    }
    return d->cuMemcpyDtoH ? d->cuMemcpyDtoH(host, dev, n) : CUDA_ERROR_NOT_SUPPORTED;
}

int vg_copy_start(struct vg_hostbufs *hb, const struct vg_copy *c, uint64_t off, void *host, size_t n,
                  CUresult *rc)
{
    const struct vg_drv *d = hb->drv;
    if (n == 0 || !d->cuMemcpyAsync || !d->cuStreamSynchronize || !registered(hb, host, n))
        return 0;
    CUdeviceptr h = (CUdeviceptr)(uintptr_t)host, dev = c->dev + off;
    /* A synchronous copy's pieces go on the legacy stream: ordered after the work before it,
     * as cuMemcpyHtoD/DtoH would be. */
    *rc = d->cuMemcpyAsync(c->dir == VG_COPY_HTOD ? dev : h, c->dir == VG_COPY_HTOD ? h : dev, n,
                           c->async ? c->stream : NULL);
    return 1;
}

CUresult vg_copy_wait(struct vg_hostbufs *hb, const struct vg_copy *c)
{
    return hb->drv->cuStreamSynchronize(c->async ? c->stream : NULL);
}
