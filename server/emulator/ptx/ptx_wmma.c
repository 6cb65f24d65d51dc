/* ptx_wmma: warp matrix operations (wmma.load / wmma.store / wmma.mma, sm_70 and sm_75 forms).
 *
 * Fragments. PTX leaves the mapping of a fragment's elements to lanes opaque; programs may rely
 * only on load / mma / store round trips and on element-wise operations applied to every
 * element. Ours: a matrix of R x C elements (A is M x K, B is K x N, C and D are M x N), numbered
 * row-major i = row * C + col whatever its layout in memory, is spread over the warp with E
 * elements per lane, element e of lane l holding number (l * E + e) mod (R * C). E is what the
 * fragment's registers hold (f16: 2 per 32-bit register, low half first; s8/u8: 4, lowest byte
 * first; f32/s32: 1). Where 32 x E exceeds R x C (f16 A and B of most shapes) each element is
 * held by more than one lane, as on a GPU; mma reads each from its first holder (lane i / E).
 *
 * Arithmetic. f16 inputs: D[i][j] = C[i][j] (f32, or f16 widened), then for k = 0, 1, ... K-1
 * in that order D[i][j] += A[i][k] * B[k][j] in f32 (the product of two halves is exact in f32,
 * so each step rounds once), then D is stored as f32 or rounded to f16 (nearest even). This is
 * what a CPU reference looping over k in f32 computes, bit for bit. s8/u8 inputs: exact integer
 * sums; .satfinite clamps the result to the s32 range, else it wraps. The matrix is read and
 * written whole, by the warp (wmma is .sync.aligned: every lane names the same address and
 * stride; the first active lane's are used), each element checked like any access. */
#include "ptx_exec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define WMMA_MAX 512  /* elements of the largest matrix (32 x 16) */

static const uint8_t shape_mnk[3][3] = {{16, 16, 16}, {32, 8, 16}, {8, 32, 16}};

/* Rows and columns of a fragment's matrix. */
static void frag_dims(int shape, int frag, int *rows, int *cols)
{
    int m = shape_mnk[shape][0], n = shape_mnk[shape][1], k = shape_mnk[shape][2];
    *rows = frag == WMMA_B ? k : m;
    *cols = frag == WMMA_A ? k : n;
}

static int elem_bytes(int type)
{
    return ptx_type_bytes(type);
}

/* The register list of an OPK_LIST operand. */
static const int32_t *list_regs(const exec_ctx *c, const ptx_operand *o)
{
    return c->m->call_args + o->imm;
}

/* Element e (raw bits) of lane l's fragment held in the list's registers. */
static uint32_t frag_get(const exec_ctx *c, const ptx_operand *o, int bytes, int l, int e)
{
    int per = 4 / bytes;
    int32_t reg = list_regs(c, o)[e / per];
    uint32_t v = ((const uint32_t *)(const void *)(c->R + c->f->xroff[reg]))[l];
    return bytes == 4 ? v : (v >> (8 * bytes * (e % per))) & ((1u << (8 * bytes)) - 1);
}

static void frag_put(exec_ctx *c, const ptx_operand *o, int bytes, int l, int e, uint32_t bits)
{
    int per = 4 / bytes;
    int32_t reg = list_regs(c, o)[e / per];
    uint32_t *row = (uint32_t *)(void *)(c->R + c->f->xroff[reg]);
    if (bytes == 4) {
        row[l] = bits;
        return;
    }
    int sh = 8 * bytes * (e % per);
    uint32_t m = ((1u << (8 * bytes)) - 1) << sh;
    row[l] = (row[l] & ~m) | ((bits << sh) & m);
}

/* The whole matrix of a fragment (raw bits, row-major), from each element's first holder. */
static void frag_gather(const exec_ctx *c, const ptx_operand *o, int type, int rows, int cols,
                        uint32_t *out)
{
    int bytes = elem_bytes(type), total = rows * cols;
    int per_lane = o->nvec * (4 / bytes);
    for (int i = 0; i < total; i++)
        out[i] = frag_get(c, o, bytes, i / per_lane, i % per_lane);
}

/* Writes the matrix into the fragments of the lanes in mask. */
static void frag_scatter(exec_ctx *c, const ptx_operand *o, int type, int rows, int cols,
                         const uint32_t *in, uint32_t mask)
{
    int bytes = elem_bytes(type), total = rows * cols;
    int per_lane = o->nvec * (4 / bytes);
    for (uint32_t mm = mask; mm; mm &= mm - 1) {
        int l = __builtin_ctz(mm);
        for (int e = 0; e < per_lane; e++)
            frag_put(c, o, bytes, l, e, in[(l * per_lane + e) % total]);
    }
}

/* The address, space and stride (in elements) of a load or store, from lane l. */
static int mem_operands(exec_ctx *c, const ptx_insn *in, const ptx_operand *ao, int l,
                        int rows, int cols, uint64_t *addr, int *space, uint64_t *stride)
{
    *addr = ptx_exec_lane_addr(c, in, ao, l, space);
    const ptx_operand *so = &in->ops[2];
    int col_major = in->cmp & 1;
    if (so->kind == OPK_IMM) {
        *stride = (uint32_t)so->imm;
    } else if (so->kind == OPK_REG) {
        const uint8_t *row = c->R + c->f->xroff[so->reg];
        *stride = c->f->xkind[so->reg] == XK_64 ? ((const uint64_t *)(const void *)row)[l]
                                                : ((const uint32_t *)(const void *)row)[l];
    } else {
        *stride = (uint64_t)(col_major ? rows : cols); /* packed */
    }
    return col_major;
}

