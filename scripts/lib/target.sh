# shellcheck shell=bash
# The cargo target directory the scripts share between checkouts.
#
# Cargo decides that a workspace crate is fresh by comparing file times, and
# its artifact names do not depend on where the checkout is. So a target
# directory shared by two checkouts (CI's clean clone and a working tree)
# can hold a crate compiled from the other checkout that looks fresh here,
# with the other checkout's paths compiled in (env!("CARGO_MANIFEST_DIR")):
# tests then look for fixtures in a directory that is gone. When the
# checkout building into the directory changes, its files are touched, so
# cargo rebuilds the workspace's crates (not the dependencies).

# Usage: claim_target_dir REPO_ROOT (with CARGO_TARGET_DIR set).
claim_target_dir() {
    local root="$1"
    local marker="$CARGO_TARGET_DIR/.intercloud-checkout"
    mkdir -p "$CARGO_TARGET_DIR"
    if [ -f "$marker" ] && [ "$(cat "$marker")" != "$root" ]; then
        echo "==> $CARGO_TARGET_DIR was last built from $(cat "$marker"): this checkout's crates are rebuilt"
        find "$root" \( -name .git -o -name .lab -o -name target \) -prune -o -type f -print0 |
            xargs -0 touch --no-create
    fi
    printf '%s\n' "$root" >"$marker"
}
