# syntax=docker/dockerfile:1
# sparkd image: built on Debian 12, run on debian:12-slim as a non-root user.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libpq-dev libwebsockets-dev libjson-c-dev libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The install prefix is set at configure time too: sparkd has its data
# directory (/usr/share/spark) and library path compiled in.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=/usr -DSPARK_BUILD_TESTS=OFF \
 && cmake --build /build -j "$(nproc)" \
 && cmake --install /build --prefix /usr \
 && mkdir -p /out \
 && cd / \
 && cp -a --parents usr/bin/sparkd usr/share/spark /out/ \
 && find usr/lib -name 'libspark*.so*' -exec cp -a --parents {} /out/ \;

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 libwebsockets17 libjson-c5 libsodium23 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 spark \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin spark
COPY --from=build /out/ /
RUN ldconfig && sparkd --version
ENV SPARK_PORT=8080 \
    SPARK_WEB_ROOT=/usr/share/spark/web \
    SPARK_MIGRATIONS_DIR=/usr/share/spark/migrations \
    SPARK_SQL_DIR=/usr/share/spark/sql
WORKDIR /usr/share/spark
USER spark
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${SPARK_PORT}/healthz" >/dev/null || exit 1
CMD ["sparkd", "serve"]
