# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# check_exports.cmake: ABI checks on libgyre.so, run by CTest as `cmake -P`.
#   -DNM=nm -DLIB=libgyre.so            abi_exports: every exported symbol is a public gyre_
#                                       name (not gyre__, not a helper or a libc leftover)
#   ... -DHEADER=include/gyre.h         abi_header: every function gyre.h declares with
#                                       GYRE_API is exported
cmake_minimum_required(VERSION 3.18)
if(NOT NM OR NOT LIB)
  message(FATAL_ERROR "usage: cmake -DNM=nm -DLIB=libgyre.so [-DHEADER=gyre.h] -P check_exports.cmake")
endif()

execute_process(COMMAND ${NM} -D --defined-only ${LIB}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${LIB} failed (${rc}): ${err}")
endif()

# Lines are "<address> <type> <name>[@version]". Type A entries name symbol-version nodes
# (none today; they would come with a versioned map), not code or data.
string(REPLACE "\n" ";" lines "${out}")
set(exported "")
set(bad "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) ([^@ ]+)")
    set(type ${CMAKE_MATCH_1})
    set(name ${CMAKE_MATCH_2})
    if(type STREQUAL "A")
      continue()
    endif()
    list(APPEND exported ${name})
    if(NOT name MATCHES "^gyre_[a-z0-9]" )
      list(APPEND bad "${type} ${name}")
    endif()
  endif()
endforeach()

if(NOT HEADER)
  list(LENGTH exported n)
  if(bad)
    list(JOIN bad "\n  " bad_text)
    message(FATAL_ERROR "${LIB} exports symbols outside the public gyre_ namespace:\n  ${bad_text}\n"
                        "Make them static, or mark public API with GYRE_API in gyre.h.")
  endif()
  if(n EQUAL 0)
    message(FATAL_ERROR "${LIB} exports no symbols at all (is GYRE_BUILDING defined?)")
  endif()
  message(STATUS "abi_exports: ${n} symbols, all public gyre_ names")
  return()
endif()

file(READ ${HEADER} text)
# gyre.h includes the headers under include/gyre/: they are part of it.
get_filename_component(_dir ${HEADER} DIRECTORY)
file(GLOB _parts ${_dir}/gyre/*.h)
foreach(_part IN LISTS _parts)
  file(READ ${_part} _more)
  string(APPEND text "${_more}")
endforeach()
# Drop comments and preprocessor lines, then take the name of each GYRE_API declaration.
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" text "${text}")
string(REGEX REPLACE "\n#[^\n]*" "\n" text "${text}")
string(REGEX MATCHALL "GYRE_API[^;]*;" decls "${text}")
set(missing "")
set(count 0)
foreach(decl IN LISTS decls)
  if(decl MATCHES "(gyre_[a-z0-9_]+)[ \n]*\\(")
    math(EXPR count "${count} + 1")
    if(NOT CMAKE_MATCH_1 IN_LIST exported)
      list(APPEND missing ${CMAKE_MATCH_1})
    endif()
  endif()
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "found no GYRE_API declarations in ${HEADER}")
endif()
if(missing)
  list(JOIN missing "\n  " missing_text)
  message(FATAL_ERROR "${HEADER} declares with GYRE_API but ${LIB} does not export:\n"
                      "  ${missing_text}")
endif()
message(STATUS "abi_header: all ${count} GYRE_API functions of gyre.h are exported")
