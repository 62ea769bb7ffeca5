# Test registration: one CTest entry per busted spec (run under the tide
# binary itself) and one per C test in tests/c/.
find_program(BUSTED busted REQUIRED)
# A stock lua5.4 that loads the sanitized tide.so needs the sanitizer
# runtimes preloaded.
set(TIDE_TEST_PRELOAD "")
if(TIDE_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE asan_lib OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libubsan.so
                  OUTPUT_VARIABLE ubsan_lib OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(TIDE_TEST_PRELOAD "${asan_lib}:${ubsan_lib}")
endif()
file(GLOB LUA_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/*_spec.lua)
foreach(spec ${LUA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  string(REGEX REPLACE "_spec$" "" name ${name})
  add_test(NAME lua_${name}
    COMMAND ${BUSTED} --lua=$<TARGET_FILE:tide> -o utfTerminal
            --helper=${CMAKE_SOURCE_DIR}/tests/lua/helper.lua ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lua_${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "TIDE_BIN=$<TARGET_FILE:tide>;TIDE_BUILD=${CMAKE_BINARY_DIR};TIDE_ROOT=${CMAKE_SOURCE_DIR};TIDE_PRELOAD=${TIDE_TEST_PRELOAD}")
endforeach()

find_program(VALGRIND valgrind)
file(GLOB C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
foreach(src ${C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE tide_shared)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/c)
  add_test(NAME c_${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(c_${name} PROPERTIES TIMEOUT 120 LABELS c)
  # The same test under valgrind's memcheck, labelled "valgrind": `make
  # test` leaves these out and `make valgrind` runs only them.  Not in
  # sanitizer builds, where ASan and valgrind would fight over memory.
  if(VALGRIND AND NOT TIDE_SANITIZE)
    add_test(NAME valgrind_${name}
      COMMAND ${VALGRIND} -q --leak-check=full --error-exitcode=1
              --track-fds=no $<TARGET_FILE:${name}>
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(valgrind_${name} PROPERTIES TIMEOUT 300
      LABELS valgrind)
  endif()
endforeach()
