//! End-to-end suites: both nodes over gRPC, on SQLite and on PostgreSQL.

mod activation;
mod cards;
mod lifecycle;
mod serving;
mod signup;
