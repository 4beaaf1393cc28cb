//! Keeps `schemas/*-event.schema.json` in step with `schemas::events::decode`: every example
//! is checked against both, and they must agree, except for the few rules JSON Schema cannot
//! express, which are listed here as examples only the decoder rejects.

use schemas::events::{RatingSubmitted, TagAdded, decode_at};
use serde_json::Value;

const NOW: i64 = 1_700_000_000;
const ID: &str = "5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Schema and decoder both accept.
    Valid,
    /// Schema and decoder both reject.
    Invalid,
    /// Only the decoder rejects (a rule JSON Schema cannot state).
    DecoderOnly,
}
use Expect::*;

fn validator(file: &str) -> jsonschema::Validator {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path} is not a valid JSON Schema: {e}"))
}

fn rating(fields: &str) -> String {
    format!(r#"{{"schemaVersion":1,"eventId":"{ID}",{fields}}}"#)
}

fn tag(fields: &str) -> String {
    format!(r#"{{"schemaVersion":1,"eventId":"{ID}","userId":1,"movieId":2,"timestamp":964982703,{fields}}}"#)
}

fn check(schema_file: &str, examples: &[(String, Expect)], decoder: impl Fn(&[u8]) -> Result<(), String>) {
    let validator = validator(schema_file);
    let mut failures = Vec::new();
    for (json, expect) in examples {
        let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("example {json} is not JSON: {e}"));
        let schema_ok = validator.is_valid(&value);
        let decoded = decoder(json.as_bytes());
        let (want_schema, want_decoder) = match expect {
            Valid => (true, true),
            Invalid => (false, false),
            DecoderOnly => (true, false),
        };
        if schema_ok != want_schema || decoded.is_ok() != want_decoder {
            failures.push(format!("{json}\n  expected {expect:?}; schema accepts: {schema_ok}; decoder: {decoded:?}"));
        }
    }
    assert!(failures.is_empty(), "{schema_file} and decode disagree:\n{}", failures.join("\n"));
}

#[test]
fn rating_schema_and_decoder_agree() {
    let big = format!("{:<3000}", rating(r#""userId":1,"movieId":2,"rating":4,"timestamp":964982703"#));
    let examples = vec![
        (rating(r#""userId":1,"movieId":31,"rating":2.5,"timestamp":1260759144"#), Valid),
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":1260759144"#), Valid),
        (rating(r#""userId":1,"movieId":31,"rating":0.5,"timestamp":788918400"#), Valid),
        (rating(r#""userId":9007199254740991,"movieId":1,"rating":5.0,"timestamp":1700000000"#), Valid),
        (
            r#"{"schemaVersion":1,"eventId":"5f0c2a9e-8b7d-4c3f-9a1e-2d3c4b5a6978","userId":1,"movieId":2,"rating":3,"timestamp":964982703}"#.into(),
            Valid,
        ),
        (rating(r#""userId":1,"movieId":31,"rating":5.5,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":0,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":3.3,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":"4","timestamp":1260759144"#), Invalid),
        (rating(r#""userId":0,"movieId":31,"rating":4,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1,"movieId":-3,"rating":4,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":"1","movieId":31,"rating":4,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1.5,"movieId":31,"rating":4,"timestamp":1260759144"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":788918399"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":4"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":1260759144,"extra":1"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":null"#), Invalid),
        (
            r#"{"schemaVersion":2,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978","userId":1,"movieId":2,"rating":3,"timestamp":964982703}"#.into(),
            Invalid,
        ),
        (
            r#"{"schemaVersion":1,"eventId":"not-an-id","userId":1,"movieId":2,"rating":3,"timestamp":964982703}"#.into(),
            Invalid,
        ),
        (r#"[1,2,3]"#.into(), Invalid),
        (r#""rating""#.into(), Invalid),
        // JSON Schema cannot see the clock, the encoded size or how a number was written.
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":4102444800"#), DecoderOnly),
        (big, DecoderOnly),
        (rating(r#""userId":1.0,"movieId":31,"rating":4,"timestamp":1260759144"#), DecoderOnly),
    ];
    check("rating-event.schema.json", &examples, |b| {
        decode_at::<RatingSubmitted>(b, NOW).map(|_| ()).map_err(|e| e.to_string())
    });
}

#[test]
fn tag_schema_and_decoder_agree() {
    let examples = vec![
        (tag(r#""tag":"funny""#), Valid),
        (tag(r#""tag":"dark comedy, \"quoted\" \u00e9""#), Valid),
        (tag(r#""tag":"tab\tinside""#), Valid),
        (tag(&format!(r#""tag":"{}""#, "x".repeat(1024))), Valid),
        (tag(r#""tag":"""#), Invalid),
        (tag(r#""tag":"   ""#), Invalid),
        (tag(r#""tag":"line\nbreak""#), Invalid),
        (tag(r#""tag":"nul\u0000""#), Invalid),
        (tag(r#""tag":"c1\u0085""#), Invalid),
        (tag(r#""tag":42"#), Invalid),
        (tag(&format!(r#""tag":"{}""#, "x".repeat(1025))), Invalid),
        (tag(r#""tag":"funny","rating":4"#), Invalid),
        (rating(r#""userId":1,"movieId":31,"rating":4,"timestamp":1260759144"#), Invalid),
        // 1024 characters but more than 1024 bytes: the schema counts characters.
        (tag(&format!(r#""tag":"{}""#, "\u{e9}".repeat(1000))), DecoderOnly),
    ];
    check("tag-event.schema.json", &examples, |b| decode_at::<TagAdded>(b, NOW).map(|_| ()).map_err(|e| e.to_string()));
}

#[test]
fn events_written_by_this_code_match_the_schemas() {
    let ratings = validator("rating-event.schema.json");
    let tags = validator("tag-event.schema.json");
    for i in 1..=200_i64 {
        let r = RatingSubmitted::new(i, i * 7, f64::from((i % 10 + 1) as u8) / 2.0, 964_982_703 + i);
        let value = serde_json::to_value(r).unwrap();
        assert!(ratings.is_valid(&value), "{value}");
        let t = TagAdded::new(i, i * 7, format!("tag {i}"), 964_982_703 + i);
        let value = serde_json::to_value(&t).unwrap();
        assert!(tags.is_valid(&value), "{value}");
    }
}
