/* What each forwarded call does on the server: argument checks against the session's handles
 * and memory, then the driver call. The argument layout of each call is in protocol/README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "fatbin.h"
#include "session_priv.h"

/* A module image from the wire: the driver API takes no length, so the image's own headers must
 * place its end inside what was received. A fatbin wrapper (a pointer into the client's memory)
 * is meaningless here. The VG_BULK_PAD zeros keep the header reads inside the buffer. */
static int sess_image_ok(const uint8_t *bulk, uint64_t bulk_len)
{
    const void *data = NULL;
    size_t size = 0;
    if (bulk_len == 0)
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

#define NEED(fn)                                \
    do {                                        \
        if (!d->fn)                             \
            return CUDA_ERROR_NOT_SUPPORTED;    \
    } while (0)
#define ARGS(n)                                 \
    do {                                        \
        if (c->n_args < (n))                    \
            return CUDA_ERROR_INVALID_VALUE;    \
    } while (0)

/* Records that child slot was obtained from parent1 (slot + 1, 0 = none). */
static void set_parent(struct vg_sess *s, uint32_t child, uint32_t parent1)
{
    s->h[child].parent = parent1;
    s->h[child].parent_gen = parent1 ? s->h[parent1 - 1].gen : 0;
}

/* Frees a module's or library's handle and those of everything obtained from it (its kernels,
 * functions, its module's functions): the driver objects are gone with it. */
static void free_with_descendants(struct vg_sess *s, uint32_t slot)
{
    sess_hfree(s, slot);
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t k = 0; k < s->nh; k++) {
            uint32_t p = s->h[k].parent;
            if (s->h[k].live && p && (!s->h[p - 1].live || s->h[p - 1].gen != s->h[k].parent_gen)) {
                sess_hfree(s, k);
                changed = 1;
            }
        }
    }
}

static int sess_primary_slot(struct vg_sess *s, CUdevice dev)
{
    for (uint32_t i = 0; i < s->nh; i++)
        if (s->h[i].live && s->h[i].type == H_CTX && s->h[i].primary && s->h[i].device == dev)
            return (int)i;
    return -1;
}

CUresult vg_sess_run(struct vg_sess *s, const Vgpu__Call *c, const uint8_t *bulk, uint64_t bulk_len,
                    struct vg_result *res, uint32_t ctx1)
{
    const struct vg_drv *d = s->drv;
    const uint64_t *a = c->args;
    CUresult rc;
    CUstream st;
    int i;

