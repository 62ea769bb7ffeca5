# libFuzzer targets, configured only with -DTIDE_FUZZ=ON and clang (the
# Makefile's `fuzz` target does both, in build-fuzz/).  Every driver script
# tests/fuzz/drivers/<name>.lua becomes an executable fuzz_<name>: the one
# harness fuzz_lua.c with that driver's path compiled in.  The library is
# instrumented for coverage and built with ASan+UBSan; Lua and libuv come
# from Debian and are not instrumented, so coverage guides the search
# through tide's own code, which is what the harnesses are for.
option(TIDE_FUZZ "Build the libFuzzer harnesses in tests/fuzz (clang)" OFF)
if(TIDE_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TIDE_FUZZ needs clang: configure with CC=clang")
  endif()
  set(TIDE_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer)
  target_compile_options(tide_objs PRIVATE -fsanitize=fuzzer-no-link
                         ${TIDE_FUZZ_SAN})
  # Whatever links the instrumented library needs the sanitizer runtimes.
  target_link_options(tide_static PUBLIC -fsanitize=address,undefined)
  target_link_options(tide_shared PUBLIC -fsanitize=address,undefined)
  file(GLOB TIDE_FUZZ_DRIVERS CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/tests/fuzz/drivers/*.lua)
  set(TIDE_FUZZ_TARGETS "")
  foreach(drv ${TIDE_FUZZ_DRIVERS})
    get_filename_component(name ${drv} NAME_WE)
    # A driver whose stdlib module is not in this tree is skipped: it could
    # only fail on every input.
    file(STRINGS ${drv} reqs REGEX "require \"tide\\.[a-z_]+\"")
    set(missing "")
    foreach(line ${reqs})
      string(REGEX MATCH "tide\\.([a-z_]+)" m "${line}")
      set(mod ${CMAKE_MATCH_1})
      if(NOT EXISTS ${CMAKE_SOURCE_DIR}/stdlib/${mod}.lua AND
         NOT EXISTS ${CMAKE_SOURCE_DIR}/stdlib/${mod}.c)
        set(missing "${missing} tide.${mod}")
      endif()
    endforeach()
    if(missing)
      message(STATUS "fuzz_${name} skipped: no${missing} in stdlib/")
      continue()
    endif()
    add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_lua.c)
    target_compile_definitions(fuzz_${name} PRIVATE
      TIDE_FUZZ_DRIVER="${drv}"
      TIDE_FUZZ_CHUNK="@tests/fuzz/drivers/${name}.lua")
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer
                           ${TIDE_FUZZ_SAN})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${name} PRIVATE tide_static)
    set_target_properties(fuzz_${name} PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    list(APPEND TIDE_FUZZ_TARGETS fuzz_${name})
  endforeach()
  add_custom_target(fuzz_all DEPENDS ${TIDE_FUZZ_TARGETS})
endif()
