# aerolithsDB in an image with nothing but the static binary.
#
# The binary is built on the host (CGO_ENABLED=0, `make build`) and copied in, so building
# the image needs no base image and no registry: `make image` does both steps.
#
# bin/rootfs is staged by `make image`: /aerolith, an empty /data owned by the runtime user
# (a named volume mounted there starts with that owner) and /tmp (scratch has none).
FROM scratch
COPY --chown=65532:65532 bin/rootfs/ /
USER 65532:65532
VOLUME ["/data"]
# REST, raft, gRPC.
EXPOSE 7070 7071 7072
# Listen on every interface of the container. The raft address peers dial must name this
# container (AEROLITH_RAFT_ADDR, e.g. its hostname); raft itself listens on
# AEROLITH_RAFT_LISTEN, so the container keeps serving if its IP changes.
ENV AEROLITH_DATA_DIR=/data \
    AEROLITH_HTTP_ADDR=0.0.0.0:7070 \
    AEROLITH_GRPC_ADDR=0.0.0.0:7072 \
    AEROLITH_RAFT_LISTEN=0.0.0.0:7071 \
    AEROLITH_LOG_FORMAT=json
ENTRYPOINT ["/aerolith"]
CMD ["server"]
