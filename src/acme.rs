//! ACME certificates (issue 24): the pure parts of the component to come, which do not depend on
//! how the inventory names its sites. A site's DNS-01 challenge zone (its name, the names its TSIG
//! key may change, the records the site's own zone delegates and points there with), and what the
//! host's `provision-acme status` says of each certificate, read into values for `plan` (needs
//! attention) and `check` (names, issuer, days left).
//!
//! The host side is `templates/acme/provision-acme`; its status file is one `KEY VALUE` line each,
//! a `site` line first.

use crate::component::Report;

/// The challenge zones of a site whose certificate is asked for over DNS-01: one for each name
/// the CA asks a TXT record of (`_acme-challenge.<name>`, the name without its `*.`), each
/// delegated from the site's zone to the dns hosts, where named owns its records (dynamic updates)
/// and the site's TSIG key may change its apex's TXT records and nothing else. A zone per name, not
/// one zone with CNAMEs into it: an authoritative-only server does not chase a CNAME into another
/// zone, and a CA's resolver need not either; provision's zone file is never written by named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeZone {
    /// The zones, fully qualified without the final dot, in the order of the names.
    pub zones: Vec<String>,
    /// Their owners in the site's zone, relative to the domain (`_acme-challenge`,
    /// `_acme-challenge.shop`): each delegated (NS) to the dns hosts.
    pub owners: Vec<String>,
}

/// The name of the TSIG key that may change a site's challenge records (on the dns hosts and in
/// the web hosts' nsupdate).
pub fn tsig_key_name(domain: &str) -> String {
    format!("acme-{domain}")
}

/// The TSIG key of `domain` as named and nsupdate read it (`secret`: base64; the derived key's
/// hex digits are base64 too).
pub fn tsig_key_file(domain: &str, secret: &str) -> String {
    format!(
        "key \"{}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n",
        tsig_key_name(domain)
    )
}

/// A name of the site that is not in its domain: no challenge record of its zone can prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideDomain {
    pub name: String,
    pub domain: String,
}

impl std::fmt::Display for OutsideDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not in {}; allowed with dns-01: the domain and names under it",
            self.name, self.domain
        )
    }
}

impl std::error::Error for OutsideDomain {}

impl ChallengeZone {
    /// The challenge zones of `domain` for a certificate of `names` (`*.` allowed), in their order.
    pub fn new(domain: &str, names: &[String]) -> Result<ChallengeZone, OutsideDomain> {
        let mut out = ChallengeZone {
            zones: Vec::new(),
            owners: Vec::new(),
        };
        for n in names {
            let base = n.strip_prefix("*.").unwrap_or(n);
            let owner = if base == domain {
                "_acme-challenge".to_string()
            } else if let Some(label) = base.strip_suffix(&format!(".{domain}")) {
                format!("_acme-challenge.{label}")
            } else {
                return Err(OutsideDomain {
                    name: n.clone(),
                    domain: domain.to_string(),
                });
            };
            if !out.owners.contains(&owner) {
                out.zones.push(format!("{owner}.{domain}"));
                out.owners.push(owner);
            }
        }
        Ok(out)
    }
}

/// What the server is given, as the host's status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// The certificate the CA issued last.
    Issued,
    /// The self-signed stand-in, until the CA's first certificate.
    Placeholder,
    /// An earlier certificate: the newest did not go live, or someone put another there.
    Previous,
    /// No certificate file at all.
    Missing,
}

/// How the last try with the CA went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NotYet,
    Ok,
    Failed,
}

/// One site's certificate on a host, from `provision-acme status`. Times are seconds since the
/// epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStatus {
    pub site: String,
    pub wanted: Vec<String>,
    pub challenge: String,
    pub directory: String,
    pub serving: Serving,
    pub names: Vec<String>,
    pub issuer: String,
    pub not_after: Option<i64>,
    pub renew_at: Option<i64>,
    pub outcome: Outcome,
    pub failures: u32,
    pub next_try: Option<i64>,
    pub error: String,
}

const DAY: i64 = 86400;

