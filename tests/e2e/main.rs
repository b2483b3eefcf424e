//! End-to-end suites: both nodes over gRPC, on SQLite and on PostgreSQL.

mod activation;
mod audit;
mod cards;
mod clock;
mod edges;
mod faults;
mod feed;
mod fixtures;
mod lifecycle;
mod metrics;
mod pay;
mod processes;
mod property;
mod races;
mod readme;
mod recon;
mod recon_days;
mod records;
mod refund;
mod serving;
mod signup;
