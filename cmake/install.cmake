# Install rules, included by CMakeLists.txt: the tide executable,
# libtide.so and libtide.a, tide.h, a pkg-config file (tide.pc) and a CMake
# package, so a host finds tide with `pkg-config --cflags --libs tide` or
# with find_package(tide) and links tide::tide (shared) or tide::tide_static.
include(CMakePackageConfigHelpers)

set(TIDE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tide)

set_target_properties(tide_shared PROPERTIES EXPORT_NAME tide)
set_target_properties(tide_static PROPERTIES EXPORT_NAME tide_static)

install(TARGETS tide RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS tide_shared tide_static EXPORT tideTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/tide.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# `require "tide"` from a stock lua5.4: Lua's C module directory gets a
# tide.so link to the shared library, as the build tree has.
set(TIDE_LUA_CMOD_DIR ${CMAKE_INSTALL_LIBDIR}/lua/5.4 CACHE STRING
  "Where the tide.so Lua module link is installed (relative to the prefix)")
install(CODE "
  set(dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${TIDE_LUA_CMOD_DIR}\")
  file(MAKE_DIRECTORY \"\${dir}\")
  file(RELATIVE_PATH rel \"\${dir}\"
       \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libtide.so.${PROJECT_VERSION_MAJOR}\")
  execute_process(COMMAND \${CMAKE_COMMAND} -E create_symlink \"\${rel}\"
                  \"\${dir}/tide.so\")
")

# The imported targets reference PkgConfig::LUA and PkgConfig::UV (and
# PkgConfig::CURL when built with it); the package config recreates them
# before loading the targets.
install(EXPORT tideTargets NAMESPACE tide:: DESTINATION ${TIDE_CMAKE_DIR})
# Whether the library links libcurl (the HTTP client may load it at run
# time instead): the package then needs PkgConfig::CURL too.
if("PkgConfig::CURL" IN_LIST TIDE_DEPS)
  set(TIDE_WITH_CURL ON)
else()
  set(TIDE_WITH_CURL OFF)
endif()
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/tideConfig.cmake.in
  ${CMAKE_BINARY_DIR}/tideConfig.cmake INSTALL_DESTINATION ${TIDE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/tideConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/tideConfig.cmake
  ${CMAKE_BINARY_DIR}/tideConfigVersion.cmake DESTINATION ${TIDE_CMAKE_DIR})

# pkg-config: hosts include tide.h, which includes lua.h and uv.h, and call
# Lua and libuv directly, so both are public requirements.  What only the
# static library needs goes in the .private fields.
set(TIDE_PC_REQUIRES_PRIVATE "zlib")
if(TIDE_WITH_CURL)
  set(TIDE_PC_REQUIRES_PRIVATE "zlib libcurl")
endif()
set(TIDE_PC_LIBS_PRIVATE "-lm")
foreach(lib ${CMAKE_DL_LIBS})
  if(lib IN_LIST TIDE_DEPS)
    string(APPEND TIDE_PC_LIBS_PRIVATE " -l${lib}")
  endif()
endforeach()
if(HTTP_PARSER_LIB)
  string(APPEND TIDE_PC_LIBS_PRIVATE " -lhttp_parser")
endif()
if(READLINE_LIB)
  string(APPEND TIDE_PC_LIBS_PRIVATE " -lreadline")
endif()
# The prefix is computed from where the .pc file sits, so the install stays
# correct with `cmake --install --prefix` and when the tree is moved.
file(RELATIVE_PATH TIDE_PC_UP /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" TIDE_PC_UP "${TIDE_PC_UP}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/tide.pc.in ${CMAKE_BINARY_DIR}/tide.pc
  @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/tide.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