    switch (c->call) {
    case VG_CALL_INIT:
        ARGS(1);
        return d->cuInit((unsigned)a[0]);
    case VG_CALL_DRIVER_GET_VERSION: {
        NEED(cuDriverGetVersion);
        int v = 0;
        rc = d->cuDriverGetVersion(&v);
        sess_out(res, (uint64_t)v);
        return rc;
    }
    case VG_CALL_DEVICE_GET: {
        NEED(cuDeviceGet);
        ARGS(1);
        CUdevice dev = 0;
        rc = d->cuDeviceGet(&dev, (int)a[0]);
        sess_out(res, (uint64_t)(int64_t)dev);
        return rc;
    }
    case VG_CALL_DEVICE_GET_COUNT: {
        int n = 0;
        rc = d->cuDeviceGetCount(&n);
        sess_out(res, (uint64_t)n);
        return rc;
    }
    case VG_CALL_DEVICE_GET_NAME:
        NEED(cuDeviceGetName);
        ARGS(1);
        return d->cuDeviceGetName(res->str, sizeof res->str - 1, (CUdevice)a[0]);
    case VG_CALL_DEVICE_GET_ATTRIBUTE: {
        NEED(cuDeviceGetAttribute);
        ARGS(2);
        int v = 0;
        rc = d->cuDeviceGetAttribute(&v, (CUdevice_attribute)a[0], (CUdevice)a[1]);
        sess_out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_DEVICE_TOTAL_MEM: {
        NEED(cuDeviceTotalMem);
        ARGS(1);
        size_t v = 0;
        rc = d->cuDeviceTotalMem(&v, (CUdevice)a[0]);
        if (rc == CUDA_SUCCESS && s->acct.view) {
            size_t unused = v;
            s->acct.view(s->acct.arg, (int)a[0], &unused, &v);
        }
        sess_out(res, v);
        return rc;
    }
    case VG_CALL_DEVICE_GET_UUID: {
        NEED(cuDeviceGetUuid);
        ARGS(1);
        CUuuid u;
        memset(&u, 0, sizeof u);
        rc = d->cuDeviceGetUuid(&u, (CUdevice)a[0]);
        uint64_t w[2];
        memcpy(w, u.bytes, sizeof w);
        sess_out(res, w[0]);
        sess_out(res, w[1]);
        return rc;
    }
    /* Each session gets a "primary" context of its own per device (a created context behind the
     * primary-context API), not the driver's primary context: that one is shared by the whole
     * server process, so one client's sticky error (an illegal address) or reset would reach
     * every other client. */
    case VG_CALL_PRIMARY_CTX_RETAIN: {
        NEED(cuCtxCreate);
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = sess_primary_slot(s, (CUdevice)a[0]);
        if (i < 0) {
            CUcontext pc = NULL;
            rc = d->cuCtxCreate(&pc, NULL, s->primary_flags[a[0]], (CUdevice)a[0]);
            if (rc != CUDA_SUCCESS)
                return rc;
            d->cuCtxSetCurrent(NULL);
            i = sess_hnew(s, H_CTX, pc, 0);
            if (i < 0) {
                d->cuCtxDestroy(pc);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            s->h[i].primary = 1;
            s->h[i].device = (int)a[0];
            s->h[i].ctx = (uint32_t)i + 1;
        }
        s->h[i].primary_refs++;
        sess_out(res, sess_hid(s, (uint32_t)i));
        return CUDA_SUCCESS;
    }
    case VG_CALL_PRIMARY_CTX_RELEASE:
        ARGS(1);
        i = sess_primary_slot(s, (CUdevice)a[0]);
        if (i < 0 || s->h[i].primary_refs <= 0)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (--s->h[i].primary_refs > 0)
            return CUDA_SUCCESS;
        /* The last reference: the context and everything in it go, as on a GPU. */
        d->cuCtxSetCurrent(NULL);
        rc = d->cuCtxDestroy(s->h[i].real);
        sess_drop_ctx_children(s, (uint32_t)i + 1);
        sess_hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_PRIMARY_CTX_RESET:
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = sess_primary_slot(s, (CUdevice)a[0]);
        if (i >= 0) {
            /* A fresh context replaces the old one (clearing a sticky error); the handle stays. */
            CUcontext pc = NULL;
            d->cuCtxSetCurrent(NULL);
            rc = d->cuCtxDestroy(s->h[i].real);
            sess_drop_ctx_children(s, (uint32_t)i + 1);
            if (rc == CUDA_SUCCESS)
                rc = d->cuCtxCreate(&pc, NULL, s->primary_flags[a[0]], (CUdevice)a[0]);
            d->cuCtxSetCurrent(NULL);
            if (rc != CUDA_SUCCESS) {
                sess_hfree(s, (uint32_t)i);
                return rc;
            }
            s->h[i].real = pc;
        }
        return CUDA_SUCCESS;
    case VG_CALL_PRIMARY_CTX_GET_STATE:
        ARGS(1);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        i = sess_primary_slot(s, (CUdevice)a[0]);
        sess_out(res, s->primary_flags[a[0]]);
        sess_out(res, i >= 0 && s->h[i].primary_refs > 0);
        return CUDA_SUCCESS;
    case VG_CALL_PRIMARY_CTX_SET_FLAGS:
        ARGS(2);
        if (a[0] >= SESS_MAX_DEVICES || (int)a[0] >= d->device_count)
            return CUDA_ERROR_INVALID_DEVICE;
        if (a[1] & ~(uint64_t)(CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX))
            return CUDA_ERROR_INVALID_VALUE;
        /* Takes effect when the context is next created, as flags of an active one cannot
         * change here. */
        s->primary_flags[a[0]] = (unsigned)a[1];
        return CUDA_SUCCESS;
    case VG_CALL_CTX_CREATE: {
        NEED(cuCtxCreate);
        ARGS(2);
        CUcontext nc = NULL;
        rc = d->cuCtxCreate(&nc, NULL, (unsigned)a[0], (CUdevice)a[1]);
        if (rc != CUDA_SUCCESS)
            return rc;
        i = sess_hnew(s, H_CTX, nc, 0);
        if (i < 0) {
            d->cuCtxDestroy(nc);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        s->h[i].device = (int)a[1];
        s->h[i].ctx = (uint32_t)i + 1;
        sess_out(res, sess_hid(s, (uint32_t)i));
        return CUDA_SUCCESS;
    }
    case VG_CALL_CTX_DESTROY:
        NEED(cuCtxDestroy);
        ARGS(1);
        i = sess_hget(s, a[0], H_CTX);
        if (i < 0 || s->h[i].primary)
            return CUDA_ERROR_INVALID_CONTEXT;
        d->cuCtxSetCurrent(NULL);
        rc = d->cuCtxDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS) {
            sess_drop_ctx_children(s, (uint32_t)i + 1);
            sess_hfree(s, (uint32_t)i);
        }
        return rc;
    case VG_CALL_CTX_GET_DEVICE:
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        sess_out(res, (uint64_t)(int64_t)s->h[ctx1 - 1].device);
        return CUDA_SUCCESS;
    case VG_CALL_CTX_SYNCHRONIZE:
        NEED(cuCtxSynchronize);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        return d->cuCtxSynchronize();
    case VG_CALL_CTX_GET_API_VERSION: {
        NEED(cuCtxGetApiVersion);
        ARGS(1);
        unsigned v = 0;
        CUcontext cc = NULL;
        if (a[0]) {
            i = sess_hget(s, a[0], H_CTX);
            if (i < 0)
                return CUDA_ERROR_INVALID_CONTEXT;
            cc = s->h[i].real;
        }
        rc = d->cuCtxGetApiVersion(cc, &v);
        sess_out(res, v);
        return rc;
    }
    case VG_CALL_CTX_GET_FLAGS: {
        NEED(cuCtxGetFlags);
        unsigned v = 0;
        rc = d->cuCtxGetFlags(&v);
        sess_out(res, v);
        return rc;
    }
    case VG_CALL_CTX_SET_LIMIT:
        NEED(cuCtxSetLimit);
        ARGS(2);
        return d->cuCtxSetLimit((CUlimit)a[0], (size_t)a[1]);
    case VG_CALL_CTX_GET_LIMIT: {
        NEED(cuCtxGetLimit);
        ARGS(1);
        size_t v = 0;
        rc = d->cuCtxGetLimit(&v, (CUlimit)a[0]);
        sess_out(res, v);
        return rc;
    }
    case VG_CALL_CTX_GET_STREAM_PRIORITY_RANGE: {
        NEED(cuCtxGetStreamPriorityRange);
        int lo = 0, hi = 0;
        rc = d->cuCtxGetStreamPriorityRange(&lo, &hi);
        sess_out(res, (uint64_t)(int64_t)lo);
        sess_out(res, (uint64_t)(int64_t)hi);
        return rc;
    }
    case VG_CALL_MEM_ALLOC: {
        NEED(cuMemAlloc);
        ARGS(1);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUdeviceptr p = 0;
        int dev = sess_ctx_device(s, ctx1);
        rc = sess_mem_charge(s, dev, a[0]);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = d->cuMemAlloc(&p, (size_t)a[0]);
        if (rc == CUDA_SUCCESS && sess_alloc_add(s, p, (size_t)a[0], ctx1, dev, a[0]) < 0) {
            d->cuMemFree(p);
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (rc != CUDA_SUCCESS) {
            sess_mem_refund(s, dev, a[0]);
            return rc;
        }
        sess_out(res, p);
        return CUDA_SUCCESS;
    }
    case VG_CALL_MEM_FREE:
        NEED(cuMemFree);
        ARGS(1);
        if (a[0] == 0)
            return CUDA_SUCCESS;
        for (uint32_t k = 0; k < s->nr; k++) {
            if (s->r[k].base == a[0] && s->r[k].owned) {
                rc = d->cuMemFree(a[0]);
                if (rc == CUDA_SUCCESS)
                    sess_range_del(s, k);
                return rc;
            }
        }
        return CUDA_ERROR_INVALID_VALUE;
    case VG_CALL_MEM_GET_INFO: {
        NEED(cuMemGetInfo);
        size_t f = 0, t = 0;
        rc = d->cuMemGetInfo(&f, &t);
        if (rc == CUDA_SUCCESS && s->acct.view)
            s->acct.view(s->acct.arg, sess_ctx_device(s, ctx1), &f, &t);
        sess_out(res, f);
        sess_out(res, t);
        return rc;
    }
    case VG_CALL_MEM_GET_ADDRESS_RANGE: {
        NEED(cuMemGetAddressRange);
        ARGS(1);
        if (!sess_range_ok(s, a[0], 0))
            return CUDA_ERROR_NOT_FOUND;
        CUdeviceptr base = 0;
        size_t size = 0;
        rc = d->cuMemGetAddressRange(&base, &size, a[0]);
        sess_out(res, base);
        sess_out(res, size);
        return rc;
    }
    case VG_CALL_MEMSET: {
        /* args: dst, value, element size (1, 2, 4), count, stream */
        ARGS(5);
        uint64_t esz = a[2], n = a[3];
        if ((esz != 1 && esz != 2 && esz != 4) || n > (UINT64_MAX / 4))
            return CUDA_ERROR_INVALID_VALUE;
        if (!sess_range_ok(s, a[0], n * esz))
            return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[4], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (esz == 1) {
            NEED(cuMemsetD8Async);
            return d->cuMemsetD8Async(a[0], (unsigned char)a[1], (size_t)n, st);
        }
        if (esz == 2) {
            NEED(cuMemsetD16Async);
            return d->cuMemsetD16Async(a[0], (unsigned short)a[1], (size_t)n, st);
        }
        NEED(cuMemsetD32Async);
        return d->cuMemsetD32Async(a[0], (unsigned)a[1], (size_t)n, st);
    }
    case VG_CALL_MEMCPY_HTOD:
    case VG_CALL_MEMCPY_HTOD_ASYNC:
        /* args: dst, stream; bulk: the bytes. Checked here, run by the caller (res->copy). */
        ARGS(2);
        if (!sess_range_ok(s, a[0], bulk_len))
            return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[1], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (bulk_len)
            res->copy = (struct vg_copy){VG_COPY_HTOD, a[0], bulk_len, st, c->call == VG_CALL_MEMCPY_HTOD_ASYNC};
        return CUDA_SUCCESS;
    case VG_CALL_MEMCPY_DTOH:
        /* args: src, size, stream, async; reply bulk: the bytes, read back by the caller. */
        ARGS(4);
        if (a[1] > s->max_bulk || !sess_range_ok(s, a[0], a[1]))
            return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[2], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (a[1])
            res->copy = (struct vg_copy){VG_COPY_DTOH, a[0], a[1], st, a[3] != 0};
        return CUDA_SUCCESS;
    case VG_CALL_MEMCPY_DTOD:
    case VG_CALL_MEMCPY_DTOD_ASYNC:
        /* args: dst, src, size, stream */
        ARGS(4);
        if (!sess_range_ok(s, a[0], a[2]) || !sess_range_ok(s, a[1], a[2]))
            return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[3], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_MEMCPY_DTOD_ASYNC && d->cuMemcpyDtoDAsync)
            return d->cuMemcpyDtoDAsync(a[0], a[1], (size_t)a[2], st);
        NEED(cuMemcpyDtoD);
        return d->cuMemcpyDtoD(a[0], a[1], (size_t)a[2]);
    case VG_CALL_MODULE_LOAD_DATA: {
        NEED(cuModuleLoadData);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (!sess_image_ok(bulk, bulk_len))
            return CUDA_ERROR_INVALID_IMAGE;
        CUmodule m = NULL;
        int dev = sess_ctx_device(s, ctx1);
        uint64_t globals = sess_image_global_bytes(bulk, bulk_len);
        rc = sess_mem_charge(s, dev, globals);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = d->cuModuleLoadData(&m, bulk);
        if (rc == CUDA_SUCCESS) {
            rc = sess_new_handle_out(s, res, H_MOD, m, ctx1);
            if (rc != CUDA_SUCCESS)
                d->cuModuleUnload(m);
        }
        if (rc != CUDA_SUCCESS) {
            sess_mem_refund(s, dev, globals);
            return rc;
        }
        struct handle *e = &s->h[(uint32_t)res->outs[0] - 1];
        e->owned = 1;
        e->charged = globals; /* refunded when the handle goes (unload, context destroy) */
        e->charged_dev = dev;
        return CUDA_SUCCESS;
    }
    case VG_CALL_MODULE_UNLOAD:
        NEED(cuModuleUnload);
        ARGS(1);
        i = sess_hget(s, a[0], H_MOD);
        if (i < 0 || !s->h[i].owned)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuModuleUnload(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            free_with_descendants(s, (uint32_t)i);
        return rc;
    case VG_CALL_MODULE_GET_FUNCTION: {
        NEED(cuModuleGetFunction);
        ARGS(1);
        i = sess_hget(s, a[0], H_MOD);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUfunction f = NULL;
        rc = d->cuModuleGetFunction(&f, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        int fi = sess_hfind_real(s, H_FUNC, f);
        if (fi >= 0) {
            sess_out(res, sess_hid(s, (uint32_t)fi));
            return CUDA_SUCCESS;
        }
        rc = sess_new_handle_out(s, res, H_FUNC, f, s->h[i].ctx);
        if (rc == CUDA_SUCCESS)
            set_parent(s, (uint32_t)res->outs[0] - 1, (uint32_t)i + 1);
        return rc;
    }
    case VG_CALL_MODULE_GET_GLOBAL: {
        NEED(cuModuleGetGlobal);
        ARGS(1);
        i = sess_hget(s, a[0], H_MOD);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUdeviceptr p = 0;
        size_t size = 0;
        rc = d->cuModuleGetGlobal(&p, &size, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (!sess_range_ok(s, p, size) && sess_range_add(s, p, size, s->h[i].ctx, 0) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        sess_out(res, p);
        sess_out(res, size);
        return CUDA_SUCCESS;
    }
    case VG_CALL_LIBRARY_LOAD_DATA: {
        NEED(cuLibraryLoadData);
        if (!sess_image_ok(bulk, bulk_len))
            return CUDA_ERROR_INVALID_IMAGE;
        CUlibrary l = NULL;
        int dev = sess_ctx_device(s, ctx1);
        uint64_t globals = sess_image_global_bytes(bulk, bulk_len);
        rc = sess_mem_charge(s, dev, globals);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = d->cuLibraryLoadData(&l, bulk, NULL, NULL, 0, NULL, NULL, 0);
        if (rc == CUDA_SUCCESS) {
            rc = sess_new_handle_out(s, res, H_LIB, l, 0);
            if (rc != CUDA_SUCCESS)
                d->cuLibraryUnload(l);
        }
        if (rc != CUDA_SUCCESS) {
            sess_mem_refund(s, dev, globals);
            return rc;
        }
        struct handle *e = &s->h[(uint32_t)res->outs[0] - 1];
        e->charged = globals;
        e->charged_dev = dev;
        return CUDA_SUCCESS;
    }
    case VG_CALL_LIBRARY_GET_GLOBAL: {
        NEED(cuLibraryGetGlobal);
        ARGS(1);
        i = sess_hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUdeviceptr p = 0;
        size_t size = 0;
        rc = d->cuLibraryGetGlobal(&p, &size, s->h[i].real, c->name);
        if (rc != CUDA_SUCCESS)
            return rc;
        if (!sess_range_ok(s, p, size) && sess_range_add(s, p, size, ctx1, 0) < 0)
            return CUDA_ERROR_OUT_OF_MEMORY;
        sess_out(res, p);
        sess_out(res, size);
        return CUDA_SUCCESS;
    }
    case VG_CALL_KERNEL_GET_ATTRIBUTE: {
        /* args: attribute, kernel, device */
        NEED(cuKernelGetAttribute);
        ARGS(3);
        i = sess_hget(s, a[1], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        int v = 0;
        rc = d->cuKernelGetAttribute(&v, (CUfunction_attribute)a[0], s->h[i].real, (CUdevice)a[2]);
        sess_out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_KERNEL_SET_ATTRIBUTE: {
        /* args: attribute, value, kernel, device */
        NEED(cuKernelSetAttribute);
        ARGS(4);
        i = sess_hget(s, a[2], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        return d->cuKernelSetAttribute((CUfunction_attribute)a[0], (int)a[1], s->h[i].real, (CUdevice)a[3]);
    }
    case VG_CALL_DEVICE_GET_PCI_BUS_ID:
        NEED(cuDeviceGetPCIBusId);
        ARGS(1);
        return d->cuDeviceGetPCIBusId(res->str, (int)sizeof res->str - 1, (CUdevice)a[0]);
    case VG_CALL_STREAM_GET_CTX:
        /* The context a created stream belongs to; the default streams belong to the caller's. */
        ARGS(1);
        if (a[0] <= 2) {
            if (!ctx1)
                return CUDA_ERROR_INVALID_CONTEXT;
            sess_out(res, sess_hid(s, ctx1 - 1));
            return CUDA_SUCCESS;
        }
        i = sess_hget(s, a[0], H_STREAM);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        sess_out(res, sess_hid(s, s->h[i].ctx - 1));
        return CUDA_SUCCESS;
    case VG_CALL_STREAM_GET_ID: {
        NEED(cuStreamGetId);
        ARGS(1);
        if (sess_stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        unsigned long long sid = 0;
        rc = d->cuStreamGetId(st, &sid);
        sess_out(res, sid);
        return rc;
    }
    case VG_CALL_FUNC_GET_NAME:
    case VG_CALL_KERNEL_GET_NAME: {
        ARGS(1);
        const char *name = NULL;
        if (c->call == VG_CALL_FUNC_GET_NAME) {
            NEED(cuFuncGetName);
            i = sess_hget(s, a[0], H_FUNC);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuFuncGetName(&name, s->h[i].real);
        } else {
            NEED(cuKernelGetName);
            i = sess_hget(s, a[0], H_KERN);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuKernelGetName(&name, s->h[i].real);
        }
        if (rc == CUDA_SUCCESS && name)
            snprintf(res->str, sizeof res->str, "%s", name);
        return rc;
    }
    case VG_CALL_MEM_ALLOC_PITCH: {
        /* args: width in bytes, height, element size; outs: pointer, pitch */
        NEED(cuMemAllocPitch);
        ARGS(3);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        if (a[0] > ((uint64_t)1 << 40) || a[1] > ((uint64_t)1 << 40) || (a[1] && a[0] > ((uint64_t)1 << 42) / a[1]))
            return CUDA_ERROR_INVALID_VALUE; /* no product (or padded pitch) near overflow */
        CUdeviceptr p = 0;
        size_t pitch = 0;
        /* The pitch is the driver's choice: charge the widest it could pick (rows padded to
         * 512 bytes), then settle on what it took. */
        int dev = sess_ctx_device(s, ctx1);
        uint64_t charged = ((a[0] + 511) & ~(uint64_t)511) * a[1];
        rc = sess_mem_charge(s, dev, charged);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = d->cuMemAllocPitch(&p, &pitch, (size_t)a[0], (size_t)a[1], (unsigned)a[2]);
        uint64_t used = (uint64_t)pitch * a[1];
        if (rc == CUDA_SUCCESS && used > charged) {
            if (sess_mem_charge(s, dev, used - charged) == CUDA_SUCCESS) {
                charged = used;
            } else {
                d->cuMemFree(p);
                rc = CUDA_ERROR_OUT_OF_MEMORY;
            }
        }
        if (rc == CUDA_SUCCESS && used < charged) {
            sess_mem_refund(s, dev, charged - used);
            charged = used;
        }
        if (rc == CUDA_SUCCESS && sess_alloc_add(s, p, (size_t)used, ctx1, dev, charged) < 0) {
            d->cuMemFree(p);
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (rc != CUDA_SUCCESS) {
            sess_mem_refund(s, dev, charged);
            return rc;
        }
        sess_out(res, p);
        sess_out(res, pitch);
        return CUDA_SUCCESS;
    }
    case VG_CALL_MEMSET_2D: {
        /* args: dst, pitch, value, element size (1, 2, 4), width (elements), height, stream */
        ARGS(7);
        uint64_t dst = a[0], pitch = a[1], esz = a[3], width = a[4], height = a[5];
        if ((esz != 1 && esz != 2 && esz != 4) || width > ((uint64_t)1 << 40) || height > ((uint64_t)1 << 40) ||
            pitch > ((uint64_t)1 << 40) || width * esz > pitch)
            return CUDA_ERROR_INVALID_VALUE;
        if (height && !sess_range_ok(s, dst, pitch * (height - 1) + width * esz))
            return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[6], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (esz == 1) {
            NEED(cuMemsetD2D8Async);
            return d->cuMemsetD2D8Async(dst, (size_t)pitch, (unsigned char)a[2], (size_t)width, (size_t)height, st);
        }
        if (esz == 2) {
            NEED(cuMemsetD2D16Async);
            return d->cuMemsetD2D16Async(dst, (size_t)pitch, (unsigned short)a[2], (size_t)width, (size_t)height, st);
        }
        NEED(cuMemsetD2D32Async);
        return d->cuMemsetD2D32Async(dst, (size_t)pitch, (unsigned)a[2], (size_t)width, (size_t)height, st);
    }
    case VG_CALL_MODULE_GET_FUNCTION_COUNT:
    case VG_CALL_LIBRARY_GET_KERNEL_COUNT: {
        ARGS(1);
        unsigned n = 0;
        if (c->call == VG_CALL_MODULE_GET_FUNCTION_COUNT) {
            NEED(cuModuleGetFunctionCount);
            i = sess_hget(s, a[0], H_MOD);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuModuleGetFunctionCount(&n, s->h[i].real);
        } else {
            NEED(cuLibraryGetKernelCount);
            i = sess_hget(s, a[0], H_LIB);
            if (i < 0)
                return CUDA_ERROR_INVALID_HANDLE;
            rc = d->cuLibraryGetKernelCount(&n, s->h[i].real);
        }
        sess_out(res, n);
        return rc;
    }
    case VG_CALL_LIBRARY_ENUMERATE_KERNELS: {
        /* args: library, count; outs: that many kernel handles */
        NEED(cuLibraryEnumerateKernels);
        ARGS(2);
        i = sess_hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (a[1] == 0 || a[1] > SESS_MAX_PARAMS)
            return CUDA_ERROR_INVALID_VALUE;
        CUkernel *ks = calloc((size_t)a[1], sizeof *ks);
        uint64_t *o = malloc((size_t)a[1] * sizeof *o);
        if (!ks || !o) {
            free(ks);
            free(o);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        rc = d->cuLibraryEnumerateKernels(ks, (unsigned)a[1], s->h[i].real);
        size_t n = 0;
        for (; rc == CUDA_SUCCESS && n < a[1] && ks[n]; n++) {
            int k = sess_hfind_real(s, H_KERN, ks[n]);
            if (k < 0) {
                k = sess_hnew(s, H_KERN, ks[n], ctx1);
                if (k < 0) {
                    rc = CUDA_ERROR_OUT_OF_MEMORY;
                    break;
                }
                set_parent(s, k, (uint32_t)i + 1);
            }
            o[n] = sess_hid(s, (uint32_t)k);
        }
        free(ks);
        if (rc != CUDA_SUCCESS) {
            free(o);
            return rc;
        }
        res->outs = o;
        res->n_outs = n;
        return CUDA_SUCCESS;
    }
    case VG_CALL_FUNC_GET_MODULE: {
        ARGS(1);
        i = sess_hget(s, a[0], H_FUNC);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        uint32_t p = s->h[i].parent;
        if (p && s->h[p - 1].live && s->h[p - 1].type == H_MOD) {
            sess_out(res, sess_hid(s, p - 1));
            return CUDA_SUCCESS;
        }
        /* A library kernel's function: its module is the library's. */
        NEED(cuFuncGetModule);
        CUmodule m = NULL;
        rc = d->cuFuncGetModule(&m, s->h[i].real);
        if (rc != CUDA_SUCCESS)
            return rc;
        int k = sess_hfind_real(s, H_MOD, m);
        if (k >= 0) {
            sess_out(res, sess_hid(s, (uint32_t)k));
            return CUDA_SUCCESS;
        }
        rc = sess_new_handle_out(s, res, H_MOD, m, s->h[i].ctx);
        if (rc == CUDA_SUCCESS)
            set_parent(s, (uint32_t)res->outs[0] - 1, p);
        return rc;
    }
    case VG_CALL_KERNEL_GET_LIBRARY: {
        ARGS(1);
        i = sess_hget(s, a[0], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        uint32_t p = s->h[i].parent;
        if (!p || !s->h[p - 1].live || s->h[p - 1].type != H_LIB)
            return CUDA_ERROR_NOT_FOUND;
        sess_out(res, sess_hid(s, p - 1));
        return CUDA_SUCCESS;
    }
    case VG_CALL_LIBRARY_UNLOAD:
        NEED(cuLibraryUnload);
        ARGS(1);
        i = sess_hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuLibraryUnload(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            free_with_descendants(s, (uint32_t)i);
        return rc;
    case VG_CALL_LIBRARY_GET_KERNEL:
    case VG_CALL_LIBRARY_GET_MODULE: {
        ARGS(1);
        i = sess_hget(s, a[0], H_LIB);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        void *obj = NULL;
        int type = c->call == VG_CALL_LIBRARY_GET_KERNEL ? H_KERN : H_MOD;
        if (type == H_KERN) {
            NEED(cuLibraryGetKernel);
            rc = d->cuLibraryGetKernel((CUkernel *)&obj, s->h[i].real, c->name);
        } else {
            NEED(cuLibraryGetModule);
            rc = d->cuLibraryGetModule((CUmodule *)&obj, s->h[i].real);
        }
        if (rc != CUDA_SUCCESS)
            return rc;
        int k = sess_hfind_real(s, type, obj);
        if (k >= 0) {
            sess_out(res, sess_hid(s, (uint32_t)k));
            return CUDA_SUCCESS;
        }
        rc = sess_new_handle_out(s, res, type, obj, ctx1);
        if (rc == CUDA_SUCCESS)
            set_parent(s, (uint32_t)res->outs[0] - 1, (uint32_t)i + 1);
        return rc;
    }
    case VG_CALL_KERNEL_GET_FUNCTION: {
        NEED(cuKernelGetFunction);
        ARGS(1);
        i = sess_hget(s, a[0], H_KERN);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        CUfunction f = NULL;
        rc = d->cuKernelGetFunction(&f, s->h[i].real);
        if (rc != CUDA_SUCCESS)
            return rc;
        int fi = sess_hfind_real(s, H_FUNC, f);
        if (fi >= 0) {
            sess_out(res, sess_hid(s, (uint32_t)fi));
            return CUDA_SUCCESS;
        }
        rc = sess_new_handle_out(s, res, H_FUNC, f, ctx1);
        if (rc == CUDA_SUCCESS)
            set_parent(s, (uint32_t)res->outs[0] - 1, s->h[i].parent);
        return rc;
    }
    case VG_CALL_FUNC_GET_PARAM_LAYOUT: {
        /* outs: count, then offset and size of each parameter */
        ARGS(1);
        CUfunction f;
        rc = sess_func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = sess_load_layout(s, i, f);
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
        res->outs = o;
        res->n_outs = 1 + 2 * (size_t)e->nparams;
        return CUDA_SUCCESS;
    }
    case VG_CALL_FUNC_GET_ATTRIBUTE: {
        NEED(cuFuncGetAttribute);
        ARGS(2);
        CUfunction f;
        rc = sess_func_arg(s, a[1], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        int v = 0;
        rc = d->cuFuncGetAttribute(&v, (CUfunction_attribute)a[0], f);
        sess_out(res, (uint64_t)(int64_t)v);
        return rc;
    }
    case VG_CALL_FUNC_SET_ATTRIBUTE: {
        NEED(cuFuncSetAttribute);
        ARGS(3);
        CUfunction f;
        rc = sess_func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        return d->cuFuncSetAttribute(f, (CUfunction_attribute)a[1], (int)a[2]);
    }
    case VG_CALL_FUNC_SET_CACHE_CONFIG: {
        NEED(cuFuncSetCacheConfig);
        ARGS(2);
        CUfunction f;
        rc = sess_func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        return d->cuFuncSetCacheConfig(f, (CUfunc_cache)a[1]);
    }
    case VG_CALL_LAUNCH_KERNEL: {
        /* args: function, grid x y z, block x y z, shared bytes, stream; bulk: the parameter
         * buffer laid out as cuFuncGetParamInfo says */
        NEED(cuLaunchKernel);
        ARGS(9);
        CUfunction f;
        rc = sess_func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = sess_load_layout(s, i, f);
        if (rc != CUDA_SUCCESS)
            return rc;
        struct handle *e = &s->h[i];
        if (bulk_len < e->param_bytes)
            return CUDA_ERROR_INVALID_VALUE;
        /* The dimensions are the driver's to judge (its answer differs between functions and
         * kernels); only values that would not survive the cast to unsigned stop here. */
        for (int k = 1; k < 8; k++)
            if (a[k] > UINT32_MAX)
                return CUDA_ERROR_INVALID_VALUE;
        if (sess_stream_arg(s, a[8], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        void *params_inline[32];
        void **params = params_inline;
        if (e->nparams > 32) {
            params = malloc((size_t)e->nparams * sizeof *params);
            if (!params)
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        for (int k = 0; k < e->nparams; k++)
            params[k] = (void *)(bulk + e->param_off[k]);
        /* A library kernel is launched as itself, cast to CUfunction, as the runtime does (the
         * driver's answers, e.g. to a bad configuration, differ from a module function's). */
        if (s->h[i].type == H_KERN)
            f = (CUfunction)s->h[i].real;
        rc = d->cuLaunchKernel(f, (unsigned)a[1], (unsigned)a[2], (unsigned)a[3], (unsigned)a[4],
                               (unsigned)a[5], (unsigned)a[6], (unsigned)a[7], st,
                               e->nparams ? params : NULL, NULL);
        if (params != params_inline)
            free(params);
        return rc;
    }
    case VG_CALL_STREAM_CREATE: {
        /* args: flags, priority, with_priority */
        ARGS(3);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUstream ns = NULL;
        if (a[2]) {
            NEED(cuStreamCreateWithPriority);
            rc = d->cuStreamCreateWithPriority(&ns, (unsigned)a[0], (int)a[1]);
        } else {
            NEED(cuStreamCreate);
            rc = d->cuStreamCreate(&ns, (unsigned)a[0]);
        }
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = sess_new_handle_out(s, res, H_STREAM, ns, ctx1);
        if (rc != CUDA_SUCCESS)
            d->cuStreamDestroy(ns);
        return rc;
    }
    case VG_CALL_STREAM_DESTROY:
        NEED(cuStreamDestroy);
        ARGS(1);
        i = sess_hget(s, a[0], H_STREAM);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        rc = d->cuStreamDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            sess_hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_STREAM_SYNCHRONIZE:
    case VG_CALL_STREAM_QUERY:
    case VG_CALL_STREAM_GET_PRIORITY:
    case VG_CALL_STREAM_GET_FLAGS: {
        ARGS(1);
        if (sess_stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_STREAM_SYNCHRONIZE) {
            NEED(cuStreamSynchronize);
            return d->cuStreamSynchronize(st);
        }
        if (c->call == VG_CALL_STREAM_QUERY) {
            NEED(cuStreamQuery);
            return d->cuStreamQuery(st);
        }
        if (c->call == VG_CALL_STREAM_GET_PRIORITY) {
            NEED(cuStreamGetPriority);
            int p = 0;
            rc = d->cuStreamGetPriority(st, &p);
            sess_out(res, (uint64_t)(int64_t)p);
            return rc;
        }
        NEED(cuStreamGetFlags);
        unsigned fl = 0;
        rc = d->cuStreamGetFlags(st, &fl);
        sess_out(res, fl);
        return rc;
    }
    case VG_CALL_STREAM_WAIT_EVENT: {
        NEED(cuStreamWaitEvent);
        ARGS(3);
        if (sess_stream_arg(s, a[0], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        i = sess_hget(s, a[1], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        return d->cuStreamWaitEvent(st, s->h[i].real, (unsigned)a[2]);
    }
    case VG_CALL_EVENT_CREATE: {
        NEED(cuEventCreate);
        ARGS(1);
        if (!ctx1)
            return CUDA_ERROR_INVALID_CONTEXT;
        CUevent ev = NULL;
        rc = d->cuEventCreate(&ev, (unsigned)a[0]);
        if (rc != CUDA_SUCCESS)
            return rc;
        rc = sess_new_handle_out(s, res, H_EVENT, ev, ctx1);
        if (rc != CUDA_SUCCESS)
            d->cuEventDestroy(ev);
        return rc;
    }
    case VG_CALL_EVENT_DESTROY:
    case VG_CALL_EVENT_SYNCHRONIZE:
    case VG_CALL_EVENT_QUERY:
        ARGS(1);
        i = sess_hget(s, a[0], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->call == VG_CALL_EVENT_SYNCHRONIZE) {
            NEED(cuEventSynchronize);
            return d->cuEventSynchronize(s->h[i].real);
        }
        if (c->call == VG_CALL_EVENT_QUERY) {
            NEED(cuEventQuery);
            return d->cuEventQuery(s->h[i].real);
        }
        NEED(cuEventDestroy);
        rc = d->cuEventDestroy(s->h[i].real);
        if (rc == CUDA_SUCCESS)
            sess_hfree(s, (uint32_t)i);
        return rc;
    case VG_CALL_EVENT_RECORD:
        NEED(cuEventRecord);
        ARGS(2);
        i = sess_hget(s, a[0], H_EVENT);
        if (i < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (sess_stream_arg(s, a[1], &st) < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        if (c->n_args >= 3 && a[2]) {
            NEED(cuEventRecordWithFlags);
            return d->cuEventRecordWithFlags(s->h[i].real, st, (unsigned)a[2]);
        }
        return d->cuEventRecord(s->h[i].real, st);
    case VG_CALL_EVENT_ELAPSED_TIME: {
        NEED(cuEventElapsedTime);
        ARGS(2);
        int i0 = sess_hget(s, a[0], H_EVENT), i1 = sess_hget(s, a[1], H_EVENT);
        if (i0 < 0 || i1 < 0)
            return CUDA_ERROR_INVALID_HANDLE;
        float ms = 0;
        rc = d->cuEventElapsedTime(&ms, s->h[i0].real, s->h[i1].real);
        uint32_t bits;
        memcpy(&bits, &ms, sizeof bits);
        sess_out(res, bits);
        return rc;
    }
    case VG_CALL_POINTER_GET_ATTRIBUTE: {
        NEED(cuPointerGetAttribute);
        ARGS(2);
        CUpointer_attribute attr = (CUpointer_attribute)a[0];
        switch (attr) {
        case CU_POINTER_ATTRIBUTE_CONTEXT:
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
            break;
        default:
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        if (!sess_range_ok(s, a[1], 0))
            return CUDA_ERROR_INVALID_VALUE;
        uint64_t v = 0;
        rc = d->cuPointerGetAttribute(&v, attr, a[1]);
        if (rc == CUDA_SUCCESS && attr == CU_POINTER_ATTRIBUTE_CONTEXT) {
            int ci = sess_hfind_real(s, H_CTX, (void *)(uintptr_t)v);
            v = ci >= 0 ? sess_hid(s, (uint32_t)ci) : 0;
        }
        sess_out(res, v);
        return rc;
    }
    case VG_CALL_OCCUPANCY_MAX_BLOCKS: {
        NEED(cuOccupancyMaxActiveBlocksPerMultiprocessor);
        ARGS(3);
        CUfunction f;
        rc = sess_func_arg(s, a[0], &i, &f);
        if (rc != CUDA_SUCCESS)
            return rc;
        int n = 0;
        if (c->n_args >= 4 && a[3]) {
            NEED(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags);
            rc = d->cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&n, f, (int)a[1], (size_t)a[2],
                                                                         (unsigned)a[3]);
        } else {
            rc = d->cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, f, (int)a[1], (size_t)a[2]);
        }
        sess_out(res, (uint64_t)(int64_t)n);
        return rc;
    }
    default:
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}
