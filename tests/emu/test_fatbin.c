/* common/fatbin.c against what nvcc and fatbinary really write, and against damaged input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fatbin.h"

static void *load(const char *name, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", EMU_KERNEL_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* 8-aligned, as nvcc places fatbins in memory. */
    void *buf = aligned_alloc(8, ((size_t)n + 64 + 7) & ~(size_t)7);
    memset(buf, 0, ((size_t)n + 64 + 7) & ~(size_t)7);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* fatbinary blanks out PTX comments and compacts whitespace; compare the text without comment
 * lines and without whitespace. */
static void strip_comments(char *s)
{
    char *out = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (!(line[0] == '/' && line[1] == '/') && line[0] != '\n') {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
    out = s;
    for (char *p = s; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n')
            *out++ = *p;
    *out = '\0';
}

static char *expected_ptx(void)
{
    size_t n;
    char *p = load("emu_kernels.ptx", &n);
    strip_comments(p);
    return p;
}

static void check_extract(const char *file)
{
    size_t size;
    void *fb = load(file, &size);
    const void *data;
    size_t dsize;
    cr_assert_eq(vg_image_locate(fb, &data, &dsize), VG_IMAGE_FATBIN, "%s", file);
    cr_assert_eq(data, fb);
    cr_assert_leq(dsize, size);
    char *ptx;
    size_t len;
    int only_elf = -1;
    cr_assert_eq(vg_fatbin_extract_ptx(data, dsize, &ptx, &len, &only_elf), 0, "%s", file);
    cr_assert_eq(strlen(ptx), len);
    cr_assert(strstr(ptx, ".entry emu_add") != NULL, "%s: no kernel in extracted PTX", file);
    cr_assert(strstr(ptx, ".target sm_75") != NULL);
    free(ptx);
    free(fb);
}

Test(fatbin, nvcc_fatbin_zstd) { check_extract("emu_kernels.fatbin"); }
Test(fatbin, nvcc_object_section) { check_extract("emu_kernels.o.fatbin"); }
Test(fatbin, lz4) { check_extract("emu_kernels.lz4.fatbin"); }

static char *extract(const char *file)
{
    size_t size;
    void *fb = load(file, &size);
    char *ptx;
    size_t len;
    cr_assert_eq(vg_fatbin_extract_ptx(fb, size, &ptx, &len, NULL), 0, "%s", file);
    free(fb);
    return ptx;
}

/* fatbinary rewrites comments and whitespace, so the uncompressed entry is the reference for
 * the compressed ones: LZ4 and zstd must decompress to exactly the same text. */
Test(fatbin, compressed_matches_uncompressed)
{
    char *raw = extract("emu_kernels.raw.fatbin");
    char *lz4 = extract("emu_kernels.lz4.fatbin");
    char *zstd = extract("emu_kernels.fatbin");
    cr_assert_str_eq(lz4, raw);
    /* nvcc's own fatbin embeds PTX it generated itself, not our .ptx file: same kernels. */
    cr_assert(strstr(zstd, ".entry emu_oob(") != NULL);
    char *want = expected_ptx();
    strip_comments(raw);
    cr_assert(strstr(raw, ".visible.entryemu_oob(") != NULL);
    cr_assert_eq(strncmp(raw, want, 20), 0);
    free(want);
    free(raw);
    free(lz4);
    free(zstd);
}

Test(fatbin, wrapper)
{
    size_t size;
    void *fb = load("emu_kernels.fatbin", &size);
    struct { uint32_t magic, version; const void *data; const void *unused; } w = {
        0x466243b1u, 1, fb, NULL};
    const void *data;
    size_t dsize;
    cr_assert_eq(vg_image_locate(&w, &data, &dsize), VG_IMAGE_FATBIN);
    cr_assert_eq(data, fb);
    cr_assert_eq(dsize, size);
    free(fb);
}

Test(fatbin, elf_only)
{
    size_t size;
    void *fb = load("emu_kernels.elfonly.fatbin", &size);
    char *ptx = NULL;
    size_t len;
    int only_elf = 0;
    cr_assert_eq(vg_fatbin_extract_ptx(fb, size, &ptx, &len, &only_elf), -ENOENT);
    cr_assert_eq(only_elf, 1);
    cr_assert_null(ptx);
    free(fb);
}

Test(fatbin, classify)
{
    size_t size;
    void *cubin = load("emu_kernels.cubin", &size);
    const void *data;
    size_t dsize;
    cr_assert_eq(vg_image_locate(cubin, &data, &dsize), VG_IMAGE_ELF);
    cr_assert_eq(dsize, size);
    free(cubin);
    void *ptx = load("emu_kernels.ptx", &size);
    cr_assert_eq(vg_image_locate(ptx, &data, &dsize), VG_IMAGE_PTX);
    cr_assert_eq(dsize, size + 1);
    free(ptx);
    unsigned char junk[16] = {0x01, 0x02, 0x03};
    cr_assert_eq(vg_image_locate(junk, &data, &dsize), VG_IMAGE_UNKNOWN);
}

/* Every truncation and a sweep of single-byte corruptions give a clean answer, never a crash. */
Test(fatbin, truncated_and_corrupted)
{
    size_t size;
    unsigned char *fb = load("emu_kernels.fatbin", &size);
    for (size_t cut = 0; cut < size; cut += (cut < 256 ? 1 : 97)) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, fb, cut);
        char *ptx = NULL;
        size_t len;
        int rc = vg_fatbin_extract_ptx(copy, cut, &ptx, &len, NULL);
        cr_assert_neq(rc, 0, "truncated at %zu accepted", cut);
        free(copy);
    }
    unsigned char *copy = malloc(size);
    for (size_t i = 0; i < 160 && i < size; i++) {
        for (int v = 0; v < 256; v += 51) {
            memcpy(copy, fb, size);
            copy[i] = (unsigned char)v;
            char *ptx = NULL;
            size_t len;
            if (vg_fatbin_extract_ptx(copy, size, &ptx, &len, NULL) == 0) {
                cr_assert_not_null(ptx);
                free(ptx);
            }
        }
    }
    free(copy);
    free(fb);
}