impl CertStatus {
    /// The status of every site in the lines (each site's starts with its `site` line); unknown
    /// keys are skipped, so a newer host script can say more.
    pub fn parse_all<S: AsRef<str>>(lines: &[S]) -> Vec<CertStatus> {
        let mut out: Vec<CertStatus> = Vec::new();
        for line in lines {
            let line = line.as_ref();
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            if key == "site" {
                out.push(CertStatus::empty(value));
                continue;
            }
            let Some(s) = out.last_mut() else { continue };
            let time = || value.parse::<i64>().ok().filter(|t| *t > 0);
            let words = || value.split_whitespace().map(str::to_string).collect();
            match key {
                "wanted" => s.wanted = words(),
                "challenge" => s.challenge = value.to_string(),
                "directory" => s.directory = value.to_string(),
                "serving" => s.serving = serving(value),
                "names" => s.names = words(),
                "issuer" => s.issuer = value.to_string(),
                "not_after" => s.not_after = time(),
                "renew_at" => s.renew_at = time(),
                "result" => s.outcome = outcome(value),
                "failures" => s.failures = value.parse().unwrap_or(0),
                "next_try" => s.next_try = time(),
                "error" => s.error = value.trim().to_string(),
                _ => {}
            }
        }
        out
    }

    fn empty(site: &str) -> CertStatus {
        CertStatus {
            site: site.to_string(),
            wanted: Vec::new(),
            challenge: String::new(),
            directory: String::new(),
            serving: Serving::Missing,
            names: Vec::new(),
            issuer: String::new(),
            not_after: None,
            renew_at: None,
            outcome: Outcome::NotYet,
            failures: 0,
            next_try: None,
            error: String::new(),
        }
    }

    /// Whole days until the served certificate ends (negative once it has).
    pub fn days_left(&self, now: i64) -> Option<i64> {
        self.not_after.map(|t| (t - now).div_euclid(DAY))
    }

    /// How long the served certificate has left, in words: days, or hours in its last two days.
    fn left(&self, now: i64) -> String {
        match self.not_after.map(|t| t - now) {
            None => "an unknown time".to_string(),
            Some(s) if s < 2 * DAY => format!("{} h", s.max(0) / 3600),
            Some(s) => format!("{} days", s / DAY),
        }
    }

    /// Why the certificate needs a look (`plan` says "needs attention"), if it does: none is
    /// served, the served one has ended, or the CA's last answer was a failure.
    pub fn attention(&self, now: i64) -> Option<String> {
        self.problem(now).map(|p| format!("{}: {p}", self.site))
    }

    fn problem(&self, now: i64) -> Option<String> {
        let failed = || {
            let tries = match self.failures {
                1 => "1 try".to_string(),
                n => format!("{n} tries"),
            };
            let next = self
                .next_try
                .map(|t| format!("; next try in {} min", (t - now).max(0) / 60))
                .unwrap_or_default();
            format!("the CA gave no certificate ({tries}: {}){next}", self.error)
        };
        let failing = self.outcome == Outcome::Failed;
        if self.serving == Serving::Missing {
            return Some("no certificate file".to_string());
        }
        if self.not_after.is_some_and(|t| t <= now) {
            let why = if failing {
                format!("; {}", failed())
            } else {
                String::new()
            };
            return Some(format!("the certificate served has ended{why}"));
        }
        match (self.serving, failing) {
            (Serving::Placeholder, true) => Some(format!("still the placeholder: {}", failed())),
            (_, true) => Some(format!(
                "{}; the certificate served ends in {}",
                failed(),
                self.left(now)
            )),
            _ => None,
        }
    }

    /// `provision check`'s line: names, issuer, days left; not ok unless a certificate the CA
    /// issued is served and nothing needs attention.
    pub fn report(&self, now: i64) -> Report {
        let names = self.names.join(" ");
        let what = match self.serving {
            Serving::Issued | Serving::Previous => {
                format!("{names} by {}, {} left", self.issuer, self.left(now))
            }
            Serving::Placeholder => {
                format!("{names}: a self-signed placeholder until the CA's certificate")
            }
            Serving::Missing => "none".to_string(),
        };
        let problem = self.problem(now);
        Report {
            ok: problem.is_none() && matches!(self.serving, Serving::Issued | Serving::Previous),
            text: match problem {
                Some(p) => format!("certificate of {}: {what}: {p}", self.site),
                None => format!("certificate of {}: {what}", self.site),
            },
        }
    }
}

fn serving(v: &str) -> Serving {
    match v {
        "issued" => Serving::Issued,
        "placeholder" => Serving::Placeholder,
        "previous" => Serving::Previous,
        _ => Serving::Missing,
    }
}

fn outcome(v: &str) -> Outcome {
    match v {
        "ok" => Outcome::Ok,
        "failed" => Outcome::Failed,
        _ => Outcome::NotYet,
    }
}

#[cfg(test)]
mod tests;
