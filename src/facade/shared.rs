//! Rows loaded once per request and shared by every view that shows them: a loader's cache, the
//! view built from it and each GraphQL object of a row hold the same allocation, so a page of
//! 20 runs with 400 steps copies pointers, not 400 rows three times over.

use std::ops::Deref;
use std::sync::Arc;

/// Rows of one key (a run's steps, a run's policy events), shared.
pub type Rows<T> = Arc<[T]>;

/// One row of shared [`Rows`].
#[derive(Clone, Debug)]
pub struct Shared<T> {
    rows: Rows<T>,
    index: usize,
}

impl<T> Shared<T> {
    /// A row that is not part of a loaded list (a node looked up by id).
    pub fn one(row: T) -> Self {
        Shared {
            rows: Arc::from(vec![row]),
            index: 0,
        }
    }

    /// Every row of `rows`, each pointing into the same allocation.
    pub fn each(rows: &Rows<T>) -> Vec<Shared<T>> {
        (0..rows.len())
            .map(|index| Shared {
                rows: rows.clone(),
                index,
            })
            .collect()
    }
}

impl<T> std::borrow::Borrow<T> for Shared<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.rows[self.index]
    }
}
