/* emu_sample: texture sampling and surface addressing (see emu_sample.h for what it does). */
#include "emu_sample.h"

#include <math.h>
#include <string.h>

#include "emu.h"

/* ---- element decoding ---- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int emu_tex_returns_float(const emu_tex_view *v)
{
    switch (v->fmt_kind) {
    case EMU_FMT_FLOAT:
    case EMU_FMT_HALF:
    case EMU_FMT_UNORM:
    case EMU_FMT_SNORM:
        return 1;
    default:
        /* 8- and 16-bit integers may be read as normalized floats; 32-bit ones never are. */
        return !v->read_as_int && v->comp_bytes < 4;
    }
}

/* Raw integer value of one component (sign-extended for signed kinds). */
static int64_t comp_int(const unsigned char *p, unsigned bytes, int is_signed)
{
    switch (bytes) {
    case 1: return is_signed ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return is_signed ? (int64_t)(int16_t)v : (int64_t)v;
    }
    default: {
        uint32_t v;
        memcpy(&v, p, 4);
        return is_signed ? (int64_t)(int32_t)v : (int64_t)v;
    }
    }
}

static float srgb_to_linear(float c)
{
    return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}

/* The four values of one texel, as floats (float-returning views) or integers. Missing channels
 * read as 0, and alpha as 1. */
static void texel(const emu_tex_view *v, const unsigned char *p, float f[4], int32_t i[4])
{
    int is_signed = v->fmt_kind == EMU_FMT_SINT || v->fmt_kind == EMU_FMT_SNORM;
    for (unsigned c = 0; c < 4; c++) {
        if (c >= v->channels) {
            f[c] = c == 3 ? 1.0f : 0.0f;
            i[c] = c == 3 ? 1 : 0;
            continue;
        }
        const unsigned char *cp = p + c * v->comp_bytes;
        switch (v->fmt_kind) {
        case EMU_FMT_FLOAT:
            memcpy(&f[c], cp, 4);
            break;
        case EMU_FMT_HALF: {
            uint16_t h;
            memcpy(&h, cp, 2);
            f[c] = half_to_float(h);
            break;
        }
        default: {
            int64_t raw = comp_int(cp, v->comp_bytes, is_signed);
            i[c] = (int32_t)raw;
            double top = is_signed ? (double)((1ll << (v->comp_bytes * 8 - 1)) - 1)
                                   : (double)((1ll << (v->comp_bytes * 8)) - 1);
            float n = (float)((double)raw / top);
            f[c] = n < -1.0f ? -1.0f : n;
            break;
        }
        }
    }
    if (v->srgb && (v->fmt_kind == EMU_FMT_UNORM || v->fmt_kind == EMU_FMT_UINT) &&
        v->comp_bytes == 1)
        for (unsigned c = 0; c < 3 && c < v->channels; c++)
            f[c] = srgb_to_linear(f[c]);
}

/* ---- addressing ---- */

/* Coordinates beyond this many texels are clamped first, so that floor() fits a long. */
#define COORD_LIMIT 1e9f

static float sane(float c)
{
    if (c != c)
        return 0.0f; /* NaN */
    return c < -COORD_LIMIT ? -COORD_LIMIT : c > COORD_LIMIT ? COORD_LIMIT : c;
}

/* A coordinate in texels of an extent of n, after wrap or mirror of normalized coordinates. */
static float to_texels(float c, size_t n, int mode, int normalized)
{
    c = sane(c);
    if (!normalized)
        return c;
    if (mode == EMU_ADDR_WRAP) {
        c -= floorf(c);
    } else if (mode == EMU_ADDR_MIRROR) {
        float t = c - 2.0f * floorf(c * 0.5f);
        c = t > 1.0f ? 2.0f - t : t;
    }
    return sane(c * (float)n);
}

