/* vg_parse_size: "4096", "64K", "8G", "1T" (binary multiples) as bytes. Shared by gpu-server's
 * flags and its tenants file. */
#ifndef VG_SIZE_H
#define VG_SIZE_H

#include <stdint.h>

/* 0, or -1 when s is not a whole number with an optional K/M/G/T suffix, or overflows. */
int vg_parse_size(const char *s, uint64_t *out);

#endif
