/* The calls whose server side is written by hand (protocol/cuda.calls marks them server or
 * manual): what the session must do besides translating handles and checking ranges, which the
 * generated handlers (cuapi_server.c) do for every other call. The wire layout of each is in
 * protocol/README.md ("Calls written by hand"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fatbin.h"
#include "session_priv.h"

CUresult vg_sess_run(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                     struct vg_result *res, uint32_t ctx1)
{
    (void)ctx1; /* s->cur_ctx */
    struct vg_in in = {.args = c->args, .nargs = c->n_args, .name = c->name ? c->name : "",
                       .bulk = bulk, .bulk_len = bulk_len, .call = c->call};
    vg_handler_fn fn = c->call < VG_CALL_COUNT ? vg_handlers[c->call] : NULL;
    return fn ? fn(s, &in, res) : CUDA_ERROR_NOT_SUPPORTED;
}


/* ---- primary contexts ----------------------------------------------------------------------
 * Each session gets a "primary" context of its own per device (a created context behind the
 * primary-context API), not the driver's primary context: that one is shared by the whole
 * server process, so one client's sticky error (an illegal address) or reset would reach every
 * other client. */

static int primary_slot(struct vg_sess *s, uint64_t dev)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].type == H_CTX && s->h[i].primary && (uint64_t)s->h[i].device == dev)
            return (int)i;
    return -1;
}

static int device_ok(const struct vg_sess *s, uint64_t dev)
{
    return dev < SESS_MAX_DEVICES && (int)dev < s->drv->device_count;
}

/* The device argument of a primary-context call (args: device, then nargs - 1 more) and the
 * slot of the session's primary context of that device (-1: none yet). */
