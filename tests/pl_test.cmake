# pl_add_test(NAME name SOURCES a.c ... LABELS unit;golden [FIXTURES f ...] [ARGS ...])
# One executable per module. Every test gets PL_SHARED_DIR, PL_FIXTURE_DIR and
# PL_BIN (the parley CLI) in its environment, and exit 77 means "skipped".
function(pl_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS;FIXTURES;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${T_NAME} PRIVATE parley_lib PkgConfig::CMOCKA)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES
    LABELS "${T_LABELS}"
    SKIP_RETURN_CODE 77
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "PL_SHARED_DIR=${PL_SHARED_DIR};PL_FIXTURE_DIR=${PL_FIXTURE_DIR};PL_BIN=$<TARGET_FILE:parley>;PL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  if(T_FIXTURES)
    set_tests_properties(${T_NAME} PROPERTIES FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
endfunction()
