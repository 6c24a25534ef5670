#!/usr/bin/env bash
# Prints the Debian mirror this machine's apt uses (the first `deb` source of its main archive, in
# sources.list or a deb822 .sources file), so that the LibTorch 2.x scripts fetch trixie from the
# same place as the machine's own packages: a mirror behind a firewall, a proxy or a snapshot.
# ADATT_DEBIAN_MIRROR overrides it; with no Debian source found, deb.debian.org. APT_ETC (default
# /etc/apt) is where apt's configuration is read from.
set -euo pipefail
if [ -n "${ADATT_DEBIAN_MIRROR:-}" ]; then
  echo "$ADATT_DEBIAN_MIRROR"
  exit 0
fi
etc=${APT_ETC:-/etc/apt}
shopt -s nullglob
# One-line format: `deb [options] URI suite components`; the security archive is a different one.
for list in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
  [ -f "$list" ] || continue
  uri=$(awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) !~ /-security$/) { print $i; exit } }' "$list")
  [ -n "$uri" ] && { echo "${uri%/}"; exit 0; }
done
# deb822: stanzas of `Field: value` lines separated by blank lines.
for sources in "$etc"/sources.list.d/*.sources; do
  uri=$(awk '
    function flush() { if (types ~ /(^| )deb( |$)/ && suites !~ /-security/ && uris != "" && enabled != "no") { split(uris, u, " "); print u[1]; found = 1; exit } types = suites = uris = enabled = "" }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    { field = tolower($1); $1 = ""; sub(/^ +/, ""); if (field == "types:") types = $0; else if (field == "suites:") suites = $0; else if (field == "uris:") uris = $0; else if (field == "enabled:") enabled = tolower($0) }
    END { if (!found) flush() }' "$sources")
  [ -n "$uri" ] && { echo "${uri%/}"; exit 0; }
done
echo http://deb.debian.org/debian
