# Install grove into a temporary prefix, then build and run a small program
# against it: with the README's own pkg-config line (read from README.md, run
# as it is written), with pkg-config's --static flags, and with CMake's
# find_package(grove). Every binary runs with no LD_LIBRARY_PATH: the
# scratch prefix is in no loader path, so each finds libgrove.so through the
# run path grove.pc gives it, or links libgrove.a.
# Variables: BUILD_DIR (grove's build), WORK (scratch dir), SRC (consumer .c).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(prefix ${WORK}/prefix)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
set(expect "batch 0: x \\(3, 2\\) float32, y int32 starting 0\n")
string(APPEND expect "params/layer/kernel \\(8, 4\\) float32")

# run_consumer(NAME BINARY): run it without LD_LIBRARY_PATH, check its output
function(run_consumer name binary)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${binary}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "${expect}")
    message(FATAL_ERROR "${name}: ${binary} exited with ${rc}\n${out}\n${err}")
  endif()
endfunction()

# 1. the README's line, exactly: `cc app.c $(pkg-config --cflags --libs grove)`
find_program(PKGCONFIG pkg-config REQUIRED)
find_program(SH sh REQUIRED)
file(GLOB pcdir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
file(READ ${CMAKE_CURRENT_LIST_DIR}/../../README.md readme)
if(NOT readme MATCHES "`(cc app\\.c \\$\\(pkg-config [^`]*\\))`")
  message(FATAL_ERROR "README.md has no `cc app.c $(pkg-config ...)` line to test")
endif()
set(line "${CMAKE_MATCH_1}")
file(MAKE_DIRECTORY ${WORK}/app)
configure_file(${SRC} ${WORK}/app/app.c COPYONLY)
execute_process(COMMAND ${SH} -c "${line}" WORKING_DIRECTORY ${WORK}/app
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK}/app/a.out)
  message(FATAL_ERROR "the README's line `${line}` failed (${rc}):\n${out}\n${err}")
endif()
run_consumer("the README's line `${line}`" ${WORK}/app/a.out)
# and from another directory, so a run path relative to the build's would fail
file(MAKE_DIRECTORY ${WORK}/elsewhere)
file(RENAME ${WORK}/app/a.out ${WORK}/elsewhere/a.out)
run_consumer("the README's binary, moved" ${WORK}/elsewhere/a.out)

# 2. pkg-config --static: the private libraries too
execute_process(COMMAND ${PKGCONFIG} --cflags --libs --static grove
                OUTPUT_VARIABLE flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not find grove in ${pcdir}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
find_program(CC NAMES cc gcc REQUIRED)
execute_process(COMMAND ${CC} ${SRC} -o ${WORK}/consumer_pc ${flags}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building against pkg-config --static flags failed:\n${err}")
endif()
run_consumer("pkg-config --static" ${WORK}/consumer_pc)

# 3. find_package(grove)
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
run_consumer("find_package" ${WORK}/proj/build/consumer)
message(STATUS "the README's pkg-config line, pkg-config --static and find_package consumers "
               "built and ran")
