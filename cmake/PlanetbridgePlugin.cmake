# planetbridge_add_plugin(<planet> <source>...)
#
# Builds libplanet_<planet>.so, a MODULE linking planetbridge::sdk, into
# PLANETBRIDGE_PLUGIN_OUTPUT_DIR (default <build>/lib/planetbridge/plugins), and, with
# BUILD_TESTING, registers the planet's own tests from its folder:
#   tests/test_*.cpp     Catch2 tests, one ctest each (in the project's own build, where the
#                        planetbridge::testing target with tests/support/test_util.h exists)
#   tests/streams/*.json every recorded stream through `planetbridge check`: decoded, run,
#                        compared with its native outputs, saved and reloaded; it must pass
#   capture/test_*.py    Python unittest, run with PLANETBRIDGE_PYTHON (default /usr/bin/python3)
#   capture/*.test.js    node --test
# The same function serves the project's planets and plugins built out of tree against an
# installed planetbridge (find_package(planetbridge)); docs/writing-a-plugin.md.
function(planetbridge_add_plugin planet)
  set(target planet_${planet})
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE planetbridge::sdk)
  # The plugin names its capture scripts from its own source folder.
  target_compile_definitions(${target} PRIVATE PB_PLUGIN_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT PLANETBRIDGE_PLUGIN_OUTPUT_DIR)
    set(PLANETBRIDGE_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/lib/planetbridge/plugins)
  endif()
  set_target_properties(${target} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${PLANETBRIDGE_PLUGIN_OUTPUT_DIR}
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(PB_WARNINGS)
    target_compile_options(${target} PRIVATE ${PB_WARNINGS})
  endif()
  if(NOT BUILD_TESTING)
    return()
  endif()

  set(dir ${CMAKE_CURRENT_SOURCE_DIR})
  file(GLOB cpp_tests CONFIGURE_DEPENDS ${dir}/tests/test_*.cpp)
  if(cpp_tests AND TARGET planetbridge::testing)
    add_executable(pb_tests_${planet} ${cpp_tests})
    target_link_libraries(pb_tests_${planet} PRIVATE planetbridge::testing)
    target_compile_definitions(pb_tests_${planet} PRIVATE
      PB_PLANET="${planet}"
      PB_PLANET_STREAMS_DIR="${dir}/tests/streams"
      PB_PLANET_PLUGIN="$<TARGET_FILE:${target}>")
    add_dependencies(pb_tests_${planet} ${target})
    catch_discover_tests(pb_tests_${planet} PROPERTIES TIMEOUT 600 SKIP_REGULAR_EXPRESSION "PB-SKIP: ")
  endif()

  if(TARGET planetbridge)
    set(cli $<TARGET_FILE:planetbridge>)
  elseif(TARGET planetbridge::planetbridge)
    set(cli $<TARGET_FILE:planetbridge::planetbridge>)
  endif()
  file(GLOB streams CONFIGURE_DEPENDS ${dir}/tests/streams/*.json)
  foreach(stream ${streams})
    get_filename_component(name ${stream} NAME_WE)
    add_test(NAME ${planet}_stream_${name}
             COMMAND ${cli} --plugin-dir $<TARGET_FILE_DIR:${target}> check ${stream} --data ${CMAKE_CURRENT_BINARY_DIR}/check-runs)
  endforeach()

  if(NOT PLANETBRIDGE_PYTHON)
    set(PLANETBRIDGE_PYTHON /usr/bin/python3)
  endif()
  file(GLOB py_tests ${dir}/capture/test_*.py)
  if(py_tests)
    add_test(NAME ${planet}_capture_py COMMAND ${PLANETBRIDGE_PYTHON} -m unittest discover -s ${dir}/capture -p "test_*.py")
    set_tests_properties(${planet}_capture_py PROPERTIES TIMEOUT 300)
  endif()
  file(GLOB js_tests ${dir}/capture/*.test.js)
  if(js_tests)
    add_test(NAME ${planet}_capture_js COMMAND node --test ${js_tests})
    set_tests_properties(${planet}_capture_js PROPERTIES TIMEOUT 300)
  endif()
endfunction()
