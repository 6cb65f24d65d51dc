/* The JIT linker: two separately compiled (-rdc=true) translation units, as PTX and as a fatbin,
 * linked into a module whose kernel calls a function and reads a variable of the other. */
#include <string.h>

#include "emu_test.h"

enum { N = 256 };

static void run_linked(const void *image)
{
    CUmodule m;
    CK(cuModuleLoadData(&m, image));
    CUfunction f;
    CK(cuModuleGetFunction(&f, m, "link_kernel"));
    CUdeviceptr d;
    CK(cuMemAlloc(&d, N * sizeof(int)));
    int n = N;
    void *args[] = {&d, &n};
    CK(cuLaunchKernel(f, 1, 1, 1, N, 1, 1, 0, NULL, args, NULL));
    int out[N];
    CK(cuMemcpyDtoH(out, d, sizeof out));
    static const int table[4] = {1000, 2000, 3000, 4000};
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], 3 * i + table[i & 3], "element %d: %d", i, out[i]);
    /* The library's variable is a module variable of the linked image. */
    CUdeviceptr var;
    size_t bytes;
    CK(cuModuleGetGlobal(&var, &bytes, m, "link_table"));
    cr_assert_eq(bytes, sizeof table);
    CK(cuModuleUnload(m));
    CK(cuMemFree(d));
}

Test(link, ptx_inputs)
{
    emu_setup();
    size_t na, nb;
    char *a = emu_read_kernel_file("link_main.ptx", &na);
    char *b = emu_read_kernel_file("link_lib.ptx", &nb);
    static char info[1024], error[1024];
    CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                           CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                           CU_JIT_OPTIMIZATION_LEVEL};
    void *vals[] = {info, (void *)(uintptr_t)sizeof info, error, (void *)(uintptr_t)sizeof error,
                    (void *)(uintptr_t)3};
    CUlinkState ls;
    CK(cuLinkCreate(5, opts, vals, &ls));
    /* The main unit first: its .extern declarations come before the definitions. */
    CK(cuLinkAddData(ls, CU_JIT_INPUT_PTX, a, na, "link_main.ptx", 0, NULL, NULL));
    CK(cuLinkAddData(ls, CU_JIT_INPUT_PTX, b, nb, "link_lib.ptx", 0, NULL, NULL));
    void *cubin;
    size_t size;
    CK(cuLinkComplete(ls, &cubin, &size));
    cr_assert_gt(size, 0);
    cr_assert_eq(error[0], '\0', "error log: %s", error);
    cr_assert_gt((size_t)(uintptr_t)vals[1], 0, "the info log size is written back");
    run_linked(cubin);
    CK(cuLinkDestroy(ls));
    cr_assert_eq(cuLinkDestroy(ls), CUDA_ERROR_INVALID_HANDLE);
    free(a);
    free(b);
}

Test(link, fatbin_and_file_inputs)
{
    emu_setup();
    size_t nb;
    char *lib = emu_read_kernel_file("link_lib.fatbin", &nb);
    CUlinkState ls;
    CK(cuLinkCreate(0, NULL, NULL, &ls));
    char path[512];
    snprintf(path, sizeof path, "%s/link_main.ptx", EMU_KERNEL_DIR);
    CK(cuLinkAddFile(ls, CU_JIT_INPUT_PTX, path, 0, NULL, NULL));
    CK(cuLinkAddData(ls, CU_JIT_INPUT_FATBINARY, lib, nb, "link_lib.fatbin", 0, NULL, NULL));
    void *cubin;
    size_t size;
    CK(cuLinkComplete(ls, &cubin, &size));
    run_linked(cubin);
    CK(cuLinkDestroy(ls));
    free(lib);
}

Test(link, errors)
{
    emu_setup();
    static char error[1024];
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {error, (void *)(uintptr_t)sizeof error};
    CUlinkState ls;
    CK(cuLinkCreate(2, opts, vals, &ls));
    size_t nc;
    char *cubin = emu_read_kernel_file("link_lib.cubin", &nc);
    cr_assert_eq(cuLinkAddData(ls, CU_JIT_INPUT_CUBIN, cubin, nc, "lib.cubin", 0, NULL, NULL),
                 CUDA_ERROR_NOT_SUPPORTED);
    cr_assert_neq(error[0], '\0', "the error log says why");
    free(cubin);
    void *out;
    size_t size;
    cr_assert_eq(cuLinkComplete(ls, &out, &size), CUDA_ERROR_INVALID_VALUE); /* no input */
    /* The same definition twice. */
    size_t nb;
    char *b = emu_read_kernel_file("link_lib.ptx", &nb);
    CK(cuLinkAddData(ls, CU_JIT_INPUT_PTX, b, nb, "one", 0, NULL, NULL));
    CK(cuLinkAddData(ls, CU_JIT_INPUT_PTX, b, nb, "two", 0, NULL, NULL));
    error[0] = '\0';
    cr_assert_eq(cuLinkComplete(ls, &out, &size), CUDA_ERROR_INVALID_PTX);
    cr_assert(strstr(error, "duplicate definition"), "error log: %s", error);
    CK(cuLinkDestroy(ls));
    /* A main unit without its library: the module load reports the missing symbols. */
    size_t na;
    char *a = emu_read_kernel_file("link_main.ptx", &na);
    CK(cuLinkCreate(2, opts, vals, &ls));
    CK(cuLinkAddData(ls, CU_JIT_INPUT_PTX, a, na, "main", 0, NULL, NULL));
    CK(cuLinkComplete(ls, &out, &size));
    cr_assert(strstr(error, "undefined"), "error log: %s", error);
    CUmodule m;
    cr_assert_neq(cuModuleLoadData(&m, out), CUDA_SUCCESS);
    CK(cuLinkDestroy(ls));
    cr_assert_eq(cuLinkAddFile(ls, CU_JIT_INPUT_PTX, "/nonexistent.ptx", 0, NULL, NULL),
                 CUDA_ERROR_INVALID_HANDLE);
    CK(cuLinkCreate(0, NULL, NULL, &ls));
    cr_assert_eq(cuLinkAddFile(ls, CU_JIT_INPUT_PTX, "/nonexistent.ptx", 0, NULL, NULL),
                 CUDA_ERROR_FILE_NOT_FOUND);
    cr_assert_eq(cuLinkAddData(ls, (CUjitInputType)77, a, na, "x", 0, NULL, NULL),
                 CUDA_ERROR_INVALID_VALUE);
    CK(cuLinkDestroy(ls));
    free(a);
    free(b);
}
