# Install grove into a temporary prefix, then build and run a small program
# against it twice: with pkg-config, and with CMake's find_package(grove).
# Variables: BUILD_DIR (grove's build), WORK (scratch dir), SRC (consumer .c).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(prefix ${WORK}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()

# 1. pkg-config
find_program(PKGCONFIG pkg-config REQUIRED)
find_program(CC NAMES cc gcc REQUIRED)
file(GLOB pcdir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
execute_process(COMMAND ${PKGCONFIG} --cflags --libs --static grove
                OUTPUT_VARIABLE flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not find grove in ${pcdir}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
execute_process(COMMAND ${CC} ${SRC} -o ${WORK}/consumer_pc ${flags}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building against pkg-config flags failed:\n${err}")
endif()
# -lgrove links libgrove.so: point the loader at the scratch prefix
get_filename_component(libdir "${pcdir}" DIRECTORY)
execute_process(COMMAND ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK}/consumer_pc
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "params/layer/kernel \\(8, 4\\) float32")
  message(FATAL_ERROR "pkg-config consumer: rc=${rc}\n${out}")
endif()

# 2. find_package(grove)
file(WRITE ${WORK}/proj/CMakeLists.txt
"cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(grove REQUIRED)
add_executable(consumer ${SRC})
target_link_libraries(consumer PRIVATE grove::grove)
")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${WORK}/proj -B ${WORK}/proj/build
                -DCMAKE_PREFIX_PATH=${prefix} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "find_package(grove) failed:\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/proj/build RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the find_package consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${WORK}/proj/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "params/layer/kernel \\(8, 4\\) float32")
  message(FATAL_ERROR "find_package consumer: rc=${rc}\n${out}")
endif()
message(STATUS "pkg-config and find_package consumers built and ran")
