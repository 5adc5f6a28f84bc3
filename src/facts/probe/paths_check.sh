[ -z "$found" ] || printf '%s\n' "$found"
IFS=$nl; set -f; set -- $found; unset IFS; set +f
if [ -n "$want" ]; then
cr=''
while read -r h p; do
[ -n "$p" ] || continue
z=; case ${1-} in "@path $p "?" "*) x=${1#"@path $p "}; shift; case $x in "f "*) x=${x#f * * * }; z=${x%% *} ;; esac ;; esac
m=; l=${sums%%"$nl"*}
if [ -n "$sums" ] && [ "${l#*  }" = "$p" ]; then m=${l%%  *}; case $sums in *"$nl"*) sums=${sums#*"$nl"} ;; *) sums= ;; esac; fi
[ "$h" != + ] && [ -f "$p" ] && [ ! -L "$p" ] || continue
[ "$m" = "$h" ] && continue
if [ "$h" = - ]; then
n=0; e=1; t=
while :; do l=; IFS= read -r l || { n=$((n + ${#l})); [ -z "$l" ] || { e=0; t="$t@t $l$nl"; }; break; }; n=$((n + ${#l} + 1)); t="$t@t $l$nl"; case $l in *"$cr"*) n=-1; break ;; esac; done < "$p"
if [ "$n" = "$z" ]; then
printf '@text %s\n%s@text-end %s\n' "$p" "$t" "$e"
continue
fi
fi
echo "@content $p $(base64 -w0 < "$p")"
done <<PROVISION_PATHS
$want
PROVISION_PATHS
fi
