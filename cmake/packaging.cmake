# Packaging beside the CMake package: carrel.pc for pkg-config, man pages for
# the installed tools, bash completion, and the license. Included at the end
# of the top-level CMakeLists.txt, once the tool targets exist.

# The programs carry the bin/../lib RUNPATH (CMAKE_INSTALL_RPATH); the library
# needs none: what it links (LMDB, SQLite, xxHash) comes from the system.
set_target_properties(carrel PROPERTIES INSTALL_RPATH "")

# carrel.pc, relocatable: its prefix is found from the file's own place
# (${pcfiledir}), so a moved prefix still answers `pkg-config carrel`.
file(RELATIVE_PATH CARREL_PC_TO_PREFIX
  ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" CARREL_PC_TO_PREFIX "${CARREL_PC_TO_PREFIX}")
file(RELATIVE_PATH CARREL_PC_LIBDIR ${CMAKE_INSTALL_PREFIX} ${CMAKE_INSTALL_FULL_LIBDIR})
file(RELATIVE_PATH CARREL_PC_INCLUDEDIR ${CMAKE_INSTALL_PREFIX} ${CMAKE_INSTALL_FULL_INCLUDEDIR})
configure_file(${PROJECT_SOURCE_DIR}/cmake/carrel.pc.in ${PROJECT_BINARY_DIR}/carrel.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/carrel.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Man pages, generated at build time by help2man from each tool's --help and
# --version (plus the sections in tools/man/*.h2m), so they never drift from
# the tools. Off by default in sanitizer and fuzz trees: their binaries may
# need a special environment to run (scripts/test runs TSan under setarch -R).
if(CARREL_SANITIZE OR CARREL_TSAN OR CARREL_FUZZ)
  set(CARREL_MAN_DEFAULT OFF)
else()
  set(CARREL_MAN_DEFAULT ON)
endif()
option(CARREL_MAN "Generate and install man pages (needs help2man)" ${CARREL_MAN_DEFAULT})
if(CARREL_MAN)
  find_program(CARREL_HELP2MAN help2man)
  if(NOT CARREL_HELP2MAN)
    message(FATAL_ERROR
      "help2man not found: it writes the man pages of carrel and carrel-bench from their --help. "
      "Install the Debian package help2man (scripts/bootstrap does), or configure with -DCARREL_MAN=OFF.")
  endif()
  set(CARREL_MAN_PAGES)
  # carrel_man_page(TARGET PROGRAM "one-line summary"): PROGRAM.1 from TARGET's output.
  function(carrel_man_page target program summary)
    set(page ${PROJECT_BINARY_DIR}/man/${program}.1)
    set(sections ${PROJECT_SOURCE_DIR}/tools/man/${program}.h2m)
    # help2man runs `PROGRAM --help` through PATH, so the page says PROGRAM,
    # not the build tree's path to it.
    add_custom_command(OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -E env "PATH=$<TARGET_FILE_DIR:${target}>:$ENV{PATH}"
        ${CARREL_HELP2MAN} --no-info --section=1 --name=${summary}
        --include=${sections} --output=${page} ${program}
      DEPENDS ${target} ${sections}
      COMMENT "Generating man page ${program}.1"
      VERBATIM)
    set(CARREL_MAN_PAGES ${CARREL_MAN_PAGES} ${page} PARENT_SCOPE)
  endfunction()
  if(TARGET carrel_cli)
    carrel_man_page(carrel_cli carrel "inspect and repair a carrel engine directory")
  endif()
  if(TARGET carrel_bench)
    carrel_man_page(carrel_bench carrel-bench
      "storage workloads on carrel, one SQLite file per object, and raw LMDB")
  endif()
  add_custom_target(carrel_man ALL DEPENDS ${CARREL_MAN_PAGES})
  install(FILES ${CARREL_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# bash completion: one script for both tools, installed under each command's
# name, which is where bash-completion looks on the first Tab.
foreach(target_program carrel_cli:carrel carrel_bench:carrel-bench)
  string(REPLACE ":" ";" target_program ${target_program})
  list(GET target_program 0 target)
  list(GET target_program 1 program)
  if(TARGET ${target})
    install(FILES ${PROJECT_SOURCE_DIR}/tools/completion/carrel.bash
      DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ${program})
  endif()
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
