# Runs on a lab host (python3 is in the lab image), started by tests/it/cut.rs over SSH before an
# apply. It waits for the apply's detached script to announce a phase in its log
# (/var/lib/provision/run/<id>.log, "@phase NAME"), optionally until a condition holds as well, and
# then stops the script's whole process tree (the script is a setsid session leader whose pid is in
# <id>.pid; apt's dpkg, on a pty in a session of its own, is found as a descendant): the script
# stays frozen inside that phase, holding the host lock, while the test cuts the controller off. A
# line on stdin then says what becomes of it: "cont" (SIGCONT: it carries on alone, as after a
# killed controller) or "kill" (SIGKILL of the tree: the host-side run dies too, as in a crash).
# Without a word within HOLD seconds (the test's SSH connection may be cut with the network) or on
# EOF, it continues the script.
#
# Polling every millisecond is what makes short phases (stage, swap: a few milliseconds) hittable;
# the controller itself learns of a phase up to 200 ms late (tail -s 0.2).
#
# argv: PHASE COND HOLD. COND: none | locked (the host lock is held: at `lock`, the script has
# taken it) | policy (provision's policy-rc.d is in place: apt runs) | dpkg (dpkg unpacks or
# configures a package, its journal not yet folded in) | stage (the run's stage exists) | gen (the
# run has opened its generation) | swapped (the run has backed up its first path and is replacing
# it) | rollback (the run's generation is a rollback: the controller's rollback script, not the
# apply script before it).
import fcntl
import os
import select
import signal
import sys
import time

RUN = "/var/lib/provision/run"
phase, cond, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
marker = "@phase " + phase


def logs():
    try:
        return {n for n in os.listdir(RUN) if n.endswith(".log")}
    except FileNotFoundError:
        return set()


def dpkg_busy():
    # Looked at before the journal: the scan of /proc takes a moment, the journal changes often.
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"dpkg") and (b"--unpack" in args or b"--configure" in args):
            return True
    return False


def dpkg_journal():
    # What apt reads as "dpkg was interrupted": status updates not yet folded into the database.
    try:
        return any(n.isdigit() for n in os.listdir("/var/lib/dpkg/updates"))
    except FileNotFoundError:
        return False


def locked():
    try:
        fd = os.open("/var/lib/provision/lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def generation(text):
    gens = [l[5:].strip() for l in text.splitlines() if l.startswith("@gen ")]
    return f"/var/lib/provision/generations/{gens[-1]}" if gens else None


def swapped(text):
    """How many paths the run has backed up so far (each is then replaced)."""
    try:
        with open(f"{generation(text)}/swapped") as f:
            return len(f.read().splitlines())
    except (TypeError, OSError):
        return 0


def holds(text):
    if cond == "none":
        return True
    if cond == "policy":
        return os.path.exists("/usr/sbin/policy-rc.d")
    if cond == "dpkg":
        return dpkg_busy() and dpkg_journal()
    if cond == "stage":
        try:
            return bool(os.listdir("/var/lib/provision/stage"))
        except FileNotFoundError:
            return False
    if cond == "gen":
        return "\n@gen " in text
    if cond == "locked":
        return locked()
    g = generation(text)
    if cond == "swapped":
        return swapped(text) > 0
    if cond == "rollback":
        try:
            with open(f"{g}/info") as f:
                return "kind rollback\n" in f.read()
        except (TypeError, OSError):
            return False
    raise SystemExit(f"unknown condition {cond}")


def last_phase(text):
    phases = [l[7:] for l in text.splitlines() if l.startswith("@phase ")]
    return phases[-1] if phases else "-"


def tree(root):
    """The script's process group and every process descended from it: apt runs dpkg on a pty,
    in a session of its own, so the group alone would leave dpkg running."""
    parent, group = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent[int(d)], group[int(d)] = int(fields[1]), int(fields[2])
    found = {p for p, g in group.items() if g == root} | {root}
    grew = True
    while grew:
        more = {p for p, pp in parent.items() if pp in found} - found
        found |= more
        grew = bool(more)
    return found


def signal_tree(root, sig):
    # Stopping first keeps the tree from changing while it is read (a stopped process forks
    # nothing); read again until no new process shows up.
    done = set()
    while True:
        todo = tree(root) - done
        if not todo:
            return
        for p in todo:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        done |= todo


def say(*words):
    print(*words, flush=True)


before = logs()
say("READY")
deadline = time.time() + 300
pid = None
while pid is None:
    if time.time() > deadline:
        say("TIMEOUT")
        sys.exit(1)
    for name in sorted(logs() - before):
        base = os.path.join(RUN, name[:-4])
        try:
            with open(base + ".log") as f:
                text = f.read()
            with open(base + ".pid") as f:
                p = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if p and marker in text.splitlines() and holds(text):
            signal_tree(p, signal.SIGSTOP)
            with open(base + ".log") as f:
                text = f.read()
            if not holds(text):
                # It moved on between the look and the stop (dpkg folds its journal in often).
                signal_tree(p, signal.SIGCONT)
                continue
            pid = p
            say("STOPPED", p, "phase=" + last_phase(text), "done=" + str("@done" in text).lower(),
                "run=" + name[:-4], "lock=" + ("held" if locked() else "free"),
                "swapped=" + str(swapped(text)),
                "dpkg-journal=" + str(dpkg_journal()).lower())
            break
    else:
        time.sleep(0.001)

ready, _, _ = select.select([sys.stdin], [], [], hold)
word = sys.stdin.readline().strip() if ready else ""
if word == "kill":
    signal_tree(pid, signal.SIGKILL)
    say("KILLED")
else:
    signal_tree(pid, signal.SIGCONT)
    say("CONTINUED", "(" + (word or "hold over") + ")")
