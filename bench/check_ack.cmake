# Harness correctness for one carrel-bench workload (not timed): run it in a
# fresh directory with an ack log, then reopen the directory with
# `carrel-bench --verify-ack-log` and check every acknowledged write is there.
#   -DBENCH=<carrel-bench> -DWORK=<scratch dir> -DARGS=<workload and flags, ;-list>
#   -DVERIFY=ON|OFF
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${BENCH} ${ARGS} --dir ${WORK}/db --ack-log ${WORK}/ack.log
                        --json ${WORK}/result.json
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "carrel-bench ${ARGS} failed: ${rc}")
endif()
file(READ ${WORK}/result.json json)
string(JSON workload GET "${json}" workload)
string(JSON engine GET "${json}" results 0 engine)
if(NOT engine STREQUAL "carrel")
  message(FATAL_ERROR "result.json: first result is ${engine}, not carrel")
endif()
if(VERIFY)
  execute_process(COMMAND ${BENCH} --verify-ack-log ${WORK}/ack.log --dir ${WORK}/db
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "acknowledged writes missing after ${workload}: ${rc}")
  endif()
endif()
file(REMOVE_RECURSE ${WORK})