/* Host pointer of element (r, col) of the matrix in memory, or NULL (the launch failed). */
static uint8_t *elem_ptr(exec_ctx *c, const ptx_insn *in, int space, uint64_t base, uint64_t stride,
                         int col_major, int r, int col, int bytes, int l)
{
    uint64_t idx = col_major ? (uint64_t)col * stride + (uint64_t)r : (uint64_t)r * stride + (uint64_t)col;
    uint64_t a = base + idx * (uint64_t)bytes;
    uint8_t *p = ptx_exec_lane_ptr(c, space, a, (size_t)bytes, l);
    if (!p)
        ptx_exec_fail(c, in, PTX_ERR_ILLEGAL_ADDRESS, "illegal address 0x%llx (%d bytes) by wmma of thread %u",
                      (unsigned long long)a, bytes, c->w->index * 32 + (unsigned)l);
    return p;
}

static int wmma_load_store(exec_ctx *c, const ptx_insn *in, uint32_t mask)
{
    int load = in->op == OP_WMMA_LOAD;
    const ptx_operand *fo = &in->ops[load ? 0 : 1], *ao = &in->ops[load ? 1 : 0];
    int rows, cols, space, bytes = elem_bytes(in->type);
    frag_dims(in->boolop, in->mode, &rows, &cols);
    int l0 = __builtin_ctz(mask);
    uint64_t base, stride;
    int col_major = mem_operands(c, in, ao, l0, rows, cols, &base, &space, &stride);
    uint32_t m[WMMA_MAX];
    if (!load)
        frag_gather(c, fo, in->type, rows, cols, m);
    for (int r = 0; r < rows; r++) {
        for (int col = 0; col < cols; col++) {
            uint8_t *p = elem_ptr(c, in, space, base, stride, col_major, r, col, bytes, l0);
            if (!p)
                return c->b->status;
            uint32_t *v = &m[r * cols + col];
            if (load) {
                *v = 0;
                memcpy(v, p, (size_t)bytes); /* little-endian host */
            } else {
                memcpy(p, v, (size_t)bytes);
            }
        }
    }
    if (load)
        frag_scatter(c, fo, in->type, rows, cols, m, mask);
    return X_NEXT;
}

static float f32_of(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* A floating-point accumulator element as f32 (C may be f16). */
static float acc_in(uint32_t bits, int type)
{
    return type == T_F16 ? ptx_f16_to_f32((uint16_t)bits) : f32_of(bits);
}

static uint32_t acc_out(float v, int type, int sat)
{
    if (sat && isinf(v))
        v = copysignf(type == T_F16 ? 65504.0f : 3.40282347e38f, v);
    return type == T_F16 ? ptx_f32_to_f16(v) : bits_of(v);
}

static int wmma_mma(exec_ctx *c, const ptx_insn *in, uint32_t mask)
{
    int shape = in->boolop;
    int M = shape_mnk[shape][0], N = shape_mnk[shape][1], K = shape_mnk[shape][2];
    int at = in->type, ct = in->type2, dt = in->vec;
    uint32_t a[WMMA_MAX], bm[WMMA_MAX], cm[WMMA_MAX], d[WMMA_MAX];
    frag_gather(c, &in->ops[1], at, M, K, a);
    frag_gather(c, &in->ops[2], at, K, N, bm);
    frag_gather(c, &in->ops[3], ct, M, N, cm);
    if (at == T_F16) {
        float af[WMMA_MAX], bf[WMMA_MAX];
        for (int i = 0; i < M * K; i++)
            af[i] = ptx_f16_to_f32((uint16_t)a[i]);
        for (int i = 0; i < K * N; i++)
            bf[i] = ptx_f16_to_f32((uint16_t)bm[i]);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float acc = acc_in(cm[i * N + j], ct);
                for (int k = 0; k < K; k++)
                    acc += af[i * K + k] * bf[k * N + j];
                d[i * N + j] = acc_out(acc, dt, in->sat);
            }
    } else {
        int sgn = at == T_S8;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                int64_t acc = (int32_t)cm[i * N + j];
                for (int k = 0; k < K; k++) {
                    uint32_t x = a[i * K + k], y = bm[k * N + j];
                    int64_t xv = sgn ? (int8_t)x : (int64_t)(uint8_t)x;
                    int64_t yv = sgn ? (int8_t)y : (int64_t)(uint8_t)y;
                    acc += xv * yv;
                }
                if (in->sat)
                    acc = acc > INT32_MAX ? INT32_MAX : acc < INT32_MIN ? INT32_MIN : acc;
                d[i * N + j] = (uint32_t)acc;
            }
    }
    frag_scatter(c, &in->ops[0], dt, M, N, d, mask);
    return X_NEXT;
}

int ptx_x_wmma(exec_ctx *c, const ptx_xinsn *x, uint32_t mask)
{
    const ptx_insn *in = x->in;
    return in->op == OP_WMMA_MMA ? wmma_mma(c, in, mask) : wmma_load_store(c, in, mask);
}
