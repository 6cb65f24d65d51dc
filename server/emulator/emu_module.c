/* emu_module: modules and libraries (PTX text and fatbins), functions and kernels, launches.
 *
 * A module is parsed PTX bound to one context: its .global/.const variables get device
 * allocations in that context. A library (cuLibraryLoadData, used by the CUDA 12/13 runtime) is
 * context-independent: it keeps the PTX and instantiates a module per context on first use, so a
 * CUkernel resolves to the function of the current context's instance. */
#include "emu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fatbin.h"
#include "log.h"

typedef struct emu_library emu_library;

#define EMU_MAX_IMAGE_FILE ((uint64_t)1 << 30) /* cuModuleLoad/cuLibraryLoadFromFile */

struct emu_module {
    emu_module *next;       /* all modules, guarded by mod_lock */
    emu_ctx *ctx;
    emu_library *lib;       /* set for a library's per-context instance */
    ptx_module *pm;
    size_t nglobals;
    uint64_t *global_addr;
    size_t nfuncs;
    emu_func *funcs;
};

typedef struct emu_kernel {
    emu_library *lib;
    size_t index;
    CUfunc_cache cache_config;
} emu_kernel;

struct emu_library {
    char *ptx;
    size_t ptx_len;
    ptx_module *tmpl;       /* parsed once for names and attributes; never launched */
    size_t nkernels;
    emu_kernel *kernels;
};

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static emu_module *modules;

/* ---- loading ---- */

static void module_destroy(emu_module *m)
{
    for (size_t i = 0; i < m->nfuncs; i++)
        emu_obj_del(&m->funcs[i]);
    emu_obj_del(m);
    for (size_t i = 0; i < m->nglobals; i++)
        if (m->global_addr[i])
            emu_mem_free_addr(m->global_addr[i], 1);
    free(m->global_addr);
    free(m->funcs);
    ptx_module_free(m->pm);
    free(m);
}

static CUresult parse_ptx(const char *text, size_t len, ptx_module **out)
{
    char err[256] = "";
    int rc = ptx_module_parse(text, len, out, err, sizeof err);
    if (rc == PTX_OK)
        return CUDA_SUCCESS;
    if (rc == PTX_ERR_NOMEM)
        return CUDA_ERROR_OUT_OF_MEMORY;
    vg_error("PTX rejected: %s", err[0] ? err : "parse error");
    return CUDA_ERROR_INVALID_PTX;
}

/* Builds a module for ctx from PTX text. On success *out is registered and listed. */
static CUresult module_from_ptx(emu_ctx *ctx, const char *text, size_t len, emu_library *lib,
                                emu_module **out)
{
    emu_module *m = calloc(1, sizeof *m);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    m->ctx = ctx;
    m->lib = lib;
    CUresult r = parse_ptx(text, len, &m->pm);
    if (r)
        goto fail;
    m->nglobals = ptx_module_global_count(m->pm);
    m->global_addr = calloc(m->nglobals ? m->nglobals : 1, sizeof *m->global_addr);
    m->nfuncs = ptx_module_kernel_count(m->pm);
    m->funcs = calloc(m->nfuncs ? m->nfuncs : 1, sizeof *m->funcs);
    r = CUDA_ERROR_OUT_OF_MEMORY;
    if (!m->global_addr || !m->funcs)
        goto fail;
    for (size_t i = 0; i < m->nglobals; i++) {
        ptx_global_info g;
        ptx_module_global(m->pm, i, &g);
        r = emu_mem_alloc(ctx, g.size ? g.size : 1, 1, &m->global_addr[i]);
        if (r)
            goto fail;
        ptx_module_bind_global(m->pm, i, m->global_addr[i]);
    }
    /* Initial values once every variable has its address: an initializer may hold another's. */
    for (size_t i = 0; i < m->nglobals; i++) {
        ptx_global_info g;
        ptx_module_global(m->pm, i, &g);
        void *host = emu_mem_translate(ctx, m->global_addr[i], g.size ? g.size : 1);
        if (host && g.init && g.size) {
            memcpy(host, g.init, g.size);
            ptx_module_global_relocate(m->pm, i, host);
        }
    }
    for (size_t i = 0; i < m->nfuncs; i++) {
        emu_func *f = &m->funcs[i];
        f->mod = m;
        f->kernel = ptx_module_kernel_at(m->pm, i);
        size_t stat = ptx_kernel_static_shared(f->kernel);
        f->max_dynamic_shared = stat < EMU_SHARED_PER_BLOCK ? (int)(EMU_SHARED_PER_BLOCK - stat) : 0;
        f->preferred_carveout = -1;
    }
    r = CUDA_ERROR_OUT_OF_MEMORY;
    if (emu_obj_add(m, EMU_OBJ_MODULE) != 0)
        goto fail;
    for (size_t i = 0; i < m->nfuncs; i++)
        if (emu_obj_add(&m->funcs[i], EMU_OBJ_FUNC) != 0)
            goto fail;
    pthread_mutex_lock(&mod_lock);
    m->next = modules;
    modules = m;
    pthread_mutex_unlock(&mod_lock);
    *out = m;
    return CUDA_SUCCESS;
fail:
    module_destroy(m);
    return r;
}

/* vg_image_locate trusts that an image is readable, as the CUDA API may; we check the headers it
 * will read first, so that a garbage pointer is CUDA_ERROR_INVALID_VALUE rather than a crash.
 * (PTX text is then read up to its NUL: a readable but unterminated buffer is not detectable.) */
#define EMU_FATBIN_WRAPPER_MAGIC 0x466243b1u
#define EMU_FATBIN_MAGIC 0xBA55ED50u
#define EMU_FATBIN_HEADER 16 /* magic, version, header size, container size */

