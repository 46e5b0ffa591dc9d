#!/bin/bash
# Build one kernel variant out of tree.
#
#   build-kernel.sh ksm|ksm-debug|ksm-kcsan|stock|stock-debug|stock-kcsan
#
# Products: build/<variant>/{bzImage,kernel.config,version}, and for our
# variants build/<variant>/ksm-symbols (every function mm/ksm/ defines,
# which scripts/report.py uses to tell our data races from others)
# Object dir: build/obj/<variant>; log: build/logs/<variant>-build.log
# KSM_SRC_TREE=<dir>: build that tree instead of build/src/ksm or pristine
# (the config is still made from config/*.config for VARIANT).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VARIANT=${1:?usage: $0 ksm|ksm-debug|ksm-kcsan|stock|stock-debug|stock-kcsan}
is_ours "$VARIANT" || true # validates the name
ARGS_FOR_LOCK=$VARIANT
lock "obj-$VARIANT"

if [[ -n ${KSM_SRC_TREE:-} ]]; then
	# A tree the caller prepared and owns (scripts/patch-test.sh: a fresh
	# extract with our patch series applied); used as it is.
	[[ -f $KSM_SRC_TREE/Makefile ]] || die "KSM_SRC_TREE=$KSM_SRC_TREE is not a kernel tree"
	TREE=$KSM_SRC_TREE
else
	if is_ours "$VARIANT"; then
		"$REPO/scripts/prepare-source.sh" overlay
	else
		"$REPO/scripts/prepare-source.sh" pristine
	fi
	# Keep the source tree stable while we configure and build from it.
	is_ours "$VARIANT" && lock src shared
	TREE=$(src_tree "$VARIANT")
fi
OBJ=$BUILD/obj/$VARIANT
OUT=$BUILD/$VARIANT
LOG=$LOGS/$VARIANT-build.log
mkdir -p "$OBJ" "$OUT"

VERSION=$(kernel_version "$TREE")
info "kernel $VERSION, variant $VARIANT ($(basename "$TREE") tree)"
echo "$VERSION" >"$OUT/version.tmp"
mv "$OUT/version.tmp" "$OUT/version"

# ccache: persistent cache, bounded size.
ccache --max-size=5G >/dev/null 2>&1 || true
# Run kbuild in a clean make environment: flags inherited from the top-level
# make (MAKEFLAGS with its command-line variables, MAKELEVEL, V, ...) would
# change tools/objtool's build, relink objtool and so rebuild every object.
KMAKE=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u GNUMAKEFLAGS
	-u V -u ONLY -u STOCK -u DEBUG
	nice make -C "$TREE" O="$OBJ" CC="ccache gcc" HOSTCC=gcc
	KBUILD_BUILD_USER=ksm KBUILD_BUILD_HOST=harness)

# --- configuration -------------------------------------------------------
FRAGS=("$REPO/config/lean.config")
is_debug "$VARIANT" && FRAGS+=("$REPO/config/debug.config")
is_kcsan "$VARIANT" && FRAGS+=("$REPO/config/kcsan.config")
OPTIONAL=() # fragments whose options may not exist in Kconfig (yet)
if is_ours "$VARIANT"; then
	OPTIONAL+=("$REPO/config/ksm-ours.config")
fi

# Our KUnit suites: every KSM_*KUNIT* option declared in our Kconfig files.
our_kconfigs() {
	is_ours "$VARIANT" || return 0
	{
		echo "$TREE/Kconfig.ksm"
		find "$TREE/mm/ksm" -name 'Kconfig*' -type f 2>/dev/null
	} | sort
}
mapfile -t KCONFIGS < <(our_kconfigs)
auto_kunit() {
	local k
	for k in "${KCONFIGS[@]}"; do
		# (a tree without Kconfig.ksm, e.g. early in the patch series, has none)
		if [[ -f $k ]]; then
			sed -n 's/^[[:space:]]*config[[:space:]]\{1,\}\(KSM_[A-Z0-9_]*KUNIT[A-Z0-9_]*\)[[:space:]]*$/\1/p' "$k"
		fi
	done | sort -u | sed 's/^\(.*\)$/CONFIG_\1=y/'
}

FRAGMENT=$OBJ/harness-fragment.config
{
	for f in "${FRAGS[@]}" "${OPTIONAL[@]}"; do
		echo "# --- $(basename "$f")"
		cat "$f"
	done
	echo "# --- auto-detected KUnit options of ours"
	auto_kunit
} >"$FRAGMENT.new"

