# provision's host-side library. The controller sends this file with a generated program at its
# end (calls of the functions below, every argument quoted) and runs it detached from the SSH
# connection (setsid, output to a log the controller follows), so a dropped connection or a killed
# controller never cuts a change in half. The program takes the host lock first: the process tree
# that changes the host holds it until the last change is done.
#
# State, all under $P: lock (flock), lock.info, pending (handlers still to run), seq, current (the
# newest generation), attention (why the host needs a look), guard (the token of a generation
# waiting for a new SSH connection to confirm it), generations/<id>/{info,status,swapped,
# files/,services,ran,steps/<name>}, stage/<run>/ (the staged tree validators read), run/ (scripts, logs).
#
# Failing: every failure goes through `fail`. Before this run opens its generation (`changing`)
# nothing was changed and it only reports; once a generation is open, `fail` undoes it first
# (`abort`), so no failure can leave a host half-swapped.

set -u
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive
umask 022
P=/var/lib/provision
TAB=$(printf '\t')
G=
B=
S=
R=
KIND=
POLICY_CREATED=
# Paths and services a rollback could not put back (kept in memory: on a full disk the stage
# cannot hold a list).
FAILED=
# Set once the open generation's outcome is recorded: a failure after that only reports.
SETTLED=

fail() {
    [ -z "$B" ] || [ -n "$SETTLED" ] || abort "$*"
    ev_fail "$*"
    exit 1
}

# Tool output for the controller, the last 40 lines.
show() { printf '%s\n' "$1" | tail -n 40 | while IFS= read -r l; do ev_out "$l"; done; }

on_exit() {
    rm -f "$P/lock.info"
    [ -z "$POLICY_CREATED" ] || rm -f /usr/sbin/policy-rc.d
    [ -z "$S" ] || rm -rf "$S" "$S".*
    rm -f "$RUN".p[0-9]*
}

# payload N OFFSET LENGTH: the Nth data block sent after the end of this script (base64), decoded
# into $RUN.pN; read before the script deletes itself.
payload() {
    tail -c "+$2" "$RUN.sh" | head -c "$3" | base64 -d > "$RUN.p$1" || fail "cannot read the data sent with the script"
}

# take_lock WAIT WHO: the host lock, for this process and its children. WAIT seconds (0: refuse at
# once when another apply holds it).
take_lock() {
    mkdir -p "$P/generations" "$P/stage" "$P/run" && chmod 700 "$P" || fail "cannot create $P"
    exec 9>>"$P/lock"
    if [ "$1" = 0 ]; then flock -n 9; else flock -w "$1" 9; fi || {
        who=
        { read -r pid who < "$P/lock.info"; } 2> /dev/null
        ev_busy "$who"
        exit 3
    }
    # The pid first: the facts probe tells a held lock by this process being alive, without
    # touching the lock itself (a probe that tried it would hold it for a moment and could make a
    # real run starting then refuse).
    printf '%s %s\n' "$$" "$2" > "$P/lock.info"
    S="$P/stage/$(basename "$RUN")"
    R="$S/root"
    trap on_exit EXIT
    trap 'exit 130' INT TERM HUP
    clean_leftovers
}