static CUresult image_headers_readable(const void *image)
{
    uint32_t magic;
    if (emu_host_probe(image, 1, 0))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_host_read(&magic, image, sizeof magic))
        return CUDA_SUCCESS; /* shorter than a magic: can only be (tiny) PTX text */
    const void *fatbin = NULL;
    if (magic == EMU_FATBIN_WRAPPER_MAGIC) {
        struct { uint32_t magic, version; const void *data, *filename; } w;
        if (emu_host_read(&w, image, sizeof w))
            return CUDA_ERROR_INVALID_VALUE;
        fatbin = w.data;
    } else if (magic == EMU_FATBIN_MAGIC) {
        fatbin = image;
    }
    if (fatbin && emu_host_probe(fatbin, EMU_FATBIN_HEADER, 0))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* Finds the PTX in a caller's image: *ptx is malloc'd when *owned is set. */
CUresult emu_image_ptx(const void *image, const char **ptx, size_t *len, int *owned)
{
    const void *data;
    size_t size;
    *owned = 0;
    if (!image || image_headers_readable(image))
        return CUDA_ERROR_INVALID_VALUE;
    enum vg_image_kind kind = vg_image_locate(image, &data, &size);
    /* The whole container the header claims must be there before the parser walks it. */
    if (kind == VG_IMAGE_FATBIN && emu_host_probe(data, size, 0))
        return CUDA_ERROR_INVALID_IMAGE;
    switch (kind) {
    case VG_IMAGE_PTX:
        *ptx = data;
        *len = size - 1;
        return CUDA_SUCCESS;
    case VG_IMAGE_FATBIN: {
        char *text;
        size_t n;
        int only_elf = 0;
        int rc = vg_fatbin_extract_ptx(data, size, &text, &n, &only_elf);
        if (rc == 0) {
            *ptx = text;
            *len = n;
            *owned = 1;
            return CUDA_SUCCESS;
        }
        if (rc == -ENOMEM)
            return CUDA_ERROR_OUT_OF_MEMORY;
        if (rc == -ENOENT) {
            vg_error("fatbin has no PTX entry%s; the emulated GPU needs PTX: build with "
                     "-gencode arch=compute_75,code=compute_75 (or nvcc's default)",
                     only_elf ? " (only ELF cubins)" : "");
            return CUDA_ERROR_NO_BINARY_FOR_GPU;
        }
        vg_error("malformed fatbin image");
        return CUDA_ERROR_INVALID_IMAGE;
    }
    case VG_IMAGE_ELF:
        vg_error("ELF cubin images cannot run on the emulated GPU, which needs PTX: pass PTX text "
                 "or a fatbin with a PTX entry (nvcc -gencode arch=compute_75,code=compute_75)");
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    default:
        vg_error("module image is neither PTX, a fatbin nor an ELF cubin");
        return CUDA_ERROR_INVALID_IMAGE;
    }
}

static CUresult module_load_image(CUmodule *out, const void *image)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!out || !image)
        return CUDA_ERROR_INVALID_VALUE;
    const char *ptx;
    size_t len;
    int owned;
    r = emu_image_ptx(image, &ptx, &len, &owned);
    if (r)
        return r;
    emu_module *m;
    r = module_from_ptx(c, ptx, len, NULL, &m);
    if (owned)
        free((char *)ptx);
    if (r)
        return r;
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

