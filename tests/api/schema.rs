//! `schema.graphql` at the repo root is the SDL of the code; this fails when they differ.
//! Regenerate with `RUNLEDGER_UPDATE_SCHEMA=1 cargo test schema` (or `runledger schema`).

#[test]
fn checked_in_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let generated = runledger::graphql::sdl();
    if std::env::var("RUNLEDGER_UPDATE_SCHEMA").is_ok() {
        std::fs::write(path, &generated).expect("write schema.graphql");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schema.graphql is out of date: run `RUNLEDGER_UPDATE_SCHEMA=1 cargo test schema` and commit it"
    );
}
