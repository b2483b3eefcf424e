//! The starting point every schedule of a run copies.

use super::*;

/// The starting point every schedule of a run copies: the customers with their cards (1000.00
/// each), platform accounts, activated card-links and live sessions, and both clocks frozen at
/// the start. Made once per run (the argon2 hashing of passwords is most of a set-up's cost).
pub struct Template {
    pub(super) customers: Vec<Customer>,
    pub(super) deposited_fen: i64,
    pub(super) store: TemplateStore,
}

pub(super) enum TemplateStore {
    Files {
        _dir: tempfile::TempDir,
        bank: std::path::PathBuf,
        platform: std::path::PathBuf,
    },
    Postgres {
        base: String,
        names: Vec<String>,
    },
}

impl Template {
    /// Sets the customers up on a pair of their own, stops it, and keeps its databases. With
    /// `fixtures`, the file is loaded and its first activated sign-ups of NORMAL cards and
    /// accounts are the customers (a tester's own data); otherwise the explorer makes its own.
    pub async fn make(
        database: Option<&str>,
        seed: u64,
        fixtures: Option<&crate::fixtures::Fixtures>,
    ) -> anyhow::Result<Template> {
        let dir = scratch_dir()?;
        let (bank_db, platform_db, pg) = match database {
            None => (
                shared::store::sqlite_url_in(&dir.path().join("bank"), "bank.db")?,
                shared::store::sqlite_url_in(&dir.path().join("platform"), "platform.db")?,
                None,
            ),
            Some(base) => {
                let names = pg_names();
                let urls = shared::store::create_databases(base, &names).await?;
                (
                    urls[0].clone(),
                    urls[1].clone(),
                    Some((base.to_owned(), names)),
                )
            }
        };
        let bank_file = dir.path().join("bank").join("bank.db");
        let platform_file = dir.path().join("platform").join("platform.db");
        let mut w = World::on(dir, bank_db, platform_db, None, seed, 1).await?;
        let now = w.now;
        w.freeze_at(now).await?;
        match fixtures {
            None => {
                for i in 0..CUSTOMERS {
                    let c = w.new_customer(i).await?;
                    w.customers.push(c);
                    w.sign_up(i, LIMIT_TEMPLATE_FEN).await?;
                    anyhow::ensure!(
                        w.customers[i].signup_id.is_some(),
                        "the template's customer {i} could not sign up"
                    );
                }
            }
            Some(f) => w.fixture_customers(f).await?,
        }
        let World {
            pair,
            _dir: dir,
            customers,
            deposited_fen,
            ..
        } = w;
        pair.stop().await?;
        let store = match pg {
            None => TemplateStore::Files {
                _dir: dir,
                bank: bank_file,
                platform: platform_file,
            },
            Some((base, names)) => TemplateStore::Postgres { base, names },
        };
        Ok(Template {
            customers,
            deposited_fen,
            store,
        })
    }

    /// Drops the template's databases (PostgreSQL; files go with their directory).
    pub async fn drop(self) {
        if let TemplateStore::Postgres { base, names } = self.store {
            shared::store::drop_databases(&base, &names).await;
        }
    }
}

/// The template's sign-up limit, fen; each schedule changes it to its plan's.
const LIMIT_TEMPLATE_FEN: i64 = 30_000;

/// A temporary directory, memory-backed where the machine has one: a schedule's files live for
/// seconds, and the explorer measures the nodes, not the disk's flushes.
pub(super) fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .context("a temporary directory")
}

/// Two new PostgreSQL database names.
pub(super) fn pg_names() -> Vec<String> {
    let tag = format!("{:016x}", rand::random::<u64>());
    ["bank", "platform"]
        .iter()
        .map(|n| format!("ibsim_explore_{tag}_{n}"))
        .collect()
}
