//! All integration tests build into this one binary and drive the real `provision` binary.

// The Vagrant VM's end-to-end test spends most of the run under QEMU's software emulation. libtest
// starts tests in the order of their names, so this module's name sorts first: the VM boots beside
// the lab's tests, two at a time as always, instead of alone after the last of them.
#[path = "vagrant.rs"]
mod a_vagrant;
mod accounts;
mod acme;
mod app;
mod cli;
mod component;
mod cut;
mod e2e;
mod errors;
mod faults;
mod guard;
mod lab;
mod load;
mod readme;
mod render;
mod sites;
mod ssh;
mod trust;
mod undo;
mod util;
mod wordpress;
