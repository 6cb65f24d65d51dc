# The recording test driver (tests/recdrv/): a libcuda.so.1 that logs the arguments every driver
# function receives and answers with deterministic outputs, loaded by gpu-server with --driver;
# and the Criterion test that sends every forwarded call through the stub to it.
set(RECDRV_DIR ${CMAKE_BINARY_DIR}/tests/recdrv)
set(RECDRV_SRC ${CMAKE_CURRENT_SOURCE_DIR}/recdrv)
add_library(cuda_rec SHARED ${RECDRV_SRC}/rec_driver.c ${RECDRV_SRC}/rec_log.c
                            ${CMAKE_BINARY_DIR}/protocol/cuapi_rec.c)
set_target_properties(cuda_rec PROPERTIES
  OUTPUT_NAME cuda PREFIX lib SUFFIX .so.1 NO_SONAME ON LIBRARY_OUTPUT_DIRECTORY ${RECDRV_DIR})
target_link_options(cuda_rec PRIVATE -Wl,-soname,libcuda.so.1 -Wl,--no-undefined)
target_include_directories(cuda_rec PRIVATE ${RECDRV_SRC} ${PROJECT_SOURCE_DIR}/protocol
                           ${CMAKE_BINARY_DIR}/protocol)
target_compile_options(cuda_rec PRIVATE -Wno-deprecated-declarations -Wno-unused-parameter)
target_link_libraries(cuda_rec PRIVATE CUDA::toolkit Threads::Threads)
add_dependencies(cuda_rec vgcalls_gen)

# The test links the stub itself (build/lib/libcuda.so.1), as a program run through vgpu does.
# Raw frames (absurd counts the stub would refuse before sending) go through tests/remote's
# harness.
add_executable(recdrv_test ${RECDRV_SRC}/test_recdrv.c ${RECDRV_SRC}/rec_log.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/harness.c ${CMAKE_CURRENT_SOURCE_DIR}/remote/relay.c
                           ${CMAKE_CURRENT_SOURCE_DIR}/remote/tls_relay.c
                           ${CMAKE_BINARY_DIR}/protocol/cuapi_rec_cases.c)
target_include_directories(recdrv_test PRIVATE ${RECDRV_SRC} ${CMAKE_CURRENT_SOURCE_DIR}/remote
                           ${PROJECT_SOURCE_DIR}/protocol ${CMAKE_BINARY_DIR}/protocol)
target_compile_definitions(recdrv_test PRIVATE VG_BUILD_DIR="${CMAKE_BINARY_DIR}"
                           VG_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/tests" VG_KERNEL_DIR="${CMAKE_BINARY_DIR}/tests"
                           VG_RECDRV_DIR="${RECDRV_DIR}")
target_compile_options(recdrv_test PRIVATE -Wno-deprecated-declarations)
target_link_libraries(recdrv_test PRIVATE cuda_stub vgproto CUDA::toolkit ${CRITERION_LIB} ${CMAKE_DL_LIBS})
set_target_properties(recdrv_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_dependencies(recdrv_test cuda_rec gpu-server nvml_stub vgcalls_gen)
add_test(NAME recdrv COMMAND recdrv_test)
set_tests_properties(recdrv PROPERTIES TIMEOUT 600)
