# ---- xDS (issue 5): protobuf-c messages, decoders/encoders, ADS state machine, client, aegis-xds ----
# Included from xds/CMakeLists.txt (paths relative to xds/). The .proto files under proto/ are the
# project's own, wire compatible with Envoy's and Istio's (docs/xds.md). protoc-c generates C at build
# time; the well-known types (Any, Struct, wrappers, Duration) are generated here too because
# libprotobuf-c ships no code for them.
find_program(PROTOC_C protoc-c REQUIRED)
set(AEGIS_XDS_DIR ${CMAKE_CURRENT_LIST_DIR}/..)
set(AEGIS_PROTO_DIR ${CMAKE_CURRENT_LIST_DIR})
set(AEGIS_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/pb)
set(AEGIS_PROTOS
  envoy/config/core/v3/base.proto
  envoy/config/endpoint/v3/endpoint.proto
  envoy/service/discovery/v3/discovery.proto
  google/rpc/status.proto
  networking/v1alpha3/workload_entry.proto
  networking/v1alpha3/service_entry.proto
  networking/v1alpha3/virtual_service.proto
  networking/v1alpha3/destination_rule.proto
  istio/networking/nds/v1/nds.proto)
set(AEGIS_WKT_PROTOS
  google/protobuf/any.proto google/protobuf/struct.proto google/protobuf/wrappers.proto
  google/protobuf/duration.proto)
set(AEGIS_PROTO_SRCS "")
set(AEGIS_PROTO_HDRS "")
set(AEGIS_PROTO_DEPS "")
foreach(p ${AEGIS_PROTOS})
  list(APPEND AEGIS_PROTO_DEPS ${AEGIS_PROTO_DIR}/${p})
endforeach()
foreach(p ${AEGIS_PROTOS} ${AEGIS_WKT_PROTOS})
  string(REGEX REPLACE "\\.proto$" ".pb-c.c" c ${p})
  string(REGEX REPLACE "\\.proto$" ".pb-c.h" h ${p})
  list(APPEND AEGIS_PROTO_SRCS ${AEGIS_PROTO_OUT}/${c})
  list(APPEND AEGIS_PROTO_HDRS ${AEGIS_PROTO_OUT}/${h})
endforeach()
add_custom_command(
  OUTPUT ${AEGIS_PROTO_SRCS} ${AEGIS_PROTO_HDRS}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${AEGIS_PROTO_OUT}
  COMMAND ${PROTOC_C} -I${AEGIS_PROTO_DIR} -I/usr/include --c_out=${AEGIS_PROTO_OUT}
    ${AEGIS_PROTOS} ${AEGIS_WKT_PROTOS}
  WORKING_DIRECTORY ${AEGIS_PROTO_DIR}
  DEPENDS ${AEGIS_PROTO_DEPS}
  COMMENT "protoc-c: xDS messages"
  VERBATIM)
# Generated code: no aegis_warnings (its oneof initialisers trip -Wmissing-braces, among others).
add_library(aegis_xds_proto STATIC ${AEGIS_PROTO_SRCS})
target_compile_options(aegis_xds_proto PRIVATE -Wno-missing-braces -Wno-unused-parameter)
target_include_directories(aegis_xds_proto SYSTEM PUBLIC ${AEGIS_PROTO_OUT})
target_link_libraries(aegis_xds_proto PUBLIC PkgConfig::PROTOBUFC)

# Sans-I/O core: protobuf <-> struct aegis_config, and the ADS ACK/NACK state machine.
add_library(aegis_xds_core STATIC ${AEGIS_XDS_DIR}/xds_decode.c ${AEGIS_XDS_DIR}/xds_endpoints.c ${AEGIS_XDS_DIR}/xds_encode.c
  ${AEGIS_XDS_DIR}/xds_snapshot.c ${AEGIS_XDS_DIR}/ads_state.c)
target_include_directories(aegis_xds_core PUBLIC ${AEGIS_XDS_DIR})
target_link_libraries(aegis_xds_core PUBLIC aegis_xds_proto aegis_common PRIVATE aegis_warnings)

# gRPC glue: the proxy's ADS client and the aegis-xds server.
# xDS over mutual TLS (xds_tls.c): gRPC TLS credentials for both ends; aegis_mtls checks the files.
add_library(aegis_xds_tls STATIC ${AEGIS_XDS_DIR}/xds_tls.c)
target_link_libraries(aegis_xds_tls PUBLIC aegis_mtls PkgConfig::GRPC PRIVATE aegis_warnings)
add_library(aegis_ads_client STATIC ${AEGIS_XDS_DIR}/ads_client.c)
target_link_libraries(aegis_ads_client PUBLIC aegis_xds_core PkgConfig::GRPC Threads::Threads
  PRIVATE aegis_xds_tls aegis_warnings)

# The ADS client as aegis-proxy loads it: a module of its own, lib/aegis/aegis-ads-client.so, opened only
# for --xds-address (include/aegis/ads_client.h, "The module"; docs/xds.md), so that a proxy run from files
# never maps gRPC, abseil and libstdc++. It links its own copies of the static libraries below, which are
# therefore built position-independent; ads_module.map exports the module's table and hides the rest.
# The unit tests link aegis_ads_client directly.
set(AEGIS_ADS_MODULE_LIBS aegis_ads_client aegis_xds_core aegis_xds_proto aegis_xds_tls aegis_mtls aegis_common)
foreach(lib ${AEGIS_ADS_MODULE_LIBS})
  set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(${lib} PRIVATE -fno-semantic-interposition)
endforeach()
add_library(aegis-ads-client MODULE ${AEGIS_XDS_DIR}/ads_module.c)
target_link_libraries(aegis-ads-client PRIVATE aegis_ads_client aegis_warnings
  -Wl,--version-script=${AEGIS_XDS_DIR}/ads_module.map)
if(NOT AEGIS_SANITIZE AND NOT AEGIS_FUZZ)
  # Every symbol resolved at link time, not at the first dlopen (sanitizer runtimes live in the executable).
  target_link_options(aegis-ads-client PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(aegis-ads-client PROPERTIES PREFIX "" LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib/aegis
  LINK_DEPENDS ${AEGIS_XDS_DIR}/ads_module.map)

add_executable(aegis-xds ${AEGIS_XDS_DIR}/xds_main.c ${AEGIS_XDS_DIR}/xds_server.c)
target_link_libraries(aegis-xds PRIVATE aegis_xds_core aegis_config aegis_xds_tls PkgConfig::GRPC Threads::Threads
  aegis_warnings)
