# `cmake --install build [--prefix P]` (GNUInstallDirs):
#   bin/shoal-node
#   include/shoal/*.h, include/shoal/ext/*.h     the public headers
#   lib/libshoal.a, lib/libshoal.so*             (LIBDIR)
#   lib/pkgconfig/shoal.pc
#   lib/cmake/shoal/shoal-config.cmake, -config-version.cmake, -targets*.cmake,
#                  ShoalMigrations.cmake, embed_migrations.cmake
#   share/doc/shoal/LICENSE, CHANGELOG.md
# Nothing installed names the configured prefix or the build tree: shoal.pc
# finds the prefix from ${pcfiledir}, the CMake package from its own folder,
# so a prefix may be installed with --prefix elsewhere, or moved.
include(CMakePackageConfigHelpers)

set(shoal_targets shoal_static)
if(SHOAL_SHARED)
  list(APPEND shoal_targets shoal_shared)
endif()
install(TARGETS ${shoal_targets} EXPORT shoal-targets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" NAMELINK_COMPONENT Development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(TARGETS shoal-node RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
# The three include/shoal folders merge into one; version.h.in stays
# behind, its product comes from the build tree.
foreach(dir IN LISTS SHOAL_PUBLIC_INCLUDE_DIRS)
  install(DIRECTORY "${dir}/shoal" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES "${SHOAL_GENERATED_INCLUDE_DIR}/shoal/version.h" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/shoal")
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" "${PROJECT_SOURCE_DIR}/CHANGELOG.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# shoal.pc: every path relative to the folder the file is installed in.
set(pc_dir "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig")
file(RELATIVE_PATH SHOAL_PC_TO_PREFIX "${pc_dir}" "${CMAKE_INSTALL_PREFIX}")
file(RELATIVE_PATH SHOAL_PC_LIBDIR "${CMAKE_INSTALL_PREFIX}" "${CMAKE_INSTALL_FULL_LIBDIR}")
file(RELATIVE_PATH SHOAL_PC_INCLUDEDIR "${CMAKE_INSTALL_PREFIX}" "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
foreach(var SHOAL_PC_TO_PREFIX SHOAL_PC_LIBDIR SHOAL_PC_INCLUDEDIR)
  string(REGEX REPLACE "/$" "" ${var} "${${var}}")
  if(${var} STREQUAL "")
    set(${var} ".")
  endif()
endforeach()
configure_file(cmake/shoal.pc.in "${CMAKE_CURRENT_BINARY_DIR}/shoal.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/shoal.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

# The CMake package: find_package(shoal 0.2) gives shoal::shoal.
set(package_dir "${CMAKE_INSTALL_LIBDIR}/cmake/shoal")
install(EXPORT shoal-targets NAMESPACE shoal:: DESTINATION "${package_dir}")
configure_package_config_file(cmake/shoal-config.cmake.in "${CMAKE_CURRENT_BINARY_DIR}/shoal-config.cmake"
  INSTALL_DESTINATION "${package_dir}")
# Before 1.0 a minor release may break users (see the SONAME above), so
# find_package(shoal 0.2) accepts 0.2.x only.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(compatibility SameMinorVersion)
else()
  set(compatibility SameMajorVersion)
endif()
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/shoal-config-version.cmake"
  COMPATIBILITY ${compatibility})
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/shoal-config.cmake" "${CMAKE_CURRENT_BINARY_DIR}/shoal-config-version.cmake"
        cmake/ShoalMigrations.cmake cmake/embed_migrations.cmake
        DESTINATION "${package_dir}")