CUresult emu_module_load_ptx(emu_ctx *c, const char *ptx, size_t len, CUmodule *out)
{
    emu_module *m;
    CUresult r = module_from_ptx(c, ptx, len, NULL, &m);
    if (r)
        return r;
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

/* Reads a whole file, NUL-terminated; the caller frees *data. */
static CUresult read_file(const char *path, char **data, size_t *size)
{
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    /* Only regular files of a sane size: /dev/zero or a FIFO would otherwise be read forever. */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > EMU_MAX_IMAGE_FILE) {
        fclose(f);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *n = realloc(buf, ncap + 1);
            if (!n) {
                free(buf);
                fclose(f);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            buf = n;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
        if (len > EMU_MAX_IMAGE_FILE) { /* grew while we read it */
            free(buf);
            fclose(f);
            return CUDA_ERROR_INVALID_IMAGE;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    /* Pad so that header reads of a tiny file stay inside the buffer. */
    char *n = realloc(buf, len + 64);
    if (!n) {
        free(buf);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memset(n + len, 0, 64);
    *data = n;
    *size = len;
    return CUDA_SUCCESS;
}

/* A file image must not claim more bytes than the file holds. */
static CUresult check_file_image(const char *data, size_t size)
{
    const void *p;
    size_t n;
    enum vg_image_kind k = vg_image_locate(data, &p, &n);
    if (k == VG_IMAGE_FATBIN && (p != data || n > size))
        return CUDA_ERROR_INVALID_IMAGE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoad(CUmodule *module, const char *fname)
{
    emu_ctx *c;
    CUresult r = emu_ctx_current(&c);
    if (r)
        return r;
    if (!module || !fname)
        return CUDA_ERROR_INVALID_VALUE;
    char *data;
    size_t size;
    r = read_file(fname, &data, &size);
    if (r)
        return r;
    r = check_file_image(data, size);
    if (!r)
        r = module_load_image(module, data);
    free(data);
    return r;
}

CUresult CUDAAPI cuModuleLoadData(CUmodule *module, const void *image)
{
    return module_load_image(module, image);
}

CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                    CUjit_option *options, void **optionValues)
{
    /* JIT options tune a compiler we do not have; they are accepted and ignored. */
    if (numOptions > 0 && (!options || !optionValues))
        return CUDA_ERROR_INVALID_VALUE;
    return module_load_image(module, image);
}

CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return module_load_image(module, fatCubin);
}

static CUresult module_resolve(CUmodule h, emu_module **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    emu_module *m = (emu_module *)h;
    if (!m || !emu_obj_is(m, EMU_OBJ_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    *out = m;
    return (CUresult)atomic_load(&m->ctx->sticky);
}

static void module_unlist(emu_module *m)
{
    pthread_mutex_lock(&mod_lock);
    for (emu_module **pp = &modules; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&mod_lock);
}

CUresult CUDAAPI cuModuleUnload(CUmodule hmod)
{
    emu_module *m = NULL;
    CUresult r = module_resolve(hmod, &m);
    if (!m)
        return r; /* a poisoned context may still unload (m is set), reporting its error */
    if (m->lib)
        return CUDA_ERROR_INVALID_HANDLE; /* owned by its library */
    emu_ctx_drain(m->ctx);
    emu_printf_flush(m->ctx); /* unloading a module flushes device printf, as on a GPU */
    module_unlist(m);
    module_destroy(m);
    return r;
}

void emu_modules_free_ctx(emu_ctx *ctx)
{
    for (;;) {
        pthread_mutex_lock(&mod_lock);
        emu_module **pp = &modules;
        while (*pp && (*pp)->ctx != ctx)
            pp = &(*pp)->next;
        emu_module *m = *pp;
        if (m)
            *pp = m->next;
        pthread_mutex_unlock(&mod_lock);
        if (!m)
            break;
        module_destroy(m);
    }
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    emu_module *m;
    CUresult r = module_resolve(hmod, &m);
    if (r)
        return r;
    if (!hfunc || !name)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < m->nfuncs; i++) {
        if (strcmp(ptx_kernel_name(m->funcs[i].kernel), name) == 0) {
            *hfunc = (CUfunction)&m->funcs[i];
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult CUDAAPI cuModuleGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                   const char *name)
{
    emu_module *m;
    CUresult r = module_resolve(hmod, &m);
    if (r)
        return r;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < m->nglobals; i++) {
        ptx_global_info g;
        ptx_module_global(m->pm, i, &g);
        if (strcmp(g.name, name) == 0) {
            if (dptr)
                *dptr = (CUdeviceptr)m->global_addr[i];
            if (bytes)
                *bytes = g.size;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunctionCount(unsigned int *count, CUmodule hmod)
{
    emu_module *m;
    CUresult r = module_resolve(hmod, &m);
    if (r)
        return r;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = (unsigned)m->nfuncs;
    return CUDA_SUCCESS;
}

/* ---- libraries ---- */

static void library_free(emu_library *l)
{
    if (l->kernels)
        for (size_t i = 0; i < l->nkernels; i++)
            emu_obj_del(&l->kernels[i]);
    emu_obj_del(l);
    if (l->tmpl)
        ptx_module_free(l->tmpl);
    free(l->kernels);
    free(l->ptx);
    free(l);
}

static CUresult library_load(CUlibrary *out, const void *image, unsigned numJit, void *jitOpts,
                             unsigned numLib, void *libOpts)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!out || !image || (numJit && !jitOpts) || (numLib && !libOpts))
        return CUDA_ERROR_INVALID_VALUE;
    const char *ptx;
    size_t len;
    int owned;
    r = emu_image_ptx(image, &ptx, &len, &owned);
    if (r)
        return r;
    emu_library *l = calloc(1, sizeof *l);
    if (!l) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail_ptx;
    }
    l->ptx = malloc(len + 1);
    if (!l->ptx) {
        r = CUDA_ERROR_OUT_OF_MEMORY;
        goto fail_lib;
    }
    memcpy(l->ptx, ptx, len);
    l->ptx[len] = '\0';
    l->ptx_len = len;
    r = parse_ptx(l->ptx, len, &l->tmpl);
    if (r)
        goto fail_lib;
    l->nkernels = ptx_module_kernel_count(l->tmpl);
    l->kernels = calloc(l->nkernels ? l->nkernels : 1, sizeof *l->kernels);
    r = CUDA_ERROR_OUT_OF_MEMORY;
    if (!l->kernels || emu_obj_add(l, EMU_OBJ_LIBRARY) != 0)
        goto fail_lib;
    for (size_t i = 0; i < l->nkernels; i++) {
        l->kernels[i].lib = l;
        l->kernels[i].index = i;
        if (emu_obj_add(&l->kernels[i], EMU_OBJ_KERNEL) != 0)
            goto fail_lib;
    }
    if (owned)
        free((char *)ptx);
    *out = (CUlibrary)l;
    return CUDA_SUCCESS;
fail_lib:
    library_free(l);
fail_ptx:
    if (owned)
        free((char *)ptx);
    return r;
}

CUresult CUDAAPI cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions,
                                   CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                   unsigned int numLibraryOptions)
{
    (void)jitOptionsValues;
    (void)libraryOptionValues;
    return library_load(library, code, numJitOptions, jitOptions, numLibraryOptions,
                        libraryOptions);
}

CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *library, const char *fileName,
                                       CUjit_option *jitOptions, void **jitOptionsValues,
                                       unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                       void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptionsValues;
    (void)libraryOptionValues;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!library || !fileName)
        return CUDA_ERROR_INVALID_VALUE;
    char *data;
    size_t size;
    r = read_file(fileName, &data, &size);
    if (r)
        return r;
    r = check_file_image(data, size);
    if (!r)
        r = library_load(library, data, numJitOptions, jitOptions, numLibraryOptions,
                         libraryOptions);
    free(data);
    return r;
}

static CUresult library_resolve(CUlibrary h, emu_library **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!h || !emu_obj_is(h, EMU_OBJ_LIBRARY))
        return CUDA_ERROR_INVALID_HANDLE;
    *out = (emu_library *)h;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryUnload(CUlibrary library)
{
    emu_library *l;
    CUresult r = library_resolve(library, &l);
    if (r)
        return r;
    /* Destroy every per-context instance, after the work that may use it. */
    for (;;) {
        pthread_mutex_lock(&mod_lock);
        emu_module **pp = &modules;
        while (*pp && (*pp)->lib != l)
            pp = &(*pp)->next;
        emu_module *m = *pp;
        if (m)
            *pp = m->next;
        pthread_mutex_unlock(&mod_lock);
        if (!m)
            break;
        emu_ctx_drain(m->ctx);
        emu_printf_flush(m->ctx); /* an unload flushes device printf, as for modules */
        module_destroy(m);
    }
    library_free(l);
    return CUDA_SUCCESS;
}

/* The library's module in ctx, instantiated on first use. */
static CUresult library_instance(emu_library *l, emu_ctx *c, emu_module **out)
{
    pthread_mutex_lock(&mod_lock);
    emu_module *m = modules;
    while (m && !(m->lib == l && m->ctx == c))
        m = m->next;
    pthread_mutex_unlock(&mod_lock);
    if (m) {
        *out = m;
        return CUDA_SUCCESS;
    }
    /* Two threads racing here may each build one; the loser's copy stays listed and unused
     * until the library or context goes, which is harmless. */
    return module_from_ptx(c, l->ptx, l->ptx_len, l, out);
}

CUresult CUDAAPI cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    emu_library *l;
    emu_ctx *c;
    CUresult r = library_resolve(library, &l);
    if (r)
        return r;
    if (!pMod)
        return CUDA_ERROR_INVALID_VALUE;
    r = emu_ctx_current(&c);
    if (r)
        return r;
    emu_module *m;
    r = library_instance(l, c, &m);
    if (r)
        return r;
    *pMod = (CUmodule)m;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    emu_library *l;
    CUresult r = library_resolve(library, &l);
    if (r)
        return r;
    if (!pKernel || !name)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < l->nkernels; i++) {
        if (strcmp(ptx_kernel_name(ptx_module_kernel_at(l->tmpl, i)), name) == 0) {
            *pKernel = (CUkernel)&l->kernels[i];
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult CUDAAPI cuLibraryGetKernelCount(unsigned int *count, CUlibrary library)
{
    emu_library *l;
    CUresult r = library_resolve(library, &l);
    if (r)
        return r;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = (unsigned)l->nkernels;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels,
                                           CUlibrary library)
{
    emu_library *l;
    CUresult r = library_resolve(library, &l);
    if (r)
        return r;
    if (!kernels)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numKernels && i < l->nkernels; i++)
        kernels[i] = (CUkernel)&l->kernels[i];
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                    const char *name)
{
    CUmodule m;
    CUresult r = cuLibraryGetModule(&m, library);
    if (r)
        return r;
    return cuModuleGetGlobal(dptr, bytes, m, name);
}

static CUresult kernel_resolve(CUkernel h, emu_kernel **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (!h || !emu_obj_is(h, EMU_OBJ_KERNEL))
        return CUDA_ERROR_INVALID_HANDLE;
    *out = (emu_kernel *)h;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    emu_kernel *k;
    emu_ctx *c;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    if (!pFunc)
        return CUDA_ERROR_INVALID_VALUE;
    r = emu_ctx_current(&c);
    if (r)
        return r;
    emu_module *m;
    r = library_instance(k->lib, c, &m);
    if (r)
        return r;
    if (k->index >= m->nfuncs)
        return CUDA_ERROR_NOT_FOUND;
    *pFunc = (CUfunction)&m->funcs[k->index];
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetName(const char **name, CUkernel kernel)
{
    emu_kernel *k;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    *name = ptx_kernel_name(ptx_module_kernel_at(k->lib->tmpl, k->index));
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    emu_kernel *k;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    if (!pLib)
        return CUDA_ERROR_INVALID_VALUE;
    *pLib = (CUlibrary)k->lib;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset,
                                      size_t *paramSize)
{
    emu_kernel *k;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    const ptx_kernel *pk = ptx_module_kernel_at(k->lib->tmpl, k->index);
    if (paramIndex >= ptx_kernel_param_count(pk))
        return CUDA_ERROR_INVALID_VALUE;
    size_t off, size;
    ptx_kernel_param(pk, paramIndex, &off, &size);
    if (paramOffset)
        *paramOffset = off;
    if (paramSize)
        *paramSize = size;
    return CUDA_SUCCESS;
}

/* ---- functions ---- */

/* Accepts a CUfunction of a module, or a CUkernel cast to CUfunction (the runtime does that);
 * the latter resolves to the current context's instance. */
static CUresult func_resolve(CUfunction h, emu_func **out)
{
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (h && emu_obj_is(h, EMU_OBJ_FUNC)) {
        emu_func *f = (emu_func *)h;
        *out = f;
        return (CUresult)atomic_load(&f->mod->ctx->sticky);
    }
    if (h && emu_obj_is(h, EMU_OBJ_KERNEL)) {
        CUfunction f;
        r = cuKernelGetFunction(&f, (CUkernel)h);
        if (r)
            return r;
        *out = (emu_func *)f;
        return CUDA_SUCCESS;
    }
    return CUDA_ERROR_INVALID_HANDLE;
}

static int func_attribute(const emu_func *f, CUfunction_attribute a, int *value)
{
    const ptx_kernel *k = f->kernel;
    switch (a) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = (int)ptx_kernel_max_threads(k); break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = (int)ptx_kernel_static_shared(k); break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *value = (int)ptx_kernel_local_bytes(k); break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = ptx_kernel_num_regs(k); break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = 75; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 75; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = f->max_dynamic_shared; break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *value = f->preferred_carveout; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        *value = 0;
        break;
    default:
        return -1;
    }
    return 0;
}

CUresult CUDAAPI cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    emu_func *f;
    CUresult r = func_resolve(hfunc, &f);
    if (r)
        return r;
    if (!pi || func_attribute(f, attrib, pi) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                                      CUdevice dev)
{
    emu_kernel *k;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    if (!emu_device_at(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    /* Attributes are those of the template: set-able ones keep their defaults across instances. */
    emu_func tmp = {0};
    tmp.kernel = ptx_module_kernel_at(k->lib->tmpl, k->index);
    size_t stat = ptx_kernel_static_shared(tmp.kernel);
    tmp.max_dynamic_shared = stat < EMU_SHARED_PER_BLOCK ? (int)(EMU_SHARED_PER_BLOCK - stat) : 0;
    tmp.preferred_carveout = -1;
    if (func_attribute(&tmp, attrib, pi) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    emu_func *f;
    CUresult r = func_resolve(hfunc, &f);
    if (r)
        return r;
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
        size_t stat = ptx_kernel_static_shared(f->kernel);
        if (value < 0 || stat + (size_t)value > EMU_SHARED_PER_BLOCK_OPTIN)
            return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return CUDA_SUCCESS;
    }
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (value < -1 || value > 100)
            return CUDA_ERROR_INVALID_VALUE;
        f->preferred_carveout = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        return CUDA_ERROR_NOT_SUPPORTED;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult CUDAAPI cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
                                      CUdevice dev)
{
    CUfunction f;
    if (!emu_device_at(dev))
        return emu_check_init() ? CUDA_ERROR_NOT_INITIALIZED : CUDA_ERROR_INVALID_DEVICE;
    CUresult r = cuKernelGetFunction(&f, kernel);
    if (r)
        return r;
    return cuFuncSetAttribute(f, attrib, val);
}

CUresult CUDAAPI cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    emu_func *f;
    CUresult r = func_resolve(hfunc, &f);
    if (r)
        return r;
    if ((int)config < 0 || config > CU_FUNC_CACHE_PREFER_EQUAL)
        return CUDA_ERROR_INVALID_VALUE;
    f->cache_config = config;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    emu_kernel *k;
    CUresult r = kernel_resolve(kernel, &k);
    if (r)
        return r;
    if (!emu_device_at(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    if ((int)config < 0 || config > CU_FUNC_CACHE_PREFER_EQUAL)
        return CUDA_ERROR_INVALID_VALUE;
    k->cache_config = config; /* no caches to configure: a preference, remembered */
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                    size_t *paramSize)
{
    emu_func *f;
    CUresult r = func_resolve(func, &f);
    if (r)
        return r;
    if (paramIndex >= ptx_kernel_param_count(f->kernel))
        return CUDA_ERROR_INVALID_VALUE;
    size_t off, size;
    ptx_kernel_param(f->kernel, paramIndex, &off, &size);
    if (paramOffset)
        *paramOffset = off;
    if (paramSize)
        *paramSize = size;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char **name, CUfunction hfunc)
{
    emu_func *f;
    CUresult r = func_resolve(hfunc, &f);
    if (r)
        return r;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    *name = ptx_kernel_name(f->kernel);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    emu_func *f;
    CUresult r = func_resolve(hfunc, &f);
    if (r)
        return r;
    if (!hmod)
        return CUDA_ERROR_INVALID_VALUE;
    *hmod = (CUmodule)f->mod;
    return CUDA_SUCCESS;
}

/* ---- occupancy ---- */

/* Blocks of f that fit on one emulated multiprocessor at once: 1024 threads (a warp granule per
 * block), 16 blocks, and 64 KiB of shared memory per multiprocessor. Cooperative launches use the
 * same figure, times the multiprocessor count, as the most blocks that can be resident at once. */
static int blocks_per_sm(const emu_func *f, int block, size_t dyn)
{
    unsigned maxt = ptx_kernel_max_threads(f->kernel);
    if (block <= 0 || (unsigned)block > maxt)
        return 0;
    int warps = (block + 31) / 32;
    int n = 32 / warps;
    if (n > 16)
        n = 16;
    size_t shared = ptx_kernel_static_shared(f->kernel) + dyn;
    if (shared > EMU_SHARED_PER_BLOCK_OPTIN)
        return 0;
    if (shared > 0) {
        size_t by_shared = EMU_SHARED_PER_BLOCK_OPTIN / shared;
        if ((size_t)n > by_shared)
            n = (int)by_shared;
    }
    return n;
}

static CUresult occupancy_flags_ok(unsigned flags)
{
    return (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE) ? CUDA_ERROR_INVALID_VALUE
                                                                       : CUDA_SUCCESS;
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks,
                                                                       CUfunction func,
                                                                       int blockSize,
                                                                       size_t dynSmem,
                                                                       unsigned int flags)
{
    emu_func *f;
    CUresult r = func_resolve(func, &f);
    if (r)
        return r;
    if (!numBlocks || blockSize <= 0 || occupancy_flags_ok(flags))
        return CUDA_ERROR_INVALID_VALUE;
    *numBlocks = blocks_per_sm(f, blockSize, dynSmem);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                              int blockSize, size_t dynSmem)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize,
                                                                 dynSmem, 0);
}

CUresult CUDAAPI cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize,
                                                           CUfunction func,
                                                           CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                           size_t dynamicSMemSize,
                                                           int blockSizeLimit, unsigned int flags)
{
    emu_func *f;
    CUresult r = func_resolve(func, &f);
    if (r)
        return r;
    if (!minGridSize || !blockSize || blockSizeLimit < 0 || occupancy_flags_ok(flags))
        return CUDA_ERROR_INVALID_VALUE;
    int limit = (int)ptx_kernel_max_threads(f->kernel);
    if (blockSizeLimit > 0 && blockSizeLimit < limit)
        limit = blockSizeLimit;
    /* The largest block size that reaches the best occupancy (threads resident per
     * multiprocessor), as NVIDIA's calculator picks it. */
    int best = 0, best_threads = 0;
    for (int b = limit - limit % 32; b >= 32; b -= 32) {
        size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(b) : dynamicSMemSize;
        int n = blocks_per_sm(f, b, dyn);
        if (n * b > best_threads) {
            best_threads = n * b;
            best = b;
        }
    }
    if (best == 0 && limit > 0 && limit < 32) {
        size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(limit) : dynamicSMemSize;
        if (blocks_per_sm(f, limit, dyn) > 0)
            best = limit;
    }
    if (best == 0) {
        *blockSize = 0;
        *minGridSize = 0;
        return CUDA_SUCCESS; /* nothing fits (too much shared memory): CUDA reports zeros too */
    }
    *blockSize = best;
    size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(best) : dynamicSMemSize;
    *minGridSize = blocks_per_sm(f, best, dyn) * (int)emu_workers();
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize,
                                                  CUfunction func,
                                                  CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                  size_t dynamicSMemSize, int blockSizeLimit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func,
                                                     blockSizeToDynamicSMemSize, dynamicSMemSize,
                                                     blockSizeLimit, 0);
}

CUresult CUDAAPI cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func,
                                                         int numBlocks, int blockSize)
{
    emu_func *f;
    CUresult r = func_resolve(func, &f);
    if (r)
        return r;
    if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (blocks_per_sm(f, blockSize, 0) < numBlocks) {
        *dynamicSmemSize = 0;
        return CUDA_SUCCESS;
    }
    size_t stat = ptx_kernel_static_shared(f->kernel);
    size_t per_block = EMU_SHARED_PER_BLOCK_OPTIN / (size_t)numBlocks;
    size_t avail = per_block > stat ? per_block - stat : 0;
    if (avail > (size_t)f->max_dynamic_shared)
        avail = (size_t)f->max_dynamic_shared;
    *dynamicSmemSize = avail;
    return CUDA_SUCCESS;
}

