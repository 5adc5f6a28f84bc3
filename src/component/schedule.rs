//! A host-side job provision schedules (the nightly backup, certificate renewal): a systemd timer
//! where systemd runs, else a line in /etc/cron.d (cron installed; the line does nothing where
//! systemd runs, so one rendered tree serves both).

use crate::facts::SYSTEMD_TEST;

/// A shell command that makes the schedule count: the timer enabled and started, or cron running.
pub fn enable(timer: &str) -> String {
    format!(
        "if {SYSTEMD_TEST}; then systemctl daemon-reload && systemctl enable --now {timer}; \
else service cron status > /dev/null 2>&1 || service cron start; fi"
    )
}

/// A read-only probe snippet that prints `active` when the schedule counts (the timer, or cron
/// running), else something else.
pub fn probe(timer: &str) -> String {
    // Without systemd: cron's pid file and the process it names (builtins), else what its init
    // script says.
    format!(
        "if {SYSTEMD_TEST}; then systemctl is-active {timer}; \
         else p=; c=; {{ read -r p < /run/crond.pid; read -r c < \"/proc/$p/comm\"; }} 2>/dev/null; \
         if [ \"$c\" = cron ]; then echo active; elif service cron status > /dev/null 2>&1; then echo active; else echo inactive; fi; fi"
    )
}
