/* Modules, libraries and kernels: images are sized here (common/fatbin.h) and sent as bulk. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coherent.h"
#include "fatbin.h"
#include "stub.h"

/* ---- modules and libraries ------------------------------------------------------------------------ */

static CUresult load_image(unsigned call, uint64_t *handle, const void *image, size_t size, const char *what)
{
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .name = what, .bulk = image, .bulk_len = size,
                       .outs = handle, .nouts = 1};
    if (size > vg_conn_max_bulk())
        return CUDA_ERROR_INVALID_IMAGE;
    return vg_conn_call(&r);
}

/* Sizes a caller's in-memory image (PTX, fatbin, wrapper, ELF). */
static CUresult image_extent(const void *image, const void **data, size_t *size)
{
    if (!image)
        return CUDA_ERROR_INVALID_VALUE;
    if (vg_image_locate(image, data, size) == VG_IMAGE_UNKNOWN || *size == 0)
        return CUDA_ERROR_INVALID_IMAGE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule *mod, const void *image)
{
    const void *data;
    size_t size;
    uint64_t h;
    if (!mod)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = image_extent(image, &data, &size);
    if (rc == CUDA_SUCCESS)
        rc = load_image(VG_CALL_cuModuleLoadData, &h, data, size, "");
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)h;
    return rc;
}

CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *mod, const void *image, unsigned int n,
                                    CUjit_option *options, void **values)
{
    /* JIT options tune or report the compilation, which happens on the server. */
    (void)n, (void)options, (void)values;
    return cuModuleLoadData(mod, image);
}

CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *mod, const void *fatbin)
{
    return cuModuleLoadData(mod, fatbin);
}

CUresult vg_stub_read_file(const char *path, char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size >= vg_conn_max_bulk())
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto done;
    buf[st.st_size] = 0; /* PTX text files have no NUL of their own */
    *data = buf;
    *size = (size_t)st.st_size;
    buf = NULL;
    rc = CUDA_SUCCESS;
done:
    free(buf);
    fclose(f);
    return rc;
}

CUresult CUDAAPI cuModuleLoad(CUmodule *mod, const char *path)
{
    if (!mod || !path)
        return CUDA_ERROR_INVALID_VALUE;
    char *buf;
    size_t size;
    uint64_t h;
    CUresult rc = vg_stub_read_file(path, &buf, &size);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = load_image(VG_CALL_cuModuleLoadData, &h, buf, size + 1, path);
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)h;
    free(buf);
    return rc;
}

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *lib, const void *code, CUjit_option *jo, void **jv,
                                   unsigned int njo, CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    (void)jo, (void)jv, (void)njo, (void)lo, (void)lv, (void)nlo;
    const void *data;
    size_t size;
    uint64_t h;
    if (!lib)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = image_extent(code, &data, &size);
    if (rc == CUDA_SUCCESS)
        rc = load_image(VG_CALL_cuLibraryLoadData, &h, data, size, "");
    if (rc == CUDA_SUCCESS)
        *lib = (CUlibrary)(uintptr_t)h;
    return rc;
}

/* Names handed out by cuFuncGetName/cuKernelGetName must stay valid: they are kept here, one per
 * handle, for the life of the process (names_lock protects the list). */
struct name_entry {
    struct name_entry *next;
    uint64_t handle;
    char name[];
};
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *names;

/* In a forked child only (see vg_stub_forget_layouts). */
void vg_stub_forget_names(void)
{
    pthread_mutex_init(&names_lock, NULL);
    names = NULL;
}

/* wire: args the function or kernel; reply bulk: its name (any length, no NUL). */
static CUresult get_name(unsigned call, uint64_t handle, const char **out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&names_lock);
    for (struct name_entry *e = names; e; e = e->next)
        if (e->handle == handle) {
            *out = e->name;
            pthread_mutex_unlock(&names_lock);
            return CUDA_SUCCESS;
        }
    pthread_mutex_unlock(&names_lock);
    uint64_t *unused = NULL;
    size_t nunused = 0;
    char *buf = NULL;
    uint64_t len = 0;
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(handle), .nargs = 1,
                       .outs_alloc = &unused, .nouts_alloc = &nunused, .rbulk_alloc = (void **)&buf,
                       .rbulk_alloc_len = &len};
    CUresult rc = vg_conn_call(&r);
    free(unused);
    if (rc != CUDA_SUCCESS) {
        free(buf);
        return rc;
    }
    struct name_entry *e = malloc(sizeof *e + (size_t)len + 1);
    if (!e) {
        free(buf);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->handle = handle;
    if (len)
        memcpy(e->name, buf, (size_t)len);
    e->name[len] = 0;
    free(buf);
    pthread_mutex_lock(&names_lock);
    e->next = names;
    names = e;
    pthread_mutex_unlock(&names_lock);
    *out = e->name;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction f)
{
    return get_name(VG_CALL_cuFuncGetName, H(f), name);
}

CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel k)
{
    return get_name(VG_CALL_cuKernelGetName, H(k), name);
}

CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *lib, const char *path, CUjit_option *jo, void **jv,
                                       unsigned int njo, CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    if (!lib || !path)
        return CUDA_ERROR_INVALID_VALUE;
    char *buf;
    size_t size;
    CUresult rc = vg_stub_read_file(path, &buf, &size);
    if (rc != CUDA_SUCCESS)
        return rc;
    rc = cuLibraryLoadData(lib, buf, jo, jv, njo, lo, lv, nlo);
    free(buf);
    return rc;
}


/* A managed global: the server's memory and a host shadow at its address (client/coherent.h). */
CUresult CUDAAPI cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib, const char *name)
{
    uint64_t o[2];
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = VG_CALL_cuLibraryGetManaged, .ctx = vg_stub_ctx(), .args = ARGV(H(lib)),
                       .nargs = 1, .name = name, .outs = o, .nouts = 2};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS && o[0] && o[1])
        rc = vg_coh_adopt(o[0], (size_t)o[1]);
    if (rc == CUDA_SUCCESS) {
        if (dptr)
            *dptr = o[0];
        if (bytes)
            *bytes = (size_t)o[1];
    }
    return rc;
}