/* Clusters need sm_90; the emulated device is sm_75 and reports no cluster launch. */
static CUresult no_clusters(CUfunction func)
{
    emu_func *f;
    CUresult r = func_resolve(func, &f);
    return r ? r : EMU_UNSUPPORTED("cluster occupancy (the emulated device has no clusters)");
}

CUresult CUDAAPI cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func,
                                                    const CUlaunchConfig *config)
{
    (void)clusterSize, (void)config;
    return no_clusters(func);
}

CUresult CUDAAPI cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func,
                                              const CUlaunchConfig *config)
{
    (void)numClusters, (void)config;
    return no_clusters(func);
}

/* ---- launches ---- */

/* A cooperative launch's grid workspace, {size, barrier} as the CUDA runtime's cooperative
 * groups read it through %envreg1:%envreg2: zeroed for each launch, so that a grid that failed
 * in the middle of a grid barrier leaves nothing behind. */
static CUresult coop_workspace(emu_ctx *ctx, ptx_launch *l)
{
    enum { WS_BYTES = 8 };
    if (!ctx->coop_ws && emu_mem_alloc(ctx, WS_BYTES, 1, &ctx->coop_ws) != CUDA_SUCCESS) {
        ctx->coop_ws = 0;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    uint32_t *ws = emu_mem_translate(ctx, ctx->coop_ws, WS_BYTES);
    if (!ws)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ws[0] = WS_BYTES;
    ws[1] = 0;
    l->envreg[1] = (uint32_t)(ctx->coop_ws >> 32);
    l->envreg[2] = (uint32_t)ctx->coop_ws;
    return CUDA_SUCCESS;
}

CUresult emu_launch_run(emu_ctx *ctx, emu_op *op)
{
    char err[256] = "";
    ptx_launch *l = &op->u.launch.launch;
    if (ptx_kernel_uses_heap(l->kernel) && emu_heap_ensure(ctx) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (l->cooperative && coop_workspace(ctx, l) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    int rc = ptx_launch_run(l, err, sizeof err);
    switch (rc) {
    case PTX_OK:
        return CUDA_SUCCESS;
    case PTX_ERR_ILLEGAL_ADDRESS:
        vg_error("kernel fault: %s", err);
        return CUDA_ERROR_ILLEGAL_ADDRESS;
    case PTX_ERR_MISALIGNED:
        vg_error("kernel fault: %s", err);
        return CUDA_ERROR_MISALIGNED_ADDRESS;
    case PTX_ERR_TRAP:
        vg_error("kernel trap: %s", err);
        return CUDA_ERROR_LAUNCH_FAILED;
    case PTX_ERR_ASSERT:
        vg_error("kernel assert: %s", err);
        return CUDA_ERROR_ASSERT;
    case PTX_ERR_UNSUPPORTED:
        vg_error("%s", err);
        return CUDA_ERROR_NOT_SUPPORTED;
    case PTX_ERR_NOMEM:
        vg_error("kernel launch out of memory: %s", err);
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    default:
        vg_error("kernel launch failed: %s", err);
        return CUDA_ERROR_LAUNCH_FAILED;
    }
}

/* Packs kernelParams (an array of one host pointer per parameter) into params. The caller's
 * array and each value are read through emu_host_read*, so a garbage pointer is
 * CUDA_ERROR_INVALID_VALUE, not a crash; two system calls in all, whatever the count. */
static CUresult read_kernel_params(const ptx_kernel *k, void **kernelParams, void *params)
{
    size_t nparams = ptx_kernel_param_count(k);
    if (nparams == 0)
        return CUDA_SUCCESS;
    enum { ON_STACK = 32 };
    void *ptr_stack[ON_STACK];
    struct emu_iov iov_stack[ON_STACK];
    void **ptrs = ptr_stack;
    struct emu_iov *iov = iov_stack;
    CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
    if (nparams > ON_STACK) {
        ptrs = malloc(nparams * sizeof *ptrs);
        iov = malloc(nparams * sizeof *iov);
        if (!ptrs || !iov)
            goto out;
    }
    r = emu_host_read(ptrs, kernelParams, nparams * sizeof *ptrs);
    if (r)
        goto out;
    for (size_t i = 0; i < nparams; i++) {
        size_t off, size;
        ptx_kernel_param(k, i, &off, &size);
        iov[i].local = (char *)params + off;
        iov[i].remote = ptrs[i];
        iov[i].len = size;
    }
    r = emu_host_readv(iov, nparams);
out:
    if (ptrs != ptr_stack)
        free(ptrs);
    if (iov != iov_stack)
        free(iov);
    return r;
}

/* Packs the CU_LAUNCH_PARAM_* list form of cuLaunchKernel's extra argument into params. */
static CUresult read_extra_params(void **extra, void *params, size_t nbytes)
{
    const void *buf = NULL;
    size_t buf_size = 0;
    int have_size = 0, ended = 0;
    for (size_t i = 0; i < 64 && !ended; i += 2) {
        void *key, *value;
        if (emu_host_read(&key, &extra[i], sizeof key))
            return CUDA_ERROR_INVALID_VALUE;
        if (key == CU_LAUNCH_PARAM_END) {
            ended = 1;
            break;
        }
        if (emu_host_read(&value, &extra[i + 1], sizeof value))
            return CUDA_ERROR_INVALID_VALUE;
        if (key == CU_LAUNCH_PARAM_BUFFER_POINTER) {
            buf = value;
        } else if (key == CU_LAUNCH_PARAM_BUFFER_SIZE) {
            if (!value || emu_host_read(&buf_size, value, sizeof buf_size))
                return CUDA_ERROR_INVALID_VALUE;
            have_size = 1;
        } else {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    if (!ended)
        return CUDA_ERROR_INVALID_VALUE;
    if (nbytes && (!buf || !have_size || buf_size < nbytes || emu_host_read(params, buf, nbytes)))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

const ptx_kernel *emu_launch_layout(void *handle)
{
    int kind = emu_obj_kind(handle);
    if (kind == EMU_OBJ_FUNC)
        return ((emu_func *)handle)->kernel;
    if (kind == EMU_OBJ_KERNEL) {
        const emu_kernel *k = handle;
        return ptx_module_kernel_at(k->lib->tmpl, k->index);
    }
    return NULL;
}

CUresult emu_pack_params(const ptx_kernel *k, void **kernelParams, void **extra, void *buf)
{
    size_t nbytes = ptx_kernel_param_bytes(k);
    memset(buf, 0, nbytes);
    if (kernelParams && extra)
        return CUDA_ERROR_INVALID_VALUE;
    if (kernelParams)
        return read_kernel_params(k, kernelParams, buf);
    if (extra)
        return read_extra_params(extra, buf, nbytes);
    return ptx_kernel_param_count(k) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

/* CUresult 9, which cuda.h does not name. The CUDA runtime hands a launch's CUresult to the
 * program unchanged (cudaGetLastError() after a launch that returned N is N, for every N: measured
 * against the CUDA 13.0 cudart by making the emulated cuLaunchKernel return each value), and on a
 * GPU a bad <<<grid, block, shared>>> gives cudaErrorInvalidConfiguration (9). So NVIDIA's driver
 * answers the runtime's launches, which pass a CUkernel cast to CUfunction, with 9; programs that
 * launch a module's CUfunction get CUDA_ERROR_INVALID_VALUE, as cuLaunchKernel is documented to
 * return (numba, CuPy and PyCUDA report that for the same mistakes). */
#define EMU_ERROR_INVALID_CONFIGURATION ((CUresult)9)

/* The launch configuration checks of a real device: every dimension at least 1 and within its
 * per-axis limit, at most 1024 threads (or the kernel's .maxntid) per block, static plus dynamic
 * shared memory within the kernel's limit. */
static int launch_config_ok(const emu_func *f, const unsigned grid[3], const unsigned block[3],
                            unsigned shared)
{
    if (!grid[0] || !grid[1] || !grid[2] || !block[0] || !block[1] || !block[2])
        return 0;
    if (grid[0] > 2147483647u || grid[1] > 65535 || grid[2] > 65535)
        return 0;
    if (block[0] > 1024 || block[1] > 1024 || block[2] > 64)
        return 0;
    uint64_t threads = (uint64_t)block[0] * block[1] * block[2];
    if (threads > ptx_kernel_max_threads(f->kernel) || threads > 1024)
        return 0;
    if (shared > (unsigned)f->max_dynamic_shared)
        return 0;
    return 1;
}

CUresult emu_launch_func(void *handle, emu_ctx *c, emu_func **out, int *is_kernel)
{
    int kind = emu_obj_kind(handle); /* one lookup decides between the two handle kinds */
    *is_kernel = kind == EMU_OBJ_KERNEL;
    if (kind == EMU_OBJ_KERNEL) {
        emu_module *m;
        const emu_kernel *kh = (const emu_kernel *)handle;
        CUresult r = library_instance(kh->lib, c, &m);
        if (r)
            return r;
        if (kh->index >= m->nfuncs)
            return CUDA_ERROR_NOT_FOUND;
        *out = &m->funcs[kh->index];
        return CUDA_SUCCESS;
    }
    if (kind != EMU_OBJ_FUNC)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_func *f = handle;
    if (f->mod->ctx != c)
        return CUDA_ERROR_INVALID_HANDLE;
    *out = f;
    return CUDA_SUCCESS;
}

size_t emu_func_param_bytes(const emu_func *f)
{
    return ptx_kernel_param_bytes(f->kernel);
}

/* The most blocks of f that can be resident on the device at once: a cooperative grid must fit. */
static uint64_t max_resident_blocks(const emu_func *f, const unsigned block[3], unsigned shared)
{
    int threads = (int)(block[0] * block[1] * block[2]);
    return (uint64_t)blocks_per_sm(f, threads, shared) * emu_workers();
}

CUresult emu_launch_build(emu_func *f, int is_kernel, void *handle, const unsigned grid[3],
                          const unsigned block[3], unsigned shared, void **kernelParams,
                          void **extra, const void *packed, int cooperative, emu_op **out)
{
    const ptx_kernel *k = f->kernel;
    if (ptx_kernel_unsupported(k)) {
        /* Refused at the call, not sticky: the module's other kernels keep working. */
        vg_error("kernel %s cannot run on the emulated GPU: %s", ptx_kernel_name(k),
                 ptx_kernel_unsupported(k));
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!launch_config_ok(f, grid, block, shared))
        return is_kernel ? EMU_ERROR_INVALID_CONFIGURATION : CUDA_ERROR_INVALID_VALUE;
    if (cooperative &&
        (uint64_t)grid[0] * grid[1] * grid[2] > max_resident_blocks(f, block, shared))
        return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    size_t nbytes = ptx_kernel_param_bytes(k);
    if (kernelParams && extra)
        return CUDA_ERROR_INVALID_VALUE;
    /* One allocation per launch: the op, then the packed parameters (16-byte aligned). */
    size_t params_at = (sizeof(emu_op) + 15) & ~(size_t)15;
    emu_op *op = malloc(params_at + (nbytes ? nbytes : 1));
    if (!op)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(op, 0, sizeof *op);
    op->bytes = (uint32_t)(params_at + (nbytes ? nbytes : 1));
    void *params = (char *)op + params_at;
    memset(params, 0, nbytes);
    CUresult r;
    if (packed)
        r = (memcpy(params, packed, nbytes), CUDA_SUCCESS);
    else if (kernelParams)
        r = read_kernel_params(k, kernelParams, params);
    else if (extra)
        r = read_extra_params(extra, params, nbytes);
    else
        r = ptx_kernel_param_count(k) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    if (r) {
        free(op);
        return r;
    }
    op->kind = EMU_OP_LAUNCH;
    op->u.launch.func = f;
    op->u.launch.handle = handle;
    ptx_launch *l = &op->u.launch.launch;
    l->kernel = k;
    memcpy(l->grid, grid, sizeof l->grid);
    memcpy(l->block, block, sizeof l->block);
    l->dynamic_shared = shared;
    l->params = params;
    l->memory = &f->mod->ctx->ptx_mem;
    l->workers = emu_workers();
    l->cooperative = cooperative != 0;
    *out = op;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction hfunc, const unsigned grid[3], const unsigned block[3],
                       unsigned shared, CUstream hStream, void **kernelParams, void **extra,
                       int cooperative)
{
    emu_func *f;
    emu_ctx *c;
    emu_stream *s;
    CUresult r = emu_check_init();
    if (r)
        return r;
    if (emu_obj_is(hfunc, EMU_OBJ_FUNC)) {
        /* A module's function reports its own context's fault first. */
        r = (CUresult)atomic_load(&((emu_func *)hfunc)->mod->ctx->sticky);
        if (r)
            return r;
    }
    /* A CUkernel runs in the context of the stream it is launched into. */
    r = emu_stream_resolve(hStream, &c, &s);
    if (r)
        return r;
    int is_kernel;
    r = emu_launch_func(hfunc, c, &f, &is_kernel);
    if (r)
        return r;
    emu_op *op;
    r = emu_launch_build(f, is_kernel, hfunc, grid, block, shared, kernelParams, extra, NULL,
                         cooperative, &op);
    if (r)
        return r;
    return emu_submit(c, s, op);
}

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                unsigned int gridDimZ, unsigned int blockDimX,
                                unsigned int blockDimY, unsigned int blockDimZ,
                                unsigned int sharedMemBytes, CUstream hStream,
                                void **kernelParams, void **extra)
{
    unsigned grid[3] = {gridDimX, gridDimY, gridDimZ};
    unsigned block[3] = {blockDimX, blockDimY, blockDimZ};
    return launch(f, grid, block, sharedMemBytes, hStream, kernelParams, extra, 0);
}

CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
                                           unsigned int gridDimY, unsigned int gridDimZ,
                                           unsigned int blockDimX, unsigned int blockDimY,
                                           unsigned int blockDimZ, unsigned int sharedMemBytes,
                                           CUstream hStream, void **kernelParams)
{
    unsigned grid[3] = {gridDimX, gridDimY, gridDimZ};
    unsigned block[3] = {blockDimX, blockDimY, blockDimZ};
    return launch(f, grid, block, sharedMemBytes, hStream, kernelParams, NULL, 1);
}

CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                  void **extra)
{
    /* The caller's structures are copied through emu_host_read: garbage is an error, not a
     * crash. */
    CUlaunchConfig cfg;
    if (!config || emu_host_read(&cfg, config, sizeof cfg))
        return CUDA_ERROR_INVALID_VALUE;
    if (cfg.numAttrs && !cfg.attrs)
        return CUDA_ERROR_INVALID_VALUE;
    if (cfg.numAttrs > 64)
        return CUDA_ERROR_INVALID_VALUE;
    int cooperative = 0;
    CUevent completion[2] = {NULL, NULL};
    for (unsigned i = 0; i < cfg.numAttrs; i++) {
        CUlaunchAttribute a;
        if (emu_host_read(&a, &cfg.attrs[i], sizeof a))
            return CUDA_ERROR_INVALID_VALUE;
        switch (a.id) {
        case CU_LAUNCH_ATTRIBUTE_IGNORE:
            break;
        case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
            cooperative = a.value.cooperative != 0;
            break;
        case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
            if (a.value.clusterDim.x > 1 || a.value.clusterDim.y > 1 || a.value.clusterDim.z > 1)
                return EMU_UNSUPPORTED("cuLaunchKernelEx with a cluster dimension");
            break;
        case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
            break; /* no clusters: nothing to schedule */
        case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
            /* Triggered at the latest when the kernel completes: we record it then. */
            completion[0] = a.value.programmaticEvent.event;
            if (!completion[0])
                return CUDA_ERROR_INVALID_VALUE;
            break;
        case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
            completion[1] = a.value.launchCompletionEvent.event;
            if (!completion[1])
                return CUDA_ERROR_INVALID_VALUE;
            break;
        case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
        case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
        case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
        case CU_LAUNCH_ATTRIBUTE_PRIORITY:
        case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
        case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
        case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
        case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
            /* Cache, priority and ordering hints: one in-order queue satisfies them all. */
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    unsigned grid[3] = {cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ};
    unsigned block[3] = {cfg.blockDimX, cfg.blockDimY, cfg.blockDimZ};
    CUresult r = launch(f, grid, block, cfg.sharedMemBytes, cfg.hStream, kernelParams, extra,
                        cooperative);
    for (int i = 0; i < 2 && r == CUDA_SUCCESS; i++)
        if (completion[i])
            r = cuEventRecord(completion[i], cfg.hStream);
    return r;
}