/* The element index an integer texel position addresses, or -1 for the border. */
static long address(long i, size_t n, int mode, int normalized)
{
    if (i >= 0 && (size_t)i < n)
        return i;
    if (mode == EMU_ADDR_BORDER)
        return -1;
    long ln = (long)n;
    if (normalized && mode == EMU_ADDR_WRAP) {
        long m = i % ln;
        return m < 0 ? m + ln : m;
    }
    if (normalized && mode == EMU_ADDR_MIRROR) {
        long m = i % (2 * ln);
        if (m < 0)
            m += 2 * ln;
        return m < ln ? m : 2 * ln - 1 - m;
    }
    return i < 0 ? 0 : ln - 1;
}

/* Per axis: the (one or two) element indices a fetch touches and their weights. */
struct axis {
    long idx[2];
    float w[2];
    int n;
};

static void axis_point(struct axis *a, float u, size_t n, int mode, int normalized)
{
    a->idx[0] = address((long)floorf(u), n, mode, normalized);
    a->w[0] = 1.0f;
    a->n = 1;
}

static void axis_linear(struct axis *a, float u, size_t n, int mode, int normalized)
{
    float t = u - 0.5f;
    float fl = floorf(t);
    float frac = t - fl;
    frac = roundf(frac * 256.0f) / 256.0f; /* the hardware's 8-bit fraction */
    long i0 = (long)fl;
    a->idx[0] = address(i0, n, mode, normalized);
    a->idx[1] = address(i0 + 1, n, mode, normalized);
    a->w[0] = 1.0f - frac;
    a->w[1] = frac;
    a->n = 2;
}

static const unsigned char *texel_at(const emu_tex_view *v, const emu_tex_level *lv, long x, long y,
                                     long z)
{
    size_t elem = (size_t)v->comp_bytes * v->channels;
    return lv->data + (size_t)z * lv->slice_bytes + (size_t)y * lv->row_bytes + (size_t)x * elem;
}

/* Filters the texels of level lv around coordinates u[] (texel units) on slice `slice` (a layer
 * or face; -1 when the third axis is spatial). Writes floats, or integers for point fetches of
 * integer-returning views. */
static void filter_level(const emu_tex_view *v, const emu_tex_level *lv, const float u[3],
                         long slice, int force_clamp, float fo[4], int32_t io[4])
{
    size_t ext[3] = {lv->width, lv->height, lv->depth};
    int dims = v->dims;
    struct axis ax[3];
    for (int d = 0; d < 3; d++) {
        int mode = force_clamp ? EMU_ADDR_CLAMP : v->address[d];
        if (d >= dims) {
            ax[d].idx[0] = d == 2 && slice >= 0 ? slice : 0;
            ax[d].w[0] = 1.0f;
            ax[d].n = 1;
        } else if (v->filter == EMU_FILTER_LINEAR) {
            axis_linear(&ax[d], u[d], ext[d], mode, v->normalized || force_clamp);
        } else {
            axis_point(&ax[d], u[d], ext[d], mode, v->normalized || force_clamp);
        }
    }
    float acc[4] = {0, 0, 0, 0};
    for (int k = 0; k < ax[2].n; k++)
        for (int j = 0; j < ax[1].n; j++)
            for (int i = 0; i < ax[0].n; i++) {
                float w = ax[0].w[i] * ax[1].w[j] * ax[2].w[k];
                float f[4];
                int32_t iv[4];
                if (ax[0].idx[i] < 0 || ax[1].idx[j] < 0 || ax[2].idx[k] < 0) {
                    for (int c = 0; c < 4; c++) {
                        f[c] = v->border[c];
                        iv[c] = (int32_t)v->border[c];
                    }
                } else {
                    texel(v, texel_at(v, lv, ax[0].idx[i], ax[1].idx[j], ax[2].idx[k]), f, iv);
                }
                for (int c = 0; c < 4; c++)
                    acc[c] += w * f[c];
                if (i == 0 && j == 0 && k == 0)
                    memcpy(io, iv, sizeof iv);
            }
    memcpy(fo, acc, sizeof acc);
}

