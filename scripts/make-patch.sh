#!/bin/bash
# Our KSM as a patch series against the pristine 6.12 tree (issue 8):
#
#   1. refresh the overlay (scripts/prepare-source.sh), which also lists the
#      generated edits of upstream files and the files we remove;
#   2. take every path in which the overlay differs from pristine and give
#      it to one patch of scripts/patch-series;
#   3. commit the patches one by one in a scratch git repository that holds
#      the pristine version of those paths only (the diffs, blob ids
#      included, are the same as against the whole tree), with the author,
#      date and Signed-off-by lines of the repo's commits behind each
#      patch, and run git format-patch with a cover letter;
#   4. scripts/checkpatch.pl --strict from the pristine tree on every patch:
#      no ERROR and no WARNING except the types a patch of
#      scripts/patch-series ignores (each one justified in README) and,
#      where a patch adds or removes files, FILE_PATH_CHANGES, once it is
#      checked that our MAINTAINERS entry covers every added file and that
#      no MAINTAINERS line names a removed one.
#
# Output: build/patch/NNNN-*.patch (0000 is the cover letter); checkpatch
# output in build/logs/patch-checkpatch.log.
#
#   make-patch.sh [--no-checkpatch]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CHECKPATCH=1
case ${1:-} in
"") ;;
--no-checkpatch) CHECKPATCH=0 ;;
*) die "usage: $0 [--no-checkpatch]" ;;
esac

SERIES=$REPO/scripts/patch-series
OUT=$BUILD/patch
CPLOG=$LOGS/patch-checkpatch.log
MANIFEST=$BUILD/src/ksm.manifest
ARGS_FOR_LOCK="make patch"
lock patch

"$REPO/scripts/prepare-source.sh" overlay
lock src shared
for f in "$MANIFEST" "$MANIFEST.generated" "$MANIFEST.removed"; do
	[[ -f $f ]] || die "$f missing (scripts/prepare-source.sh overlay should have written it)"
done
VERSION=$(kernel_version "$PRISTINE")

