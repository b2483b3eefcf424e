//! End-to-end suites: both nodes over gRPC, on SQLite and on PostgreSQL.

mod activation;
mod cards;
mod clock;
mod faults;
mod lifecycle;
mod pay;
mod serving;
mod signup;
