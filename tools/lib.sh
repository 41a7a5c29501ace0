# Shared by tools/test-all and tools/try-example (sourced, not run).

# install_missing: apt-get install what these scripts need and the machine lacks.
install_missing() {
    export DEBIAN_FRONTEND=noninteractive
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v git >/dev/null || missing+=(git)
    python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    # The Zuul job tests push to a registry of their own on a loopback port.
    [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ]; then
        echo "${0##*/}: ${missing[*]} missing; run as root (sudo) to install them." >&2
        exit 1
    fi
    echo "${0##*/}: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # The package starts a registry on port 5000 of every interface; the tests
    # start their own, on loopback only.
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
