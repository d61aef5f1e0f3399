//! The `storage` test binary: the audit store on SQLite and on PostgreSQL
//! (`support::postgres`, a private database per test), and the real binary killed with
//! SIGKILL under load (`durability`). A binary of its own, so that its load and kill
//! scenarios, with their time limits, do not share the two cores with the HTTP tests of
//! `api`, and so that the PostgreSQL tests can be run alone
//! (`cargo test --test storage`).

/// The parts of the shared support tree (`tests/support/`) this binary uses.
#[path = "../support"]
mod support {
    pub mod postgres;
}

mod durability;
mod storage;
