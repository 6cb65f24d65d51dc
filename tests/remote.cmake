# Remoting tests (tests/remote/): the frame codec, gpu-server against malformed input, and
# driver-API programs through the stub against a real gpu-server on the emulated GPU.
set(REMOTE_KERNEL_DIR ${CMAKE_BINARY_DIR}/tests/remote_kernels)
set(REMOTE_KSRC ${CMAKE_CURRENT_SOURCE_DIR}/remote/kernels/remote_kernels.cu)
add_custom_command(
  OUTPUT ${REMOTE_KERNEL_DIR}/remote_kernels.ptx ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
  COMMAND ${CMAKE_COMMAND} -E make_directory ${REMOTE_KERNEL_DIR}
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${REMOTE_KSRC} -o ${REMOTE_KERNEL_DIR}/remote_kernels.ptx
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin ${REMOTE_KSRC} -o ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
  DEPENDS ${REMOTE_KSRC}
  COMMENT "nvcc: remoting test kernels"
  VERBATIM)
foreach(k hostile_kernels tenant_kernels)
  add_custom_command(
    OUTPUT ${REMOTE_KERNEL_DIR}/${k}.ptx
    COMMAND ${CMAKE_COMMAND} -E make_directory ${REMOTE_KERNEL_DIR}
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${CMAKE_CURRENT_SOURCE_DIR}/remote/kernels/${k}.cu
            -o ${REMOTE_KERNEL_DIR}/${k}.ptx
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/remote/kernels/${k}.cu
    COMMENT "nvcc: ${k}.cu"
    VERBATIM)
endforeach()
add_custom_target(remote_kernels DEPENDS ${REMOTE_KERNEL_DIR}/remote_kernels.ptx
                                         ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin
                                         ${REMOTE_KERNEL_DIR}/hostile_kernels.ptx
                                         ${REMOTE_KERNEL_DIR}/tenant_kernels.ptx)

