//! The stable twin of `fuzz/fuzz_targets/decode.rs`: many random and mutated byte strings go
//! through the decoders (events and impression batches), which must answer `Ok` or `Err` and
//! never panic. Seeded, so a failure
//! reproduces.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use schemas::events::{MAX_EVENT_BYTES, RatingSubmitted, TagAdded, decode_at, decode_lists_at};

const NOW: i64 = 1_700_000_000;

const SEEDS: &[&[u8]] = &[
    br#"{"schemaVersion":1,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978","userId":1,"movieId":31,"rating":2.5,"timestamp":1260759144}"#,
    br#"{"schemaVersion":1,"eventId":"5f0c2a9e-8b7d-4c3f-9a1e-2d3c4b5a6978","userId":1,"movieId":2,"tag":"funny \u00e9","timestamp":964982703}"#,
    br#"{"schemaVersion":2,"userId":-1,"rating":1e400,"timestamp":"x","tag":null}"#,
    br#"[{"a":[[[[[[[[[[]]]]]]]]]]}]"#,
    br#"{"schemaVersion":1,"lists":[{"schemaVersion":1,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978","userId":3,"movieIds":[10,20],"strategy":"personal","modelVersion":2,"experiment":"e","variant":"a","streamTime":1000000000,"timestamp":1700000000},{"schemaVersion":1,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6979","userId":4,"movieIds":[],"strategy":"trending","modelVersion":2,"streamTime":1000000000,"timestamp":1700000000}]}"#,
];

/// Interesting bytes to splice in: JSON structure, escapes, multi-byte UTF-8, invalid UTF-8.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-0",
    b"NaN",
    b"9223372036854775808",
    b"null",
    b"true",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"0.5",
    b"\"schemaVersion\"",
];

fn mutate(rng: &mut SmallRng, input: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=8) {
        match rng.random_range(0..6) {
            0 if !input.is_empty() => {
                let i = rng.random_range(0..input.len());
                input[i] = rng.random();
            }
            1 if !input.is_empty() => {
                let i = rng.random_range(0..input.len());
                input.remove(i);
            }
            2 => {
                let i = rng.random_range(0..=input.len());
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                input.splice(i..i, token.iter().copied());
            }
            3 if !input.is_empty() => {
                let a = rng.random_range(0..input.len());
                let b = rng.random_range(a..input.len());
                let copy = input[a..=b].to_vec();
                let at = rng.random_range(0..=input.len());
                input.splice(at..at, copy);
            }
            4 => {
                let len = rng.random_range(0..=input.len());
                input.truncate(len);
            }
            _ => input.push(rng.random_range(b' '..=b'~')),
        }
    }
}

#[test]
fn decoding_never_panics_on_random_or_mutated_input() {
    let mut rng = SmallRng::seed_from_u64(0x00C1_AEDA);
    let mut accepted = 0;
    for round in 0..200_000 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            let len = rng.random_range(0..300);
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut b = SEEDS[rng.random_range(0..SEEDS.len())].to_vec();
            mutate(&mut rng, &mut b);
            b
        };
        let r = decode_at::<RatingSubmitted>(&bytes, NOW);
        let t = decode_at::<TagAdded>(&bytes, NOW);
        accepted += usize::from(r.is_ok()) + usize::from(t.is_ok());
        if let Ok(lists) = decode_lists_at(&bytes, NOW) {
            for list in lists {
                match list {
                    Ok(list) => {
                        accepted += 1;
                        assert!(list.user_id > 0 && list.movie_ids.iter().all(|&m| m > 0));
                    }
                    // A bad list keeps its own bytes, which are part of the batch.
                    Err(bad) => assert!(bytes.windows(bad.payload.len().max(1)).any(|w| w == bad.payload)),
                }
            }
        }
        if let Ok(e) = r {
            assert!(schemas::events::valid_rating(e.rating) && e.user_id > 0 && e.movie_id > 0);
        }
    }
    // The mutations stay close enough to valid events that some still decode.
    assert!(accepted > 0, "no mutated event decoded: the generator is broken");
}

#[test]
fn huge_inputs_are_refused_without_parsing() {
    let deep = "[".repeat(MAX_EVENT_BYTES * 4);
    let err = decode_at::<RatingSubmitted>(deep.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.kind(), "too-large");
    let deep = "[".repeat(MAX_EVENT_BYTES);
    assert_eq!(decode_at::<RatingSubmitted>(deep.as_bytes(), NOW).unwrap_err().kind(), "malformed");
}
