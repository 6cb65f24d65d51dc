/* ptx_xops: fast handlers (see ptx_xops.h). Compiled once per variant, with XOPS_TABLE naming
 * the table it exports; -O3 -fno-strict-aliasing -ffp-contract=off (see CMakeLists.txt).
 *
 * Every handler is a loop over the 32 lanes of whole rows, written so that the compiler turns it
 * into vector code for the variant: sources are read in full before the destination is written
 * (a destination may be a source), results go to a local row, and put32/put64 copy it to the
 * destination for the lanes in mask only. A float result is whatever the one IEEE operation
 * gives (no contraction, no fast-math), so every variant, the general handler and the JIT agree
 * bit for bit. Memory handlers check the whole warp's range at once and leave anything unusual
 * (a fault, a misaligned lane, a generic address in a shared or local window) to the general
 * handler, which reports it exactly. */
#include "ptx_xops.h"
#include "ptx_math.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef XOPS_TABLE
#define XOPS_TABLE ptx_xops_baseline
#define XOPS_NAME "baseline"
#endif

#define FULL 0xffffffffu

/* Rows are 64-byte aligned (ptx_xbuild.c): saying so lets every row access be one aligned
 * vector load or store. */
#define ROW(T, off) ((T *)__builtin_assume_aligned(c->R + (off), 64))
#define R32(off) ROW(uint32_t, off)
#define RS32(off) ROW(int32_t, off)
#define RF32(off) ROW(float, off)
#define R64(off) ROW(uint64_t, off)
#define RS64(off) ROW(int64_t, off)
#define RF64(off) ROW(double, off)

/* A lane loop whose destination row may be one of its source rows: each lane reads its own
 * sources before it writes, and two rows are either the same or disjoint, so the loop may be
 * vectorized as if nothing overlapped. */
#define LANE_LOOP _Pragma("GCC ivdep") for (int l = 0; l < 32; l++)

#if defined(__AVX2__)
/* The lanes of mask as 8-lane vectors of all-ones / zero, group g of 4. */
static inline __m256i lane_mask8(uint32_t mask, int g)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i m = _mm256_set1_epi32((int)((mask >> (8 * g)) & 0xff));
    return _mm256_cmpeq_epi32(_mm256_and_si256(m, bits), bits);
}
#endif

/* Copies a computed row r (a local array) to the destination row d, for the lanes in mask. */
static inline void put32(uint32_t *d, const uint32_t *r, uint32_t mask)
{
    d = __builtin_assume_aligned(d, 64);
#if defined(__AVX2__)
    for (int g = 0; g < 4; g++) {
        __m256i v = _mm256_load_si256((const __m256i *)(const void *)(r + 8 * g));
        __m256i *dp = (__m256i *)(void *)(d + 8 * g);
        if (mask != FULL)
            v = _mm256_blendv_epi8(_mm256_load_si256(dp), v, lane_mask8(mask, g));
        _mm256_store_si256(dp, v);
    }
    return;
#endif
    if (mask == FULL) {
        LANE_LOOP
            d[l] = r[l];
        return;
    }
    LANE_LOOP
        d[l] = (mask & (1u << l)) ? r[l] : d[l];
}

static inline void put64(uint64_t *d, const uint64_t *r, uint32_t mask)
{
    d = __builtin_assume_aligned(d, 64);
#if defined(__AVX2__)
    for (int q = 0; q < 8; q++) {
        __m256i v = _mm256_load_si256((const __m256i *)(const void *)(r + 4 * q));
        __m256i *dp = (__m256i *)(void *)(d + 4 * q);
        if (mask != FULL) {
            const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
            __m256i mm = _mm256_set1_epi64x((long long)((mask >> (4 * q)) & 0xf));
            __m256i m = _mm256_cmpeq_epi64(_mm256_and_si256(mm, bits), bits);
            v = _mm256_blendv_epi8(_mm256_load_si256(dp), v, m);
        }
        _mm256_store_si256(dp, v);
    }
    return;
#endif
    if (mask == FULL) {
        LANE_LOOP
            d[l] = r[l];
        return;
    }
    LANE_LOOP
        d[l] = (mask & (1u << l)) ? r[l] : d[l];
}

static inline void put_pred(exec_ctx *c, int32_t off, uint32_t bits, uint32_t mask)
{
    uint32_t *p = R32(off);
    *p = (*p & ~mask) | (bits & mask);
}

static inline uint32_t get_pred(exec_ctx *c, int32_t off)
{
    return *R32(off);
}

