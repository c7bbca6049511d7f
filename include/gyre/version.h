/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gyre/version.h: compile-time version of the gyre headers.
 *
 * GYRE_VERSION_HEX packs major.minor.patch as 0xMMmmpp so that
 * `#if GYRE_VERSION_HEX >= 0x000100` works in the preprocessor; gyre_version()
 * (declared in gyre.h) returns the same number for the library actually loaded,
 * which may be newer than the headers a program was built with.
 */
#ifndef GYRE_VERSION_H
#define GYRE_VERSION_H

#define GYRE_VERSION_MAJOR 0
#define GYRE_VERSION_MINOR 1
#define GYRE_VERSION_PATCH 0

#define GYRE_VERSION_HEX                                                                           \
    ((GYRE_VERSION_MAJOR << 16) | (GYRE_VERSION_MINOR << 8) | GYRE_VERSION_PATCH)

#define GYRE__STR2(x) #x
#define GYRE__STR(x) GYRE__STR2(x)
#define GYRE_VERSION_STRING                                                                        \
    GYRE__STR(GYRE_VERSION_MAJOR)                                                                  \
    "." GYRE__STR(GYRE_VERSION_MINOR) "." GYRE__STR(GYRE_VERSION_PATCH)

#endif
