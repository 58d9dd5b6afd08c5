# The reference authorization server and relay: one static binary, nothing else.
FROM scratch
COPY tether-harness /tether-harness
EXPOSE 8080 8081
ENTRYPOINT ["/tether-harness", "serve", "--api-listen", "0.0.0.0:8080", "--relay-listen", "0.0.0.0:8081", "--public-api-url", "http://harness:8080", "--public-relay-url", "ws://harness:8081"]
