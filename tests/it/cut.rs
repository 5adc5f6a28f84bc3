//! Helpers of the fault tests that cut an apply off at a chosen phase: the controller followed
//! line by line, a freezer on the host that holds the detached script inside a phase, and the
//! checks of what a run must never leave behind.

use crate::lab::*;
use crate::util::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The phases as the controller prints them (`HOST: PHASE`, one line each on a non-terminal
/// stderr). The script's own `check` (is the host as planned?) comes right after `lock`; the
/// health checks are the second `check`.
pub fn phase_line(host: &str, phase: &str) -> String {
    format!("{host}: {phase}")
}

/// A controller (`provision apply`) running, its stderr read as it comes.
pub struct Controller {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line so far.
    pub seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
    pub started: Instant,
}

impl Controller {
    pub fn start(run: Run) -> Controller {
        let Running { mut child } = run.spawn();
        let err = child.stderr.take().expect("piped stderr");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(out), &mut s);
            s
        });
        Controller {
            child,
            lines,
            seen: Vec::new(),
            stdout,
            started: Instant::now(),
        }
    }

    /// Waits until the controller has printed `line` for the `nth` time (1-based). Panics with
    /// what it printed when it ends first or `within` is over.
    pub fn wait_line(&mut self, line: &str, nth: usize, within: Duration) -> Duration {
        let deadline = Instant::now() + within;
        loop {
            if self.seen.iter().filter(|l| l.as_str() == line).count() >= nth {
                return self.started.elapsed();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {line:?} (#{nth}) within {within:?}:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the controller ended before {line:?} (#{nth}):\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Stderr lines that came so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        &self.seen
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGKILL, by the pid of the child this test spawned.
    pub fn sigkill(mut self) -> Duration {
        self.child.kill().expect("SIGKILL the controller");
        let _ = self.child.wait();
        self.started.elapsed()
    }

    /// Waits for the end (at most `within`): exit code, stdout, every stderr line.
    pub fn wait(mut self, within: Duration) -> Ended {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader thread ends at EOF; collect what is left.
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(l);
                }
                return Ended {
                    code: status.code().unwrap_or(-1),
                    stdout: self.stdout.join().unwrap_or_default(),
                    stderr: self.seen.join("\n"),
                    took: self.started.elapsed(),
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the controller did not end within {within:?}:\n{}",
                    self.drain().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub struct Ended {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Ended {
    pub fn expect(&self, code: i32, what: &str) {
        assert_eq!(
            self.code, code,
            "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{what}: panic:\n{}",
            self.stderr
        );
    }
}

/// The freezer (`freeze.py`) running on a host over SSH.
pub struct Freezer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Freezer {
    /// Starts it and waits until it watches (so an apply started next cannot slip past it).
    /// `hold`: seconds the script stays frozen when no word comes (a cut network).
    pub fn start(addr: &str, phase: &str, cond: &str, hold: u32) -> Freezer {
        use base64::Engine;
        let code = base64::engine::general_purpose::STANDARD.encode(include_str!("freeze.py"));
        let mut child = ssh_to(addr)
            .arg(format!(
                "exec python3 -u -c 'import base64; exec(base64.b64decode(\"{code}\"))' {phase} {cond} {hold}"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ssh runs");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut f = Freezer {
            child,
            stdin,
            lines,
        };
        let ready = f.next(Duration::from_secs(20));
        assert_eq!(ready, "READY", "the freezer did not start");
        f
    }

    fn next(&mut self, within: Duration) -> String {
        match self.lines.recv_timeout(within) {
            Ok(l) => l,
            Err(e) => panic!("the freezer said nothing within {within:?} ({e:?})"),
        }
    }

    /// Waits until the script is frozen; returns the freezer's line (`STOPPED PID phase=.. done=..`)
    /// after checking that the script is still inside `phase`.
    pub fn stopped(&mut self, phase: &str, within: Duration) -> String {
        let l = self.next(within);
        assert!(l.starts_with("STOPPED "), "the freezer: {l}");
        assert!(
            l.contains(&format!("phase={phase} ")) && l.contains("done=false"),
            "the script was not frozen inside {phase}: {l}"
        );
        l
    }

    /// Tells it what becomes of the script (`cont` or `kill`) and waits for it to say it did.
    pub fn release(mut self, word: &str) -> String {
        if let Some(mut i) = self.stdin.take() {
            let _ = writeln!(i, "{word}");
        }
        self.finish(Duration::from_secs(20))
    }

    /// Waits for it to end by itself (it continues the script after its hold time).
    pub fn finish(mut self, within: Duration) -> String {
        let l = self.next(within);
        let _ = self.child.kill();
        let _ = self.child.wait();
        l
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        // EOF on its stdin makes it continue the script, if it is still holding it.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run must never leave behind once the next apply has converged, as a list of problems
/// (empty: none). Also every generation's record: each path it listed as `present` has its backup,
/// in every generation that still keeps its backups.
pub const LEFTOVERS: &str = r#"
P=/var/lib/provision
TAB=$(printf '\t')
[ ! -e /usr/sbin/policy-rc.d ] || echo "policy-rc.d left in place: $(tr '\n' ' ' < /usr/sbin/policy-rc.d)"
[ -z "$(ls -A $P/stage)" ] || echo "stage not empty: $(ls -A $P/stage | tr '\n' ' ')"
for f in $P/run/*.sh; do [ ! -e "$f" ] || echo "run script left: $f"; done
[ ! -e $P/pending ] || echo "pending handlers left: $(tr '\n' ' ' < $P/pending)"
[ ! -e $P/attention ] || echo "still needs attention: $(cat $P/attention)"
flock -n $P/lock true || echo "the lock is still held by $(cat $P/lock.info)"
# (dpkg --audit as root folds a pending journal in, which would hide it from the next apply.)
if ls /var/lib/dpkg/updates | grep -qx '[0-9][0-9]*'; then
    echo "dpkg was interrupted: its journal is not folded in"
elif [ -n "$(dpkg --audit 2>&1)" ]; then
    echo "dpkg is not clean: $(dpkg --audit 2>&1 | tr '\n' ' ')"
fi
found=$(find /etc /var/www /var/lib/provision/sql -name '.*.provision-new' 2>/dev/null)
[ -z "$found" ] || echo "temporary files left: $found"
# Backups are pruned from all but the 10 newest generations (host_state::KEEP), never from those.
for g in $(ls -1 $P/generations | sort | tail -n 10); do
    [ -d "$P/generations/$g/files" ] || echo "$g lost its backups"
done
for g in $P/generations/*; do
    [ -d "$g" ] || continue
    read -r st < "$g/status"
    [ "$st" != applying ] || echo "$g is still applying"
    [ -d "$g/files" ] && [ -f "$g/swapped" ] || continue
    while IFS="$TAB" read -r p how; do
        [ "$how" = present ] || continue
        [ -e "$g/files$p" ] || [ -L "$g/files$p" ] || echo "$g: no backup of $p"
    done < "$g/swapped"
done
"#;

/// `G000003:checked G000004:interrupted ...`, the generations' statuses in order.
pub const STATUSES: &str = r#"for g in /var/lib/provision/generations/*; do [ -d "$g" ] && printf '%s:%s ' "$(basename "$g" | cut -c1-7)" "$(cat "$g/status")"; done; echo"#;

pub fn assert_no_leftovers(addr: &str, what: &str) {
    let problems = ssh(addr, LEFTOVERS);
    assert!(
        problems.trim().is_empty(),
        "{what}: left behind:\n{problems}"
    );
}

/// The site answers with the database row (tried for up to `within`: services may still start).
pub fn site_answers(addr: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let got = crate::lab::site_get(addr, "/");
        let why = match got {
            Ok((200, body)) if body.contains("Hello from MariaDB") => return Ok(()),
            Ok((status, body)) => {
                format!("{status}: {}", body.chars().take(200).collect::<String>())
            }
            Err(e) => e.0,
        };
        if Instant::now() > deadline {
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A templates directory that differs from the built-in one by a comment in the Nginx site, the
/// PHP pool and BIND's zone list: an apply with it replaces three files and reloads three services,
/// so it goes through every phase but packages, and a swap cut half-way leaves some files new and
/// some old.
pub fn variant(dir: &Path, tag: &str) -> std::path::PathBuf {
    let t = dir.join(format!("templates-{tag}"));
    for (file, comment) in [
        ("nginx/site.conf", "#"),
        ("php/pool.conf", ";"),
        ("bind/named.conf.local", "//"),
    ] {
        let target = t.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let orig = std::fs::read_to_string(root().join("templates").join(file)).unwrap();
        std::fs::write(target, format!("{orig}\n{comment} fault test: {tag}\n")).unwrap();
    }
    t
}

/// Makes the demo page of a `variant` answer after 0.7 s, so the controller's health checks (three
/// passes in a row) last over two seconds: long enough for a test to cut the host off while they
/// run, whatever their cadence.
pub fn slow_page(templates: &Path) {
    let target = templates.join("app/index.php");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let orig = std::fs::read_to_string(root().join("templates/app/index.php")).unwrap();
    std::fs::write(target, format!("<?php usleep(700000); ?>\n{orig}")).unwrap();
}

/// How an apply is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// SIGKILL of the controller (the `provision` process this test spawned).
    Kill,
    /// The host taken off the network (`lab cut`); the controller notices on its own.
    Net,
    /// SIGKILL of the detached script's whole process group on the host (a crash, the OOM killer):
    /// the controller stays, the host keeps what the run left.
    Script,
}

impl Cut {
    pub fn name(self) -> &'static str {
        match self {
            Cut::Kill => "SIGKILL controller",
            Cut::Net => "network cut",
            Cut::Script => "SIGKILL host script",
        }
    }
}

/// A lab host of a fault test.
pub struct Target {
    pub name: String,
    pub addr: String,
    pub inv: std::path::PathBuf,
}

impl Target {
    pub fn new(dir: &Path, name: &str, addr: &str, flavour: &str) -> Target {
        let inv = own_host(dir, name, addr, flavour, true);
        Target {
            name: name.into(),
            addr: addr.into(),
            inv,
        }
    }

    pub fn apply(&self, templates: Option<&Path>) -> Run {
        let r = Run::new(&["apply", "-i"]).arg(&self.inv);
        match templates {
            Some(t) => r.arg("--templates").arg(t),
            None => r,
        }
    }

    pub fn plan(&self, templates: Option<&Path>) -> Run {
        let r = Run::new(&["plan", "-i"]).arg(&self.inv);
        match templates {
            Some(t) => r.arg("--templates").arg(t),
            None => r,
        }
    }

    fn sh(&self, cmd: &str) -> String {
        ssh(&self.addr, cmd).trim().to_string()
    }
}

/// Where an apply is cut off.
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// For the report.
    pub name: &'static str,
    /// The controller's phase line that says the apply got there, and which one of them (the
    /// health checks are the second `check`: the script's own check that the host is as planned
    /// comes first).
    pub line: &'static str,
    pub nth: usize,
    /// Where the freezer holds the host's script: its phase, and a condition (see freeze.py).
    /// `None` for a phase the controller runs by itself (the health checks).
    pub freeze: Option<(&'static str, &'static str)>,
}

impl At {
    /// Inside one of the apply script's phases.
    pub const fn script(phase: &'static str, cond: &'static str) -> At {
        At {
            name: phase,
            line: phase,
            nth: 1,
            freeze: Some((phase, cond)),
        }
    }

    /// During the health checks the controller runs once the script is done.
    pub const fn checks() -> At {
        At {
            name: "checks",
            line: "check",
            nth: 2,
            freeze: None,
        }
    }

    /// During the rollback after failed health checks: the rollback script held in its swap.
    pub const fn rollback() -> At {
        At {
            name: "rollback",
            line: "rollback",
            nth: 1,
            freeze: Some(("swap", "rollback")),
        }
    }
}

/// Phase lines that would show that an apply got past the lock.
const PAST_THE_LOCK: [&str; 6] = [
    "packages", "stage", "validate", "swap", "reload", "rollback",
];

/// Cuts an apply (with `templates`) off at `at`, in the way `cut` says, then proves that the host
/// recovers with no manual step: the next apply (with `next_templates`, and `--lock-timeout 300`
/// since the cut run's script may still be running) exits 0, the site answers, `plan` exits 0, and
/// nothing of any run is left behind (`LEFTOVERS`: no policy-rc.d, empty stage, no run script, no
/// pending handlers, no `applying` generation, every replaced file backed up, dpkg clean). After a
/// SIGKILL, while the cut run's script still holds the lock, another apply is refused and one with
/// --lock-timeout waits without doing anything. Returns one line for the test's report.
pub fn cut_at(
    t: &Target,
    cut: Cut,
    at: At,
    templates: Option<&Path>,
    next_templates: Option<&Path>,
) -> String {
    // A cut network keeps the test from telling the freezer anything: it lets the script go on
    // by itself after 3 s (the cut takes ~0.1 s).
    let hold = if cut == Cut::Net { 3 } else { 120 };
    let mut freezer = at
        .freeze
        .map(|(phase, cond)| Freezer::start(&t.addr, phase, cond, hold));
    let mut ctl = Controller::start(t.apply(templates));
    ctl.wait_line(
        &phase_line(&t.name, at.line),
        at.nth,
        Duration::from_secs(300),
    );
    let frozen = match (&mut freezer, at.freeze) {
        (Some(f), Some((phase, _))) => f.stopped(phase, Duration::from_secs(60)),
        _ => String::new(),
    };
    let cut_after = ctl.started.elapsed();
    if !frozen.is_empty() {
        eprintln!("{}: {}: {frozen}", t.name, at.name);
    }
    let field = |k: &str| {
        frozen
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or("")
            .to_string()
    };
    let (run, holds_lock) = (field("run="), field("lock=") == "held");
    let swapped = field("swapped=");
    if at.freeze.is_some() && at.name != "lock" {
        assert!(
            holds_lock,
            "the script frozen in {} does not hold the lock: {frozen}",
            at.name
        );
    }
    let mut report = format!(
        "{:<19} @ {:<8} {:>4.1}s after start{}",
        cut.name(),
        at.name,
        cut_after.as_secs_f64(),
        match at.freeze {
            Some(("swap", _)) => format!(
                " (script frozen there after {swapped} of its paths' backups, holding the lock)"
            ),
            Some(_) if holds_lock => " (script frozen there, holding the lock)".to_string(),
            Some(_) => " (script frozen there, before it took the lock)".to_string(),
            None => String::new(),
        }
    );
    let unconfirmed = || {
        t.sh("cat /var/lib/provision/attention 2>/dev/null; true")
            .contains("not confirmed")
    };
    let next_apply = || Controller::start(t.apply(next_templates).args(&["--lock-timeout", "300"]));
    let next = match cut {
        Cut::Kill => {
            ctl.sigkill();
            if at.name == "checks" {
                // Killed before it could record the checks' verdict: the host still says so.
                assert!(
                    unconfirmed(),
                    "the controller was killed after it marked the host"
                );
            }
            match freezer {
                Some(f) if holds_lock => {
                    // The script carries on without its controller, holding the lock: another
                    // apply is refused, or waits for it with --lock-timeout, never runs alongside.
                    let asked = Instant::now();
                    let refused = t.apply(next_templates).output();
                    let refused_in = asked.elapsed();
                    assert_eq!(refused.code(), 1, "{}", refused.stderr());
                    assert!(
                        refused.stderr().contains("another apply holds the lock"),
                        "{}",
                        refused.stderr()
                    );
                    if at.name == "lock" {
                        // The probe tells a held lock by lock.info, written just after flock: an
                        // apply probing in between (or two started together) does not see it, plans
                        // on the generation before the holder's, and its script finds that stale
                        // once the lock is its own. Made certain here: with --lock-timeout it must
                        // plan again and converge, not fail.
                        t.sh("rm -f /var/lib/provision/lock.info");
                    }
                    let current = t.sh("cat /var/lib/provision/current 2>/dev/null; true");
                    let mut next = next_apply();
                    std::thread::sleep(Duration::from_secs(3));
                    assert!(
                        next.running(),
                        "the waiting apply ended:\n{}",
                        next.drain().join("\n")
                    );
                    let ran_ahead: Vec<&String> = next
                        .drain()
                        .iter()
                        .filter(|l| PAST_THE_LOCK.iter().any(|p| **l == phase_line(&t.name, p)))
                        .collect();
                    assert!(
                        ran_ahead.is_empty(),
                        "an apply ran while the killed controller's script held the lock: {ran_ahead:?}"
                    );
                    assert_eq!(
                        t.sh("cat /var/lib/provision/current 2>/dev/null; true"),
                        current,
                        "a generation was opened while the frozen script held the lock"
                    );
                    let waited = next.started.elapsed();
                    let word = f.release("cont");
                    assert!(word.starts_with("CONTINUED"), "{word}");
                    report.push_str(&format!(
                        "; while it went on alone, an apply was refused ({:.1}s) and one with --lock-timeout waited ({:.1}s)",
                        refused_in.as_secs_f64(),
                        waited.as_secs_f64()
                    ));
                    next
                }
                Some(f) => {
                    f.release("cont");
                    next_apply()
                }
                None => next_apply(),
            }
        }
        Cut::Net => {
            lab(&["cut", &t.name]);
            let ended = ctl.wait(Duration::from_secs(150));
            lab(&["heal", &t.name]);
            let error = ended
                .stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("")
                .to_string();
            ended.expect(3, "the controller cut off by the network");
            assert!(
                error.contains("connection lost")
                    || error.contains("the connection to the host was lost"),
                "{}",
                ended.stderr
            );
            report.push_str(&format!(
                "; controller exit 3 {:.1}s after the cut",
                (ended.took - cut_after).as_secs_f64()
            ));
            if at.name == "checks" {
                assert!(unconfirmed(), "the host was marked without a controller");
                report.push_str(", the host still marked as not confirmed");
            }
            drop(freezer);
            next_apply()
        }
        Cut::Script => {
            let f = freezer.expect("a script phase");
            let word = f.release("kill");
            assert_eq!(word, "KILLED");
            let ended = ctl.wait(Duration::from_secs(60));
            ended.expect(1, "the controller of a script killed on the host");
            assert!(
                ended.stderr.contains("stopped without finishing"),
                "{}",
                ended.stderr
            );
            // What the dead run left, for the next one to finish or clean (proof that there was
            // something to clean).
            let left = t.sh(LEFTOVERS);
            let expected: &[&str] = match at.name {
                "packages" => &["policy-rc.d left", "dpkg was interrupted"],
                "stage" | "validate" => &["stage not empty"],
                "swap" | "reload" => &[
                    "stage not empty",
                    "pending handlers left",
                    "is still applying",
                ],
                _ => &[],
            };
            for e in expected {
                assert!(
                    left.contains(e),
                    "the run killed in {} left no {e:?}:\n{left}",
                    at.name
                );
            }
            report.push_str(&format!("; controller exit 1; left: {}", summarize(&left)));
            next_apply()
        }
    };
    let next = next.wait(Duration::from_secs(400));
    next.expect(0, "the next apply");
    if cut == Cut::Kill && at.name == "lock" {
        assert!(
            next.stderr.contains("planning again"),
            "the apply that waited without seeing the lock did not plan again:\n{}",
            next.stderr
        );
        report.push_str("; the waiting apply, blind to the lock, planned again");
    }
    if !run.is_empty() {
        report.push_str(&format!("; the cut run {}", fate(t, &run)));
    }
    report.push_str(&format!("; next apply 0 ({:.1}s)", next.took.as_secs_f64()));
    site_answers(&t.addr, Duration::from_secs(10)).expect("the site answers after the next apply");
    t.plan(next_templates).output().status(0);
    assert_no_leftovers(&t.addr, &report);
    report.push_str(&format!("; plan 0; nothing left; {}", t.sh(STATUSES)));
    eprintln!("{}: {report}", t.name);
    report
}

/// How the cut run's script ended, from the last event in its log.
fn fate(t: &Target, run: &str) -> String {
    let last = t.sh(&format!(
        "grep -E '^@(done|fail|busy|stale)' /var/lib/provision/run/{run}.log | tail -n 1; true"
    ));
    match last.split_once(' ').unwrap_or((&last, "")) {
        ("@done", _) => "finished alone".into(),
        ("", _) => "was killed".into(),
        (tag, why) => format!(
            "stopped alone ({}: {})",
            &tag[1..],
            why.chars().take(60).collect::<String>()
        ),
    }
}

/// The problems LEFTOVERS found, their kinds on one line.
fn summarize(left: &str) -> String {
    let s: Vec<&str> = left
        .lines()
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect();
    if s.is_empty() {
        "nothing".into()
    } else {
        s.join(", ")
    }
}