# What a run that was killed left behind: its stage, the policy-rc.d it put in place, its script
# (which held secrets), and a generation it did not finish.
clean_leftovers() {
    rm -rf "$P"/stage/*
    if [ -f /usr/sbin/policy-rc.d ] && grep -q '^# provision: no service starts' /usr/sbin/policy-rc.d; then
        rm -f /usr/sbin/policy-rc.d
    fi
    for f in "$P"/run/*.sh "$P"/run/*.p[0-9]*; do
        case "$f" in "${RUN:-}".*) continue ;; esac
        [ -e "$f" ] && rm -f "$f"
    done
    ls -1t "$P"/run/*.log 2>/dev/null | tail -n +11 | while IFS= read -r f; do rm -f "$f" "${f%.log}.pid"; done
    for g in "$P"/generations/*; do
        [ -f "$g/status" ] || continue
        read -r st < "$g/status"
        [ "$st" = applying ] && echo interrupted > "$g/status"
    done
    return 0
}

# expect_current GEN: refuses when the host's newest generation is not the one the plan saw.
expect_current() {
    now=
    [ -f "$P/current" ] && read -r now < "$P/current"
    [ "$now" = "$1" ] \
        || refuse "the host was changed since the plan was made: its newest generation is ${now:-none}, the plan was made at ${1:-none}"
}

# digest_of PATH KIND: sha256:HEX, or keyed:HEX (with the host's key) for a file holding a secret.
digest_of() {
    h=$(sha256sum < "$1") || return 1
    h=${h%% *}
    if [ "$2" = keyed ]; then
        k=
        read -r k < "$P/plan.key"
        [ -n "$k" ] || return 1
        h=$(printf '%s%s' "$k" "$h" | sha256sum)
        h=${h%% *}
    fi
    echo "$2:$h"
}

# refuse REASON: the host is not as the run needs it; nothing was changed.
refuse() { ev_stale "$*"; exit 4; }
stale() { refuse "$1 changed since it was planned; nothing was changed, plan again"; }

# mode_owner PATH: "MODE USER:GROUP" as the probe's find names them: an owner or group with no name
# on the host (a uid left by a removed user) by its number, which chown takes back; stat's %U
# would say UNKNOWN, and a path the plan saw as owned by 1234 would look changed forever.
mode_owner() {
    set -- $(stat -c '%a %U %G %u %g' "$1") || return 1
    [ "$2" != UNKNOWN ] || set -- "$1" "$4" "$3" "$4" "$5"
    [ "$3" != UNKNOWN ] || set -- "$1" "$2" "$5" "$4" "$5"
    echo "$1 $2:$3"
}

expect_absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || stale "$1"; }
expect_file() { # PATH DIGEST MODE OWNER
    [ -f "$1" ] && [ ! -L "$1" ] && [ "$(digest_of "$1" "${2%%:*}")" = "$2" ] \
        && [ "$(mode_owner "$1")" = "$3 $4" ] || stale "$1"
}
expect_dir() { # PATH MODE OWNER
    [ -d "$1" ] && [ ! -L "$1" ] && [ "$(mode_owner "$1")" = "$2 $3" ] || stale "$1"
}
expect_link() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ] || stale "$1"; }
expect_other() { [ -e "$1" ] || stale "$1"; }

# install_packages UPDATE PKG...: one apt transaction. Packages must not start their services with
# stock configs: provision starts them once the validated configs are live. apt and dpkg do not get
# the lock's descriptor (9): a daemon a maintainer script starts would hold the host lock for life.
install_packages() {
    if [ "$1" = update ]; then
        out=$(apt-get update -q --error-on=any -o DPkg::Lock::Timeout=300 2>&1 9>&-) || { show "$out"; fail "apt-get update failed"; }
    fi
    shift
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# provision: no service starts during its package installs\nexit 101\n' > /usr/sbin/policy-rc.d \
            && chmod 755 /usr/sbin/policy-rc.d && POLICY_CREATED=1
    fi
    recover_dpkg
    out=$(apt-get install -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "$@" 2>&1 9>&-)
    rc=$?
    [ -z "$POLICY_CREATED" ] || { rm -f /usr/sbin/policy-rc.d; POLICY_CREATED=; }
    [ $rc = 0 ] || { show "$out"; fail "apt-get install failed"; }
}

# recover_dpkg: a dpkg killed half-way (the host crashed, or a run was killed during its install)
# leaves its journal behind, and apt then refuses every install until someone runs
# `dpkg --configure -a`. That is all apt asks of a human, so the run does it (with policy-rc.d in
# place, and waiting like apt for a dpkg lock held by another frontend).
recover_dpkg() {
    ls /var/lib/dpkg/updates 2> /dev/null | grep -qx '[0-9][0-9]*' || return 0
    ev_note "dpkg was interrupted earlier: running dpkg --configure -a"
    n=0
    until out=$(dpkg --force-confdef --force-confold --configure -a 2>&1 9>&-); do
        case "$out" in
            *lock*) if [ $n -lt 150 ]; then n=$((n + 1)); sleep 2; continue; fi ;;
        esac
        show "$out"
        fail "dpkg was interrupted earlier, and dpkg --configure -a failed"
    done
}

# account NAME HOME GECOS: a system user NAME with a group of its own, no login shell, HOME (where
# it works) not created. Made after the packages and before the stage: files owned by it are put in
# place with install -o, and configs naming it (a PHP-FPM pool's user) are validated. A rollback
# leaves it, as it leaves packages. Provision's own (its GECOS starts with provision's mark: made
# since the plan) is left as it is; any other user or group of that name fails the run before
# anything is staged.
account() {
    if entry=$(getent passwd "$1"); then
        gecos=${entry#*:*:*:*:}
        case "${gecos%%:*}" in "[provision] "*) return 0 ;; esac
        fail "user $1 exists already and provision did not make it; nothing was staged"
    fi
    ! getent group "$1" > /dev/null \
        || fail "group $1 exists already without a user $1, and provision did not make it; nothing was staged"
    out=$(useradd --system --user-group --no-create-home --home-dir "$2" --shell /usr/sbin/nologin \
        --comment "$3" "$1" 2>&1 9>&-) || { show "$out"; fail "cannot create user $1; nothing was staged"; }
    ev_did "create user $1 (group $1)"
}

# The stage: a copy of the live config dirs the validators read, with the new files laid over it.
stage_begin() {
    export R
    mkdir -p "$S/new" "$R" && chmod 700 "$S" && R_REAL=$(realpath "$R") || fail "cannot create the stage"
    STAGED=
}

# stage_copy DIR: the live DIR's content, copied into a real directory of the stage (a DIR that is
# a symlink is followed once, so nothing written to the stage lands in the live tree).
stage_copy() {
    [ -d "$1" ] || return 0
    mkdir -p "$R$1" && cp -a "$1/." "$R$1/" || fail "cannot stage $1"
    STAGED="$STAGED $1"
}

# Absolute links in the stage that point into a staged dir point into the stage instead, so the
# validators read the staged files, not the live ones. find lists only absolute links, each with its
# target: a relative link (every site's vhost link) stays inside the stage anyway, and a readlink
# per link was a process per site.
stage_relink() {
    [ -n "$STAGED" ] || return 0
    find "$R" -type l -lname '/*' -printf '%l\t%p\n' | while IFS="$TAB" read -r t l; do
        for d in $STAGED; do
            case "$t" in "$d" | "$d"/*) ln -sfn "$R$t" "$l" ;; esac
        done
    done
}

# stage_guard PATH: PATH's parent in the stage resolves inside the stage (never through a link into
# the live tree); creates it.
stage_guard() {
    a=$R${1%/*}
    while [ ! -e "$a" ]; do a=${a%/*}; done
    case "$(realpath "$a")/" in "$R_REAL"/*) ;; *) fail "staging $1: a link in the staged tree leads outside it ($a); nothing was changed" ;; esac
    mkdir -p "$R${1%/*}" || fail "cannot stage $1"
}

# stage_file N PATH: the new content of PATH, base64 on stdin, kept as $S/new/N and laid into the stage.
stage_file() {
    base64 -d > "$S/new/$1" || fail "cannot write the stage"
    stage_guard "$2"
    rm -rf "$R$2" && cp "$S/new/$1" "$R$2" || fail "cannot stage $2"
}
# stage_made N PATH COMMAND: the host makes PATH's content itself (COMMAND writes it to the file
# $OUT names: a self-signed key never leaves the host), kept as $S/new/N and laid into the stage.
stage_made() {
    out=$(OUT="$S/new/$1" sh -c "$3" 2>&1 9>&-) && [ -s "$S/new/$1" ] || { show "$out"; fail "cannot make $2; nothing was changed"; }
    stage_guard "$2"
    rm -rf "$R$2" && cp "$S/new/$1" "$R$2" || fail "cannot stage $2"
}
stage_link() { stage_guard "$1"; rm -rf "$R$1" && ln -s "$2" "$R$1" || fail "cannot stage $1"; }
stage_dir() { stage_guard "$1"; [ -d "$R$1" ] && [ ! -L "$R$1" ] || { rm -rf "$R$1" && mkdir -p "$R$1"; } || fail "cannot stage $1"; }
stage_absent() { stage_guard "$1"; rm -rf "$R$1"; }

# validate NAME COMMAND: a real tool checks the staged tree.
validate() {
    out=$(sh -c "$2" 2>&1 9>&-) || {
        show "$out"
        fail "validation failed: $1 rejected the staged configuration; nothing was changed"
    }
}

# changing KIND SUMMARY: the first change of this run opens its generation.
changing() {
    [ -z "$B" ] || return 0
    seq=0
    [ -f "$P/seq" ] && read -r seq < "$P/seq"
    seq=$((seq + 1))
    G=$(printf 'G%06d-%s' "$seq" "$(date -u +%Y%m%dT%H%M%SZ)")
    gen_dir="$P/generations/$G"
    parent=
    [ -f "$P/current" ] && read -r parent < "$P/current"
    # Every record written, or none (renames need no room): a disk too full for them stops the run
    # before any change.
    { echo "$seq" > "$P/seq.new" && mv -f "$P/seq.new" "$P/seq" && mkdir -p "$gen_dir/files" && {
        echo "kind $1"
        echo "time $(date +%s)"
        echo "by $WHO"
        echo "summary $2"
        echo "parent ${parent:-none}"
    } > "$gen_dir/info" && echo applying > "$gen_dir/status" && printf '%s\n' "$G" > "$P/current.new" \
        && printf 'generation %s was not confirmed by health checks (the apply was cut off or its checks did not pass)\n' "$G" > "$P/attention.new" \
        && mv -f "$P/attention.new" "$P/attention" && mv -f "$P/current.new" "$P/current"; } || {
        rm -rf "$gen_dir" "$P/seq.new" "$P/current.new" "$P/attention.new"
        fail "cannot record generation $G in $P (is the disk full?); nothing was changed"
    }
    B=$gen_dir
    KIND=$1
    ev_gen "$G"
}

# backup PATH: what PATH is now, kept in the generation before it is replaced (once: a path
# touched twice keeps its first state). A path is recorded only once its backup is whole, and
# replaced only once it is recorded.
backup() {
    [ -f "$B/swapped" ] && cut -f1 "$B/swapped" | grep -qxF -- "$1" && return 0
    if [ -L "$1" ] || [ -f "$1" ]; then
        mkdir -p "$B/files$(dirname "$1")" && cp -a "$1" "$B/files$1" \
            || fail "cannot keep a backup of $1 in $B (is the disk full?)"
        was=present
    elif [ -d "$1" ]; then
        was="dir $(mode_owner "$1")"
    elif [ -e "$1" ]; then
        fail "$1 is a special file; refusing to replace it"
    else
        was=absent
    fi
    printf '%s\t%s\n' "$1" "$was" >> "$B/swapped" || fail "cannot record the backup of $1 in $B (is the disk full?)"
}

# swap_file N PATH MODE OWNER GROUP: atomic rename of the staged content into place.
swap_file() {
    backup "$2"
    d=$(dirname "$2")
    tmp="$d/.$(basename "$2").provision-new"
    mkdir -p "$d" && install -m "$3" -o "$4" -g "$5" "$S/new/$1" "$tmp" \
        && { [ ! -d "$2" ] || [ -L "$2" ] || rm -rf "$2"; } && mv -f "$tmp" "$2" \
        || fail "cannot put $2 in place"
}
swap_dir() { # PATH MODE OWNER GROUP
    backup "$1"
    { [ -d "$1" ] && [ ! -L "$1" ]; } || { rm -f "$1" && mkdir -p "$1"; } || fail "cannot create $1"
    chmod "$2" "$1" && chown "$3:$4" "$1" || fail "cannot set the mode of $1"
}
swap_link() { # PATH TARGET
    backup "$1"
    d=$(dirname "$1")
    tmp="$d/.$(basename "$1").provision-new"
    mkdir -p "$d" && ln -sfn "$2" "$tmp" && mv -Tf "$tmp" "$1" || fail "cannot put $1 in place"
}
swap_absent() { backup "$1"; rm -rf "$1" || fail "cannot remove $1"; }

# release_build BASE ID FROM MANIFEST ARCHIVE REMOVE SUMS: release ID made in BASE/releases from
# the release FROM the host runs (hard links: release files are replaced, never written in place),
# less the paths listed in REMOVE, plus the sent ARCHIVE; then checked: the files sent against SUMS,
# the number of files and links against the MANIFEST (nothing left over, nothing missing). Nothing
# serves it until release_commit has recorded it and BASE/current is switched to it.
release_build() {
    rel="$1/releases/$2"
    mkdir -p "$1/releases" "$1/.provision" && chmod 700 "$1/.provision" && rm -rf "$rel" \
        || fail "cannot make room for release $2 in $1/releases"
    if [ -n "$3" ] && [ -d "$1/releases/$3" ]; then
        cp -al "$1/releases/$3" "$rel" || fail "cannot start release $2 from release $3"
        while IFS= read -r f; do [ -n "$f" ] && rm -rf "$rel/$f"; done < "$6"
    else
        mkdir "$rel" || fail "cannot create $rel"
    fi
    out=$(tar -xzf "$5" -C "$rel" --no-same-owner --unlink-first 2>&1) || { show "$out"; fail "cannot unpack release $2"; }
    find "$rel" -mindepth 1 -type d -empty -delete
    chmod 755 "$rel"
    out=$(cd "$rel" && sha256sum --quiet --strict -c "$7" 2>&1) || {
        show "$out"
        fail "release $2 does not match its manifest once built (was release ${3:-none} changed on the host?); nothing was changed"
    }
    want=$(grep -c . "$4")
    have=$(cd "$rel" && find . ! -type d | wc -l)
    [ "$want" = "$have" ] || fail "release $2 has $have files and links once built, its manifest $want; nothing was changed"
}

# release_check BASE ID SUMS ENDING FILES TOOL COMMAND: the files sent (SUMS) whose path ends in
# ENDING checked by COMMAND, run in the release with their paths on stdin, one a line. Its failure
# (TOOL rejected FILES) fails the apply before anything is changed.
release_check() {
    # One awk, not a loop of dash's read (a byte per system call over thousands of paths).
    awk -v e="$4" 'sub(/^[0-9a-f]*  /, "") && substr($0, length($0) - length(e) + 1) == e' \
        "$3" > "$S.check" || fail "cannot read the files of release $2"
    [ -s "$S.check" ] || return 0
    out=$(cd "$1/releases/$2" && sh -c "$7" < "$S.check" 2>&1 9>&-) || {
        show "$out"
        fail "validation failed: $6 rejected $5 of release $2; nothing was changed"
    }
}

# release_commit BASE ID MANIFEST [COMMAND]: the release's command run in it (a migration), then the
# release recorded as whole. A failing command fails the apply: BASE/current is not switched.
release_commit() {
    rel="$1/releases/$2"
    if [ -n "${4:-}" ]; then
        out=$(cd "$rel" && sh -c "$4" 2>&1 < /dev/null 9>&-) || {
            show "$out"
            fail "the release command of release $2 failed; release $2 was not put live"
        }
        [ -z "$out" ] || show "$out"
        ev_did "release command of $2"
    fi
    install -m 600 "$3" "$1/.provision/$2.manifest.new" && mv -f "$1/.provision/$2.manifest.new" "$1/.provision/$2.manifest" \
        || fail "cannot record release $2"
}

# release_prune BASE KEEP: releases beyond the KEEP most recently recorded go, never the live one
# nor the one this run's generation would put back; so do release directories without a manifest
# (builds that never finished). A generation whose undo would put a pruned release back loses its
# backups: a rollback's reach ends where the kept releases end.
release_prune() {
    live=$(readlink "$1/current" 2> /dev/null)
    live=${live##*/}
    back=$(restored_releases "$B")
    ls -1t "$1/.provision" | sed -n 's/\.manifest$//p' | tail -n "+$(($2 + 1))" | while IFS= read -r id; do
        [ "$id" != "$live" ] || continue
        printf '%s\n' "$back" | grep -qxF -- "$1/releases/$id" && continue
        rm -rf "${1:?}/releases/$id" "$1/.provision/$id.manifest"
        for g in "$P"/generations/*; do
            [ "$g" != "$B" ] && restored_releases "$g" | grep -qxF -- "$1/releases/$id" && rm -rf "$g/files"
        done
    done
    for d in "$1"/releases/*; do
        [ -d "$d" ] && [ ! -f "$1/.provision/${d##*/}.manifest" ] && rm -rf "$d"
    done
    return 0
}

