# Warnings that pay for themselves in this code base (after nghttp2's PickyWarningsC.cmake).
set(AEGIS_WARNINGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wformat=2
  -Wundef -Wvla -Wwrite-strings -Wnull-dereference -Wimplicit-fallthrough -Wno-unused-parameter)
if(AEGIS_WERROR)
  list(APPEND AEGIS_WARNINGS -Werror)
endif()
# Applied per target (aegis_warnings) so that generated protobuf-c code can opt out.
add_library(aegis_warnings INTERFACE)
target_compile_options(aegis_warnings INTERFACE ${AEGIS_WARNINGS})
