/* Fuzz harness: module images as the stub and the emulated GPU read them (common/fatbin.c).
 *
 * The input is an image. Two readers are fuzzed:
 *  - vg_fatbin_extract_ptx on exactly the input's bytes, as gpu-server's emulated GPU gets an
 *    image of known length (a module load's bulk): the container and entry walk, and the plain,
 *    LZ4 and zstd payload paths of the PTX entry it picks;
 *  - vg_image_locate on the image as cuModuleLoadData gets it, a pointer whose extent only the
 *    image's own headers tell. Its contract is that the caller's image is readable, so the copy
 *    it reads is padded with 64 zero bytes (an ELF header's worth); an input that starts with a
 *    __fatBinC_Wrapper_t gets its data pointer aimed at the bytes after the wrapper (or left
 *    NULL when the input has it zero). A fatbin it locates is then walked as the driver does,
 *    within the bytes the input really has. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "fatbin.h"

#define WRAPPER_MAGIC 0x466243b1u
#define WRAPPER_SIZE 24 /* u32 magic, u32 version, const void *data, const void *filename */
#define PAD 64

/* VGPU_FUZZ_VERBOSE=1: say what each reader made of each input (for replays). */
static int verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v = getenv("VGPU_FUZZ_VERBOSE");
    verbose = v && *v && *v != '0';
    return 0;
}

static void extract(const void *fatbin, size_t size)
{
    char *ptx = (char *)"unset";
    size_t ptx_len = 12345;
    int only_elf = -1;
    int rc = vg_fatbin_extract_ptx(fatbin, size, &ptx, &ptx_len, &only_elf);
    if (verbose)
        fprintf(stderr, "  extract %zu bytes: %d (%zu bytes of PTX, only ELF %d)\n", size, rc,
                rc == 0 ? ptx_len : 0, only_elf);
    if (rc == 0) {
        FUZZ_CHECK(ptx != NULL);
        FUZZ_CHECK(strlen(ptx) == ptx_len);
        FUZZ_CHECK(only_elf == 0);
        free(ptx);
        return;
    }
    FUZZ_CHECK(rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
    FUZZ_CHECK(ptx == NULL && ptx_len == 0);
    FUZZ_CHECK(only_elf == 0 || (rc == -ENOENT && only_elf == 1));
}

static void locate(const uint8_t *data, size_t size)
{
    uint8_t *image = calloc(size + PAD, 1);
    if (!image)
        return;
    memcpy(image, data, size);
    /* What lies after the wrapper when the input is one; what the image is otherwise. */
    const uint8_t *body = image;
    size_t body_size = size;
    uint32_t magic = 0;
    memcpy(&magic, image, 4);
    if (magic == WRAPPER_MAGIC) {
        /* The padding keeps image + WRAPPER_SIZE readable for PAD - WRAPPER_SIZE bytes at least,
         * more than a container header, even for an input shorter than a wrapper. */
        const void *target = NULL;
        memcpy(&target, image + 8, sizeof target);
        if (target != NULL)
            target = image + WRAPPER_SIZE;
        memcpy(image + 8, &target, sizeof target);
        body = image + WRAPPER_SIZE;
        body_size = size > WRAPPER_SIZE ? size - WRAPPER_SIZE : 0;
    }
    const void *found = (const void *)"unset";
    size_t found_size = 0;
    enum vg_image_kind kind = vg_image_locate(image, &found, &found_size);
    if (verbose)
        fprintf(stderr, "  locate: kind %d, %zu bytes\n", (int)kind, found_size);
    switch (kind) {
    case VG_IMAGE_UNKNOWN:
        break;
    case VG_IMAGE_PTX:
        FUZZ_CHECK(found == image);
        FUZZ_CHECK(found_size >= 1 && found_size <= size + 1 && image[found_size - 1] == '\0');
        break;
    case VG_IMAGE_ELF:
        FUZZ_CHECK(found == image && found_size >= 52);
        break;
    case VG_IMAGE_FATBIN: {
        FUZZ_CHECK(found == body);
        FUZZ_CHECK(found_size >= 16);
        /* The header may claim more than the input holds: a real caller's memory would go on,
         * this copy does not, so walk what is there. */
        extract(found, found_size < body_size ? found_size : body_size);
        break;
    }
    default:
        FUZZ_CHECK(!"vg_image_locate returned an unknown kind");
    }
    free(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes in their own allocation, so that a read past them is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    extract(copy, size);
    free(copy);
    locate(data, size);
    return 0;
}
