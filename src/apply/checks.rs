//! The checks a host must run (`HealthCheck::Remote`), over SSH: on the checked host through its
//! own connection, on another host of the inventory (a web host reaching the database) through a
//! connection opened for the checks and kept while they run.

use super::{as_root, connect, Context};
use crate::desired::HealthCheck;
use crate::health::{CheckFailed, Remote};
use crate::transport::{Output, Transport};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The inventory's hosts as the checks reach them.
pub struct Hosts<'a, 'c> {
    ctx: &'a Context<'c>,
    /// The checked host's name and connection, lent for the checks.
    own: Option<(&'a str, Mutex<&'a mut dyn Transport>)>,
    /// Every other host's connection, opened when a check first needs it.
    others: HashMap<&'a str, Mutex<Option<Box<dyn Transport>>>>,
}

impl<'a, 'c> Hosts<'a, 'c> {
    pub fn new(ctx: &'a Context<'c>, own: Option<(&'a str, &'a mut dyn Transport)>) -> Self {
        Hosts {
            ctx,
            own: own.map(|(name, t)| (name, Mutex::new(t))),
            others: ctx
                .spec
                .hosts
                .iter()
                .map(|h| (h.name.as_str(), Mutex::new(None)))
                .collect(),
        }
    }

    fn exec(&self, name: &str, command: &str) -> Result<Output, CheckFailed> {
        let failed = |e: &str| {
            CheckFailed(format!(
                "over SSH on {name}: {}",
                self.ctx.redactor.redact(e)
            ))
        };
        let (Some(host), Some(slot)) = (self.ctx.spec.host(name), self.others.get(name)) else {
            return Err(failed("no such host in the inventory"));
        };
        let command = as_root(self.ctx, host, command);
        if let Some((own, t)) = &self.own {
            if *own == name {
                let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
                return t.exec(&command, b"").map_err(|e| failed(&e.0));
            }
        }
        if self.ctx.opts.local {
            return Err(failed("--local reaches only this machine"));
        }
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let t = match slot.as_mut() {
            Some(t) => t,
            None => slot.insert(connect(self.ctx, host).map_err(|e| failed(e.message()))?),
        };
        let answer = t.exec(&command, b"");
        if answer.is_err() {
            // The next try connects again.
            *slot = None;
        }
        answer.map_err(|e| failed(&e.0))
    }
}

impl Remote for Hosts<'_, '_> {
    fn check(&self, check: &HealthCheck) -> Result<String, CheckFailed> {
        let HealthCheck::Remote {
            host,
            component,
            command,
            ..
        } = check
        else {
            return Err(CheckFailed("not a check run on a host (a bug)".into()));
        };
        let reader = self
            .ctx
            .registry
            .get(component)
            .ok_or_else(|| CheckFailed(format!("no component {component} reads this check")))?;
        let answer = self.exec(host, command)?;
        reader
            .read_check(self.ctx.spec, &answer)
            .map_err(|e| CheckFailed(self.ctx.redactor.redact(&e.0)))
            .map(|ok| self.ctx.redactor.redact(&ok))
    }
}
