//! The library behind `ibsim`: starting both nodes together (`pair`), the demo data (`demo`),
//! and the clients the subcommands use.

pub mod demo;
pub mod pair;
