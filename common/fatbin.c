/* Module image classification and fatbin PTX extraction (see fatbin.h).
 *
 * The fatbin container is undocumented; the layout below was read from what CUDA 13's nvcc and
 * fatbinary write (hexdumps of `nvcc -fatbin`, `nvcc -c` and `fatbinary --compress-mode=...`):
 *
 *   container header (16 bytes): u32 magic 0xBA55ED50, u16 version 1, u16 header size (16),
 *                                u64 size of the entries that follow the header
 *   entry header (>= 64 bytes):  u16 kind (1 PTX, 2 ELF), u16 version, u32 header size,
 *                                u64 payload size (padded), u32 compressed size, u32 (unknown),
 *                                u16 minor, u16 major (PTX ISA or ELF version), u32 arch (75),
 *                                u32 name offset, u32 name length, u64 flags, u64 (zero),
 *                                u64 uncompressed size (0 when not compressed)
 *   payload:                     header size bytes after the entry start
 *
 * Flags 0x2000 mark a raw LZ4 block (fatbinary --compress-mode=speed), 0x8000 a zstd frame
 * (the CUDA 13 default for `nvcc -c`). Both were confirmed by experiment. */
#include "fatbin.h"

#include <errno.h>
#include <lz4.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_WRAPPER_MAGIC 0x466243b1u
#define FATBIN_HEADER_SIZE 16
#define FATBIN_ENTRY_MIN_HEADER 64
#define FATBIN_KIND_PTX 1
#define FATBIN_KIND_ELF 2
#define FATBIN_FLAG_LZ4 0x2000u
#define FATBIN_FLAG_ZSTD 0x8000u
/* No real PTX module is near this; it bounds what a hostile uncompressed-size field can make us
 * allocate. */
#define FATBIN_MAX_PTX ((uint64_t)1 << 30)

/* The CUDA runtime's __fatBinC_Wrapper_t, as nvcc emits it into host objects. */
struct fatbin_wrapper {
    uint32_t magic;
    uint32_t version;
    const void *data;
    const void *filename_or_fatbins;
};

static uint16_t rd16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Reads a container header at p (at least 16 readable bytes); returns its total size or 0. */
static size_t container_size(const unsigned char *p)
{
    if (rd32(p) != FATBIN_MAGIC)
        return 0;
    uint16_t hs = rd16(p + 6);
    uint64_t body = rd64(p + 8);
    if (hs < FATBIN_HEADER_SIZE || body > SIZE_MAX / 2)
        return 0;
    return (size_t)hs + (size_t)body;
}

enum vg_image_kind vg_image_locate(const void *image, const void **data, size_t *size)
{
    if (!image || !data || !size)
        return VG_IMAGE_UNKNOWN;
    const unsigned char *p = image;
    uint32_t magic = rd32(p);

    if (magic == FATBIN_WRAPPER_MAGIC) {
        struct fatbin_wrapper w;
        memcpy(&w, image, sizeof w);
        if (!w.data || rd32(w.data) != FATBIN_MAGIC)
            return VG_IMAGE_UNKNOWN;
        size_t n = container_size(w.data);
        if (!n)
            return VG_IMAGE_UNKNOWN;
        *data = w.data;
        *size = n;
        return VG_IMAGE_FATBIN;
    }
    if (magic == FATBIN_MAGIC) {
        size_t n = container_size(p);
        if (!n)
            return VG_IMAGE_UNKNOWN;
        *data = image;
        *size = n;
        return VG_IMAGE_FATBIN;
    }
    if (p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F') {
        /* ELF64 header: the image ends with the later of the program header table
         * (e_phoff 0x20, e_phentsize 0x36, e_phnum 0x38) and the section header table
         * (e_shoff 0x28, e_shentsize 0x3a, e_shnum 0x3c); nvcc's cubins end with the former. */
        *data = image;
        if (p[4] == 2) {
            uint64_t phend = rd64(p + 0x20) + (uint64_t)rd16(p + 0x36) * rd16(p + 0x38);
            uint64_t shend = rd64(p + 0x28) + (uint64_t)rd16(p + 0x3a) * rd16(p + 0x3c);
            uint64_t end = phend > shend ? phend : shend;
            *size = end > 64 && end < ((uint64_t)1 << 32) ? (size_t)end : 64;
        } else {
            *size = 52;
        }
        return VG_IMAGE_ELF;
    }
    /* PTX is text: the first byte must be printable or whitespace. */
    if (p[0] == 0 || (p[0] < 0x20 && p[0] != '\n' && p[0] != '\r' && p[0] != '\t') || p[0] >= 0x7f)
        return VG_IMAGE_UNKNOWN;
    *data = image;
    *size = strlen(image) + 1;
    return VG_IMAGE_PTX;
}

