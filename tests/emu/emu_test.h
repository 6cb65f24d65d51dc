/* Helpers shared by the emulated driver's tests. */
#ifndef EMU_TEST_H
#define EMU_TEST_H

#include <criterion/criterion.h>
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(call) cr_assert_eq((call), CUDA_SUCCESS, "%s failed", #call)

/* cuInit + the primary context of device 0, made current. */
static inline CUcontext emu_setup(void)
{
    CUcontext c;
    CK(cuInit(0));
    CK(cuDevicePrimaryCtxRetain(&c, 0));
    CK(cuCtxSetCurrent(c));
    return c;
}

/* Reads a file from the kernel build directory; NUL-terminated, caller frees. */
static inline void *emu_read_kernel_file(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", EMU_KERNEL_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 64);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    if (size)
        *size = (size_t)n;
    return buf;
}

/* A function of emu_kernels.ptx, loaded once per test process into the current context. */
static inline CUfunction emu_kernel(const char *name)
{
    static CUmodule mod;
    static CUcontext loaded_in;
    CUcontext cur = NULL;
    CK(cuCtxGetCurrent(&cur));
    if (!mod || loaded_in != cur) {
        char *ptx = emu_read_kernel_file("emu_kernels.ptx", NULL);
        CK(cuModuleLoadData(&mod, ptx));
        free(ptx);
        loaded_in = cur;
    }
    CUfunction f;
    CK(cuModuleGetFunction(&f, mod, name));
    return f;
}

#endif
