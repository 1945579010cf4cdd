#!/usr/bin/env bash
# Check the system packages one section of system-packages.txt lists (build, or test = build + test).
# As root, install the missing ones with apt-get; otherwise stop with the exact command to run.
#   scripts/system-deps.sh build|test [--dry-run]
# PRESSROOM_SYSTEM_PACKAGES=FILE reads another list (the suite uses it to test this script).
set -euo pipefail

section=${1:?usage: system-deps.sh build|test [--dry-run]}
dry_run=${2:-}
list=${PRESSROOM_SYSTEM_PACKAGES:-$(dirname "$0")/../system-packages.txt}

if [[ ! -r $list ]]; then
  echo "system-deps.sh: cannot read the package list $list" >&2
  exit 2
fi

case $section in
  build) wanted="build" ;;
  test) wanted="build test" ;;
  *) echo "system-deps.sh: unknown section '$section' (build or test)" >&2; exit 2 ;;
esac

# Print "package<TAB>check" for every entry of the wanted sections.
entries() {
  local current="" line pkg check
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$line")
    [[ -z $line ]] && continue
    if [[ $line =~ ^\[(.*)\]$ ]]; then current=${BASH_REMATCH[1]}; continue; fi
    [[ " $wanted " == *" $current "* ]] || continue
    pkg=${line%%[[:space:]]*}
    check=""
    [[ $line == *[[:space:]]* ]] && check=$(sed -E 's/^[[:space:]]+//' <<<"${line#"$pkg"}")
    printf '%s\t%s\n' "$pkg" "$check"
  done <"$list"
}

if ! command -v dpkg >/dev/null 2>&1; then
  echo "Not a Debian/Ubuntu system (no dpkg): make sure the equivalents of these are installed:"
  entries | cut -f1 | tr '\n' ' '; echo
  exit 0
fi

missing=()
total=0
while IFS=$'\t' read -r pkg check; do
  total=$((total + 1))
  if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]]; then
    continue
  fi
  if [[ -n $check ]] && bash -c "$check" >/dev/null 2>&1; then
    continue
  fi
  missing+=("$pkg")
done < <(entries)

if ((${#missing[@]} == 0)); then
  echo "System packages ($section): all $total present."
  exit 0
fi

command_line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $dry_run == --dry-run ]]; then
  echo "System packages ($section): missing ${missing[*]}"
  echo "Would run: apt-get update && $command_line"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "System packages ($section): missing ${missing[*]}" >&2
  echo "Install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo $command_line" >&2
  exit 1
fi
echo "System packages ($section): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
$command_line
echo "System packages ($section): installed ${missing[*]}"
