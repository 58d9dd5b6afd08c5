# The reference authorization server and relay: one static binary, nothing else.
# Other containers on the network reach it as `harness` over HTTPS/WSS with the private CA it
# prints (override the URLs and --tls-name in CMD otherwise).
FROM scratch
COPY tether-harness /tether-harness
# The CA key lives here, so the container keeps its CA when it is stopped and started again.
WORKDIR /ca
EXPOSE 8080 8081
ENTRYPOINT ["/tether-harness"]
CMD ["serve", "--api-listen", "0.0.0.0:8080", "--relay-listen", "0.0.0.0:8081", "--public-api-url", "https://harness:8080", "--public-relay-url", "wss://harness:8081", "--tls-name", "harness", "--ca-dir", "/ca"]