# restored_releases GEN_DIR: the releases (BASE/releases/ID) that undoing the generation would put
# live again: where its backups hold a BASE/current link to releases/ID.
restored_releases() {
    [ -f "$1/swapped" ] && [ -d "$1/files" ] || return 0
    sed -n 's/\tpresent$//p' "$1/swapped" | while IFS= read -r p; do
        [ "${p##*/}" = current ] && [ -L "$1/files$p" ] || continue
        t=$(readlink "$1/files$p")
        case "$t" in releases/*/* | releases/) ;; releases/*) echo "${p%/current}/$t" ;; esac
    done
}

# release_whole BASE/releases/ID: the release is on the host, recorded as whole.
release_whole() {
    [ -d "$1" ] && [ -f "${1%/releases/*}/.provision/${1##*/}.manifest" ]
}

# svc ACTION NAME [PLAIN_RELOAD [PIDFILE PROCESS]]: systemctl where systemd runs, the init script
# elsewhere (or the service's own reload command, when its init script's reload is not seamless).
# Without systemd a stop is done once the process its pid file names is gone, and a start once the
# new one runs: Debian 12's keepalived script returns from `stop` while the daemon still stops, and
# its `start` then finds it running, says "failed" and exits 0, which left none running.
svc() {
    if [ -d /run/systemd/system ]; then
        case "$1" in
            reload) systemctl reload-or-restart "$2" ;;
            *) systemctl "$1" "$2" ;;
        esac
    else
        case "$1" in
            reload)
                { svc_active "$2" "${4:-}" "${5:-}" &&
                    if [ -n "${3:-}" ]; then sh -c "$3"; else service "$2" reload; fi; } ||
                    svc restart "$2" "" "${4:-}" "${5:-}" ;;
            restart) svc stop "$2" "" "${4:-}" "${5:-}" > /dev/null 2>&1; svc start "$2" "" "${4:-}" "${5:-}" ;;
            start | stop)
                service "$2" "$1" || return 1
                [ -n "${4:-}" ] || return 0
                svc_n=0
                until svc_settled "$1" "$2" "$4" "$5"; do
                    svc_n=$((svc_n + 1))
                    [ "$svc_n" -le 300 ] || { echo "$2 did not $1 within 30 s"; return 1; }
                    sleep 0.1
                done
                ;;
            *) service "$2" "$1" ;;
        esac
    fi
}

