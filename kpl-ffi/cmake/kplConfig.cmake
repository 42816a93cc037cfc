# CMake package of the kpl C SDK (scripts/package.sh puts it in
# lib/cmake/kpl/ of the SDK tarball).
#
#   find_package(kpl 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE kpl::kpl)         # libkpl.so
#   target_link_libraries(app PRIVATE kpl::kpl_static)  # libkpl.a
#
# Relocatable: every path is relative to this file, so the SDK works
# wherever it is unpacked (point CMAKE_PREFIX_PATH or kpl_DIR at it).
get_filename_component(_kpl_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET kpl::kpl)
  add_library(kpl::kpl SHARED IMPORTED)
  set_target_properties(kpl::kpl PROPERTIES
    IMPORTED_LOCATION "${_kpl_prefix}/lib/libkpl.so"
    IMPORTED_SONAME "libkpl.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_kpl_prefix}/include")
endif()

if(NOT TARGET kpl::kpl_static)
  add_library(kpl::kpl_static STATIC IMPORTED)
  # What Rust's standard library needs from the system when linked statically.
  set_target_properties(kpl::kpl_static PROPERTIES
    IMPORTED_LOCATION "${_kpl_prefix}/lib/libkpl.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES C
    INTERFACE_INCLUDE_DIRECTORIES "${_kpl_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt")
endif()

set(kpl_LIBRARIES kpl::kpl)
unset(_kpl_prefix)
