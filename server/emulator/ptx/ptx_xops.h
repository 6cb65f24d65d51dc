/* ptx_xops: the fast handlers, over whole register rows (ptx_xops.c). Private to
 * server/emulator/ptx.
 *
 * ptx_xops.c is compiled once per instruction-set variant: the baseline of the target (x86-64,
 * AArch64) and, on x86-64, AVX2+FMA. Each build exports a table of its handlers; the table of
 * the best variant the CPU supports is chosen once (ptx_xops_select) and ptx_xbuild.c takes
 * handlers from it by id. Every variant gives bit-identical results. */
#ifndef VG_PTX_XOPS_H
#define VG_PTX_XOPS_H

#include "ptx_exec.h"

#define PTX_XOPS_SETP_INT(X, ty)                                                         \
    X(setp_eq_##ty) X(setp_ne_##ty) X(setp_lt_##ty) X(setp_le_##ty) X(setp_gt_##ty)      \
    X(setp_ge_##ty)
#define PTX_XOPS_SETP_FLOAT(X, ty)                                                       \
    PTX_XOPS_SETP_INT(X, ty) X(setp_equ_##ty) X(setp_neu_##ty) X(setp_ltu_##ty)          \
    X(setp_leu_##ty) X(setp_gtu_##ty) X(setp_geu_##ty) X(setp_num_##ty) X(setp_nan_##ty)
#define PTX_XOPS_MEM(X, sp)                                                              \
    X(ld_##sp##_b32) X(ld_##sp##_b64) X(ld_##sp##_v2b32) X(ld_##sp##_v4b32)              \
    X(ld_##sp##_v2b64) X(st_##sp##_b32) X(st_##sp##_b64) X(st_##sp##_v2b32)              \
    X(st_##sp##_v4b32) X(st_##sp##_v2b64)

/* Every fast handler, by name: x_NAME in ptx_xops.c, XOP_NAME here. */
#define PTX_XOPS(X)                                                                      \
    X(mov32) X(mov64) X(mov_pred) X(mov_sreg)                                            \
    X(add_i32) X(sub_i32) X(mul_lo_i32) X(mul_hi_s32) X(mul_hi_u32) X(mad_lo_i32)        \
    X(and_b32) X(or_b32) X(xor_b32) X(not_b32) X(neg_s32) X(abs_s32) X(shl_b32)          \
    X(shr_u32) X(shr_s32) X(min_s32) X(max_s32) X(min_u32) X(max_u32) X(popc_b32)        \
    X(clz_b32) X(brev_b32)                                                               \
    X(add_i64) X(sub_i64) X(mul_lo_i64) X(mad_lo_i64) X(and_b64) X(or_b64) X(xor_b64)    \
    X(not_b64) X(neg_s64) X(min_s64) X(max_s64) X(min_u64) X(max_u64) X(shl_b64)         \
    X(shr_u64) X(shr_s64) X(mul_wide_s32) X(mul_wide_u32)                                \
    X(cvt_u64_u32) X(cvt_s64_s32) X(cvt_u32_u64) X(cvt_rn_f32_s32) X(cvt_rn_f32_u32)     \
    X(cvt_rzi_s32_f32) X(cvt_rzi_u32_f32) X(cvt_rni_s32_f32) X(cvt_rmi_s32_f32)          \
    X(cvt_rpi_s32_f32) X(cvt_rni_f32_f32) X(cvt_rzi_f32_f32) X(cvt_rmi_f32_f32)          \
    X(cvt_rpi_f32_f32) X(cvt_f64_f32) X(cvt_rn_f32_f64) X(cvt_rn_f64_s32)                \
    X(cvt_rn_f64_u32) X(cvt_rzi_s32_f64)                                                 \
    X(add_f32) X(add_ftz_f32) X(sub_f32) X(sub_ftz_f32) X(mul_f32) X(mul_ftz_f32)        \
    X(div_f32) X(div_ftz_f32) X(min_f32) X(min_ftz_f32) X(max_f32) X(max_ftz_f32)        \
    X(fma_f32) X(fma_ftz_f32) X(neg_f32) X(neg_ftz_f32) X(abs_f32) X(abs_ftz_f32)        \
    X(sqrt_f32) X(sqrt_ftz_f32) X(rcp_f32) X(rcp_ftz_f32) X(rsqrt_f32) X(rsqrt_ftz_f32)  \
    X(ex2_f32) X(ex2_ftz_f32) X(lg2_f32) X(lg2_ftz_f32) X(sin_f32) X(sin_ftz_f32)        \
    X(cos_f32) X(cos_ftz_f32) X(tanh_f32) X(tanh_ftz_f32)                                \
    X(add_f64) X(sub_f64) X(mul_f64) X(div_f64) X(min_f64) X(max_f64) X(fma_f64)         \
    X(neg_f64) X(abs_f64) X(sqrt_f64) X(rcp_f64)                                         \
    PTX_XOPS_SETP_INT(X, s32) PTX_XOPS_SETP_INT(X, u32) PTX_XOPS_SETP_INT(X, s64)        \
    PTX_XOPS_SETP_INT(X, u64) PTX_XOPS_SETP_FLOAT(X, f32) PTX_XOPS_SETP_FLOAT(X, f64)    \
    X(selp32) X(selp64) X(and_pred) X(or_pred) X(xor_pred) X(not_pred)                   \
    X(shfl_up) X(shfl_down) X(shfl_bfly) X(shfl_idx) X(vote_ballot) X(vote_any)          \
    X(vote_all)                                                                          \
    PTX_XOPS_MEM(X, shared32) PTX_XOPS_MEM(X, shared64) PTX_XOPS_MEM(X, global)          \
    PTX_XOPS_MEM(X, generic)                                                             \
    X(ld_kparam_b32) X(ld_kparam_b64) X(cvta_shared) X(cvta_to_shared)

enum {
#define PTX_XOP_ID(n) XOP_##n,
    PTX_XOPS(PTX_XOP_ID)
#undef PTX_XOP_ID
    XOP_COUNT
};

typedef struct ptx_xops_table {
    const char *name;
    ptx_xfn fn[XOP_COUNT];
    /* The element movers of the memory handlers, for the JIT's scattered accesses: r[l] = the
     * element at base + off[l] (4 or 8 bytes), and the stores of the lanes in mask, in lane
     * order. */
    void (*gather32)(uint32_t *r, const uint8_t *base, const uint32_t *off);
    void (*gather64)(uint64_t *r, const uint8_t *base, const uint32_t *off);
    void (*scatter32)(uint8_t *base, const uint32_t *off, const uint32_t *v, uint32_t mask);
    void (*scatter64)(uint8_t *base, const uint32_t *off, const uint64_t *v, uint32_t mask);
    /* The transcendentals' row forms (ptx_math_rows.inc): ex2, lg2, sin, cos, tanh; out[l] =
     * f(in[l]), with ftz flushing subnormal inputs and results; in and out may be the same. */
    void (*row_f32[5])(float *out, const float *in, int ftz);
} ptx_xops_table;

extern const ptx_xops_table ptx_xops_baseline;
#if defined(__x86_64__)
extern const ptx_xops_table ptx_xops_avx2;
#endif

/* The table for this CPU. VGPU_EMU_SIMD=baseline forces the baseline (for tests and
 * comparisons). */
const ptx_xops_table *ptx_xops_select(void);

/* Sets x->fn (and operands) to a fast handler when in has a form one covers: returns 1, 0 when
 * none does, -1 when out of memory (constant rows). */
int ptx_xops_choose(const ptx_xops_table *ops, ptx_func *f, const ptx_insn *in, ptx_xinsn *x);

int32_t ptx_xbuild_const(ptx_func *f, int kind, uint64_t value);

#endif
