# attnlens_library(<target> <layer> EXPORT <export set> SOURCES <src>... [HEADERS <public header>...]
#                  [UMBRELLA <header>])
#
# One library per layer of attnlens, the same way for every layer:
#  * target <target> (static, or shared with BUILD_SHARED_LIBS), aliased and exported as attnlens::<layer>;
#  * our own sources include "core/array.hpp" from the source root; the public headers include each other by
#    relative path, so they work unchanged from the source tree, the build tree and the installed tree, where a
#    consumer writes #include <attnlens/core/rollout.hpp> (or the layer's umbrella, <attnlens/core.hpp>);
#  * the public headers are installed under include/attnlens/<folder>/ and recorded in the global property
#    ATTNLENS_PUBLIC_HEADERS (the "each header compiles alone" test reads it); other headers stay internal.
set(ATTNLENS_BUILD_INCLUDE_DIR ${CMAKE_BINARY_DIR}/include)
file(MAKE_DIRECTORY ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens)

function(attnlens_library target layer)
  cmake_parse_arguments(ARG "" "EXPORT;UMBRELLA" "SOURCES;HEADERS" ${ARGN})
  add_library(${target} ${ARG_SOURCES})
  add_library(attnlens::${layer} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${layer} VERSION ${PROJECT_VERSION}
                                             SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                                              $<BUILD_INTERFACE:${ATTNLENS_BUILD_INCLUDE_DIR}>
                                              $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_17)
  install(TARGETS ${target} EXPORT ${ARG_EXPORT}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  foreach(header IN LISTS ARG_HEADERS)
    get_filename_component(folder ${header} DIRECTORY)
    install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnlens/${folder})
    attnlens_link_build_include(${folder})
  endforeach()
  set_property(GLOBAL APPEND PROPERTY ATTNLENS_PUBLIC_HEADERS ${ARG_HEADERS})
  if(ARG_UMBRELLA)
    # core/core.hpp is installed as attnlens/core.hpp: it includes "core/rollout.hpp" etc. relative to attnlens/.
    install(FILES ${ARG_UMBRELLA} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attnlens RENAME ${layer}.hpp)
    set_property(GLOBAL APPEND PROPERTY ATTNLENS_UMBRELLA_HEADERS "${ARG_UMBRELLA}=${layer}.hpp")
    if(NOT EXISTS ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens/${layer}.hpp)
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${ARG_UMBRELLA} ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens/${layer}.hpp
           SYMBOLIC)
    endif()
  endif()
endfunction()

# build/include/attnlens/<folder> -> the source folder, so that build-tree consumers include <attnlens/...> too.
function(attnlens_link_build_include folder)
  set(link ${ATTNLENS_BUILD_INCLUDE_DIR}/attnlens/${folder})
  if(NOT EXISTS ${link})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${link} SYMBOLIC)
  endif()
endfunction()