static inline uint32_t f2b(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float b2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint64_t d2b(double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    return u;
}

static inline double b2d(uint64_t u)
{
    double f;
    memcpy(&f, &u, 8);
    return f;
}

/* .ftz: a subnormal input or result counts as zero of the same sign. */
static inline float ftz(float f)
{
    uint32_t u = f2b(f);
    return (u & 0x7f800000u) == 0 ? b2f(u & 0x80000000u) : f;
}

/* PTX min/max: a NaN operand gives the other operand; -0 is below +0. */
static inline float min_f32(float a, float b)
{
    float r = a < b ? a : b;
    r = a == b ? b2f(f2b(a) | f2b(b)) : r;
    r = b != b ? a : r;
    return a != a ? b : r;
}

static inline float max_f32(float a, float b)
{
    float r = a > b ? a : b;
    r = a == b ? b2f(f2b(a) & f2b(b)) : r;
    r = b != b ? a : r;
    return a != a ? b : r;
}

static inline double min_f64(double a, double b)
{
    double r = a < b ? a : b;
    r = a == b ? b2d(d2b(a) | d2b(b)) : r;
    r = b != b ? a : r;
    return a != a ? b : r;
}

static inline double max_f64(double a, double b)
{
    double r = a > b ? a : b;
    r = a == b ? b2d(d2b(a) & d2b(b)) : r;
    r = b != b ? a : r;
    return a != a ? b : r;
}

/* ---- handler templates ---------------------------------------------------------------------- */

/* d = EXPR over rows, for the lanes in mask only. DECLS runs once (it must take every pointer
 * and operand field the loop needs: inside the loop a store to the row could, as far as the
 * compiler knows, change anything reached through c or x); LOADS runs per lane and defines what
 * EXPR, of type T, reads; the result goes to the lane of a W-bit row. */
#define LANEWISE(name, T, W, DECLS, LOADS, EXPR)                                         \
    static int x_##name(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)                  \
    {                                                                                    \
        uint##W##_t *D = R##W(x->d);                                                     \
        DECLS                                                                            \
        if (mask == FULL) {                                                              \
            LANE_LOOP {                                                                  \
                LOADS                                                                    \
                T v_ = (EXPR);                                                           \
                memcpy(&D[l], &v_, W / 8);                                               \
            }                                                                            \
        } else {                                                                         \
            LANE_LOOP {                                                                  \
                LOADS                                                                    \
                T v_ = (EXPR);                                                           \
                uint##W##_t u_;                                                          \
                memcpy(&u_, &v_, W / 8);                                                 \
                D[l] = (mask & (1u << l)) ? u_ : D[l];                                   \
            }                                                                            \
        }                                                                                \
        return X_NEXT;                                                                   \
    }
#define DECL_A(T) const T *A_ = ROW(const T, x->a);
#define DECL_AB(T) DECL_A(T) const T *B_ = ROW(const T, x->b);
#define DECL_ABC(T) DECL_AB(T) const T *C_ = ROW(const T, x->c);
#define UNOP(name, T, W, EXPR) LANEWISE(name, T, W, DECL_A(T), T a = A_[l];, EXPR)
#define BINOP(name, T, W, EXPR) LANEWISE(name, T, W, DECL_AB(T), T a = A_[l]; T b = B_[l];, EXPR)
#define TERNOP(name, T, W, EXPR)                                                         \
    LANEWISE(name, T, W, DECL_ABC(T), T a = A_[l]; T b = B_[l]; T cc = C_[l];, EXPR)

/* ---- moves ---------------------------------------------------------------------------------- */

UNOP(mov32, uint32_t, 32, a)
UNOP(mov64, uint64_t, 64, a)

static int x_mov_pred(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    put_pred(c, x->d, get_pred(c, x->a) ^ x->aux, mask);
    return X_NEXT;
}

/* mov.u32 d, %sreg: per-lane registers are read from the warp, the others are uniform. */
static int x_mov_sreg(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    uint32_t r[32] __attribute__((aligned(64)));
    int sr = (int)x->aux;
    if (sr == SR_TID_X || sr == SR_TID_Y || sr == SR_TID_Z) {
        memcpy(r, c->w->tid[sr - SR_TID_X], sizeof(r));
    } else if (sr == SR_LANEID || (sr >= SR_LANEMASK_EQ && sr <= SR_LANEMASK_GE)) {
        for (int l = 0; l < 32; l++)
            r[l] = (uint32_t)ptx_exec_sreg(c, sr, l);
    } else {
        uint32_t v = (uint32_t)ptx_exec_sreg(c, sr, 0);
        for (int l = 0; l < 32; l++)
            r[l] = v;
    }
    put32(R32(x->d), r, mask);
    return X_NEXT;
}

/* ---- 32- and 64-bit integers ------------------------------------------------------------------ */

BINOP(add_i32, uint32_t, 32, a + b)
BINOP(sub_i32, uint32_t, 32, a - b)
BINOP(mul_lo_i32, uint32_t, 32, a * b)
BINOP(mul_hi_s32, int32_t, 32, (int32_t)(((int64_t)a * (int64_t)b) >> 32))
BINOP(mul_hi_u32, uint32_t, 32, (uint32_t)(((uint64_t)a * (uint64_t)b) >> 32))
TERNOP(mad_lo_i32, uint32_t, 32, a * b + cc)
BINOP(and_b32, uint32_t, 32, a & b)
BINOP(or_b32, uint32_t, 32, a | b)
BINOP(xor_b32, uint32_t, 32, a ^ b)
UNOP(not_b32, uint32_t, 32, ~a)
UNOP(neg_s32, uint32_t, 32, 0u - a)
UNOP(abs_s32, int32_t, 32, a < 0 ? (int32_t)(0u - (uint32_t)a) : a)
BINOP(shl_b32, uint32_t, 32, b >= 32 ? 0u : a << (b & 31))
BINOP(shr_u32, uint32_t, 32, b >= 32 ? 0u : a >> (b & 31))
BINOP(shr_s32, int32_t, 32, a >> ((uint32_t)b >= 32 ? 31 : ((uint32_t)b & 31)))
BINOP(min_s32, int32_t, 32, a < b ? a : b)
BINOP(max_s32, int32_t, 32, a > b ? a : b)
BINOP(min_u32, uint32_t, 32, a < b ? a : b)
BINOP(max_u32, uint32_t, 32, a > b ? a : b)
UNOP(popc_b32, uint32_t, 32, (uint32_t)__builtin_popcount(a))
UNOP(clz_b32, uint32_t, 32, a ? (uint32_t)__builtin_clz(a) : 32u)
UNOP(brev_b32, uint32_t, 32, ptx_brev32(a))

BINOP(add_i64, uint64_t, 64, a + b)
BINOP(sub_i64, uint64_t, 64, a - b)
BINOP(mul_lo_i64, uint64_t, 64, a * b)
TERNOP(mad_lo_i64, uint64_t, 64, a * b + cc)
BINOP(and_b64, uint64_t, 64, a & b)
BINOP(or_b64, uint64_t, 64, a | b)
BINOP(xor_b64, uint64_t, 64, a ^ b)
UNOP(not_b64, uint64_t, 64, ~a)
UNOP(neg_s64, uint64_t, 64, 0u - a)
BINOP(min_s64, int64_t, 64, a < b ? a : b)
BINOP(max_s64, int64_t, 64, a > b ? a : b)
BINOP(min_u64, uint64_t, 64, a < b ? a : b)
BINOP(max_u64, uint64_t, 64, a > b ? a : b)

/* 64-bit shifts: the shift amount is a 32-bit row. */
#define SHIFT64(name, T, EXPR)                                                           \
    LANEWISE(name, T, 64, DECL_A(T) const uint32_t *B_ = R32(x->b);, T a = A_[l];         \
             uint32_t b = B_[l];, EXPR)
SHIFT64(shl_b64, uint64_t, b >= 64 ? 0u : a << (b & 63))
SHIFT64(shr_u64, uint64_t, b >= 64 ? 0u : a >> (b & 63))
SHIFT64(shr_s64, int64_t, a >> (b >= 64 ? 63 : (b & 63)))

/* mul.wide: 32-bit sources, 64-bit product; mad.wide adds a 64-bit row (x->c >= 0). */
#define WIDE(name, T, EXPR)                                                              \
    LANEWISE(name, uint64_t, 64,                                                         \
             DECL_AB(T) const uint64_t *C_ = x->c >= 0 ? R64(x->c) : NULL;,              \
             T a = A_[l]; T b = B_[l]; uint64_t cc = C_ ? C_[l] : 0;, (uint64_t)(EXPR) + cc)
WIDE(mul_wide_s32, int32_t, (int64_t)a * (int64_t)b)
WIDE(mul_wide_u32, uint32_t, (uint64_t)a * (uint64_t)b)

/* ---- conversions ------------------------------------------------------------------------------ */

#define CONVERT(name, TS, WD, TD, EXPR) LANEWISE(name, TD, WD, DECL_A(TS), TS a = A_[l];, EXPR)
CONVERT(cvt_u64_u32, uint32_t, 64, uint64_t, (uint64_t)a)
CONVERT(cvt_s64_s32, int32_t, 64, uint64_t, (uint64_t)(int64_t)a)
CONVERT(cvt_u32_u64, uint64_t, 32, uint32_t, (uint32_t)a)
UNOP(cvt_rn_f32_s32, int32_t, 32, (int32_t)f2b((float)a))
UNOP(cvt_rn_f32_u32, uint32_t, 32, f2b((float)a))
UNOP(cvt_rzi_s32_f32, uint32_t, 32, (uint32_t)ptx_f32_to_s32_rz(b2f(a)))
UNOP(cvt_rzi_u32_f32, uint32_t, 32, ptx_f32_to_u32_rz(b2f(a)))
UNOP(cvt_rni_s32_f32, uint32_t, 32, (uint32_t)ptx_f32_to_s32_rz(ptx_rint_f32(b2f(a))))
UNOP(cvt_rmi_s32_f32, uint32_t, 32, (uint32_t)ptx_f32_to_s32_rz(floorf(b2f(a))))
UNOP(cvt_rpi_s32_f32, uint32_t, 32, (uint32_t)ptx_f32_to_s32_rz(ceilf(b2f(a))))
UNOP(cvt_rni_f32_f32, uint32_t, 32, f2b(ptx_rint_f32(b2f(a))))
UNOP(cvt_rzi_f32_f32, uint32_t, 32, f2b(truncf(b2f(a))))
UNOP(cvt_rmi_f32_f32, uint32_t, 32, f2b(floorf(b2f(a))))
UNOP(cvt_rpi_f32_f32, uint32_t, 32, f2b(ceilf(b2f(a))))

CONVERT(cvt_f64_f32, float, 64, double, (double)a)
CONVERT(cvt_rn_f32_f64, double, 32, float, (float)a)
CONVERT(cvt_rn_f64_s32, int32_t, 64, double, (double)a)
CONVERT(cvt_rn_f64_u32, uint32_t, 64, double, (double)a)
CONVERT(cvt_rzi_s32_f64, double, 32, int32_t, ptx_f64_to_s32_rz(a))

/* ---- f32 -------------------------------------------------------------------------------------- */

/* Each f32 operation with and without .ftz (inputs and result flushed). */
BINOP(add_f32, float, 32, a + b)
BINOP(add_ftz_f32, float, 32, ftz(ftz(a) + ftz(b)))
BINOP(sub_f32, float, 32, a - b)
BINOP(sub_ftz_f32, float, 32, ftz(ftz(a) - ftz(b)))
BINOP(mul_f32, float, 32, a * b)
BINOP(mul_ftz_f32, float, 32, ftz(ftz(a) * ftz(b)))
BINOP(div_f32, float, 32, a / b)
BINOP(div_ftz_f32, float, 32, ftz(ftz(a) / ftz(b)))
BINOP(min_f32, float, 32, min_f32(a, b))
BINOP(min_ftz_f32, float, 32, ftz(min_f32(ftz(a), ftz(b))))
BINOP(max_f32, float, 32, max_f32(a, b))
BINOP(max_ftz_f32, float, 32, ftz(max_f32(ftz(a), ftz(b))))
TERNOP(fma_f32, float, 32, fmaf(a, b, cc))
TERNOP(fma_ftz_f32, float, 32, ftz(fmaf(ftz(a), ftz(b), ftz(cc))))
UNOP(neg_f32, float, 32, -a)
UNOP(neg_ftz_f32, float, 32, ftz(-ftz(a)))
UNOP(abs_f32, float, 32, fabsf(a))
UNOP(abs_ftz_f32, float, 32, ftz(fabsf(ftz(a))))
UNOP(sqrt_f32, float, 32, sqrtf(a))
UNOP(sqrt_ftz_f32, float, 32, ftz(sqrtf(ftz(a))))
UNOP(rcp_f32, float, 32, 1.0f / a)
UNOP(rcp_ftz_f32, float, 32, ftz(1.0f / ftz(a)))
UNOP(rsqrt_f32, float, 32, 1.0f / sqrtf(a))
UNOP(rsqrt_ftz_f32, float, 32, ftz(1.0f / sqrtf(ftz(a))))

/* Transcendentals: one row call each (ptx_math.c), the same code the general handler and the
 * JIT use. */
#define F32_ROWFN(name, FN)                                                              \
    static int x_##name##_f32(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)            \
    {                                                                                    \
        float r[32] __attribute__((aligned(64)));                                                                     \
        FN(r, RF32(x->a), 0);                                                            \
        put32(R32(x->d), (const uint32_t *)(const void *)r, mask);                       \
        return X_NEXT;                                                                   \
    }                                                                                    \
    static int x_##name##_ftz_f32(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)        \
    {                                                                                    \
        float r[32] __attribute__((aligned(64)));                                                                     \
        FN(r, RF32(x->a), 1);                                                            \
        put32(R32(x->d), (const uint32_t *)(const void *)r, mask);                       \
        return X_NEXT;                                                                   \
    }
#include "ptx_math_rows.inc"

F32_ROWFN(ex2, row_ex2_f32)
F32_ROWFN(lg2, row_lg2_f32)
F32_ROWFN(sin, row_sin_f32)
F32_ROWFN(cos, row_cos_f32)
F32_ROWFN(tanh, row_tanh_f32)

/* ---- f64 -------------------------------------------------------------------------------------- */

BINOP(add_f64, double, 64, a + b)
BINOP(sub_f64, double, 64, a - b)
BINOP(mul_f64, double, 64, a * b)
BINOP(div_f64, double, 64, a / b)
BINOP(min_f64, double, 64, min_f64(a, b))
BINOP(max_f64, double, 64, max_f64(a, b))
TERNOP(fma_f64, double, 64, fma(a, b, cc))
UNOP(neg_f64, double, 64, -a)
UNOP(abs_f64, double, 64, fabs(a))
UNOP(sqrt_f64, double, 64, sqrt(a))
UNOP(rcp_f64, double, 64, 1.0 / a)

/* ---- comparisons and selection ---------------------------------------------------------------- */

#define SETP(name, T, EXPR)                                                              \
    static int x_setp_##name(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)             \
    {                                                                                    \
        const T *A = (const T *)(const void *)(c->R + x->a);                             \
        const T *B = (const T *)(const void *)(c->R + x->b);                             \
        uint32_t bits = 0;                                                               \
        for (int l = 0; l < 32; l++) {                                                   \
            T a = A[l], b = B[l];                                                        \
            bits |= (uint32_t)(EXPR) << l;                                               \
        }                                                                                \
        put_pred(c, x->d, bits, mask);                                                   \
        return X_NEXT;                                                                   \
    }
#define SETP_INT(ty, T)                                                                  \
    SETP(eq_##ty, T, a == b) SETP(ne_##ty, T, a != b) SETP(lt_##ty, T, a < b)           \
    SETP(le_##ty, T, a <= b) SETP(gt_##ty, T, a > b) SETP(ge_##ty, T, a >= b)
#define SETP_FLOAT(ty, T)                                                                \
    SETP(eq_##ty, T, a == b) SETP(ne_##ty, T, a < b || a > b) SETP(lt_##ty, T, a < b)   \
    SETP(le_##ty, T, a <= b) SETP(gt_##ty, T, a > b) SETP(ge_##ty, T, a >= b)           \
    SETP(equ_##ty, T, !(a < b || a > b)) SETP(neu_##ty, T, !(a == b))                    \
    SETP(ltu_##ty, T, !(a >= b)) SETP(leu_##ty, T, !(a > b)) SETP(gtu_##ty, T, !(a <= b)) \
    SETP(geu_##ty, T, !(a < b)) SETP(num_##ty, T, a == a && b == b)                      \
    SETP(nan_##ty, T, a != a || b != b)
SETP_INT(s32, int32_t)
SETP_INT(u32, uint32_t)
SETP_INT(s64, int64_t)
SETP_INT(u64, uint64_t)
SETP_FLOAT(f32, float)
SETP_FLOAT(f64, double)

/* selp d, a, b, p: x->c is the predicate word, x->aux ~0 when it is negated. */
LANEWISE(selp32, uint32_t, 32, DECL_AB(uint32_t) uint32_t p = *R32(x->c) ^ x->aux;,
         uint32_t a = A_[l]; uint32_t b = B_[l];, (p & (1u << l)) ? a : b)
LANEWISE(selp64, uint64_t, 64, DECL_AB(uint64_t) uint32_t p = *R32(x->c) ^ x->aux;,
         uint64_t a = A_[l]; uint64_t b = B_[l];, (p & (1u << l)) ? a : b)

/* and/or/xor/not on predicates; x->aux holds the negation of a (bit 0) and b (bit 1). */
static int x_and_pred(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    put_pred(c, x->d, get_pred(c, x->a) & get_pred(c, x->b), mask);
    return X_NEXT;
}

static int x_or_pred(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    put_pred(c, x->d, get_pred(c, x->a) | get_pred(c, x->b), mask);
    return X_NEXT;
}

static int x_xor_pred(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    put_pred(c, x->d, get_pred(c, x->a) ^ get_pred(c, x->b), mask);
    return X_NEXT;
}

static int x_not_pred(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    put_pred(c, x->d, ~get_pred(c, x->a), mask);
    return X_NEXT;
}

/* ---- warp operations -------------------------------------------------------------------------- */

/* shfl.sync.MODE.b32 d[|p], a, b, c (membermask ignored: lanes executing the shfl are read, the
 * others give 0, see ptx_alu.inc). x->e is the predicate destination or -1. */
#define SHFL(mode, SRC, OK)                                                              \
    static int x_shfl_##mode(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)             \
    {                                                                                    \
        const uint32_t *A = R32(x->a), *B = R32(x->b), *C = R32(x->c);                   \
        uint32_t r[32] __attribute__((aligned(64))), ok_bits = 0;                                                     \
        for (int l = 0; l < 32; l++) {                                                   \
            uint32_t bval = B[l] & 0x1f, cval = C[l] & 0x1f;                             \
            uint32_t segmask = (C[l] >> 8) & 0x1f;                                       \
            int maxlane = (int)(((uint32_t)l & segmask) | (cval & ~segmask));            \
            int minlane = (int)((uint32_t)l & segmask);                                  \
            (void)minlane;                                                               \
            int j = (SRC);                                                               \
            int ok = (OK);                                                               \
            if (!ok || j < 0 || j > 31)                                                  \
                j = l;                                                                   \
            r[l] = (mask >> j & 1) ? A[j] : 0;                                           \
            ok_bits |= (uint32_t)ok << l;                                                \
        }                                                                                \
        put32(R32(x->d), r, mask);                                                       \
        if (x->e >= 0)                                                                   \
            put_pred(c, x->e, ok_bits, mask);                                            \
        return X_NEXT;                                                                   \
    }
SHFL(up, l - (int)bval, j >= maxlane)
SHFL(down, l + (int)bval, j <= maxlane)
SHFL(bfly, l ^ (int)bval, j <= maxlane)
SHFL(idx, minlane | (int)(bval & ~segmask), j <= maxlane)

/* vote.sync.MODE d, {!}p: x->a the predicate, x->aux ~0 when negated. */
static int x_vote_ballot(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    uint32_t pm = (get_pred(c, x->a) ^ x->aux) & mask;
    uint32_t r[32] __attribute__((aligned(64)));
    for (int l = 0; l < 32; l++)
        r[l] = pm;
    put32(R32(x->d), r, mask);
    return X_NEXT;
}

static int x_vote_any(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    uint32_t pm = (get_pred(c, x->a) ^ x->aux) & mask;
    put_pred(c, x->d, pm ? FULL : 0, mask);
    return X_NEXT;
}

static int x_vote_all(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    uint32_t pm = (get_pred(c, x->a) ^ x->aux) & mask;
    put_pred(c, x->d, pm == mask ? FULL : 0, mask);
    return X_NEXT;
}

/* ---- memory ----------------------------------------------------------------------------------- */

/* Effective addresses of the active lanes; inactive lanes get the first active lane's address,
 * so that the range of the whole row is the range of the access. */
static inline void addrs32(const uint32_t *A, uint32_t off, uint32_t mask, uint32_t *addr)
{
    for (int l = 0; l < 32; l++)
        addr[l] = A[l] + off;
    if (mask != FULL) {
        uint32_t a0 = addr[__builtin_ctz(mask)];
        for (int l = 0; l < 32; l++)
            addr[l] = (mask & (1u << l)) ? addr[l] : a0;
    }
}

static inline void addrs64(const uint64_t *A, uint64_t off, uint32_t mask, uint64_t *addr)
{
    for (int l = 0; l < 32; l++)
        addr[l] = A[l] + off;
    if (mask != FULL) {
        uint64_t a0 = addr[__builtin_ctz(mask)];
        for (int l = 0; l < 32; l++)
            addr[l] = (mask & (1u << l)) ? addr[l] : a0;
    }
}

/* Shared memory: every lane's [addr, addr + len) inside the block's shared memory and aligned.
 * Returns the base for 32-bit offsets off[] (the addresses themselves), or NULL. */
static inline uint8_t *shared_span32(exec_ctx *c, const uint32_t *addr, uint32_t len, uint32_t *off)
{
    uint32_t hi = 0, any = 0;
    for (int l = 0; l < 32; l++) {
        hi = addr[l] > hi ? addr[l] : hi;
        any |= addr[l];
        off[l] = addr[l];
    }
    if (any & (len - 1))
        return NULL;
    if ((uint64_t)hi + len > c->b->shared_bytes)
        return NULL;
    return c->b->shared;
}

static inline uint8_t *shared_span64(exec_ctx *c, const uint64_t *addr, uint32_t len, uint32_t *off)
{
    uint64_t hi = 0, any = 0;
    for (int l = 0; l < 32; l++) {
        hi = addr[l] > hi ? addr[l] : hi;
        any |= addr[l];
        off[l] = (uint32_t)addr[l];
    }
    if (any & (len - 1))
        return NULL;
    if (hi > c->b->shared_bytes || len > c->b->shared_bytes - hi)
        return NULL;
    return c->b->shared;
}

/* Global (or generic outside the shared and local windows): one translation for the span of
 * the whole warp, which must be under 2 GiB so that lanes are 32-bit offsets from its start. */
static inline uint8_t *global_span(exec_ctx *c, const uint64_t *addr, uint32_t len, int generic,
                                   uint32_t *off)
{
    uint64_t lo = UINT64_MAX, hi = 0, any = 0;
    for (int l = 0; l < 32; l++) {
        lo = addr[l] < lo ? addr[l] : lo;
        hi = addr[l] > hi ? addr[l] : hi;
        any |= addr[l];
    }
    if (any & (len - 1))
        return NULL;
    if (generic && hi >= PTX_SHARED_WINDOW && lo < PTX_LOCAL_WINDOW + PTX_WINDOW_SIZE)
        return NULL;
    if (hi - lo >= 0x80000000u || hi + len < hi)
        return NULL;
    for (int l = 0; l < 32; l++)
        off[l] = (uint32_t)(addr[l] - lo);
    return ptx_exec_global_range(c, lo, hi + len - lo);
}

/* Lane l's element at base + off[l] + add, 8 lanes at a time: when the group's lanes read one
 * address (a broadcast) it is one load, when they read consecutive elements (a coalesced access)
 * one vector copy, else a gather. Thread blocks narrower than a warp (16 x 16 tiles) give the
 * first two patterns per group even when the warp as a whole has neither. */
static inline int group_spread(const uint32_t *off, uint32_t size, int *uniform)
{
    uint32_t same = 0, step = 0;
    for (int j = 0; j < 8; j++) {
        same |= off[j] ^ off[0];
        step |= off[j] ^ (off[0] + (uint32_t)j * size);
    }
    *uniform = same == 0;
    return step == 0;
}

static inline void gather32(uint32_t *r, const uint8_t *base, const uint32_t *off, uint32_t add,
                            uint32_t stride)
{
#if defined(__AVX2__)
    const __m256i iota = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)stride));
    __m256i vadd = _mm256_set1_epi32((int)add);
    for (int g = 0; g < 4; g++) {
        __m256i o = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(off + 8 * g)), vadd);
        __m256i first = _mm256_broadcastd_epi32(_mm256_castsi256_si128(o));
        uint32_t o0 = (uint32_t)_mm256_cvtsi256_si32(o);
        __m256i v;
        if (_mm256_testz_si256(_mm256_xor_si256(o, first), _mm256_xor_si256(o, first))) {
            uint32_t e;
            memcpy(&e, base + o0, 4);
            v = _mm256_set1_epi32((int)e);
        } else {
            __m256i step = _mm256_xor_si256(o, _mm256_add_epi32(first, iota));
            if (stride == 4 && _mm256_testz_si256(step, step))
                v = _mm256_loadu_si256((const __m256i *)(const void *)(base + o0));
            else
                v = _mm256_i32gather_epi32((const int *)(const void *)base, o, 1);
        }
        _mm256_store_si256((__m256i *)(void *)(r + 8 * g), v);
    }
    return;
#endif
    for (int g = 0; g < 4; g++) {
        const uint32_t *o = off + 8 * g;
        int uniform, contiguous = group_spread(o, stride, &uniform);
        if (uniform) {
            uint32_t v;
            memcpy(&v, base + o[0] + add, 4);
            for (int j = 0; j < 8; j++)
                r[8 * g + j] = v;
        } else if (contiguous && stride == 4) {
            memcpy(r + 8 * g, base + o[0] + add, 32);
        } else {
            for (int j = 0; j < 8; j++)
                memcpy(&r[8 * g + j], base + o[j] + add, 4);
        }
    }
}

static inline void gather64(uint64_t *r, const uint8_t *base, const uint32_t *off, uint32_t add,
                            uint32_t stride)
{
    for (int g = 0; g < 4; g++) {
        const uint32_t *o = off + 8 * g;
        int uniform, contiguous = group_spread(o, stride, &uniform);
        if (uniform) {
            uint64_t v;
            memcpy(&v, base + o[0] + add, 8);
            for (int j = 0; j < 8; j++)
                r[8 * g + j] = v;
        } else if (contiguous && stride == 8) {
            memcpy(r + 8 * g, base + o[0] + add, 64);
        } else {
            for (int j = 0; j < 8; j++)
                memcpy(&r[8 * g + j], base + o[j] + add, 8);
        }
    }
}

/* Stores of one element per lane: a group of consecutive elements is one vector copy when all
 * its lanes are active; other lanes store one by one in lane order (the highest lane wins on
 * equal addresses, as in the general handler). */
static inline void scatter32(uint8_t *base, const uint32_t *off, uint32_t add, uint32_t stride,
                             const uint32_t *v, uint32_t mask)
{
    for (int g = 0; g < 4; g++) {
        const uint32_t *o = off + 8 * g;
        uint32_t gm = (mask >> (8 * g)) & 0xff;
        int uniform;
        if (gm == 0xff && stride == 4 && group_spread(o, stride, &uniform)) {
            memcpy(base + o[0] + add, v + 8 * g, 32);
            continue;
        }
        for (; gm; gm &= gm - 1) {
            int j = __builtin_ctz(gm);
            memcpy(base + o[j] + add, &v[8 * g + j], 4);
        }
    }
}

static inline void scatter64(uint8_t *base, const uint32_t *off, uint32_t add, uint32_t stride,
                             const uint64_t *v, uint32_t mask)
{
    for (int g = 0; g < 4; g++) {
        const uint32_t *o = off + 8 * g;
        uint32_t gm = (mask >> (8 * g)) & 0xff;
        int uniform;
        if (gm == 0xff && stride == 8 && group_spread(o, stride, &uniform)) {
            memcpy(base + o[0] + add, v + 8 * g, 64);
            continue;
        }
        for (; gm; gm &= gm - 1) {
            int j = __builtin_ctz(gm);
            memcpy(base + o[j] + add, &v[8 * g + j], 8);
        }
    }
}

#define MEM_PREP_shared32                                                                \
    uint32_t addr[32], off[32];                                                          \
    addrs32(R32(x->a), (uint32_t)x->imm, mask, addr);                                    \
    uint8_t *base = shared_span32(c, addr, LEN, off);                                    \
    if (!base)                                                                           \
        return ptx_x_generic(c, x, mask);
#define MEM_PREP_shared64                                                                \
    uint64_t addr[32];                                                                   \
    uint32_t off[32];                                                                    \
    addrs64(R64(x->a), (uint64_t)x->imm, mask, addr);                                    \
    uint8_t *base = shared_span64(c, addr, LEN, off);                                    \
    if (!base)                                                                           \
        return ptx_x_generic(c, x, mask);
#define MEM_PREP_global                                                                  \
    uint64_t addr[32];                                                                   \
    uint32_t off[32];                                                                    \
    addrs64(R64(x->a), (uint64_t)x->imm, mask, addr);                                    \
    uint8_t *base = global_span(c, addr, LEN, 0, off);                                   \
    if (!base)                                                                           \
        return ptx_x_generic(c, x, mask);
#define MEM_PREP_generic                                                                 \
    uint64_t addr[32];                                                                   \
    uint32_t off[32];                                                                    \
    addrs64(R64(x->a), (uint64_t)x->imm, mask, addr);                                    \
    uint8_t *base = global_span(c, addr, LEN, 1, off);                                   \
    if (!base)                                                                           \
        return ptx_x_generic(c, x, mask);

/* Loads and stores of ELEMS elements of W bits from/to W-bit rows. SPACE: shared32 (32-bit
 * address row), shared64, global, generic; x->a is the address row, x->imm its offset; data rows
 * are x->d, e, f, g (ld) or x->b, c, f, g (st). */
#define LD(space, name, W, ELEMS)                                                        \
    static int x_ld_##space##_##name(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)     \
    {                                                                                    \
        enum { LEN = (W / 8) * ELEMS };                                                  \
        MEM_PREP_##space                                                                 \
        uint##W##_t r[ELEMS][32] __attribute__((aligned(64)));                                                        \
        const int32_t dst[4] = {x->d, x->e, x->f, x->g};                                 \
        for (int e = 0; e < ELEMS; e++)                                                  \
            gather##W(r[e], base, off, e * (W / 8), LEN);                                \
        for (int e = 0; e < ELEMS; e++)                                                  \
            put##W(R##W(dst[e]), r[e], mask);                                            \
        return X_NEXT;                                                                   \
    }

#define ST(space, name, W, ELEMS)                                                        \
    static int x_st_##space##_##name(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)     \
    {                                                                                    \
        enum { LEN = (W / 8) * ELEMS };                                                  \
        MEM_PREP_##space                                                                 \
        const int32_t srcs[4] = {x->b, x->c, x->f, x->g};                                \
        if (ELEMS == 1) {                                                                \
            scatter##W(base, off, 0, LEN, R##W(srcs[0]), mask);                          \
            return X_NEXT;                                                               \
        }                                                                                \
        for (uint32_t mm = mask; mm; mm &= mm - 1) {                                     \
            int l = __builtin_ctz(mm);                                                   \
            for (int e = 0; e < ELEMS; e++)                                              \
                memcpy(base + off[l] + e * (W / 8), &R##W(srcs[e])[l], W / 8);           \
        }                                                                                \
        return X_NEXT;                                                                   \
    }

#define MEM_SPACE(space)                                                                 \
    LD(space, b32, 32, 1) LD(space, b64, 64, 1) LD(space, v2b32, 32, 2)                 \
    LD(space, v4b32, 32, 4) LD(space, v2b64, 64, 2)                                      \
    ST(space, b32, 32, 1) ST(space, b64, 64, 1) ST(space, v2b32, 32, 2)                 \
    ST(space, v4b32, 32, 4) ST(space, v2b64, 64, 2)
MEM_SPACE(shared32)
MEM_SPACE(shared64)
MEM_SPACE(global)
MEM_SPACE(generic)

/* ld.param of a kernel parameter: one uniform value. x->imm is its byte offset. */
static int x_ld_kparam_b32(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_block *b = c->b;
    if ((uint64_t)x->imm > b->param_bytes || 4 > b->param_bytes - (uint64_t)x->imm || (x->imm & 3))
        return ptx_x_generic(c, x, mask);
    uint32_t v, r[32] __attribute__((aligned(64)));
    memcpy(&v, b->params + x->imm, 4);
    for (int l = 0; l < 32; l++)
        r[l] = v;
    put32(R32(x->d), r, mask);
    return X_NEXT;
}

static int x_ld_kparam_b64(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    ptx_block *b = c->b;
    if ((uint64_t)x->imm > b->param_bytes || 8 > b->param_bytes - (uint64_t)x->imm || (x->imm & 7))
        return ptx_x_generic(c, x, mask);
    uint64_t v, r[32] __attribute__((aligned(64)));
    memcpy(&v, b->params + x->imm, 8);
    for (int l = 0; l < 32; l++)
        r[l] = v;
    put64(R64(x->d), r, mask);
    return X_NEXT;
}

/* cvta.to.shared / cvta.shared (generic <-> shared window), 64-bit rows. */
UNOP(cvta_shared, uint64_t, 64, a + PTX_SHARED_WINDOW)
UNOP(cvta_to_shared, uint64_t, 64, a - PTX_SHARED_WINDOW)

static void jit_gather32(uint32_t *r, const uint8_t *base, const uint32_t *off)
{
    gather32(r, base, off, 0, 4);
}

static void jit_gather64(uint64_t *r, const uint8_t *base, const uint32_t *off)
{
    gather64(r, base, off, 0, 8);
}

static void jit_scatter32(uint8_t *base, const uint32_t *off, const uint32_t *v, uint32_t mask)
{
    scatter32(base, off, 0, 4, v, mask);
}

static void jit_scatter64(uint8_t *base, const uint32_t *off, const uint64_t *v, uint32_t mask)
{
    scatter64(base, off, 0, 8, v, mask);
}

const ptx_xops_table XOPS_TABLE = {
    XOPS_NAME,
    {
#define PTX_XOP_FN(n) x_##n,
        PTX_XOPS(PTX_XOP_FN)
#undef PTX_XOP_FN
    },
    jit_gather32,
    jit_gather64,
    jit_scatter32,
    jit_scatter64,
    {row_ex2_f32, row_lg2_f32, row_sin_f32, row_cos_f32, row_tanh_f32},
};
