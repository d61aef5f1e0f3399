//! Replay protection: each (`iss`, `jti`) pair is accepted once while its token is valid.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Why the replay store could not answer. Callers must refuse the token (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The in-memory cache holds `capacity` unexpired entries; forgetting one would reopen a
    /// replay window, so new tokens are refused until entries expire.
    #[error("replay cache is full ({capacity} unexpired entries)")]
    CapacityExhausted { capacity: usize },
    #[error("replay store database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where seen `jti` values are remembered.
pub enum ReplayGuard {
    /// Per process: replays across several instances are not detected.
    Memory(MemoryReplayCache),
    /// Shared by every instance using the same database (table `jwt_replay`).
    Postgres(sqlx::PgPool),
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(m) => f
                .debug_struct("Memory")
                .field("capacity", &m.capacity)
                .finish(),
            Self::Postgres(_) => f.write_str("Postgres"),
        }
    }
}

/// How often (seconds) the Postgres store deletes expired rows; deleting on every insert
/// would double the write load for no security gain.
const PG_PURGE_INTERVAL_SECS: i64 = 60;

static PG_LAST_PURGE: AtomicI64 = AtomicI64::new(0);

impl ReplayGuard {
    pub fn memory(capacity: usize) -> Self {
        Self::Memory(MemoryReplayCache::new(capacity))
    }

    /// Records the pair and returns `true` if it was not seen before (and not yet expired);
    /// `false` means a replay.
    pub async fn first_use(
        &self,
        iss: &str,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, ReplayError> {
        match self {
            Self::Memory(cache) => cache.first_use(iss, jti, expires_at, Utc::now()),
            Self::Postgres(pool) => pg_first_use(pool, iss, jti, expires_at).await,
        }
    }
}

async fn pg_first_use(
    pool: &sqlx::PgPool,
    iss: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, ReplayError> {
    let now = Utc::now().timestamp();
    let last = PG_LAST_PURGE.load(Ordering::Relaxed);
    if now - last >= PG_PURGE_INTERVAL_SECS
        && PG_LAST_PURGE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        // Opportunistic clean-up; a failure here must not block authentication.
        if let Err(e) = sqlx::query("DELETE FROM jwt_replay WHERE expires_at < now()")
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, "purging expired jwt_replay rows failed");
        }
    }
    // An expired row that was not purged yet is overwritten rather than counted as a replay,
    // so the outcome does not depend on purge timing (same semantics as the memory cache).
    let done = sqlx::query(
        "INSERT INTO jwt_replay (iss, jti, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (iss, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at \
         WHERE jwt_replay.expires_at < now()",
    )
    .bind(iss)
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

type Key = (String, String);

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, DateTime<Utc>>,
    /// Same entries ordered by expiry, so expired ones are evicted oldest first in O(log n).
    by_expiry: BTreeSet<(DateTime<Utc>, Key)>,
}

/// Bounded in-memory replay cache.
pub struct MemoryReplayCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl MemoryReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of entries currently remembered (expired ones may linger until the next call).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // weakens the check (worst case a stale entry), so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `now` is a parameter so eviction can be tested without sleeping.
    pub fn first_use(
        &self,
        iss: &str,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ReplayError> {
        let mut inner = self.lock();
        // Evict expired entries first, so capacity is only "full" with live tokens.
        while let Some(first) = inner.by_expiry.first() {
            if first.0 > now {
                break;
            }
            let (_, key) = inner.by_expiry.pop_first().expect("first() was Some");
            inner.entries.remove(&key);
        }
        let key = (iss.to_owned(), jti.to_owned());
        if inner.entries.contains_key(&key) {
            return Ok(false);
        }
        if inner.entries.len() >= self.capacity {
            tracing::warn!(
                capacity = self.capacity,
                "JWT replay cache full of unexpired entries; refusing new tokens (fail closed)"
            );
            return Err(ReplayError::CapacityExhausted {
                capacity: self.capacity,
            });
        }
        inner.by_expiry.insert((expires_at, key.clone()));
        inner.entries.insert(key, expires_at);
        Ok(true)
    }
}
