# PTX interpreter tests (server/emulator/ptx). Kernels are CUDA C in tests/ptx/kernels, compiled
# to PTX by nvcc at build time; the tests parse and run them on the interpreter directly, with a
# malloc-backed device memory, and compare against C references.
set(PTX_TEST_DIR ${CMAKE_CURRENT_SOURCE_DIR}/ptx)
set(PTX_TEST_GEN ${CMAKE_CURRENT_BINARY_DIR}/ptx)
file(MAKE_DIRECTORY ${PTX_TEST_GEN})
set(PTX_TEST_PTX "")
foreach(kernel basic more)
  add_custom_command(
    OUTPUT ${PTX_TEST_GEN}/${kernel}.ptx
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75
            ${PTX_TEST_DIR}/kernels/${kernel}.cu -o ${PTX_TEST_GEN}/${kernel}.ptx
    DEPENDS ${PTX_TEST_DIR}/kernels/${kernel}.cu
    COMMENT "nvcc -ptx tests/ptx/kernels/${kernel}.cu")
  list(APPEND PTX_TEST_PTX ${PTX_TEST_GEN}/${kernel}.ptx)
endforeach()
add_custom_target(ptx_test_kernels DEPENDS ${PTX_TEST_PTX})

foreach(t test_ptx_kernels test_ptx_more test_ptx_errors test_ptx_semantics)
  add_executable(${t} ${PTX_TEST_DIR}/${t}.c ${PTX_TEST_DIR}/ptx_testlib.c)
  add_dependencies(${t} ptx_test_kernels)
  target_include_directories(${t} PRIVATE ${PTX_TEST_DIR})
  target_compile_definitions(${t} PRIVATE PTX_KERNEL_DIR="${PTX_TEST_GEN}")
  target_link_libraries(${t} PRIVATE vgptx ${CRITERION_LIB})
  add_test(NAME ${t} COMMAND ${t})
endforeach()