# svc_active NAME [PIDFILE PROCESS]: whether the service runs: systemd's word, or the process its pid
# file names (the facts probe asks the same; Debian's keepalived script has no `status`), or its init
# script's status.
svc_active() {
    if [ -d /run/systemd/system ]; then systemctl is-active --quiet "$1"
    elif [ -n "${2:-}" ]; then
        svc_p=
        svc_c=
        { read -r svc_p < "$2"; } 2> /dev/null
        [ -n "$svc_p" ] && { read -r svc_c < "/proc/$svc_p/comm"; } 2> /dev/null
        [ "$svc_c" = "$3" ]
    else service "$1" status > /dev/null 2>&1; fi
}

# svc_settled start|stop NAME PIDFILE PROCESS: the service runs after a start, is gone after a stop.
svc_settled() {
    if svc_active "$2" "$3" "$4"; then [ "$1" = start ]; else [ "$1" = stop ]; fi
}

# remember_service NAME [PIDFILE PROCESS]: its run state before this generation touched it (for a
# rollback), with how to tell it.
remember_service() {
    if svc_active "$1" "${2:-}" "${3:-}"; then st=active; else st=inactive; fi
    printf '%s %s %s %s\n' "$1" "$st" "${2:-}" "${3:-}" >> "$B/services"
}

