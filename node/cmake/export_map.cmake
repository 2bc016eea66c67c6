# cmake -DCC=<gcc> -DOUTPUT=<map> -DINCLUDES=<dir;dir...> -DHEADERS=<h;h...>
#       [-DEXTRA_FLAGS=<flag;flag...>] -P export_map.cmake
#
# Writes libshoal.so's version script: exactly the functions and objects the
# installed headers declare, so that what the shared library exports is
# what the headers promise and nothing the library keeps for itself
# (shoal_app_dispatch, cache_session_lookup, ...). GCC lists every prototype
# with its file (-aux-info); objects are the headers' `extern` lines. A
# compiler without -aux-info gets the prefixes alone (shoal_*, store_*,
# cache_*), as before.
cmake_minimum_required(VERSION 3.18)
set(list_file "${OUTPUT}.aux")
set(source_file "${OUTPUT}.c")
set(includes "")
foreach(header IN LISTS HEADERS)
  string(APPEND includes "#include <${header}>\n")
endforeach()
file(WRITE "${source_file}" "${includes}")
set(include_flags "")
foreach(dir IN LISTS INCLUDES)
  list(APPEND include_flags "-I${dir}")
endforeach()
execute_process(COMMAND "${CC}" -std=c11 ${include_flags} ${EXTRA_FLAGS} -aux-info "${list_file}" -fsyntax-only
                        "${source_file}"
                RESULT_VARIABLE result ERROR_VARIABLE errors)
set(names "")
if(result EQUAL 0 AND EXISTS "${list_file}")
  file(STRINGS "${list_file}" prototypes REGEX "^/\\* [^:]*/include/shoal/")
  foreach(line IN LISTS prototypes)
    # "/* file:line:NC */ extern type name (args);": not static inline ones.
    if(line MATCHES "^/\\*[^*]*\\*/ *static ")
      continue()
    endif()
    string(REGEX REPLACE " *\\(.*" "" head "${line}")
    string(REGEX MATCH "[A-Za-z_][A-Za-z0-9_]*$" name "${head}")
    list(APPEND names "${name}")
  endforeach()
  foreach(dir IN LISTS INCLUDES)
    foreach(header IN LISTS HEADERS)
      if(EXISTS "${dir}/${header}")
        file(STRINGS "${dir}/${header}" objects REGEX "^extern [^;(]*;")
        foreach(line IN LISTS objects)
          # "extern const shoal_error_code shoal_code_internal; /* why */"
          string(REGEX REPLACE "\\[[^]]*\\]" "" line "${line}")
          if(line MATCHES "([A-Za-z_][A-Za-z0-9_]*) *;")
            list(APPEND names "${CMAKE_MATCH_1}")
          else()
            message(FATAL_ERROR "export_map: cannot read the name in ${dir}/${header}: ${line}")
          endif()
        endforeach()
      endif()
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES names)
  list(SORT names)
endif()
list(LENGTH names count)
if(count EQUAL 0)
  message(STATUS "export_map: ${CC} gave no prototype list (${errors}); exporting shoal_*, store_*, cache_*")
  set(global "    shoal_*;\n    store_*;\n    cache_*;\n")
else()
  set(global "")
  foreach(name IN LISTS names)
    string(APPEND global "    ${name};\n")
  endforeach()
endif()
file(WRITE "${OUTPUT}.new"
"/* libshoal.so's exports: what the installed headers declare (${count} names),
 * made by node/cmake/export_map.cmake. */
{
  global:
${global}  local:
    *;
};
")
# Unchanged content keeps its timestamp, so the library is not linked again.
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${OUTPUT}.new" "${OUTPUT}")
file(REMOVE "${OUTPUT}.new" "${source_file}" "${list_file}")
