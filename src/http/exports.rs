//! `GET /exports/{id}`: the download of a completed export, with an auditor or admin key of its
//! tenant (another tenant's export is a 404, as a missing one is). The file is streamed in
//! chunks (bounded memory) with `Content-Length`, `ETag` (the export's SHA-256 checksum),
//! `Content-Disposition` and single-range `Range` requests (206, or 416 when unsatisfiable;
//! `If-Range` with another ETag gets the whole file). Every download is recorded before a byte
//! is sent, as an `EVIDENCE_READ` of the export whose view names the range. A whole-file download
//! is re-hashed as it streams: a file that no longer matches its checksum ends the response with
//! an error instead of completing it.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::AppError;

use super::caller::{Refusal, RequestCaller};
use super::envelope;
use super::state::AppState;

/// Bytes read from the file per chunk of the body.
const CHUNK: usize = 64 * 1024;

fn refused(e: &AppError) -> Response {
    e.log();
    let status = match e {
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        other => envelope::status_of(other),
    };
    envelope::error_response(status, "application/json", e)
}

/// A requested byte range, inclusive, within a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    All,
    Range(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14.1.2): one range of bytes; several ranges, other units
/// or malformed values are served whole (as the RFC allows a server to ignore Range).
fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::All;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix: the last n bytes.
        return match last.parse::<u64>() {
            Ok(0) => Wanted::Unsatisfiable,
            Ok(n) if size == 0 => {
                let _ = n;
                Wanted::Unsatisfiable
            }
            Ok(n) => Wanted::Range(size.saturating_sub(n), size - 1),
            Err(_) => Wanted::All,
        };
    }
    let Ok(start) = first.parse::<u64>() else {
        return Wanted::All;
    };
    let end = match last {
        "" => size.saturating_sub(1),
        l => match l.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return Wanted::All,
        },
    };
    if start >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Range(start, end)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The download handler.
pub async fn download(
    State(state): State<AppState>,
    Path(export_id): Path<String>,
    caller: Result<RequestCaller, Refusal>,
    headers: HeaderMap,
) -> Response {
    let caller = caller.map_err(|Refusal(e)| e).and_then(|caller| {
        let key = caller.clone().required()?;
        caller.admit(&state, 1)?;
        Ok(key)
    });
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    let range = header_text(&headers, header::RANGE);
    // Whether the range applies: without If-Range, or with the current ETag.
    let if_range = header_text(&headers, header::IF_RANGE).map(str::to_string);
    let view: &'static str = if range.is_some() {
        "download-range"
    } else {
        "download"
    };
    let facade = state.request_facade(Some(caller), Some("downloadExport".into()));
    let download = match facade.download_export(&export_id, view).await {
        Ok(d) => d,
        Err(e) => {
            let records = facade.pending_records();
            drop(facade);
            if let Err(r) = records.commit().await {
                return refused(&r);
            }
            return refused(&e);
        }
    };
    let records = facade.pending_records();
    drop(facade);
    // No byte leaves before the download is recorded.
    if let Err(e) = records.commit().await {
        return refused(&e);
    }
    let etag = format!("\"{}\"", download.checksum);
    let size = download.size;
    let mut want = wanted(range, size);
    if let Some(tag) = if_range
        && tag.trim() != etag
    {
        want = Wanted::All;
    }
    let (status, start, len) = match want {
        Wanted::All => (StatusCode::OK, 0, size),
        Wanted::Range(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Wanted::Unsatisfiable => {
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, Body::empty()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let mut file = match tokio::fs::File::open(&download.path).await {
        Ok(f) => f,
        Err(e) => return refused(&AppError::internal("open an export file", e)),
    };
    if start > 0
        && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        return refused(&AppError::internal("seek in an export file", e));
    }
    // Only a whole file can be held to its checksum as it streams.
    let check = (status == StatusCode::OK).then(|| (Sha256::new(), download.checksum.clone()));
    let body = stream::unfold(
        (file, len, check, false),
        |(mut file, left, mut check, done)| async move {
            if done {
                return None;
            }
            if left == 0 {
                if let Some((hash, expected)) = check.take()
                    && hex::encode(hash.finalize()) != expected
                {
                    tracing::error!(%expected, "an export file no longer matches its checksum; download cut off");
                    let e = std::io::Error::other("export file does not match its checksum");
                    return Some((Err(e), (file, 0, None, true)));
                }
                return None;
            }
            let mut buffer = vec![0u8; CHUNK.min(left as usize)];
            match file.read(&mut buffer).await {
                Ok(0) => {
                    let e = std::io::Error::other("export file ended early");
                    Some((Err(e), (file, 0, None, true)))
                }
                Ok(n) => {
                    buffer.truncate(n);
                    if let Some((hash, _)) = check.as_mut() {
                        hash.update(&buffer);
                    }
                    Some((
                        Ok(Bytes::from(buffer)),
                        (file, left - n as u64, check, false),
                    ))
                }
                Err(e) => Some((Err(e), (file, 0, None, true))),
            }
        },
    );
    let mut response = (status, Body::from_stream(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::export::media_type(&download.export.format)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", download.file_name))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted(None, 10), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-3"), 10), Wanted::Range(0, 3));
        assert_eq!(wanted(Some("bytes=4-"), 10), Wanted::Range(4, 9));
        assert_eq!(wanted(Some("bytes=-3"), 10), Wanted::Range(7, 9));
        assert_eq!(wanted(Some("bytes=5-100"), 10), Wanted::Range(5, 9));
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,4-5"), 10), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::All);
        assert_eq!(wanted(Some("bytes=5-2"), 10), Wanted::All);
    }
}
