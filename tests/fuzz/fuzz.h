/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c) and their replay runner.
 *
 * Each harness defines LLVMFuzzerTestOneInput, the one entry point both libFuzzer (the VGPU_FUZZ
 * build, scripts/fuzz.sh) and fuzz_replay.c (every build, ctest) call, so a regression input
 * runs through exactly the code that found it. */
#ifndef VG_FUZZ_H
#define VG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test does not hold: a finding, like a crash. */
#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
