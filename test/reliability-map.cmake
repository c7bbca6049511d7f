# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# reliability-map.cmake: the check behind the CTest test `reliability_map`.
#
# docs/reliability.md maps each reliability scenario (A1..K4) to the tests that cover it, one
# table row per scenario. This fails if a scenario id is missing from the table (or listed
# twice), or if a row names a test, in `backquotes` in its third column, that no
# test/test-list*.h declares with TEST_ENTRY. Text without backquotes in that column (a fault
# switch, a CI stage) is not checked.
#
#   cmake -DDOC=docs/reliability.md -DLISTS=test -P test/reliability-map.cmake

cmake_minimum_required(VERSION 3.18)

if(NOT DOC OR NOT LISTS)
  message(FATAL_ERROR "usage: cmake -DDOC=<reliability.md> -DLISTS=<test dir> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()

# Every scenario id: letter and how many of it.
set(_ids "")
foreach(_group A:8 B:6 C:5 D:7 E:3 F:2 G:2 H:3 I:4 J:2 K:4)
  string(REPLACE ":" ";" _pair "${_group}")
  list(GET _pair 0 _letter)
  list(GET _pair 1 _count)
  foreach(_n RANGE 1 ${_count})
    list(APPEND _ids "${_letter}${_n}")
  endforeach()
endforeach()

# The tests the lists declare. A label list holds ';', which splits a TEST_ENTRY line into
# pieces here; only the piece that starts the line carries the name.
set(_known "")
file(GLOB _lists "${LISTS}/test-list*.h")
foreach(_list IN LISTS _lists)
  file(STRINGS "${_list}" _entries REGEX "^TEST_ENTRY\\(")
  foreach(_entry IN LISTS _entries)
    if(_entry MATCHES "^TEST_ENTRY\\(([a-z0-9_]+),")
      list(APPEND _known "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endforeach()
list(LENGTH _known _nknown)
if(_nknown EQUAL 0)
  message(FATAL_ERROR "no TEST_ENTRY found in ${LISTS}/test-list*.h")
endif()

# The table, one line per element: ';' in the text is hidden first so that it cannot split a
# row.
file(READ "${DOC}" _text)
string(REPLACE ";" "<semicolon>" _text "${_text}")
string(REPLACE "\n" ";" _lines "${_text}")

set(_errors 0)
set(_seen "")
set(_checked 0)
foreach(_line IN LISTS _lines)
  if(NOT _line MATCHES "^\\| *([A-K][0-9]+) *\\|[^|]*\\|([^|]*)\\|")
    continue()
  endif()
  set(_id "${CMAKE_MATCH_1}")
  set(_cell "${CMAKE_MATCH_2}")
  if(NOT _id IN_LIST _ids)
    message(SEND_ERROR "${DOC}: row ${_id} is not a scenario id")
    math(EXPR _errors "${_errors} + 1")
  endif()
  if(_id IN_LIST _seen)
    message(SEND_ERROR "${DOC}: scenario ${_id} has more than one row")
    math(EXPR _errors "${_errors} + 1")
  endif()
  list(APPEND _seen "${_id}")
  string(REGEX MATCHALL "`[^`]+`" _names "${_cell}")
  foreach(_quoted IN LISTS _names)
    string(REGEX REPLACE "^`(.*)`$" "\\1" _name "${_quoted}")
    math(EXPR _checked "${_checked} + 1")
    if(NOT _name IN_LIST _known)
      message(SEND_ERROR "${DOC}: ${_id} names `${_name}`, which is no TEST_ENTRY of "
                         "${LISTS}/test-list*.h")
      math(EXPR _errors "${_errors} + 1")
    endif()
  endforeach()
endforeach()

foreach(_id IN LISTS _ids)
  if(NOT _id IN_LIST _seen)
    message(SEND_ERROR "${DOC}: no row for scenario ${_id}")
    math(EXPR _errors "${_errors} + 1")
  endif()
endforeach()

if(_errors GREATER 0)
  message(FATAL_ERROR "${DOC}: ${_errors} problem(s) in the scenario map")
endif()
list(LENGTH _ids _nids)
message(STATUS "${DOC}: ${_nids} scenarios, ${_checked} test names, all declared")
