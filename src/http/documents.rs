//! Parsed GraphQL documents by query text. Dashboards and backends send the same few queries
//! over and over; parsing each one again took about 5% of a small read's CPU. A hit hands
//! execution a copy of the parsed document (copying is a fraction of parsing); validation
//! and every limit still run on every request.
//!
//! Only documents of requests that ran without errors for an authenticated caller are kept,
//! and only short queries: a parsed document takes up to a hundred times the bytes of its
//! text, so the bounds below keep the cache under about 50 MB even when filled on purpose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;

use crate::locked;

/// Distinct queries kept; when full the cache starts over (a server sees a few dozen).
const MAX_ENTRIES: usize = 128;
/// Longer queries are parsed every time.
const MAX_QUERY_BYTES: usize = 4 * 1024;

/// The cache; shared by every request of the server.
#[derive(Debug, Default)]
pub struct DocumentCache {
    parsed: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

/// A document parsed for a request, to be kept if the request succeeds.
pub struct Candidate {
    query: String,
    document: ExecutableDocument,
}

impl DocumentCache {
    /// Gives the request its parsed document: from the cache, or parsed now. A query that
    /// could be kept comes back as a [`Candidate`] for [`DocumentCache::keep`]. A query that
    /// does not parse is left to execution, which reports the error.
    pub fn prepare(&self, request: &mut Request) -> Option<Candidate> {
        if request.query.len() > MAX_QUERY_BYTES {
            return None;
        }
        let hit = locked(&self.parsed).get(&request.query).cloned();
        if let Some(document) = hit {
            request.set_parsed_query((*document).clone());
            return None;
        }
        let document = request.parsed_query().ok()?.clone();
        Some(Candidate {
            query: request.query.clone(),
            document,
        })
    }

    /// Keeps the document of a request that succeeded.
    pub fn keep(&self, candidate: Candidate) {
        let mut parsed = locked(&self.parsed);
        if parsed.len() >= MAX_ENTRIES {
            parsed.clear();
        }
        parsed.insert(candidate.query, Arc::new(candidate.document));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(request: &mut Request) -> String {
        format!("{:?}", request.parsed_query().unwrap().operations)
    }

    #[test]
    fn a_kept_document_is_the_document_of_its_query() {
        let cache = DocumentCache::default();
        for round in 0..2 {
            let mut first = Request::new("query A { viewer { role } }");
            let mut second = Request::new("query B { __typename }");
            let candidates = [cache.prepare(&mut first), cache.prepare(&mut second)];
            assert_eq!(
                candidates.iter().all(Option::is_some),
                round == 0,
                "parsed on the first round, found on the second"
            );
            for candidate in candidates.into_iter().flatten() {
                cache.keep(candidate);
            }
            let (a, b) = (operations(&mut first), operations(&mut second));
            assert!(a.contains("\"A\"") && a.contains("viewer"), "{a}");
            assert!(b.contains("\"B\"") && !b.contains("viewer"), "{b}");
        }
        assert_eq!(locked(&cache.parsed).len(), 2);
        assert!(cache.prepare(&mut Request::new("query {")).is_none());
        assert_eq!(
            locked(&cache.parsed).len(),
            2,
            "a query that does not parse is not kept"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = DocumentCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            let mut request = Request::new(format!("query Q{i} {{ __typename }}"));
            cache.keep(cache.prepare(&mut request).unwrap());
            assert!(locked(&cache.parsed).len() <= MAX_ENTRIES);
        }
        let mut long = Request::new(format!(
            "query {{ __typename {} }}",
            " ".repeat(MAX_QUERY_BYTES)
        ));
        assert!(
            cache.prepare(&mut long).is_none(),
            "long queries are not kept"
        );
    }
}
