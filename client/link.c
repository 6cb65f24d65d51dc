/* The JIT linker. Options whose values are memory of this process (log buffers and their sizes,
 * symbol tables) stay here; scalar options go to the server, which links. The linked image comes
 * back and is kept here, with the link state, until cuLinkDestroy (the driver's contract for the
 * pointer cuLinkComplete gives). Wire layouts: protocol/README.md, "Calls written by hand". */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "stub.h"

#define LINK_MAX_OPTIONS 16

/* What this process keeps per link state. links_lock protects the list. */
struct link {
    struct link *next;
    uint64_t id;
    char *info_log, *error_log;     /* the caller's buffers (may be NULL) */
    size_t info_size, error_size;
    void *image;                    /* the linked image, once complete */
};
static pthread_mutex_t links_lock = PTHREAD_MUTEX_INITIALIZER;
static struct link *links;

static struct link *link_find(uint64_t id)
{
    pthread_mutex_lock(&links_lock);
    struct link *l = links;
    while (l && l->id != id)
        l = l->next;
    pthread_mutex_unlock(&links_lock);
    return l;
}

/* Copies the server's error text (Reply.str) into the caller's error log. */
static void error_log(struct link *l, const char *text)
{
    if (l && l->error_log && l->error_size)
        snprintf(l->error_log, l->error_size, "%s", text);
}

CUresult CUDAAPI cuLinkCreate(unsigned int n, CUjit_option *opts, void **vals, CUlinkState *out)
{
    if (!out || (n && (!opts || !vals)) || n > LINK_MAX_OPTIONS)
        return CUDA_ERROR_INVALID_VALUE;
    struct link *l = calloc(1, sizeof *l);
    if (!l)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t args[1 + 2 * LINK_MAX_OPTIONS];
    size_t nargs = 1, nopts = 0;
    for (unsigned i = 0; i < n; i++) {
        switch (opts[i]) {
        case CU_JIT_INFO_LOG_BUFFER:
            l->info_log = vals[i];
            break;
        case CU_JIT_ERROR_LOG_BUFFER:
            l->error_log = vals[i];
            break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
            l->info_size = (size_t)(uintptr_t)vals[i];
            break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
            l->error_size = (size_t)(uintptr_t)vals[i];
            break;
        case CU_JIT_GLOBAL_SYMBOL_NAMES:
        case CU_JIT_GLOBAL_SYMBOL_ADDRESSES:
        case CU_JIT_GLOBAL_SYMBOL_COUNT:
            break; /* host symbols of this process: nothing the server's link can use */
        default:
            args[nargs++] = (uint64_t)opts[i];
            args[nargs++] = (uint64_t)(uintptr_t)vals[i];
            nopts++;
        }
    }
    args[0] = nopts;
    if (l->info_log && l->info_size)
        l->info_log[0] = 0;
    if (l->error_log && l->error_size)
        l->error_log[0] = 0;
    uint64_t o[1];
    struct vg_rpc r = {.call = VG_CALL_cuLinkCreate_v2, .ctx = vg_stub_ctx(), .args = args, .nargs = nargs,
                       .outs = o, .nouts = 1};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS) {
        free(l);
        return rc;
    }
    l->id = o[0];
    pthread_mutex_lock(&links_lock);
    l->next = links;
    links = l;
    pthread_mutex_unlock(&links_lock);
    *out = (CUlinkState)(uintptr_t)l->id;
    return CUDA_SUCCESS;
}

/* Per-input options only tune this input's compilation: the server's defaults apply. */
CUresult CUDAAPI cuLinkAddData(CUlinkState st, CUjitInputType type, void *data, size_t size, const char *name,
                               unsigned int n, CUjit_option *opts, void **vals)
{
    (void)n, (void)opts, (void)vals;
    if (!data || size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (size > vg_conn_max_bulk())
        return CUDA_ERROR_INVALID_IMAGE;
    char err[256] = "";
    struct vg_rpc r = {.call = VG_CALL_cuLinkAddData_v2, .ctx = vg_stub_ctx(),
                       .args = ARGV((uint64_t)(uintptr_t)st, (uint64_t)type), .nargs = 2, .name = name,
                       .bulk = data, .bulk_len = size, .str = err, .str_size = sizeof err};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS)
        error_log(link_find((uint64_t)(uintptr_t)st), err);
    return rc;
}

CUresult CUDAAPI cuLinkAddFile(CUlinkState st, CUjitInputType type, const char *path, unsigned int n,
                               CUjit_option *opts, void **vals)
{
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    char *buf;
    size_t size;
    CUresult rc = vg_stub_read_file(path, &buf, &size);
    if (rc != CUDA_SUCCESS)
        return rc;
    /* PTX goes with its NUL, as an in-memory PTX input has one. */
    rc = cuLinkAddData(st, type, buf, size + (type == CU_JIT_INPUT_PTX), path, n, opts, vals);
    free(buf);
    return rc;
}

CUresult CUDAAPI cuLinkComplete(CUlinkState st, void **cubin, size_t *size)
{
    if (!cubin || !size)
        return CUDA_ERROR_INVALID_VALUE;
    struct link *l = link_find((uint64_t)(uintptr_t)st);
    if (!l)
        return CUDA_ERROR_INVALID_HANDLE;
    void *image = NULL;
    uint64_t len = 0;
    char err[256] = "";
    struct vg_rpc r = {.call = VG_CALL_cuLinkComplete, .ctx = vg_stub_ctx(), .args = ARGV((uint64_t)(uintptr_t)st),
                       .nargs = 1, .str = err, .str_size = sizeof err, .rbulk_alloc = &image,
                       .rbulk_alloc_len = &len};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS) {
        free(image);
        error_log(l, err);
        return rc;
    }
    pthread_mutex_lock(&links_lock);
    free(l->image);
    l->image = image;
    pthread_mutex_unlock(&links_lock);
    *cubin = image;
    *size = (size_t)len;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLinkDestroy(CUlinkState st)
{
    uint64_t id = (uint64_t)(uintptr_t)st;
    CUresult rc = FWD(cuLinkDestroy, NULL, 0, id);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&links_lock);
    for (struct link **pp = &links; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct link *l = *pp;
            *pp = l->next;
            free(l->image);
            free(l);
            break;
        }
    pthread_mutex_unlock(&links_lock);
    return CUDA_SUCCESS;
}
