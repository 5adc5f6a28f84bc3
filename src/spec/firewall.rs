//! `[firewall]`: an nftables ruleset on every host that lets in only what its roles serve, SSH only
//! from the operator's networks. Which ports each role opens is the firewall component's; here the
//! admin networks are read, and kept with their place in the file for the check made before any
//! host is contacted (`Firewall::cuts_off`).

use super::check::Checker;
use super::lb::{in_network, network_of};
use crate::error::{shown, SpecError};
use crate::inventory::RawFirewall;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Firewall {
    /// Networks SSH is let in from (address, prefix length), host bits cleared.
    pub admin_sources: Vec<(IpAddr, u8)>,
    /// Where `admin_sources` is written: the place an error about them points at.
    pub at: SpecError,
}

const ADMIN_SOURCE: &str =
    "a network like \"203.0.113.0/24\" or \"2001:db8::/48\", or one address like \"203.0.113.7\"";

/// `203.0.113.0/24` or one address; the host bits of a network are cleared.
pub fn parse_network(v: &str) -> Result<(IpAddr, u8), crate::error::Allowed> {
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| ADMIN_SOURCE)?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.parse().ok().filter(|p| *p <= max).ok_or(ADMIN_SOURCE)?,
        None => max,
    };
    Ok((network_of(addr, prefix), prefix))
}

impl Firewall {
    /// Whether SSH from `source` is let in.
    pub fn admits(&self, source: IpAddr) -> bool {
        self.admin_sources
            .iter()
            .any(|(net, prefix)| in_network(source, *net, *prefix))
    }

    /// The error for a host this machine would reach over SSH from `source`, which the admin
    /// networks leave out: once the ruleset is live, provision could not come back.
    pub fn cuts_off(&self, host: &str, address: &str, source: IpAddr) -> Option<SpecError> {
        if self.admits(source) {
            return None;
        }
        let mut e = self.at.clone();
        e.message = format!(
            "would block SSH from this machine to host {host}: it reaches {address} from {source}, which no admin source covers; allowed: networks that include {source} (or reach the host through a jump host the admin sources cover)"
        );
        Some(e)
    }
}

impl Checker<'_> {
    pub(super) fn firewall(&mut self, f: &RawFirewall) -> Option<Firewall> {
        let list = f.admin_sources.get_ref();
        if list.is_empty() {
            self.fail(
                f.admin_sources.span(),
                "firewall.admin_sources",
                format!("found an empty list; allowed: one or more of {ADMIN_SOURCE} (SSH is let in only from them)"),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, v) in list.iter().enumerate() {
            let key = format!("firewall.admin_sources[{i}]");
            match self.check(v, &key, parse_network) {
                Some(n) if out.contains(&n) => {
                    self.fail(
                        v.span(),
                        &key,
                        format!(
                            "found {} twice; allowed: each network once",
                            shown(v.get_ref())
                        ),
                    );
                    ok = false;
                }
                Some(n) => out.push(n),
                None => ok = false,
            }
        }
        let at = self.map.error(
            f.admin_sources.span(),
            "firewall.admin_sources",
            String::new(),
        );
        ok.then_some(Firewall {
            admin_sources: out,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_network;

    #[test]
    fn networks_and_addresses_parse_with_host_bits_cleared() {
        assert_eq!(
            parse_network("198.18.0.7/24").unwrap(),
            ("198.18.0.0".parse().unwrap(), 24)
        );
        assert_eq!(
            parse_network("203.0.113.7").unwrap(),
            ("203.0.113.7".parse().unwrap(), 32)
        );
        assert_eq!(
            parse_network("2001:db8::1/48").unwrap(),
            ("2001:db8::".parse().unwrap(), 48)
        );
        assert!(parse_network("198.18.0.0/33").is_err());
        assert!(parse_network("office").is_err());
        assert!(parse_network("0.0.0.0/0").is_ok());
    }
}
