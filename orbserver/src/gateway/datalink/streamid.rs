//! DataLink stream ids and orb srcnames, one to the other (docs/GATEWAYS.md, "Stream
//! ids and srcnames").
//!
//! miniSEED is the one type both sides name, differently: DataLink says
//! `NET_STA_LOC_CHAN/MSEED`, the orb (and orbsim) says `NET_STA_CHAN_LOC/SEED`, or
//! `NET_STA_CHAN/SEED` with no location. Every other name passes unchanged.

use formats::{SrcName, SrcNameError};

/// The orb srcname a DataLink stream id is stored under.
pub fn to_srcname(streamid: &str) -> Result<SrcName, SrcNameError> {
    if let Some(nslc) = streamid.strip_suffix("/MSEED") {
        let parts: Vec<&str> = nslc.split('_').collect();
        if let [net, sta, loc, chan] = parts[..] {
            if !net.is_empty() && !sta.is_empty() && !chan.is_empty() {
                let name = if loc.is_empty() {
                    format!("{net}_{sta}_{chan}/SEED")
                } else {
                    format!("{net}_{sta}_{chan}_{loc}/SEED")
                };
                return SrcName::new(&name);
            }
        }
    }
    SrcName::new(streamid)
}

/// The DataLink stream id an orb srcname is sent as.
pub fn to_streamid(srcname: &str) -> std::borrow::Cow<'_, str> {
    if let Some(nsc) = srcname.strip_suffix("/SEED") {
        let parts: Vec<&str> = nsc.split('_').collect();
        match parts[..] {
            [net, sta, chan] if [net, sta, chan].iter().all(|p| !p.is_empty()) => {
                return format!("{net}_{sta}__{chan}/MSEED").into()
            }
            [net, sta, chan, loc] if [net, sta, chan, loc].iter().all(|p| !p.is_empty()) => {
                return format!("{net}_{sta}_{loc}_{chan}/MSEED").into()
            }
            _ => {}
        }
    }
    srcname.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miniseed_names_swap_location_and_channel() {
        let cases = [
            ("IU_ANMO_00_BHZ/MSEED", "IU_ANMO_BHZ_00/SEED"),
            ("XX_STA01__BHZ/MSEED", "XX_STA01_BHZ/SEED"),
        ];
        for (dl, orb) in cases {
            assert_eq!(to_srcname(dl).unwrap().as_str(), orb);
            assert_eq!(to_streamid(orb), dl);
        }
    }

    #[test]
    fn other_names_pass_unchanged() {
        for name in [
            "XX_STA01/MGENC",
            "XX_STA01_BHZ/GENC",
            "A_B/JSON",
            "X_Y_Z/MSEED3",
        ] {
            assert_eq!(to_srcname(name).unwrap().as_str(), name);
            assert_eq!(to_streamid(name), name);
        }
        // Not four parts: not a DataLink miniSEED name, so kept as it is.
        assert_eq!(
            to_srcname("XX_STA_BHZ/MSEED").unwrap().as_str(),
            "XX_STA_BHZ/MSEED"
        );
        assert!(to_srcname("bad name").is_err());
        assert!(to_srcname("").is_err());
    }
}
