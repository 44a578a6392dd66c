# The progress line: on stderr with --progress (ctest's stderr is not a
# terminal), never on stdout, and nothing on stderr without --progress.
#   -DBENCH=<carrel-bench>
set(args ycsb-c --seconds 1.3 --objects 10 --records 200 --clients 2 --durability nosync
         --engines lmdb-raw)
execute_process(COMMAND ${BENCH} ${args} --progress
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err MATCHES "ycsb-c \\[1/1 lmdb-raw\\] [0-9.]+/1.3 s, [0-9]+ ops +[0-9]+%  ETA")
  message(FATAL_ERROR "--progress: no progress line with total and ETA on stderr (${rc}):\n${err}")
endif()
if(out MATCHES "ETA")
  message(FATAL_ERROR "--progress wrote progress to stdout:\n${out}")
endif()
execute_process(COMMAND ${BENCH} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "without --progress and a terminal, stderr must stay empty (${rc}):\n${err}")
endif()
if(NOT out MATCHES "engines: lmdb-raw\n" OR NOT out MATCHES "Columns:\n  ops/s")
  message(FATAL_ERROR "the run header names the engines and the table has its legend:\n${out}")
endif()
