/* Modules, libraries and kernels: images are sized here (common/fatbin.h) and sent as bulk. */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
        rc = load_image(VG_CALL_MODULE_LOAD_DATA, &h, data, size, "");
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

CUresult CUDAAPI cuModuleLoad(CUmodule *mod, const char *path)
{
    if (!mod || !path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > vg_conn_max_bulk())
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto done;
    buf[st.st_size] = 0; /* PTX text files have no NUL */
    uint64_t h;
    rc = load_image(VG_CALL_MODULE_LOAD_DATA, &h, buf, (size_t)st.st_size + 1, path);
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)h;
done:
    free(buf);
    fclose(f);
    return rc;
}

CUresult CUDAAPI cuModuleUnload(CUmodule mod)
{
    return FWD(MODULE_UNLOAD, NULL, 0, H(mod));
}

static CUresult named(unsigned call, uint64_t obj, const char *name, uint64_t *outs, size_t nouts)
{
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(obj), .nargs = 1, .name = name,
                       .outs = outs, .nouts = nouts};
    return vg_conn_call(&r);
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction *f, CUmodule mod, const char *name)
{
    uint64_t o[1];
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = named(VG_CALL_MODULE_GET_FUNCTION, H(mod), name, o, 1);
    if (rc == CUDA_SUCCESS)
        *f = (CUfunction)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuModuleGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUmodule mod, const char *name)
{
    uint64_t o[2];
    CUresult rc = named(VG_CALL_MODULE_GET_GLOBAL, H(mod), name, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (dptr)
            *dptr = (CUdeviceptr)o[0];
        if (bytes)
            *bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
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
        rc = load_image(VG_CALL_LIBRARY_LOAD_DATA, &h, data, size, "");
    if (rc == CUDA_SUCCESS)
        *lib = (CUlibrary)(uintptr_t)h;
    return rc;
}

CUresult CUDAAPI cuLibraryUnload(CUlibrary lib)
{
    return FWD(LIBRARY_UNLOAD, NULL, 0, H(lib));
}

CUresult CUDAAPI cuLibraryGetKernel(CUkernel *k, CUlibrary lib, const char *name)
{
    uint64_t o[1];
    if (!k)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = named(VG_CALL_LIBRARY_GET_KERNEL, H(lib), name, o, 1);
    if (rc == CUDA_SUCCESS)
        *k = (CUkernel)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuLibraryGetModule(CUmodule *mod, CUlibrary lib)
{
    uint64_t o[1];
    if (!mod)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(LIBRARY_GET_MODULE, o, 1, H(lib));
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary lib, const char *name)
{
    uint64_t o[2];
    CUresult rc = named(VG_CALL_LIBRARY_GET_GLOBAL, H(lib), name, o, 2);
    if (rc == CUDA_SUCCESS) {
        if (dptr)
            *dptr = (CUdeviceptr)o[0];
        if (bytes)
            *bytes = (size_t)o[1];
    }
    return rc;
}

CUresult CUDAAPI cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel k, CUdevice dev)
{
    uint64_t o[1];
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(KERNEL_GET_ATTRIBUTE, o, 1, (uint64_t)attrib, H(k), (uint64_t)(int64_t)dev);
    if (rc == CUDA_SUCCESS)
        *pi = (int)o[0];
    return rc;
}

CUresult CUDAAPI cuKernelSetAttribute(CUfunction_attribute attrib, int value, CUkernel k, CUdevice dev)
{
    return FWD(KERNEL_SET_ATTRIBUTE, NULL, 0, (uint64_t)attrib, (uint64_t)(int64_t)value, H(k), (uint64_t)(int64_t)dev);
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
    char buf[256];
    struct vg_rpc r = {.call = call, .ctx = vg_stub_ctx(), .args = ARGV(handle), .nargs = 1, .str = buf,
                       .str_size = sizeof buf};
    CUresult rc = vg_conn_call(&r);
    if (rc != CUDA_SUCCESS)
        return rc;
    size_t len = strlen(buf) + 1;
    struct name_entry *e = malloc(sizeof *e + len);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->handle = handle;
    memcpy(e->name, buf, len);
    pthread_mutex_lock(&names_lock);
    e->next = names;
    names = e;
    pthread_mutex_unlock(&names_lock);
    *out = e->name;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction f)
{
    return get_name(VG_CALL_FUNC_GET_NAME, H(f), name);
}

CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel k)
{
    return get_name(VG_CALL_KERNEL_GET_NAME, H(k), name);
}

CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *lib, const char *path, CUjit_option *jo, void **jv,
                                       unsigned int njo, CUlibraryOption *lo, void **lv, unsigned int nlo)
{
    if (!lib || !path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    CUresult rc = CUDA_ERROR_INVALID_IMAGE;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > vg_conn_max_bulk())
        goto done;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto done;
    buf[st.st_size] = 0;
    rc = cuLibraryLoadData(lib, buf, jo, jv, njo, lo, lv, nlo);
done:
    free(buf);
    fclose(f);
    return rc;
}

static CUresult count_of(unsigned call, uint64_t obj, unsigned *count)
{
    uint64_t o[1];
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = vg_stub_rpc(call, ARGV(obj), 1, o, 1);
    if (rc == CUDA_SUCCESS)
        *count = (unsigned)o[0];
    return rc;
}

CUresult CUDAAPI cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
    return count_of(VG_CALL_MODULE_GET_FUNCTION_COUNT, H(mod), count);
}

CUresult CUDAAPI cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
    return count_of(VG_CALL_LIBRARY_GET_KERNEL_COUNT, H(lib), count);
}

CUresult CUDAAPI cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int n, CUlibrary lib)
{
    if (!kernels || n == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t *o = NULL;
    size_t no = 0;
    struct vg_rpc r = {.call = VG_CALL_LIBRARY_ENUMERATE_KERNELS, .ctx = vg_stub_ctx(), .args = ARGV(H(lib), n),
                       .nargs = 2, .outs_alloc = &o, .nouts_alloc = &no};
    CUresult rc = vg_conn_call(&r);
    if (rc == CUDA_SUCCESS) {
        for (unsigned i = 0; i < n; i++)
            kernels[i] = i < no ? (CUkernel)(uintptr_t)o[i] : NULL;
    }
    free(o);
    return rc;
}

CUresult CUDAAPI cuFuncGetModule(CUmodule *mod, CUfunction f)
{
    uint64_t o[1];
    if (!mod)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(FUNC_GET_MODULE, o, 1, H(f));
    if (rc == CUDA_SUCCESS)
        *mod = (CUmodule)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuKernelGetLibrary(CUlibrary *lib, CUkernel k)
{
    uint64_t o[1];
    if (!lib)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(KERNEL_GET_LIBRARY, o, 1, H(k));
    if (rc == CUDA_SUCCESS)
        *lib = (CUlibrary)(uintptr_t)o[0];
    return rc;
}

CUresult CUDAAPI cuKernelGetFunction(CUfunction *f, CUkernel k)
{
    uint64_t o[1];
    if (!f)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = FWD(KERNEL_GET_FUNCTION, o, 1, H(k));
    if (rc == CUDA_SUCCESS)
        *f = (CUfunction)(uintptr_t)o[0];
    return rc;
}
