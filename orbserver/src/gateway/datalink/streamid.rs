//! DataLink stream ids and orb srcnames, one to the other (docs/GATEWAYS.md, "Stream
//! ids and srcnames").
//!
//! miniSEED is the one type both sides name, differently: DataLink 1.0 says
//! `NET_STA_LOC_CHAN/MSEED`, DataLink 1.1 (ringserver 4) says
//! `FDSN:NET_STA_LOC_B_S_SS/MSEED` with the channel's band, source and subsource apart,
//! and the orb (and orbsim) says `NET_STA_CHAN_LOC/SEED`, or `NET_STA_CHAN/SEED` with
//! no location. Every other name passes unchanged. Which of the two DataLink names a
//! client is sent is its session's [`IdStyle`].

use std::borrow::Cow;

use formats::{SrcName, SrcNameError};

/// The prefix of a DataLink 1.1 FDSN source id.
const FDSN: &str = "FDSN:";

/// How a session names miniSEED streams on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdStyle {
    /// DataLink 1.0: `NET_STA_LOC_CHAN/MSEED`.
    Nslc,
    /// DataLink 1.1: `FDSN:NET_STA_LOC_B_S_SS/MSEED`, what the ID reply announces and
    /// ringserver 4 sends every client.
    #[default]
    Fdsn,
}

impl IdStyle {
    /// The style a client's stream id or MATCH/REJECT expression is written in: FDSN if
    /// it names an FDSN source id, else none in particular.
    pub fn used_in(text: &str) -> Option<IdStyle> {
        text.contains(FDSN).then_some(IdStyle::Fdsn)
    }

    /// The style a WRITE's stream id is written in: FDSN for an FDSN source id, 1.0 for
    /// a 1.0 miniSEED name (`NET_STA_LOC_CHAN/MSEED`), none for any other name.
    pub fn written_in(streamid: &str) -> Option<IdStyle> {
        if streamid.starts_with(FDSN) {
            return Some(IdStyle::Fdsn);
        }
        let seed = to_srcname(streamid).is_ok_and(|s| s.as_str().ends_with("/SEED"));
        (seed && streamid.ends_with("/MSEED")).then_some(IdStyle::Nslc)
    }

