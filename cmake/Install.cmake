# `cmake --install build --prefix P` gives P/bin/planetbridge, P/lib/libplanetbridge_core.so,
# P/lib/planetbridge/plugins/libplanet_*.so, the core and SDK headers in P/include and a CMake
# package: find_package(planetbridge) + planetbridge_add_plugin(...) builds a plugin out of
# tree (plugins/template/ is one to copy; docs/writing-a-plugin.md).
include(CMakePackageConfigHelpers)
set(PB_CMAKE_INSTALL_DIR lib/cmake/planetbridge)

# Installed binaries find the core beside them (lib/) and plugins find it two levels up.
set_target_properties(planetbridge PROPERTIES INSTALL_RPATH "$ORIGIN/../lib")
install(TARGETS planetbridge EXPORT planetbridgeTargets RUNTIME DESTINATION bin)
install(TARGETS pb_core pb_sdk EXPORT planetbridgeTargets LIBRARY DESTINATION lib ARCHIVE DESTINATION lib)
install(DIRECTORY core/include/ plugins/sdk/include/ DESTINATION include FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/planetbridge/version.h DESTINATION include/planetbridge)
# Every planet built, but not the template: it is source to copy (plugins/template/), built
# here only to be tested, and an installed "template" planet would serve nothing.
foreach(dir ${PB_PLANET_DIRS})
  get_filename_component(planet ${dir} NAME)
  if(TARGET planet_${planet} AND NOT planet STREQUAL "template")
    set_target_properties(planet_${planet} PROPERTIES INSTALL_RPATH "$ORIGIN/../..")
    install(TARGETS planet_${planet} LIBRARY DESTINATION lib/planetbridge/plugins)
  endif()
endforeach()

install(EXPORT planetbridgeTargets NAMESPACE planetbridge:: DESTINATION ${PB_CMAKE_INSTALL_DIR})
configure_package_config_file(cmake/planetbridgeConfig.cmake.in ${PROJECT_BINARY_DIR}/planetbridgeConfig.cmake
                              INSTALL_DESTINATION ${PB_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/planetbridgeConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/planetbridgeConfig.cmake ${PROJECT_BINARY_DIR}/planetbridgeConfigVersion.cmake
              cmake/PlanetbridgePlugin.cmake
        DESTINATION ${PB_CMAKE_INSTALL_DIR})
