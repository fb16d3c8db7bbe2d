# The optimiser macros (gv_adamw(.learning_rate = ...), include/grove/optim.h)
# override Optax's defaults with the caller's designators. That is what
# -Woverride-init (in -Wextra) warns about, so the macros silence it around
# their own initialiser. Check it: opts_snippet.c compiles under -Wall
# -Wextra -Wpedantic -Werror in several C standards, while the same
# initialiser written without the macro fails there (so the flags do catch
# it), and the old positional call shape does not compile at all.
# Variables: CC (the C compiler), INCLUDE (include/), SRC (opts_snippet.c).
cmake_minimum_required(VERSION 3.18)
set(strict -Wall -Wextra -Wpedantic -Wshadow -Werror -fsyntax-only -I${INCLUDE})

function(try_snippet cc expect_ok what)
  execute_process(COMMAND ${cc} ${ARGN} ${SRC} RESULT_VARIABLE rc ERROR_VARIABLE err)
  string(REPLACE ";" " " cmd "${cc} ${ARGN} ${SRC}")
  if(expect_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: failed: ${cmd}\n${err}")
  elseif(NOT expect_ok AND rc EQUAL 0)
    message(FATAL_ERROR "${what}: compiled, but must not: ${cmd}")
  endif()
  message(STATUS "${what}: ok: ${cmd}")
endfunction()

set(compilers ${CC})
find_program(CLANG clang)
if(CLANG)
  list(APPEND compilers ${CLANG})
endif()
foreach(cc IN LISTS compilers)
  foreach(std c99 c11 gnu17)
    try_snippet(${cc} TRUE "the macros are warning-free" -std=${std} ${strict})
  endforeach()
  try_snippet(${cc} FALSE "an overriding initialiser without the macro warns" -std=c11 ${strict}
              -DGV_SNIPPET_CONTROL)
  # no -Werror: a positional argument is an error, not a warning
  try_snippet(${cc} FALSE "a positional call does not compile" -std=c11 -fsyntax-only
              -I${INCLUDE} -DGV_SNIPPET_POSITIONAL)
endforeach()
