//! The tables that concern every host rather than one site: `[hardening]`, `[backup]`,
//! `[firewall]` and the load balancers' `[lb]`.

use crate::spec::reader::{Bounds, Reader, Table};
use std::ops::Range;
use toml::Spanned;

/// `[hardening]`: sshd, kernel and login defaults, security updates and their reboots.
#[derive(Debug)]
pub struct RawHardening {
    pub span: Range<usize>,
    pub reboot: Option<Spanned<String>>,
    pub reboot_spacing: Option<Spanned<i64>>,
}

pub const REBOOT_SPACING: Bounds = Bounds { min: 5, max: 720 };

/// `[backup]`: a nightly dump of the database.
#[derive(Debug)]
pub struct RawBackup {
    pub keep_days: Option<Spanned<i64>>,
    pub time: Option<Spanned<String>>,
}

pub const KEEP_DAYS: Bounds = Bounds { min: 1, max: 3650 };

/// `[firewall]`: an nftables ruleset on every host; SSH only from `admin_sources`.
#[derive(Debug)]
pub struct RawFirewall {
    pub admin_sources: Spanned<Vec<Spanned<String>>>,
}

/// `[lb]`: the floating address two load balancers share.
#[derive(Debug)]
pub struct RawLb {
    pub span: Range<usize>,
    pub floating_address: Option<Spanned<String>>,
    pub virtual_router_id: Option<Spanned<i64>>,
    pub interface: Option<Spanned<String>>,
}

pub const ROUTER_ID: Bounds = Bounds { min: 1, max: 255 };

impl RawHardening {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawHardening> {
        let reboot = r.opt_str(
            &mut t,
            "reboot",
            "\"never\", or the time of day of the first host's reboot as HH:MM, like \"03:00\"",
        );
        let reboot_spacing = r.opt_int(&mut t, "reboot_spacing", REBOOT_SPACING);
        let span = t.span.clone();
        r.finish(t);
        Some(RawHardening {
            span,
            reboot: reboot?,
            reboot_spacing: reboot_spacing?,
        })
    }
}

impl RawBackup {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawBackup> {
        let keep_days = r.opt_int(&mut t, "keep_days", KEEP_DAYS);
        let time = r.opt_str(
            &mut t,
            "time",
            "the time of day of the nightly dump, host time, like \"03:15\"",
        );
        r.finish(t);
        Some(RawBackup {
            keep_days: keep_days?,
            time: time?,
        })
    }
}

impl RawFirewall {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawFirewall> {
        let admin_sources = r.req_str_list(
            &mut t,
            "admin_sources",
            "networks SSH is let in from, like \"203.0.113.0/24\"",
        );
        r.finish(t);
        Some(RawFirewall {
            admin_sources: admin_sources?,
        })
    }
}

impl RawLb {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawLb> {
        let floating_address = r.opt_str(
            &mut t,
            "floating_address",
            "an address with its prefix length, like \"203.0.113.50/24\"",
        );
        let virtual_router_id = r.opt_int(&mut t, "virtual_router_id", ROUTER_ID);
        let interface = r.opt_str(
            &mut t,
            "interface",
            "a network interface name like \"eth0\"",
        );
        let span = t.span.clone();
        r.finish(t);
        Some(RawLb {
            span,
            floating_address: floating_address?,
            virtual_router_id: virtual_router_id?,
            interface: interface?,
        })
    }
}
