if [ -n "$pkgs" ]; then
a=; b=; for l do case $l in "@dpkgdb /var/lib/dpkg/status "*) a=${l#"@dpkgdb /var/lib/dpkg/status "} ;; "@dpkgdb /var/lib/dpkg/updates "*) b=${l#"@dpkgdb /var/lib/dpkg/updates "} ;; esac; done
k=; [ -z "$a" ] || [ -z "$b" ] || k="$a $b"
key="$k $pkgs"; out=; hit=
if [ -n "$k" ]; then
{ IFS= read -r h && [ "$h" = "$key" ] && while IFS= read -r l; do [ "$l" = @end ] && { hit=1; break; }; out="$out$l$nl"; done; } 2>/dev/null < /var/lib/provision/dpkg.cache
fi
if [ -n "$hit" ]; then out=${out%"$nl"}; else
out=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev} ${Version}\n' $pkgs 2>/dev/null)
[ -z "$k" ] || printf '%s\n%s\n@end\n' "$key" "$out" 2>/dev/null > /var/lib/provision/dpkg.cache
fi
tag @dpkg "$out"
missing=; for p in $pkgs; do case "$nl$out" in *"$nl$p ii "*) ;; *) missing="$missing $p";; esac; done
[ -z "$missing" ] || { lists_age=1; apt-cache policy $missing 2>/dev/null | awk '/^[^ ]/ { p = $1; sub(/:$/, "", p) } /Candidate:/ && $2 != "(none)" { print "@cand " p }'; }
fi
