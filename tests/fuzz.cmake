# Fuzz harnesses (tests/fuzz/): the frame and handshake decoder, the PTX parser and interpreter,
# the fatbin parser. Each harness is one LLVMFuzzerTestOneInput, built two ways:
#   fuzz_replay_TARGET  every build: runs the committed crash inputs (tests/fuzz/regressions/TARGET)
#                       and the generated seeds through the harness, with ASan and UBSan even in
#                       an unsanitized build; ctest runs it as fuzz_regress_TARGET.
#   fuzz_TARGET         with -DVGPU_FUZZ=ON and CC=clang only: the libFuzzer binary that
#                       scripts/fuzz.sh runs (build-fuzz/).
# Seed corpora are made at build time from what the build already compiles with nvcc (the kernel
# corpus and the test kernels, as PTX and fatbins) and, for frames, by gen_frame_seeds.c; they
# live in the build tree (fuzz/seeds/TARGET), never in the repository.
set(FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(FUZZ_SEEDS ${CMAKE_BINARY_DIR}/fuzz/seeds)
set(FUZZ_TARGETS frame ptx fatbin)
set(FUZZ_LIB_frame vgproto)
set(FUZZ_LIB_ptx vgptx)
set(FUZZ_LIB_fatbin vgcommon)
set(FUZZ_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

# ---- seeds ----------------------------------------------------------------------------------

add_executable(fuzz_gen_frame_seeds ${FUZZ_DIR}/gen_frame_seeds.c)
target_link_libraries(fuzz_gen_frame_seeds PRIVATE vgproto)
set_target_properties(fuzz_gen_frame_seeds PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)

# Every PTX text and fatbin (and the cubin: vg_image_locate reads ELF headers) the test areas
# build, copied under names that say where each came from; each PTX module also split into one
# module per kernel (split_ptx.py), small seeds that fit the PTX fuzzer's -max_len.
set(FUZZ_PTX_SEEDS ${EMU_K}.ptx ${REMOTE_KERNEL_DIR}/remote_kernels.ptx ${PTX_TEST_PTX})
set(FUZZ_FATBIN_SEEDS ${EMU_K}.fatbin ${EMU_K}.o.fatbin ${EMU_K}.lz4.fatbin ${EMU_K}.raw.fatbin
                      ${EMU_K}.elfonly.fatbin ${EMU_K}.cubin ${REMOTE_KERNEL_DIR}/remote_kernels.fatbin)
foreach(img ${CORPUS_IMAGES})
  if(img MATCHES "\\.ptx$")
    list(APPEND FUZZ_PTX_SEEDS ${img})
  else()
    list(APPEND FUZZ_FATBIN_SEEDS ${img})
  endif()
endforeach()
set(FUZZ_SEED_COPIES "")
foreach(kind ptx fatbin)
  string(TOUPPER ${kind} KIND)
  foreach(src ${FUZZ_${KIND}_SEEDS})
    get_filename_component(parent ${src} DIRECTORY)
    get_filename_component(parent ${parent} NAME)
    get_filename_component(name ${src} NAME)
    list(APPEND FUZZ_SEED_COPIES COMMAND ${CMAKE_COMMAND} -E copy ${src} ${FUZZ_SEEDS}/${kind}/${parent}_${name})
  endforeach()
endforeach()
add_custom_command(
  OUTPUT ${FUZZ_SEEDS}/stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${FUZZ_SEEDS}/frame ${FUZZ_SEEDS}/ptx ${FUZZ_SEEDS}/fatbin
  COMMAND ${CMAKE_COMMAND} -E make_directory ${FUZZ_SEEDS}/frame ${FUZZ_SEEDS}/ptx ${FUZZ_SEEDS}/fatbin
  COMMAND fuzz_gen_frame_seeds ${FUZZ_SEEDS}/frame
  ${FUZZ_SEED_COPIES}
  COMMAND ${Python3_EXECUTABLE} ${FUZZ_DIR}/split_ptx.py ${FUZZ_SEEDS}/ptx ${FUZZ_PTX_SEEDS}
  COMMAND ${CMAKE_COMMAND} -E touch ${FUZZ_SEEDS}/stamp
  DEPENDS fuzz_gen_frame_seeds ${FUZZ_DIR}/split_ptx.py ${FUZZ_PTX_SEEDS} ${FUZZ_FATBIN_SEEDS}
  COMMENT "fuzz seed corpora (frames, PTX, fatbins)"
  VERBATIM)
add_custom_target(fuzz_seeds DEPENDS ${FUZZ_SEEDS}/stamp)

# ---- replay runners (every build) -------------------------------------------------------------

# A build sanitized as a whole (VGPU_SANITIZE, VGPU_FUZZ) links the libraries as they are; any
# other gets a copy of the library under test built with ASan and UBSan, so that a regression
# input that once overran a buffer fails the test again, not only under VGPU_SANITIZE.
if(VGPU_SANITIZE OR VGPU_FUZZ)
  set(FUZZ_COPY_LIBS OFF)
else()
  set(FUZZ_COPY_LIBS ON)
endif()

function(fuzz_sanitized_copy new lib)
  get_target_property(srcs ${lib} SOURCES)
  get_target_property(dir ${lib} SOURCE_DIR)
  set(abs "")
  foreach(s IN LISTS srcs)
    # Generator expressions (vgptx's AVX2 handlers, $<TARGET_OBJECTS:...>) are linked as built.
    if(IS_ABSOLUTE "${s}" OR s MATCHES "^\\$<")
      list(APPEND abs "${s}")
    else()
      list(APPEND abs "${dir}/${s}")
    endif()
  endforeach()
  add_library(${new} STATIC ${abs})
  target_include_directories(${new} PUBLIC $<TARGET_PROPERTY:${lib},INCLUDE_DIRECTORIES>)
  target_compile_definitions(${new} PRIVATE $<TARGET_PROPERTY:${lib},COMPILE_DEFINITIONS>)
  # Per-source options (ptx_xops.c's -fno-strict-aliasing) belong to the library's folder and do
  # not follow the sources here: -fno-strict-aliasing for the whole copy.
  target_compile_options(${new} PRIVATE $<TARGET_PROPERTY:${lib},COMPILE_OPTIONS> -fno-strict-aliasing
                         ${FUZZ_SAN_FLAGS})
  target_link_libraries(${new} PUBLIC $<TARGET_PROPERTY:${lib},LINK_LIBRARIES>)
  add_dependencies(${new} ${lib}) # generated sources and headers come with the original
endfunction()

foreach(t ${FUZZ_TARGETS})
  set(lib ${FUZZ_LIB_${t}})
  add_executable(fuzz_replay_${t} ${FUZZ_DIR}/fuzz_replay.c ${FUZZ_DIR}/fuzz_${t}.c)
  set_target_properties(fuzz_replay_${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  if(FUZZ_COPY_LIBS)
    fuzz_sanitized_copy(${lib}_sanitized ${lib})
    set(lib ${lib}_sanitized)
    target_compile_options(fuzz_replay_${t} PRIVATE ${FUZZ_SAN_FLAGS})
    target_link_options(fuzz_replay_${t} PRIVATE -fsanitize=address,undefined)
  endif()
  target_link_libraries(fuzz_replay_${t} PRIVATE ${lib})
  add_dependencies(fuzz_replay_${t} fuzz_seeds)
  add_test(NAME fuzz_regress_${t} COMMAND fuzz_replay_${t} ${FUZZ_DIR}/regressions/${t} ${FUZZ_SEEDS}/${t})
  set_tests_properties(fuzz_regress_${t} PROPERTIES TIMEOUT 300 ENVIRONMENT
    "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0;UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endforeach()

# ---- libFuzzer binaries (VGPU_FUZZ) -----------------------------------------------------------

if(VGPU_FUZZ)
  foreach(t ${FUZZ_TARGETS})
    add_executable(fuzz_${t} ${FUZZ_DIR}/fuzz_${t}.c)
    set_target_properties(fuzz_${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    target_link_libraries(fuzz_${t} PRIVATE ${FUZZ_LIB_${t}})
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz_${t} fuzz_seeds)
  endforeach()
endif()
