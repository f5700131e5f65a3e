#!/usr/bin/env bash
# Copyright (C) 2026 beitseg developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Installs the package scripts/package.sh made (target/debian/beitseg_*_amd64.deb) with apt and
# uses it as a user would: from a folder outside the repository, with GST_PLUGIN_PATH,
# ORT_DYLIB_PATH, LD_LIBRARY_PATH and VIRTUAL_ENV unset and a fresh HOME (no user site-packages,
# no GStreamer registry of earlier runs). Then removes it and checks that nothing it installed
# is left. The plugin and the command must load the ONNX Runtime the package bundles, unless the
# system itself has one (a loader-path library or a system Python's onnxruntime), which the
# lookup rightly prefers: then the check says so and only requires it is not the repository's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
deb=$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/beitseg_*_amd64.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { echo "package_check: no target/debian/beitseg_*_amd64.deb: run scripts/package.sh" >&2; exit 1; }
deb=$(realpath "$deb")
model=/usr/share/beitseg/selfie/selfie_segmentation_landscape.onnx
step() { echo "package_check: $*" >&2; }
remove() { DEBIAN_FRONTEND=noninteractive $sudo apt-get remove --purge -y -q beitseg >/dev/null; }
# A failed check leaves no package behind either.
fail() { echo "package_check: FAILED: $*" >&2; cd /; remove || true; exit 1; }

if dpkg-query -W -f='${Status}' beitseg 2>/dev/null | grep -q "install ok installed"; then
  step "removing an earlier install of beitseg"
  remove
fi
# Paths of the package that exist before it is installed (/usr/bin …) may stay after removal.
existed=$(mktemp); listed=$(mktemp); work=$(mktemp -d)
trap 'rm -rf "$existed" "$listed" "$work"' EXIT
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||' | grep -v '^/\?$' |
  while read -r p; do [ -e "$p" ] && echo "$p"; done >"$existed" || true

step "installing $deb"
SECONDS=0
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$deb" >/dev/null
step "installed in ${SECONDS}s"
dpkg -L beitseg >"$listed"

# Which ONNX Runtime the lookup should take here.
expect="bundled with beitseg"
system_ort=$( { ldconfig -p 2>/dev/null | grep -o '/[^ ]*libonnxruntime\.so[^ ]*' || true
  ls -d /usr/local/lib/python3*/*-packages/onnxruntime/capi/libonnxruntime.so.1.* \
    /usr/lib/python3/dist-packages/onnxruntime/capi/libonnxruntime.so.1.* \
    /usr/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null || true; } | head -n1)
if [ -n "$system_ort" ]; then
  step "note: this system has its own ONNX Runtime ($system_ort), which the lookup prefers to the bundled one"
  expect=""
fi
check_runtime() { # WHAT TEXT: TEXT names the runtime the lookup should have found
  grep -qF "(${expect:-}" <<<"$2" || fail "$1 did not load the expected ONNX Runtime (${expect:-system}): $2"
  if grep -qF "$repo" <<<"$2"; then fail "$1 loaded ONNX Runtime from the repository: $2"; fi
  step "$1: $(sed 's/^ *String\. Default: //; s/^ *library *//; s/"//g' <<<"$2")"
}

cd "$work"
user=(env -u GST_PLUGIN_PATH -u GST_PLUGIN_SYSTEM_PATH -u ORT_DYLIB_PATH -u LD_LIBRARY_PATH
  -u VIRTUAL_ENV -u GST_REGISTRY HOME="$work")

SECONDS=0
inspect=$("${user[@]}" gst-inspect-1.0 beitseg) || fail "gst-inspect-1.0 beitseg"
# (/lib is /usr/lib on Debian 12: GStreamer may name either.)
grep -Eq "Filename +(/usr)?/lib/x86_64-linux-gnu/gstreamer-1.0/libgstbeitseg.so" <<<"$inspect" ||
  fail "gst-inspect-1.0 beitseg does not name the installed plugin: $inspect"
check_runtime "gst-inspect-1.0 beitseg (ort-version)" "$(grep -A2 'ort-version' <<<"$inspect" | tail -n1)"

"${user[@]}" gst-launch-1.0 -v videotestsrc num-buffers=10 ! video/x-raw,width=320,height=240 ! \
  beitseg model="$model" ! videoconvert ! fakesink silent=false >launch.log 2>&1 ||
  fail "gst-launch-1.0 with beitseg: $(cat launch.log)"
frames=$(grep -c 'last-message = chain' launch.log || true)
[ "$frames" -eq 10 ] || fail "gst-launch-1.0 with beitseg: $frames frames out, not 10"
step "gst-launch-1.0 videotestsrc ! beitseg model=$model ! fakesink: $frames frames"

"${user[@]}" beitseg run test --frames 10 -o "$work/test.mp4" >run.log 2>&1 ||
  fail "beitseg run (its default model, $model): $(cat run.log)"
frames=$("${user[@]}" gst-launch-1.0 -v filesrc location="$work/test.mp4" ! decodebin ! \
  fakesink silent=false 2>&1 | grep -c 'last-message = chain' || true)
[ "$frames" -ge 10 ] || fail "beitseg run wrote $work/test.mp4, which decodes to $frames frames, not 10"
step "beitseg run test -o test.mp4 (its default model): a playable file of $frames frames"

out=$("${user[@]}" beitseg inspect "$model") || fail "beitseg inspect $model"
check_runtime "beitseg inspect" "$(grep -A0 '^  library' <<<"$out")"
if /usr/bin/python3 -c 'import gi, numpy' 2>/dev/null; then
  out=$("${user[@]}" /usr/bin/python3 "$repo/examples/python/segment.py" --frames 15 2>&1) ||
    fail "examples/python/segment.py: $out"
  grep -q '^15 frames, ' <<<"$out" || fail "examples/python/segment.py: $out"
  check_runtime "examples/python/segment.py" "$(tail -n1 <<<"$out")"
fi
step "used in ${SECONDS}s"

cd "$repo"
SECONDS=0
remove
left=()
while read -r p; do
  grep -qxF "$p" "$existed" && continue
  if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
done <"$listed"
((${#left[@]} == 0)) || fail "left after removal: ${left[*]}"
step "removed in ${SECONDS}s; none of its $(wc -l <"$listed") paths left"
