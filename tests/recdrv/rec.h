/* The recording test driver (a libcuda.so.1 for tests, loaded by gpu-server with --driver) and
 * the test that drives every forwarded call through the stub to it.
 *
 * The driver writes one line per call it receives to the file VGPU_REC_LOG names:
 *     NAME inputs... | outputs...
 * inputs as the driver got them (integers in decimal, pointers and handles as 0x..., buffers as
 * [hex], handle arrays as [0x.. 0x..], strings quoted, an output pointer as o or - for NULL);
 * outputs as it wrote them. Outputs are deterministic: a value of output k of NAME is
 * rec_out_value(NAME, k), a buffer is rec_fill(.., k), a handle a new fake object. The test
 * builds the line it expects (handles as the driver's objects, which it learnt from the lines
 * of the calls that created them) and compares the part before '|'; then it checks what came
 * back to the caller against the same rules. */
#ifndef VG_REC_H
#define VG_REC_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

/* ---- log lines (both sides) ---- */
struct rec_line {
    char buf[8192];
    size_t len;
    int overflow;
};
void rec_begin(struct rec_line *l, const char *name);
void rec_u64(struct rec_line *l, uint64_t v);
void rec_ptr(struct rec_line *l, uint64_t v);
void rec_float(struct rec_line *l, float f);
void rec_bytes(struct rec_line *l, const void *p, size_t n);
void rec_handles(struct rec_line *l, const void *arr, size_t n);
void rec_str(struct rec_line *l, const char *s);
void rec_o(struct rec_line *l, const void *p);
void rec_sep(struct rec_line *l);

/* Deterministic outputs. */
uint64_t rec_out_value(const char *name, int k);
void rec_fill(void *p, size_t n, int k);

/* ---- the driver side (rec_driver.c) ---- */
void rec_end(struct rec_line *l);           /* writes the line to the log */
void rec_name_only(const char *name);       /* a call the driver only notes */
void *rec_new_handle(int salt);             /* a fresh fake object */
CUdeviceptr rec_alloc(uint64_t bytes);      /* fresh fake device memory */
void *rec_current_ctx(void);
void rec_strbuf(struct rec_line *l, char *buf, long long len);

/* ---- the test side (test_recdrv.c) ---- */
struct rec_test;
typedef void (*rec_case_fn)(struct rec_test *t);
struct rec_case {
    unsigned call;
    const char *name;
    rec_case_fn fn;
};
extern const struct rec_case rec_generated_cases[];
extern const unsigned rec_generated_count;
/* Variants with one forged handle or one address outside the session's memory. */
extern const struct rec_case rec_hostile_cases[];
extern const unsigned rec_hostile_count;

/* A handle of kind type the test made earlier; a new one (to be destroyed by the call). */
uint64_t rec_h(struct rec_test *t, int type);
uint64_t rec_fresh(struct rec_test *t, int type);
/* The driver's object behind the client's id. */
uint64_t rec_real(struct rec_test *t, int type, uint64_t id);
/* An address inside the test's device allocation; a new allocation (to be freed by the call). */
CUdeviceptr rec_dev(struct rec_test *t);
CUdeviceptr rec_fresh_alloc(struct rec_test *t);
void rec_handles_of(struct rec_line *l, struct rec_test *t, int type, void *const *ids, size_t n);

/* Checks of a case: the call succeeded and the driver's last line for name starts with e's
 * inputs (pipelined: after a synchronize); outputs that came back. */
void rec_check(struct rec_test *t, const char *name, CUresult rc, const struct rec_line *e, int pipelined);
void rec_check_value(struct rec_test *t, const char *name, double got, double want);
void rec_check_fill(struct rec_test *t, const char *name, const void *p, size_t n, int k);
void rec_check_ids(struct rec_test *t, const char *name, int type, void *const *ids, size_t n);
void rec_check_nonzero(struct rec_test *t, const char *name, uint64_t v);
void rec_check_ctx(struct rec_test *t, const char *name, uint64_t id);
void rec_check_str(struct rec_test *t, const char *name, const char *got, long long len);

/* Hostile cases: a forged id of a handle kind (right tag, no such object); how many calls of
 * name the driver has seen; the call failed (pipelined: by the next synchronize) and the driver
 * saw no more calls of name than before. */
uint64_t rec_forged(struct rec_test *t, int type);
unsigned rec_seen(struct rec_test *t, const char *name);
void rec_check_refused(struct rec_test *t, const char *name, const char *what, CUresult rc, unsigned before,
                       int pipelined);

#endif
