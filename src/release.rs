//! The operating system releases provision knows, and what each ships that the components need
//! (the PHP version). A host's release is a fact (`/etc/os-release`); an inventory may name one per
//! host (`hosts.release`) for `render`, which otherwise renders for the current stable Debian.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Release {
    /// `ID` in os-release: `debian`, `ubuntu`.
    pub id: &'static str,
    /// `VERSION_ID`: `12`, `13`, `24.04`.
    pub version: &'static str,
    pub codename: &'static str,
    /// The PHP the release ships (`php<v>-fpm`, `/etc/php/<v>`).
    pub php: &'static str,
    /// Converged end to end by the test suite (the others are designed for, not tested).
    pub tested: bool,
}

pub const DEBIAN_12: Release = Release {
    id: "debian",
    version: "12",
    codename: "bookworm",
    php: "8.2",
    tested: true,
};

pub const DEBIAN_13: Release = Release {
    id: "debian",
    version: "13",
    codename: "trixie",
    php: "8.4",
    tested: true,
};

pub const SUPPORTED: [Release; 4] = [
    DEBIAN_12,
    DEBIAN_13,
    Release {
        id: "ubuntu",
        version: "22.04",
        codename: "jammy",
        php: "8.1",
        tested: false,
    },
    Release {
        id: "ubuntu",
        version: "24.04",
        codename: "noble",
        php: "8.3",
        tested: false,
    },
];

/// What `render` renders for when neither the inventory nor `--release` names a release.
pub const CURRENT_STABLE: Release = DEBIAN_13;

impl Release {
    /// The release a host reports (`ID`, `VERSION_ID`), if provision supports it.
    pub fn find(id: &str, version: &str) -> Option<Release> {
        SUPPORTED
            .into_iter()
            .find(|r| r.id == id && r.version == version)
    }

    /// A release as a user names it: its codename (`trixie`), or `debian 13` / `debian-13`.
    pub fn parse(name: &str) -> Result<Release, crate::error::Allowed> {
        let n = name.trim().to_ascii_lowercase();
        SUPPORTED
            .into_iter()
            .find(|r| {
                n == r.codename
                    || n == format!("{} {}", r.id, r.version)
                    || n == format!("{}-{}", r.id, r.version)
            })
            .ok_or_else(|| allowed().into())
    }

    /// `debian 13 (trixie)`.
    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.id, self.version, self.codename)
    }
}

/// The "allowed:" text for a release name.
pub fn allowed() -> String {
    let names: Vec<String> = SUPPORTED
        .iter()
        .map(|r| {
            format!(
                "\"{}\" ({} {}{})",
                r.codename,
                r.id,
                r.version,
                if r.tested { "" } else { ", untested" }
            )
        })
        .collect();
    names.join(", ")
}

/// The message for a host that runs a release provision does not support.
pub fn unsupported(host: &str, id: &str, version: &str, codename: &str) -> String {
    format!(
        "{host} runs {id} {version} ({codename}), which provision does not support; nothing was changed. Supported: {}",
        allowed()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_found_by_fact_and_by_name() {
        assert_eq!(Release::find("debian", "13"), Some(DEBIAN_13));
        assert_eq!(Release::find("debian", "11"), None);
        assert_eq!(Release::find("centos", "9"), None);
        for name in ["trixie", "debian 13", "Debian-13", " TRIXIE "] {
            assert_eq!(Release::parse(name), Ok(DEBIAN_13), "{name}");
        }
        assert!(Release::parse("bullseye")
            .unwrap_err()
            .contains("\"bookworm\" (debian 12)"));
    }

    #[test]
    fn the_message_for_an_unsupported_host_names_it_and_what_is_allowed() {
        let m = unsupported("web-01", "debian", "11", "bullseye");
        assert!(m.starts_with("web-01 runs debian 11 (bullseye)"));
        assert!(
            m.contains("\"trixie\" (debian 13)") && m.contains("noble\" (ubuntu 24.04, untested)")
        );
    }
}
