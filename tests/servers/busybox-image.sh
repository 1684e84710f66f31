# tests/servers/busybox-image.sh — build the local image
# relais-test/busybox:latest with `docker import`, from Debian's
# busybox-static (/bin/busybox).  Nothing is pulled from any registry.
#
# Sourced (bash), after dockerd_start from tests/servers/dockerd.sh:
#   . tests/servers/busybox-image.sh
#   busybox_image_build [DIR]   # DIR for the rootfs/tarball (default: a
#                               # temp dir, removed after); no-op if the
#                               # image exists already (BUSYBOX_IMAGE_FORCE=1
#                               # rebuilds)
# Or run: bash tests/servers/busybox-image.sh   (uses $DOCKER_HOST)
#
# Exports BUSYBOX_IMAGE=relais-test/busybox:latest.
# The image holds /bin/busybox, applet links in /bin (sh, httpd, nc, ...),
# /www/index.html ("relais-test busybox\n"), /etc/passwd, /etc/group, /tmp.
# Typical container (host network, listening on loopback only):
#   docker run -d --network host --label traefik.enable=true \
#     relais-test/busybox:latest busybox httpd -f -p 127.0.0.1:PORT -h /www

BUSYBOX_IMAGE=relais-test/busybox:latest
export BUSYBOX_IMAGE

busybox_image_build() {
    local dir=${1:-} tmp="" root a rc=1
    local bb=/bin/busybox
    [ -x "$bb" ] || { echo "busybox-image.sh: apt-get install busybox-static" >&2; return 1; }
    # Debian's busybox (dynamic) also installs /bin/busybox: insist on static
    if ldd "$bb" >/dev/null 2>&1; then
        echo "busybox-image.sh: $bb is not static (install busybox-static)" >&2; return 1
    fi
    if [ -z "${BUSYBOX_IMAGE_FORCE:-}" ] \
        && DOCKER_API_VERSION=1.41 docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    if [ -z "$dir" ]; then tmp=$(mktemp -d) || return 1; dir=$tmp; fi
    root="$dir/rootfs"
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/www" "$root/etc" "$root/tmp" "$root/proc" \
        "$root/sys" "$root/dev" || { [ -n "$tmp" ] && rm -rf "$tmp"; return 1; }
    cp "$bb" "$root/bin/busybox"
    for a in sh ash cat echo env ls mkdir nc httpd sleep wget printf true false \
        hostname id ps kill; do
        ln -s busybox "$root/bin/$a"
    done
    chmod 1777 "$root/tmp"
    printf 'relais-test busybox\n' >"$root/www/index.html"
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    if tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$dir/busybox.tar" . \
        && DOCKER_API_VERSION=1.41 docker import \
            --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
            "$dir/busybox.tar" "$BUSYBOX_IMAGE" >/dev/null; then
        rc=0
    else
        echo "busybox-image.sh: docker import failed (is dockerd_start done?)" >&2
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"
    return $rc
}

# executed rather than sourced: build now
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    busybox_image_build "$@"
    exit $?
fi
