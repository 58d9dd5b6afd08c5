# An empty Linux: no libc, no loader. Only a static busybox (from Debian's busybox-static)
# so that the static tether bundle has a shell to open terminals with.
FROM scratch
COPY busybox /bin/sh
COPY busybox /bin/sleep
COPY busybox /bin/cat
COPY busybox /bin/tr
COPY busybox /bin/ls
COPY busybox /bin/stty
COPY busybox /bin/echo
COPY busybox /bin/tail
COPY keep /root/.keep
COPY keep /tmp/.keep
COPY keep /opt/.keep
ENV HOME=/root SHELL=/bin/sh PATH=/bin
CMD ["/bin/sleep", "86400"]
