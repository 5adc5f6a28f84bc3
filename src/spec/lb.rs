//! `[lb]` and the load balancers: one or two `lb` hosts; two share a floating address (VRRP), which
//! must lie in the network of both public addresses and is named with its prefix length.

use super::check::Checker;
use super::{Host, Lb, Role};
use crate::inventory::{RawInventory, ROUTER_ID};
use std::net::IpAddr;
use toml::Spanned;

/// `203.0.113.50/24`: an address and a prefix length that fits it.
fn parse_cidr(v: &str) -> Result<(IpAddr, u8), crate::error::Allowed> {
    let allowed = "an address with its prefix length, like \"203.0.113.50/24\"";
    let (a, p) = v.split_once('/').ok_or(allowed)?;
    let addr: IpAddr = a.parse().map_err(|_| allowed)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = p.parse().ok().filter(|p| *p <= max).ok_or(allowed)?;
    Ok((addr, prefix))
}

/// A network interface's name as Linux allows it.
fn parse_interface(v: &str) -> Result<String, crate::error::Allowed> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err("an interface name: letters, digits and . _ - @, at most 15 characters".into())
    }
}

/// Whether `a` lies in `net/prefix` (of `net`'s family).
pub fn in_network(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    a.is_ipv4() == net.is_ipv4() && network_of(a, prefix) == network_of(net, prefix)
}

/// `a` with the bits past `prefix` cleared (`prefix` at most 32 for IPv4, 128 for IPv6).
pub fn network_of(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl Checker<'_> {
    pub(super) fn lb(&mut self, raw: &RawInventory, hosts: Option<&[Host]>) -> Option<Option<Lb>> {
        let lbs: Vec<(usize, &Host)> = hosts
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .filter(|(_, h)| h.has(Role::Lb))
            .collect();
        let roles_span = |i: usize| raw.hosts[i].roles.span();
        let Some(t) = &raw.lb else {
            if lbs.len() == 2 {
                let (i, _) = lbs[1];
                self.fail(
                    roles_span(i),
                    &format!("hosts[{i}].roles"),
                    "a second \"lb\" host and no [lb] table: two load balancers share a floating address; allowed: [lb] with floating_address and virtual_router_id, or one \"lb\" host".into(),
                );
                return None;
            }
            return Some(None);
        };
        let floating = match &t.floating_address {
            Some(f) => self.check(f, "lb.floating_address", parse_cidr),
            None => {
                self.fail(
                    t.span.clone(),
                    "lb",
                    "no floating_address; allowed: floating_address = \"ADDRESS/PREFIX\" in the network of the load balancers".into(),
                );
                None
            }
        };
        let router_id = match &t.virtual_router_id {
            Some(v) => self
                .int(v, "lb.virtual_router_id", ROUTER_ID)
                .map(|v| v as u8),
            None => {
                self.fail(
                    t.span.clone(),
                    "lb",
                    format!("no virtual_router_id; allowed: a number from {} to {}, unique among the VRRP routers of the network", ROUTER_ID.min, ROUTER_ID.max),
                );
                None
            }
        };
        let interface = match &t.interface {
            Some(i) => self.check(i, "lb.interface", parse_interface).map(Some),
            None => Some(None),
        };
        let (addr, prefix) = floating?;
        if let Some(f) = &t.floating_address {
            self.floating_joins(f, (addr, prefix), &lbs);
        }
        Some(Some(Lb {
            floating_address: addr,
            prefix_len: prefix,
            virtual_router_id: router_id?,
            interface: interface?,
        }))
    }

    /// The floating address `f` names `addr/prefix`: it joins exactly two load balancers in the
    /// network of their public addresses, and is none of theirs. Each mistake recorded.
    fn floating_joins(
        &mut self,
        f: &Spanned<String>,
        (addr, prefix): (IpAddr, u8),
        lbs: &[(usize, &Host)],
    ) {
        if lbs.len() != 2 {
            self.fail(
                f.span(),
                "lb.floating_address",
                format!(
                    "found with {} \"lb\" host(s); allowed: [lb] with exactly two load balancers",
                    lbs.len()
                ),
            );
        }
        for (i, h) in lbs {
            // Clients reach the site at the load balancers' public addresses: the floating
            // address joins them there.
            let a = h.public_address;
            if !in_network(a, addr, prefix) {
                self.fail(
                    f.span(),
                    "lb.floating_address",
                    format!(
                        "{addr}/{prefix} is not in the network of hosts[{i}] ({a}); allowed: an address the load balancers share a network with"
                    ),
                );
            }
            if a == addr {
                self.fail(
                    f.span(),
                    "lb.floating_address",
                    format!("{addr} is hosts[{i}]'s own address; allowed: an address no host has"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_in_or_out_of_a_network() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(a("198.18.0.20"), a("198.18.0.19"), 24));
        assert!(!in_network(a("198.18.1.20"), a("198.18.0.19"), 24));
        assert!(in_network(a("10.1.2.3"), a("10.9.9.9"), 8));
        assert!(in_network(a("2001:db8::1"), a("2001:db8::ff"), 64));
        assert!(!in_network(a("2001:db9::1"), a("2001:db8::ff"), 64));
        assert!(in_network(a("1.2.3.4"), a("5.6.7.8"), 0));
    }

    #[test]
    fn cidrs_need_a_fitting_prefix() {
        assert!(parse_cidr("198.18.0.19/24").is_ok());
        assert!(parse_cidr("198.18.0.19").is_err());
        assert!(parse_cidr("198.18.0.19/33").is_err());
        assert!(parse_cidr("2001:db8::5/64").is_ok());
    }
}
