# Writes a C file that defines one `const shoal_migrations SYMBOL` (a
# component's own sequence, <shoal/service.h>) holding every NNNN_name.sql
# of a folder, in version order, so that the binary carries its schema (no
# files to install next to it, nothing to get out of step). The bytes of
# each file are the SQL, unchanged.
#
#   cmake -DDIR=migrations -DCOMPONENT=hello -DOUTPUT=hello_migrations.c \
#         [-DSYMBOL=hello_migrations] [-DADOPT=1:baseline:1,3:conduit:2] -P embed_migrations.cmake
#
# SYMBOL defaults to COMPONENT_migrations (dashes become underscores).
# ADOPT, for services that used store_migrate before 0.2, lists
# LEGACY_VERSION:LEGACY_NAME:VERSION: the rows of schema_migrations that
# stand for this component's versions. shoal_add_migrations
# (ShoalMigrations.cmake) runs this at build time; with pkg-config, run it
# yourself: `pkg-config --variable=embed_migrations shoal` names this file.
foreach(required DIR COMPONENT OUTPUT)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "embed_migrations.cmake: -D${required}=... is required")
  endif()
endforeach()
if(NOT COMPONENT MATCHES "^[a-z][a-z0-9_-]*$")
  message(FATAL_ERROR "embed_migrations.cmake: COMPONENT '${COMPONENT}' is not [a-z][a-z0-9_-]*")
endif()
if(NOT DEFINED SYMBOL OR SYMBOL STREQUAL "")
  string(REPLACE "-" "_" SYMBOL "${COMPONENT}_migrations")
endif()
get_filename_component(DIR "${DIR}" ABSOLUTE)
file(GLOB files RELATIVE "${DIR}" "${DIR}/*.sql")
list(SORT files)
set(body "/* Generated from ${DIR} by embed_migrations.cmake: component ${COMPONENT}. */\n")
string(APPEND body "#include <shoal/shoal.h>\n\n")
set(table "")
set(count 0)
foreach(file IN LISTS files)
  if(NOT file MATCHES "^([0-9][0-9][0-9][0-9])_([a-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "${DIR}/${file}: names must look like 0001_some_name.sql")
  endif()
  set(version "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  math(EXPR number "${version}")
  file(READ "${DIR}/${file}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const char migration_${version}[] = {${bytes}0};\n")
  string(APPEND table "    {${number}, \"${name}\", migration_${version}},\n")
  math(EXPR count "${count} + 1")
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "no migrations in ${DIR}")
endif()
string(APPEND body "\nstatic const store_migration list[] = {\n${table}};\n")
set(adopt_field "")
if(DEFINED ADOPT AND NOT ADOPT STREQUAL "")
  set(adopt_table "")
  set(adopt_count 0)
  string(REPLACE "," ";" ADOPT "${ADOPT}")
  foreach(entry IN LISTS ADOPT)
    if(NOT entry MATCHES "^([0-9]+):([a-z0-9_]+):([0-9]+)$")
      message(FATAL_ERROR "embed_migrations.cmake: ADOPT entry '${entry}' is not LEGACY_VERSION:LEGACY_NAME:VERSION")
    endif()
    string(APPEND adopt_table "    {${CMAKE_MATCH_1}, \"${CMAKE_MATCH_2}\", ${CMAKE_MATCH_3}},\n")
    math(EXPR adopt_count "${adopt_count} + 1")
  endforeach()
  string(APPEND body "static const store_migration_adopt adopt[] = {\n${adopt_table}};\n")
  set(adopt_field ", .adopt = adopt, .adopt_count = ${adopt_count}")
endif()
string(APPEND body "\nconst shoal_migrations ${SYMBOL} = {\n")
string(APPEND body "    .component = \"${COMPONENT}\", .list = list, .count = ${count}${adopt_field}};\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")
