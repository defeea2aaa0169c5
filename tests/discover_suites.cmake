# Registers one CTest test per GoogleTest suite of a test binary (run at build time, after the
# binary links; see lth_add_test in tests/CMakeLists.txt). Each test runs
# `BINARY --gtest_filter=Suite.*` and is named BINARY_NAME.Suite (`ctest -R Suite` finds it).
# One process per suite rather than per test: each process start loads LibTorch (about
# 0.65 s here), which for 390 tests was a third of the suite's time.
# Inputs: EXE (the binary), NAME (its target name), OUT (the file CTest includes), WORKDIR,
# TIMEOUT, LOCK (a RESOURCE_LOCK name or empty).
cmake_minimum_required(VERSION 3.22)  # IN_LIST below
execute_process(COMMAND "${EXE}" --gtest_list_tests OUTPUT_VARIABLE listing
                RESULT_VARIABLE rc TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} --gtest_list_tests failed (${rc})")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(content "")
set(seen "")
foreach(line IN LISTS lines)
  # A suite line starts in column 0 and ends its name with a dot ("Suite." or, for typed and
  # parameterised suites, "Prefix/Suite." followed by a comment); test lines are indented.
  if(line MATCHES "^([A-Za-z0-9_/]+)\\.")
    set(suite "${CMAKE_MATCH_1}")
    if(suite IN_LIST seen)
      continue()
    endif()
    list(APPEND seen "${suite}")
    set(test "${NAME}.${suite}")
    string(APPEND content "add_test([=[${test}]=] [=[${EXE}]=] [=[--gtest_filter=${suite}.*]=])\n")
    set(props "WORKING_DIRECTORY [=[${WORKDIR}]=] TIMEOUT ${TIMEOUT}")
    if(LOCK)
      string(APPEND props " RESOURCE_LOCK ${LOCK}")
    endif()
    string(APPEND content "set_tests_properties([=[${test}]=] PROPERTIES ${props})\n")
  endif()
endforeach()
file(WRITE "${OUT}" "${content}")
