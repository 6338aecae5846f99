# Runs `kpt bench` and checks that its JSON holds the keys issue 5 asks for.
# cmake -DKPT=... -DMODEL=... -DINPUT=NAME=DIMS -DJSON=OUT.json -P bench_json.cmake
execute_process(COMMAND ${KPT} bench ${MODEL} --input ${INPUT} --iterations 3 --warmup 1
                        --threads 1 --precision fp32 --json ${JSON}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kpt bench exited with ${rc}")
endif()
file(READ ${JSON} json)
foreach(path "latency_ms;p50" "latency_ms;p90" "latency_ms;p99" "throughput_per_s"
             "peak_memory_bytes" "threads" "precision" "inputs" "machine;cpu" "kernels;histogram")
  string(JSON value ERROR_VARIABLE err GET "${json}" ${path})
  if(err)
    message(FATAL_ERROR "${JSON}: no '${path}': ${err}")
  endif()
endforeach()
string(JSON threads GET "${json}" threads)
string(JSON precision GET "${json}" precision)
string(JSON p50 GET "${json}" latency_ms p50)
if(NOT threads EQUAL 1 OR NOT precision STREQUAL "fp32" OR NOT p50 GREATER 0)
  message(FATAL_ERROR "${JSON}: expected threads 1, precision fp32 and p50 > 0; got ${threads}, "
                      "${precision}, ${p50}")
endif()
