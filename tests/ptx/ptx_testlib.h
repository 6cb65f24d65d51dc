/* ptx_testlib: helpers for the PTX interpreter tests: a malloc-backed device memory with
 * device addresses that are not host pointers, PTX file loading, and launch shorthands. */
#ifndef VG_PTX_TESTLIB_H
#define VG_PTX_TESTLIB_H

#include "ptx.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tmem tmem;

tmem *tmem_new(void);
void tmem_free(tmem *m);
/* Allocates size bytes of zeroed device memory; returns its device address (never 0). */
uint64_t tmem_alloc(tmem *m, size_t size);
/* Host pointer of a device address (the test's back door to device memory). */
void *tmem_host(tmem *m, uint64_t addr);
const ptx_memory *tmem_iface(tmem *m);

/* Reads a whole file; NUL-terminated; *len excludes the NUL. Aborts the test on failure. */
char *read_file(const char *path, size_t *len);
/* Parses a PTX file, failing the test with the parser's message on error. */
ptx_module *load_ptx(const char *path);

/* Packs kernel parameters: each value is written at the kernel's offset for parameter i. */
typedef struct tparams {
    uint8_t buf[4096];
    const ptx_kernel *k;
} tparams;
void tparams_init(tparams *p, const ptx_kernel *k);
void tparams_set(tparams *p, size_t i, const void *v, size_t size);
#define TP_SET(p, i, v) do { __typeof__(v) v_ = (v); tparams_set((p), (i), &v_, sizeof(v_)); } while (0)

/* Runs a 1-D launch; returns the ptx status, err gets the message. */
int run1d(const ptx_kernel *k, tparams *p, tmem *m, unsigned grid, unsigned block,
          size_t dyn_shared, unsigned workers, char *err, size_t errlen);

/* Deterministic pseudo-random numbers (xorshift), seeded per test. */
uint32_t trand(uint64_t *state);

#endif
