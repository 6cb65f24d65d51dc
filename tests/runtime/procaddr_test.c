/* Checks cuGetProcAddress, cuGetProcAddress_v2 and cuGetExportTable of a libcuda.so.1 (argv[1])
 * against dlsym of the symbol each request must resolve to, and MD2 (used by the integrity
 * table) against RFC 1319's test vectors. Exits non-zero on the first mismatch. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darkapi.h"

typedef CUresult (*get_proc_v2_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*get_proc_v1_fn)(const char *, void **, int, cuuint64_t);
typedef CUresult (*get_export_fn)(const void **, const CUuuid *);

static int failures;

#define EXPECT(cond, ...)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

static void *lib;
static get_proc_v2_fn get_proc_v2;
static get_proc_v1_fn get_proc_v1;

/* The request (name, version, flags) must succeed and give exactly dlsym(expected). */
static void expect_symbol(const char *name, int version, cuuint64_t flags, const char *expected)
{
    void *want = dlsym(lib, expected);
    void *got = NULL;
    CUdriverProcAddressQueryResult status = (CUdriverProcAddressQueryResult)-1;
    CUresult rc = get_proc_v2(name, &got, version, flags, &status);
    EXPECT(want != NULL, "dlsym(%s) failed", expected);
    EXPECT(rc == CUDA_SUCCESS && status == CU_GET_PROC_ADDRESS_SUCCESS && got == want,
           "%s@%d flags %llu: rc %d status %d got %p, want %s = %p", name, version,
           (unsigned long long)flags, rc, status, got, expected, want);
    void *got_v1 = NULL;
    rc = get_proc_v1(name, &got_v1, version, flags);
    EXPECT(rc == CUDA_SUCCESS && got_v1 == want, "4-argument form: %s@%d rc %d got %p", name, version, rc, got_v1);
    printf("ok: %s @ %d flags %llu -> %s\n", name, version, (unsigned long long)flags, expected);
}

static void expect_missing(const char *name, int version, CUdriverProcAddressQueryResult want_status)
{
    void *got = (void *)1;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    CUresult rc = get_proc_v2(name, &got, version, 0, &status);
    EXPECT(rc == CUDA_SUCCESS && got == NULL && status == want_status, "%s@%d: rc %d got %p status %d", name,
           version, rc, got, status);
    got = (void *)1;
    rc = get_proc_v1(name, &got, version, 0);
    EXPECT(rc == CUDA_ERROR_NOT_FOUND && got == NULL, "4-argument form: %s@%d: rc %d got %p", name, version, rc, got);
    printf("ok: %s @ %d -> status %d\n", name, version, want_status);
}

static void expect_invalid(const char *name, int version, cuuint64_t flags)
{
    void *got = (void *)1;
    CUresult rc = get_proc_v2(name, &got, version, flags, NULL);
    EXPECT(rc == CUDA_ERROR_INVALID_VALUE, "%s@%d flags %llu: rc %d", name ? name : "(null)", version,
           (unsigned long long)flags, rc);
    printf("ok: %s @ %d flags %llu -> CUDA_ERROR_INVALID_VALUE\n", name ? name : "(null)", version,
           (unsigned long long)flags);
}