/* Copies or decompresses one PTX entry's payload into a malloc'd NUL-terminated string. */
static int entry_ptx(const unsigned char *payload, size_t payload_size, uint64_t flags,
                     uint64_t compressed_size, uint64_t uncompressed_size, char **ptx,
                     size_t *ptx_len)
{
    char *out = NULL;
    size_t len = 0;

    if (flags & (FATBIN_FLAG_LZ4 | FATBIN_FLAG_ZSTD)) {
        if (compressed_size == 0 || compressed_size > payload_size || uncompressed_size == 0 ||
            uncompressed_size > FATBIN_MAX_PTX)
            return -EINVAL;
        out = malloc((size_t)uncompressed_size + 1);
        if (!out)
            return -ENOMEM;
        if (flags & FATBIN_FLAG_ZSTD) {
            size_t r = ZSTD_decompress(out, (size_t)uncompressed_size, payload,
                                       (size_t)compressed_size);
            if (ZSTD_isError(r))
                goto bad;
            len = r;
        } else {
            if (compressed_size > INT32_MAX || uncompressed_size > INT32_MAX)
                goto bad;
            int r = LZ4_decompress_safe((const char *)payload, out, (int)compressed_size,
                                        (int)uncompressed_size);
            if (r < 0)
                goto bad;
            len = (size_t)r;
        }
        out[len] = '\0';
    } else {
        if (payload_size > FATBIN_MAX_PTX)
            return -EINVAL;
        out = malloc(payload_size + 1);
        if (!out)
            return -ENOMEM;
        memcpy(out, payload, payload_size);
        out[payload_size] = '\0';
    }
    /* Payloads are padded with NULs; the text ends at the first one. */
    *ptx_len = strlen(out);
    *ptx = out;
    return 0;
bad:
    free(out);
    return -EINVAL;
}

int vg_fatbin_extract_ptx(const void *fatbin, size_t size, char **ptx, size_t *ptx_len, int *only_elf)
{
    if (!fatbin || !ptx || !ptx_len)
        return -EINVAL;
    *ptx = NULL;
    *ptx_len = 0;
    if (only_elf)
        *only_elf = 0;

    const unsigned char *base = fatbin;
    const unsigned char *best = NULL;
    uint32_t best_arch = 0;
    int saw_elf = 0;

    /* nvcc may place several containers back to back (one per compilation unit); walk them all. */
    size_t pos = 0;
    int containers = 0;
    while (pos + FATBIN_HEADER_SIZE <= size) {
        const unsigned char *c = base + pos;
        if (rd32(c) != FATBIN_MAGIC) {
            if (containers == 0)
                return -EINVAL;
            break; /* trailing padding after the last container */
        }
        uint16_t hs = rd16(c + 6);
        uint64_t body = rd64(c + 8);
        if (hs < FATBIN_HEADER_SIZE || hs > size - pos || body > size - pos - hs)
            return -EINVAL;
        size_t off = pos + hs, end = pos + hs + (size_t)body;
        while (off < end) {
            if (end - off < FATBIN_ENTRY_MIN_HEADER)
                return -EINVAL;
            const unsigned char *e = base + off;
            uint16_t kind = rd16(e);
            uint32_t ehs = rd32(e + 4);
            uint64_t psz = rd64(e + 8);
            if (ehs < FATBIN_ENTRY_MIN_HEADER || ehs > end - off || psz > end - off - ehs)
                return -EINVAL;
            if (kind == FATBIN_KIND_PTX) {
                uint32_t arch = rd32(e + 28);
                if (!best || arch > best_arch) {
                    best = e;
                    best_arch = arch;
                }
            } else if (kind == FATBIN_KIND_ELF) {
                saw_elf = 1;
            }
            off += ehs + (size_t)psz;
        }
        containers++;
        pos = end;
        /* Containers are 8-byte aligned when concatenated. */
        pos = (pos + 7) & ~(size_t)7;
    }
    if (containers == 0)
        return -EINVAL;
    if (!best) {
        if (only_elf)
            *only_elf = saw_elf;
        return -ENOENT;
    }
    uint32_t ehs = rd32(best + 4);
    return entry_ptx(best + ehs, (size_t)rd64(best + 8), rd64(best + 40), rd32(best + 16),
                     rd64(best + 56), ptx, ptx_len);
}

/* ---- the memory an image's variables take ------------------------------------------------- */

#define GLOBALS_MAX ((uint64_t)1 << 44)

static uint64_t ptx_type_bytes(const char *t, size_t n)
{
    /* .b8 .u16 .s32 .f64 .b128 ... : the digits after the letter */
    if (n < 3 || t[0] != '.')
        return 0;
    unsigned bits = 0;
    for (size_t i = 2; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        bits = bits * 10 + (unsigned)(t[i] - '0');
        if (bits > 1024)
            return 0;
    }
    return bits / 8;
}

/* Sums `.global`/`.const` declarations of PTX text[0..len): ".global .align 4 .b8 x[64];" is
 * 64 bytes, ".const .f32 y[4][4];" 64. Instructions (ld.global.f32) never match: the state space
 * must stand alone as a word. */
