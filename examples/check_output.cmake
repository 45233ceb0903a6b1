# check_output.cmake — run PROGRAM and require its standard output to equal the file EXPECTED.
# Usage: cmake -DPROGRAM=<exe> -DEXPECTED=<file> -P check_output.cmake
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(READ ${EXPECTED} expected)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "${PROGRAM}: output differs from ${EXPECTED}\n"
    "--- got:\n${out}--- expected:\n${expected}--- stderr:\n${err}")
endif()
message(STATUS "${PROGRAM}: output matches ${EXPECTED}")
