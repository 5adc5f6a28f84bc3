//! provision: declarative provisioning of classic web stacks.
//!
//! Data flows one way:
//!
//! ```text
//! inventory ─spec→ Spec ─render (components)→ Desired ─┐
//!        host ─facts (one probe)→ Facts + component needs ─┴→ plan → apply script → checks → generation
//! ```
//!
//! `spec`, `render`, `component`, `facts` (parsing), `plan` and `script` (generation) are pure; only
//! `transport`, `apply`, `commands` and `ui` touch the world. Services live in `component`, one file
//! each; nothing else names one.

pub mod acme;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod component;
pub mod desired;
pub mod error;
pub mod exit;
pub mod facts;
pub mod health;
pub mod host_state;
pub mod inventory;
pub mod names;
pub mod plan;
pub mod pool;
pub mod quote;
pub mod release;
pub mod render;
pub mod script;
pub mod secret;
pub mod spec;
pub mod transport;
pub mod tree;
pub mod tuning;
pub mod ui;