WORK=$(mktemp -d "$BUILD/.patch-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- scripts/patch-series ----------------------------------------------------
# Entry 0 is the cover letter, 1..N the patches, in series order.
SUBJECT=() FILES=() IGNORE=()
parse_series() {
	local n=-1 state='' line key val lineno=0
	while IFS= read -r line || [[ -n $line ]]; do
		lineno=$((lineno + 1))
		[[ $line == '#'* ]] && continue
		case $line in
		'[cover]' | '[patch]')
			if [[ $line == '[cover]' ]]; then
				((n == -1)) || die "$SERIES:$lineno: [cover] must come first"
			else
				((n >= 0)) || die "$SERIES:$lineno: [cover] must come first"
			fi
			n=$((n + 1)) state=header
			SUBJECT[n]='' FILES[n]='' IGNORE[n]=''
			: >"$WORK/body.$n"
			continue
			;;
		esac
		((n >= 0)) || { [[ -z $line ]] && continue; die "$SERIES:$lineno: text before [cover]"; }
		if [[ $state == header ]]; then
			if [[ -z $line ]]; then
				state=body
				continue
			fi
			[[ $line == *:* ]] || die "$SERIES:$lineno: expected 'Key: value' or a blank line"
			key=${line%%:*} val=${line#*:}
			val=${val#"${val%%[! ]*}"}
			case $key in
			Subject) SUBJECT[n]=$val ;;
			Files) ((n > 0)) || die "$SERIES:$lineno: Files: in the cover letter"
				FILES[n]+=" $val" ;;
			Ignore) ((n > 0)) || die "$SERIES:$lineno: Ignore: in the cover letter"
				IGNORE[n]+=" $val" ;;
			*) die "$SERIES:$lineno: unknown key '$key'" ;;
			esac
		else
			printf '%s\n' "$line" >>"$WORK/body.$n"
		fi
	done <"$SERIES"
	((n >= 1)) || die "$SERIES: no [patch] entries"
	local i
	for ((i = 0; i <= n; i++)); do
		[[ -n ${SUBJECT[i]} ]] || die "$SERIES: entry $i has no Subject:"
		((${#SUBJECT[i]} <= 75)) || die "$SERIES: subject longer than 75 characters: ${SUBJECT[i]}"
		# Drop trailing blank lines of the body.
		sed -i -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$WORK/body.$i"
	done
	NENTRIES=$n
}
parse_series

# first_paragraph FILE: the text up to the first blank line.
first_paragraph() {
	awk 'NF == 0 && seen { exit } NF { seen = 1; print }' "$1"
}

# --- what differs from pristine --------------------------------------------
mapfile -t OURS <"$MANIFEST"
mapfile -t GENERATED <"$MANIFEST.generated"
mapfile -t REMOVED <"$MANIFEST.removed"
declare -A IS_OURS=() IS_GENERATED=() STATUS=()
for f in "${OURS[@]}"; do IS_OURS[$f]=1; done
for f in "${GENERATED[@]}"; do IS_GENERATED[$f]=1; done

CHANGED=()
while IFS= read -r f; do
	[[ -n $f ]] || continue
	if [[ -f $OVERLAY/$f ]]; then
		if [[ -f $PRISTINE/$f ]]; then
			cmp -s "$PRISTINE/$f" "$OVERLAY/$f" && continue
			STATUS[$f]=M
		else
			STATUS[$f]=A
		fi
	elif [[ -f $PRISTINE/$f ]]; then
		STATUS[$f]=D
	else
		continue
	fi
	CHANGED+=("$f")
done < <(printf '%s\n' "${OURS[@]}" "${GENERATED[@]}" "${REMOVED[@]}" | sort -u)
((${#CHANGED[@]})) || die "the overlay does not differ from pristine: nothing to send"

# Nothing else may differ: ask rsync (size and mtime; the overlay keeps
# pristine's mtimes) which files of the overlay are not pristine's, and
# compare the content of every one that no list names.
declare -A IN_SERIES=()
for f in "${CHANGED[@]}"; do IN_SERIES[$f]=1; done
stray=()
while IFS= read -r f; do
	f=${f#deleting }
	[[ -z $f || $f == */ || -n ${IN_SERIES[$f]:-} ]] && continue
	[[ -f $PRISTINE/$f && -f $OVERLAY/$f ]] && cmp -s "$PRISTINE/$f" "$OVERLAY/$f" && continue
	stray+=("$f")
done < <(rsync -an --delete --out-format='%n' "$OVERLAY/" "$PRISTINE/")
((${#stray[@]} == 0)) ||
	die "build/src/ksm differs from pristine in files no list of scripts/prepare-source.sh names: ${stray[*]}"

# --- give every changed path to one patch -----------------------------------
# An exact path beats a glob, a longer glob a shorter one.
declare -A OWNER=()
for f in "${CHANGED[@]}"; do
	best=0 best_score=-1 tie=0
	for ((i = 1; i <= NENTRIES; i++)); do
		read -ra globs <<<"${FILES[i]}"
		for g in "${globs[@]}"; do
			# shellcheck disable=SC2053 # $g is a glob
			[[ $f == $g ]] || continue
			if [[ $g == *[\*\?\[]* ]]; then score=${#g}; else score=100000; fi
			if ((score > best_score)); then
				best=$i best_score=$score tie=0
			elif ((score == best_score && i != best)); then
				tie=$i
			fi
		done
	done
	((best > 0)) || die "$f is in no patch of scripts/patch-series (add it to a Files: line)"
	((tie == 0)) || die "$f matches patches $best and $tie of scripts/patch-series equally well"
	OWNER[$f]=$best
done

# paths_of I: the changed paths of entry I, one a line.
paths_of() {
	local f
	for f in "${CHANGED[@]}"; do
		[[ ${OWNER[$f]} == "$1" ]] && echo "$f"
	done
	return 0
}

# Repo files behind a path: our file itself; for MAINTAINERS the repo's
# MAINTAINERS; for any other generated edit or removal, the script that
# makes it.
sources_of() {
	local f
	for f in "$@"; do
		if [[ -n ${IS_OURS[$f]:-} ]]; then
			echo "$f"
		elif [[ $f == MAINTAINERS && -f $REPO/MAINTAINERS ]]; then
			echo MAINTAINERS
		else
			echo scripts/prepare-source.sh
		fi
	done | sort -u
}

# authors_of PATH...: "Name <email>", most commits first, deduplicated.
authors_of() {
	git -C "$REPO" log --format='%aN <%aE>' HEAD -- "$@" 2>/dev/null |
		sort | uniq -c | sort -s -k1,1nr | sed 's/^ *[0-9]* //'
}

FALLBACK_ID=$(git -C "$REPO" var GIT_AUTHOR_IDENT 2>/dev/null | sed 's/ [0-9]* [-+][0-9]*$//') ||
	FALLBACK_ID="KSM team <ksm@localhost>"
HEAD_DATE=$(git -C "$REPO" log -1 --format=%aI HEAD 2>/dev/null) || HEAD_DATE=$(date -Iseconds)

# --- scratch repository -------------------------------------------------------
TREE=$WORK/tree
git init -q -b ksm "$TREE"
G=(git -C "$TREE" -c core.autocrlf=false -c commit.gpgsign=false -c core.hooksPath=/dev/null)
for f in "${CHANGED[@]}"; do
	if [[ -f $PRISTINE/$f ]]; then
		mkdir -p "$TREE/$(dirname "$f")"
		cp --preserve=mode "$PRISTINE/$f" "$TREE/$f"
	fi
done
"${G[@]}" add -A
GIT_AUTHOR_NAME=pristine GIT_AUTHOR_EMAIL=pristine@localhost GIT_AUTHOR_DATE=$HEAD_DATE \
	GIT_COMMITTER_NAME=pristine GIT_COMMITTER_EMAIL=pristine@localhost GIT_COMMITTER_DATE=$HEAD_DATE \
	"${G[@]}" commit -q --allow-empty -m "Linux $VERSION (Debian linux-source-6.12), touched files only"
BASE=$("${G[@]}" rev-parse HEAD)

PATCHES=() # entries that got at least one path, in series order
for ((i = 1; i <= NENTRIES; i++)); do
	mapfile -t paths < <(paths_of "$i")
	if ((${#paths[@]} == 0)); then
		info "patch-series: '${SUBJECT[i]}' changes nothing, left out"
		continue
	fi
	PATCHES+=("$i")
	for f in "${paths[@]}"; do
		if [[ ${STATUS[$f]} == D ]]; then
			"${G[@]}" rm -q -- "$f"
		else
			mkdir -p "$TREE/$(dirname "$f")"
			rm -f "$TREE/$f"
			cp --preserve=mode "$OVERLAY/$f" "$TREE/$f"
			"${G[@]}" add -- "$f"
		fi
		# A generated edit should be explained in its commit message.
		if [[ -n ${IS_GENERATED[$f]:-} ]] && ! grep -qF "$f" "$WORK/body.$i"; then
			echo "patch-series: note: '${SUBJECT[i]}' changes $f without mentioning it in its message"
		fi
	done
	mapfile -t srcs < <(sources_of "${paths[@]}")
	mapfile -t authors < <(authors_of "${srcs[@]}")
	((${#authors[@]})) || authors=("$FALLBACK_ID")
	date=$(git -C "$REPO" log -1 --format=%aI HEAD -- "${srcs[@]}" 2>/dev/null) || true
	[[ -n $date ]] || date=$HEAD_DATE
	{
		echo "${SUBJECT[i]}"
		echo
		cat "$WORK/body.$i"
		echo
		printf 'Signed-off-by: %s\n' "${authors[@]}"
	} >"$WORK/msg.$i"
	name=${authors[0]% <*} email=${authors[0]##*<}
	email=${email%>}
	GIT_AUTHOR_NAME=$name GIT_AUTHOR_EMAIL=$email GIT_AUTHOR_DATE=$date \
		GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$date \
		"${G[@]}" commit -q --allow-empty -F "$WORK/msg.$i"
done
NP=${#PATCHES[@]}

# --- cover letter ----------------------------------------------------------
# "make bench" figures: build/bench/results.csv if there is one, else the
# "Latest results" section of README.
bench_figures() {
	python3 - "$BUILD/bench/results.csv" "$REPO/README" <<'EOF'
import csv, os, sys, time

csv_path, readme = sys.argv[1], sys.argv[2]
if os.path.exists(csv_path):
    rows = list(csv.DictReader(open(csv_path)))
    if rows:
        r0 = rows[0]
        when = time.strftime("%Y-%m-%d", time.gmtime(os.path.getmtime(csv_path)))
        quick = " (BENCH_QUICK=1: small sizes, one repetition)" if r0.get("quick") == "1" else ""
        print(f'"make bench" of {when}{quick}: stock {r0.get("stock_kernel", "?")} against ours,')
        print(f'accelerator {r0.get("accel", "?")}; medians, "ratio" is ours over stock.')
        print()
        w = 38
        print(f'  {"":<{w}} {"stock":>9} {"ours":>9} {"ratio":>7}  target')
        for r in rows:
            if not (r["stock_median"] or r["ours_median"]):
                continue
            label = r["figure"] + (f' ({r["unit"]})' if r["unit"] else "")
            tgt = r["target"] + (f' {r["status"]}' if r["status"] and r["target"] else "")
            vals = (f'{r["stock_median"]:>9} {r["ours_median"]:>9} '
                    f'{r["ratio_ours_stock"]:>7}  {tgt}').rstrip()
            if len(label) > w:
                print(f"  {label}")
                label = ""
            print(f"  {label:<{w}} {vals}")
        sys.exit(0)

lines = open(readme).read().split("\n")
start = None
for i, l in enumerate(lines[:-1]):
    if l.strip() == "Latest results" and set(lines[i + 1].strip()) == {"-"}:
        start = i + 2
        break
if start is None:
    print("(no benchmark figures: no build/bench/results.csv, no \"Latest results\" in README)")
    sys.exit(0)
end = len(lines)
for i in range(start, len(lines) - 1):
    if lines[i].strip() and lines[i + 1].strip() and set(lines[i + 1].strip()) <= {"-", "="}:
        end = i
        break
text = "\n".join(lines[start:end]).strip("\n")
# The whole section, less the harness usage at its end ("Other knobs: ...",
# up to the end of that paragraph).
i = text.find("Other knobs:")
if i >= 0:
    j = text.find("\n\n", i)
    text = (text[:i].rstrip() + ("" if j < 0 else text[j:])).rstrip()
print(text)
EOF
}

{
	echo "${SUBJECT[0]}"
	echo
	cat "$WORK/body.0"
	echo
	echo "The patches:"
	k=0
	for i in "${PATCHES[@]}"; do
		k=$((k + 1))
		echo
		echo "$k. ${SUBJECT[i]}"
		echo
		first_paragraph "$WORK/body.$i" | sed 's/^/   /'
	done
	echo
	echo "Benchmarks (make bench: our kernel against stock $VERSION, same"
	echo "configuration, booted alternately under QEMU):"
	echo
	bench_figures
} >"$WORK/cover"
"${G[@]}" config branch.ksm.description "$(cat "$WORK/cover")"

rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
# The cover letter is "from" whoever has the most commits behind the series.
mapfile -t srcs < <(sources_of "${CHANGED[@]}")
mapfile -t authors < <(authors_of "${srcs[@]}")
((${#authors[@]})) || authors=("$FALLBACK_ID")
name=${authors[0]% <*} email=${authors[0]##*<}
email=${email%>}
GIT_COMMITTER_NAME=$name GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$HEAD_DATE \
	"${G[@]}" format-patch -q --cover-letter --cover-from-description=subject \
	--zero-commit --numbered -o "$OUT.tmp" "$BASE..HEAD" >/dev/null
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"

mapfile -t FILES_OUT < <(cd "$OUT" && ls -- *.patch)
((${#FILES_OUT[@]} == NP + 1)) || die "git format-patch wrote ${#FILES_OUT[@]} files for $NP patches"
info "patch series against $VERSION in build/patch/ ($NP patches and a cover letter):"
k=0
for p in "${FILES_OUT[@]}"; do
	if [[ $p == 0000-* ]]; then
		echo "  build/patch/$p"
		continue
	fi
	k=$((k + 1))
	stat=$("${G[@]}" show --shortstat --format= "HEAD~$((NP - k))" | sed 's/^ *//')
	echo "  build/patch/$p  ($stat)"
done

((CHECKPATCH)) || exit 0

# --- checkpatch ------------------------------------------------------------
# maintainers_cover PATH: does an F: line of our MAINTAINERS entry match it?
# ("dir/" matches everything below dir, a glob only within its directory.)
mapfile -t FPATS < <(sed -n 's/^F:[[:space:]]*//p' "$REPO/MAINTAINERS" 2>/dev/null)
maintainers_cover() {
	local pat
	for pat in "${FPATS[@]}"; do
		if [[ $pat == */ ]]; then
			[[ $1 == "$pat"* ]] && return 0
		elif [[ $(dirname "$1") == "$(dirname "$pat")" ]]; then
			# shellcheck disable=SC2053 # a glob
			[[ $(basename "$1") == $(basename "$pat") ]] && return 0
		fi
	done
	return 1
}

info "checkpatch --strict on $NP patches (log: build/logs/patch-checkpatch.log)"
: >"$CPLOG"
# Run checkpatch on up to $NPROC patches at a time, then judge in order.
IGN=()
running=0 k=0
for i in "${PATCHES[@]}"; do
	k=$((k + 1))
	read -ra ignore <<<"${IGNORE[i]}"
	mapfile -t paths < <(paths_of "$i")
	adds=0 maint=0 uncovered=()
	for f in "${paths[@]}"; do
		[[ $f == MAINTAINERS ]] && maint=1
		case ${STATUS[$f]} in
		A)
			adds=1
			maintainers_cover "$f" || uncovered+=("$f")
			;;
		D)
			adds=1
			grep -qxF "F:	$f" "$OVERLAY/MAINTAINERS" && uncovered+=("$f (still named in MAINTAINERS)")
			;;
		esac
	done
	# checkpatch asks about MAINTAINERS whenever a patch adds or removes a
	# file and does not touch MAINTAINERS itself; the question is answered
	# here.
	if ((adds && !maint)); then
		if ((${#uncovered[@]} == 0)); then
			ignore+=(FILE_PATH_CHANGES)
		else
			echo "${FILES_OUT[k]}: not covered by our MAINTAINERS entry: ${uncovered[*]}"
		fi
	fi
	IGN[k]=${ignore[*]:-}
	args=(--strict --show-types --color=never)
	((${#ignore[@]})) && args+=(--ignore "$(
		IFS=,
		echo "${ignore[*]}"
	)")
	if ((running >= NPROC)); then
		wait -n
		running=$((running - 1))
	fi
	# From a scratch directory: checkpatch leaves a cache file in its
	# working directory, and the pristine tree is never written to.
	(
		cd "$WORK" || exit
		# Non-zero on any message; the verdict is read from the output.
		perl "$PRISTINE/scripts/checkpatch.pl" --root="$PRISTINE" "${args[@]}" \
			"$OUT/${FILES_OUT[k]}" >"$WORK/checkpatch.$k" 2>&1 || true
	) &
	running=$((running + 1))
done
wait

bad=0
for ((k = 1; k <= NP; k++)); do
	out=$(cat "$WORK/checkpatch.$k")
	{
		echo "===== ${FILES_OUT[k]} (ignored: ${IGN[k]:-none})"
		echo "$out"
	} >>"$CPLOG"
	total=$(grep -m1 '^total:' <<<"$out" || true)
	[[ -n $total ]] || {
		echo "$out" | tail -n 20
		die "checkpatch gave no verdict on ${FILES_OUT[k]}"
	}
	read -r errors warnings checks < <(sed -E 's/^total: ([0-9]+) errors, ([0-9]+) warnings, ([0-9]+) checks.*/\1 \2 \3/' <<<"$total")
	printf '  %-62s %s errors, %s warnings, %s checks%s\n' "${FILES_OUT[k]:0:62}" \
		"$errors" "$warnings" "$checks" "${IGN[k]:+ (ignored: ${IGN[k]})}"
	if ((errors + warnings)); then
		{ grep -E '^(ERROR|WARNING):' -A3 <<<"$out" || true; } | sed -n '1,60p'
		bad=1
	fi
done
((bad == 0)) || die "checkpatch: errors or warnings in the series (log: build/logs/patch-checkpatch.log)"
info "checkpatch: no errors or warnings in $NP patches"