HASH=$({
	hash_files "$FRAGMENT.new" "${KCONFIGS[@]}" "$REPO/scripts/build-kernel.sh"
	echo "$VERSION"
} | sha256sum | cut -d' ' -f1)
HASHFILE=$OBJ/.harness-config-hash

# symbol_exists SYM: is "config SYM" declared anywhere in the tree's Kconfig?
symbol_exists() {
	grep -rqs --include='Kconfig*' -E "^[[:space:]]*(menu)?config[[:space:]]+$1[[:space:]]*$" "$TREE"
}

# check_fragment FILE OPTIONAL: every option FILE requests must be in .config.
# With OPTIONAL=1, options whose symbol is not declared in Kconfig are skipped.
check_fragment() {
	local cfg=$OBJ/.config bad=0 line sym want got
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
			got=$(sed -n "s/^$sym=//p" "$cfg")
			if [[ $got != "$want" ]]; then
				if [[ $2 == 1 ]] && ! symbol_exists "${sym#CONFIG_}"; then
					echo "config: note: $sym is not declared in Kconfig (yet); skipped"
					continue
				fi
				echo "config: MISSING $sym=$want (got: ${got:-not set}) [$(basename "$1")]"
				bad=1
			fi
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
			sym=${BASH_REMATCH[1]}
			if grep -q "^$sym=" "$cfg"; then
				echo "config: UNWANTED $(grep "^$sym=" "$cfg") [$(basename "$1")]"
				bad=1
			fi
		fi
	done <"$1"
	return $bad
}

verify_config() {
	local bad=0 f
	for f in "${FRAGS[@]}"; do
		check_fragment "$f" 0 || bad=1
	done
	for f in "${OPTIONAL[@]}"; do
		check_fragment "$f" 1 || bad=1
	done
	auto_kunit >"$OBJ/harness-auto.config"
	check_fragment "$OBJ/harness-auto.config" 0 || bad=1
	return $bad
}

if [[ ! -f $OBJ/.config || ! -f $HASHFILE || $(cat "$HASHFILE") != "$HASH" ]]; then
	[[ -f $OBJ/.config ]] && info "config inputs changed: reconfiguring build/obj/$VARIANT"
	mv "$FRAGMENT.new" "$FRAGMENT"
	rm -f "$HASHFILE"
	if ! { KCONFIG_ALLCONFIG=$FRAGMENT "${KMAKE[@]}" allnoconfig &&
		"${KMAKE[@]}" olddefconfig; } >"$LOGS/$VARIANT-config.log" 2>&1; then
		tail -n 30 "$LOGS/$VARIANT-config.log" >&2
		die "kernel configuration failed for $VARIANT (log: build/logs/$VARIANT-config.log)"
	fi
	if ! verify_config; then
		die "kernel config for $VARIANT lacks options requested in config/*.config (typo or unmet dependency; see above)"
	fi
	echo "$HASH" >"$HASHFILE"
else
	rm -f "$FRAGMENT.new"
fi

# --- build -----------------------------------------------------------------
info "building $VARIANT with -j$NPROC (log: build/logs/$VARIANT-build.log)"
start=$SECONDS
if ! "${KMAKE[@]}" -j"$NPROC" bzImage >"$LOG" 2>&1; then
	echo "----- last 30 lines of build/logs/$VARIANT-build.log -----" >&2
	tail -n 30 "$LOG" >&2
	echo "-----" >&2
	die "kernel build failed for $VARIANT (log: build/logs/$VARIANT-build.log)"
fi
# Replace atomically: a concurrent boot may be reading the old one.
for pair in "arch/x86/boot/bzImage:bzImage" ".config:kernel.config"; do
	if ! cmp -s "$OBJ/${pair%%:*}" "$OUT/${pair#*:}"; then
		cp "$OBJ/${pair%%:*}" "$OUT/${pair#*:}.tmp"
		mv "$OUT/${pair#*:}.tmp" "$OUT/${pair#*:}"
	fi
done
# The functions of mm/ksm/ (static ones too), one per line.
if is_ours "$VARIANT"; then
	find "$OBJ/mm/ksm" -name '*.o' ! -name '*.mod.o' -print0 2>/dev/null |
		xargs -0 -r nm --defined-only 2>/dev/null |
		awk '$2 ~ /^[tT]$/ { sub(/\..*/, "", $3); print $3 }' |
		sort -u >"$OUT/ksm-symbols.tmp"
	mv "$OUT/ksm-symbols.tmp" "$OUT/ksm-symbols"
fi
info "built build/$VARIANT/bzImage ($VERSION) in $((SECONDS - start))s"