/* ---- cube maps ---- */

/* Picks the face of a direction and the normalized face coordinates, as CUDA and the graphics
 * APIs define them: +x, -x, +y, -y, +z, -z are faces 0..5. */
static int cube_face(float x, float y, float z, float *s, float *t)
{
    float ax = fabsf(x), ay = fabsf(y), az = fabsf(z);
    float sc, tc, ma;
    int face;
    if (ax >= ay && ax >= az) {
        face = x >= 0 ? 0 : 1;
        sc = x >= 0 ? -z : z;
        tc = -y;
        ma = ax;
    } else if (ay >= az) {
        face = y >= 0 ? 2 : 3;
        sc = x;
        tc = y >= 0 ? z : -z;
        ma = ay;
    } else {
        face = z >= 0 ? 4 : 5;
        sc = z >= 0 ? x : -x;
        tc = -y;
        ma = az;
    }
    if (ma == 0.0f || ma != ma) {
        *s = *t = 0.5f;
        return 0;
    }
    *s = (sc / ma + 1.0f) * 0.5f;
    *t = (tc / ma + 1.0f) * 0.5f;
    return face;
}

/* ---- levels of detail ---- */

static float choose_lod(const emu_tex_view *v, const ptx_tex_request *q)
{
    float lod = 0.0f;
    if (q->lod_kind == PTX_TEX_LOD_LEVEL) {
        lod = sane(q->lod);
    } else if (q->lod_kind == PTX_TEX_LOD_GRAD) {
        const emu_tex_level *l0 = &v->levels[0];
        size_t ext[3] = {l0->width, l0->height, l0->depth};
        float px = 0.0f, py = 0.0f;
        for (int d = 0; d < v->dims; d++) {
            float sx = v->normalized ? q->dpdx[d] * (float)ext[d] : q->dpdx[d];
            float sy = v->normalized ? q->dpdy[d] * (float)ext[d] : q->dpdy[d];
            px += sx * sx;
            py += sy * sy;
        }
        float rho = sqrtf(px > py ? px : py);
        lod = rho > 0.0f ? log2f(rho) : -COORD_LIMIT;
    }
    lod = sane(lod) + v->lod_bias;
    if (lod < v->min_lod)
        lod = v->min_lod;
    if (lod > v->max_lod)
        lod = v->max_lod;
    float top = (float)(v->nlevels - 1);
    return lod < 0.0f ? 0.0f : lod > top ? top : lod;
}

/* ---- the fetch ---- */

static int geom_fits(const emu_tex_view *v, int geom)
{
    switch (geom) {
    case PTX_TEX_1D: return v->dims == 1 && !v->layered && !v->cube;
    case PTX_TEX_2D: return v->dims == 2 && !v->layered && !v->cube;
    case PTX_TEX_3D: return v->dims == 3;
    case PTX_TEX_A1D: return v->dims == 1 && v->layered;
    case PTX_TEX_A2D: return v->dims == 2 && v->layered && !v->cube;
    case PTX_TEX_CUBE: return v->cube && !v->layered;
    case PTX_TEX_ACUBE: return v->cube && v->layered;
    default: return 0;
    }
}

static void store(const emu_tex_view *v, const float f[4], const int32_t i[4], uint32_t out[4])
{
    if (emu_tex_returns_float(v))
        memcpy(out, f, 16);
    else
        memcpy(out, i, 16);
}

/* Slice index for a layer (clamped, as CUDA clamps layer indices) or a cube face. */
static long slice_of(const emu_tex_view *v, const emu_tex_level *lv, int32_t layer, int face)
{
    if (v->cube) {
        long cubes = (long)(lv->depth / 6);
        long c = layer < 0 ? 0 : layer >= cubes ? cubes - 1 : layer;
        return (v->layered ? c : 0) * 6 + face;
    }
    if (v->layered) {
        long n = (long)lv->depth;
        return layer < 0 ? 0 : layer >= n ? n - 1 : layer;
    }
    return -1;
}

