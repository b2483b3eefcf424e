//! The library behind `ibsim`: starting both nodes together (`pair`), fixtures (`fixtures`, with
//! the demo data), and the clients the subcommands use.

pub mod fixtures;
pub mod pair;