# A plain driver-API program: linked against the toolkit's link stub, run with build/lib first.
add_executable(remote_e2e_prog ${CMAKE_CURRENT_SOURCE_DIR}/remote/e2e_prog.c)
target_link_libraries(remote_e2e_prog PRIVATE CUDA::cuda_driver Threads::Threads m)
set_target_properties(remote_e2e_prog PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

add_executable(remote_test ${CMAKE_CURRENT_SOURCE_DIR}/remote/test_frame.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/test_server.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/relay.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/tls_relay.c)
target_compile_definitions(remote_test PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
target_link_libraries(remote_test PRIVATE vgproto CUDA::toolkit Threads::Threads ${CRITERION_LIB})
set_target_properties(remote_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(remote_test remote_e2e_prog remote_kernels gpu-server cuda_stub)
if(TARGET cuda_emu)
  add_dependencies(remote_test cuda_emu)
endif()
vgpu_add_remote_test(remote 900 remote_test -j2)

# The same program through tests/with-server.sh, the wrapper other areas use.
vgpu_add_remote_test(remote_with_server 300 ${PROJECT_SOURCE_DIR}/tests/with-server.sh ${CMAKE_BINARY_DIR}
                     $<TARGET_FILE:remote_e2e_prog> mem)

# Hostile clients: thousands of mutated frames from several connections at once against one
# gpu-server, with a well-behaved client checked between batches (tests/remote/fuzz_server.c).
# VGPU_FUZZ_SEED, VGPU_FUZZ_FRAMES and VGPU_FUZZ_CONNS override its defaults.
add_executable(remote_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/remote/fuzz_server.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/relay.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/tls_relay.c)
target_compile_definitions(remote_fuzz PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
target_link_libraries(remote_fuzz PRIVATE vgproto CUDA::toolkit Threads::Threads ${CRITERION_LIB})
set_target_properties(remote_fuzz PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(remote_fuzz remote_kernels gpu-server)
if(TARGET cuda_emu)
  add_dependencies(remote_fuzz cuda_emu)
endif()
vgpu_add_remote_test(remote_fuzz 1500 remote_fuzz)

# Suites that run programs through the stub against servers they start (tests/remote/harness.c):
# vgpu_remote_suite(NAME SOURCE [SERIAL] PROGRAMS...) builds remote_NAME_test from SOURCE and runs
# it as ctest remote_NAME (TCP), remote_NAME_shm (shared memory) and remote_NAME_tls. SERIAL: its
# tests run one at a time and nothing else runs beside them (for suites that measure how tenants
# share the emulated device, which is this machine's CPU: a neighbour takes CPU from one tenant's
# session and not the other's).
function(vgpu_remote_suite name source)
  cmake_parse_arguments(PARSE_ARGV 2 S "SERIAL" "" "")
  set(deps ${S_UNPARSED_ARGUMENTS})
  add_executable(remote_${name}_test ${CMAKE_CURRENT_SOURCE_DIR}/remote/${source}
                                     ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c
                                     ${CMAKE_CURRENT_SOURCE_DIR}/remote/relay.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/tls_relay.c)
  target_compile_definitions(remote_${name}_test PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                             VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests"
                             VG_KERNEL_DIR="${REMOTE_KERNEL_DIR}")
  target_link_libraries(remote_${name}_test PRIVATE vgproto CUDA::toolkit Threads::Threads ${CRITERION_LIB})
  set_target_properties(remote_${name}_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_dependencies(remote_${name}_test ${deps} remote_kernels gpu-server cuda_stub)
  if(TARGET cuda_emu)
    add_dependencies(remote_${name}_test cuda_emu)
  endif()
  if(S_SERIAL)
    vgpu_add_remote_test(remote_${name} 1500 remote_${name}_test -j1)
    set_tests_properties(remote_${name} remote_${name}_shm remote_${name}_tls PROPERTIES RUN_SERIAL TRUE)
  else()
    vgpu_add_remote_test(remote_${name} 1500 remote_${name}_test -j2)
  endif()
endfunction()

# A driver-API test program linked against the toolkit's link stub, run with build/lib first.
function(vgpu_remote_prog name source)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/remote/${source})
  target_link_libraries(${name} PRIVATE CUDA::cuda_driver)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endfunction()

# Hostile tenants (tests/remote/test_hostile.c): foreign pointers in kernels, runaway kernels
# and grids, the kernel timeout, stalled partial frames under the buffer cap, connection floods
# at the descriptor limit, device printf, a stopped server, storms of killed clients.
vgpu_remote_prog(remote_hostile_prog hostile_prog.c)
vgpu_remote_suite(hostile test_hostile.c remote_hostile_prog remote_e2e_prog vgpu-smi)

# Tenants (tests/remote/test_tenants.c): tokens, memory limits and the tenant's view, reloads,
# device lists.
vgpu_remote_prog(remote_tenant_prog tenant_prog.c)
vgpu_remote_suite(tenants test_tenants.c remote_tenant_prog vgpu-smi)

# The device scheduler (tests/remote/test_sched.c): weights order the service, reloads, caps, no
# head-of-line blocking of host-side calls, device time charged. Serial: beside other tests (or
# its own, two at a time) a tenant's session could lose the CPU, and with it its share, for a
# whole measured second (seen on 2 cores: equal weights measured 2.9:1, a 1:6 reweight 0.06:1).
vgpu_remote_suite(sched test_sched.c SERIAL remote_tenant_prog vgpu-smi)

# TLS (tests/remote/test_tls.c): a capture shows no payload; a plain client at a TLS port, a TLS
# client at a plain port, an untrusted certificate, a name mismatch, client certificates.
vgpu_remote_suite(tls_checks test_tls.c remote_tenant_prog)

# The NVML stub (tests/remote/test_nvml.c): nvml_prog, linked against build/lib/libnvidia-ml.so.1
# as a monitoring tool is against NVIDIA's, checks NVML's answers against the CUDA driver's, the
# error paths, and the tenant's view of memory.
vgpu_remote_prog(remote_nvml_prog nvml_prog.c)
target_link_libraries(remote_nvml_prog PRIVATE nvml_stub)
set_target_properties(remote_nvml_prog PROPERTIES SKIP_BUILD_RPATH ON) # run with build/lib first
target_include_directories(remote_nvml_prog PRIVATE ${PROJECT_SOURCE_DIR}/protocol)
vgpu_remote_suite(nvml test_nvml.c remote_nvml_prog remote_tenant_prog)
