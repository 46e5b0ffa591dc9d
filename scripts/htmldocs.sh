#!/bin/bash
# Render our documentation with the kernel's own Sphinx setup (issues 7
# and 8): Documentation/conf.py, the kernel-doc extension and
# scripts/kernel-doc of the overlay tree, building only the two books that
# hold our files:
#
#   make -C build/src/ksm O=build/obj/docs SPHINXDIRS="admin-guide/mm mm" htmldocs
#
# Fails on any Sphinx or kernel-doc warning or error that names one of our
# files (Documentation/{admin-guide/,}mm/ksm.rst, mm/ksm/*,
# include/linux/ksm.h).  Upstream's own pages in those books warn about
# cross-references to books not built here; those are only counted.
#
# Every run starts from an empty output directory: Sphinx only reports
# the warnings of the pages it re-reads, so an incremental build could
# pass with a warning still in place.
#
# Output: build/obj/docs/Documentation/output/{admin-guide/mm,mm}/ksm.html
# Log:    build/logs/htmldocs.log
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v sphinx-build >/dev/null ||
	die "sphinx-build is not installed (make deps; Debian package python3-sphinx)"

"$REPO/scripts/prepare-source.sh" overlay >/dev/null
ARGS_FOR_LOCK=htmldocs
lock obj-docs
lock src shared

OBJ=$BUILD/obj/docs
OUT=$OBJ/Documentation/output
LOG=$LOGS/htmldocs.log
BOOKS="admin-guide/mm mm"
start=$SECONDS

info "htmldocs: Sphinx $(sphinx-build --version 2>&1 | awk '{print $NF}'), books: $BOOKS"
rm -rf "$OUT"
mkdir -p "$OBJ"
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u V -u O \
	nice make -C "$OVERLAY" O="$OBJ" SPHINXDIRS="$BOOKS" htmldocs \
	>"$LOG" 2>&1; then
	tail -n 30 "$LOG"
	die "htmldocs: the Sphinx build failed (log: build/logs/htmldocs.log)"
fi

OURS='Documentation/(admin-guide/)?mm/ksm\.rst|mm/ksm/|include/linux/ksm\.h'
PROBLEM='(WARNING|ERROR|SEVERE|CRITICAL)|(warning|error):'
if grep -E "($OURS)" "$LOG" | grep -qE "$PROBLEM"; then
	# Show each message with its continuation lines (docutils quotes the
	# offending source below the message), up to the next message.
	awk -v ours="$OURS" -v problem="$PROBLEM" '
		$0 ~ ours && $0 ~ problem { show = 1; print; next }
		/^\// || /^make/ || /^Using / || /^source directory/ { show = 0 }
		show' "$LOG"
	die "htmldocs: warnings in our documentation (log: build/logs/htmldocs.log)"
fi

for page in admin-guide/mm/ksm.html mm/ksm.html; do
	[[ -s $OUT/$page ]] || die "htmldocs: $page was not generated (log: build/logs/htmldocs.log)"
done
# Every kernel-doc directive produced something.
grep -q 'ksm_rmap_item' "$OUT/mm/ksm.html" &&
	grep -q 'outermost first' "$OUT/mm/ksm.html" ||
	die "htmldocs: kernel-doc content missing from mm/ksm.html (log: build/logs/htmldocs.log)"

others=$(grep -cE "$PROBLEM" "$LOG" || true)
info "htmldocs: clean in $((SECONDS - start))s (upstream pages: $others warnings, not ours);" \
	"open build/obj/docs/Documentation/output/admin-guide/mm/ksm.html"
