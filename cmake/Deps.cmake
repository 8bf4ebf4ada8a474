# Every third-party library comes from Debian's packages (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LDNS REQUIRED IMPORTED_TARGET ldns)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(GRPC REQUIRED IMPORTED_TARGET grpc gpr)
# libcurl (OpenSSL flavour): aegis-xds's Kubernetes API client (docs/kubernetes.md).
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)

# libev ships no .pc file.
find_path(EV_INCLUDE_DIR ev.h REQUIRED)
find_library(EV_LIBRARY ev REQUIRED)
add_library(aegis_ev INTERFACE)
target_include_directories(aegis_ev INTERFACE ${EV_INCLUDE_DIR})
target_link_libraries(aegis_ev INTERFACE ${EV_LIBRARY})
# libev's ev.h trips -Wstrict-prototypes etc.; it is a system header here.
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# http-parser (the admin endpoint and aegisctl) ships no .pc file either.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
add_library(aegis_http_parser INTERFACE)
target_include_directories(aegis_http_parser INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(aegis_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})
