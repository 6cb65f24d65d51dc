/* CHECK(call) for the test programs the remote tests run: a driver call that fails ends the
 * program with exit status 1 and one line naming the call, its place and its CUresult. */
#ifndef VG_TESTS_PROG_CHECK_H
#define VG_TESTS_PROG_CHECK_H

#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                            \
    do {                                                                                       \
        CUresult rc_ = (call);                                                                 \
        if (rc_ != CUDA_SUCCESS) {                                                             \
            const char *n_ = NULL;                                                             \
            cuGetErrorName(rc_, &n_);                                                          \
            fprintf(stderr, "%s:%d: %s failed: %d %s\n", __FILE__, __LINE__, #call, (int)rc_, \
                    n_ ? n_ : "?");                                                            \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#endif
