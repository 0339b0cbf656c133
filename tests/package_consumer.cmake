# Installs the build tree into a scratch prefix, then configures, builds and runs the example
# project examples/cmake_project against it. Called by CTest with BUILD_DIR, SOURCE_DIR,
# WORK_DIR, GENERATOR.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(step)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(MAKE_DIRECTORY "${WORK_DIR}")
step(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
step(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
     "-DCMAKE_PREFIX_PATH=${prefix}")
step(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
step("${WORK_DIR}/build/consumer")
foreach(program consumer_c consumer_io consumer_itk)
  if(EXISTS "${WORK_DIR}/build/${program}")
    step("${WORK_DIR}/build/${program}")
  endif()
endforeach()
