//! The subcommands a person types besides `run`: each talks to the running
//! daemon over its control socket ([`crate::protocol`]) or, for `ipvs`, to
//! the kernel, and prints what it gets.

pub mod ipvs;
pub mod operate;
pub mod show;