static CUresult primary_arg(struct vg_sess *s, const struct vg_in *in, size_t nargs, uint64_t *dev, int *slot)
{
    if (in->nargs != nargs)
        return CUDA_ERROR_INVALID_VALUE;
    *dev = in->args[0];
    if (!device_ok(s, *dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *slot = primary_slot(s, *dev);
    return CUDA_SUCCESS;
}

/* In a primary-context handler: declares dev and i (primary_arg) or returns its error. */
#define PRIMARY_ARGS(n)                                         \
    uint64_t dev;                                               \
    int i;                                                      \
    do {                                                        \
        CUresult arc_ = primary_arg(s, in, (n), &dev, &i);      \
        if (arc_ != CUDA_SUCCESS)                               \
            return arc_;                                        \
    } while (0)

/* Creates a context the session owns; its slot, or -1 with *rc. */
static int ctx_create(struct vg_sess *s, unsigned flags, int dev, CUresult *rc)
{
    CUcontext c = NULL;
    *rc = s->drv->cuCtxCreate(&c, NULL, flags, (CUdevice)dev);
    s->drv->cuCtxSetCurrent(NULL);
    if (*rc != CUDA_SUCCESS)
        return -1;
    int i = sess_hnew(s, H_CTX, c, 0);
    if (i < 0) {
        s->drv->cuCtxDestroy(c);
        *rc = CUDA_ERROR_OUT_OF_MEMORY;
        return -1;
    }
    s->h[i].device = dev;
    s->h[i].ctx = (uint32_t)i + 1;
    s->h[i].owned = 1;
    return i;
}

VG_SERVER_CALL(cuDevicePrimaryCtxRetain)
{
    NEED(cuCtxCreate);
    PRIMARY_ARGS(1);
    if (i < 0) {
        CUresult rc;
        i = ctx_create(s, s->primary_flags[dev], (int)dev, &rc);
        if (i < 0)
            return rc;
        s->h[i].primary = 1;
    }
    s->h[i].primary_refs++;
    sess_out(res, sess_hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuDevicePrimaryCtxRelease_v2)
{
    ARGS(1);
    int i = primary_slot(s, in->args[0]);
    if (i < 0 || s->h[i].primary_refs <= 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (--s->h[i].primary_refs > 0)
        return CUDA_SUCCESS;
    /* The last reference: the context and everything in it go, as on a GPU. */
    sess_leave_ctx(s);
    CUresult rc = s->drv->cuCtxDestroy(s->h[i].real);
    sess_free_with_descendants(s, (uint32_t)i);
    return rc;
}

VG_SERVER_CALL(cuDevicePrimaryCtxReset_v2)
{
    PRIMARY_ARGS(1);
    if (i < 0)
        return CUDA_SUCCESS;
    /* A fresh context replaces the old one (clearing a sticky error); the handle stays. */
    sess_leave_ctx(s);
    CUresult rc = s->drv->cuCtxDestroy(s->h[i].real);
    sess_drop_ctx_children(s, (uint32_t)i + 1);
    CUcontext c = NULL;
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuCtxCreate(&c, NULL, s->primary_flags[dev], (CUdevice)dev);
    s->drv->cuCtxSetCurrent(NULL);
    if (rc != CUDA_SUCCESS) {
        sess_free_with_descendants(s, (uint32_t)i);
        return rc;
    }
    s->h[i].real = c;
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuDevicePrimaryCtxGetState)
{
    PRIMARY_ARGS(1);
    sess_out(res, s->primary_flags[dev]);
    sess_out(res, i >= 0 && s->h[i].primary_refs > 0);
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuDevicePrimaryCtxSetFlags_v2)
{
    PRIMARY_ARGS(2);
    (void)i;
    if (in->args[1] & ~(uint64_t)(CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX))
        return CUDA_ERROR_INVALID_VALUE;
    /* Takes effect when the context is next created, as flags of an active one cannot change. */
    s->primary_flags[dev] = (unsigned)in->args[1];
    return CUDA_SUCCESS;
}

/* ---- contexts ------------------------------------------------------------------------------ */

/* args: flags, device */
VG_SERVER_CALL(cuCtxCreate_v4)
{
    NEED(cuCtxCreate);
    ARGS(2);
    if (!device_ok(s, in->args[1]))
        return CUDA_ERROR_INVALID_DEVICE;
    CUresult rc;
    int i = ctx_create(s, (unsigned)in->args[0], (int)in->args[1], &rc);
    if (i < 0)
        return rc;
    sess_out(res, sess_hid(s, (uint32_t)i));
    return CUDA_SUCCESS;
}

/* args: context */
VG_SERVER_CALL(cuCtxDestroy_v2)
{
    NEED(cuCtxDestroy);
    ARGS(1);
    int i = sess_hget(s, in->args[0], H_CTX);
    if (i < 0 || s->h[i].primary || !s->h[i].owned)
        return CUDA_ERROR_INVALID_CONTEXT;
    sess_leave_ctx(s);
    CUresult rc = s->drv->cuCtxDestroy(s->h[i].real);
    if (rc == CUDA_SUCCESS)
        sess_free_with_descendants(s, (uint32_t)i);
    return rc;
}

/* ---- device memory -------------------------------------------------------------------------- */

/* args: device; outs: its memory as the session's tenant sees it (sess_mem_view). */
VG_SERVER_CALL(cuDeviceTotalMem_v2)
{
    NEED(cuDeviceTotalMem_v2);
    ARGS(1);
    size_t total = 0;
    CUresult rc = s->drv->cuDeviceTotalMem_v2(&total, (CUdevice)in->args[0]);
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t free_bytes = total;
    sess_mem_view(s, (int)in->args[0], &free_bytes, &total);
    sess_out(res, total);
    return CUDA_SUCCESS;
}

/* no args; outs: free and total bytes of the current context's device, as the tenant sees them. */
VG_SERVER_CALL(cuMemGetInfo_v2)
{
    NEED(cuMemGetInfo_v2);
    ARGS(0);
    size_t free_bytes = 0, total = 0;
    CUresult rc = s->drv->cuMemGetInfo_v2(&free_bytes, &total);
    if (rc != CUDA_SUCCESS)
        return rc;
    sess_mem_view(s, sess_cur_device(s), &free_bytes, &total);
    sess_out(res, free_bytes);
    sess_out(res, total);
    return CUDA_SUCCESS;
}

/* args: width in bytes, height, element size; outs: pointer, pitch. The pitch the driver picks
 * is only known afterwards: the charge is made for the widest pitch the driver may choose (the
 * width rounded up to 1 KiB per row, more than any GPU's pitch alignment) and the difference
 * refunded once the pitch is known. */
VG_SERVER_CALL(cuMemAllocPitch_v2)
{
    NEED(cuMemAllocPitch);
    ARGS(3);
    if (!s->cur_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t width = in->args[0], height = in->args[1];
    if (width > ((uint64_t)1 << 40) || height > ((uint64_t)1 << 40) || (height && width > ((uint64_t)1 << 42) / height))
        return CUDA_ERROR_INVALID_VALUE; /* no product (or padded pitch) near overflow */
    int dev = sess_cur_device(s);
    uint64_t bound = ((width + 1023) & ~(uint64_t)1023) * height;
    CUresult rc = sess_mem_charge(s, dev, bound);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUdeviceptr p = 0;
    size_t pitch = 0;
    rc = s->drv->cuMemAllocPitch(&p, &pitch, (size_t)width, (size_t)height, (unsigned)in->args[2]);
    uint64_t bytes = (uint64_t)pitch * height;
    if (rc == CUDA_SUCCESS && bytes > bound) {
        vg_driver_free(s, p);
        rc = CUDA_ERROR_OUT_OF_MEMORY; /* a pitch wider than any GPU's: refuse rather than under-charge */
    }
    if (rc != CUDA_SUCCESS) {
        sess_mem_refund(s, dev, bound);
        return rc;
    }
    sess_mem_refund(s, dev, bound - bytes);
    rc = sess_alloc_add(s, p, bytes, dev);
    if (rc != CUDA_SUCCESS) {
        vg_driver_free(s, p);
        sess_mem_refund(s, dev, bytes);
        return rc;
    }
    sess_out(res, p);
    sess_out(res, pitch);
    return CUDA_SUCCESS;
}

/* A stream argument: 0, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD or one of the session's. */
static CUresult stream_arg(struct vg_sess *s, uint64_t v, CUstream *st)
{
    int slot;
    return sess_harg(s, v, H_STREAM, 0, (void **)st, &slot);
}

/* Host-device copies are only checked here: the session process moves the bytes
 * (res->copy, sess_copy.h), from wherever they arrive and to wherever they go, possibly before
 * the whole payload has arrived (in->bulk may be NULL; in->bulk_len is the payload's length). */

/* args: dst, stream; bulk: the bytes. The blocking form ignores the stream but for checking it
 * (the per-thread stub sends CU_STREAM_PER_THREAD). */
static CUresult htod(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int async)
{
    ARGS(2);
    CUstream st;
    if (!sess_dev_ok(s, in->args[0], in->bulk_len))
        return CUDA_ERROR_INVALID_VALUE;
    if (stream_arg(s, in->args[1], &st) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_HANDLE;
    if (in->bulk_len)
        res->copy = (struct vg_copy){VG_COPY_HTOD, in->args[0], in->bulk_len, st, async};
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuMemcpyHtoD_v2)
{
    return htod(s, in, res, 0);
}

VG_SERVER_CALL(cuMemcpyHtoDAsync_v2)
{
    return htod(s, in, res, 1);
}

/* args: src, size, stream; reply bulk: the bytes. */
static CUresult dtoh(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int async)
{
    ARGS(3);
    uint64_t src = in->args[0], size = in->args[1];
    CUstream st;
    if (size > s->max_bulk || !sess_dev_ok(s, src, size))
        return CUDA_ERROR_INVALID_VALUE;
    if (stream_arg(s, in->args[2], &st) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_HANDLE;
    if (size)
        res->copy = (struct vg_copy){VG_COPY_DTOH, src, size, st, async};
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuMemcpyDtoH_v2)
{
    return dtoh(s, in, res, 0);
}

VG_SERVER_CALL(cuMemcpyDtoHAsync_v2)
{
    return dtoh(s, in, res, 1);
}

/* args: src, size; reply bulk: the bytes, once the context's work is done. The stub reads
 * managed memory this way when the program touches it (client/coherent.c); a reply call, so
 * a deferred failure stays for the program's own next synchronize. */
VG_SERVER_CALL(vgCohFetch)
{
    ARGS(2);
    if (!s->cur_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (s->drv->cuCtxSynchronize)
        s->drv->cuCtxSynchronize(); /* a sticky failure is still the context's: the copy reports it */
    uint64_t args[3] = {in->args[0], in->args[1], (uint64_t)(uintptr_t)CU_STREAM_LEGACY};
    struct vg_in copy = *in;
    copy.args = args;
    copy.nargs = 3;
    return dtoh(s, &copy, res, 0);
}

/* args: attribute, pointer; outs: the value (a context attribute: the context's id). Only the
 * attributes whose value fits a uint64_t and means the same to the client are answered. */
VG_SERVER_CALL(cuPointerGetAttribute)
{
    NEED(cuPointerGetAttribute);
    ARGS(2);
    CUpointer_attribute attr = (CUpointer_attribute)in->args[0];
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        break;
    default:
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!sess_dev_ok(s, in->args[1], 0))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t v = 0;
    CUresult rc = s->drv->cuPointerGetAttribute(&v, attr, in->args[1]);
    if (rc == CUDA_SUCCESS && attr == CU_POINTER_ATTRIBUTE_CONTEXT) {
        int ci = sess_hfind_real(s, H_CTX, (void *)(uintptr_t)v);
        v = ci >= 0 ? sess_hid(s, (uint32_t)ci) : 0;
    } else if (rc == CUDA_SUCCESS && attr == CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE) {
        v = sess_hout_get(s, H_POOL, (void *)(uintptr_t)v, NULL, 0);
    }
    sess_out(res, v);
    return rc;
}

/* ---- modules and libraries -------------------------------------------------------------------- */

/* A module image from the wire: the driver API takes no length, so the image's own headers must
 * place its end inside what was received. A fatbin wrapper (a pointer into the client's memory)
 * is meaningless here. The VG_BULK_PAD zeros keep the header reads inside the buffer. */
static int image_ok(const uint8_t *bulk, uint64_t bulk_len)
{
    const void *data = NULL;
    size_t size = 0;
    if (bulk_len < 4)
        return 0;
    /* vg_image_locate would follow a wrapper's pointer: never with one from the wire. */
    uint32_t magic = (uint32_t)bulk[0] | (uint32_t)bulk[1] << 8 | (uint32_t)bulk[2] << 16 | (uint32_t)bulk[3] << 24;
    if (magic == 0x466243b1u)
        return 0;
    enum vg_image_kind kind = vg_image_locate(bulk, &data, &size);
    if (kind == VG_IMAGE_UNKNOWN || data != (const void *)bulk)
        return 0;
    /* PTX: the text plus its NUL, which may be the first pad byte. */
    return kind == VG_IMAGE_PTX ? size <= bulk_len + 1 : size <= bulk_len;
}

/* Charges the device memory an image's globals will hold in the current context's device;
 * *bytes gets what was charged (for the module's or library's record). */
static CUresult charge_image(struct vg_sess *s, const struct vg_in *in, uint64_t *bytes, int *dev)
{
    *bytes = vg_image_global_bytes(in->bulk, (size_t)in->bulk_len);
    *dev = sess_cur_device(s);
    return sess_mem_charge(s, *dev, *bytes);
}

/* bulk: the image (PTX with its NUL, fatbin or ELF); outs: the module, or with lib the library
 * (no options: JIT options tune a compilation on the server or report into client buffers, and
 * library options name client memory). The image's size is charged to the tenant first and
 * refunded if the load fails. */
static CUresult load_image(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int lib)
{
    if (!image_ok(in->bulk, in->bulk_len))
        return CUDA_ERROR_INVALID_IMAGE;
    uint64_t bytes;
    int dev;
    CUresult rc = charge_image(s, in, &bytes, &dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    CUmodule m = NULL;
    CUlibrary l = NULL;
    rc = lib ? s->drv->cuLibraryLoadData(&l, in->bulk, NULL, NULL, 0, NULL, NULL, 0)
             : s->drv->cuModuleLoadData(&m, in->bulk);
    if (rc != CUDA_SUCCESS)
        goto fail;
    uint32_t ctx = s->cur_ctx;
    if (lib)
        s->cur_ctx = 0; /* libraries are context-independent: they outlive any one context */
    uint64_t id = lib ? sess_hout_new(s, H_LIB, l, bytes, dev) : sess_hout_new(s, H_MOD, m, bytes, dev);
    s->cur_ctx = ctx;
    if (!id) {
        if (lib)
            s->drv->cuLibraryUnload(l);
        else
            s->drv->cuModuleUnload(m);
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail;
    }
    sess_out(res, id);
    return CUDA_SUCCESS;
fail:
    sess_mem_refund(s, dev, bytes);
    return rc;
}

VG_SERVER_CALL(cuModuleLoadData)
{
    NEED(cuModuleLoadData);
    if (!s->cur_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    return load_image(s, in, res, 0);
}

VG_SERVER_CALL(cuLibraryLoadData)
{
    NEED(cuLibraryLoadData);
    return load_image(s, in, res, 1);
}

/* args: function or kernel; reply bulk: its name (no NUL). */
static CUresult get_name(struct vg_sess *s, const struct vg_in *in, struct vg_result *res, int type)
{
    ARGS(1);
    int i = sess_hget(s, in->args[0], type);
    if (i < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    const char *name = NULL;
    CUresult rc;
    if (type == H_FUNC) {
        NEED(cuFuncGetName);
        rc = s->drv->cuFuncGetName(&name, s->h[i].real);
    } else {
        NEED(cuKernelGetName);
        rc = s->drv->cuKernelGetName(&name, s->h[i].real);
    }
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t len = name ? strnlen(name, 65536) : 0;
    uint8_t *b = vg_reply_bulk(res, len);
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(b, name, len);
    return CUDA_SUCCESS;
}

VG_SERVER_CALL(cuFuncGetName)
{
    return get_name(s, in, res, H_FUNC);
}

VG_SERVER_CALL(cuKernelGetName)
{
    return get_name(s, in, res, H_KERN);
}

/* ---- kernel parameters and launches ---------------------------------------------------------- */

/* args: function or kernel; outs: count, then offset and size of each parameter. */
VG_SERVER_CALL(vgFuncGetParamLayout)
{
    ARGS(1);
    void *real;
    int i;
    CUresult rc = sess_harg(s, in->args[0], H_FUNC, 0, &real, &i);
    if (rc == CUDA_SUCCESS)
        rc = sess_func_layout(s, i);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct handle *e = &s->h[i];
    uint64_t *o = malloc((1 + 2 * (size_t)e->nparams) * sizeof *o);
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    o[0] = (uint64_t)e->nparams;
    for (int k = 0; k < e->nparams; k++) {
        o[1 + 2 * k] = e->param_off[k];
        o[2 + 2 * k] = e->param_size[k];
    }
    if (res->outs != res->outs_inline)
        free(res->outs);
    res->outs = o;
    res->n_outs = 1 + 2 * (size_t)e->nparams;
    return CUDA_SUCCESS;
}

/* A launch's function (a library kernel goes as itself, cast to CUfunction, as the runtime
 * does: the driver's answers, e.g. to a bad configuration, differ from a module function's) and
 * kernelParams rebuilt over the parameter buffer. */
static CUresult launch_args(struct vg_sess *s, uint64_t fid, const uint8_t *buf, uint64_t len, struct vg_tmp *t,
                            CUfunction *f, void ***params)
{
    int i;
    CUresult rc = sess_harg(s, fid, H_FUNC, 0, (void **)f, &i);
    if (rc == CUDA_SUCCESS)
        rc = sess_params(s, i, buf, len, t, params);
    return rc;
}

/* args: function, grid x y z, block x y z, shared bytes, stream; bulk: the parameter buffer laid
 * out as cuFuncGetParamInfo says. */
static CUresult launch(struct vg_sess *s, const struct vg_in *in, int cooperative)
{
    ARGS(9);
    const uint64_t *a = in->args;
    /* The dimensions are the driver's to judge (its answer differs between functions and
     * kernels); only values that would not survive the cast to unsigned stop here. */
    for (int k = 1; k < 8; k++)
        if (a[k] > UINT32_MAX)
            return CUDA_ERROR_INVALID_VALUE;
    CUstream st;
    if (stream_arg(s, a[8], &st) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vg_tmp t;
    vg_tmp_init(&t);
    CUfunction f;
    void **params;
    const struct vg_drv *d = s->drv;
    CUresult rc = launch_args(s, a[0], in->bulk, in->bulk_len, &t, &f, &params);
    if (rc == CUDA_SUCCESS && cooperative)
        rc = d->cuLaunchCooperativeKernel
                 ? d->cuLaunchCooperativeKernel(f, (unsigned)a[1], (unsigned)a[2], (unsigned)a[3], (unsigned)a[4],
                                                (unsigned)a[5], (unsigned)a[6], (unsigned)a[7], st, params)
                 : CUDA_ERROR_NOT_SUPPORTED;
    else if (rc == CUDA_SUCCESS)
        rc = d->cuLaunchKernel(f, (unsigned)a[1], (unsigned)a[2], (unsigned)a[3], (unsigned)a[4], (unsigned)a[5],
                               (unsigned)a[6], (unsigned)a[7], st, params, NULL);
    vg_tmp_free(&t);
    return rc;
}

VG_SERVER_CALL(cuLaunchKernel)
{
    return launch(s, in, 0);
}

VG_SERVER_CALL(cuLaunchCooperativeKernel)
{
    return launch(s, in, 1);
}

/* args: function, stream (the configuration's, for the scheduler: the two must agree); bulk:
 * the configuration (server/marshal.c), u64 length, parameter buffer. */
VG_SERVER_CALL(cuLaunchKernelEx)
{
    NEED(cuLaunchKernelEx);
    ARGS(2);
    struct vg_tmp t;
    struct vg_rd rd;
    vg_tmp_init(&t);
    vg_rd_init(&rd, in->bulk, in->bulk_len);
    CUlaunchConfig cfg;
    CUfunction f;
    void **params = NULL;
    uint64_t len;
    CUstream st;
    CUresult rc = stream_arg(s, in->args[1], &st);
    if (rc == CUDA_SUCCESS)
        rc = vg_mdec_CUlaunchConfig(s, &rd, &t, &cfg);
    if (rc == CUDA_SUCCESS && (cfg.hStream != st || vg_rd_u64(&rd, &len) < 0 || len != rd.len - rd.pos))
        rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS)
        rc = launch_args(s, in->args[0], vg_rd_take(&rd, len), len, &t, &f, &params);
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuLaunchKernelEx(&cfg, f, params, NULL);
    vg_tmp_free(&t);
    return rc;
}

/* Generated stub layout: args stream, count, flags; bulk: the operations (addresses checked). */
VG_SERVER_CALL(cuStreamBatchMemOp_v2)
{
    NEED(cuStreamBatchMemOp);
    ARGS(3);
    CUstream st;
    uint64_t n = in->args[1];
    struct vg_tmp t;
    vg_tmp_init(&t);
    CUstreamBatchMemOpParams *ops = NULL;
    CUresult rc = vg_stream_bulk_array(s, in, 0, &st, n, 4096, sizeof *ops, &t, (void **)&ops);
    if (rc == CUDA_SUCCESS)
        rc = sess_check_memops(s, ops, n);
    if (rc == CUDA_SUCCESS)
        rc = s->drv->cuStreamBatchMemOp(st, (unsigned)n, ops, (unsigned)in->args[2]);
    vg_tmp_free(&t);
    return rc;
}

/* ---- the JIT linker ------------------------------------------------------------------------------
 * Options whose values are client memory (log buffers and their sizes, symbol tables) stay in
 * the stub; the server links with log buffers of its own, kept with the link state, and returns
 * the error log in Reply.str when a step fails. */

#define LINK_LOG 4096
#define LINK_MAX_OPTIONS 16
struct link_logs {
    char info[LINK_LOG];
    char error[LINK_LOG];
};

/* args: count, then option and value pairs (scalar options only); outs: the link state. */
VG_SERVER_CALL(cuLinkCreate_v2)
{
    NEED(cuLinkCreate);
    if (in->nargs < 1 || in->args[0] > LINK_MAX_OPTIONS || in->nargs != 1 + 2 * in->args[0])
        return CUDA_ERROR_INVALID_VALUE;
    unsigned n = (unsigned)in->args[0];
    CUjit_option opts[LINK_MAX_OPTIONS + 4];
    void *vals[LINK_MAX_OPTIONS + 4];
    for (unsigned i = 0; i < n; i++) {
        CUjit_option o = (CUjit_option)in->args[1 + 2 * i];
        switch (o) {
        case CU_JIT_INFO_LOG_BUFFER:
        case CU_JIT_ERROR_LOG_BUFFER:
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
        case CU_JIT_GLOBAL_SYMBOL_NAMES:
        case CU_JIT_GLOBAL_SYMBOL_ADDRESSES:
            return CUDA_ERROR_INVALID_VALUE; /* client memory: the stub keeps these */
        default:
            break;
        }
        opts[i] = o;
        vals[i] = (void *)(uintptr_t)in->args[2 + 2 * i];
    }
    struct link_logs *logs = calloc(1, sizeof *logs);
    if (!logs)
        return CUDA_ERROR_OUT_OF_MEMORY;
    opts[n] = CU_JIT_INFO_LOG_BUFFER, vals[n++] = logs->info;
    opts[n] = CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, vals[n++] = (void *)(uintptr_t)(LINK_LOG - 1);
    opts[n] = CU_JIT_ERROR_LOG_BUFFER, vals[n++] = logs->error;
    opts[n] = CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, vals[n++] = (void *)(uintptr_t)(LINK_LOG - 1);
    CUlinkState st = NULL;
    CUresult rc = s->drv->cuLinkCreate(n, opts, vals, &st);
    if (rc != CUDA_SUCCESS) {
        free(logs);
        return rc;
    }
    uint64_t id = sess_hout_new(s, H_LINK, st, 0, 0);
    if (!id) {
        s->drv->cuLinkDestroy(st);
        free(logs);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->h[sess_hfind_real(s, H_LINK, st)].extra = logs;
    sess_out(res, id);
    return CUDA_SUCCESS;
}

static CUresult link_arg(struct vg_sess *s, uint64_t v, CUlinkState *st, struct link_logs **logs)
{
    int slot;
    CUresult rc = sess_harg(s, v, H_LINK, 0, (void **)st, &slot);
    if (rc == CUDA_SUCCESS)
        *logs = s->h[slot].extra;
    return rc;
}

/* The start of the error log (Reply.str holds VG_STR_MAX bytes). */
static void link_error(struct vg_result *res, const struct link_logs *logs)
{
    if (logs) {
        size_t n = strnlen(logs->error, sizeof res->str - 1);
        memcpy(res->str, logs->error, n);
        res->str[n] = 0;
    }
}

/* args: link state, input type; name = the input's name; bulk: the input (PTX with its NUL,
 * cubin, fatbin, object or library bytes). */
VG_SERVER_CALL(cuLinkAddData_v2)
{
    NEED(cuLinkAddData);
    ARGS(2);
    CUlinkState st;
    struct link_logs *logs;
    CUresult rc = link_arg(s, in->args[0], &st, &logs);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (in->bulk_len == 0)
        return CUDA_ERROR_INVALID_VALUE;
    /* The driver may read a PTX input up to its NUL: the pad after the bulk supplies one. */
    rc = s->drv->cuLinkAddData(st, (CUjitInputType)in->args[1], (void *)in->bulk, (size_t)in->bulk_len, in->name, 0,
                               NULL, NULL);
    if (rc != CUDA_SUCCESS)
        link_error(res, logs);
    return rc;
}

/* args: link state; reply bulk: the linked image (the stub keeps its copy until cuLinkDestroy). */
VG_SERVER_CALL(cuLinkComplete)
{
    NEED(cuLinkComplete);
    ARGS(1);
    CUlinkState st;
    struct link_logs *logs;
    CUresult rc = link_arg(s, in->args[0], &st, &logs);
    if (rc != CUDA_SUCCESS)
        return rc;
    void *cubin = NULL;
    size_t size = 0;
    rc = s->drv->cuLinkComplete(st, &cubin, &size);
    if (rc != CUDA_SUCCESS) {
        link_error(res, logs);
        return rc;
    }
    if (!cubin || size > s->max_bulk)
        return CUDA_ERROR_INVALID_IMAGE;
    uint8_t *b = vg_reply_bulk(res, size);
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(b, cubin, size);
    return CUDA_SUCCESS;
}
