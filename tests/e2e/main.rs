//! End-to-end tests: the real `berthd` on a temp data root and socket, driven by the real
//! `berth` binary. All end-to-end tests build into this one binary.
//!
//! The example guests must be built first (`scripts/build-examples.sh`, which the test
//! command runs).

mod harness;

mod access;
mod build;
mod containers;
mod diskfull;
mod docker_cli;
mod durability;
mod errors;
mod isolation;
mod network;
mod registry;
mod sdk;
