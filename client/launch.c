/* Kernel launches and function attributes. Parameter layouts come from the server once per
 * function and are cached here. */
#include <cuda.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "stub.h"

/* ---- functions and launches ----------------------------------------------------------------------- */

/* Parameter layouts by function handle, fetched once from the server (which asks the driver's
 * cuFuncGetParamInfo). layout_lock protects the list; entries are never freed, so a pointer
 * handed out stays valid. */
struct layout {
    struct layout *next;
    uint64_t func;
    int n;
    uint32_t bytes;
    uint32_t *off, *size;
    int max_threads; /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, to reject launches at the call */
};
static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout *layouts;

/* In a forked child only: the parent's entries are left allocated (another thread of the parent
 * may have been reading them when it forked). */
void vg_stub_forget_layouts(void)
{
    pthread_mutex_init(&layout_lock, NULL);
    layouts = NULL;
}

static CUresult get_layout(uint64_t func, const struct layout **out)
{
    pthread_mutex_lock(&layout_lock);
    for (struct layout *l = layouts; l; l = l->next)
        if (l->func == func) {
            pthread_mutex_unlock(&layout_lock);
            *out = l;
            return CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&layout_lock);

    uint64_t *o = NULL;
    size_t no = 0;
    struct vg_rpc r = {.call = VG_CALL_vgFuncGetParamLayout, .ctx = vg_stub_ctx(), .args = ARGV(func), .nargs = 1,
                       .outs_alloc = &o, .nouts_alloc = &no};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS) {
        free(o);
        return rc;
    }
    struct layout *l = calloc(1, sizeof *l);
    if (!l || no < 1 || o[0] > 4096 || no != 1 + 2 * o[0]) {
        free(l);
        free(o);
        return l ? CUDA_ERROR_UNKNOWN : CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->func = func;
    l->n = (int)o[0];
    l->off = calloc((size_t)l->n + 1, sizeof *l->off);
    l->size = calloc((size_t)l->n + 1, sizeof *l->size);
    if (!l->off || !l->size) {
        free(l->off);
        free(l->size);
        free(l);
        free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < l->n; i++) {
        l->off[i] = (uint32_t)o[1 + 2 * i];
        l->size[i] = (uint32_t)o[2 + 2 * i];
        if (o[1 + 2 * i] > 65536 || o[2 + 2 * i] > 65536) {
            free(l->off);
            free(l->size);
            free(l);
            free(o);
            return CUDA_ERROR_UNKNOWN;
        }
        if (l->off[i] + l->size[i] > l->bytes)
            l->bytes = l->off[i] + l->size[i];
    }
    free(o);
    int mt = 0;
    if (cuFuncGetAttribute(&mt, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, (CUfunction)(uintptr_t)func) != CUDA_SUCCESS ||
        mt <= 0)
        mt = 1024;
    l->max_threads = mt;
    pthread_mutex_lock(&layout_lock);
    l->next = layouts;
    layouts = l;
    pthread_mutex_unlock(&layout_lock);
    *out = l;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, unsigned shmem, CUstream s, void **params, void **extra, int per_thread)
{
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    const struct layout *l;
    CUresult rc = get_layout(H(f), &l);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* A launch is pipelined, but a bad configuration must fail at the call as on a GPU (the
     * runtime's cudaGetLastError after <<<>>> relies on it). A launch outside the limits every
     * CUDA device shares or the function's own thread limit goes with a reply requested, so that
     * the caller gets the driver's own answer (which differs between functions and kernels). */
    int dubious = !gx || !gy || !gz || !bx || !by || !bz || gx > 2147483647u || gy > 65535 ||
                  gz > 65535 || bx > 1024 || by > 1024 || bz > 64 ||
                  (uint64_t)bx * by * bz > (uint64_t)l->max_threads;
    if (params && extra)
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t stackbuf[512];
    uint8_t *buf = stackbuf;
    const void *bulk = NULL;
    size_t bulk_len = 0;
    if (params) {
        if (l->bytes > sizeof stackbuf) {
            buf = calloc(1, l->bytes);
            if (!buf)
                return CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            memset(buf, 0, l->bytes);
        }
        for (int i = 0; i < l->n; i++) {
            if (!params[i]) {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
            memcpy(buf + l->off[i], params[i], l->size[i]);
        }
        bulk = buf;
        bulk_len = l->bytes;
    } else if (extra) {
        const void *pbuf = NULL;
        size_t psize = 0;
        int have_size = 0;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (i > 64) {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                pbuf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) {
                psize = *(size_t *)extra[i + 1];
                have_size = 1;
            } else {
                rc = CUDA_ERROR_INVALID_VALUE;
                goto done;
            }
        }
        if (!pbuf || !have_size || psize < l->bytes) {
            rc = CUDA_ERROR_INVALID_VALUE;
            goto done;
        }
        bulk = pbuf;
        bulk_len = psize;
    } else if (l->n > 0) {
        rc = CUDA_ERROR_INVALID_VALUE;
        goto done;
    }
    struct vg_rpc r = {.call = VG_CALL_cuLaunchKernel, .ctx = vg_stub_ctx(),
                       .args = ARGV(H(f), gx, gy, gz, bx, by, bz, shmem, vg_stub_stream(s, per_thread)),
                       .nargs = 9, .bulk = bulk, .bulk_len = bulk_len, .want_reply = dubious};
    rc = vg_conn_call(&r);
done:
    if (buf != stackbuf)
        free(buf);
    return rc;
}

#undef cuLaunchKernel
#undef cuLaunchKernelEx
CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 0);
}

CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra);
CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra)
{
    return launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 1);
}

static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra, int per_thread)
{
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < c->numAttrs; i++) {
        /* Attributes that only tune scheduling are safe to drop; others change semantics. */
        switch (c->attrs[i].id) {
        case CU_LAUNCH_ATTRIBUTE_IGNORE:
        case CU_LAUNCH_ATTRIBUTE_PRIORITY:
        case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
            break;
        case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
            if (c->attrs[i].value.cooperative == 0)
                break;
            return CUDA_ERROR_NOT_SUPPORTED;
        default:
            return CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    return launch(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ,
                  c->sharedMemBytes, c->hStream, params, extra, per_thread);
}

CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 0);
}

CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra);
CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    return launch_ex(c, f, params, extra, 1);
}

CUresult CUDAAPI cuFuncGetParamInfo(CUfunction f, size_t index, size_t *offset, size_t *size)
{
    const struct layout *l;
    CUresult rc = get_layout(H(f), &l);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (index >= (size_t)l->n)
        return CUDA_ERROR_INVALID_VALUE;
    if (offset)
        *offset = l->off[index];
    if (size)
        *size = l->size[index];
    return CUDA_SUCCESS;
}

