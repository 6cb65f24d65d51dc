/* Module images: what cuModuleLoadData, cuModuleLoadFatBinary and cuLibraryLoadData receive.
 *
 * Shared by the stub (which must know how many bytes to send) and the emulated driver (which
 * needs the PTX inside). An image is PTX text, an nvcc fatbin (container magic 0xBA55ED50), a
 * __fatBinC_Wrapper_t pointing at a fatbin (magic 0x466243b1), or an ELF cubin. */
#ifndef VG_FATBIN_H
#define VG_FATBIN_H

#include <stddef.h>

enum vg_image_kind { VG_IMAGE_UNKNOWN = 0, VG_IMAGE_PTX, VG_IMAGE_FATBIN, VG_IMAGE_ELF };

/* Classifies a caller's image and finds its extent by reading its headers (the caller vouches
 * that the image is readable, as the CUDA API requires). For a wrapper, *data and *size describe
 * the fatbin it points to; for PTX, the text including its terminating NUL. */
enum vg_image_kind vg_image_locate(const void *image, const void **data, size_t *size);

/* Finds the best PTX entry (highest virtual architecture) in the fatbin at fatbin[0..size),
 * decompressing it if needed, and returns it as a NUL-terminated malloc'd string the caller frees.
 * Untrusted input: every offset is checked against size.
 * Returns 0; -ENOENT when there is no PTX entry (*only_elf set to 1 when there are cubins);
 * -EINVAL when the fatbin is malformed; -ENOMEM. */
int vg_fatbin_extract_ptx(const void *fatbin, size_t size, char **ptx, size_t *ptx_len, int *only_elf);

/* Device memory a module loaded from this image holds for its variables (__device__ and
 * __constant__), estimated from the image: the sizes of the .global and .const declarations of
 * PTX, the .nv.global* and .nv.constant (not per-kernel parameter bank) sections of an ELF cubin,
 * the largest of a fatbin's entries. For the tenant's accounting: the driver's own code and
 * padding are not counted. Untrusted input (from the wire): every offset is checked against
 * size; 0 when nothing can be read. */
size_t vg_image_global_bytes(const void *image, size_t size);

#endif