static int fetch_integer_coords(const emu_tex_view *v, const ptx_tex_request *q, uint32_t out[4])
{
    unsigned level = 0;
    if (q->lod_kind == PTX_TEX_LOD_LEVEL) {
        float l = sane(q->lod);
        level = l <= 0.0f ? 0 : l >= (float)(v->nlevels - 1) ? v->nlevels - 1 : (unsigned)l;
    }
    const emu_tex_level *lv = &v->levels[level];
    size_t ext[3] = {lv->width, lv->height, lv->depth};
    int32_t c[3] = {q->ix, q->iy, q->iz};
    long idx[3] = {0, 0, 0};
    int border = 0;
    for (int d = 0; d < 3; d++) {
        if (d >= v->dims) {
            idx[d] = d == 2 ? slice_of(v, lv, q->layer, 0) : 0;
            if (idx[d] < 0)
                idx[d] = 0;
            continue;
        }
        if (v->linear) {
            if (c[d] < 0 || (size_t)c[d] >= ext[d])
                border = 2; /* a linear buffer reads zeros out of range */
            idx[d] = c[d];
            continue;
        }
        /* Integer coordinates are texel positions: wrap and mirror act as clamp. */
        int mode = v->address[d] == EMU_ADDR_BORDER ? EMU_ADDR_BORDER : EMU_ADDR_CLAMP;
        idx[d] = address(c[d], ext[d], mode, 0);
        if (idx[d] < 0)
            border = 1;
    }
    float f[4];
    int32_t iv[4];
    if (border == 2) {
        memset(out, 0, 16);
        return 0;
    }
    if (border) {
        for (int k = 0; k < 4; k++) {
            f[k] = v->border[k];
            iv[k] = (int32_t)v->border[k];
        }
    } else {
        texel(v, texel_at(v, lv, idx[0], idx[1], idx[2]), f, iv);
    }
    store(v, f, iv, out);
    return 0;
}

static int gather(const emu_tex_view *v, const ptx_tex_request *q, uint32_t out[4])
{
    if (v->dims != 2 || v->cube || q->gather < 0 || q->gather > 3)
        return -1;
    const emu_tex_level *lv = &v->levels[0];
    long slice = slice_of(v, lv, q->layer, 0);
    struct axis ax, ay;
    axis_linear(&ax, to_texels(q->x, lv->width, v->address[0], v->normalized), lv->width,
                v->address[0], v->normalized);
    axis_linear(&ay, to_texels(q->y, lv->height, v->address[1], v->normalized), lv->height,
                v->address[1], v->normalized);
    /* The footprint in the order tld4 returns it: (i0, j1), (i1, j1), (i1, j0), (i0, j0). */
    const int pick[4][2] = {{0, 1}, {1, 1}, {1, 0}, {0, 0}};
    float f4[4];
    int32_t i4[4];
    for (int k = 0; k < 4; k++) {
        long x = ax.idx[pick[k][0]], y = ay.idx[pick[k][1]];
        float f[4];
        int32_t iv[4];
        if (x < 0 || y < 0) {
            for (int c = 0; c < 4; c++) {
                f[c] = v->border[c];
                iv[c] = (int32_t)v->border[c];
            }
        } else {
            texel(v, texel_at(v, lv, x, y, slice < 0 ? 0 : slice), f, iv);
        }
        f4[k] = f[q->gather];
        i4[k] = iv[q->gather];
    }
    store(v, f4, i4, out);
    return 0;
}

