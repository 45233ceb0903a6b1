# check_consumer.cmake — build a consumer project of stackless and check what it prints.
# Run by ctest (see CMakeLists.txt beside this file) as
#   cmake -DMODE=find_package|add_subdirectory -DSTACKLESS_SOURCE_DIR=... -DSTACKLESS_BINARY_DIR=...
#         -DWORK_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -DBUILD_TYPE=... -DCXX_FLAGS=...
#         -DLINKER_FLAGS=... -P check_consumer.cmake
cmake_minimum_required(VERSION 3.25)

# run(<what> COMMAND ...): execute, fail the test with the whole output if it fails.
function(run what)
  execute_process(${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package test (${MODE}): ${what} failed (${rc})\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
set(common_args -G ${GENERATOR} -S @SOURCE@ -B ${build}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")

if(MODE STREQUAL "find_package")
  run("cmake --install" COMMAND ${CMAKE_COMMAND} --install ${STACKLESS_BINARY_DIR} --prefix ${prefix})
  foreach(f include/stackless/stackless.hpp include/stackless/tasklet.hpp)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "package test: ${f} was not installed")
    endif()
  endforeach()
  file(GLOB_RECURSE config_files ${prefix}/*/stacklessConfig.cmake ${prefix}/*/stacklessConfigVersion.cmake)
  list(LENGTH config_files n)
  if(NOT n EQUAL 2)
    message(FATAL_ERROR "package test: expected stacklessConfig.cmake and stacklessConfigVersion.cmake under ${prefix}, found: ${config_files}")
  endif()
  list(TRANSFORM common_args REPLACE "@SOURCE@" "${CMAKE_CURRENT_LIST_DIR}/consumer")
  # Only the scratch prefix: no user or system package registry may satisfy find_package.
  run("configuring the consumer" COMMAND ${CMAKE_COMMAND} ${common_args}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
  file(STRINGS ${build}/CMakeCache.txt found_dir REGEX "^stackless_DIR:")
  if(NOT found_dir MATCHES "^stackless_DIR:PATH=${prefix}/")
    message(FATAL_ERROR "package test: find_package found stackless outside ${prefix}: ${found_dir}")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  list(TRANSFORM common_args REPLACE "@SOURCE@" "${CMAKE_CURRENT_LIST_DIR}/consumer_subdir")
  run("configuring the consumer" COMMAND ${CMAKE_COMMAND} ${common_args}
    -DSTACKLESS_SOURCE_DIR=${STACKLESS_SOURCE_DIR})
  # Not the top-level project: the test suite, benchmarks and examples must default to OFF.
  foreach(opt STACKLESS_BUILD_TESTS STACKLESS_BUILD_BENCHMARKS STACKLESS_BUILD_EXAMPLES)
    file(STRINGS ${build}/CMakeCache.txt value REGEX "^${opt}:")
    if(NOT value STREQUAL "${opt}:BOOL=OFF")
      message(FATAL_ERROR "package test: as a subproject ${opt} should default to OFF, got '${value}'")
    endif()
  endforeach()
else()
  message(FATAL_ERROR "package test: unknown MODE '${MODE}'")
endif()

run("building the consumer" COMMAND ${CMAKE_COMMAND} --build ${build})
run("running the consumer" COMMAND ${build}/consumer)
set(expected "consumer: 2 steps, alive before run: yes, after: no\n")
if(NOT run_output STREQUAL expected)
  message(FATAL_ERROR "package test (${MODE}): the consumer printed\n${run_output}\nexpected\n${expected}")
endif()
message(STATUS "package test (${MODE}): ${run_output}")