# handler LINE ACTION NAME [COMMAND [PIDFILE PROCESS]]: runs one handler (a service action, or a
# step's command); daemons it starts must not inherit the lock.
handler() {
    line=$1
    if [ "$2" = run ]; then
        # One file per step: a command may span lines.
        mkdir -p "$B/steps" && printf '%s\n' "$4" > "$B/steps/$3"
        out=$(sh -c "$4" 2>&1 9>&-)
    else
        out=$(svc "$2" "$3" "${4:-}" "${5:-}" "${6:-}" 2>&1 9>&-)
    fi || { show "$out"; fail "$line failed"; }
    echo "$line" >> "$B/ran"
    ev_did "$line"
}

# abort REASON: (from `fail` only) a change failed half-way: the open generation's files come back,
# the services go back to their earlier state taking them, and the run fails.
abort() {
    SETTLED=1
    ev_phase rollback
    undo "$B"
    restore_services "$B"
    guard_drop "$G"
    if [ -n "$FAILED" ]; then
        echo rollback-failed > "$B/status"
        printf '%s %s failed (%s) and its rollback could not restore:%s\n' "$KIND" "$G" "$1" "$FAILED" > "$P/attention"
        fail "$1; ROLLBACK FAILED for:$FAILED"
    fi
    echo rolled-back > "$B/status"
    printf '%s %s failed (%s) and was rolled back\n' "$KIND" "$G" "$1" > "$P/attention"
    fail "$1; the previous files were restored"
}

