# libgrove.so exports exactly the public API: every dynamic symbol it
# defines is declared in include/grove/, and every function declared there is
# exported. The installed libraries carry no test hooks.
# Variables: SHARED (libgrove.so), STATIC (libgrove.a), INCLUDE (include/),
# CC (the C compiler), WORK (scratch dir).
cmake_minimum_required(VERSION 3.18)
find_program(NM nm REQUIRED)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

execute_process(COMMAND ${NM} -D --defined-only ${SHARED}
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm -D ${SHARED} failed (${rc})")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${out}")
set(exported)
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^@ ]+)")
    list(APPEND exported ${CMAKE_MATCH_1})
  endif()
endforeach()
list(LENGTH exported n)
if(n LESS 100)
  message(FATAL_ERROR "only ${n} exported symbols in ${SHARED}: is it grove?")
endif()

# 1. Exported => declared: a file that includes every public header and takes
# the address of every exported symbol compiles only if each is declared.
file(GLOB headers RELATIVE ${INCLUDE} ${INCLUDE}/grove/*.h)
set(probe "")
foreach(h IN LISTS headers)
  string(APPEND probe "#include \"${h}\"\n")
endforeach()
string(APPEND probe "void grove_probe(void);\nvoid grove_probe(void) {\n")
foreach(s IN LISTS exported)
  string(APPEND probe "    (void)&${s};\n")
endforeach()
string(APPEND probe "}\n")
file(WRITE ${WORK}/probe.c "${probe}")
execute_process(COMMAND ${CMAKE_COMMAND} -E env LC_ALL=C ${CC} -std=gnu11 -fsyntax-only -I${INCLUDE} -aux-info ${WORK}/aux.txt ${WORK}/probe.c
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  string(REGEX MATCHALL "'[A-Za-z_][A-Za-z0-9_]*' undeclared" undeclared "${err}")
  list(LENGTH undeclared nu)
  if(nu EQUAL 0)
    message(FATAL_ERROR "the probe of the public headers does not compile:\n${err}")
  endif()
  string(REGEX REPLACE "' undeclared" "" undeclared "${undeclared}")
  string(REGEX REPLACE "'" "" undeclared "${undeclared}")
  string(REPLACE ";" "\n  " undeclared "${undeclared}")
  message(FATAL_ERROR "libgrove.so exports ${nu} of its ${n} symbols that no header in "
          "include/grove/ declares (hidden visibility lost?):\n  ${undeclared}")
endif()

# 2. Declared => exported: gcc's -aux-info lists every function prototype
# the headers declare (other compilers skip this half).
if(EXISTS ${WORK}/aux.txt)
  file(STRINGS ${WORK}/aux.txt protos REGEX "/grove/[a-z_]+\\.h:")
  set(missing)
  foreach(p IN LISTS protos)
    # static inline helpers (pack.h's item makers) live in the headers
    if(p MATCHES "\\*/ *static ")
      continue()
    endif()
    if(p MATCHES "\\*/ *[^(]*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*) \\(")
      if(NOT CMAKE_MATCH_1 IN_LIST exported)
        list(APPEND missing ${CMAKE_MATCH_1})
      endif()
    endif()
  endforeach()
  list(LENGTH protos np)
  if(np LESS 100)
    message(FATAL_ERROR "-aux-info listed only ${np} public prototypes")
  endif()
  if(missing)
    string(REPLACE ";" "\n  " missing "${missing}")
    message(FATAL_ERROR "declared in include/grove/ but not exported by libgrove.so "
            "(outside the visibility pragmas, or never defined):\n  ${missing}")
  endif()
endif()

# 3. The fault-injection hooks are in the tests' build only.
foreach(lib ${SHARED} ${STATIC})
  execute_process(COMMAND ${NM} --defined-only ${lib} OUTPUT_VARIABLE syms ERROR_QUIET)
  if(syms MATCHES "[ \n][A-Za-z] gv_atomic_io_set_hooks")
    message(FATAL_ERROR "${lib} contains the test-only gv_atomic_io_set_hooks")
  endif()
endforeach()
message(STATUS "libgrove.so exports the ${n} symbols of the public API and no test hooks")
