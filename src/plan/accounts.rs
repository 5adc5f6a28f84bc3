//! Accounts: a desired account the host lacks is made, a change of its own (after the packages,
//! before anything is staged, as files owned by it and configs naming it need it). An account of
//! a desired name that provision did not make (a person's login, a package's user) is never taken
//! over: the host is refused before anything changes.

use super::ChangeKind;
use crate::desired::{Account, Desired};
use crate::facts::Facts;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountChange {
    /// The user's name, and its group's.
    pub name: String,
    pub action: ChangeKind,
    pub reason: String,
    pub home: String,
    pub comment: String,
}

impl AccountChange {
    /// `create user shop (group shop) for site shop.example.com`: how plans and runs name it.
    pub fn line(&self) -> String {
        format!(
            "create user {} (group {}) for {}",
            self.name, self.name, self.comment
        )
    }

    /// The account it makes.
    pub fn account(&self) -> Account {
        Account {
            name: self.name.clone(),
            home: self.home.clone(),
            comment: self.comment.clone(),
        }
    }
}

/// The desired accounts the host has neither a user nor a group of (any other case is either
/// provision's own account, or one `refusal` names).
pub fn missing(d: &Desired, f: &Facts) -> Vec<AccountChange> {
    d.accounts
        .iter()
        .filter(|a| !f.users.contains_key(&a.name) && !f.groups.contains_key(&a.name))
        .map(|a| AccountChange {
            name: a.name.clone(),
            action: ChangeKind::Create,
            reason: format!(
                "the host has no user {}; home {} (not created), no login shell",
                a.name, a.home
            ),
            home: a.home.clone(),
            comment: a.comment.clone(),
        })
        .collect()
}

/// Why provision must not change the host: a desired account's name is taken by a user or group
/// it did not make, or its own user lost its group. Every such account is named.
pub fn refusal(d: &Desired, f: &Facts) -> Option<String> {
    let problems: Vec<String> = d.accounts.iter().filter_map(|a| problem(a, f)).collect();
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{}: {}; provision takes over no account it did not make: give what needs it another name in the inventory, or remove that account from the host; nothing was changed",
        d.host,
        problems.join("; ")
    ))
}

fn problem(a: &Account, f: &Facts) -> Option<String> {
    let name = &a.name;
    let group = f.groups.get(name);
    match f.users.get(name) {
        Some(u) if !u.is_provisions() => {
            let what = if u.shell.ends_with("/nologin") || u.shell.ends_with("/false") {
                format!("uid {}, home {}, no login", u.uid, u.home)
            } else {
                format!("a login account: uid {}, shell {}, home {}", u.uid, u.shell, u.home)
            };
            Some(format!(
                "user {name} exists already and provision did not make it ({what})"
            ))
        }
        Some(u) if group != Some(&u.gid) => Some(format!(
            "provision's user {name} has lost its group: its gid {} is not that of a group {name}",
            u.gid
        )),
        Some(_) => None,
        None => group.map(|gid| {
            format!("group {name} (gid {gid}) exists already without a user {name}, and provision did not make it")
        }),
    }
}
