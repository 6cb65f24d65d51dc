# Remoting tests (tests/remote/): the frame codec, gpu-server against malformed input, and
# driver-API programs through the stub against a real gpu-server on the emulated GPU.
set(REMOTE_KERNEL_DIR ${CMAKE_BINARY_DIR}/tests/remote_kernels)
set(REMOTE_KSRC ${CMAKE_CURRENT_SOURCE_DIR}/remote/kernels/remote_kernels.cu)
set(HOSTILE_KSRC ${CMAKE_CURRENT_SOURCE_DIR}/remote/kernels/hostile_kernels.cu)
add_custom_command(
  OUTPUT ${REMOTE_KERNEL_DIR}/remote_kernels.ptx ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
  COMMAND ${CMAKE_COMMAND} -E make_directory ${REMOTE_KERNEL_DIR}
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${REMOTE_KSRC} -o ${REMOTE_KERNEL_DIR}/remote_kernels.ptx
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin ${REMOTE_KSRC} -o ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
  DEPENDS ${REMOTE_KSRC}
  COMMENT "nvcc: remoting test kernels"
  VERBATIM)
add_custom_command(
  OUTPUT ${REMOTE_KERNEL_DIR}/hostile_kernels.ptx
  COMMAND ${CMAKE_COMMAND} -E make_directory ${REMOTE_KERNEL_DIR}
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${HOSTILE_KSRC} -o ${REMOTE_KERNEL_DIR}/hostile_kernels.ptx
  DEPENDS ${HOSTILE_KSRC}
  COMMENT "nvcc: hostile-client test kernels"
  VERBATIM)
add_custom_target(remote_kernels DEPENDS ${REMOTE_KERNEL_DIR}/remote_kernels.ptx
                                         ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
                                         ${REMOTE_KERNEL_DIR}/hostile_kernels.ptx)

# A plain driver-API program: linked against the toolkit's link stub, run with build/lib first.
add_executable(remote_e2e_prog ${CMAKE_CURRENT_SOURCE_DIR}/remote/e2e_prog.c)
target_link_libraries(remote_e2e_prog PRIVATE CUDA::cuda_driver Threads::Threads m)
set_target_properties(remote_e2e_prog PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_executable(remote_test ${CMAKE_CURRENT_SOURCE_DIR}/remote/test_frame.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/test_server.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c)
target_compile_definitions(remote_test PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
target_link_libraries(remote_test PRIVATE vgproto CUDA::toolkit ${CRITERION_LIB})
set_target_properties(remote_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(remote_test remote_e2e_prog remote_kernels gpu-server cuda_stub)
if(TARGET cuda_emu)
  add_dependencies(remote_test cuda_emu)
endif()
add_test(NAME remote COMMAND remote_test -j2)
set_tests_properties(remote PROPERTIES TIMEOUT 900)

# The same program through tests/with-server.sh, the wrapper other areas use.
add_test(NAME remote_with_server
         COMMAND ${PROJECT_SOURCE_DIR}/tests/with-server.sh ${CMAKE_BINARY_DIR}
                 $<TARGET_FILE:remote_e2e_prog> mem)

# Hostile clients: thousands of mutated frames from several connections at once against one
# gpu-server, with a well-behaved client checked between batches (tests/remote/fuzz_server.c).
# VGPU_FUZZ_SEED, VGPU_FUZZ_FRAMES and VGPU_FUZZ_CONNS override its defaults.
add_executable(remote_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/remote/fuzz_server.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c)
target_compile_definitions(remote_fuzz PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
target_link_libraries(remote_fuzz PRIVATE vgproto CUDA::toolkit Threads::Threads ${CRITERION_LIB})
set_target_properties(remote_fuzz PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(remote_fuzz remote_kernels gpu-server)
if(TARGET cuda_emu)
  add_dependencies(remote_fuzz cuda_emu)
endif()
add_test(NAME remote_fuzz COMMAND remote_fuzz)
set_tests_properties(remote_fuzz PROPERTIES TIMEOUT 1500)

# Hostile tenants (tests/remote/test_hostile.c): foreign pointers in kernels, runaway kernels
# and grids, the kernel timeout, stalled partial frames under the buffer cap, connection floods
# at the descriptor limit, device printf, a stopped server, storms of killed clients.
add_executable(remote_hostile_prog ${CMAKE_CURRENT_SOURCE_DIR}/remote/hostile_prog.c)
target_link_libraries(remote_hostile_prog PRIVATE CUDA::cuda_driver)
set_target_properties(remote_hostile_prog PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_executable(remote_hostile_test ${CMAKE_CURRENT_SOURCE_DIR}/remote/test_hostile.c
                                   ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c)
target_compile_definitions(remote_hostile_test PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
target_link_libraries(remote_hostile_test PRIVATE vgproto CUDA::toolkit ${CRITERION_LIB})
set_target_properties(remote_hostile_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(remote_hostile_test remote_hostile_prog remote_e2e_prog remote_kernels gpu-server cuda_stub)
if(TARGET cuda_emu)
  add_dependencies(remote_hostile_test cuda_emu)
endif()
add_test(NAME remote_hostile COMMAND remote_hostile_test -j2)
set_tests_properties(remote_hostile PROPERTIES TIMEOUT 1500)
