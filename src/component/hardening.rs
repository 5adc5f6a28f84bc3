//! The host as a whole (`[hardening]`), on every host: sshd takes keys only (a drop-in checked
//! with `sshd -t` against the host's own sshd_config), security updates install themselves
//! (unattended-upgrades) and a host that needs a reboot takes it in its own slot (see
//! `spec::Hardening`), the network stack ignores redirects and source routes, no core dumps, no
//! USB or FireWire storage and no rarely used network protocols, idle shells log out, and the
//! tools that check passwords, temporary directories and installed files are there.
//!
//! sshd reloads (existing connections, this one too, keep their settings); the apply then opens a
//! NEW SSH connection before it counts the change as done, and puts the previous drop-in back if
//! none gets through (see `apply::execute`), so a drop-in cannot lock the operator out.

use super::{Component, Cx, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use serde_json::json;

pub struct Hardening;
pub static HARDENING: Hardening = Hardening;

/// sshd's service, reloaded when its drop-in changes: the apply confirms it with a new connection.
pub const SSHD: &str = "ssh";
const SYSCTL_STEP: &str = "sysctl";
const SYSCTL: &str = "/etc/sysctl.d/90-provision.conf";

/// A hardening template rendered with the `[hardening]` values.
type Render<'r> = &'r dyn Fn(&str) -> Result<String, RenderError>;

impl Component for Hardening {
    fn name(&self) -> &'static str {
        "hardening"
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let Some(h) = &cx.spec.hardening else {
            return Ok(());
        };
        let values = json!({
            "jump_host": cx.spec.is_jump_host(cx.host),
            "reboot": cx.spec.reboot_time(cx.host).map(|(hh, mm)| format!("{hh:02}:{mm:02}")),
            "spacing": h.spacing,
        });
        let render = |name: &str| cx.render(name, &[("hardening", values.clone())]);
        sshd(out, &render)?;
        unattended_upgrades(out, &render)?;
        sysctl(out, &render)?;
        limits_and_logins(out, &render)?;
        Ok(())
    }
}

/// sshd's drop-in, reloaded, and guarded: a reload that locks the operator out is rolled back.
fn sshd(out: &mut Out, render: Render) -> Result<(), RenderError> {
    out.service(SSHD, "openssh-server", "/run/sshd.pid", "sshd");
    out.file(
        "/etc/ssh/sshd_config.d/provision.conf",
        render("hardening/sshd.conf")?,
    )
    .notify(Handler::reload(SSHD))
    .checked_by("sshd");
    out.guarded(Handler::reload(SSHD), "sshd's new settings");
    // sshd -t reads the drop-in first (the first value of a setting wins), then the host's own
    // sshd_config (which includes the live drop-in too: the staged one still wins). It needs
    // its privilege separation directory: where sshd does not run (render --check on another
    // machine), a private /run has one.
    out.validator(
        "sshd",
        "f=$(mktemp) && printf 'Include %s/etc/ssh/sshd_config.d/provision.conf\\nInclude /etc/ssh/sshd_config\\n' {root} > \"$f\" && \
         if [ -d /run/sshd ]; then sshd -t -f \"$f\"; \
         else unshare -m sh -c 'mount -t tmpfs tmpfs /run && mkdir /run/sshd && sshd -t -f \"$1\"' check \"$f\"; fi; \
         rc=$?; rm -f \"$f\"; exit $rc",
        &[],
    );
    Ok(())
}

/// Security updates installed unattended.
fn unattended_upgrades(out: &mut Out, render: Render) -> Result<(), RenderError> {
    out.package("unattended-upgrades");
    for (path, template) in [
        (
            "/etc/apt/apt.conf.d/21provision-auto-upgrades",
            "hardening/auto-upgrades",
        ),
        (
            "/etc/apt/apt.conf.d/52provision-unattended-upgrades",
            "hardening/unattended-upgrades",
        ),
    ] {
        out.file(path, render(template)?).checked_by("apt-config");
    }
    out.file_validator("apt-config", "apt-config -c {root}{file} dump > /dev/null");
    Ok(())
}

/// The network stack's settings, loaded by a step when they change.
fn sysctl(out: &mut Out, render: Render) -> Result<(), RenderError> {
    // Only settings of the network namespace: kernel-wide ones would reach beyond a container
    // (and the lab's hosts share this machine's kernel).
    out.file(SYSCTL, render("hardening/sysctl.conf")?)
        .notify(Handler::run(SYSCTL_STEP))
        .checked_by("sysctl");
    out.validator(
        "sysctl",
        format!(
            "sed -n 's/^\\([a-z0-9_.]*\\) = .*/\\1/p' {{root}}{SYSCTL} | while read -r k; do \
             [ -e \"/proc/sys/$(echo \"$k\" | tr . /)\" ] || {{ echo \"no such kernel setting: $k\"; exit 1; }}; done"
        ),
        &[],
    );
    out.step(SYSCTL_STEP, format!("sysctl -q -p {SYSCTL}"), None);
    Ok(())
}

/// Resource limits, no core dumps, unused kernel modules off, idle shells logged out, and the
/// packages that harden logins.
fn limits_and_logins(out: &mut Out, render: Render) -> Result<(), RenderError> {
    out.file(
        "/etc/security/limits.d/provision.conf",
        render("hardening/limits.conf")?,
    );
    out.file(
        "/etc/systemd/coredump.conf.d/provision.conf",
        render("hardening/coredump.conf")?,
    );
    out.file(
        "/etc/modprobe.d/provision.conf",
        render("hardening/modprobe.conf")?,
    );
    out.file(
        "/etc/profile.d/provision-timeout.sh",
        render("hardening/timeout.sh")?,
    )
    .checked_by("sh");
    out.file_validator("sh", "sh -n {root}{file}");
    // Password quality for any local password, a private TMPDIR per login, and debsums to
    // check installed files against their packages.
    for p in ["libpam-pwquality", "libpam-tmpdir", "debsums"] {
        out.package(p);
    }
    Ok(())
}