static void md2_vectors(void)
{
    static const struct {
        const char *message, *digest;
    } vectors[] = {
        {"", "8350e5a3e24c153df2275c9f80692773"},
        {"a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"},
        {"abc", "da853b0d3f88d99b30283a69e6ded6bb"},
        {"message digest", "ab4f496bfb2a530b219ff33031fe06b0"},
        {"abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "d5976f79d83d3a0dc9806c3c66f3efd8"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        struct vg_md2 md;
        uint8_t digest[16];
        char hex[33];
        vg_md2_init(&md);
        /* Feed in two uneven pieces to exercise block buffering. */
        size_t len = strlen(vectors[i].message), half = len / 3;
        vg_md2_update(&md, vectors[i].message, half);
        vg_md2_update(&md, vectors[i].message + half, len - half);
        vg_md2_final(&md, digest);
        for (int k = 0; k < 16; k++)
            snprintf(hex + 2 * k, 3, "%02x", digest[k]);
        EXPECT(strcmp(hex, vectors[i].digest) == 0, "MD2(\"%s\") = %s, want %s", vectors[i].message, hex,
               vectors[i].digest);
    }
    printf("ok: MD2 matches RFC 1319's test vectors\n");
}

static void export_tables(void)
{
    get_export_fn get_export = (get_export_fn)dlsym(lib, "cuGetExportTable");
    EXPECT(get_export != NULL, "no cuGetExportTable");
    if (!get_export)
        return;
    static const struct {
        uint8_t uuid[16];
        size_t size_header; /* slot 0 in bytes; 0 = no header */
    } known[] = {
        {{0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, 13 * sizeof(void *)},
        {{0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, 7 * sizeof(void *)},
        {{0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, 4 * sizeof(void *)},
        {{0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, 0},
        {{0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, 4 * sizeof(void *)},
        {{0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, 3 * sizeof(void *)},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        CUuuid id;
        memcpy(id.bytes, known[i].uuid, 16);
        const void *table = NULL;
        CUresult rc = get_export(&table, &id);
        EXPECT(rc == CUDA_SUCCESS && table != NULL, "table %zu: rc %d", i, rc);
        if (table && known[i].size_header)
            EXPECT(((const size_t *)table)[0] == known[i].size_header, "table %zu: size %zu", i,
                   ((const size_t *)table)[0]);
    }
    printf("ok: the runtime's export tables are served with their size headers\n");

    CUuuid unknown;
    memset(unknown.bytes, 0x5a, 16);
    const void *table = (const void *)1;
    CUresult rc = get_export(&table, &unknown);
    EXPECT(rc == CUDA_ERROR_NOT_SUPPORTED && table == NULL, "unknown uuid: rc %d table %p", rc, table);
    EXPECT(get_export(NULL, &unknown) == CUDA_ERROR_INVALID_VALUE, "NULL table pointer accepted");
    EXPECT(get_export(&table, NULL) == CUDA_ERROR_INVALID_VALUE, "NULL uuid accepted");
    printf("ok: unknown UUID -> CUDA_ERROR_NOT_SUPPORTED, NULL arguments -> CUDA_ERROR_INVALID_VALUE\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/libcuda.so.1\n", argv[0]);
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "FAIL: dlopen: %s\n", dlerror());
        return 1;
    }
    get_proc_v2 = (get_proc_v2_fn)dlsym(lib, "cuGetProcAddress_v2");
    get_proc_v1 = (get_proc_v1_fn)dlsym(lib, "cuGetProcAddress");
    if (!get_proc_v2 || !get_proc_v1) {
        fprintf(stderr, "FAIL: cuGetProcAddress or cuGetProcAddress_v2 not exported\n");
        return 1;
    }

    expect_symbol("cuMemAlloc", 2000, CU_GET_PROC_ADDRESS_DEFAULT, "cuMemAlloc");
    expect_symbol("cuMemAlloc", 3020, CU_GET_PROC_ADDRESS_DEFAULT, "cuMemAlloc_v2");
    expect_symbol("cuMemAlloc", 13000, CU_GET_PROC_ADDRESS_DEFAULT, "cuMemAlloc_v2");
    expect_symbol("cuCtxCreate", 3020, CU_GET_PROC_ADDRESS_DEFAULT, "cuCtxCreate_v2");
    expect_symbol("cuCtxCreate", 11040, CU_GET_PROC_ADDRESS_DEFAULT, "cuCtxCreate_v3");
    expect_symbol("cuCtxCreate", 12050, CU_GET_PROC_ADDRESS_DEFAULT, "cuCtxCreate_v4");
    expect_symbol("cuCtxCreate", 12040, CU_GET_PROC_ADDRESS_DEFAULT, "cuCtxCreate_v3");
    expect_symbol("cuGetProcAddress", 11030, CU_GET_PROC_ADDRESS_DEFAULT, "cuGetProcAddress");
    expect_symbol("cuGetProcAddress", 12000, CU_GET_PROC_ADDRESS_DEFAULT, "cuGetProcAddress_v2");
    expect_symbol("cuInit", 2000, CU_GET_PROC_ADDRESS_DEFAULT, "cuInit");
    expect_symbol("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_DEFAULT, "cuLaunchKernel");
    expect_symbol("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, "cuLaunchKernel");
    expect_symbol("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuLaunchKernel_ptsz");
    expect_symbol("cuMemcpyHtoD", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemcpyHtoD_v2_ptds");
    expect_symbol("cuMemcpyHtoD", 12000, CU_GET_PROC_ADDRESS_DEFAULT, "cuMemcpyHtoD_v2");
    /* Per-thread forms appeared in 7.0: an older caller gets the legacy symbol. */
    expect_symbol("cuMemcpyHtoD", 6050, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemcpyHtoD_v2");
    expect_symbol("cuStreamGetCaptureInfo", 12030, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                  "cuStreamGetCaptureInfo_v3_ptsz");
    /* No per-thread variant: the legacy symbol serves both. */
    expect_symbol("cuCtxCreate", 12050, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuCtxCreate_v4");
    expect_symbol("cuDevicePrimaryCtxRelease", 7000, CU_GET_PROC_ADDRESS_DEFAULT, "cuDevicePrimaryCtxRelease");
    expect_symbol("cuDevicePrimaryCtxRelease", 11000, CU_GET_PROC_ADDRESS_DEFAULT, "cuDevicePrimaryCtxRelease_v2");

    expect_missing("cuMemAlloc", 1000, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    expect_missing("cuCtxCreate_v2", 12000, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    expect_missing("cuNoSuchFunction", 12000, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    expect_missing("", 12000, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    expect_missing("cuLibraryLoadData", 11080, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

    expect_invalid(NULL, 12000, 0);
    expect_invalid("cuInit", CUDA_VERSION + 10, 0); /* newer than the driver */
    expect_invalid("cuInit", 12000, 4);              /* unknown flag */
    void *dummy;
    EXPECT(get_proc_v2("cuInit", NULL, 12000, 0, NULL) == CUDA_ERROR_INVALID_VALUE, "NULL pfn accepted");
    EXPECT(get_proc_v2("cuInit", &dummy, 12000, 0, NULL) == CUDA_SUCCESS, "NULL symbolStatus rejected");

    md2_vectors();
    export_tables();

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
