# Installs and exports the attnlens CMake package, usable from an installed prefix and from the build tree:
#   find_package(attnlens CONFIG REQUIRED COMPONENTS core)        # no LibTorch, no OpenCV needed
#   find_package(attnlens CONFIG REQUIRED)                        # every component this build has
#   target_link_libraries(app PRIVATE attnlens::core attnlens::models)
# Components and the export sets behind them: core, io (attnlensCoreTargets); image, viz (attnlensImageTargets,
# OpenCV); models, eval (attnlensModelsTargets, LibTorch).
include(CMakePackageConfigHelpers)

set(ATTNLENS_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attnlens)
set(ATTNLENS_AVAILABLE_COMPONENTS core io)
set(ATTNLENS_EXPORT_SETS attnlensCoreTargets)
if(ATTNLENS_MODELS)
  list(APPEND ATTNLENS_AVAILABLE_COMPONENTS image viz models eval)
  list(APPEND ATTNLENS_EXPORT_SETS attnlensImageTargets attnlensModelsTargets)
endif()

# attnlens/version.hpp: the version a consumer compiled against.
configure_file(${PROJECT_SOURCE_DIR}/cmake/version.hpp.in ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens/version.hpp @ONLY)
install(FILES ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnlens)

foreach(set IN LISTS ATTNLENS_EXPORT_SETS)
  install(EXPORT ${set} NAMESPACE attnlens:: DESTINATION ${ATTNLENS_CMAKE_INSTALL_DIR})
  export(EXPORT ${set} NAMESPACE attnlens:: FILE ${CMAKE_BINARY_DIR}/${set}.cmake)
endforeach()

configure_file(${PROJECT_SOURCE_DIR}/cmake/attnlensConfig.cmake.in ${CMAKE_BINARY_DIR}/attnlensConfig.cmake @ONLY)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/attnlensConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
configure_file(${PROJECT_SOURCE_DIR}/cmake/Findutf8proc.cmake ${CMAKE_BINARY_DIR}/Findutf8proc.cmake COPYONLY)
install(FILES ${CMAKE_BINARY_DIR}/attnlensConfig.cmake ${CMAKE_BINARY_DIR}/attnlensConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/Findutf8proc.cmake
        DESTINATION ${ATTNLENS_CMAKE_INSTALL_DIR})