# undo GEN_DIR: puts back what a generation replaced, newest change first. Unless it is this run's
# own generation, each path's current state is first kept in this run's generation ($B), so a
# rollback can itself be rolled back. Nothing is written but the restored paths (the list is read
# through a here-document, which dash passes in a pipe): a disk too full for a backup must not stop
# its undo. A file comes back beside its path first and is then renamed over it, so a copy that
# fails leaves the path as it was.
undo() {
    gen=$1
    [ -f "$gen/swapped" ] || return 0
    list=$(tac "$gen/swapped") || { FAILED="$FAILED (the list of $gen)"; return 0; }
    while IFS="$TAB" read -r p how; do
        [ -n "$p" ] || continue
        [ "$gen" = "$B" ] || backup "$p"
        case "$how" in
            present)
                back="$(dirname "$p")/.$(basename "$p").provision-undo"
                rm -rf "$back"
                cp -a "$gen/files$p" "$back" && { [ ! -d "$p" ] || [ -L "$p" ] || rm -rf "$p"; } \
                    && mv -Tf "$back" "$p" || { rm -rf "$back"; false; }
                ;;
            absent) if [ -d "$p" ] && [ ! -L "$p" ]; then rmdir "$p" 2> /dev/null; else rm -f "$p"; fi ;;
            dir*)
                how_dir=${how#dir }
                [ -d "$p" ] || mkdir -p "$p"
                chmod "${how_dir% *}" "$p" && chown "${how_dir#* }" "$p"
                ;;
        esac || FAILED="$FAILED $p"
    done << PROVISION_UNDO
$list
PROVISION_UNDO
}

