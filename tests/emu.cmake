# Tests of the emulated GPU driver (server/emulator) and of common/fatbin.c. Each test program is
# an ordinary driver-API program: it links the toolkit's libcuda stub and runs on
# build/lib/emulated/libcuda.so.1 through LD_LIBRARY_PATH.
set(EMU_KDIR ${CMAKE_BINARY_DIR}/tests/emu_kernels)
set(EMU_KSRC ${CMAKE_CURRENT_SOURCE_DIR}/emu/kernels/emu_kernels.cu)
set(EMU_K ${EMU_KDIR}/emu_kernels)
# Image forms: PTX text; nvcc -fatbin (sm_75 ELF + zstd-compressed compute_75 PTX); the .nv_fatbin
# section of a default `nvcc -c` object; an LZ4 fatbin (fatbinary --compress-mode=speed); an
# uncompressed fatbin; an ELF cubin; a fatbin holding only ELF.
add_custom_command(
  OUTPUT ${EMU_K}.ptx ${EMU_K}.fatbin ${EMU_K}.o.fatbin ${EMU_K}.lz4.fatbin ${EMU_K}.raw.fatbin
         ${EMU_K}.cubin ${EMU_K}.elfonly.fatbin
  COMMAND ${CMAKE_COMMAND} -E make_directory ${EMU_KDIR}
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -ptx -arch=compute_75 ${EMU_KSRC} -o ${EMU_K}.ptx
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -fatbin ${EMU_KSRC} -o ${EMU_K}.fatbin
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -c ${EMU_KSRC} -o ${EMU_K}.o
  COMMAND objcopy -O binary --only-section=.nv_fatbin ${EMU_K}.o ${EMU_K}.o.fatbin
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -cubin -arch=sm_75 ${EMU_KSRC} -o ${EMU_K}.cubin
  COMMAND ${CUDAToolkit_BIN_DIR}/fatbinary --create=${EMU_K}.lz4.fatbin --compress-all
          --compress-mode=speed --image3=kind=ptx,sm=75,file=${EMU_K}.ptx
          --image3=kind=elf,sm=75,file=${EMU_K}.cubin
  COMMAND ${CUDAToolkit_BIN_DIR}/fatbinary --create=${EMU_K}.raw.fatbin --compress-mode=none
          --image3=kind=ptx,sm=75,file=${EMU_K}.ptx
  COMMAND ${CUDAToolkit_BIN_DIR}/fatbinary --create=${EMU_K}.elfonly.fatbin
          --image3=kind=elf,sm=75,file=${EMU_K}.cubin
  DEPENDS ${EMU_KSRC}
  COMMENT "nvcc: emulated-driver test kernels (ptx, fatbins, cubin)"
  VERBATIM)
# The JIT linker test's separately compiled halves (-rdc=true): PTX of both, a fatbin (with its
# PTX) and a cubin of the library half.
set(EMU_LSRC ${CMAKE_CURRENT_SOURCE_DIR}/emu/kernels)
add_custom_command(
  OUTPUT ${EMU_KDIR}/link_main.ptx ${EMU_KDIR}/link_lib.ptx ${EMU_KDIR}/link_lib.fatbin
         ${EMU_KDIR}/link_lib.cubin
  COMMAND ${CMAKE_COMMAND} -E make_directory ${EMU_KDIR}
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -rdc=true -ptx -arch=compute_75 ${EMU_LSRC}/link_main.cu -o ${EMU_KDIR}/link_main.ptx
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -rdc=true -ptx -arch=compute_75 ${EMU_LSRC}/link_lib.cu -o ${EMU_KDIR}/link_lib.ptx
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -rdc=true -fatbin -gencode arch=compute_75,code=compute_75 ${EMU_LSRC}/link_lib.cu -o ${EMU_KDIR}/link_lib.fatbin
  COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -rdc=true -cubin -arch=sm_75 ${EMU_LSRC}/link_lib.cu -o ${EMU_KDIR}/link_lib.cubin
  DEPENDS ${EMU_LSRC}/link_main.cu ${EMU_LSRC}/link_lib.cu
  COMMENT "nvcc: JIT linker test inputs (-rdc=true)"
  VERBATIM)
add_custom_target(emu_kernels DEPENDS ${EMU_K}.ptx ${EMU_K}.fatbin ${EMU_K}.o.fatbin
  ${EMU_K}.lz4.fatbin ${EMU_K}.raw.fatbin ${EMU_K}.cubin ${EMU_K}.elfonly.fatbin
  ${EMU_KDIR}/link_main.ptx ${EMU_KDIR}/link_lib.ptx ${EMU_KDIR}/link_lib.fatbin
  ${EMU_KDIR}/link_lib.cubin)

foreach(t device ctx mem stream module isolation printf shm graph pool managed vmm array tex peer
        launch link)
  add_executable(emu_test_${t} ${CMAKE_CURRENT_SOURCE_DIR}/emu/test_${t}.c)
  target_include_directories(emu_test_${t} PRIVATE ${CUDAToolkit_INCLUDE_DIRS}
    ${CMAKE_CURRENT_SOURCE_DIR}/emu)
  target_compile_definitions(emu_test_${t} PRIVATE EMU_KERNEL_DIR="${EMU_KDIR}")
  target_link_libraries(emu_test_${t} PRIVATE CUDA::cuda_driver ${CRITERION_LIB} Threads::Threads)
  add_dependencies(emu_test_${t} emu_kernels)
  if(TARGET cuda_emu)
    add_dependencies(emu_test_${t} cuda_emu)
  endif()
  add_test(NAME emu_${t} COMMAND emu_test_${t})
  # Criterion runs a binary's tests in parallel processes, and several tests compare cuMemGetInfo
  # before and after: each test process keeps its own device accounting (VGPU_EMU_SHM=none);
  # test_shm.c names its own shared segments to test sharing.
  set_tests_properties(emu_${t} PROPERTIES
    ENVIRONMENT "LD_LIBRARY_PATH=${CMAKE_BINARY_DIR}/lib/emulated;VGPU_LOG=error;VGPU_EMU_SHM=none"
    TIMEOUT 300)
endforeach()

# Peer access needs two devices.
set_property(TEST emu_peer APPEND PROPERTY ENVIRONMENT "VGPU_EMU_DEVICES=2")

# The texture sampler is plain C with no driver state: tested directly, linked into the test.
add_executable(emu_test_sample ${CMAKE_CURRENT_SOURCE_DIR}/emu/test_sample.c
                               ${PROJECT_SOURCE_DIR}/server/emulator/emu_sample.c)
target_include_directories(emu_test_sample PRIVATE ${PROJECT_SOURCE_DIR}/server/emulator
  ${PROJECT_SOURCE_DIR}/server/emulator/ptx ${PROJECT_SOURCE_DIR}/common ${CUDAToolkit_INCLUDE_DIRS})
target_link_libraries(emu_test_sample PRIVATE ${CRITERION_LIB} m)
add_test(NAME emu_sample COMMAND emu_test_sample)

# fatbin.c is common code: test it directly, without a driver.
add_executable(emu_test_fatbin ${CMAKE_CURRENT_SOURCE_DIR}/emu/test_fatbin.c)
target_compile_definitions(emu_test_fatbin PRIVATE EMU_KERNEL_DIR="${EMU_KDIR}")
target_link_libraries(emu_test_fatbin PRIVATE vgcommon ${CRITERION_LIB})
add_dependencies(emu_test_fatbin emu_kernels)
add_test(NAME emu_fatbin COMMAND emu_test_fatbin)
