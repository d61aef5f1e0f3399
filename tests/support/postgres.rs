//! A private PostgreSQL database per test, created on the server that
//! `RPS_CDS_TEST_POSTGRES_URL` names (`eval "$(bash .ci/postgres.sh)"` starts one) and
//! dropped when the value is dropped.

use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

pub const PG_ENV: &str = "RPS_CDS_TEST_POSTGRES_URL";

pub struct TestPostgres {
    /// URL of the new database.
    pub url: String,
    admin: String,
    name: String,
}

impl TestPostgres {
    /// `None` (the PostgreSQL variant is skipped) when the variable is not set, except in CI,
    /// where a missing database is a failure: those tests must run there.
    pub async fn create() -> Option<TestPostgres> {
        let admin = match std::env::var(PG_ENV) {
            Ok(u) if !u.is_empty() => u,
            _ if std::env::var_os("CI").is_some() => panic!(
                "CI is set but {PG_ENV} is not: the PostgreSQL tests must run in CI \
                 (eval \"$(bash .ci/postgres.sh)\" before cargo test)"
            ),
            _ => {
                eprintln!("{PG_ENV} not set: skipping the PostgreSQL variant");
                return None;
            }
        };
        let name = format!("rps_cds_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Some(TestPostgres {
            url: url.to_string(),
            admin,
            name,
        })
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
