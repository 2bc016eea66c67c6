# shoal_add_migrations(<target> DIR <folder> [COMPONENT <name>] [SYMBOL <c-name>]
#                      [ADOPT <legacy_version:legacy_name:version>...])
#
# Embeds every <folder>/NNNN_name.sql into <target> as one
#   const shoal_migrations <SYMBOL>;   (<shoal/service.h>)
# which the service declares `extern` and lists in its .migrations:
#
#   shoal_add_migrations(hello DIR migrations)        # hello_migrations, component "hello"
#
# COMPONENT defaults to the target's name, SYMBOL to <COMPONENT>_migrations
# (dashes become underscores). The C file is generated again whenever a
# migration changes or one is added (the folder is globbed at configure
# time, CONFIGURE_DEPENDS). ADOPT: embed_migrations.cmake.
function(shoal_add_migrations target)
  # The script beside this file, wherever the function is called from.
  set(embed "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_migrations.cmake")
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "DIR;COMPONENT;SYMBOL" "ADOPT")
  if(NOT arg_DIR)
    message(FATAL_ERROR "shoal_add_migrations(${target}): DIR is required")
  endif()
  if(NOT arg_COMPONENT)
    set(arg_COMPONENT "${target}")
  endif()
  if(NOT arg_SYMBOL)
    string(REPLACE "-" "_" arg_SYMBOL "${arg_COMPONENT}_migrations")
  endif()
  get_filename_component(dir "${arg_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  file(GLOB files CONFIGURE_DEPENDS "${dir}/*.sql")
  set(output "${CMAKE_CURRENT_BINARY_DIR}/${arg_SYMBOL}.c")
  list(JOIN arg_ADOPT "," adopt)
  add_custom_command(
    OUTPUT "${output}"
    COMMAND ${CMAKE_COMMAND} "-DDIR=${dir}" "-DCOMPONENT=${arg_COMPONENT}" "-DSYMBOL=${arg_SYMBOL}"
            "-DADOPT=${adopt}" "-DOUTPUT=${output}" -P "${embed}"
    DEPENDS ${files} "${embed}"
    COMMENT "Embedding the ${arg_COMPONENT} migrations (${arg_DIR})"
    VERBATIM)
  target_sources(${target} PRIVATE "${output}")
endfunction()
