# syntax=docker/dockerfile:1
# One image with every Aegis program (aegis-proxy, aegis-xds, aegis-iptables, aegis-inject, aegisctl) in
# /usr/local/bin and aegis-proxy's xDS client module in /usr/local/lib/aegis; the manifests in deploy/ pick
# the program with `command:`.
#
#   docker build -t aegis:0.1.0 .
#
# Stage 1 builds on full Debian 12 with the -dev packages that scripts/setup.sh installs (the same list CI
# uses) and records which runtime packages the binaries link. Stage 2 is debian:12-slim with exactly those
# libraries, iptables (for the init container's aegis-iptables) and nothing else: no compiler, no headers.

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# setup.sh first, alone: the package layer is cached until the package list itself changes.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAEGIS_TESTS=OFF -DAEGIS_WERROR=ON \
 && cmake --build /build -j"$(nproc)" \
 && strip --strip-debug /build/bin/* /build/lib/aegis/*.so \
 && bash deploy/image/runtime-packages.sh /build/bin/* /build/lib/aegis/*.so > /build/runtime-packages.txt \
 && cat /build/runtime-packages.txt

FROM debian:12-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /build/runtime-packages.txt /tmp/runtime-packages.txt
# iptables: aegis-iptables runs iptables-restore (nft or legacy backend, both shipped by the package).
RUN apt-get update -q \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -q --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd -g 1337 aegis && useradd -u 1337 -g 1337 -M -d /nonexistent -s /usr/sbin/nologin aegis
COPY --from=build /build/bin/ /usr/local/bin/
# aegis-proxy loads the xDS client (and with it gRPC) from ../lib/aegis/ beside its bin/ only for --xds-address.
COPY --from=build /build/lib/aegis/ /usr/local/lib/aegis/
# The sidecar, aegis-xds and aegis-inject run as 1337 (the UID the capture rules exempt); the init container
# overrides this with runAsUser: 0 and only NET_ADMIN/NET_RAW.
USER 1337:1337
CMD ["aegis-proxy", "--help"]
