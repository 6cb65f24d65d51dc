/* cuGetErrorName / cuGetErrorString for both libcuda.so.1 builds, from a table generated from
 * cuda.h (gen_errors.py), so every code of the installed header has its name and description. */
#include <cuda.h>
#include <stddef.h>

#include "cuerrors.h"

struct err {
    int value;
    const char *name, *desc;
};

static const struct err errors[] = {
#define VG_ERR_ROW(v, n, d) {v, n, d},
    VG_ERRORS(VG_ERR_ROW)
#undef VG_ERR_ROW
};

static const struct err *find(CUresult e)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (errors[i].value == (int)e)
            return &errors[i];
    return NULL;
}

CUresult CUDAAPI cuGetErrorName(CUresult error, const char **str)
{
    if (!str)
        return CUDA_ERROR_INVALID_VALUE;
    const struct err *e = find(error);
    *str = e ? e->name : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char **str)
{
    if (!str)
        return CUDA_ERROR_INVALID_VALUE;
    const struct err *e = find(error);
    *str = e ? e->desc : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
