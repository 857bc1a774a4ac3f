# shellcheck shell=bash
# Debian packages the lab and the tests need, and how to install them.
# Sourced by scripts/lab and scripts/test: this is the ONE list to edit.
#
# Later issues add the real components here (krb5-kdc, krb5-admin-server,
# nftables, ...).
# The lab and the tests run each server as a child process with a generated
# config; none of them needs the package's own service. (Without systemd, as
# in our containers, none starts; on a systemd host the prosody package starts
# its service on port 5222: `systemctl disable --now prosody`, or run the lab
# with LAB_XMPP_PORT set to another port.)

INTERCLOUD_PACKAGES=(
    openssl          # inspecting the dev PKI and issued certificates
    ca-certificates  # TLS to crates.io and package mirrors
    jq               # reading intercloudctl --output json in the scripts
    prosody          # XMPP server: presence and dialog (lab, tests/src/prosody.rs)
    raptor2-utils    # rapper: third-party Turtle parser (ontology/tests/third_party_parser.rs)
    libclang-dev     # bindgen in oxrocksdb-sys: the root's directory store (RocksDB) is built from source
    g++              # compiles the bundled RocksDB (C++20)
    curl             # the SPARQL protocol examples in the README and the lab's demo
    chrony           # chronyd -Q: a real NTP client checking the root's time source (tests, benchmark baseline)
    ntpdate          # ntpdate -q and sntp (ntpsec's ntpdig): real NTP clients in the tests
    sntp
    qemu-utils       # qemu-img: the local cloud driver's qcow2 disks (create, check, info) and the tests' images
    rabbitmq-server  # AMQP broker for transfers between clouds (lab, tests/src/rabbitmq.rs); started as a child, never as a service
    iproute2         # `ip netns` in the VNet tests' setup and the lab (the brokers use netlink, not `ip`)
    iputils-ping     # ping inside network namespaces: the VNet traffic tests
    nftables         # nft: the brokers' flow filter and Mirror VNet taps (run as `nft -j -f -`), and the traffic tests' counters
    python3          # tiny TCP listeners and clients inside the VNet tests' namespaces
    iperf3           # TCP throughput across a VNet vs a hand-built VXLAN (tests/src/bin/bench_vnet.rs); its service is off by default, never started
)

# package_installed PKG: true when dpkg says PKG is installed.
package_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

# ensure_packages PKG...: installs the packages that are missing.
# As root: `apt-get update` (once per run) then `apt-get install`.
# Otherwise: prints the exact command to run and returns 1.
ensure_packages() {
    if ! command -v dpkg >/dev/null 2>&1; then
        echo "warning: dpkg not found (not Debian?); make sure these are installed: $*" >&2
        return 0
    fi
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing Debian packages: ${missing[*]}" >&2
        echo "install them as root, then run this again:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        return 1
    fi
    echo "==> installing missing packages: ${missing[*]}"
    if [ -z "${_INTERCLOUD_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        _INTERCLOUD_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
