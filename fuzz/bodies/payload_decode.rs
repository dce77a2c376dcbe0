// Body of the `payload_decode` fuzz target, shared with `tests/tests/fuzz_corpus.rs`
// (see fuzz/README.md).

use formats::payload::{self, gen, genc, mgenc};
use formats::{SrcName, Time};

/// The srcnames whose suffix picks a payload codec; an input's first byte picks one.
pub const NAMES: [&str; 5] = [
    "XX_STA01_BHZ/GEN",
    "XX_STA01_BHZ/GENC",
    "XX_STA01/MGENC/M40",
    "XX_STA01_BHZ_00/SEED",
    "XX_STA01/EXP",
];

/// The packet time every input is decoded at.
pub const TIME: Time = Time::from_micros(1_700_000_000_000_000);

/// Decodes the rest of `data` under the suffix its first byte picks: decoding must
/// never panic, and whatever an Antelope format decodes must re-encode and decode to
/// the same channels.
pub fn check(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let sn = SrcName::new(name).expect("valid srcname");
    let Ok(channels) = payload::decode(&sn, TIME, payload) else {
        return;
    };
    // Re-encoding needs finite header values and printable names; NaN never compares equal.
    let reencoded = match sn.suffix() {
        Some("GEN") => gen::encode(&channels[0]),
        Some("GENC") => genc::encode(&channels[0]),
        Some("MGENC") => mgenc::encode(&channels),
        _ => return,
    };
    if let Ok(bytes) = reencoded {
        if channels
            .iter()
            .all(|c| !(c.samprate.is_nan() || c.calib.is_nan() || c.calper.is_nan()))
        {
            assert_eq!(payload::decode(&sn, TIME, &bytes).unwrap(), channels);
        }
    }
}
