# Unmodified CUDA runtime programs (tests/runtime/*.cu), each built by plain nvcc twice: with the
# default static cudart and with -cudart shared. They run
#   - in-process on the emulated driver (LD_LIBRARY_PATH=lib/emulated), once it is in the tree;
#   - remotely through the stub and a gpu-server (tests/with-server.sh), once that exists;
# procaddr_test checks cuGetProcAddress and the export tables in both libcuda.so.1 builds.
set(RT_SRC ${CMAKE_CURRENT_SOURCE_DIR}/runtime)
set(RT_BIN ${CMAKE_CURRENT_BINARY_DIR}/runtime)
set(RT_CUDA_LIBDIR ${CUDAToolkit_LIBRARY_DIR}) # libcudart.so.13 for the -cudart shared builds
set(RT_PROGRAMS rt_device rt_vector rt_symbols rt_streams rt_threads rt_errors rt_mapped rt_launch_ex
                rt_managed rt_pitched rt_memory rt_peer rt_graph_dev rt_textures rt_wmma rt_virtual
                rt_grid_sync rt_pfilter)
# In-process only: rt_graph captures copies to and from host memory into a graph, which cannot
# run on another machine (the stub refuses graph nodes on client memory); rt_launch wants device
# printf to appear only at the program's synchronize, and through gpu-server it appears as soon as
# the server's scheduler has waited for the kernel.
set(RT_INPROC_PROGRAMS rt_graph rt_launch)

# nvcc builds these programs without ASan, but in a VGPU_SANITIZE build the libcuda.so.1 they load
# is ASan-built, and ASan insists on its runtime coming first: preload it (VGPU_SANITIZE_PRELOAD
# comes from tests/CMakeLists.txt; empty otherwise).
set(RT_PRELOAD_ENV "")
set(RT_PRELOAD_SH "")
if(VGPU_SANITIZE_PRELOAD)
  set(RT_PRELOAD_ENV "LD_PRELOAD=${VGPU_SANITIZE_PRELOAD}")
  set(RT_PRELOAD_SH "LD_PRELOAD=\"${VGPU_SANITIZE_PRELOAD}\"")
endif()

add_executable(procaddr_test ${RT_SRC}/procaddr_test.c $<TARGET_OBJECTS:vgapi>)
target_include_directories(procaddr_test PRIVATE ${PROJECT_SOURCE_DIR}/common)
target_link_libraries(procaddr_test PRIVATE vgcommon ${CMAKE_DL_LIBS})
add_dependencies(procaddr_test cuda_emu cuda_stub)
add_test(NAME runtime_procaddr_emulated COMMAND procaddr_test ${CMAKE_BINARY_DIR}/lib/emulated/libcuda.so.1)
add_test(NAME runtime_procaddr_stub COMMAND procaddr_test ${CMAKE_BINARY_DIR}/lib/libcuda.so.1)

set(RT_OUTPUTS "")
foreach(prog ${RT_PROGRAMS} ${RT_INPROC_PROGRAMS})
  add_custom_command(
    OUTPUT ${RT_BIN}/${prog}_static
    COMMAND ${CMAKE_COMMAND} -E make_directory ${RT_BIN}
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -o ${RT_BIN}/${prog}_static ${RT_SRC}/${prog}.cu
    DEPENDS ${RT_SRC}/${prog}.cu ${RT_SRC}/rt_check.h
    COMMENT "nvcc ${prog}.cu (static cudart)")
  add_custom_command(
    OUTPUT ${RT_BIN}/${prog}_shared
    COMMAND ${CMAKE_COMMAND} -E make_directory ${RT_BIN}
    COMMAND ${CUDAToolkit_NVCC_EXECUTABLE} -cudart shared -o ${RT_BIN}/${prog}_shared ${RT_SRC}/${prog}.cu
    DEPENDS ${RT_SRC}/${prog}.cu ${RT_SRC}/rt_check.h
    COMMENT "nvcc -cudart shared ${prog}.cu")
  list(APPEND RT_OUTPUTS ${RT_BIN}/${prog}_static ${RT_BIN}/${prog}_shared)
endforeach()
add_custom_target(runtime_programs ALL DEPENDS ${RT_OUTPUTS})

if(EXISTS ${PROJECT_SOURCE_DIR}/server/emulator/CMakeLists.txt)
  # In-process, every kernel on each engine: the static build on the interpreter, the shared one
  # compiled before its first launch (VGPU_EMU_JIT=always; the default tiering would leave these
  # short kernels interpreted).
  set(RT_ENGINE_static "VGPU_EMU_JIT=0")
  set(RT_ENGINE_shared "VGPU_EMU_JIT=always;VGPU_EMU_JIT_CACHE=${CMAKE_BINARY_DIR}/jit-cache")
  foreach(prog ${RT_PROGRAMS} ${RT_INPROC_PROGRAMS})
    foreach(variant static shared)
      add_test(NAME runtime_${prog}_${variant}_inproc COMMAND ${RT_BIN}/${prog}_${variant})
      set_tests_properties(runtime_${prog}_${variant}_inproc PROPERTIES
        ENVIRONMENT "LD_LIBRARY_PATH=${CMAKE_BINARY_DIR}/lib/emulated:${RT_CUDA_LIBDIR};${RT_ENGINE_${variant}};${RT_PRELOAD_ENV}"
        TIMEOUT 300)
    endforeach()
  endforeach()
  foreach(variant static shared)
    set_property(TEST runtime_rt_peer_${variant}_inproc APPEND PROPERTY ENVIRONMENT "VGPU_EMU_DEVICES=2")
  endforeach()
endif()

if(EXISTS ${PROJECT_SOURCE_DIR}/tests/with-server.sh)
  foreach(prog ${RT_PROGRAMS})
    foreach(variant static shared)
      # with-server.sh sets LD_LIBRARY_PATH to the stub's folder; the shared cudart is appended.
      vgpu_add_remote_test(runtime_${prog}_${variant}_remote 300
        ${PROJECT_SOURCE_DIR}/tests/with-server.sh ${CMAKE_BINARY_DIR}
        sh -c "LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:${RT_CUDA_LIBDIR}\" ${RT_PRELOAD_SH} exec ${RT_BIN}/${prog}_${variant}")
    endforeach()
  endforeach()
  # Peer access needs two devices: the server's emulated GPU gets them from the environment.
  foreach(variant static shared)
    foreach(t runtime_rt_peer_${variant}_remote runtime_rt_peer_${variant}_remote_shm runtime_rt_peer_${variant}_remote_tls)
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "VGPU_EMU_DEVICES=2")
    endforeach()
  endforeach()
endif()
