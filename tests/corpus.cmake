# The kernel corpus: CUDA C kernels in tests/kernels/, compiled by nvcc at build time into three
# image forms each, and a driver-API harness (tests/corpus/) that runs every kernel against a CPU
# reference, in-process on the emulated driver and remotely through gpu-server.
#
# Image forms, so that every way a module reaches the driver is exercised:
#   NAME.ptx          PTX text for compute_75            (cuModuleLoadData, cuModuleLoad)
#   NAME.fatbin       nvcc's default fatbin (sm_75 SASS + compute_75 PTX)  (cuModuleLoadFatBinary)
#   NAME.sm80.fatbin  fatbin for -arch=sm_80 (sm_80 SASS + compute_80 PTX) (cuModuleLoadData)

set(CORPUS_KERNEL_DIR ${CMAKE_BINARY_DIR}/tests/kernels)
file(GLOB CORPUS_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*.cu)
set(CORPUS_IMAGES "")
foreach(src ${CORPUS_KERNEL_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  set(out ${CORPUS_KERNEL_DIR}/${name})
  add_custom_command(
    OUTPUT ${out}.ptx ${out}.fatbin ${out}.sm80.fatbin
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CORPUS_KERNEL_DIR}
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${src} -o ${out}.ptx
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin ${src} -o ${out}.fatbin
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin -arch=sm_80 ${src} -o ${out}.sm80.fatbin
    DEPENDS ${src}
    COMMENT "nvcc: corpus kernels ${name}.cu (ptx, fatbin, sm_80 fatbin)"
    VERBATIM)
  list(APPEND CORPUS_IMAGES ${out}.ptx ${out}.fatbin ${out}.sm80.fatbin)
endforeach()
add_custom_target(corpus_kernels DEPENDS ${CORPUS_IMAGES})

# The harness is a CUDA driver-API program like any user's: it links the toolkit's link stub and
# picks up whichever libcuda.so.1 LD_LIBRARY_PATH (or the remote wrapper) provides at run time.
add_executable(corpus_test ${CMAKE_CURRENT_SOURCE_DIR}/corpus/corpus_test.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/corpus/corpus_util.c)
target_include_directories(corpus_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
target_compile_definitions(corpus_test PRIVATE CORPUS_KERNEL_DIR="${CORPUS_KERNEL_DIR}")
target_link_libraries(corpus_test PRIVATE CUDA::cuda_driver ${CRITERION_LIB} m)
add_dependencies(corpus_test corpus_kernels)
# What the two registrations below run it on: the emulated driver in-process, and the stub with
# gpu-server for the remote run.
foreach(dep cuda_emu cuda_stub gpu-server)
  if(TARGET ${dep})
    add_dependencies(corpus_test ${dep})
  endif()
endforeach()

# In-process, once per engine: the interpreter, and the JIT compiling every kernel at its first
# launch (when it is built).
add_test(NAME corpus_local COMMAND corpus_test)
set_tests_properties(corpus_local PROPERTIES
  ENVIRONMENT "LD_LIBRARY_PATH=${CMAKE_BINARY_DIR}/lib/emulated;VGPU_EMU_JIT=0"
  TIMEOUT 600)
if(TARGET vgpu_jit)
  add_test(NAME corpus_local_jit COMMAND corpus_test)
  set_tests_properties(corpus_local_jit PROPERTIES
    ENVIRONMENT "LD_LIBRARY_PATH=${CMAKE_BINARY_DIR}/lib/emulated;VGPU_EMU_JIT=always;VGPU_EMU_JIT_CACHE=${CMAKE_BINARY_DIR}/jit-cache"
    TIMEOUT 600)
endif()

if(EXISTS ${PROJECT_SOURCE_DIR}/tests/with-server.sh)
  vgpu_add_remote_test(corpus_remote 900
                       ${PROJECT_SOURCE_DIR}/tests/with-server.sh ${CMAKE_BINARY_DIR} $<TARGET_FILE:corpus_test>)
endif()

# vgpu-emu-bench --quick: every engine runs both kernels and the matrix product matches the CPU's;
# --help and an unknown option answer as they should.
if(TARGET vgpu-emu-bench)
  add_test(NAME vgpu_emu_bench_quick COMMAND vgpu-emu-bench --quick)
  set_tests_properties(vgpu_emu_bench_quick PROPERTIES TIMEOUT 300
                       ENVIRONMENT "VGPU_EMU_JIT_CACHE=${CMAKE_BINARY_DIR}/jit-cache"
                       PASS_REGULAR_EXPRESSION "results checked against the CPU")
  add_test(NAME vgpu_emu_bench_help COMMAND vgpu-emu-bench --help)
  set_tests_properties(vgpu_emu_bench_help PROPERTIES PASS_REGULAR_EXPRESSION "^usage: vgpu-emu-bench")
  add_test(NAME vgpu_emu_bench_bad_option COMMAND vgpu-emu-bench --bogus)
  set_tests_properties(vgpu_emu_bench_bad_option PROPERTIES PASS_REGULAR_EXPRESSION "unknown option --bogus")
endif()

# vgpu-bench --quick as a smoke test: both modes must run every measurement (exit status 0).
if(TARGET vgpu-bench)
  add_test(NAME vgpu_bench_quick COMMAND vgpu-bench --quick --json)
  set_tests_properties(vgpu_bench_quick PROPERTIES TIMEOUT 600)
  # vgpu-bench share, one short scenario: a server with tenants, clients through the stub, every
  # figure produced (no judgement of them here: that is what the benchmark is for).
  add_test(NAME vgpu_bench_share_quick COMMAND vgpu-bench share --scenario 3:1 --seconds 2 --kernel-ms 5 --json)
  set_tests_properties(vgpu_bench_share_quick PROPERTIES TIMEOUT 600
                       PASS_REGULAR_EXPRESSION "\"achieved\": 0[.][0-9]+.*\"achieved\": 0[.][0-9]+")
endif()
