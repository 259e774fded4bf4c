//! Random identifiers and secrets (OS randomness, hex encoded).

/// `bytes` random bytes from the OS, hex encoded; an error when the OS generator fails. Use
/// this for secrets.
pub fn secret_hex(bytes: usize) -> crate::error::AppResult<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        crate::error::AppError::internal("draw random bytes for a secret", e.to_string())
    })?;
    Ok(hex::encode(buf))
}

/// `bytes` random bytes as hex, for identifiers (not secrets): should the OS generator fail,
/// a time-derived value keeps ids unique enough and the failure is logged.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS generator only fails on a broken system; fall back to a time-derived value rather
    // than panic, and log it.
    if let Err(e) = getrandom::fill(&mut buf) {
        tracing::error!(error = %e, "OS random generator failed");
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
    hex::encode(buf)
}

/// A new identifier `<prefix>_<32 hex>`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(16))
}