static uint64_t ptx_global_bytes(const char *text, size_t len)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n' && text[e] != ';')
            e++;
        /* One statement: tokens separated by blanks. */
        int space = 0;
        uint64_t elem = 0, count = 1;
        size_t k = i;
        while (k < e) {
            while (k < e && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
                k++;
            size_t t = k;
            while (k < e && text[k] != ' ' && text[k] != '\t' && text[k] != '\r' && text[k] != '[' && text[k] != '=')
                k++;
            size_t tl = k - t;
            if (tl == 7 && memcmp(text + t, ".global", 7) == 0)
                space = 1;
            else if (tl == 6 && memcmp(text + t, ".const", 6) == 0)
                space = 1;
            else if (tl == 7 && memcmp(text + t, ".extern", 7) == 0)
                break;
            else if (space && !elem && tl > 2 && text[t] == '.' && memcmp(text + t, ".align", 6) != 0 &&
                     memcmp(text + t, ".visible", 8) != 0 && memcmp(text + t, ".weak", 5) != 0)
                elem = ptx_type_bytes(text + t, tl);
            while (k < e && text[k] == '[') {
                uint64_t d = 0;
                k++;
                while (k < e && text[k] >= '0' && text[k] <= '9' && d < GLOBALS_MAX)
                    d = d * 10 + (uint64_t)(text[k++] - '0');
                while (k < e && text[k] != ']')
                    k++;
                if (k < e)
                    k++;
                count = d && count < GLOBALS_MAX ? count * d : count;
            }
            if (k < e && text[k] == '=')
                break;
            if (k == t)
                k++;
        }
        if (space && elem && count < GLOBALS_MAX && total < GLOBALS_MAX)
            total += elem * count;
        i = e + 1;
    }
    return total < GLOBALS_MAX ? total : GLOBALS_MAX;
}

/* Sums the sizes of an ELF64 cubin's variable sections. */
static uint64_t elf_global_bytes(const unsigned char *p, size_t size)
{
    if (size < 64 || p[4] != 2)
        return 0;
    uint64_t shoff = rd64(p + 0x28);
    uint16_t shentsize = rd16(p + 0x3a), shnum = rd16(p + 0x3c), shstrndx = rd16(p + 0x3e);
    if (shentsize < 64 || shoff > size || (uint64_t)shentsize * shnum > size - shoff || shstrndx >= shnum)
        return 0;
    const unsigned char *strsh = p + shoff + (uint64_t)shentsize * shstrndx;
    uint64_t stroff = rd64(strsh + 0x18), strsize = rd64(strsh + 0x20);
    if (stroff > size || strsize > size - stroff)
        return 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < shnum; i++) {
        const unsigned char *sh = p + shoff + (uint64_t)shentsize * i;
        uint32_t name = rd32(sh);
        if (name >= strsize)
            continue;
        const char *n = (const char *)p + stroff + name;
        size_t room = (size_t)(strsize - name);
        uint64_t sz = rd64(sh + 0x20);
        if ((room >= 10 && memcmp(n, ".nv.global", 10) == 0) ||
            (room >= 12 && memcmp(n, ".nv.constant", 12) == 0 && !(room >= 13 && n[12] == '0'))) {
            if (sz < GLOBALS_MAX && total < GLOBALS_MAX)
                total += sz;
        }
    }
    return total;
}

size_t vg_image_global_bytes(const void *image, size_t size)
{
    const unsigned char *p = image;
    if (!image || size < 4)
        return 0;
    if (p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F')
        return (size_t)elf_global_bytes(p, size);
    if (rd32(p) != FATBIN_MAGIC)
        return (size_t)ptx_global_bytes((const char *)p, strnlen((const char *)p, size));
    uint64_t best = 0;
    size_t pos = 0;
    while (pos + FATBIN_HEADER_SIZE <= size && rd32(p + pos) == FATBIN_MAGIC) {
        uint16_t hs = rd16(p + pos + 6);
        uint64_t body = rd64(p + pos + 8);
        if (hs < FATBIN_HEADER_SIZE || hs > size - pos || body > size - pos - hs)
            break;
        size_t off = pos + hs, end = pos + hs + (size_t)body;
        while (off < end && end - off >= FATBIN_ENTRY_MIN_HEADER) {
            const unsigned char *e = p + off;
            uint32_t ehs = rd32(e + 4);
            uint64_t psz = rd64(e + 8);
            if (ehs < FATBIN_ENTRY_MIN_HEADER || ehs > end - off || psz > end - off - ehs)
                break;
            uint64_t flags = rd64(e + 40);
            uint64_t bytes = 0;
            char *text = NULL;
            size_t text_len = 0;
            if (rd16(e) == FATBIN_KIND_PTX) {
                if (entry_ptx(e + ehs, (size_t)psz, flags, rd32(e + 16), rd64(e + 56), &text, &text_len) == 0)
                    bytes = ptx_global_bytes(text, text_len);
                free(text);
            } else if (rd16(e) == FATBIN_KIND_ELF && !(flags & (FATBIN_FLAG_LZ4 | FATBIN_FLAG_ZSTD))) {
                bytes = elf_global_bytes(e + ehs, (size_t)psz);
            }
            if (bytes > best)
                best = bytes;
            off += ehs + (size_t)psz;
        }
        pos = (end + 7) & ~(size_t)7;
    }
    return (size_t)best;
}
