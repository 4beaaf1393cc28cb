//! Feeds arbitrary bytes to the one event decoder: it must return `Ok` or `Err`, never panic,
//! and whatever it accepts must re-encode to bytes that decode to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::events::{EventError, ListsShownWriter, RatingSubmitted, TagAdded, decode_at, decode_lists_at, encode_at};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = decode_at::<RatingSubmitted>(data, NOW) {
        match encode_at(&event, NOW) {
            Ok(again) => assert_eq!(decode_at::<RatingSubmitted>(&again, NOW).expect("re-decodes"), event),
            // `4` re-encodes as `4.0`: an input near the limit may grow past it.
            Err(EventError::TooLarge { .. }) => {}
            Err(e) => panic!("a decoded rating does not re-encode: {e}"),
        }
    }
    if let Ok(event) = decode_at::<TagAdded>(data, NOW) {
        match encode_at(&event, NOW) {
            Ok(again) => assert_eq!(decode_at::<TagAdded>(&again, NOW).expect("re-decodes"), event),
            Err(EventError::TooLarge { .. }) => {}
            Err(e) => panic!("a decoded tag does not re-encode: {e}"),
        }
    }
    if let Ok(lists) = decode_lists_at(data, NOW) {
        let mut writer = ListsShownWriter::new();
        let good: Vec<_> = lists.into_iter().filter_map(Result::ok).collect();
        for list in &good {
            match writer.push(list, NOW) {
                Ok(true) | Err(EventError::TooLarge { .. }) => {}
                Ok(false) => return, // re-encoded numbers may grow past the batch limit
                Err(e) => panic!("a decoded list does not re-encode: {e}"),
            }
        }
        let again: Vec<_> = decode_lists_at(&writer.take(), NOW).expect("re-decodes").into_iter().filter_map(Result::ok).collect();
        if again.len() == good.len() {
            assert_eq!(again, good);
        }
    }
});
