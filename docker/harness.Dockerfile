# The reference authorization server and relay: one static binary, nothing else.
# Other containers on the network reach it as `harness` (override the URLs in CMD otherwise).
FROM scratch
COPY tether-harness /tether-harness
EXPOSE 8080 8081
ENTRYPOINT ["/tether-harness"]
CMD ["serve", "--api-listen", "0.0.0.0:8080", "--relay-listen", "0.0.0.0:8081", "--public-api-url", "http://harness:8080", "--public-relay-url", "ws://harness:8081"]
