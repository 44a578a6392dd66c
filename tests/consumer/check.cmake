# Install carrel from a build tree into a fresh prefix, then configure, build
# and run tests/consumer against that prefix only.
#
#   cmake -DBUILD_DIR=<carrel build> -DSRC=<tests/consumer> -DWORK=<scratch dir>
#         [-DCONFIG=<cfg>] [-DCXX=<compiler>] [-DCXX_FLAGS=...] [-DLINK_FLAGS=...]
#         [-DGENERATOR=...] -P check.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var BUILD_DIR SRC WORK)
  if(NOT ${var})
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK}/prefix")
set(bin "${WORK}/build")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc})")
  endif()
endfunction()

set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}" ${config_args})

set(configure_args
  -S "${SRC}" -B "${bin}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  # Only the fresh prefix may satisfy find_package(carrel).
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(GENERATOR)
  list(APPEND configure_args -G "${GENERATOR}")
endif()
if(CONFIG)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
if(CXX)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
if(CXX_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(LINK_FLAGS)
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}")
endif()
run("configure consumer" "${CMAKE_COMMAND}" ${configure_args})
run("build consumer" "${CMAKE_COMMAND}" --build "${bin}" ${config_args})

# Single-config generators put the binary at the top; multi-config ones in <cfg>/.
set(exe "${bin}/carrel_consumer")
if(NOT EXISTS "${exe}" AND CONFIG)
  set(exe "${bin}/${CONFIG}/carrel_consumer")
endif()
run("run consumer" "${exe}")
message(STATUS "install_consumer: ok")
