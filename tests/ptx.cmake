# PTX interpreter tests (server/emulator/ptx). Kernels are CUDA C in tests/ptx/kernels, compiled
# to PTX by nvcc at build time; the tests parse and run them on the interpreter directly, with a
# malloc-backed device memory, and compare against C references.
set(PTX_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/ptx)
set(PTX_TEST_GEN ${CMAKE_CURRENT_BINARY_DIR}/ptx)
file(MAKE_DIRECTORY ${PTX_TEST_GEN})
set(PTX_TEST_PTX "")
foreach(kernel basic more wmma)
  add_custom_command(
    OUTPUT ${PTX_TEST_GEN}/${kernel}.ptx
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75
            ${PTX_TEST_DIR}/kernels/${kernel}.cu -o ${PTX_TEST_GEN}/${kernel}.ptx
    DEPENDS ${PTX_TEST_DIR}/kernels/${kernel}.cu
    COMMENT "nvcc -ptx tests/ptx/kernels/${kernel}.cu")
  list(APPEND PTX_TEST_PTX ${PTX_TEST_GEN}/${kernel}.ptx)
endforeach()
add_custom_target(ptx_test_kernels DEPENDS ${PTX_TEST_PTX})

# Every test runs on the interpreter with the AVX2 handlers where the CPU has them
# (VGPU_EMU_JIT=0), on the baseline handlers (VGPU_EMU_SIMD=baseline) and on the JIT
# (VGPU_EMU_JIT=always: every kernel compiled at its first launch) when it is built.
# test_ptx_diff compares the two engines directly, on random programs and every kernel of the
# corpora.
set(PTX_JIT_CACHE ${CMAKE_BINARY_DIR}/jit-cache)
foreach(t test_ptx_kernels test_ptx_more test_ptx_errors test_ptx_semantics test_ptx_tex test_ptx_diff test_ptx_math
          test_ptx_indirect test_ptx_wmma)
  add_executable(${t} ${PTX_TEST_DIR}/${t}.c ${PTX_TEST_DIR}/ptx_testlib.c)
  add_dependencies(${t} ptx_test_kernels)
  target_include_directories(${t} PRIVATE ${PTX_TEST_DIR})
  target_compile_definitions(${t} PRIVATE PTX_KERNEL_DIR="${PTX_TEST_GEN}")
  target_link_libraries(${t} PRIVATE vgptx ${CRITERION_LIB})
  if(t STREQUAL "test_ptx_math")
    add_test(NAME ${t} COMMAND ${t})
    continue()
  endif()
  if(t STREQUAL "test_ptx_diff")
    add_test(NAME ${t} COMMAND ${t})
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "VGPU_EMU_JIT_CACHE=${PTX_JIT_CACHE}" TIMEOUT 900)
    continue()
  endif()
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "VGPU_EMU_JIT=0")
  add_test(NAME ${t}_baseline COMMAND ${t})
  set_tests_properties(${t}_baseline PROPERTIES ENVIRONMENT "VGPU_EMU_JIT=0;VGPU_EMU_SIMD=baseline")
  if(TARGET vgpu_jit)
    add_test(NAME ${t}_jit COMMAND ${t})
    set_tests_properties(${t}_jit PROPERTIES ENVIRONMENT "VGPU_EMU_JIT=always;VGPU_EMU_JIT_CACHE=${PTX_JIT_CACHE}")
  endif()
endforeach()
# The differential test reads the PTX of the kernel corpus (tests/corpus.cmake builds it), of the
# emulated driver's tests (tests/emu.cmake) and of the remote suites (tests/remote.cmake) too.
target_compile_definitions(test_ptx_diff PRIVATE CORPUS_PTX_DIR="${CMAKE_BINARY_DIR}/tests/kernels"
                           EMU_PTX="${CMAKE_BINARY_DIR}/tests/emu_kernels/emu_kernels.ptx"
                           REMOTE_PTX_DIR="${CMAKE_BINARY_DIR}/tests/remote_kernels")
add_dependencies(test_ptx_diff corpus_kernels emu_kernels remote_kernels)
