# `cmake --install` exports the package: find_package(psnmf) -> psnmf::psnmf.
# In a wheel the prefix is the psnmf package directory (see psnmf.get_cmake_dir()).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PSNMF_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/psnmf")

install(TARGETS psnmf EXPORT psnmfTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY cpp/include/psnmf DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT psnmfTargets NAMESPACE psnmf:: DESTINATION ${PSNMF_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/psnmfConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/psnmfConfig.cmake"
  INSTALL_DESTINATION ${PSNMF_INSTALL_CMAKEDIR})
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/psnmfConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/psnmfConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/psnmfConfigVersion.cmake"
        DESTINATION ${PSNMF_INSTALL_CMAKEDIR})