int emu_tex_sample(const emu_tex_view *v, const ptx_tex_request *q, uint32_t out[4])
{
    if (!v->nlevels || !v->levels)
        return -1;
    if (v->linear && !q->int_coords)
        return -1; /* linear buffers have texel fetches only */
    if (!v->linear && !geom_fits(v, q->geom))
        return -1;
    if (q->gather >= 0)
        return gather(v, q, out);
    if (q->int_coords)
        return fetch_integer_coords(v, q, out);

    float lod = v->nlevels > 1 ? choose_lod(v, q) : 0.0f;
    unsigned l0, l1;
    float lw = 0.0f;
    if (v->mip_filter == EMU_FILTER_LINEAR && v->nlevels > 1) {
        l0 = (unsigned)floorf(lod);
        l1 = l0 + 1 < v->nlevels ? l0 + 1 : l0;
        lw = lod - (float)l0;
    } else {
        l0 = l1 = (unsigned)floorf(lod + 0.5f);
        if (l0 >= v->nlevels)
            l0 = l1 = v->nlevels - 1;
    }
    float res[2][4];
    int32_t ires[2][4];
    for (int k = 0; k < (l1 != l0 ? 2 : 1); k++) {
        const emu_tex_level *lv = &v->levels[k ? l1 : l0];
        float u[3];
        long slice = -1;
        int force_clamp = 0;
        if (v->cube) {
            float s, t;
            int face = cube_face(q->x, q->y, q->z, &s, &t);
            u[0] = sane(s * (float)lv->width);
            u[1] = sane(t * (float)lv->height);
            u[2] = 0.0f;
            slice = slice_of(v, lv, q->layer, face);
            force_clamp = 1; /* faces are not stitched: each is clamped at its edges */
        } else {
            size_t ext[3] = {lv->width, lv->height, lv->depth};
            float c[3] = {q->x, q->y, q->z};
            for (int d = 0; d < 3; d++)
                u[d] = d < v->dims ? to_texels(c[d], ext[d], v->address[d], v->normalized) : 0.0f;
            /* Texel coordinates of a mipmapped texture scale with the level. */
            if (!v->normalized && (k ? l1 : l0) > 0)
                for (int d = 0; d < v->dims; d++)
                    u[d] = ldexpf(u[d], -(int)(k ? l1 : l0));
            slice = slice_of(v, lv, q->layer, 0);
        }
        filter_level(v, lv, u, slice, force_clamp, res[k], ires[k]);
    }
    if (l1 != l0)
        for (int c = 0; c < 4; c++)
            res[0][c] = res[0][c] * (1.0f - lw) + res[1][c] * lw;
    store(v, res[0], ires[0], out);
    return 0;
}

/* ---- surfaces ---- */

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int emu_surf_locate(const emu_tex_level *lv, int dims, size_t elem, int32_t x, int32_t y,
                    int32_t z, unsigned size, int boundary, size_t *offset)
{
    if (size == 0 || size > 16 || !lv->width || elem == 0)
        return -1;
    int64_t row = (int64_t)lv->row_bytes;
    int out = x < 0 || (int64_t)x + size > row;
    if (dims >= 2 && (y < 0 || (size_t)y >= lv->height))
        out = 1;
    if (z < 0 || (size_t)z >= lv->depth)
        out = 1;
    if (dims < 2 && y != 0)
        out = 1;
    if (out) {
        if (boundary == PTX_SURF_ZERO)
            return 0;
        if (boundary != PTX_SURF_CLAMP)
            return -1;
        /* Clamp to the nearest whole element (and so that the access fits the row). */
        int32_t max_x = (int32_t)(((int64_t)row - size) / (int64_t)elem * (int64_t)elem);
        if (max_x < 0)
            return -1;
        x = clamp32(x, 0, max_x);
        x -= x % (int32_t)elem;
        y = dims >= 2 ? clamp32(y, 0, (int32_t)lv->height - 1) : 0;
        z = clamp32(z, 0, (int32_t)lv->depth - 1);
    }
    *offset = (size_t)z * lv->slice_bytes + (size_t)y * lv->row_bytes + (size_t)x;
    return 1;
}