# restore_services GEN_DIR...: (newest first) after files were put back, every service the
# generations touched goes back to the run state it had before the oldest of them, taking the
# restored files; steps whose input was restored run again (the database bootstrap sets the
# earlier passwords back).
restore_services() {
    services=$(for g in "$@"; do [ -f "$g/services" ] && cat "$g/services"; done \
        | awk '{ state[$1] = $2 " " $3 " " $4; if (!seen[$1]++) order[n++] = $1 } END { for (i = n - 1; i >= 0; i--) print order[i], state[order[i]] }')
    while read -r name before pidfile process; do
        [ -n "$name" ] || continue
        if [ "$before" = inactive ]; then
            svc stop "$name" "" "$pidfile" "$process" > /dev/null 2>&1 9>&-
            echo "stop $name" >> "$B/ran"
            ev_did "stop $name"
        else
            if out=$(svc restart "$name" "" "$pidfile" "$process" 2>&1 9>&-); then ev_did "restart $name"; else
                show "$out"
                FAILED="$FAILED restart $name"
            fi
            echo "restart $name" >> "$B/ran"
        fi
    done << PROVISION_SERVICES
$services
PROVISION_SERVICES
    # Each step the generations ran, once (the newest generation's command).
    ran_steps=
    for g in "$@"; do
        for f in "$g"/steps/*; do
            [ -f "$f" ] || continue
            name=${f##*/}
            case " $ran_steps " in *" $name "*) continue ;; esac
            ran_steps="$ran_steps $name"
            if sh "$f" > /dev/null 2>&1 9>&-; then
                ev_did "run $name"
            else
                ev_note "run $name could not run again: the database keeps what the undone apply set"
            fi
        done
    done
}

# rollback SUMMARY GEN...: undoes the generations (newest first), as one new generation of kind
# rollback; says what could not be undone. Refused before any change when one of them cannot be
# undone (its backups pruned, or a release it would put live again gone), naming the oldest
# generation the host can roll back to.
rollback() {
    summary=$1
    shift
    reach=
    for g in "$@"; do
        why=
        if [ ! -d "$P/generations/$g/files" ]; then
            why="its backups were pruned"
        else
            gone=$(restored_releases "$P/generations/$g" | while IFS= read -r r; do
                release_whole "$r" || printf ' %s' "$r"
            done)
            [ -z "$gone" ] || why="it would put back release(s) no longer on the host:$gone"
        fi
        if [ -n "$why" ]; then
            if [ -n "$reach" ]; then
                refuse "cannot roll back past generation $g: $why; the oldest generation this host can roll back to is $g; nothing was changed"
            fi
            refuse "cannot undo generation $g: $why; nothing was changed"
        fi
        reach=$g
    done
    changing rollback "$summary"
    ev_phase swap
    dirs=
    for g in "$@"; do
        undo "$P/generations/$g"
        dirs="$dirs $P/generations/$g"
    done
    ev_phase reload
    # shellcheck disable=SC2086
    restore_services $dirs
    guard_drop "$@"
    for g in "$@"; do echo rolled-back > "$P/generations/$g/status"; done
    if [ -n "$FAILED" ]; then
        # Recorded as it is: undoing the rollback as well would not bring back a known-good host.
        SETTLED=1
        echo rollback-failed > "$B/status"
        printf 'rollback %s could not restore:%s\n' "$G" "$FAILED" > "$P/attention"
        fail "the rollback could not restore:$FAILED"
    fi
}

