//! provision: declarative provisioning of classic web stacks.
//!
//! Data flows one way: inventory → `spec` → `render` (Desired per host) → plan → apply. The modules
//! up to the plan are pure; only transport, apply and ui touch the world.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod desired;
pub mod error;
pub mod facts;
pub mod health;
pub mod inventory;
pub mod local_check;
pub mod manifest;
pub mod names;
pub mod plan;
pub mod render;
pub mod script;
pub mod secret;
pub mod spec;
pub mod templates;
pub mod transport;
pub mod tree;
pub mod ui;
pub mod zone;
