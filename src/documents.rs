//! Parsed GraphQL documents by query text. Dashboards and backends send the same few queries
//! over and over; parsing each one again took about 5% of a small read's CPU. A hit hands
//! execution a copy of the parsed document (copying is a fraction of parsing); validation
//! still runs on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError};

/// Distinct queries kept; when full the cache starts over (a server sees a few dozen).
const MAX_ENTRIES: usize = 256;
/// Longer queries are parsed every time, so the cache holds at most 4 MB of query text.
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The cache; shared by every request of the server.
#[derive(Debug, Default)]
pub struct DocumentCache {
    parsed: Mutex<HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    /// The request's parsed document: from the cache, or parsed (and kept) now.
    pub fn parse<'r>(
        &self,
        request: &'r mut Request,
    ) -> Result<&'r ExecutableDocument, ServerError> {
        let cacheable = request.query.len() <= MAX_QUERY_BYTES;
        if cacheable {
            let hit = self.lock().get(&request.query).cloned();
            if let Some(document) = hit {
                request.set_parsed_query(document);
                return request.parsed_query();
            }
        }
        let document = request.parsed_query()?.clone();
        if cacheable {
            let mut parsed = self.lock();
            if parsed.len() >= MAX_ENTRIES {
                parsed.clear();
            }
            parsed.insert(request.query.clone(), document);
        }
        request.parsed_query()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.parsed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_document_is_the_document_of_its_query() {
        let cache = DocumentCache::default();
        for _ in 0..2 {
            let mut first = Request::new("query A { viewer { role } }");
            let mut second = Request::new("query B { __typename }");
            let a = format!("{:?}", cache.parse(&mut first).unwrap().operations);
            let b = format!("{:?}", cache.parse(&mut second).unwrap().operations);
            assert!(a.contains("\"A\"") && a.contains("viewer"), "{a}");
            assert!(b.contains("\"B\"") && !b.contains("viewer"), "{b}");
        }
        assert_eq!(cache.lock().len(), 2);
        assert!(cache.parse(&mut Request::new("query {")).is_err());
        assert_eq!(
            cache.lock().len(),
            2,
            "a query that does not parse is not kept"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = DocumentCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache
                .parse(&mut Request::new(format!("query Q{i} {{ __typename }}")))
                .unwrap();
            assert!(cache.lock().len() <= MAX_ENTRIES);
        }
        let long = format!("query {{ __typename {} }}", " ".repeat(MAX_QUERY_BYTES));
        let before = cache.lock().len();
        cache.parse(&mut Request::new(long)).unwrap();
        assert_eq!(cache.lock().len(), before, "long queries are not kept");
    }
}