# mark GEN STATUS [ATTENTION]: what became of a generation (health checks passed or not). The
# attention mark speaks for the newest generation: the mark of an older one (another run changed
# the host since) records its status and leaves the newer run's mark alone.
mark() {
    [ -d "$P/generations/$1" ] || fail "no generation $1 on this host"
    echo "$2" > "$P/generations/$1/status"
    now=
    [ -f "$P/current" ] && read -r now < "$P/current"
    if [ "$now" != "$1" ]; then
        ev_note "generation $1 is not the newest any more ($now is): the host's attention mark is left as it is"
    elif [ -n "${3:-}" ]; then
        printf '%s\n' "$3" > "$P/attention"
    else
        rm -f "$P/attention"
    fi
    ev_done
}

# prune: backups of all but the KEEP newest generations go (by their sequence numbers, which the
# host hands out: no clock involved); the newest is never touched. Records stay for history.
prune() {
    ls -1 "$P/generations" | sort | head -n "-$1" | while IFS= read -r g; do
        [ "$g" = "$G" ] || rm -rf "$P/generations/$g/files"
    done
}

# finish KEEP: the run is over: pending handlers done, the generation applied (its health checks
# still to come), old backups pruned.
finish() {
    rm -f "$P/pending"
    [ -z "$B" ] || echo applied > "$B/status"
    prune "$1"
    ev_done
}

# guard_arm SECS PROGRAM: this generation puts live what can lock the operator out (a ruleset,
# sshd's settings). Unless a new SSH connection confirms it first (it removes $P/guard while it
# still holds this run's token), a detached guard running PROGRAM rolls the generation back SECS
# seconds after this run ends, whenever that is (a slow step after the ruleset, a killed
# controller), and the host then needs attention.
guard_arm() {
    token="$G.$(date +%s%N).$$"
    f="$P/run/guard.$token"
    cp "$2" "$f.sh" && printf '%s\n' "$token" > "$P/guard.new" && mv -f "$P/guard.new" "$P/guard" \
        || fail "cannot arm the guard of $G"
    setsid sh "$f.sh" "$f" "$$" "$token" "$1" < /dev/null >> "$f.log" 2>&1 9>&- &
    ev_guard "$token"
}

# guard_drop GEN...: a guard armed for one of these generations has nothing left to guard (they
# were undone).
guard_drop() {
    armed=
    { read -r armed < "$P/guard"; } 2> /dev/null
    for g in "$@"; do
        [ -n "$armed" ] && [ "${armed%%.*}" = "$g" ] && rm -f "$P/guard"
    done
    return 0
}

# guard_watch PID TOKEN SECS KEEP: the guard (its variables are global, as all are here: names
# the functions it calls do not use). Waits for the apply (PID) to end, then SECS; still
# armed with TOKEN then, it rolls its generation back under the host lock and says so in the
# attention mark. A later generation on top of it is not undone: the host is only marked.
guard_watch() {
    while kill -0 "$1" 2> /dev/null; do sleep 1; done
    sleep "$3"
    armed=
    { read -r armed < "$P/guard"; } 2> /dev/null
    [ "$armed" = "$2" ] || exit 0
    take_lock 3600 "$WHO"
    armed=
    { read -r armed < "$P/guard"; } 2> /dev/null
    [ "$armed" = "$2" ] || exit 0
    guarded=${2%%.*}
    now=
    { read -r now < "$P/current"; } 2> /dev/null
    why="no new SSH connection confirmed $guarded within $3 s after its apply ended (a firewall or sshd setting that refuses new logins, or the controller was stopped)"
    if [ "$now" != "$guarded" ]; then
        rm -f "$P/guard"
        printf '%s; %s is newer, so the guard did not roll back: check that new SSH logins get through\n' "$why" "$now" > "$P/attention"
        ev_done
        exit 0
    fi
    rollback "the guard of $guarded: $why" "$guarded"
    finish "$4"
    printf 'the guard rolled back %s at %s: %s; look at the host, then apply again\n' "$guarded" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$why" > "$P/attention"
}
