# Shared by tools/test-all and tools/try-example (sourced, not run).

# install_missing [registry] [podman] [sshd]: apt-get install what these
# scripts need and the machine lacks; with "registry", also Debian's
# docker-registry (the Zuul job tests push to a registry of their own on a
# loopback port); with "podman", also Debian's podman (a test builds through
# its Docker-compatible API, served by a `podman system service` of its own);
# with "sshd", also openssh-server (a test builds through DOCKER_HOST=ssh://
# to an sshd of its own on a loopback port).
install_missing() {
    export DEBIAN_FRONTEND=noninteractive
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v git >/dev/null || missing+=(git)
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    local extra
    for extra in "$@"; do
        case $extra in
            registry) [ -x /usr/bin/docker-registry ] || missing+=(docker-registry) ;;
            podman) command -v podman >/dev/null || missing+=(podman) ;;
            sshd) [ -x /usr/sbin/sshd ] || missing+=(openssh-server) ;;
            *) echo "install_missing: unknown extra $extra" >&2; return 1 ;;
        esac
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "${0##*/}: ${missing[*]} missing; run as root (sudo) to install them." >&2
        exit 1
    fi
    echo "${0##*/}: installing ${missing[*]}"
    apt-get update -qq
    # The docker-registry package would start a registry on port 5000 of every
    # interface: keep packages from starting services while installing.
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    apt-get install -y -qq "${missing[@]}" >/dev/null || { rm -f $policy; return 1; }
    rm -f $policy
    if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
}

# make_venv DIR SPEC: a virtualenv in DIR with pbrx-images (pip SPEC) installed.
make_venv() {
    local venv=$1 spec=$2
    if [ ! -x "$venv/bin/python" ]; then
        echo "${0##*/}: creating $venv"
        python3 -m venv "$venv"
    fi
    echo "${0##*/}: installing $spec into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
}
