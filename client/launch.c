/* Kernel launches and function attributes. Parameter layouts come from the server once per
 * function and are cached here. */
#include <cuda.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "call.h"
#include "marshal.h"
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

CUresult vg_stub_pack_params(uint64_t func, void **params, void **extra, struct vg_params *out)
{
    const struct layout *l;
    out->data = NULL;
    out->len = 0;
    out->heap = NULL;
    if (!func)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = get_layout(func, &l);
    if (rc != CUDA_SUCCESS)
        return rc;
    out->max_threads = l->max_threads;
    if (params && extra)
        return CUDA_ERROR_INVALID_VALUE;
    if (params) {
        uint8_t *buf = out->inline_buf;
        if (l->bytes > sizeof out->inline_buf) {
            buf = out->heap = calloc(1, l->bytes);
            if (!buf)
                return CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            memset(buf, 0, l->bytes);
        }
        for (int i = 0; i < l->n; i++) {
            if (!params[i])
                return CUDA_ERROR_INVALID_VALUE;
            memcpy(buf + l->off[i], params[i], l->size[i]);
        }
        out->data = buf;
        out->len = l->bytes;
        return CUDA_SUCCESS;
    }
    if (extra) {
        const void *pbuf = NULL;
        size_t psize = 0;
        int have_size = 0;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (i > 64)
                return CUDA_ERROR_INVALID_VALUE;
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
                pbuf = extra[i + 1];
            } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) {
                psize = *(size_t *)extra[i + 1];
                have_size = 1;
            } else {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
        if (!pbuf || !have_size || psize < l->bytes)
            return CUDA_ERROR_INVALID_VALUE;
        out->data = pbuf;
        out->len = psize;
        return CUDA_SUCCESS;
    }
    return l->n > 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult vg_stub_layout(uint64_t func, const uint32_t **offsets, size_t *n)
{
    const struct layout *l;
    CUresult rc = get_layout(func, &l);
    if (rc == CUDA_SUCCESS) {
        *offsets = l->off;
        *n = (size_t)l->n;
    }
    return rc;
}

void vg_stub_params_free(struct vg_params *p)
{
    free(p->heap);
    p->heap = NULL;
}

/* A launch is pipelined, but a bad configuration must fail at the call as on a GPU (the
 * runtime's cudaGetLastError after <<<>>> relies on it). A launch outside the limits every CUDA
 * device shares or the function's own thread limit goes with a reply requested, so that the
 * caller gets the driver's own answer (which differs between functions and kernels). */
static int dubious(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, int max_threads)
{
    return !gx || !gy || !gz || !bx || !by || !bz || gx > 2147483647u || gy > 65535 || gz > 65535 ||
           bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > (uint64_t)max_threads;
}

/* wire (cuLaunchKernel, cuLaunchCooperativeKernel): args function, grid x y z, block x y z,
 * shared bytes, stream; bulk: the parameter buffer. */
static CUresult launch(unsigned call, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                       unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params, void **extra,
                       int per_thread)
{
    struct vg_params p;
    CUresult rc = vg_stub_pack_params(H(f), params, extra, &p);
    if (rc == CUDA_SUCCESS) {
        struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(),
                           .args = ARGV(H(f), gx, gy, gz, bx, by, bz, shmem, vg_stub_stream(s, per_thread)),
                           .nargs = 9, .bulk = p.data, .bulk_len = p.len,
                           .want_reply = dubious(gx, gy, gz, bx, by, bz, p.max_threads)};
        rc = vg_conn_call(&r);
    }
    vg_stub_params_free(&p);
    return rc;
}

#undef cuLaunchKernel
#undef cuLaunchKernelEx
#undef cuLaunchCooperativeKernel
CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                void **extra)
{
    return launch(VG_CALL_cuLaunchKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 0);
}

CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra);
CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                     unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                     void **extra)
{
    return launch(VG_CALL_cuLaunchKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params, extra, 1);
}

CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                           unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params)
{
    return launch(VG_CALL_cuLaunchCooperativeKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params, NULL, 0);
}

CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params);
CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params)
{
    return launch(VG_CALL_cuLaunchCooperativeKernel, f, gx, gy, gz, bx, by, bz, shmem, s, params, NULL, 1);
}

/* One cooperative launch per device, each on its stream: with one device per session process
 * (and flags that only order the launches against other work), the launches need no more. */
CUresult CUDAAPI cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS *list, unsigned int n, unsigned int flags)
{
    if (!list || n == 0 || (flags & ~(unsigned)(CUDA_COOPERATIVE_LAUNCH_MULTI_DEVICE_NO_PRE_LAUNCH_SYNC |
                                                CUDA_COOPERATIVE_LAUNCH_MULTI_DEVICE_NO_POST_LAUNCH_SYNC)))
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++) {
        CUDA_LAUNCH_PARAMS *l = &list[i];
        CUresult rc = cuLaunchCooperativeKernel(l->function, l->gridDimX, l->gridDimY, l->gridDimZ, l->blockDimX,
                                                l->blockDimY, l->blockDimZ, l->sharedMemBytes, l->hStream,
                                                l->kernelParams);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    return CUDA_SUCCESS;
}

/* wire: args function, stream; bulk: the configuration (client/marshal.c), then u64 length and
 * the parameter buffer. */
static CUresult launch_ex(const CUlaunchConfig *c, CUfunction f, void **params, void **extra, int per_thread)
{
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    CUlaunchConfig cfg = *c;
    cfg.hStream = (CUstream)(uintptr_t)vg_stub_stream(c->hStream, per_thread);
    struct vg_params p;
    CUresult rc = vg_stub_pack_params(H(f), params, extra, &p);
    if (rc != CUDA_SUCCESS) {
        vg_stub_params_free(&p);
        return rc;
    }
    struct vg_cw w;
    vg_cw_init(&w, VG_CALL_cuLaunchKernelEx);
    vg_cw_arg(&w, H(f));
    vg_cw_arg(&w, H(cfg.hStream)); /* also in the configuration; an argument for the scheduler */
    rc = vg_menc_CUlaunchConfig(&w, &cfg);
    if (rc == CUDA_SUCCESS) {
        uint64_t *len = malloc(sizeof *len);
        if (len)
            *len = p.len;
        vg_cw_in_owned(&w, len, sizeof *len);
        vg_cw_in(&w, p.data, p.len);
        w.want_reply = dubious(c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ,
                               p.max_threads);
        rc = vg_cw_run(&w);
    } else {
        vg_cw_done(&w);
    }
    vg_stub_params_free(&p);
    return rc;
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

