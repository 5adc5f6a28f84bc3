[ -z "$found" ] || printf '%s\n' "$found"
IFS=$nl; set -f; set -- $found; unset IFS; set +f
if [ -n "$want" ]; then
get=$(printf '%s\n@@found\n%s\n@@sums\n%s\n' "$want" "$found" "$sums" | awk '
$0 == "@@found" { s = 1; next }
$0 == "@@sums" { s = 2; next }
s == 0 && $0 != "" { n++; h[n] = $1; p[n] = substr($0, length($1) + 2); next }
s == 1 { nf++; f[nf] = $0; next }
s == 2 { ns++; m[ns] = $0; next }
END {
j = 1; k = 1
for (i = 1; i <= n; i++) {
t = ""; x = ""
if (j <= nf && index(f[j], "@path " p[i] " ") == 1 && substr(f[j], length(p[i]) + 9, 1) == " ") { t = substr(f[j], length(p[i]) + 8, 1); j++ }
if (k <= ns && substr(m[k], 67) == p[i]) { x = substr(m[k], 1, 64); k++ }
if (t == "f" && h[i] != "+" && x != h[i]) print p[i]
}
}')
[ -z "$get" ] || echo "@files $(printf '%s\n' "$get" | tar -cPf - --no-recursion --hard-dereference --verbatim-files-from -T - 2>/dev/null | gzip -1c | base64 -w0)"
fi
