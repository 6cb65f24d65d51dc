/* emu_sample: texture sampling and surface addressing of the emulated GPU, on their own: a
 * description of the texels (levels of a format) and of the sampler state in, texel values out.
 * emu_tex.c builds these descriptions from texture and surface objects; the tests call the
 * functions directly. No locking: the caller keeps the data alive during a call.
 *
 * What the sampler does, as CUDA documents texture fetching:
 *  - coordinates: normalized ([0, 1) spans the texture) or texel coordinates; integer coordinates
 *    (tex1Dfetch and texel fetches) address elements directly, without filtering;
 *  - addressing per dimension: wrap and mirror (normalized coordinates only; clamp otherwise),
 *    clamp to edge, border (out-of-range texels are the border color);
 *  - point filtering (the texel containing the coordinate) and linear filtering (1D/2D/3D, the
 *    2/4/8 nearest texel centres weighted with 8-bit fractions, as the hardware's 9-bit fixed
 *    point weights are);
 *  - element formats: 8/16/32-bit signed and unsigned integers, half, float, and the UNORM/SNORM
 *    8/16-bit formats, 1, 2 or 4 channels; read modes: integers as they are, or 8/16-bit integers
 *    normalized to [0, 1] / [-1, 1] floats; sRGB to linear conversion when asked;
 *  - layered textures (the layer index clamped), cube maps (a direction selects a face, which is
 *    sampled with clamped addressing), cube map arrays;
 *  - mipmaps: the level from tex.level's lod or tex.grad's gradients, plus bias, clamped to the
 *    level range; point or linear filtering between levels;
 *  - gather (tld4): one component of the four texels of the bilinear footprint. */
#ifndef VG_EMU_SAMPLE_H
#define VG_EMU_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "ptx.h"

/* One level of texels: element (x, y, z) at data + z * slice_bytes + y * row_bytes + x * elem. */
typedef struct emu_tex_level {
    const unsigned char *data;
    size_t width, height, depth; /* in elements; depth counts layers (or 6 faces per cube) */
    size_t row_bytes, slice_bytes;
} emu_tex_level;

enum { EMU_ADDR_WRAP, EMU_ADDR_CLAMP, EMU_ADDR_MIRROR, EMU_ADDR_BORDER }; /* CUaddress_mode */
enum { EMU_FILTER_POINT, EMU_FILTER_LINEAR };                            /* CUfilter_mode */

typedef struct emu_tex_view {
    const emu_tex_level *levels;
    unsigned nlevels;
    int fmt_kind;                /* EMU_FMT_* of emu.h */
    unsigned comp_bytes, channels;
    int dims;                    /* spatial dimensions: 1, 2 or 3 */
    int layered;                 /* depth counts layers */
    int cube;                    /* depth counts faces, 6 per cube */
    int linear;                  /* a linear buffer: integer fetches, zeros out of range */
    int address[3];              /* EMU_ADDR_* per dimension */
    int filter, mip_filter;      /* EMU_FILTER_* */
    int normalized, read_as_int, srgb;
    float border[4];
    float lod_bias, min_lod, max_lod;
} emu_tex_view;

/* Whether fetches of v return floats (else integers). */
int emu_tex_returns_float(const emu_tex_view *v);

/* Samples v as request q asks: out gets four 32-bit values (float bits when
 * emu_tex_returns_float). Returns 0, or -1 when the request does not fit the texture (a cube
 * fetch of a 2D texture, a gather of a 1D texture...). */
int emu_tex_sample(const emu_tex_view *v, const ptx_tex_request *q, uint32_t out[4]);

/* Surface addressing (suld.b / sust.b): where size bytes at byte x of row y of slice z lie in
 * level lv, whose elements are elem bytes. Returns 1 with *offset set, 0 when the access is out of
 * range with PTX_SURF_ZERO (loads read zeros, stores do nothing), -1 when it is out of range with
 * PTX_SURF_TRAP or malformed. PTX_SURF_CLAMP clamps to the last whole element. */
int emu_surf_locate(const emu_tex_level *lv, int dims, size_t elem, int32_t x, int32_t y,
                    int32_t z, unsigned size, int boundary, size_t *offset);

#endif
