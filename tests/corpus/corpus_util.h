/* Helpers for the kernel corpus harness: seeded random inputs, image loading in every form the
 * driver accepts, device buffers released by the fixture, half-precision reference conversions.
 *
 * Every helper that talks to the driver asserts (Criterion) on failure with the CUresult's name,
 * so a test body reads as the kernel's story, not as error plumbing. */
#ifndef CORPUS_UTIL_H
#define CORPUS_UTIL_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

/* ---- driver calls ---- */

/* Name of a CUresult for messages ("CUDA_ERROR_ILLEGAL_ADDRESS (700)"); never NULL. */
const char *corpus_err(CUresult r);

#define CK(call)                                                                             \
    do {                                                                                     \
        CUresult ck_r_ = (call);                                                             \
        cr_assert(ck_r_ == CUDA_SUCCESS, "%s failed: %s (seed %llu)", #call, corpus_err(ck_r_), \
                  (unsigned long long)corpus_seed());                                        \
    } while (0)

/* Fixture: cuInit, device 0, its primary context made current. corpus_teardown frees every
 * buffer from corpus_alloc and every module from corpus_load, then releases the context. */
void corpus_setup(void);
void corpus_teardown(void);

/* ---- random inputs ---- */

/* The seed of this test: VGPU_CORPUS_SEED when set (so a failure can be replayed), else fresh
 * from the clock and pid. Printed to stderr once per test. */
uint64_t corpus_seed(void);
uint64_t rng_u64(void);
uint32_t rng_u32(void);
float rng_float(float lo, float hi);   /* uniform in [lo, hi) */
double rng_double(double lo, double hi);
int rng_int(int lo, int hi);           /* uniform in [lo, hi] */

/* ---- modules ---- */

enum corpus_form {
    FORM_PTX_DATA,      /* NAME.ptx text through cuModuleLoadData */
    FORM_FATBIN,        /* NAME.fatbin through cuModuleLoadFatBinary */
    FORM_FATBIN_SM80,   /* NAME.sm80.fatbin through cuModuleLoadData */
    FORM_PTX_FILE,      /* cuModuleLoad(".../NAME.ptx") */
    FORM_FATBIN_FILE,   /* cuModuleLoad(".../NAME.fatbin") */
    FORM_COUNT
};
const char *corpus_form_name(enum corpus_form form);

/* Loads tests/kernels/NAME.cu's image in the given form (directory: VGPU_CORPUS_DIR, else the
 * build tree's). The module is unloaded by corpus_teardown. */
CUmodule corpus_load(const char *name, enum corpus_form form);
CUfunction corpus_func(CUmodule mod, const char *kernel);
/* Drops the most recent module from teardown's list (the test unloaded it itself). */
void corpus_forget_last_module(void);

/* ---- device memory ---- */

/* cuMemAlloc'd buffer, freed by corpus_teardown. */
CUdeviceptr corpus_alloc(size_t bytes);
CUdeviceptr corpus_upload(const void *host, size_t bytes);   /* alloc + HtoD */
void corpus_download(void *host, CUdeviceptr dev, size_t bytes);
/* Fills a device buffer with a byte pattern through HtoD (no memset: keep the corpus's use of
 * the API to what it tests). */
void corpus_fill(CUdeviceptr dev, size_t bytes, unsigned char pattern);
/* Host buffer, freed by corpus_teardown. */
void *corpus_host(size_t bytes);

/* Launches with kernelParams and synchronizes, asserting both succeed. */
void corpus_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned shared, void **params);

/* ---- half precision (IEEE binary16) reference ---- */

/* Rounds x to the nearest half, ties to even, with subnormals, overflow to infinity and NaN. */
uint16_t half_from_double(double x);
double half_to_double(uint16_t h);

#endif
