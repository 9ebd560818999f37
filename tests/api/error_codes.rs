//! Every error code the server can answer is documented: in `switchboard::error`'s
//! lists, in README (the Errors table for HTTP, the Realtime section for connection
//! frames) and in the OpenAPI document's enum. The codes are collected from the
//! source itself, so a new `bad_request("...")` that nobody documented fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use switchboard::error::{HTTP_CODES, REALTIME_CODES};
use switchboard::store::Backend;

use crate::helpers::{json_with_status, spawn_app};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The codes written in `src/`: the first argument of `bad_request(..)` and of a
/// batch item's `refused(status, ..)`, every `code: ".."` field, and the arms of the
/// `fn code` / `fn default_code` matches that name codes.
fn codes_in_source() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let literal = [
        r#"bad_request\(\s*"([a-z_]+)""#,
        r#"refused\(\s*\d+,\s*"([a-z_]+)""#,
        r#"\bcode:\s*"([a-z_]+)""#,
    ]
    .map(|pattern| Regex::new(pattern).unwrap());
    let code_fn =
        Regex::new(r"(?s)fn (?:code|default_code)\([^)]*\)[^{]*\{(.*?)\n    \}\n").unwrap();
    let arm = Regex::new(r#"=>\s*"([a-z_]+)""#).unwrap();
    let mut codes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for pattern in &literal {
            codes.extend(pattern.captures_iter(&text).map(|c| c[1].to_owned()));
        }
        for body in code_fn.captures_iter(&text) {
            codes.extend(arm.captures_iter(&body[1]).map(|c| c[1].to_owned()));
        }
    }
    codes
}

/// README's text from the heading `heading` to the next heading of its level.
fn readme_section(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading}"));
    let level = heading.split(' ').next().unwrap();
    let rest = &readme[start + heading.len()..];
    let end = rest
        .match_indices('\n')
        .map(|(at, _)| at + 1)
        .find(|&at| rest[at..].starts_with(&format!("{level} ")))
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

#[test]
fn every_code_in_the_source_is_listed() {
    let found = codes_in_source();
    // The collector finds the codes it should (a broken pattern would pass everything).
    for known in [
        "validation_failed",
        "invalid_cursor",
        "csrf_failed",
        "nested_batch",
        "session_ended",
    ] {
        assert!(
            found.contains(known),
            "the collector missed {known}: {found:?}"
        );
    }
    let listed: BTreeSet<&str> = HTTP_CODES
        .iter()
        .map(|(_, code)| *code)
        .chain(REALTIME_CODES.iter().copied())
        .collect();
    let missing: Vec<_> = found
        .iter()
        .filter(|c| !listed.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "codes in src/ missing from switchboard::error's lists: {missing:?}"
    );
    let unused: Vec<_> = listed.iter().filter(|c| !found.contains(**c)).collect();
    assert!(
        unused.is_empty(),
        "listed codes nothing in src/ answers: {unused:?}"
    );
}

#[test]
fn readme_documents_every_code() {
    let errors = readme_section("### Errors");
    for (status, code) in HTTP_CODES {
        let row = errors
            .lines()
            .find(|line| line.starts_with('|') && line.contains(&format!("`{code}`")))
            .unwrap_or_else(|| panic!("README's Errors table lacks `{code}`"));
        if *status != 0 {
            assert!(
                row.contains(&status.to_string()),
                "`{code}` is not on a {status} row: {row}"
            );
        }
    }
    let realtime = readme_section("## Realtime");
    for code in REALTIME_CODES {
        assert!(
            realtime.contains(&format!("`{code}`")),
            "README's Realtime section lacks `{code}`"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_code() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = json_with_status(app.get("/api/openapi.json").await, 200).await;
    let listed: BTreeSet<&str> =
        doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap_or_else(|| {
                panic!(
                    "ErrorEnvelope.code has no enum: {}",
                    doc["components"]["schemas"]["ErrorEnvelope"]
                )
            })
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
    let expected: BTreeSet<&str> = HTTP_CODES.iter().map(|(_, code)| *code).collect();
    assert_eq!(listed, expected);
}
