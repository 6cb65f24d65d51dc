# Runtime-API programs (nvcc, static and shared cudart) against the emulated driver, in-process
# and through the stub; and a probe driver that tests cuGetProcAddress and the export tables alone.
vgpu_driver_library(vgpu_probe_driver ${CMAKE_BINARY_DIR}/lib/probe ${CMAKE_CURRENT_SOURCE_DIR}/runtime/probe_driver.c)