    /// The style a client asks for in its ID string with a `DLPROTO:x.y` token (as the
    /// server announces its own): 1.0 names below 1.1, FDSN ids from 1.1 on. No client
    /// we know sends one (libdali and simpledali send `program:user:pid:arch`), but it
    /// is the one unambiguous way for a 1.0 client to say what it is.
    pub fn announced_in(id: &str) -> Option<IdStyle> {
        let at = id.find("DLPROTO:")? + "DLPROTO:".len();
        let version: String = id[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = version.split('.').map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = match parts.next() {
            Some(m) => m.ok()?,
            None => 0,
        };
        Some(if (major, minor) < (1, 1) {
            IdStyle::Nslc
        } else {
            IdStyle::Fdsn
        })
    }
}

/// The orb srcname a DataLink stream id is stored under.
pub fn to_srcname(streamid: &str) -> Result<SrcName, SrcNameError> {
    if let Some(nslc) = streamid.strip_suffix("/MSEED") {
        let parts: Vec<&str> = nslc.split('_').collect();
        let found = match parts[..] {
            [net, sta, loc, chan] if !net.starts_with(FDSN) => Some((net, sta, loc, chan.into())),
            [net, sta, loc, b, s, ss] => net
                .strip_prefix(FDSN)
                .filter(|_| [b, s, ss].iter().all(|p| p.len() == 1))
                .map(|net| (net, sta, loc, format!("{b}{s}{ss}"))),
            _ => None,
        };
        if let Some((net, sta, loc, chan)) = found {
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

/// The DataLink stream id an orb srcname is sent as, in `style`.
pub fn to_streamid(srcname: &str, style: IdStyle) -> Cow<'_, str> {
    if let Some(nsc) = srcname.strip_suffix("/SEED") {
        let parts: Vec<&str> = nsc.split('_').collect();
        let (net, sta, chan, loc) = match parts[..] {
            [net, sta, chan] => (net, sta, chan, ""),
            [net, sta, chan, loc] if !loc.is_empty() => (net, sta, chan, loc),
            _ => return srcname.into(),
        };
        if [net, sta, chan].iter().any(|p| p.is_empty()) {
            return srcname.into();
        }
        let b = chan.as_bytes();
        return match style {
            IdStyle::Fdsn if b.len() == 3 && chan.is_ascii() => format!(
                "{FDSN}{net}_{sta}_{loc}_{}_{}_{}/MSEED",
                b[0] as char, b[1] as char, b[2] as char
            )
            .into(),
            _ => format!("{net}_{sta}_{loc}_{chan}/MSEED").into(),
        };
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
            assert_eq!(to_streamid(orb, IdStyle::Nslc), dl);
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
            assert_eq!(to_streamid(name, IdStyle::Nslc), name);
            assert_eq!(to_streamid(name, IdStyle::Fdsn), name);
        }
        // Not four parts: not a DataLink miniSEED name, so kept as it is.
        assert_eq!(
            to_srcname("XX_STA_BHZ/MSEED").unwrap().as_str(),
            "XX_STA_BHZ/MSEED"
        );
        assert!(to_srcname("bad name").is_err());
        assert!(to_srcname("").is_err());
    }

    #[test]
    fn fdsn_source_ids_split_the_channel_and_map_to_the_same_srcname() {
        let cases = [
            ("FDSN:IU_ANMO_00_B_H_Z/MSEED", "IU_ANMO_BHZ_00/SEED"),
            ("FDSN:XX_STA01__B_H_Z/MSEED", "XX_STA01_BHZ/SEED"),
        ];
        for (dl, orb) in cases {
            assert_eq!(to_srcname(dl).unwrap().as_str(), orb);
            assert_eq!(to_streamid(orb, IdStyle::Fdsn), dl);
        }
        // The 1.0 and 1.1 names of one channel are one srcname.
        assert_eq!(
            to_srcname("IU_ANMO_00_BHZ/MSEED").unwrap(),
            to_srcname("FDSN:IU_ANMO_00_B_H_Z/MSEED").unwrap()
        );
        // A subsource longer than one character has no SEED 2 channel: kept as it is.
        assert_eq!(
            to_srcname("FDSN:XX_STA_00_B_H_ZZ/MSEED").unwrap().as_str(),
            "FDSN:XX_STA_00_B_H_ZZ/MSEED"
        );
        // Other types keep their FDSN id as the srcname.
        let ms3 = "FDSN:XX_STA_00_B_H_Z/MSEED3";
        assert_eq!(to_srcname(ms3).unwrap().as_str(), ms3);
        assert_eq!(to_streamid(ms3, IdStyle::Fdsn), ms3);
        assert_eq!(IdStyle::used_in("FDSN:XX_.*"), Some(IdStyle::Fdsn));
        assert_eq!(IdStyle::used_in("XX_.*"), None);
    }

    #[test]
    fn the_default_is_datalink_1_1() {
        assert_eq!(IdStyle::default(), IdStyle::Fdsn);
    }

    #[test]
    fn a_write_says_which_names_the_client_uses() {
        let cases = [
            ("FDSN:XX_STA_00_B_H_Z/MSEED", Some(IdStyle::Fdsn)),
            ("FDSN:XX_STA_00_B_H_Z/MSEED3", Some(IdStyle::Fdsn)),
            ("XX_STA_00_BHZ/MSEED", Some(IdStyle::Nslc)),
            ("XX_STA__BHZ/MSEED", Some(IdStyle::Nslc)),
            // Not a 1.0 miniSEED name: says nothing about the client.
            ("XX_STA_BHZ/MSEED", None),
            ("XX_STA01/MGENC", None),
            ("A_B/JSON", None),
        ];
        for (id, want) in cases {
            assert_eq!(IdStyle::written_in(id), want, "{id}");
        }
    }

    #[test]
    fn an_id_string_may_announce_the_clients_version() {
        let cases = [
            ("slink2dali:me:12:Linux DLPROTO:1.0", Some(IdStyle::Nslc)),
            ("prog:me:12:DLPROTO:1.0", Some(IdStyle::Nslc)),
            ("prog DLPROTO:0.9", Some(IdStyle::Nslc)),
            ("prog DLPROTO:1", Some(IdStyle::Nslc)),
            ("prog DLPROTO:1.1", Some(IdStyle::Fdsn)),
            ("prog DLPROTO:2.0 more", Some(IdStyle::Fdsn)),
            ("prog:me:12:x86_64", None),
            ("prog DLPROTO:", None),
            ("prog DLPROTO:x", None),
        ];
        for (id, want) in cases {
            assert_eq!(IdStyle::announced_in(id), want, "{id}");
        }
    }
}
